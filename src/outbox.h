/* SPDX-License-Identifier: MIT */
/*
 * outbox.h — the durable outbox: every message to a customer (SMS or
 * e-mail) is a row of the outbox table before anything tries to send it,
 * committed in the same transaction as the state change that produced it.
 * A sender on the loop picks the rows that are due, marks them 'sending'
 * in a transaction, hands each to its channel's transport (chosen by name:
 * "log", "sns", "eum"; "smtp" later) and records the outcome in another:
 *
 *   queued ──> sending ──> sent
 *     ^           │  └───> deferred (TEMPFAIL: backoff with jitter) ──> sending …
 *     │           └──────> failed   (PERMFAIL, past its lifetime, opted out)
 *     └─ at start, rows left in 'sending' by a crash (possible_duplicate = 1)
 *
 * SMS starts are limited by a token bucket (sms.max_per_second).  On
 * SIGTERM the sender stops starting sends; those in flight finish; the
 * rest stays in the store for the next start.
 *
 * Security: recipients and bodies are produced by the daemon from customer
 * data; they are stored with bound parameters and never logged, except
 * the recipient.
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "macro.h"
#include "metrics.h"
#include "store.h"

typedef enum OutboxChannel {
        OUTBOX_SMS,
        OUTBOX_EMAIL,
        _OUTBOX_CHANNEL_MAX,
        _OUTBOX_CHANNEL_INVALID = -EINVAL,
} OutboxChannel;

typedef enum OutboxStatus {
        OUTBOX_QUEUED,
        OUTBOX_SENDING,
        OUTBOX_SENT,
        OUTBOX_DEFERRED,
        OUTBOX_FAILED,
        _OUTBOX_STATUS_MAX,
        _OUTBOX_STATUS_INVALID = -EINVAL,
} OutboxStatus;

/* What a transport says about one send. */
typedef enum OutboxResult {
        OUTBOX_RESULT_OK, /* accepted by the provider: sent */
        OUTBOX_RESULT_TEMPFAIL, /* try again later */
        OUTBOX_RESULT_PERMFAIL, /* never going to work: failed */
        _OUTBOX_RESULT_MAX,
} OutboxResult;

const char *outbox_channel_to_string(OutboxChannel c);
OutboxChannel outbox_channel_from_string(const char *s);
const char *outbox_status_to_string(OutboxStatus s);
OutboxStatus outbox_status_from_string(const char *s);

/* A message to enqueue.  Strings are borrowed (copied into the store). */
typedef struct OutboxMessage {
        OutboxChannel channel;
        const char *to; /* E.164 phone (sms) or e-mail address */
        const char *body; /* UTF-8 */
        const char *subject, *in_reply_to, *references, *message_id; /* e-mail only, may be NULL */
        const char *order_id; /* may be NULL */
        bool opt_out_confirmation; /* the STOP confirmation: sent even to an opted-out customer */
} OutboxMessage;

/* One message handed to a transport; valid during send() only. */
typedef struct OutboxDelivery {
        int64_t id;
        OutboxChannel channel;
        const char *to, *body;
        const char *subject, *in_reply_to, *references, *message_id;
        unsigned attempt; /* 1 for the first */
        bool possible_duplicate; /* an earlier attempt may have reached the customer */
} OutboxDelivery;

/* Called exactly once per send(), from inside send() or later from the
 * loop.  transport_id (the provider's id, may be NULL) and error (why it
 * did not work, may be NULL) are copied. */
typedef void (*OutboxSendDone)(void *done_data, OutboxResult result, const char *transport_id, const char *error);

/* A transport: one table row per backend (outbox-log.c, outbox-sns.c, outbox-eum.c; smtp later). */
typedef struct OutboxTransport {
        const char *name;
        /* Start sending d.  0: done will be called; -errno: it will not
         * (counted as TEMPFAIL).  userdata is OutboxOptions.transport_data[channel]. */
        int (*send)(void *userdata, const OutboxDelivery *d, OutboxSendDone done, void *done_data);
} OutboxTransport;

/* The transports this build has, by name; NULL when unknown. */
const OutboxTransport *outbox_transport_find(const char *name);

#define OUTBOX_BACKOFF_BASE_USEC (30 * USEC_PER_SEC)
#define OUTBOX_BACKOFF_MIN_USEC (10 * USEC_PER_SEC)
#define OUTBOX_BACKOFF_MAX_USEC (15 * 60 * USEC_PER_SEC)
#define OUTBOX_MAX_IN_FLIGHT 16

