/* SPDX-License-Identifier: MIT */
/*
 * outbox.c — the durable outbox, its sender and the opt-out gate.
 *
 * The rows are the truth: the sender keeps in memory only what is in
 * flight, the SMS token and the timer; everything else is read back from
 * the table each time it looks for work.
 *
 * Security: see outbox.h.
 */
#include "outbox.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "alloc.h"
#include "customer.h"
#include "outbox-log.h"
#include "outbox-smtp.h"
#include "outbox-eum.h"
#include "outbox-sns.h"
#include "strutil.h"

/* A send handed to a transport.  When the outbox goes away first, outbox
 * is cleared and the answer is dropped (the row stays 'sending').  The
 * row's fields are copied at the claim: the transport sees them after the
 * claim's transaction, when the statement that read them is reused. */
typedef struct SendRequest {
        struct SendRequest *next, **prev_next; /* in flight, or answered */
        Outbox *outbox;
        int64_t id;
        OutboxChannel channel;
        char *to, *body, *subject, *in_reply_to, *references, *message_id;
        unsigned attempt;
        bool possible_duplicate;
        /* The transport's answer, kept here until the next group commit
         * of answers: recording one needs no allocation.  Longer ids and
         * errors are cut. */
        OutboxResult result;
        bool has_transport_id, has_error;
        char transport_id[128];
        char error[512];
        MetricId counted; /* what to count once committed; _METRIC_MAX none */
        StoreWaiter wait; /* claimed: until the claim is on disk */
} SendRequest;

/* Rows claimed in one transaction at most: their sends start after its
 * commit, so this bounds how long the loop is held at once. */
#define CLAIM_BATCH 64

struct Outbox {
        sd_event *event;
        Store *store;
        OutboxOptions options;
        sd_event_source *defer, *timer;
        SendRequest *in_flight;
        unsigned n_in_flight; /* claimed: waiting for the disk, or with a transport */
        /* Answers are recorded together, one transaction a loop turn,
         * oldest first: what a crash loses of them is rows left 'sending',
         * sent again and flagged as possible duplicates. */
        SendRequest *answered, **answered_tail;
        sd_event_source *outcome_defer;
        bool started, stopped;
        uint64_t next_token; /* SMS: the earliest the next send may start */
        uint64_t wakeup;
        uint64_t rng;
};

static const char *const channel_table[_OUTBOX_CHANNEL_MAX] = { [OUTBOX_SMS] = "sms", [OUTBOX_EMAIL] = "email" };
static const char *const status_table[_OUTBOX_STATUS_MAX] = {
        [OUTBOX_QUEUED] = "queued",     [OUTBOX_SENDING] = "sending", [OUTBOX_SENT] = "sent",
        [OUTBOX_DEFERRED] = "deferred", [OUTBOX_FAILED] = "failed",
};

const char *outbox_channel_to_string(OutboxChannel c) {
        return (unsigned) c < _OUTBOX_CHANNEL_MAX ? channel_table[c] : NULL;
}

OutboxChannel outbox_channel_from_string(const char *s) {
        for (int i = 0; s && i < _OUTBOX_CHANNEL_MAX; i++)
                if (streq(channel_table[i], s))
                        return (OutboxChannel) i;
        return _OUTBOX_CHANNEL_INVALID;
}

const char *outbox_status_to_string(OutboxStatus s) {
        return (unsigned) s < _OUTBOX_STATUS_MAX ? status_table[s] : NULL;
}

OutboxStatus outbox_status_from_string(const char *s) {
        for (int i = 0; s && i < _OUTBOX_STATUS_MAX; i++)
                if (streq(status_table[i], s))
                        return (OutboxStatus) i;
        return _OUTBOX_STATUS_INVALID;
}

static const OutboxTransport *const transports[] = {
        &outbox_transport_log,
        &outbox_transport_smtp,
        &outbox_transport_sns,
        &outbox_transport_eum,
};

const OutboxTransport *outbox_transport_find(const char *name) {
        for (size_t i = 0; name && i < ELEMENTSOF(transports); i++)
                if (streq(transports[i]->name, name))
                        return transports[i];
        return NULL;
}

static void count(Outbox *ob, MetricId sms_id, OutboxChannel c) {
        /* The metric rows come in (sms, email) pairs. */
        if (ob->options.metrics && (unsigned) c < _OUTBOX_CHANNEL_MAX)
                metrics_inc(ob->options.metrics, (MetricId) (sms_id + (int) c));
}

static uint64_t now(Outbox *ob) {
        struct timespec ts;

        if (ob->options.clock)
                return ob->options.clock(ob->options.clock_data);
        clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / NSEC_PER_USEC;
}

/* xorshift64*: jitter only, nothing secret. */
static uint64_t random_u64(Outbox *ob) {
        ob->rng ^= ob->rng >> 12;
        ob->rng ^= ob->rng << 25;
        ob->rng ^= ob->rng >> 27;
        return ob->rng * 2685821657736338717ULL;
}

