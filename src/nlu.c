/* SPDX-License-Identifier: MIT */
/*
 * nlu.c — the names of intents, languages and payment methods, the result
 * and its JSON form, and the table of backends chosen by nlu.backend.
 * Adding a backend is one file and one row in backends[].
 *
 * Security: see nlu.h.  The JSON comes from jansson, which refuses
 * strings that are not UTF-8; every string put in it is valid already
 * (the address is cleaned by normalize_clean_span(), the rest is ASCII).
 */
#include "nlu.h"

#include <jansson.h>
#include <string.h>

#include "alloc.h"
#include "nlu-rules.h"
#include "snapshot.h"

static const char *const intent_table[_NLU_INTENT_MAX] = {
        [NLU_INTENT_PLACE_ORDER] = "place_order",
        [NLU_INTENT_ORDER_STATUS] = "order_status",
        [NLU_INTENT_ORDER_ETA] = "order_eta",
        [NLU_INTENT_CHANGE_ADDRESS] = "change_address",
        [NLU_INTENT_CANCEL_ORDER] = "cancel_order",
        [NLU_INTENT_MENU] = "menu",
        [NLU_INTENT_CONFIRM] = "confirm",
        [NLU_INTENT_DENY] = "deny",
        [NLU_INTENT_OPT_OUT] = "opt_out",
        [NLU_INTENT_HELP] = "help",
        [NLU_INTENT_HUMAN] = "human",
        [NLU_INTENT_OTHER] = "other",
};

static const char *const lang_table[_NLU_LANG_MAX] = {
        [NLU_LANG_PT] = "pt",
        [NLU_LANG_EN] = "en",
};

static const char *const payment_table[_NLU_PAYMENT_MAX] = {
        [NLU_PAYMENT_PIX] = "pix",
        [NLU_PAYMENT_CARD] = "card",
        [NLU_PAYMENT_CASH] = "cash",
};

static const char *const signal_table[_NLU_SIGNAL_MAX] = {
        [NLU_SIGNAL_OPT_IN] = "opt_in",
        [NLU_SIGNAL_REMOVE] = "remove",
        [NLU_SIGNAL_REPLACE] = "replace",
};

static const char *name_of(const char *const *table, int max, int v) {
        return v >= 0 && v < max ? table[v] : NULL;
}

static int value_of(const char *const *table, int max, const char *s) {
        for (int i = 0; s && i < max; i++)
                if (streq(table[i], s))
                        return i;
        return -EINVAL;
}

const char *nlu_intent_to_string(NluIntent i) {
        return name_of(intent_table, _NLU_INTENT_MAX, i);
}
NluIntent nlu_intent_from_string(const char *s) {
        return (NluIntent) value_of(intent_table, _NLU_INTENT_MAX, s);
}
const char *nlu_lang_to_string(NluLang l) {
        return name_of(lang_table, _NLU_LANG_MAX, l);
}
NluLang nlu_lang_from_string(const char *s) {
        return (NluLang) value_of(lang_table, _NLU_LANG_MAX, s);
}
const char *nlu_payment_to_string(NluPayment p) {
        return name_of(payment_table, _NLU_PAYMENT_MAX, p);
}
NluPayment nlu_payment_from_string(const char *s) {
        return (NluPayment) value_of(payment_table, _NLU_PAYMENT_MAX, s);
}
const char *nlu_signal_to_string(NluSignal g) {
        return name_of(signal_table, _NLU_SIGNAL_MAX, g);
}
NluSignal nlu_signal_from_string(const char *s) {
        return (NluSignal) value_of(signal_table, _NLU_SIGNAL_MAX, s);
}

NluResult *nlu_result_new(NluLang lang) {
        NluResult *r = mem_new(NluResult, 1);

        if (!r)
                return NULL;
        r->intent = NLU_INTENT_OTHER;
        r->lang = lang;
        r->payment = _NLU_PAYMENT_INVALID;
        return r;
}

NluResult *nlu_result_free(NluResult *r) {
        if (!r)
                return NULL;
        for (size_t i = 0; i < r->n_items; i++)
                free(r->items[i].sku);
        free(r->items);
        free(r->address);
        free(r);
        return NULL;
}

int nlu_result_add_item(NluResult *r, const char *sku, unsigned qty) {
        for (size_t i = 0; i < r->n_items; i++)
                if (streq(r->items[i].sku, sku)) {
                        r->items[i].qty = MIN(r->items[i].qty + qty, NLU_QTY_MAX);
                        return 0;
                }
        NluItem *v = mem_realloc(r->items, (r->n_items + 1) * sizeof(NluItem));
        if (!v)
                return -ENOMEM;
        r->items = v;
        r->items[r->n_items].sku = mem_strdup(sku);
        if (!r->items[r->n_items].sku)
                return -ENOMEM;
        r->items[r->n_items].qty = MIN(qty, NLU_QTY_MAX);
        r->n_items++;
        return 0;
}

static json_t *string_or_null(const char *s) {
        return s && *s ? json_string(s) : json_null();
}

char *nlu_result_to_json(const NluResult *r) {
        json_t *o = json_object(), *items = json_array();
        char *s = NULL;
        int k = 0;

        if (!o || !items)
                goto finish;
        for (size_t i = 0; i < r->n_items && k == 0; i++) {
                json_t *it = json_object();
                if (!it)
                        goto finish;
                k |= json_object_set_new(it, "sku", json_string(r->items[i].sku));
                k |= json_object_set_new(it, "qty", json_integer((json_int_t) r->items[i].qty));
                k |= json_array_append_new(items, it); /* steals it, also on failure */
        }
        /* json_object_set_new() takes the value's reference even when it fails */
        k |= json_object_set_new(o, "intent", string_or_null(nlu_intent_to_string(r->intent)));
        k |= json_object_set_new(o, "lang", string_or_null(nlu_lang_to_string(r->lang)));
        k |= json_object_set_new(o, "items", TAKE_PTR(items));
        k |= json_object_set_new(o, "payment", string_or_null(nlu_payment_to_string(r->payment)));
        k |= json_object_set_new(o, "address", string_or_null(r->address));
        k |= json_object_set_new(o, "order_id", string_or_null(r->order_id));
        if (k == 0)
                s = mem_json_dumps(o, 0); /* one line, ", " and ": " between items */
finish:
        json_decref(items);
        json_decref(o);
        return s;
}

/* ---- backends ------------------------------------------------------------ */

typedef struct NluBackendOps {
        int (*parse)(const Snapshot *s, const char *text, size_t len, NluResult **ret);
} NluBackendOps;

static int rules_parse(const Snapshot *s, const char *text, size_t len, NluResult **ret) {
        return nlu_rules_parse(s->nlu_rules, text, len, s->config->nlu_max_input, ret);
}

static const NluBackendOps backends[_NLU_BACKEND_MAX] = {
        [NLU_RULES] = { .parse = rules_parse },
        /* [NLU_BEDROCK]: asynchronous, in nlu-client.c (nlu-bedrock.c);
         * here, without a loop, the rules answer. */
};

int nlu_parse(const Snapshot *s, const char *text, size_t len, NluResult **ret) {
        int b = s->config->nlu_backend;

        if (b >= 0 && b < _NLU_BACKEND_MAX && backends[b].parse && b != NLU_RULES) {
                int r = backends[b].parse(s, text, len, ret);
                if (r >= 0 || r == -ENOMEM)
                        return r;
        }
        return backends[NLU_RULES].parse(s, text, len, ret);
}
