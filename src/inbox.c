/* SPDX-License-Identifier: MIT */
/*
 * inbox.c — durable, deduplicating inbox with group commit.
 *
 * Security: see inbox.h.
 */
#include "inbox.h"

#include <errno.h>
#include <string.h>

#include "alloc.h"
#include "fault.h"
#include "hashmap.h"
#include "strutil.h"

/* Customers handed on in one round of dispatch at most, so that a long
 * backlog does not hold the loop (and the acknowledgements waiting on it)
 * for one long turn. */
#define DISPATCH_BATCH 64

struct InboxRequest {
        Inbox *inbox;
        InboxRequest *next;
        InboxMessage *msg;
        InboxDone done;
        void *userdata;
        bool cancelled;
        InboxOutcome outcome;
        int64_t id;
        StoreWaiter wait; /* committed: until it is on disk */
};

/* A customer whose message is with the consumer. */
typedef struct Active {
        int64_t id;
        char *customer;
} Active;

struct Inbox {
        sd_event *event;
        Store *store;
        sd_event_source *defer;
        InboxRequest *head, *tail;
        unsigned n_pending;
        unsigned n_syncing; /* committed, waiting for the disk to tell their senders */

        InboxStoreHook store_hook;
        void *store_hook_data;

        InboxConsumer consumer;
        void *consumer_data;
        sd_event_source *dispatch_defer, *retry;
        /* Memory only says where to look; the rows say what to hand on.
         * active: Active by customer and by id.  waiting: customers who
         * may have a message to hand on (an owned copy of the name is key
         * and value).  rescan: waiting may be incomplete (an allocation
         * failed, or we just started): look at every pending row. */
        Hashmap *active_by_customer, *active_by_id;
        Hashmap *waiting;
        Hashmap *later; /* customers to note waiting at the next retry (owned names) */
        bool rescan;
};

static const char *const channel_table[_INBOX_CHANNEL_MAX] = { [INBOX_SMS] = "sms", [INBOX_EMAIL] = "email" };
static const char *const source_table[_INBOX_SOURCE_MAX] = {
        [INBOX_SOURCE_SNS] = "sns",
        [INBOX_SOURCE_LMTP] = "lmtp",
        [INBOX_SOURCE_INJECT] = "inject",
};
static const char *const outcome_table[_INBOX_OUTCOME_MAX] = {
        [INBOX_STORED] = "stored",
        [INBOX_IGNORED] = "ignored",
        [INBOX_DUPLICATE] = "duplicate",
        [INBOX_FAILED] = "failed",
};

const char *inbox_channel_to_string(InboxChannel c) {
        return (unsigned) c < _INBOX_CHANNEL_MAX ? channel_table[c] : NULL;
}

const char *inbox_source_to_string(InboxSource s) {
        return (unsigned) s < _INBOX_SOURCE_MAX ? source_table[s] : NULL;
}

const char *inbox_outcome_to_string(InboxOutcome o) {
        return (unsigned) o < _INBOX_OUTCOME_MAX ? outcome_table[o] : NULL;
}

void inbox_outcome_count(InboxOutcome o, Metrics *m) {
        static const MetricId ids[_INBOX_OUTCOME_MAX] = {
                [INBOX_STORED] = METRIC_INBOUND_ACCEPTED,
                [INBOX_IGNORED] = METRIC_INBOUND_IGNORED,
                [INBOX_DUPLICATE] = METRIC_INBOUND_DUPLICATE,
                [INBOX_FAILED] = METRIC_INBOUND_FAILED,
        };
        if ((unsigned) o < _INBOX_OUTCOME_MAX)
                metrics_inc(m, ids[o]);
}

InboxMessage *inbox_message_new(InboxChannel channel, InboxSource source) {
        InboxMessage *m = mem_new(InboxMessage, 1);

        if (!m)
                return NULL;
        m->channel = channel;
        m->source = source;
        m->authenticated = -1;
        return m;
}