static int exec_id(Outbox *ob, const char *sql, int64_t id, const char *what) {
        sqlite3_stmt *st = NULL;
        int rc;

        rc = store_prepare_rc(ob->store, sql, &st);
        if (rc == SQLITE_OK) {
                sqlite3_bind_int64(st, 1, id);
                rc = sqlite3_step(st);
        }
        store_finish(ob->store, st);
        return store_check(ob->store, rc == SQLITE_DONE ? SQLITE_OK : rc, what);
}

/* At start: what was being sent when we stopped may or may not have
 * reached the customer; send it again, flagged. */
static int requeue_sending(Outbox *ob) {
        int r = store_begin(ob->store);

        for (int c = 0; r >= 0 && c < _OUTBOX_CHANNEL_MAX; c++) {
                sqlite3_stmt *st = NULL;
                int rc = store_prepare_rc(ob->store,
                                          "UPDATE outbox SET status = 'queued', possible_duplicate = 1 "
                                          "WHERE status = 'sending' AND channel = ?",
                                          &st);
                if (rc == SQLITE_OK) {
                        sqlite3_bind_text(st, 1, channel_table[c], -1, SQLITE_STATIC);
                        rc = sqlite3_step(st);
                }
                store_finish(ob->store, st);
                r = store_check(ob->store, rc == SQLITE_DONE ? SQLITE_OK : rc, "requeue outbound messages");
                for (int n = r >= 0 ? sqlite3_changes(store_db(ob->store)) : 0; n > 0; n--)
                        count(ob, METRIC_OUTBOUND_POSSIBLE_DUPLICATES_SMS, (OutboxChannel) c);
        }
        if (r < 0) {
                store_rollback(ob->store);
                return r;
        }
        return store_commit(ob->store);
}

int outbox_new(sd_event *e, Store *store, const OutboxOptions *o, Outbox **ret) {
        _cleanup_(outbox_freep) Outbox *ob = NULL;
        int r;

        ob = mem_new(Outbox, 1);
        if (!ob)
                return -ENOMEM;
        ob->event = sd_event_ref(e);
        ob->store = store;
        ob->options = *o;
        if (ob->options.backoff_base_usec == 0)
                ob->options.backoff_base_usec = OUTBOX_BACKOFF_BASE_USEC;
        if (ob->options.backoff_min_usec == 0)
                ob->options.backoff_min_usec = OUTBOX_BACKOFF_MIN_USEC;
        if (ob->options.backoff_max_usec == 0)
                ob->options.backoff_max_usec = OUTBOX_BACKOFF_MAX_USEC;
        if (ob->options.max_in_flight == 0)
                ob->options.max_in_flight = OUTBOX_MAX_IN_FLIGHT;
        if (getrandom(&ob->rng, sizeof ob->rng, GRND_NONBLOCK) != sizeof ob->rng || ob->rng == 0)
                ob->rng = now(ob) | 1;
        r = requeue_sending(ob);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(ob);
        return 0;
}

static void record_outcomes(Outbox *ob);

static SendRequest *send_request_free(SendRequest *q);

/* Claimed rows still waiting for the disk: the rows stay 'sending', and
 * the next start sends them again, flagged. */
static void drop_claimed(Outbox *ob) {
        StoreWaiter *w = store_waiters_take(ob->store, ob);

        while (w) {
                SendRequest *q = container_of(w, SendRequest, wait);
                w = w->next;
                ob->n_in_flight--;
                send_request_free(q);
        }
}

Outbox *outbox_free(Outbox *ob) {
        if (!ob)
                return NULL;
        drop_claimed(ob);
        for (SendRequest *q = ob->in_flight; q; q = q->next)
                q->outbox = NULL; /* answered later: dropped, freed then */
        record_outcomes(ob); /* what cannot be recorded stays 'sending' */
        sd_event_source_disable_unref(ob->outcome_defer);
        sd_event_source_disable_unref(ob->defer);
        sd_event_source_disable_unref(ob->timer);
        sd_event_unref(ob->event);
        free(ob);
        return NULL;
}

static int bind_opt(sqlite3_stmt *st, int i, const char *s) {
        return s ? sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC) : sqlite3_bind_null(st, i);
}

