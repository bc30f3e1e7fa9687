/* SPDX-License-Identifier: MIT */
/*
 * fuzz-sms-text.c — libFuzzer harness for sms_text_compose(): the first
 * byte picks max_segments (1 … SMS_SEGMENTS_MAX) and folding, the rest is
 * the text (a reply with a customer's words in it).  The promises of
 * sms-text.h are checked on what comes out: -EINVAL exactly for invalid
 * UTF-8; valid UTF-8 within max_segments, measured as returned; the text
 * unchanged unless folded or cut; a cut text ends with the ellipsis after
 * a prefix of the input.  The committed corpus is
 * tests/fuzz/corpus/sms-text/.
 *
 * Not built by "make"; after ./configure, from the top of the tree:
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -include config.h -Isrc \
 *         tests/fuzz/fuzz-sms-text.c src/sms-text.c src/normalize.c src/alloc.c \
 *         $(pkg-config --cflags --libs jansson) -o fuzz-sms-text
 *   ./fuzz-sms-text -runs=0 tests/fuzz/corpus/sms-text              # replay the corpus, as CI does
 *   mkdir -p new && ./fuzz-sms-text -max_len=4096 new tests/fuzz/corpus/sms-text   # fuzz; finds go to new/
 *
 * Security: feeds untrusted bytes to the composer; that is the point.
 */
#include "sms-text.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "normalize.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        unsigned max;
        bool fold;
        char *text, *out = NULL;
        SmsTextInfo info, m;
        size_t len;
        int r;

        if (size < 1)
                return 0;
        max = 1 + data[0] % SMS_SEGMENTS_MAX;
        fold = data[0] & 0x80;
        text = strndup((const char *) data + 1, size - 1); /* up to the first NUL, as a C string */
        if (!text)
                return 0;
        len = strlen(text);

        r = sms_text_compose(text, max, fold, &out, &info);
        if (r == -EINVAL) {
                if (normalize_utf8_valid(text, len))
                        abort();
                free(text);
                return 0;
        }
        if (r < 0)
                abort(); /* no other failure without OOM */

        if (!normalize_utf8_valid(out, strlen(out)))
                abort();
        if (info.segments > max || (len > 0 && info.segments == 0))
                abort();
        if (sms_text_measure(out, &m) < 0 || m.units != info.units || m.segments != info.segments ||
            m.encoding != info.encoding)
                abort();
        if (!info.folded && !info.truncated && !streq(out, text))
                abort();
        if (info.truncated) {
                const char *el = info.encoding == SMS_ENCODING_GSM7 ? "..." : "\xE2\x80\xA6";
                size_t ol = strlen(out), el_len = strlen(el);
                if (ol < el_len || !streq(out + ol - el_len, el))
                        abort();
                if (!info.folded && strncmp(out, text, ol - el_len) != 0)
                        abort();
        }
        free(out);
        free(text);
        return 0;
}
