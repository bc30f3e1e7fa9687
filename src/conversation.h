/* SPDX-License-Identifier: MIT */
/*
 * conversation.h — what the daemon says back to a customer, and what it
 * does about what they said: the conversation as a pure state machine.
 * conversation_turn() takes the stored state of one customer's
 * conversation and one understood message, and returns the new state and
 * the actions (replies, opt-out changes, an order to create, a request
 * about an existing order, an alert to the store).  It does no I/O: what
 * it needs to know of the world (stock left, this customer's orders) it
 * asks through ConvEnv, and the driver (chat.c) performs the actions and
 * stores the state in one transaction.
 *
 *   idle ──items/address/payment──> ordering ──(all there)──> await_confirm
 *     ^        │  unknown place: await_neighbourhood ─┘    SIM │   │ NÃO
 *     │        └────────────────────────────────────────<──────┘   │
 *     └──────── order created (handed to the workflow) <───────────┘
 *   any ──human──> handoff (silent) ──resume / timeout──> where it was
 *   any ──STOP──> opted out (silent) ──START──> idle
 *
 * Security: the text and the understanding of it are untrusted customer
 * input; prices, fees and totals only ever come from the catalog and the
 * zones; a customer's questions only ever reach their own orders.
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "macro.h"
#include "nlu.h"
#include "snapshot.h"

typedef enum ConvPhase {
        CONV_IDLE,
        CONV_ORDERING, /* filling the cart, the address, the payment */
        CONV_AWAIT_NEIGHBOURHOOD, /* the address could not be placed: which neighbourhood? */
        CONV_AWAIT_CONFIRM, /* the summary was sent: SIM / NÃO */
        CONV_AWAIT_CANCEL, /* "cancel order #X?" was asked */
        CONV_AWAIT_NEW_ADDRESS, /* the new address of order #X was asked for */
        CONV_AWAIT_ADDRESS_FEE, /* the new address changes the fee: SIM / NÃO */
        CONV_HANDOFF, /* a person from the store answers; the bot is silent */
        _CONV_PHASE_MAX,
        _CONV_PHASE_INVALID = -EINVAL,
} ConvPhase;

const char *conv_phase_to_string(ConvPhase p);
ConvPhase conv_phase_from_string(const char *s);

typedef struct ConvItem {
        char *sku;
        unsigned qty;
} ConvItem;

/* One customer's conversation, as stored (conv_state_to_json()). */
typedef struct ConvState {
        ConvPhase phase;
        ConvPhase before_handoff; /* where a resume goes back to */
        NluLang lang;
        bool lang_set; /* lang came from the customer's words, not a default */
        ConvItem *items;
        size_t n_items;
        char *last_sku; /* the item a bare quantity refers to ("na verdade 3") */
        char *address;
        char *zone; /* zone id, when the address was placed */
        NluPayment payment; /* _NLU_PAYMENT_INVALID: not given yet */
        int64_t change_for_cents;
        char order_id[NLU_ORDER_ID_LEN + 1]; /* the order a pending cancel or address change is about */
        uint64_t updated_usec; /* last message, for expiry */
        uint64_t handoff_until_usec;
} ConvState;

/* A fresh conversation in lang.  NULL on OOM. */
ConvState *conv_state_new(NluLang lang);
ConvState *conv_state_free(ConvState *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(ConvState *, conv_state_free);

/* The state as a JSON object (new reference, NULL on OOM), and back:
 * 0 and a new state, -EINVAL for a value that is not one, -ENOMEM. */
json_t *conv_state_to_json(const ConvState *s);
int conv_state_from_json(json_t *j, ConvState **ret);

/* An order of this customer, as the conversation sees it. */
typedef struct ConvOrder {
        char id[NLU_ORDER_ID_LEN + 1];
        char status[16]; /* "CREATED" … "CANCELLED" */
        uint64_t eta_usec; /* 0: not known */
        int64_t fee_cents, total_cents; /* its delivery fee and total now */
} ConvOrder;

typedef struct ConvEnv {
        const Snapshot *snapshot;
        uint64_t now_usec;
        /* Units of sku left to sell; a negative value: not known, use the catalog's stock. */
        int64_t (*stock)(void *userdata, const char *sku);
        /* customer's order id (NULL: their latest active one): 1 and *ret,
         * 0 when there is none — another customer's order is none —, -errno. */
        int (*find_order)(void *userdata, const char *customer, const char *id, ConvOrder *ret);
        void *userdata;
} ConvEnv;

typedef struct ConvInput {
        const char *customer; /* E.164 or e-mail address */
        bool email; /* the message came by e-mail (else SMS) */
        const NluResult *nlu;
        const char *text; /* the customer's words, for the store's alert */
        bool opted_out; /* as the outbox has it now */
        bool unauthenticated; /* an e-mail whose sender failed DMARC, or SPF and DKIM: no orders */
} ConvInput;

typedef enum ConvOptChange {
        CONV_OPT_KEEP,
        CONV_OPT_OUT, /* record STOP before the confirmation */
        CONV_OPT_IN, /* record START */
} ConvOptChange;

typedef struct ConvLine {
        char *sku;
        char *name; /* in the customer's language */
        unsigned qty;
        int64_t unit_price_cents;
} ConvLine;

/* The order a SIM creates: every amount from the catalog and the zones. */
typedef struct ConvDraft {
        ConvLine *lines;
        size_t n_lines;
        char *address;
        char *zone; /* id */
        int64_t subtotal_cents, fee_cents, total_cents;
        NluPayment payment;
        int64_t change_for_cents;
        NluLang lang;
        uint64_t eta_usec; /* absolute */
} ConvDraft;

typedef enum ConvRequestKind {
        CONV_REQUEST_NONE,
        CONV_REQUEST_CANCEL,
        CONV_REQUEST_CHANGE_ADDRESS,
} ConvRequestKind;

typedef struct ConvActions {
        char **replies; /* texts to the customer, in order (NULL-terminated strv) */
        bool opt_out_confirmation; /* the replies confirm STOP: sent although opted out */
        ConvOptChange opt;
        char *alert; /* a text to the store (conversation.handoff_to), or NULL */
        ConvDraft *create; /* an order to create, or NULL: then conversation_placed() gives the reply */
        char about_order[NLU_ORDER_ID_LEN + 1]; /* the order the replies are about, "" for none */
        ConvRequestKind request;
        char request_order[NLU_ORDER_ID_LEN + 1];
        char *request_address;
        const char *why; /* what happened, for the log: a static string */
} ConvActions;

void conv_actions_done(ConvActions *a);
ConvDraft *conv_draft_free(ConvDraft *d);

/* One turn: in was understood; update s and fill *out (zeroed by the
 * caller).  Returns 0, -ENOMEM, or an env callback's -errno; on failure s
 * may be half changed and must not be stored. */
int conversation_turn(const ConvEnv *env, ConvState *s, const ConvInput *in, ConvActions *out);

/* The reply after the driver created d as order id.  0 and a new string, -ENOMEM. */
int conversation_placed(const ConvEnv *env, const ConvDraft *d, const char *id, char **ret);

/* An operator ended the handoff: back where it was, with a reply.
 * -ESRCH when s is not in handoff. */
int conversation_resume(const ConvEnv *env, ConvState *s, ConvActions *out);

/* Whether an idle conversation has expired at now (the driver's sweep). */
bool conversation_expired(const ConvEnv *env, const ConvState *s);

/* "19:45" in the store's time zone (the process's TZ).  buf ≥ 8 bytes. */
void conv_format_clock(uint64_t usec, char *buf, size_t size);