int outbox_enqueue_in_txn(Outbox *ob, const OutboxMessage *m, int64_t *ret_id) {
        _cleanup_free_ char *address = NULL;
        sqlite3_stmt *st = NULL;
        uint64_t t = now(ob);
        int rc, r;

        if (!m || (unsigned) m->channel >= _OUTBOX_CHANNEL_MAX || isempty(m->to) || !m->body)
                return -EINVAL;
        if (m->channel == OUTBOX_SMS && !customer_phone_valid(m->to))
                return -EINVAL;
        if (m->channel == OUTBOX_EMAIL) {
                /* Lower-cased, as the inbox stores customers: the opt-out
                 * gate compares the strings. */
                r = customer_email_normalize(m->to, &address);
                if (r < 0)
                        return r;
        }
        rc = store_prepare_rc(ob->store,
                              "INSERT INTO outbox (channel, recipient, body, subject, in_reply_to, refs, message_id, "
                              "order_id, opt_out_confirmation, status, next_attempt_at, expires_at, created_at) "
                              "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?)",
                              &st);
        if (rc == SQLITE_OK) {
                sqlite3_bind_text(st, 1, channel_table[m->channel], -1, SQLITE_STATIC);
                sqlite3_bind_text(st, 2, address ?: m->to, -1, SQLITE_STATIC);
                sqlite3_bind_text(st, 3, m->body, -1, SQLITE_STATIC);
                bind_opt(st, 4, m->subject);
                bind_opt(st, 5, m->in_reply_to);
                bind_opt(st, 6, m->references);
                bind_opt(st, 7, m->message_id);
                bind_opt(st, 8, m->order_id);
                sqlite3_bind_int(st, 9, m->opt_out_confirmation);
                sqlite3_bind_int64(st, 10, (int64_t) t);
                sqlite3_bind_int64(st, 11, (int64_t) (t + ob->options.lifetime_usec[m->channel]));
                sqlite3_bind_int64(st, 12, (int64_t) t);
                rc = sqlite3_step(st);
        }
        store_finish(ob->store, st);
        r = store_check(ob->store, rc == SQLITE_DONE ? SQLITE_OK : rc, "enqueue outbound message");
        if (r < 0)
                return r;
        if (ret_id)
                *ret_id = sqlite3_last_insert_rowid(store_db(ob->store));
        return 0;
}

static int on_defer(sd_event_source *s _unused_, void *userdata) {
        (void) outbox_send_due(userdata);
        return 0;
}

static int on_timer(sd_event_source *s _unused_, uint64_t usec _unused_, void *userdata) {
        (void) outbox_send_due(userdata);
        return 0;
}

void outbox_kick(Outbox *ob) {
        if (!ob || !ob->started || ob->stopped)
                return;
        if (!ob->defer && sd_event_add_defer(ob->event, &ob->defer, on_defer, ob) < 0)
                return; /* the timer looks again */
        (void) sd_event_source_set_enabled(ob->defer, SD_EVENT_ONESHOT);
}

int outbox_start(Outbox *ob) {
        ob->started = true;
        ob->stopped = false;
        outbox_kick(ob);
        return ob->defer ? 0 : -ENOMEM;
}

void outbox_stop(Outbox *ob) {
        if (!ob)
                return;
        ob->stopped = true;
        ob->wakeup = 0;
        if (ob->timer)
                (void) sd_event_source_set_enabled(ob->timer, SD_EVENT_OFF);
}

unsigned outbox_n_in_flight(Outbox *ob) {
        return ob ? ob->n_in_flight : 0;
}

uint64_t outbox_next_wakeup(Outbox *ob) {
        return ob->wakeup;
}

static void arm_timer(Outbox *ob, uint64_t at) {
        uint64_t t = now(ob), delay = at > t ? at - t : 0;

        ob->wakeup = at;
        if (at == 0) {
                if (ob->timer)
                        (void) sd_event_source_set_enabled(ob->timer, SD_EVENT_OFF);
                return;
        }
        if (!ob->timer) {
                if (sd_event_add_time_relative(ob->event, &ob->timer, CLOCK_MONOTONIC, delay, 10 * USEC_PER_MSEC,
                                               on_timer, ob) < 0)
                        ob->timer = NULL;
                return;
        }
        (void) sd_event_source_set_time_relative(ob->timer, delay);
        (void) sd_event_source_set_enabled(ob->timer, SD_EVENT_ONESHOT);
}

/* ---- recording outcomes ------------------------------------------------ */

static uint64_t backoff(Outbox *ob, unsigned attempts) {
        const OutboxOptions *o = &ob->options;
        unsigned shift = attempts > 0 ? MIN(attempts - 1, 20u) : 0;
        uint64_t d = MIN(o->backoff_base_usec << shift, o->backoff_max_usec);

        /* "Equal jitter": half fixed, half random, so that messages that
         * failed together do not come back together. */
        d = d / 2 + random_u64(ob) % (d / 2 + 1);
        return MAX(MIN(d, o->backoff_max_usec), o->backoff_min_usec);
}

/* Mark row id failed with why; inside a transaction. */
static int set_failed(Outbox *ob, int64_t id, const char *why) {
        sqlite3_stmt *st = NULL;
        int rc;

        rc = store_prepare_rc(ob->store, "UPDATE outbox SET status = 'failed', last_error = ? WHERE id = ?", &st);
        if (rc == SQLITE_OK) {
                bind_opt(st, 1, why);
                sqlite3_bind_int64(st, 2, id);
                rc = sqlite3_step(st);
        }
        store_finish(ob->store, st);
        return store_check(ob->store, rc == SQLITE_DONE ? SQLITE_OK : rc, "record outbound failure");
}