InboxMessage *inbox_message_free(InboxMessage *m) {
        if (!m)
                return NULL;
        for (size_t i = 0; i < INBOX_KEYS_MAX; i++)
                free(m->keys[i]);
        free(m->customer);
        free(m->recipient);
        free(m->body);
        free(m->subject);
        free(m->message_id);
        free(m->in_reply_to);
        free(m->references);
        free(m->ignore_reason);
        free(m);
        return NULL;
}

int inbox_message_add_key(InboxMessage *m, const char *key) {
        for (size_t i = 0; i < INBOX_KEYS_MAX; i++)
                if (!m->keys[i]) {
                        m->keys[i] = mem_strdup(key);
                        return m->keys[i] ? 0 : -ENOMEM;
                }
        return -E2BIG;
}

int inbox_new(sd_event *e, Store *store, Inbox **ret) {
        _cleanup_(inbox_freep) Inbox *ib = mem_new(Inbox, 1);

        if (!ib)
                return -ENOMEM;
        ib->event = sd_event_ref(e);
        ib->store = store;
        ib->rescan = true;
        ib->active_by_customer = hashmap_new(&string_hash_ops);
        ib->active_by_id = hashmap_new(&int64_hash_ops);
        ib->waiting = hashmap_new(&string_hash_ops);
        ib->later = hashmap_new(&string_hash_ops);
        if (!ib->active_by_customer || !ib->active_by_id || !ib->waiting || !ib->later)
                return -ENOMEM;
        *ret = TAKE_PTR(ib);
        return 0;
}

static void finish_request(InboxRequest *r) {
        if (!r->cancelled && r->done)
                r->done(r->userdata, r->outcome, r->id);
        inbox_message_free(r->msg);
        free(r);
}

static void finish_requests(InboxRequest *list) {
        while (list) {
                InboxRequest *r = list;
                list = r->next;
                finish_request(r);
        }
}

/* The commit is on disk: tell the sender; or the sync failed, and then
 * nothing after the last durable point is kept. */
static void on_request_durable(StoreWaiter *w, int error) {
        InboxRequest *r = container_of(w, InboxRequest, wait);

        if (error < 0) {
                r->outcome = INBOX_FAILED;
                r->id = 0;
        }
        r->inbox->n_syncing--;
        finish_request(r);
}

static Active *active_free(Active *a) {
        if (a) {
                free(a->customer);
                free(a);
        }
        return NULL;
}

Inbox *inbox_free(Inbox *ib) {
        Active *a;
        char *c;

        if (!ib)
                return NULL;
        while ((a = hashmap_steal_first(ib->active_by_customer)))
                active_free(a);
        while ((c = hashmap_steal_first(ib->waiting)))
                free(c);
        while ((c = hashmap_steal_first(ib->later)))
                free(c);
        hashmap_free(ib->later);
        hashmap_free(ib->active_by_customer);
        hashmap_free(ib->active_by_id);
        hashmap_free(ib->waiting);
        sd_event_source_disable_unref(ib->dispatch_defer);
        sd_event_source_disable_unref(ib->retry);
        /* Committed and waiting for the disk: sync now, and tell them. */
        store_waiters_settle(ib->store, ib);
        /* Still queued: not committed, so the senders hear "failed" and retry. */
        for (InboxRequest *r = ib->head; r; r = r->next)
                r->outcome = INBOX_FAILED;
        finish_requests(TAKE_PTR(ib->head));
        sd_event_source_disable_unref(ib->defer);
        sd_event_unref(ib->event);
        free(ib);
        return NULL;
}

static void schedule_dispatch(Inbox *ib);

/* customer may have a message to hand on. */
static void note_waiting(Inbox *ib, const char *customer) {
        char *c;

        if (hashmap_get(ib->waiting, customer))
                return;
        c = mem_strdup(customer);
        if (!c || hashmap_put(ib->waiting, c, c) < 0) {
                free(c);
                ib->rescan = true; /* the next round looks at every row */
        }
}