/* The current time, microseconds since the epoch (UTC). */
typedef uint64_t (*OutboxClock)(void *userdata);

typedef struct OutboxOptions {
        const OutboxTransport *transport[_OUTBOX_CHANNEL_MAX]; /* NULL: that channel is not sent */
        void *transport_data[_OUTBOX_CHANNEL_MAX]; /* each channel's transport's own state */
        uint64_t lifetime_usec[_OUTBOX_CHANNEL_MAX]; /* a message older than this fails as expired */
        uint64_t sms_max_per_second; /* SMS sends started per second; 0: unlimited */
        uint64_t backoff_base_usec, backoff_min_usec, backoff_max_usec; /* 0: the OUTBOX_BACKOFF_* */
        unsigned max_in_flight; /* 0: OUTBOX_MAX_IN_FLIGHT */
        Metrics *metrics; /* may be NULL */
        OutboxClock clock; /* NULL: CLOCK_REALTIME; tests inject their own */
        void *clock_data;
} OutboxOptions;

typedef struct Outbox Outbox;

/* Create the outbox on store.  Rows left in 'sending' by a crash go back
 * to 'queued' with possible_duplicate = 1 (counted).  Nothing is sent
 * before outbox_start().  -errno. */
int outbox_new(sd_event *e, Store *store, const OutboxOptions *o, Outbox **ret);

/* Sends in flight are forgotten: their rows stay 'sending' and are sent
 * again (flagged) at the next start. */
Outbox *outbox_free(Outbox *ob);
DEFINE_TRIVIAL_CLEANUP_FUNC(Outbox *, outbox_free);

/* Start sending what is due, now and whenever more becomes due. */
int outbox_start(Outbox *ob);

/* Start no new sends (drain); those in flight finish and are recorded. */
void outbox_stop(Outbox *ob);

/* Insert m as 'queued', due now, WITHOUT beginning or committing: call it
 * inside the caller's transaction (store_begin() … store_commit()), then
 * outbox_kick() after the commit.  *ret_id (may be NULL): the row id.
 * An e-mail address is stored lower-cased.  -EINVAL for a bad channel,
 * recipient or body; -ENOMEM; -errno from the store. */
int outbox_enqueue_in_txn(Outbox *ob, const OutboxMessage *m, int64_t *ret_id);

/* Something was committed: look for due messages from the loop. */
void outbox_kick(Outbox *ob);

/* Start what is due now (normally from the loop).  0, or -ENOMEM / -errno
 * when it had to stop early (what was not started stays queued). */
int outbox_send_due(Outbox *ob);

/* When (outbox clock, usec) the sender wants to look again: the next
 * deferred message or SMS token; 0 when nothing is waiting.  For tests. */
uint64_t outbox_next_wakeup(Outbox *ob);

/* Sends handed to a transport and not yet recorded. */
unsigned outbox_n_in_flight(Outbox *ob);

/* ---- opt-out ------------------------------------------------------------ */

/* 1 when customer (E.164 or e-mail address) opted out, 0 when not, -errno. */
int outbox_customer_opted_out(Outbox *ob, const char *customer);

/* Record STOP (true) or START (false) without committing: inside the
 * conversation's transaction.  -errno. */
int outbox_set_opt_out_in_txn(Outbox *ob, const char *customer, bool opted_out);

/* ---- operator ----------------------------------------------------------- */

/* A failed or deferred message back to 'queued', due now, with a fresh
 * lifetime; commits.  -ENOENT unknown id; -EBUSY any other status, with
 * that status in *ret_status (static string, may be NULL). */
int outbox_retry(Outbox *ob, int64_t id, const char **ret_status);

/* A queued, deferred or failed message to 'failed' with last_error
 * 'dropped by operator'; commits.  -ENOENT unknown id; -EBUSY when sent or
 * being sent (status in *ret_status). */
int outbox_drop(Outbox *ob, int64_t id, const char **ret_status);

/* The newest limit rows, oldest first: id, channel, to, body, status,
 * attempts, order_id, created_at (RFC 3339), and more.  New reference or NULL. */
json_t *outbox_list_json(Outbox *ob, unsigned limit);

/* Counts by status, {"queued": n, …}.  New reference or NULL. */
json_t *outbox_counts_json(Outbox *ob);
