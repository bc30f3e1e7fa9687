/* SPDX-License-Identifier: MIT */
/*
 * test-outbox.c — the outbox with a real sd-event loop, a fake transport
 * that answers as scripted (OK / TEMPFAIL / PERMFAIL, at once or later)
 * and an injected clock: nothing here sleeps or reads the wall clock.
 */
#include "test-helpers.h"

#include <errno.h>

#include "alloc.h"
#include "outbox.h"
#include "strutil.h"

#define SEC USEC_PER_SEC
#define T0 (1700000000ULL * SEC)

typedef struct Call {
        int64_t id;
        OutboxChannel channel;
        uint64_t at; /* injected clock when send() was called */
        unsigned attempt;
        bool possible_duplicate;
} Call;

typedef struct Held {
        OutboxSendDone done;
        void *done_data;
} Held;

static struct {
        OutboxResult script[64]; /* answer to call n … */
        size_t n_script;
        OutboxResult otherwise; /* … and past the end (OK unless set) */
        bool hold; /* keep the answers for later */
        int fail_send; /* send() returns this (-errno) instead of starting */
        Held held[64];
        size_t n_held;
        Call calls[256];
        size_t n_calls;
} fake;

static uint64_t fake_now;
static sd_event *event;
static Store *store;
static Outbox *outbox;
static Metrics metrics;

static uint64_t fake_clock(void *userdata _unused_) {
        return fake_now;
}

static int fake_send(void *userdata _unused_, const OutboxDelivery *d, OutboxSendDone done, void *done_data) {
        size_t n = fake.n_calls++;
        OutboxResult r = n < fake.n_script ? fake.script[n] : fake.otherwise;
        char tid[32];

        assert_true(n < ELEMENTSOF(fake.calls));
        fake.calls[n] = (Call){ d->id, d->channel, fake_now, d->attempt, d->possible_duplicate };
        assert_non_null(d->to);
        assert_non_null(d->body);
        if (fake.fail_send < 0)
                return fake.fail_send;
        if (fake.hold) {
                fake.held[fake.n_held++] = (Held){ done, done_data };
                return 0;
        }
        snprintf(tid, sizeof tid, "fake-%zu", n);
        done(done_data, r, r == OUTBOX_RESULT_OK ? tid : NULL,
             r == OUTBOX_RESULT_TEMPFAIL           ? "throttled"
                     : r == OUTBOX_RESULT_PERMFAIL ? "invalid number"
                                                   : NULL);
        return 0;
}

static const OutboxTransport fake_transport = { "fake", fake_send };

static OutboxOptions options(uint64_t sms_per_second) {
        return (OutboxOptions){
                .transport = { &fake_transport, &fake_transport },
                .lifetime_usec = { 3600 * SEC, 5 * 86400 * SEC },
                .sms_max_per_second = sms_per_second,
                .metrics = &metrics,
                .clock = fake_clock,
        };
}

static void open_outbox(uint64_t sms_per_second) {
        OutboxOptions o = options(sms_per_second);
        assert_int_equal(outbox_new(event, store, &o, &outbox), 0);
        assert_int_equal(outbox_start(outbox), 0);
}

static int setup(void **state _unused_) {
        char *err = NULL;

        test_dir = make_tmpdir();
        memset(&fake, 0, sizeof fake);
        memset(&metrics, 0, sizeof metrics);
        fake_now = T0;
        assert_int_equal(sd_event_new(&event), 0);
        assert_int_equal(store_open(test_dir, &store, &err), 0);
        open_outbox(0);
        return 0;
}

static int teardown(void **state _unused_) {
        outbox = outbox_free(outbox);
        store_close(store);
        sd_event_unref(event);
        rm_rf(test_dir);
        free(test_dir);
        return 0;
}

static void run(void) {
        for (int i = 0; i < 20; i++)
                assert_true(sd_event_run(event, 0) >= 0);
}

/* Move the injected clock to where the sender wants to look again. */
static bool advance(void) {
        uint64_t w = outbox_next_wakeup(outbox);
        if (w == 0)
                return false;
        if (w > fake_now)
                fake_now = w;
        outbox_kick(outbox);
        run();
        return true;
}