static int bind_opt(sqlite3_stmt *st, int i, const char *s) {
        return s ? sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC) : sqlite3_bind_null(st, i);
}

/* Look up each key: 0 and in *ret_id the id of the message that has one
 * (0: none), or -errno. */
static int find_duplicate(Store *store, const InboxMessage *m, int64_t *ret_id) {
        sqlite3_stmt *st = NULL;
        int64_t id = 0;
        int rc = SQLITE_OK, r;

        r = store_prepare(store, "SELECT inbox_id FROM inbox_keys WHERE key = ?", &st);
        if (r < 0)
                return r;
        for (size_t i = 0; rc == SQLITE_OK && i < INBOX_KEYS_MAX && m->keys[i] && id == 0; i++) {
                sqlite3_reset(st);
                sqlite3_bind_text(st, 1, m->keys[i], -1, SQLITE_STATIC);
                rc = sqlite3_step(st);
                if (rc == SQLITE_ROW)
                        id = sqlite3_column_int64(st, 0);
                rc = rc == SQLITE_ROW || rc == SQLITE_DONE ? SQLITE_OK : rc;
        }
        store_finish(store, st);
        r = store_check(store, rc, "look up inbound message keys");
        if (r < 0)
                return r;
        *ret_id = id;
        return 0;
}

static int insert_message(Store *store, const InboxMessage *m, int64_t *ret_id) {
        sqlite3_stmt *st = NULL;
        int64_t id;
        int rc = SQLITE_OK, r;

        r = store_prepare(store,
                          "INSERT INTO inbox (channel, source, customer, recipient, body, subject, message_id, "
                          "in_reply_to, refs, authenticated, status, reason, received_at) "
                          "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))",
                          &st);
        if (r < 0)
                return r;
        sqlite3_bind_text(st, 1, inbox_channel_to_string(m->channel), -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, inbox_source_to_string(m->source), -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, m->customer, -1, SQLITE_STATIC);
        bind_opt(st, 4, m->recipient);
        sqlite3_bind_text(st, 5, m->body, -1, SQLITE_STATIC);
        bind_opt(st, 6, m->subject);
        bind_opt(st, 7, m->message_id);
        bind_opt(st, 8, m->in_reply_to);
        bind_opt(st, 9, m->references);
        if (m->authenticated >= 0)
                sqlite3_bind_int(st, 10, m->authenticated);
        else
                sqlite3_bind_null(st, 10);
        sqlite3_bind_text(st, 11, m->ignore_reason ? "ignored" : "incoming", -1, SQLITE_STATIC);
        bind_opt(st, 12, m->ignore_reason);
        r = store_step_done(store, st, "store inbound message");
        if (r < 0)
                return r;
        id = sqlite3_last_insert_rowid(store_db(store));

        r = store_prepare(store, "INSERT OR IGNORE INTO inbox_keys (key, inbox_id) VALUES (?, ?)", &st);
        if (r < 0)
                return r;
        for (size_t i = 0; rc == SQLITE_OK && i < INBOX_KEYS_MAX && m->keys[i]; i++) {
                sqlite3_reset(st);
                sqlite3_bind_text(st, 1, m->keys[i], -1, SQLITE_STATIC);
                sqlite3_bind_int64(st, 2, id);
                rc = sqlite3_step(st);
                rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
        }
        store_finish(store, st);
        r = store_check(store, rc, "store inbound message keys");
        if (r < 0)
                return r;
        *ret_id = id;
        return 0;
}

/* Commit what is queued (from the defer source).  The senders are told
 * once the commit is on disk (group commit, see store.h). */
