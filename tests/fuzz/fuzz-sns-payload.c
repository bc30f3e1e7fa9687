/* SPDX-License-Identifier: MIT */
/*
 * fuzz-sns-payload.c — libFuzzer harness for what a verified SNS
 * Notification carries: the two-way SMS JSON and the SES "Received"
 * notification (verdicts, recipients, UTF8 or BASE64 content).
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Isrc -include config.h \
 *         tests/fuzz/fuzz-sns-payload.c src/sns-payload.c src/customer.c src/alloc.c src/strutil.c \
 *         $(pkg-config --cflags --libs jansson libcrypto) -o fuzz-sns-payload
 *   ./fuzz-sns-payload tests/fuzz/corpus/sns-payload
 *
 * Security: the input is customer-controlled (an SMS, a mail) inside a
 * message AWS signed.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sns-payload.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        SnsPayload *p = NULL;
        const char *reason = NULL;
        char *s = malloc(size + 1);

        /* The Message is a JSON string: NUL-terminated, no NUL inside. */
        if (!s)
                return 0;
        memcpy(s, data, size);
        s[size] = '\0';
        if (sns_payload_parse(s, 1600, 1 << 20, &p, &reason) == 0)
                sns_payload_free(p);
        free(s);
        return 0;
}