static int64_t enqueue(OutboxChannel c, const char *to, bool confirmation) {
        const OutboxMessage m = {
                .channel = c,
                .to = to,
                .body = "Seu pedido #7KQ2XM saiu para entrega.",
                .subject = c == OUTBOX_EMAIL ? "Pedido #7KQ2XM" : NULL,
                .order_id = "7KQ2XM",
                .opt_out_confirmation = confirmation,
        };
        int64_t id = 0;

        assert_int_equal(store_begin(store), 0);
        assert_int_equal(outbox_enqueue_in_txn(outbox, &m, &id), 0);
        assert_int_equal(store_commit(store), 0);
        outbox_kick(outbox);
        assert_true(id > 0);
        return id;
}

static int64_t qint(const char *sql, int64_t id) {
        sqlite3_stmt *st;
        int64_t v = -1;
        assert_int_equal(sqlite3_prepare_v2(store_db(store), sql, -1, &st, NULL), SQLITE_OK);
        sqlite3_bind_int64(st, 1, id);
        if (sqlite3_step(st) == SQLITE_ROW)
                v = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        return v;
}

static char *qtext(const char *sql, int64_t id) {
        sqlite3_stmt *st;
        char *v = NULL;
        assert_int_equal(sqlite3_prepare_v2(store_db(store), sql, -1, &st, NULL), SQLITE_OK);
        sqlite3_bind_int64(st, 1, id);
        if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
                v = strdup((const char *) sqlite3_column_text(st, 0));
        sqlite3_finalize(st);
        return v;
}

static void assert_status(int64_t id, const char *want) {
        _cleanup_free_ char *s = qtext("SELECT status FROM outbox WHERE id = ?", id);
        assert_non_null(s);
        assert_string_equal(s, want);
}

static void test_rollback_sends_nothing_commit_sends(void **state _unused_) {
        const OutboxMessage m = { .channel = OUTBOX_SMS, .to = "+5511987654321", .body = "oi" };
        _cleanup_free_ char *tid = NULL;
        int64_t id = 0;

        assert_int_equal(store_begin(store), 0);
        assert_int_equal(outbox_enqueue_in_txn(outbox, &m, &id), 0);
        store_rollback(store);
        outbox_kick(outbox);
        run();
        assert_int_equal(fake.n_calls, 0);
        assert_int_equal(qint("SELECT count(*) FROM outbox WHERE ? > 0", 1), 0);

        id = enqueue(OUTBOX_SMS, "+5511987654321", false);
        run();
        assert_int_equal(fake.n_calls, 1);
        assert_int_equal(fake.calls[0].id, id);
        assert_int_equal(fake.calls[0].attempt, 1);
        assert_status(id, "sent");
        tid = qtext("SELECT transport_id FROM outbox WHERE id = ?", id);
        assert_string_equal(tid, "fake-0");
        assert_int_equal(qint("SELECT sent_at FROM outbox WHERE id = ?", id), (int64_t) T0);
        assert_int_equal(qint("SELECT attempts FROM outbox WHERE id = ?", id), 1);
        assert_int_equal(metrics.value[METRIC_OUTBOUND_SENT_SMS], 1);
        assert_int_equal(outbox_n_in_flight(outbox), 0);
        assert_int_equal(outbox_next_wakeup(outbox), 0);
}

static void test_invalid_refused(void **state _unused_) {
        OutboxMessage m = { .channel = OUTBOX_SMS, .to = "5511987654321", .body = "oi" };

        assert_int_equal(outbox_enqueue_in_txn(outbox, &m, NULL), -EINVAL);
        m.channel = OUTBOX_EMAIL;
        assert_int_equal(outbox_enqueue_in_txn(outbox, &m, NULL), -EINVAL);
        m.to = "ana@example.com";
        m.body = NULL;
        assert_int_equal(outbox_enqueue_in_txn(outbox, &m, NULL), -EINVAL);
        m.body = "x";
        m.channel = _OUTBOX_CHANNEL_MAX;
        assert_int_equal(outbox_enqueue_in_txn(outbox, &m, NULL), -EINVAL);
        assert_int_equal(qint("SELECT count(*) FROM outbox WHERE ? > 0", 1), 0);

        /* the transports by name */
        assert_non_null(outbox_transport_find("log"));
        assert_string_equal(outbox_transport_find("log")->name, "log");
        assert_string_equal(outbox_transport_find("sns")->name, "sns");
        assert_string_equal(outbox_transport_find("eum")->name, "eum");
        assert_string_equal(outbox_transport_find("smtp")->name, "smtp");
        assert_null(outbox_transport_find("pigeon"));
        assert_null(outbox_transport_find(NULL));
        assert_int_equal(outbox_channel_from_string("email"), OUTBOX_EMAIL);
        assert_int_equal(outbox_channel_from_string("fax"), _OUTBOX_CHANNEL_INVALID);
        assert_string_equal(outbox_status_to_string(OUTBOX_DEFERRED), "deferred");
        assert_int_equal(outbox_status_from_string("sending"), OUTBOX_SENDING);
}