static void inbox_flush(Inbox *ib) {
        InboxRequest *list = TAKE_PTR(ib->head);
        int r;

        ib->tail = NULL;
        ib->n_pending = 0;
        if (!list)
                return;

        /* Any failure, the hook's refusal too, keeps nothing of the batch. */
        r = store_begin_nosync(ib->store);
        for (InboxRequest *q = list; r >= 0 && q; q = q->next) {
                int64_t dup;
                r = find_duplicate(ib->store, q->msg, &dup);
                if (r < 0)
                        break;
                if (dup > 0) {
                        q->outcome = INBOX_DUPLICATE;
                        q->id = dup;
                        continue;
                }
                r = insert_message(ib->store, q->msg, &q->id);
                if (r < 0)
                        break;
                q->outcome = q->msg->ignore_reason ? INBOX_IGNORED : INBOX_STORED;
                if (q->outcome == INBOX_STORED && ib->store_hook)
                        r = ib->store_hook(ib->store_hook_data, q->msg, q->id);
        }
        if (r >= 0) {
                r = store_commit(ib->store);
                if (r >= 0)
                        FAULT_KILL("deliveryd/inbox/after-commit");
        } else
                store_rollback(ib->store);
        if (r < 0)
                for (InboxRequest *q = list; q; q = q->next) {
                        q->outcome = INBOX_FAILED;
                        q->id = 0;
                }
        else {
                for (InboxRequest *q = list; q; q = q->next)
                        if (q->outcome == INBOX_STORED)
                                note_waiting(ib, q->msg->customer);
                schedule_dispatch(ib);

                /* Acknowledged once on disk: the sync of the log runs off
                 * the loop, for every commit made meanwhile (group commit). */
                while (list) {
                        InboxRequest *q = list;
                        list = q->next;
                        ib->n_syncing++;
                        store_when_durable(ib->store, &q->wait, on_request_durable, ib);
                }
                return;
        }
        finish_requests(list);
}

static int on_defer(sd_event_source *s _unused_, void *userdata) {
        Inbox *ib = userdata;

        inbox_flush(ib);
        return 0;
}

/* ---- dispatch ------------------------------------------------------------ */

static void schedule_dispatch(Inbox *ib) {
        if (!ib->consumer || !ib->dispatch_defer)
                return;
        (void) sd_event_source_set_enabled(ib->dispatch_defer, SD_EVENT_ONESHOT);
}

static int on_retry(sd_event_source *s _unused_, uint64_t usec _unused_, void *userdata) {
        Inbox *ib = userdata;
        char *c;

        while ((c = hashmap_steal_first(ib->later))) {
                note_waiting(ib, c);
                free(c);
        }
        schedule_dispatch(ib);
        return 0;
}

/* Dispatch again in a second. */
static void schedule_retry(Inbox *ib) {
        if (!ib->retry) {
                if (sd_event_add_time_relative(ib->event, &ib->retry, CLOCK_MONOTONIC, USEC_PER_SEC, 0, on_retry, ib) <
                    0)
                        ib->retry = NULL; /* the next message or release brings it */
                return;
        }
        (void) sd_event_source_set_time_relative(ib->retry, USEC_PER_SEC);
        (void) sd_event_source_set_enabled(ib->retry, SD_EVENT_ONESHOT);
}

static const char *col(sqlite3_stmt *st, int i) {
        return (const char *) sqlite3_column_text(st, i);
}

/* Every customer with a pending row is waiting: at start, and after
 * memory could not say so.  -errno, and rescan stays set. */
static int rescan(Inbox *ib) {
        sqlite3_stmt *st = NULL;
        int rc, r;

        r = store_prepare(ib->store, "SELECT DISTINCT customer FROM inbox WHERE status IN ('incoming', 'active')", &st);
        if (r < 0)
                return r;
        ib->rescan = false;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW)
                note_waiting(ib, col(st, 0));
        store_finish(ib->store, st);
        r = store_check(ib->store, rc == SQLITE_DONE ? SQLITE_OK : rc, "list waiting customers");
        if (r < 0)
                ib->rescan = true;
        return r;
}

