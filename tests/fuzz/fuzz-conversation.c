/* SPDX-License-Identifier: MIT */
/*
 * fuzz-conversation.c — libFuzzer harness for the conversation: the input
 * is up to 16 customer messages, one per line (any bytes), read by the
 * rules with the demo store's snapshot and run through conversation_turn()
 * one after the other, with a fixed world (stock from the catalog, one
 * order "7KQ2XM" of this customer).  What conversation.h promises is
 * checked after every turn: every reply valid UTF-8 and non-empty, the
 * state read back from its JSON the same, an order created only with
 * lines, its total the sum of its lines and its fee, all from the catalog.
 * The committed corpus is tests/fuzz/corpus/conversation/.
 *
 * Not built by "make"; see fuzz-nlu.c for the clang line (add the
 * conversation, template, sms-text, snapshot, conf and catalog sources).
 *
 * Security: feeds untrusted customer text through the whole understanding
 * and the state machine; that is the point.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "conversation.h"
#include "normalize.h"
#include "snapshot.h"
#include "strutil.h"

#ifndef FUZZ_ETC
#define FUZZ_ETC "etc"
#endif
#define MESSAGES_MAX 16

static Snapshot *snap;

static void load_once(void) {
        Diags d = {};

        if (snap)
                return;
        alloc_init();
        if (snapshot_load(FUZZ_ETC "/deliveryd.conf", NULL, &snap, &d) < 0) {
                for (size_t i = 0; i < d.n; i++)
                        fprintf(stderr, "%s\n", d.lines[i]);
                abort();
        }
        diags_clear(&d);
}

static int find_order(void *userdata _unused_, const char *customer _unused_, const char *id, ConvOrder *ret) {
        if (id && !streq(id, "7KQ2XM"))
                return 0;
        *ret = (ConvOrder){ .id = "7KQ2XM", .status = "PREPARING", .eta_usec = 2000 * USEC_PER_SEC };
        return 1;
}

static void check_draft(const ConvDraft *d) {
        int64_t sub = 0;

        if (d->n_lines == 0 || !d->address || !d->zone || d->payment < 0)
                abort();
        for (size_t i = 0; i < d->n_lines; i++) {
                const CatalogItem *it = catalog_find_sku(snap->catalog, d->lines[i].sku);
                if (!it || it->price_cents != d->lines[i].unit_price_cents || d->lines[i].qty < 1)
                        abort();
                sub += d->lines[i].unit_price_cents * (int64_t) d->lines[i].qty;
        }
        if (sub != d->subtotal_cents || d->total_cents != sub + d->fee_cents)
                abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        ConvState *s;
        const char *p = (const char *) data, *end = p + size;
        uint64_t now = 1000 * USEC_PER_SEC;

        load_once();
        s = conv_state_new(NLU_LANG_PT);
        if (!s)
                return 0;
        for (unsigned n = 0; n < MESSAGES_MAX && p < end; n++) {
                const char *nl = memchr(p, '\n', (size_t) (end - p));
                size_t len = nl ? (size_t) (nl - p) : (size_t) (end - p);
                _cleanup_free_ char *text = mem_malloc(len + 1);
                NluResult *r = NULL;

                if (!text)
                        break;
                memcpy(text, p, len);
                text[len] = 0;
                p += len + (nl ? 1 : 0);
                if (nlu_parse(snap, text, len, &r) < 0)
                        break;
                ConvEnv env = { .snapshot = snap, .now_usec = now, .find_order = find_order };
                /* the text as the inbox keeps it: valid UTF-8 */
                _cleanup_free_ char *clean = normalize_clean_span(text, len);
                ConvInput in = { .customer = "+5511987654321", .nlu = r, .text = clean ?: "", .opted_out = n % 7 == 6 };
                ConvActions a = {};
                int k = conversation_turn(&env, s, &in, &a);
                if (k < 0 && k != -ENOMEM)
                        abort();
                for (char **q = a.replies; k >= 0 && q && *q; q++)
                        if (!**q || !normalize_utf8_valid(*q, strlen(*q)))
                                abort();
                if (k >= 0 && a.create)
                        check_draft(a.create);
                if (k >= 0) {
                        json_t *j = conv_state_to_json(s), *again = NULL;
                        ConvState *back = NULL;
                        if (j && conv_state_from_json(j, &back) >= 0) {
                                again = conv_state_to_json(back);
                                if (again && !json_equal(j, again))
                                        abort();
                        } else if (j)
                                abort(); /* what we wrote we must read */
                        json_decref(again);
                        json_decref(j);
                        conv_state_free(back);
                }
                conv_actions_done(&a);
                nlu_result_free(r);
                now += 60 * USEC_PER_SEC;
                if (k < 0)
                        break;
        }
        conv_state_free(s);
        return 0;
}
