/* SPDX-License-Identifier: MIT */
/*
 * fuzz-lmtp.c — libFuzzer harness for the LMTP command parser,
 * lmtp_parse_command(): every input is one command line as the server
 * would cut it (any bytes, any length), and whatever it parses to must be
 * sane.  Allocation failure is exercised too: the first byte of the input
 * chooses whether the parser's allocation fails.
 *
 * Not built by "make"; from the top of the tree:
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Isrc \
 *         tests/fuzz/fuzz-lmtp.c src/lmtp.c src/alloc.c \
 *         $(pkg-config --cflags --libs libsystemd jansson) -o fuzz-lmtp
 *   ./fuzz-lmtp -max_len=1024 tests/fuzz/corpus/lmtp
 *
 * Replaying the corpus (what CI does under ASan/UBSan) is the same binary
 * with the files as arguments: ./fuzz-lmtp tests/fuzz/corpus/lmtp/<all files>
 *
 * Security: the input is the untrusted text a client sends.
 */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "alloc.h"
#include "lmtp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        LmtpCommand c = { .verb = _LMTP_VERB_INVALID };
        bool fail_alloc = size > 0 && data[0] == 0xff;
        const char *line = (const char *) data + fail_alloc;
        size_t len = size - fail_alloc;
        int r;

        alloc_fail_after(fail_alloc ? 1 : 0);
        r = lmtp_parse_command(line, len, &c);
        alloc_fail_after(0);

        if (r < 0) {
                assert(r == -EBADMSG || r == -EINVAL || r == -EOPNOTSUPP || r == -ENOMEM);
                assert(c.verb == _LMTP_VERB_INVALID && !c.arg); /* untouched */
                return 0;
        }
        assert(!fail_alloc || !c.arg);
        assert(c.verb >= 0 && c.verb < _LMTP_VERB_MAX);
        assert(lmtp_verb_to_string(c.verb));
        if (c.arg) {
                size_t n = strlen(c.arg);
                assert(n < len);
                /* What callbacks and replies get: printable ASCII only, and
                 * an address fits the RFC 5321 path limit. */
                for (size_t i = 0; i < n; i++)
                        assert(c.arg[i] >= 0x20 && c.arg[i] < 0x7f);
                if (c.verb == LMTP_MAIL || c.verb == LMTP_RCPT) {
                        assert(n <= 254);
                        assert(c.verb == LMTP_MAIL || n > 0);
                } else
                        assert(n > 0 && !strchr(c.arg, ' '));
        } else
                assert(c.verb != LMTP_LHLO && c.verb != LMTP_MAIL && c.verb != LMTP_RCPT);
        if (c.verb != LMTP_MAIL)
                assert(!c.has_size && !c.body_8bitmime);
        lmtp_command_done(&c);
        return 0;
}
