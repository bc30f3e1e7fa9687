/* SPDX-License-Identifier: MIT */
/*
 * fuzz-sns.c — libFuzzer harness for the SNS envelope: parse the body,
 * build the string to sign, and check the URLs, as POST /webhooks/sns does
 * before any signature is checked.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Isrc -include config.h \
 *         tests/fuzz/fuzz-sns.c src/sns.c src/alloc.c src/strutil.c \
 *         $(pkg-config --cflags --libs jansson libcrypto libcurl libsystemd) -o fuzz-sns
 *   ./fuzz-sns tests/fuzz/corpus/sns
 *
 * Security: the input is an untrusted HTTP body.
 */
#include <stdint.h>
#include <stdlib.h>

#include "sns.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        SnsMessage *m = NULL;
        const char *reason = NULL;
        char *sts = NULL;
        size_t len = 0;

        if (sns_message_parse((const char *) data, size, &m, &reason) < 0)
                return 0;
        (void) sns_message_string_to_sign(m, &sts, &len);
        free(sts);
        (void) sns_signing_cert_url_check(sns_message_get(m, SNS_FIELD_SIGNING_CERT_URL), &reason);
        if (sns_message_get(m, SNS_FIELD_SUBSCRIBE_URL))
                (void) sns_subscribe_url_check(sns_message_get(m, SNS_FIELD_SUBSCRIBE_URL), &reason);
        sns_message_free(m);
        return 0;
}