static SendRequest *send_request_free(SendRequest *q) {
        if (q) {
                free(q->to);
                free(q->body);
                free(q->subject);
                free(q->in_reply_to);
                free(q->references);
                free(q->message_id);
                free(q);
        }
        return NULL;
}

/* Record the answer to q; inside a transaction.  0 (and q->counted set),
 * -errno. */
static int record_outcome(Outbox *ob, SendRequest *q) {
        const char *transport_id = q->has_transport_id ? q->transport_id : NULL,
                   *error = q->has_error ? q->error : NULL;
        sqlite3_stmt *st = NULL;
        uint64_t t = now(ob);
        int64_t attempts = 0, expires_at = 0;
        OutboxResult result = q->result;
        int rc, r;

        q->counted = _METRIC_MAX;
        rc = store_prepare_rc(ob->store, "SELECT attempts, expires_at FROM outbox WHERE id = ? AND status = 'sending'",
                              &st);
        if (rc == SQLITE_OK) {
                sqlite3_bind_int64(st, 1, q->id);
                rc = sqlite3_step(st);
                if (rc == SQLITE_ROW) {
                        attempts = sqlite3_column_int64(st, 0);
                        expires_at = sqlite3_column_int64(st, 1);
                }
        }
        store_finish(ob->store, st);
        if (rc == SQLITE_DONE) /* not ours any more */
                return 0;
        r = store_check(ob->store, rc == SQLITE_ROW ? SQLITE_OK : rc, "read outbound message");
        if (r < 0)
                return r;

        if (result == OUTBOX_RESULT_OK) {
                rc = store_prepare_rc(ob->store,
                                      "UPDATE outbox SET status = 'sent', sent_at = ?, transport_id = ?, "
                                      "last_error = NULL WHERE id = ?",
                                      &st);
                if (rc == SQLITE_OK) {
                        sqlite3_bind_int64(st, 1, (int64_t) t);
                        bind_opt(st, 2, transport_id);
                        sqlite3_bind_int64(st, 3, q->id);
                        rc = sqlite3_step(st);
                }
                store_finish(ob->store, st);
                r = store_check(ob->store, rc == SQLITE_DONE ? SQLITE_OK : rc, "record outbound message sent");
        } else if (result == OUTBOX_RESULT_TEMPFAIL) {
                uint64_t next = t + backoff(ob, (unsigned) MAX(attempts, 1));
                if ((int64_t) next >= expires_at) {
                        char why[sizeof q->error + 16];
                        snprintf(why, sizeof why, "expired: %s", strempty(error));
                        r = set_failed(ob, q->id, why);
                        result = _OUTBOX_RESULT_MAX; /* counted as expired */
                } else {
                        rc = store_prepare_rc(ob->store,
                                              "UPDATE outbox SET status = 'deferred', next_attempt_at = ?, "
                                              "last_error = ? WHERE id = ?",
                                              &st);
                        if (rc == SQLITE_OK) {
                                sqlite3_bind_int64(st, 1, (int64_t) next);
                                bind_opt(st, 2, error);
                                sqlite3_bind_int64(st, 3, q->id);
                                rc = sqlite3_step(st);
                        }
                        store_finish(ob->store, st);
                        r = store_check(ob->store, rc == SQLITE_DONE ? SQLITE_OK : rc, "defer outbound message");
                }
        } else
                r = set_failed(ob, q->id, error ? error : "refused by the transport");
        if (r < 0)
                return r;
        switch ((int) result) {
        case OUTBOX_RESULT_OK:
                q->counted = METRIC_OUTBOUND_SENT_SMS;
                break;
        case OUTBOX_RESULT_TEMPFAIL:
                q->counted = METRIC_OUTBOUND_DEFERRED_SMS;
                break;
        case OUTBOX_RESULT_PERMFAIL:
                q->counted = METRIC_OUTBOUND_FAILED_SMS;
                break;
        default:
                q->counted = METRIC_OUTBOUND_EXPIRED_SMS;
        }
        return 0;
}

/* Record every answer waiting, in one transaction.  What cannot be
 * recorded stays 'sending' and goes again, flagged, after the next start
 * (a failed store stops the daemon). */
static void record_outcomes(Outbox *ob) {
        SendRequest *list = TAKE_PTR(ob->answered);
        int r;

        ob->answered_tail = &ob->answered;
        if (!list)
                return;
        /* Nothing is promised on these: the next sync takes them along. */
        r = store_begin_nosync(ob->store);
        for (SendRequest *q = list; r >= 0 && q; q = q->next)
                r = record_outcome(ob, q);
        if (r >= 0)
                r = store_commit(ob->store);
        else
                store_rollback(ob->store);
        while (list) {
                SendRequest *q = list;
                list = q->next;
                if (r >= 0 && q->counted != _METRIC_MAX)
                        count(ob, q->counted, q->channel);
                send_request_free(q);
        }
        /* A deferred row has a time to come back at: the sender's timer. */
        if (r >= 0)
                outbox_kick(ob);
}