/* The oldest unfinished message of customer: 0 and its id (0: none), or
 * -errno. */
static int oldest_pending(Inbox *ib, const char *customer, int64_t *ret_id) {
        int r = store_get_int64(ib->store,
                                "SELECT id FROM inbox WHERE customer = ? AND status IN ('incoming', 'active') "
                                "ORDER BY id LIMIT 1",
                                customer, ret_id);
        if (r == -ENOENT) {
                *ret_id = 0;
                return 0;
        }
        return r;
}

static int active_cmp(const void *a, const void *b) {
        const Active *x = *(Active *const *) a, *y = *(Active *const *) b;
        return x->id < y->id ? -1 : x->id > y->id;
}

/* Take up to DISPATCH_BATCH waiting customers with nothing at the consumer
 * and a message pending: their oldest messages, oldest first, in batch
 * (n of them).  A customer whose row could not be read waits again. */
static int pick_batch(Inbox *ib, Active **batch, size_t *ret_n) {
        size_t n = 0;
        char *customer;
        int r = 0;

        while (n < DISPATCH_BATCH && (customer = hashmap_steal_first(ib->waiting))) {
                int64_t id;
                /* Busy customers wait for inbox_release(), which notes them again. */
                if (hashmap_get(ib->active_by_customer, customer)) {
                        free(customer);
                        continue;
                }
                r = oldest_pending(ib, customer, &id);
                if (r < 0) {
                        note_waiting(ib, customer);
                        free(customer);
                        break;
                }
                if (id == 0) {
                        free(customer);
                        continue;
                }
                Active *a = mem_new(Active, 1);
                if (!a) {
                        note_waiting(ib, customer);
                        free(customer);
                        r = -ENOMEM;
                        break;
                }
                a->id = id;
                a->customer = customer;
                batch[n++] = a;
        }
        qsort(batch, n, sizeof batch[0], active_cmp);
        *ret_n = n;
        return r;
}

/* Hand on the oldest unfinished message of every waiting customer who has
 * none with the consumer. */
static void dispatch(Inbox *ib) {
        Active *batch[DISPATCH_BATCH];
        sqlite3_stmt *st = NULL;
        size_t n = 0;
        int rc, r;

        if (!ib->consumer || store_failed(ib->store))
                return;
        if (ib->rescan && rescan(ib) < 0) {
                schedule_retry(ib);
                return;
        }
        r = pick_batch(ib, batch, &n);
        if (r < 0)
                /* The customer it failed on waits again; not at once, or a
                 * lasting failure would spin the loop. */
                schedule_retry(ib);
        else if (hashmap_size(ib->waiting) > 0)
                schedule_dispatch(ib); /* the rest in the next round */

        /* Now active; hand each on.  A consumer may answer at once (done +
         * release from inside the call): the next round comes from the
         * loop, never recursively. */
        for (size_t i = 0; i < n; i++) {
                Active *a = batch[i];

                if (hashmap_put(ib->active_by_customer, a->customer, a) < 0) {
                        /* Not handed on: the next look at every row finds it. */
                        active_free(a);
                        ib->rescan = true;
                        schedule_dispatch(ib);
                        continue;
                }
                if (hashmap_put(ib->active_by_id, &a->id, a) < 0) {
                        hashmap_remove(ib->active_by_customer, a->customer);
                        active_free(a);
                        ib->rescan = true;
                        schedule_dispatch(ib);
                        continue;
                }
                rc = store_prepare_rc(ib->store,
                                      "SELECT channel, customer, recipient, body, subject, message_id, in_reply_to, "
                                      "refs, authenticated FROM inbox WHERE id = ?",
                                      &st);
                if (rc == SQLITE_OK) {
                        sqlite3_bind_int64(st, 1, a->id);
                        rc = sqlite3_step(st);
                }
                if (rc == SQLITE_ROW) {
                        const InboxDelivery d = {
                                .id = a->id,
                                .channel = streq(col(st, 0), "email") ? INBOX_EMAIL : INBOX_SMS,
                                .customer = col(st, 1),
                                .recipient = col(st, 2),
                                .body = col(st, 3),
                                .subject = col(st, 4),
                                .message_id = col(st, 5),
                                .in_reply_to = col(st, 6),
                                .references = col(st, 7),
                                .authenticated =
                                        sqlite3_column_type(st, 8) == SQLITE_NULL ? -1 : sqlite3_column_int(st, 8),
                        };
                        ib->consumer(ib->consumer_data, &d);
                }
                store_finish(ib->store, st);
        }
}