static void test_tempfail_deferred_with_backoff_and_jitter(void **state _unused_) {
        int64_t ids[20], first[20];
        bool differ = false;

        fake.otherwise = OUTBOX_RESULT_TEMPFAIL;
        for (size_t i = 0; i < ELEMENTSOF(ids); i++)
                ids[i] = enqueue(OUTBOX_EMAIL, "ana@example.com", false);
        run();
        assert_int_equal(fake.n_calls, ELEMENTSOF(ids));
        for (size_t i = 0; i < ELEMENTSOF(ids); i++) {
                _cleanup_free_ char *err = qtext("SELECT last_error FROM outbox WHERE id = ?", ids[i]);
                int64_t d = qint("SELECT next_attempt_at FROM outbox WHERE id = ?", ids[i]) - (int64_t) T0;

                assert_status(ids[i], "deferred");
                assert_string_equal(err, "throttled");
                /* first retry: base 30 s, equal jitter: 15 to 30 s, inside [10 s, 15 min] */
                assert_true(d >= 15 * (int64_t) SEC && d <= 30 * (int64_t) SEC);
                first[i] = d;
                if (i > 0 && first[i] != first[0])
                        differ = true;
        }
        assert_true(differ); /* jitter */
        assert_int_equal(metrics.value[METRIC_OUTBOUND_DEFERRED_EMAIL], ELEMENTSOF(ids));

        /* nothing before it is due */
        fake_now = T0 + 14 * SEC;
        outbox_kick(outbox);
        run();
        assert_int_equal(fake.n_calls, ELEMENTSOF(ids));

        /* later attempts back off further, never past 15 min */
        for (int round = 0; round < 200 && fake.n_calls < 60; round++)
                assert_true(advance());
        for (size_t i = 0; i < ELEMENTSOF(ids); i++) {
                int64_t a = qint("SELECT attempts FROM outbox WHERE id = ?", ids[i]);
                assert_true(a >= 2);
        }
        /* a message at attempt 12 waits at most 15 min */
        assert_int_equal(sqlite3_exec(store_db(store),
                                      "UPDATE outbox SET attempts = 11, status = 'queued', next_attempt_at = 0 "
                                      "WHERE id = 1",
                                      NULL, NULL, NULL),
                         SQLITE_OK);
        outbox_kick(outbox);
        run();
        int64_t d = qint("SELECT next_attempt_at FROM outbox WHERE id = 1", 0) - (int64_t) fake_now;
        assert_true(d >= 10 * (int64_t) SEC && d <= 15 * 60 * (int64_t) SEC);
        assert_true(d >= 7 * 60 * (int64_t) SEC); /* half of the clamp, at least */
}

static void test_permfail_failed_not_retried(void **state _unused_) {
        _cleanup_free_ char *err = NULL;
        int64_t id;

        fake.script[0] = OUTBOX_RESULT_PERMFAIL;
        fake.n_script = 1;
        id = enqueue(OUTBOX_SMS, "+5511987654321", false);
        run();
        assert_status(id, "failed");
        err = qtext("SELECT last_error FROM outbox WHERE id = ?", id);
        assert_string_equal(err, "invalid number");
        assert_int_equal(metrics.value[METRIC_OUTBOUND_FAILED_SMS], 1);
        assert_int_equal(outbox_next_wakeup(outbox), 0);
        fake_now += 86400 * SEC;
        outbox_kick(outbox);
        run();
        assert_int_equal(fake.n_calls, 1);
}