static int on_outcome_defer(sd_event_source *s _unused_, void *userdata) {
        record_outcomes(userdata);
        return 0;
}

static void copy_cut(char *dst, size_t size, const char *src) {
        snprintf(dst, size, "%s", src);
}

static void on_send_done(void *done_data, OutboxResult result, const char *transport_id, const char *error) {
        SendRequest *q = done_data;
        Outbox *ob = q->outbox;

        if (!ob) {
                send_request_free(q);
                return;
        }
        *q->prev_next = q->next;
        if (q->next)
                q->next->prev_next = q->prev_next;
        ob->n_in_flight--;

        q->result = result;
        q->has_transport_id = transport_id;
        if (transport_id)
                copy_cut(q->transport_id, sizeof q->transport_id, transport_id);
        q->has_error = error;
        if (error)
                copy_cut(q->error, sizeof q->error, error);
        q->next = NULL;
        if (!ob->answered_tail)
                ob->answered_tail = &ob->answered;
        *ob->answered_tail = q;
        ob->answered_tail = &q->next;
        if (!ob->outcome_defer && sd_event_add_defer(ob->event, &ob->outcome_defer, on_outcome_defer, ob) < 0) {
                ob->outcome_defer = NULL;
                record_outcomes(ob); /* no defer: record it now */
        } else
                (void) sd_event_source_set_enabled(ob->outcome_defer, SD_EVENT_ONESHOT);
        outbox_kick(ob);
}

/* ---- picking and starting ------------------------------------------------ */

static const char *col(sqlite3_stmt *st, int i) {
        return (const char *) sqlite3_column_text(st, i);
}

/* A copy of column i, NULL for NULL; -ENOMEM in *r when it cannot be made. */
static char *col_dup(sqlite3_stmt *st, int i, int *r) {
        const char *v = col(st, i);
        char *d;

        if (!v)
                return NULL;
        d = mem_strdup(v);
        if (!d)
                *r = -ENOMEM;
        return d;
}

/* The oldest due row of channel c: when expired or barred, marks it
 * failed (returns 1); otherwise marks it 'sending' and returns 0 with it
 * in *ret (a new SendRequest); -ENOENT when nothing is due; inside a
 * transaction. */
static int claim_one(Outbox *ob, OutboxChannel c, uint64_t t, SendRequest **ret) {
        sqlite3_stmt *st = NULL;
        SendRequest *q;
        int64_t id;
        int rc, r = 0;

        rc = store_prepare_rc(ob->store,
                              "SELECT id, recipient, body, subject, in_reply_to, refs, message_id, attempts, "
                              "possible_duplicate, expires_at, opt_out_confirmation, "
                              "EXISTS (SELECT 1 FROM opt_outs WHERE customer = recipient) "
                              "FROM outbox WHERE channel = ? AND status IN ('queued', 'deferred') AND "
                              "next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT 1",
                              &st);
        if (rc == SQLITE_OK) {
                sqlite3_bind_text(st, 1, channel_table[c], -1, SQLITE_STATIC);
                sqlite3_bind_int64(st, 2, (int64_t) t);
                rc = sqlite3_step(st);
        }
        if (rc == SQLITE_DONE) {
                store_finish(ob->store, st);
                return -ENOENT;
        }
        r = store_check(ob->store, rc == SQLITE_ROW ? SQLITE_OK : rc, "read due outbound messages");
        if (r < 0) {
                store_finish(ob->store, st);
                return r;
        }
        id = sqlite3_column_int64(st, 0);
        if (sqlite3_column_int64(st, 9) <= (int64_t) t) {
                store_finish(ob->store, st);
                r = set_failed(ob, id, "expired");
                if (r >= 0)
                        count(ob, METRIC_OUTBOUND_EXPIRED_SMS, c);
                return r < 0 ? r : 1;
        }
        if (sqlite3_column_int(st, 11) && !sqlite3_column_int(st, 10)) {
                store_finish(ob->store, st);
                r = set_failed(ob, id, "opted out");
                if (r >= 0)
                        count(ob, METRIC_OUTBOUND_FAILED_SMS, c);
                return r < 0 ? r : 1;
        }
        q = mem_new(SendRequest, 1);
        if (!q) {
                store_finish(ob->store, st);
                return -ENOMEM;
        }
        q->id = id;
        q->channel = c;
        q->to = col_dup(st, 1, &r);
        q->body = col_dup(st, 2, &r);
        q->subject = col_dup(st, 3, &r);
        q->in_reply_to = col_dup(st, 4, &r);
        q->references = col_dup(st, 5, &r);
        q->message_id = col_dup(st, 6, &r);
        q->attempt = (unsigned) sqlite3_column_int64(st, 7) + 1;
        q->possible_duplicate = sqlite3_column_int(st, 8);
        store_finish(ob->store, st);
        if (r >= 0)
                r = exec_id(ob, "UPDATE outbox SET status = 'sending', attempts = attempts + 1 WHERE id = ?", id,
                            "mark outbound message sending");
        if (r < 0) {
                send_request_free(q);
                return r;
        }
        *ret = q;
        return 0;
}

