/* SPDX-License-Identifier: MIT */
/*
 * fuzz-nlu-bedrock.c — libFuzzer harness for the reading of Bedrock's
 * answers: any bytes as a Converse response body, read against the demo
 * store's catalog, and the promises of nlu-bedrock.h checked on what comes
 * out: an outcome of OK, INVALID or NO_TOOL (nothing is injected, so never
 * -ENOMEM), a result only with OK, and then known intent, language and
 * payment names, catalog SKUs with quantities from 1 to 50, a canonical
 * order id, an address on one line of valid UTF-8 without control
 * characters.  The committed corpus is tests/fuzz/corpus/nlu-bedrock/.
 *
 * Not built by "make"; after ./configure, from the top of the tree:
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -include config.h -Isrc -DFUZZ_ETC='"etc"' \
 *         -DLOCALSTATEDIR='"/var"' -DSYSCONFDIR='"/etc"' tests/fuzz/fuzz-nlu-bedrock.c src/nlu-bedrock.c \
 *         src/nlu.c src/nlu-rules.c src/normalize.c src/catalog.c src/ini.c src/diag.c src/alloc.c \
 *         src/strutil.c src/sigv4.c src/aws-request.c src/aws-credentials.c src/curl-event.c \
 *         src/snapshot.c src/conf.c src/log.c src/base64.c src/metrics.c src/listen.c \
 *         $(pkg-config --cflags --libs libpcre2-8 jansson libsystemd libcurl openssl) -o fuzz-nlu-bedrock
 *   ./fuzz-nlu-bedrock -runs=0 tests/fuzz/corpus/nlu-bedrock      # replay the corpus, as CI does
 *   mkdir -p new && ./fuzz-nlu-bedrock -max_len=4096 new tests/fuzz/corpus/nlu-bedrock   # fuzz
 *
 * Security: feeds untrusted bytes to jansson and the checks; that is the
 * point.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "catalog.h"
#include "nlu-bedrock.h"
#include "normalize.h"

#ifndef FUZZ_ETC
#define FUZZ_ETC "etc"
#endif

static Catalog *catalog;

static void load_once(void) {
        Diags d = {};

        if (catalog)
                return;
        alloc_init();
        if (catalog_load(FUZZ_ETC "/catalog.conf", FUZZ_ETC "/zones.conf", &catalog, &d) < 0) {
                for (size_t i = 0; i < d.n; i++)
                        fprintf(stderr, "%s\n", d.lines[i]);
                abort();
        }
        diags_clear(&d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        NluResult *r = NULL;
        int o;

        load_once();
        o = nlu_bedrock_parse_response(catalog, (const char *) data, size, &r);
        if (o != NLU_BEDROCK_OK) {
                if ((o != NLU_BEDROCK_INVALID && o != NLU_BEDROCK_NO_TOOL) || r)
                        abort();
                return 0;
        }
        if (!r || !nlu_intent_to_string(r->intent) || !nlu_lang_to_string(r->lang))
                abort();
        if (r->payment != _NLU_PAYMENT_INVALID && !nlu_payment_to_string(r->payment))
                abort();
        for (size_t i = 0; i < r->n_items; i++)
                if (r->items[i].qty < 1 || r->items[i].qty > NLU_QTY_MAX || !catalog_find_sku(catalog, r->items[i].sku))
                        abort();
        if (r->order_id[0] &&
            (strlen(r->order_id) != NLU_ORDER_ID_LEN ||
             strspn(r->order_id, "0123456789ABCDEFGHJKMNPQRSTVWXYZ") != NLU_ORDER_ID_LEN))
                abort();
        if (r->address) {
                if (!r->address[0] || !normalize_utf8_valid(r->address, strlen(r->address)))
                        abort();
                for (const unsigned char *p = (const unsigned char *) r->address; *p; p++)
                        if (*p < 0x20 || *p == 0x7F)
                                abort();
        }
        nlu_result_free(r);
        return 0;
}