static void test_send_error_is_tempfail(void **state _unused_) {
        _cleanup_free_ char *err = NULL;
        int64_t id;

        fake.fail_send = -EIO;
        id = enqueue(OUTBOX_SMS, "+5511987654321", false);
        run();
        assert_status(id, "deferred");
        err = qtext("SELECT last_error FROM outbox WHERE id = ?", id);
        assert_string_equal(err, "transport fake: Input/output error");
        assert_int_equal(outbox_n_in_flight(outbox), 0);
        assert_int_equal(metrics.value[METRIC_OUTBOUND_DEFERRED_SMS], 1);
        fake.fail_send = 0;
        assert_true(advance());
        assert_status(id, "sent");
        assert_int_equal(qint("SELECT attempts FROM outbox WHERE id = ?", id), 2);
}

static void test_lifetime_expiry(void **state _unused_) {
        _cleanup_free_ char *err = NULL, *err2 = NULL;
        int64_t id, late;

        fake.otherwise = OUTBOX_RESULT_TEMPFAIL;
        id = enqueue(OUTBOX_SMS, "+5511987654321", false); /* lifetime 1 h */
        run();
        for (int i = 0; i < 50 && advance(); i++)
                ;
        assert_status(id, "failed");
        err = qtext("SELECT last_error FROM outbox WHERE id = ?", id);
        assert_true(err && strncmp(err, "expired", 7) == 0);
        assert_true(fake_now - T0 <= 3600 * SEC);
        assert_true(fake.n_calls >= 3);
        assert_int_equal(metrics.value[METRIC_OUTBOUND_EXPIRED_SMS], 1);
        assert_int_equal(outbox_next_wakeup(outbox), 0);

        /* queued, never tried, and already too old when the sender looks */
        outbox_stop(outbox);
        late = enqueue(OUTBOX_SMS, "+5511987654322", false);
        fake_now += 2 * 3600 * SEC;
        size_t calls = fake.n_calls;
        assert_int_equal(outbox_start(outbox), 0);
        run();
        assert_int_equal(fake.n_calls, calls);
        assert_status(late, "failed");
        err2 = qtext("SELECT last_error FROM outbox WHERE id = ?", late);
        assert_string_equal(err2, "expired");
        assert_int_equal(metrics.value[METRIC_OUTBOUND_EXPIRED_SMS], 2);
}

static void test_sending_at_start_requeued_as_possible_duplicate(void **state _unused_) {
        int64_t id;

        outbox_stop(outbox);
        id = enqueue(OUTBOX_SMS, "+5511987654321", false);
        /* as a crash mid-send leaves it */
        assert_int_equal(
                sqlite3_exec(store_db(store), "UPDATE outbox SET status = 'sending', attempts = 1", NULL, NULL, NULL),
                SQLITE_OK);
        outbox = outbox_free(outbox);

        OutboxOptions o = options(0);
        assert_int_equal(outbox_new(event, store, &o, &outbox), 0);
        assert_status(id, "queued");
        assert_int_equal(qint("SELECT possible_duplicate FROM outbox WHERE id = ?", id), 1);
        assert_int_equal(metrics.value[METRIC_OUTBOUND_POSSIBLE_DUPLICATES_SMS], 1);
        run();
        assert_int_equal(fake.n_calls, 0); /* not before outbox_start() */
        assert_int_equal(outbox_start(outbox), 0);
        run();
        assert_int_equal(fake.n_calls, 1);
        assert_true(fake.calls[0].possible_duplicate);
        assert_int_equal(fake.calls[0].attempt, 2);
        assert_status(id, "sent");
}

static void test_token_bucket_two_per_second(void **state _unused_) {
        enum { N = 9 };

        outbox = outbox_free(outbox);
        open_outbox(2);
        for (int i = 0; i < N; i++)
                enqueue(OUTBOX_SMS, "+5511987654321", false);
        /* e-mail is not limited */
        for (int i = 0; i < 3; i++)
                enqueue(OUTBOX_EMAIL, "ana@example.com", false);
        run();
        for (int i = 0; i < 100 && fake.n_calls < N + 3; i++)
                assert_true(advance());
        assert_int_equal(fake.n_calls, N + 3);

        uint64_t sms[N] = { 0 };
        size_t n = 0, mail = 0;
        for (size_t i = 0; i < fake.n_calls; i++) {
                if (fake.calls[i].channel == OUTBOX_SMS)
                        sms[n++] = fake.calls[i].at;
                else {
                        assert_int_equal(fake.calls[i].at, T0);
                        mail++;
                }
        }
        assert_int_equal(n, N);
        assert_int_equal(mail, 3);
        assert_int_equal(sms[0], T0);
        for (size_t i = 1; i < n; i++)
                assert_true(sms[i] - sms[i - 1] >= SEC / 2);
        /* never more than 2 started in any one second */
        for (size_t i = 2; i < n; i++)
                assert_true(sms[i] - sms[i - 2] >= SEC);
        /* and no slower than needed */
        assert_true(sms[n - 1] - sms[0] <= (N - 1) * SEC / 2 + SEC / 10);
        assert_int_equal(outbox_next_wakeup(outbox), 0);
}