/* Hand a claimed row to its transport. */
static void start_send(Outbox *ob, SendRequest *q);

static void on_claim_durable(StoreWaiter *w, int error) {
        SendRequest *q = container_of(w, SendRequest, wait);
        Outbox *ob = w->owner;

        if (error < 0) { /* the store failed: the daemon stops */
                ob->n_in_flight--;
                send_request_free(q);
                return;
        }
        start_send(ob, q);
}

static void start_send(Outbox *ob, SendRequest *q) {
        const OutboxTransport *tr = ob->options.transport[q->channel];
        int r;

        /* n_in_flight counts it since the claim. */
        q->outbox = ob;
        q->next = ob->in_flight;
        if (q->next)
                q->next->prev_next = &q->next;
        q->prev_next = &ob->in_flight;
        ob->in_flight = q;

        const OutboxDelivery d = {
                .id = q->id,
                .channel = q->channel,
                .to = q->to,
                .body = q->body,
                .subject = q->subject,
                .in_reply_to = q->in_reply_to,
                .references = q->references,
                .message_id = q->message_id,
                .attempt = q->attempt,
                .possible_duplicate = q->possible_duplicate,
        };
        r = tr->send(ob->options.transport_data[q->channel], &d, on_send_done, q);
        if (r < 0) {
                _cleanup_free_ char *why = mem_printf("transport %s: %s", tr->name, strerror(-r));
                on_send_done(q, OUTBOX_RESULT_TEMPFAIL, NULL, why ? why : "transport error");
        }
}

/* Claim up to max due rows of channel c in one transaction, then start
 * their sends.  Returns the number of sends started (0: nothing due), or
 * -errno; *ret_settled counts rows settled without a send (expired,
 * opted out). */
static int start_batch(Outbox *ob, OutboxChannel c, uint64_t t, unsigned max, unsigned *ret_settled) {
        SendRequest *batch[CLAIM_BATCH];
        unsigned n = 0, settled = 0;
        int r;

        max = MIN(max, (unsigned) CLAIM_BATCH);
        r = store_begin_nosync(ob->store);
        while (r >= 0 && n < max) {
                int k = claim_one(ob, c, t, &batch[n]);
                if (k == -ENOENT)
                        break;
                if (k < 0)
                        r = k;
                else if (k == 1)
                        settled++;
                else
                        n++;
        }
        if (r >= 0)
                r = store_commit(ob->store);
        else
                store_rollback(ob->store);
        *ret_settled = r >= 0 ? settled : 0;
        if (r < 0) {
                for (unsigned i = 0; i < n; i++)
                        send_request_free(batch[i]);
                return r;
        }
        /* Only once the rows are 'sending' on disk does a transport see
         * them, so that a crash in between is known to the next start; and
         * with them everything committed before, the turn that wrote the
         * reply included: a power cut can never take back what a customer
         * was told. */
        ob->n_in_flight += n;
        for (unsigned i = 0; i < n; i++)
                store_when_durable(ob->store, &batch[i]->wait, on_claim_durable, ob);
        return (int) n;
}

