/* SPDX-License-Identifier: MIT */
/*
 * nlu.h — what a customer's message means: one intent, the language it is
 * written in, and the pieces an order needs (items, payment method,
 * address, order id).  The interface the conversation calls; the work is
 * done by a backend chosen by name with nlu.backend (a table in nlu.c:
 * "rules", nlu-rules.c, offline; "bedrock", nlu-bedrock.c, answers over
 * the network and so only through nlu-client.h, falling back to the
 * rules).  An NluResult prints as the JSON object of
 * "deliveryctl parse" (DESIGN.md's public contract).
 *
 * Security: the text is untrusted customer input (SMS, mail); see the
 * backend for how it is bounded.  The JSON written is valid UTF-8 whatever
 * the input.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"

typedef struct Snapshot Snapshot;

typedef enum NluIntent {
        NLU_INTENT_PLACE_ORDER,
        NLU_INTENT_ORDER_STATUS,
        NLU_INTENT_ORDER_ETA,
        NLU_INTENT_CHANGE_ADDRESS,
        NLU_INTENT_CANCEL_ORDER,
        NLU_INTENT_MENU,
        NLU_INTENT_CONFIRM,
        NLU_INTENT_DENY,
        NLU_INTENT_OPT_OUT,
        NLU_INTENT_HELP,
        NLU_INTENT_HUMAN,
        NLU_INTENT_OTHER,
        _NLU_INTENT_MAX,
        _NLU_INTENT_INVALID = -EINVAL,
} NluIntent;

typedef enum NluLang {
        NLU_LANG_PT,
        NLU_LANG_EN,
        _NLU_LANG_MAX,
        _NLU_LANG_INVALID = -EINVAL,
} NluLang;

typedef enum NluPayment {
        NLU_PAYMENT_PIX,
        NLU_PAYMENT_CARD, /* credit or debit, on delivery */
        NLU_PAYMENT_CASH,
        _NLU_PAYMENT_MAX,
        _NLU_PAYMENT_INVALID = -EINVAL, /* also: the message names none */
} NluPayment;

/* What else a message says, beside its intent: signals the conversation
 * reads (from [signal NAME] sections of the rules; not part of the parse
 * contract's JSON). */
typedef enum NluSignal {
        NLU_SIGNAL_OPT_IN, /* START, VOLTAR: messages wanted again */
        NLU_SIGNAL_REMOVE, /* "tira a coca", "no fries": the items named leave the cart */
        NLU_SIGNAL_REPLACE, /* "na verdade 3", "make it 2": quantities replace, not add */
        _NLU_SIGNAL_MAX,
        _NLU_SIGNAL_INVALID = -EINVAL,
} NluSignal;

/* "place_order" … "other"; NULL for a value out of range. */
const char *nlu_intent_to_string(NluIntent i);
NluIntent nlu_intent_from_string(const char *s);
/* "pt", "en". */
const char *nlu_lang_to_string(NluLang l);
NluLang nlu_lang_from_string(const char *s);
/* "pix", "card", "cash". */
const char *nlu_payment_to_string(NluPayment p);
NluPayment nlu_payment_from_string(const char *s);
/* "opt_in", "remove", "replace". */
const char *nlu_signal_to_string(NluSignal g);
NluSignal nlu_signal_from_string(const char *s);

#define NLU_QTY_MAX 99u
#define NLU_ORDER_ID_LEN 6

typedef struct NluItem {
        char *sku; /* a catalog SKU; sold-out products are recognised too */
        unsigned qty; /* 1 … NLU_QTY_MAX */
} NluItem;

typedef struct NluResult {
        NluIntent intent;
        NluLang lang;
        NluItem *items; /* in the order the message names them, one per SKU */
        size_t n_items;
        NluPayment payment; /* _NLU_PAYMENT_INVALID when the message names none */
        int64_t change_for_cents; /* cash: "troco para 100" → 10000; 0 when not said */
        char *address; /* as the customer wrote it (valid UTF-8, one line), or NULL */
        char order_id[NLU_ORDER_ID_LEN + 1]; /* canonical (upper case, I/L→1, O→0), "" when none */
        unsigned signals; /* bit (1u << NluSignal) for each signal found */
        unsigned bare_qty; /* a quantity that names no product ("na verdade 3"), 0 when none */
} NluResult;

static inline bool nlu_result_has(const NluResult *r, NluSignal g) {
        return r && (r->signals & (1u << g));
}

/* An empty result: intent other, the given language, nothing else.  NULL on OOM. */
NluResult *nlu_result_new(NluLang lang);
/* Frees r with its items and address (NULL is fine); returns NULL. */
NluResult *nlu_result_free(NluResult *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(NluResult *, nlu_result_free);

/* Add qty of sku, or add qty to the row that sku already has (capped at
 * NLU_QTY_MAX).  -ENOMEM. */
int nlu_result_add_item(NluResult *r, const char *sku, unsigned qty);

/* The result as the one-line JSON object of "deliveryctl parse":
 * {"intent": …, "lang": …, "items": [{"sku": …, "qty": …}], "payment": …|null,
 *  "address": …|null, "order_id": …|null}.  Caller frees; NULL on OOM. */
char *nlu_result_to_json(const NluResult *r);

/* Understand len bytes of text (any bytes) with the backend that s's
 * nlu.backend names, and s's rules and catalog.  Returns 0 and a new
 * NluResult in *ret (the caller frees it), -ENOMEM. */
int nlu_parse(const Snapshot *s, const char *text, size_t len, NluResult **ret);
