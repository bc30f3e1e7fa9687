/* SPDX-License-Identifier: MIT */
/*
 * inbox.h — the durable inbox: every inbound message (SMS or e-mail, from
 * SNS, LMTP or deliveryctl inject) is committed here before anyone is told
 * it was received.  Submissions made during one turn of the loop are
 * committed together in one transaction ("group commit"), so durability
 * costs one fsync per batch, not per message.  Each message carries one or
 * more dedupe keys; a message any of whose keys is already stored — or is
 * earlier in the same batch — is a duplicate: acknowledged, not stored
 * again.
 *
 * Security: the fields are untrusted customer data; they are stored with
 * bound parameters and bounded by the callers' parsers.
 */
#pragma once

#include <jansson.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "macro.h"
#include "metrics.h"
#include "store.h"

#define INBOX_KEYS_MAX 4

typedef enum InboxChannel {
        INBOX_SMS,
        INBOX_EMAIL,
        _INBOX_CHANNEL_MAX,
        _INBOX_CHANNEL_INVALID = -EINVAL,
} InboxChannel;

typedef enum InboxSource {
        INBOX_SOURCE_SNS,
        INBOX_SOURCE_LMTP,
        INBOX_SOURCE_INJECT,
        _INBOX_SOURCE_MAX,
        _INBOX_SOURCE_INVALID = -EINVAL,
} InboxSource;

typedef enum InboxOutcome {
        INBOX_STORED, /* committed */
        INBOX_IGNORED, /* committed as ignored (loop, bounce, list …): never answered */
        INBOX_DUPLICATE, /* a key was already there: nothing stored, acknowledge */
        INBOX_FAILED, /* not committed: the sender must try again */
        _INBOX_OUTCOME_MAX,
} InboxOutcome;

const char *inbox_channel_to_string(InboxChannel c);
const char *inbox_source_to_string(InboxSource s);
const char *inbox_outcome_to_string(InboxOutcome o);

/* Count an outcome in deliveryd_inbound_total. */
void inbox_outcome_count(InboxOutcome o, Metrics *m);

/* One inbound message.  Strings are owned by the struct (inbox_message_free()). */
typedef struct InboxMessage {
        InboxChannel channel;
        InboxSource source;
        char *keys[INBOX_KEYS_MAX]; /* dedupe keys, at least one, NULL-terminated if fewer */
        char *customer; /* E.164 phone or lower-cased e-mail address */
        char *recipient; /* our number or address it was sent to */
        char *body; /* the customer's words, UTF-8 */
        char *subject, *message_id, *in_reply_to, *references;
        int authenticated; /* 1 yes, 0 no, -1 unknown */
        char *ignore_reason; /* non-NULL: store as ignored, never answer */
} InboxMessage;

InboxMessage *inbox_message_new(InboxChannel channel, InboxSource source);
InboxMessage *inbox_message_free(InboxMessage *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(InboxMessage *, inbox_message_free);
/* Add a dedupe key (copied).  -E2BIG when there are INBOX_KEYS_MAX already, -ENOMEM. */
int inbox_message_add_key(InboxMessage *m, const char *key);

typedef struct Inbox Inbox;
typedef struct InboxRequest InboxRequest;

/* Called once the batch holding the message is committed (or failed); id
 * is the stored row (or the original's, for a duplicate), 0 on failure. */
typedef void (*InboxDone)(void *userdata, InboxOutcome outcome, int64_t id);

int inbox_new(sd_event *e, Store *store, Inbox **ret);
Inbox *inbox_free(Inbox *ib);
DEFINE_TRIVIAL_CLEANUP_FUNC(Inbox *, inbox_free);

/* Queue m (ownership taken, also on failure) for the next group commit.
 * done runs from the loop after the commit.  *ret_request (may be NULL)
 * lets the caller cancel the callback if it goes away first; the message
 * is committed all the same.  -EINVAL for a message without key, customer
 * or body. */
int inbox_submit(Inbox *ib, InboxMessage *m, InboxDone done, void *userdata, InboxRequest **ret_request);

/* Called for every message stored (not duplicates, not ignored) inside
 * the batch's transaction, before it is committed and acknowledged: what
 * must be recorded before the sender is told "received" (a STOP) is
 * recorded here.  A negative return fails the whole batch (the senders
 * try again).  NULL: none. */
typedef int (*InboxStoreHook)(void *userdata, const InboxMessage *m, int64_t id);
void inbox_set_store_hook(Inbox *ib, InboxStoreHook hook, void *userdata);

/* The callback will not be called; the request is freed by the inbox. */
void inbox_request_cancel(InboxRequest *r);

/* Messages submitted whose senders have not been told yet (not committed,
 * or committed and not yet on disk). */
unsigned inbox_n_pending(Inbox *ib);

/* ---- handing messages on, per customer, in order ----------------------
 *
 * The consumer (the conversation) is given one message at a time per
 * customer, the oldest first; different customers' messages are handed on
 * side by side.  A message handed on is 'active' (in memory: the row says
 * 'incoming' until the consumer's own transaction marks it done, so that
 * handing on costs no commit of its own); when the consumer has committed
 * its effect it calls inbox_mark_done() inside that transaction and
 * inbox_release() after it, and that customer's next message follows.
 * After a crash, unfinished messages are handed on again, the oldest
 * first: the consumer's effects are idempotent per message id.  Listings
 * and counts show the active ones as 'active'. */

typedef struct InboxDelivery {
        int64_t id;
        InboxChannel channel;
        const char *customer;
        const char *recipient;
        const char *body;
        const char *subject, *message_id, *in_reply_to, *references;
        int authenticated;
} InboxDelivery;

/* Valid during the call only; copy what you keep. */
typedef void (*InboxConsumer)(void *userdata, const InboxDelivery *d);

/* Start handing messages on (also those waiting from before a restart). */
int inbox_set_consumer(Inbox *ib, InboxConsumer consumer, void *userdata);

/* Mark message id done ('done', or 'corrupt' when it could not be used)
 * without committing: call it inside the transaction that commits the
 * consumer's effect.  -ENOENT when id is not active. */
int inbox_mark_done(Inbox *ib, int64_t id, bool corrupt);

/* After that transaction committed: the customer's next message may go. */
void inbox_release(Inbox *ib, int64_t id);

/* The consumer could not handle message id for now (out of memory, a busy
 * store) and committed nothing of it: it is handed on again in a second,
 * not at once, so that a lasting failure does not spin the loop. */
void inbox_release_retry(Inbox *ib, int64_t id);

/* Customers whose message is with the consumer now. */
unsigned inbox_n_active(Inbox *ib);

/* The newest limit rows as JSON, oldest first: for deliveryctl.  New reference or NULL. */
json_t *inbox_list_json(Inbox *ib, unsigned limit);

/* Counts by status, {"incoming": n, …}.  New reference or NULL. */
json_t *inbox_counts_json(Inbox *ib);
