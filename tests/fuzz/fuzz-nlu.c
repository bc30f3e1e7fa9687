/* SPDX-License-Identifier: MIT */
/*
 * fuzz-nlu.c — libFuzzer harness for the rules backend: any bytes as a
 * customer's message, read with the demo store's catalog, zones and
 * etc/nlu/intents.conf, and the promises of nlu.h checked on what comes
 * out: valid UTF-8 JSON that jansson reads back, known intent, language
 * and payment names, quantities from 1 to NLU_QTY_MAX, a canonical order
 * id, an address on one line without control characters.  The committed
 * corpus is tests/fuzz/corpus/nlu/.
 *
 * Not built by "make"; after ./configure, from the top of the tree:
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -include config.h -Isrc -DFUZZ_ETC='"etc"' \
 *         tests/fuzz/fuzz-nlu.c src/nlu.c src/nlu-rules.c src/normalize.c src/catalog.c src/ini.c \
 *         src/diag.c src/alloc.c src/strutil.c $(pkg-config --cflags --libs libpcre2-8 jansson) -o fuzz-nlu
 *   ./fuzz-nlu -runs=0 tests/fuzz/corpus/nlu              # replay the corpus, as CI does
 *   mkdir -p new && ./fuzz-nlu -max_len=4096 new tests/fuzz/corpus/nlu   # fuzz; finds go to new/
 *
 * Security: feeds untrusted bytes to the normaliser and the patterns;
 * that is the point.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "catalog.h"
#include "nlu-rules.h"
#include "normalize.h"

#ifndef FUZZ_ETC
#define FUZZ_ETC "etc"
#endif
#define MAX_INPUT 4096

static Catalog *catalog;
static NluRules *rules;

static void load_once(void) {
        Diags d = {};

        if (rules)
                return;
        alloc_init();
        if (catalog_load(FUZZ_ETC "/catalog.conf", FUZZ_ETC "/zones.conf", &catalog, &d) < 0 ||
            nlu_rules_load(FUZZ_ETC "/nlu/intents.conf", catalog, &rules, &d) < 0) {
                for (size_t i = 0; i < d.n; i++)
                        fprintf(stderr, "%s\n", d.lines[i]);
                abort();
        }
        diags_clear(&d);
}

static void check_one_line(const char *s) {
        if (!normalize_utf8_valid(s, strlen(s)))
                abort();
        for (const unsigned char *p = (const unsigned char *) s; *p; p++)
                if (*p < 0x20 || *p == 0x7F)
                        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        NluResult *r = NULL;
        char *json;
        json_t *back;

        load_once();
        if (nlu_rules_parse(rules, (const char *) data, size, MAX_INPUT, &r) < 0)
                abort(); /* only -ENOMEM can fail, and nothing is injected here */

        if (!nlu_intent_to_string(r->intent) || !nlu_lang_to_string(r->lang))
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
                check_one_line(r->address);
                if (!r->address[0] || r->address[0] == ' ' || r->address[strlen(r->address) - 1] == ' ')
                        abort();
        }
        if (r->change_for_cents < 0)
                abort();

        json = nlu_result_to_json(r);
        if (!json)
                abort();
        check_one_line(json);
        back = json_loads(json, 0, NULL);
        if (!json_is_object(back) || json_object_size(back) != 6)
                abort();
        json_decref(back);
        free(json);
        nlu_result_free(r);
        return 0;
}