/* A fast number: up to a tenth of a second's worth start together (one
 * claim transaction), and over any second no more than the rate and that
 * burst. */
static void test_token_bucket_batches(void **state _unused_) {
        enum { N = 200, RATE = 100, BURST = RATE / 10 };

        outbox = outbox_free(outbox);
        open_outbox(RATE);
        for (int i = 0; i < N; i++)
                enqueue(OUTBOX_SMS, "+5511987654321", false);
        run();
        for (int i = 0; i < 1000 && fake.n_calls < N; i++)
                assert_true(advance());
        assert_int_equal(fake.n_calls, N);
        /* the first burst at once */
        for (size_t i = 0; i < BURST; i++)
                assert_int_equal(fake.calls[i].at, T0);
        assert_true(fake.calls[BURST].at > T0);
        for (size_t i = 0, j = 0; i < N; i++) {
                while (fake.calls[i].at - fake.calls[j].at >= SEC)
                        j++;
                assert_true(i - j + 1 <= RATE + BURST);
        }
        /* on average the rate: the rest after the burst at RATE a second */
        uint64_t span = fake.calls[N - 1].at - T0;
        assert_true(span >= (N - BURST) * SEC / RATE - SEC / RATE);
        assert_true(span <= (N - BURST) * SEC / RATE + SEC / 10);
}

static void test_email_lower_cased_for_the_opt_out_gate(void **state _unused_) {
        int64_t id;

        assert_int_equal(store_begin(store), 0);
        assert_int_equal(outbox_set_opt_out_in_txn(outbox, "ana@example.com", true), 0);
        assert_int_equal(store_commit(store), 0);
        id = enqueue(OUTBOX_EMAIL, "Ana@Example.COM", false);
        run();
        assert_int_equal(fake.n_calls, 0);
        assert_status(id, "failed");
        _cleanup_free_ char *to = qtext("SELECT recipient FROM outbox WHERE id = ?", id);
        assert_string_equal(to, "ana@example.com");
}

static void test_opted_out_gets_only_the_confirmation(void **state _unused_) {
        _cleanup_free_ char *err = NULL;
        int64_t normal, confirmation, other;

        assert_int_equal(outbox_customer_opted_out(outbox, "+5511987654321"), 0);
        assert_int_equal(store_begin(store), 0);
        assert_int_equal(outbox_set_opt_out_in_txn(outbox, "+5511987654321", true), 0);
        assert_int_equal(store_commit(store), 0);
        assert_int_equal(outbox_customer_opted_out(outbox, "+5511987654321"), 1);

        normal = enqueue(OUTBOX_SMS, "+5511987654321", false);
        confirmation = enqueue(OUTBOX_SMS, "+5511987654321", true);
        other = enqueue(OUTBOX_SMS, "+5511900000000", false);
        run();
        assert_int_equal(fake.n_calls, 2);
        assert_int_equal(fake.calls[0].id, confirmation);
        assert_int_equal(fake.calls[1].id, other);
        assert_status(normal, "failed");
        err = qtext("SELECT last_error FROM outbox WHERE id = ?", normal);
        assert_string_equal(err, "opted out");
        assert_status(confirmation, "sent");
        assert_int_equal(metrics.value[METRIC_OUTBOUND_FAILED_SMS], 1);

        /* START: messages go again */
        assert_int_equal(store_begin(store), 0);
        assert_int_equal(outbox_set_opt_out_in_txn(outbox, "+5511987654321", false), 0);
        assert_int_equal(store_commit(store), 0);
        assert_int_equal(outbox_customer_opted_out(outbox, "+5511987654321"), 0);
        enqueue(OUTBOX_SMS, "+5511987654321", false);
        run();
        assert_int_equal(fake.n_calls, 3);
}

