/* SPDX-License-Identifier: MIT */
/*
 * chat.h — the conversation's driver: takes each customer's messages from
 * the inbox in order, has them understood (nlu-client.h), runs one turn of
 * the conversation (conversation.h) and commits, in ONE transaction, the
 * new conversation state, the replies in the outbox, an opt-out change,
 * the order a SIM creates, and the inbox message marked done.  A crash
 * before that commit leaves the message active; it is handed on again
 * after the restart and the turn is run again from the same state.
 *
 * What it does to orders goes through ChatHooks, so the same driver works
 * whatever runs the workflow.
 *
 * Security: customer data only flows through; e-mail replies are threaded
 * with the customer's own Message-IDs, and a reply's In-Reply-To is only
 * ever matched against messages this daemon sent to the same customer.
 */
#pragma once

#include <jansson.h>
#include <systemd/sd-event.h>

#include "conversation.h"
#include "inbox.h"
#include "macro.h"
#include "metrics.h"
#include "nlu-client.h"
#include "outbox.h"
#include "store.h"

typedef struct Chat Chat;

/* How the driver reaches orders.  Every callback runs inside the turn's
 * transaction (or none, for stock and find_order) and returns -errno on
 * failure, which rolls the turn back. */
typedef struct ChatHooks {
        int64_t (*stock)(void *userdata, const char *sku); /* see ConvEnv */
        int (*find_order)(void *userdata, const char *customer, const char *id, ConvOrder *ret);
        /* Create d for customer (reached by e-mail when email; thread_id and
         * subject, may be NULL: the customer's mail that confirmed it, for the
         * order's notifications to thread) and start its workflow; the new id
         * in ret_id. */
        int (*create_order)(void *userdata, const char *customer, bool email, const char *thread_id,
                            const char *subject, const ConvDraft *d, char ret_id[static NLU_ORDER_ID_LEN + 1]);
        /* The customer asked to cancel order_id, or to deliver it to address.
         * 0: handed over (the conversation's own reply goes); 1: refused and
         * answered with the reason (the conversation's reply does not go). */
        int (*order_request)(void *userdata, const char *customer, ConvRequestKind kind, const char *order_id,
                             const char *address);
        void *userdata;
} ChatHooks;

typedef struct ChatContext {
        sd_event *event;
        Store *store;
        Inbox *inbox;
        Outbox *outbox;
        NluClient *nlu;
        Metrics *metrics; /* may be NULL */
        Snapshot *(*snapshot)(void *userdata); /* the current one (borrowed) */
        void *userdata;
        ChatHooks hooks;
} ChatContext;

/* Set up the driver; nothing is taken from the inbox before chat_start().  -errno. */
int chat_new(const ChatContext *ctx, Chat **ret);
/* Turns waiting for their understanding are dropped: their messages stay
 * active in the inbox and are handed on again at the next start. */
Chat *chat_free(Chat *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(Chat *, chat_free);

/* Become the inbox's consumer.  -errno. */
int chat_start(Chat *c);

/* Turns handed on and not yet committed. */
unsigned chat_n_busy(const Chat *c);

/* The stored conversation of customer as JSON (new reference), or NULL
 * with -ENOENT / -errno in *ret_error. */
json_t *chat_conversation_json(Chat *c, const char *customer, int *ret_error);

/* End the handoff of customer's conversation: the assistant answers
 * again, and says so.  Commits.  -ENOENT no conversation, -ESRCH not in
 * handoff, -errno. */
int chat_resume(Chat *c, const char *customer);