static int on_dispatch(sd_event_source *s _unused_, void *userdata) {
        dispatch(userdata);
        return 0;
}

void inbox_set_store_hook(Inbox *ib, InboxStoreHook hook, void *userdata) {
        ib->store_hook = hook;
        ib->store_hook_data = userdata;
}

int inbox_set_consumer(Inbox *ib, InboxConsumer consumer, void *userdata) {
        int r;

        if (!ib->dispatch_defer) {
                r = sd_event_add_defer(ib->event, &ib->dispatch_defer, on_dispatch, ib);
                if (r < 0)
                        return r;
        }
        ib->consumer = consumer;
        ib->consumer_data = userdata;
        schedule_dispatch(ib);
        return 0;
}

int inbox_mark_done(Inbox *ib, int64_t id, bool corrupt) {
        sqlite3_stmt *st = NULL;
        int r;

        if (!hashmap_get(ib->active_by_id, &id))
                return -ENOENT;
        /* 'active' too: rows an older version left so. */
        r = store_prepare(ib->store, "UPDATE inbox SET status = ? WHERE id = ? AND status IN ('incoming', 'active')",
                          &st);
        if (r < 0)
                return r;
        sqlite3_bind_text(st, 1, corrupt ? "corrupt" : "done", -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, id);
        r = store_step_done(ib->store, st, "mark inbound message done");
        if (r < 0)
                return r;
        return sqlite3_changes(store_db(ib->store)) > 0 ? 0 : -ENOENT;
}

void inbox_release(Inbox *ib, int64_t id) {
        Active *a = hashmap_remove(ib->active_by_id, &id);

        if (a) {
                hashmap_remove(ib->active_by_customer, a->customer);
                /* Its next message, if any, may go now. */
                note_waiting(ib, a->customer);
                active_free(a);
        }
        schedule_dispatch(ib);
}

void inbox_release_retry(Inbox *ib, int64_t id) {
        Active *a = hashmap_remove(ib->active_by_id, &id);

        if (!a)
                return;
        hashmap_remove(ib->active_by_customer, a->customer);
        /* Not waiting now: the retry notes it.  Without memory for that,
         * the next look at every row finds it. */
        if (!hashmap_get(ib->later, a->customer)) {
                if (hashmap_put(ib->later, a->customer, a->customer) >= 0)
                        a->customer = NULL; /* the map owns it now */
                else
                        ib->rescan = true;
        }
        active_free(a);
        schedule_retry(ib);
}

unsigned inbox_n_active(Inbox *ib) {
        return (unsigned) hashmap_size(ib->active_by_id);
}