static void test_retry_and_drop(void **state _unused_) {
        const char *st = NULL;
        _cleanup_free_ char *err = NULL;
        int64_t failed, deferred, queued;

        fake.script[0] = OUTBOX_RESULT_PERMFAIL;
        fake.script[1] = OUTBOX_RESULT_TEMPFAIL;
        fake.n_script = 2;
        failed = enqueue(OUTBOX_SMS, "+5511987654321", false);
        deferred = enqueue(OUTBOX_SMS, "+5511987654322", false);
        run();
        assert_status(failed, "failed");
        assert_status(deferred, "deferred");

        /* retry: failed and deferred go again at once */
        assert_int_equal(outbox_retry(outbox, failed, &st), 0);
        assert_int_equal(outbox_retry(outbox, deferred, &st), 0);
        run();
        assert_int_equal(fake.n_calls, 4);
        assert_status(failed, "sent");
        assert_status(deferred, "sent");
        assert_int_equal(qint("SELECT attempts FROM outbox WHERE id = ?", failed), 2);

        /* a sent message can be neither retried nor dropped */
        assert_int_equal(outbox_retry(outbox, failed, &st), -EBUSY);
        assert_string_equal(st, "sent");
        st = NULL;
        assert_int_equal(outbox_drop(outbox, failed, &st), -EBUSY);
        assert_string_equal(st, "sent");
        assert_int_equal(outbox_retry(outbox, 999, NULL), -ENOENT);
        assert_int_equal(outbox_drop(outbox, 999, NULL), -ENOENT);

        /* a queued message is dropped before it goes, and not sent */
        outbox_stop(outbox);
        queued = enqueue(OUTBOX_EMAIL, "ana@example.com", false);
        assert_int_equal(outbox_retry(outbox, queued, &st), -EBUSY);
        assert_string_equal(st, "queued");
        assert_int_equal(outbox_drop(outbox, queued, NULL), 0);
        assert_int_equal(outbox_start(outbox), 0);
        run();
        assert_int_equal(fake.n_calls, 4);
        assert_status(queued, "failed");
        err = qtext("SELECT last_error FROM outbox WHERE id = ?", queued);
        assert_string_equal(err, "dropped by operator");
        assert_int_equal(metrics.value[METRIC_OUTBOUND_FAILED_EMAIL], 1);
}

static void test_stop_lets_in_flight_finish(void **state _unused_) {
        int64_t a, b, c;

        fake.hold = true;
        a = enqueue(OUTBOX_SMS, "+5511987654321", false);
        b = enqueue(OUTBOX_EMAIL, "ana@example.com", false);
        run();
        assert_int_equal(outbox_n_in_flight(outbox), 2);
        assert_status(a, "sending");
        outbox_stop(outbox);
        c = enqueue(OUTBOX_SMS, "+5511987654321", false);
        run();
        assert_int_equal(fake.n_calls, 2); /* nothing new started */
        for (size_t i = 0; i < fake.n_held; i++)
                fake.held[i].done(fake.held[i].done_data, OUTBOX_RESULT_OK, "late", NULL);
        run();
        assert_int_equal(outbox_n_in_flight(outbox), 0);
        assert_status(a, "sent");
        assert_status(b, "sent");
        assert_status(c, "queued"); /* durable: waits for the next start */
}

static void test_list_and_counts(void **state _unused_) {
        json_t *l, *c;

        fake.script[1] = OUTBOX_RESULT_PERMFAIL;
        fake.n_script = 2;
        enqueue(OUTBOX_SMS, "+5511987654321", false);
        run();
        enqueue(OUTBOX_EMAIL, "ana@example.com", false);
        run();
        enqueue(OUTBOX_SMS, "+5511987654322", false);
        run();
        l = outbox_list_json(outbox, 2);
        assert_non_null(l);
        assert_int_equal(json_array_size(l), 2);
        json_t *o = json_array_get(l, 0);
        assert_int_equal(json_integer_value(json_object_get(o, "id")), 2);
        assert_string_equal(json_string_value(json_object_get(o, "channel")), "email");
        assert_string_equal(json_string_value(json_object_get(o, "to")), "ana@example.com");
        assert_string_equal(json_string_value(json_object_get(o, "status")), "failed");
        assert_string_equal(json_string_value(json_object_get(o, "order_id")), "7KQ2XM");
        assert_string_equal(json_string_value(json_object_get(o, "created_at")), "2023-11-14T22:13:20Z");
        assert_int_equal(json_integer_value(json_object_get(o, "attempts")), 1);
        assert_non_null(json_object_get(o, "body"));
        assert_int_equal(json_integer_value(json_object_get(json_array_get(l, 1), "id")), 3);
        json_decref(l);
        c = outbox_counts_json(outbox);
        assert_int_equal(json_integer_value(json_object_get(c, "sent")), 2);
        assert_int_equal(json_integer_value(json_object_get(c, "failed")), 1);
        assert_int_equal(json_integer_value(json_object_get(c, "queued")), 0);
        json_decref(c);
}