/* The earliest next_attempt_at of a waiting message of channel c; 0 none. */
static uint64_t next_due(Outbox *ob, OutboxChannel c) {
        sqlite3_stmt *st = NULL;
        uint64_t at = 0;

        if (store_prepare_rc(ob->store,
                             "SELECT min(next_attempt_at) FROM outbox WHERE channel = ? AND status IN "
                             "('queued', 'deferred')",
                             &st) != SQLITE_OK)
                return 0;
        sqlite3_bind_text(st, 1, channel_table[c], -1, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
                at = (uint64_t) MAX(sqlite3_column_int64(st, 0), 1);
        store_finish(ob->store, st);
        return at;
}

int outbox_send_due(Outbox *ob) {
        uint64_t wake = 0;
        int r = 0;

        if (!ob->started || ob->stopped || store_failed(ob->store))
                return 0;
        for (int c = 0; c < _OUTBOX_CHANNEL_MAX && r >= 0; c++) {
                bool limited = c == OUTBOX_SMS && ob->options.sms_max_per_second > 0;
                uint64_t t = now(ob), at, when;
                int k = 0;

                if (!ob->options.transport[c])
                        continue;
                /* One batch a turn of the loop: with more due, the defer
                 * brings us back after the loop's other work. */
                if (ob->n_in_flight < ob->options.max_in_flight && !(limited && t < ob->next_token)) {
                        unsigned room = ob->options.max_in_flight - ob->n_in_flight, settled = 0;
                        uint64_t interval = 0, base = 0;
                        if (limited) {
                                /* A token bucket: a token every interval, up to a
                                 * tenth of a second's worth saved up, so that a
                                 * busy outbox claims a batch at a time and not
                                 * one row a transaction. */
                                unsigned rate = ob->options.sms_max_per_second, burst = MAX(rate / 10, 1u);
                                interval = USEC_PER_SEC / rate;
                                base = MAX(ob->next_token, t > (burst - 1) * interval ? t - (burst - 1) * interval : 0);
                                room = MIN(room, (unsigned) ((t - base) / interval + 1));
                        }
                        k = start_batch(ob, (OutboxChannel) c, t, room, &settled);
                        /* Only a send takes a token; a row settled without
                         * sending (expired, opted out) does not. */
                        if (k > 0 && limited)
                                ob->next_token = base + (uint64_t) k * interval;
                        if (k >= 0 && (unsigned) k + settled >= MIN(room, (unsigned) CLAIM_BATCH))
                                outbox_kick(ob);
                        t = now(ob);
                }
                if (k < 0)
                        r = k;

                /* When to look again for this channel. */
                at = next_due(ob, (OutboxChannel) c);
                if (at == 0)
                        continue;
                if (at > t)
                        when = limited ? MAX(at, ob->next_token) : at;
                else if (ob->n_in_flight >= ob->options.max_in_flight)
                        continue; /* a finished send kicks us */
                else if (limited && t < ob->next_token)
                        when = ob->next_token;
                else
                        when = t + USEC_PER_SEC; /* stopped by an error: try again soon */
                wake = wake ? MIN(wake, when) : when;
        }
        arm_timer(ob, wake);
        return r;
}

/* ---- opt-out -------------------------------------------------------------- */

int outbox_customer_opted_out(Outbox *ob, const char *customer) {
        sqlite3_stmt *st = NULL;
        int rc;

        rc = store_prepare_rc(ob->store, "SELECT 1 FROM opt_outs WHERE customer = ?", &st);
        if (rc == SQLITE_OK) {
                sqlite3_bind_text(st, 1, customer, -1, SQLITE_STATIC);
                rc = sqlite3_step(st);
        }
        store_finish(ob->store, st);
        if (rc == SQLITE_ROW)
                return 1;
        if (rc == SQLITE_DONE)
                return 0;
        return store_check(ob->store, rc, "read opt-outs") ?: -EIO;
}

int outbox_set_opt_out_in_txn(Outbox *ob, const char *customer, bool opted_out) {
        sqlite3_stmt *st = NULL;
        int rc;

        if (isempty(customer))
                return -EINVAL;
        rc = store_prepare_rc(ob->store,
                              opted_out ? "INSERT OR IGNORE INTO opt_outs (customer, since) VALUES (?, ?)"
                                        : "DELETE FROM opt_outs WHERE customer = ?",
                              &st);
        if (rc == SQLITE_OK) {
                sqlite3_bind_text(st, 1, customer, -1, SQLITE_STATIC);
                if (opted_out)
                        sqlite3_bind_int64(st, 2, (int64_t) now(ob));
                rc = sqlite3_step(st);
        }
        store_finish(ob->store, st);
        return store_check(ob->store, rc == SQLITE_DONE ? SQLITE_OK : rc, "record opt-out");
}

/* ---- operator ----------------------------------------------------------- */

/* Status and channel of row id; -ENOENT, -errno; inside a transaction. */
static int read_status(Outbox *ob, int64_t id, OutboxStatus *ret_status, OutboxChannel *ret_channel) {
        sqlite3_stmt *st = NULL;
        int rc;

        rc = store_prepare_rc(ob->store, "SELECT status, channel FROM outbox WHERE id = ?", &st);
        if (rc == SQLITE_OK) {
                sqlite3_bind_int64(st, 1, id);
                rc = sqlite3_step(st);
        }
        if (rc == SQLITE_ROW) {
                *ret_status = outbox_status_from_string(col(st, 0));
                *ret_channel = outbox_channel_from_string(col(st, 1));
                store_finish(ob->store, st);
                return 0;
        }
        store_finish(ob->store, st);
        if (rc == SQLITE_DONE)
                return -ENOENT;
        return store_check(ob->store, rc, "read outbound message") ?: -EIO;
}

int outbox_retry(Outbox *ob, int64_t id, const char **ret_status) {
        OutboxStatus s = _OUTBOX_STATUS_INVALID;
        OutboxChannel c = OUTBOX_SMS;
        sqlite3_stmt *st = NULL;
        uint64_t t = now(ob);
        int rc, r;

        r = store_begin(ob->store);
        if (r < 0)
                return r;
        r = read_status(ob, id, &s, &c);
        if (r >= 0 && s != OUTBOX_FAILED && s != OUTBOX_DEFERRED) {
                if (ret_status)
                        *ret_status = outbox_status_to_string(s);
                r = -EBUSY;
        }
        if (r >= 0) {
                rc = store_prepare_rc(ob->store,
                                      "UPDATE outbox SET status = 'queued', next_attempt_at = ?, expires_at = ? "
                                      "WHERE id = ?",
                                      &st);
                if (rc == SQLITE_OK) {
                        sqlite3_bind_int64(st, 1, (int64_t) t);
                        sqlite3_bind_int64(st, 2, (int64_t) (t + ob->options.lifetime_usec[c]));
                        sqlite3_bind_int64(st, 3, id);
                        rc = sqlite3_step(st);
                }
                store_finish(ob->store, st);
                r = store_check(ob->store, rc == SQLITE_DONE ? SQLITE_OK : rc, "retry outbound message");
        }
        if (r < 0) {
                store_rollback(ob->store);
                return r;
        }
        r = store_commit(ob->store);
        if (r >= 0)
                outbox_kick(ob);
        return r;
}

int outbox_drop(Outbox *ob, int64_t id, const char **ret_status) {
        OutboxStatus s = _OUTBOX_STATUS_INVALID;
        OutboxChannel c = OUTBOX_SMS;
        int r;

        r = store_begin(ob->store);
        if (r < 0)
                return r;
        r = read_status(ob, id, &s, &c);
        if (r >= 0 && (s == OUTBOX_SENT || s == OUTBOX_SENDING)) {
                if (ret_status)
                        *ret_status = outbox_status_to_string(s);
                r = -EBUSY;
        }
        if (r >= 0)
                r = set_failed(ob, id, "dropped by operator");
        if (r < 0) {
                store_rollback(ob->store);
                return r;
        }
        r = store_commit(ob->store);
        if (r >= 0 && s != OUTBOX_FAILED)
                count(ob, METRIC_OUTBOUND_FAILED_SMS, c);
        return r;
}

static json_t *time_json(sqlite3_stmt *st, int i) {
        char buf[32];
        time_t t;
        struct tm tm;

        if (sqlite3_column_type(st, i) == SQLITE_NULL)
                return json_null();
        t = (time_t) (sqlite3_column_int64(st, i) / (int64_t) USEC_PER_SEC);
        gmtime_r(&t, &tm);
        strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
        return json_string(buf);
}

json_t *outbox_list_json(Outbox *ob, unsigned limit) {
        sqlite3_stmt *st = NULL;
        json_t *a = json_array();
        int rc;

        if (!a)
                return NULL;
        rc = store_prepare_rc(
                ob->store,
                "SELECT id, channel, recipient, body, status, attempts, order_id, created_at, "
                "subject, last_error, possible_duplicate, next_attempt_at, sent_at, transport_id, "
                "message_id, in_reply_to, refs FROM (SELECT * FROM outbox ORDER BY id DESC LIMIT ?) ORDER BY id",
                &st);
        if (rc != SQLITE_OK) {
                json_decref(a);
                return NULL;
        }
        sqlite3_bind_int64(st, 1, limit);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                json_t *o = json_pack("{s:I,s:s,s:s,s:s,s:s,s:I,s:s?,s:o,s:s?,s:s?,s:b,s:o,s:o,s:s?,s:s?,s:s?,s:s?}",
                                      "id", (json_int_t) sqlite3_column_int64(st, 0), "channel", col(st, 1), "to",
                                      col(st, 2), "body", col(st, 3), "status", col(st, 4), "attempts",
                                      (json_int_t) sqlite3_column_int64(st, 5), "order_id", col(st, 6), "created_at",
                                      time_json(st, 7), "subject", col(st, 8), "last_error", col(st, 9),
                                      "possible_duplicate", sqlite3_column_int(st, 10), "next_attempt_at",
                                      time_json(st, 11), "sent_at", time_json(st, 12), "transport_id", col(st, 13),
                                      "message_id", col(st, 14), "in_reply_to", col(st, 15), "references", col(st, 16));
                if (!o || json_array_append_new(a, o) < 0) {
                        json_decref(a);
                        a = NULL;
                        break;
                }
        }
        store_finish(ob->store, st);
        return a;
}

json_t *outbox_counts_json(Outbox *ob) {
        sqlite3_stmt *st = NULL;
        json_t *o = json_object();

        if (!o)
                return NULL;
        for (size_t i = 0; i < _OUTBOX_STATUS_MAX; i++)
                json_object_set_new(o, status_table[i], json_integer(0));
        if (store_prepare_rc(ob->store, "SELECT status, count(*) FROM outbox GROUP BY status", &st) != SQLITE_OK) {
                json_decref(o);
                return NULL;
        }
        while (sqlite3_step(st) == SQLITE_ROW)
                json_object_set_new(o, col(st, 0), json_integer(sqlite3_column_int64(st, 1)));
        store_finish(ob->store, st);
        return o;
}