int inbox_submit(Inbox *ib, InboxMessage *m, InboxDone done, void *userdata, InboxRequest **ret_request) {
        _cleanup_(inbox_message_freep) InboxMessage *msg = m;
        InboxRequest *r;
        int k;

        if (!msg || !msg->keys[0] || isempty(msg->customer) || !msg->body)
                return -EINVAL;
        if (!ib->defer) {
                /* A defer source runs once the loop has dispatched this turn's
                 * I/O: everything received in the meantime shares one commit. */
                k = sd_event_add_defer(ib->event, &ib->defer, on_defer, ib);
                if (k < 0)
                        return k;
        }
        r = mem_new(InboxRequest, 1);
        if (!r)
                return -ENOMEM;
        r->inbox = ib;
        r->msg = TAKE_PTR(msg);
        r->done = done;
        r->userdata = userdata;
        if (ib->tail)
                ib->tail->next = r;
        else
                ib->head = r;
        ib->tail = r;
        ib->n_pending++;
        k = sd_event_source_set_enabled(ib->defer, SD_EVENT_ONESHOT);
        if (k < 0)
                return k; /* queued all the same; flushed on the next submission or at free */
        if (ret_request)
                *ret_request = r;
        return 0;
}

void inbox_request_cancel(InboxRequest *r) {
        if (r)
                r->cancelled = true;
}

unsigned inbox_n_pending(Inbox *ib) {
        return ib->n_pending + ib->n_syncing;
}

json_t *inbox_list_json(Inbox *ib, unsigned limit) {
        sqlite3_stmt *st = NULL;
        json_t *a = json_array();
        int rc;

        if (!a)
                return NULL;
        rc = store_prepare_rc(ib->store,
                              "SELECT id, channel, source, customer, recipient, body, subject, status, reason, "
                              "received_at, authenticated FROM (SELECT * FROM inbox ORDER BY id DESC LIMIT ?) "
                              "ORDER BY id",
                              &st);
        if (rc != SQLITE_OK) {
                json_decref(a);
                return NULL;
        }
        sqlite3_bind_int64(st, 1, limit);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
#define COL(i) ((const char *) sqlite3_column_text(st, (i)))
                int64_t id = sqlite3_column_int64(st, 0);
                const char *status = hashmap_get(ib->active_by_id, &id) ? "active" : COL(7);
                json_t *o = json_pack(
                        "{s:I,s:s,s:s,s:s,s:s?,s:s,s:s?,s:s,s:s?,s:s,s:o}", "id", (json_int_t) id, "channel", COL(1),
                        "source", COL(2), "customer", COL(3), "recipient", COL(4), "body", COL(5), "subject", COL(6),
                        "status", status, "reason", COL(8), "received_at", COL(9), "authenticated",
                        sqlite3_column_type(st, 10) == SQLITE_NULL ? json_null()
                                                                   : json_boolean(sqlite3_column_int(st, 10)));
#undef COL
                if (!o || json_array_append_new(a, o) < 0) {
                        json_decref(a);
                        a = NULL;
                        break;
                }
        }
        store_finish(ib->store, st);
        return a;
}

json_t *inbox_counts_json(Inbox *ib) {
        static const char *const statuses[] = { "incoming", "active", "done", "ignored", "corrupt" };
        sqlite3_stmt *st = NULL;
        json_t *o = json_object();

        if (!o)
                return NULL;
        if (store_prepare_rc(ib->store, "SELECT status, count(*) FROM inbox GROUP BY status", &st) != SQLITE_OK) {
                json_decref(o);
                return NULL;
        }
        int64_t by_status[ELEMENTSOF(statuses)] = {};
        while (sqlite3_step(st) == SQLITE_ROW)
                for (size_t i = 0; i < ELEMENTSOF(statuses); i++)
                        if (streq(statuses[i], (const char *) sqlite3_column_text(st, 0)))
                                by_status[i] += sqlite3_column_int64(st, 1);
        store_finish(ib->store, st);
        /* Those with the consumer are 'incoming' in the store. */
        int64_t active = (int64_t) hashmap_size(ib->active_by_id);
        by_status[1] += active;
        by_status[0] = MAX(by_status[0] - active, (int64_t) 0);
        for (size_t i = 0; i < ELEMENTSOF(statuses); i++)
                json_object_set_new(o, statuses[i], json_integer(by_status[i]));
        return o;
}