/* Enqueue and send with the Nth allocation failing: the message is sent
 * or still queued (never lost, never stuck in 'sending'), and goes once
 * memory is back. */
static int enqueue_and_send(void *userdata _unused_) {
        const OutboxMessage m = { .channel = OUTBOX_EMAIL, .to = "ana@example.com", .body = "oi" };
        int64_t id = 0;
        int r;

        r = store_begin(store);
        if (r < 0)
                return r;
        r = outbox_enqueue_in_txn(outbox, &m, &id);
        if (r < 0) {
                store_rollback(store);
                return r;
        }
        assert_int_equal(store_commit(store), 0);
        r = outbox_send_due(outbox);
        run(); /* answers are recorded together, at the next turn of the loop */
        if (r == -ENOMEM) {
                /* sent before the failure, or still queued: never 'sending' */
                _cleanup_free_ char *st = qtext("SELECT status FROM outbox WHERE id = ?", id);
                assert_true(streq(st, "sent") || streq(st, "queued"));
                alloc_fail_after(0);
                assert_int_equal(outbox_send_due(outbox), 0);
                run();
                assert_status(id, "sent");
                return r;
        }
        assert_status(id, "sent");
        return r;
}

static int list(void *userdata _unused_) {
        json_t *l = outbox_list_json(outbox, 100), *c = outbox_counts_json(outbox);
        int r = l && c ? 0 : -ENOMEM;

        if (l)
                assert_int_equal(json_array_size(l), qint("SELECT count(*) FROM outbox WHERE ? > 0", 1));
        json_decref(l);
        json_decref(c);
        return r;
}

static void test_oom_enqueue(void **state _unused_) {
        assert_true(oom_loop(enqueue_and_send, NULL, 0) >= 1);
        enqueue(OUTBOX_SMS, "+5511987654321", false);
        enqueue(OUTBOX_EMAIL, "ana@example.com", false);
        run();
        assert_true(oom_loop(list, NULL, 0) > 3);
        assert_int_equal(qint("SELECT count(*) FROM outbox WHERE status <> 'sent' AND ? > 0", 1), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_rollback_sends_nothing_commit_sends, setup, teardown),
                cmocka_unit_test_setup_teardown(test_invalid_refused, setup, teardown),
                cmocka_unit_test_setup_teardown(test_tempfail_deferred_with_backoff_and_jitter, setup, teardown),
                cmocka_unit_test_setup_teardown(test_permfail_failed_not_retried, setup, teardown),
                cmocka_unit_test_setup_teardown(test_send_error_is_tempfail, setup, teardown),
                cmocka_unit_test_setup_teardown(test_lifetime_expiry, setup, teardown),
                cmocka_unit_test_setup_teardown(test_sending_at_start_requeued_as_possible_duplicate, setup, teardown),
                cmocka_unit_test_setup_teardown(test_token_bucket_two_per_second, setup, teardown),
                cmocka_unit_test_setup_teardown(test_token_bucket_batches, setup, teardown),
                cmocka_unit_test_setup_teardown(test_opted_out_gets_only_the_confirmation, setup, teardown),
                cmocka_unit_test_setup_teardown(test_email_lower_cased_for_the_opt_out_gate, setup, teardown),
                cmocka_unit_test_setup_teardown(test_retry_and_drop, setup, teardown),
                cmocka_unit_test_setup_teardown(test_stop_lets_in_flight_finish, setup, teardown),
                cmocka_unit_test_setup_teardown(test_list_and_counts, setup, teardown),
                cmocka_unit_test_setup_teardown(test_oom_enqueue, setup, teardown),
        };
        alloc_init();
        return cmocka_run_group_tests(tests, NULL, NULL);
}
