/* SPDX-License-Identifier: MIT */
/*
 * test-inbox.c — the inbox: group commit, deduplication within a batch and
 * across batches, by any of a message's keys; failures reported to every
 * sender of the batch; cancelled callbacks not called.
 */
#include "test-helpers.h"

#include <errno.h>

#include "alloc.h"
#include "inbox.h"
#include "strutil.h"

static sd_event *event;
static Store *store;
static Inbox *inbox;

static int setup(void **state _unused_) {
        char *err = NULL;

        test_dir = make_tmpdir();
        assert_int_equal(sd_event_new(&event), 0);
        assert_int_equal(store_open(test_dir, &store, &err), 0);
        assert_int_equal(inbox_new(event, store, &inbox), 0);
        return 0;
}

static int teardown(void **state _unused_) {
        inbox_free(inbox);
        store_close(store);
        sd_event_unref(event);
        rm_rf(test_dir);
        free(test_dir);
        return 0;
}

typedef struct Seen {
        int calls;
        InboxOutcome outcome;
        int64_t id;
} Seen;

static void on_done(void *userdata, InboxOutcome outcome, int64_t id) {
        Seen *s = userdata;
        s->calls++;
        s->outcome = outcome;
        s->id = id;
}

static InboxMessage *sms(const char *key1, const char *key2, const char *from, const char *text) {
        InboxMessage *m = inbox_message_new(INBOX_SMS, INBOX_SOURCE_SNS);
        assert_non_null(m);
        if (key1)
                assert_int_equal(inbox_message_add_key(m, key1), 0);
        if (key2)
                assert_int_equal(inbox_message_add_key(m, key2), 0);
        m->customer = mem_strdup(from);
        m->body = mem_strdup(text);
        return m;
}

static int count(const char *sql) {
        sqlite3_stmt *st;
        int n = -1;
        assert_int_equal(sqlite3_prepare_v2(store_db(store), sql, -1, &st, NULL), SQLITE_OK);
        if (sqlite3_step(st) == SQLITE_ROW)
                n = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
        return n;
}

/* Run the loop until the inbox has committed what is queued. */
static void run_loop(void) {
        for (int i = 0; i < 10 && inbox_n_pending(inbox) > 0; i++)
                assert_true(sd_event_run(event, 0) >= 0);
        assert_int_equal(inbox_n_pending(inbox), 0);
}

static void test_group_commit_and_dedupe(void **state _unused_) {
        Seen a = {}, b = {}, c = {}, d = {};
        int before = sqlite3_total_changes(store_db(store));

        assert_int_equal(inbox_submit(inbox, sms("sns:1", "sms:A", "+5511900000001", "oi"), on_done, &a, NULL), 0);
        /* the same SMS again under another SNS MessageId, in the same batch */
        assert_int_equal(inbox_submit(inbox, sms("sns:2", "sms:A", "+5511900000001", "oi"), on_done, &b, NULL), 0);
        assert_int_equal(inbox_submit(inbox, sms("sns:3", "sms:B", "+5511900000002", "menu"), on_done, &c, NULL), 0);
        assert_int_equal(inbox_n_pending(inbox), 3);
        assert_int_equal(a.calls + b.calls + c.calls, 0); /* nothing acknowledged before the commit */
        run_loop();

        assert_int_equal(a.calls, 1);
        assert_int_equal(a.outcome, INBOX_STORED);
        assert_int_equal(b.outcome, INBOX_DUPLICATE);
        assert_int_equal(b.id, a.id);
        assert_int_equal(c.outcome, INBOX_STORED);
        assert_int_equal(count("SELECT count(*) FROM inbox"), 2);
        assert_int_equal(count("SELECT count(*) FROM inbox_keys"), 4);
        assert_true(sqlite3_total_changes(store_db(store)) > before);

        /* a later redelivery, by either key, is a duplicate too */
        assert_int_equal(inbox_submit(inbox, sms("sns:3", NULL, "+5511900000002", "menu"), on_done, &d, NULL), 0);
        run_loop();
        assert_int_equal(d.outcome, INBOX_DUPLICATE);
        assert_int_equal(d.id, c.id);
        assert_int_equal(count("SELECT count(*) FROM inbox"), 2);
}

/* The store hook runs inside the batch, for stored messages only; when it
 * refuses, nothing of the batch is kept and every sender is told so. */
static int hook_calls;
static int hook(void *userdata, const InboxMessage *m, int64_t id) {
        const char *refuse = userdata;

        assert_true(id > 0);
        hook_calls++;
        if (refuse && streq(m->body, refuse))
                return -EIO;
        /* what it writes commits with the messages */
        return sqlite3_exec(store_db(store), "INSERT INTO meta (key, value) VALUES ('hook-' || random(), 'x')", NULL,
                            NULL, NULL) == SQLITE_OK
                ? 0
                : -EIO;
}

static void test_store_hook(void **state _unused_) {
        Seen a = {}, b = {}, c = {}, d = {};
        int before = count("SELECT count(*) FROM inbox");

        inbox_set_store_hook(inbox, hook, (void *) "refuse me");
        hook_calls = 0;
        assert_int_equal(inbox_submit(inbox, sms("hook:1", NULL, "+5511900000011", "PARAR"), on_done, &a, NULL), 0);
        assert_int_equal(inbox_submit(inbox, sms("hook:1", NULL, "+5511900000011", "PARAR"), on_done, &b, NULL), 0);
        run_loop();
        assert_int_equal(a.outcome, INBOX_STORED);
        assert_int_equal(b.outcome, INBOX_DUPLICATE);
        assert_int_equal(hook_calls, 1); /* not for the duplicate */
        assert_int_equal(count("SELECT count(*) FROM meta WHERE key LIKE 'hook-%'"), 1);

        assert_int_equal(inbox_submit(inbox, sms("hook:2", NULL, "+5511900000012", "oi"), on_done, &c, NULL), 0);
        assert_int_equal(inbox_submit(inbox, sms("hook:3", NULL, "+5511900000013", "refuse me"), on_done, &d, NULL), 0);
        run_loop();
        assert_int_equal(c.outcome, INBOX_FAILED);
        assert_int_equal(d.outcome, INBOX_FAILED);
        assert_int_equal(count("SELECT count(*) FROM inbox"), before + 1);
        assert_int_equal(count("SELECT count(*) FROM meta WHERE key LIKE 'hook-%'"), 1);
        assert_false(store_failed(store));
        inbox_set_store_hook(inbox, NULL, NULL);
}

static void test_invalid_refused(void **state _unused_) {
        assert_int_equal(inbox_submit(inbox, sms(NULL, NULL, "+5511900000001", "x"), on_done, NULL, NULL), -EINVAL);
        assert_int_equal(inbox_submit(inbox, sms("k:1", NULL, "", "x"), on_done, NULL, NULL), -EINVAL);
        InboxMessage *m = sms("k:2", NULL, "+5511900000001", "x");
        for (int i = 0; i < INBOX_KEYS_MAX - 1; i++)
                assert_int_equal(inbox_message_add_key(m, "more"), 0);
        assert_int_equal(inbox_message_add_key(m, "one too many"), -E2BIG);
        inbox_message_free(m);
        assert_int_equal(inbox_n_pending(inbox), 0);
}

static void test_ignored_stored_as_ignored(void **state _unused_) {
        Seen a = {};
        InboxMessage *m = sms("mail:<x@y> shop@example.com", NULL, "mailer-daemon@example.com", "bounce");

        m->channel = INBOX_EMAIL;
        m->ignore_reason = mem_strdup("bounce");
        assert_int_equal(inbox_submit(inbox, m, on_done, &a, NULL), 0);
        run_loop();
        assert_int_equal(a.outcome, INBOX_IGNORED);
        assert_int_equal(count("SELECT count(*) FROM inbox WHERE status = 'ignored' AND reason = 'bounce'"), 1);
}

static void test_cancel(void **state _unused_) {
        Seen a = {};
        InboxRequest *r = NULL;

        assert_int_equal(inbox_submit(inbox, sms("sns:cancel", NULL, "+5511900000003", "x"), on_done, &a, &r), 0);
        inbox_request_cancel(r);
        run_loop();
        assert_int_equal(a.calls, 0);
        assert_int_equal(count("SELECT count(*) FROM inbox_keys WHERE key = 'sns:cancel'"),
                         1); /* stored all the same */
}

/* A consumer that records what it is given and answers only when told. */
typedef struct Consumer {
        int64_t ids[64];
        char customers[64][32];
        size_t n;
} Consumer;

static void consume(void *userdata, const InboxDelivery *d) {
        Consumer *c = userdata;

        assert_true(c->n < ELEMENTSOF(c->ids));
        c->ids[c->n] = d->id;
        strscpy(c->customers[c->n], sizeof c->customers[0], d->customer);
        c->n++;
}

static void finish(int64_t id) {
        assert_int_equal(store_begin(store), 0);
        assert_int_equal(inbox_mark_done(inbox, id, false), 0);
        assert_int_equal(store_commit(store), 0);
        inbox_release(inbox, id);
}

static void spin(void) {
        for (int i = 0; i < 10; i++)
                assert_true(sd_event_run(event, 0) >= 0);
}

static int64_t submit_sms(const char *key, const char *from, const char *text) {
        Seen s = {};
        assert_int_equal(inbox_submit(inbox, sms(key, NULL, from, text), on_done, &s, NULL), 0);
        run_loop();
        assert_int_equal(s.outcome, INBOX_STORED);
        return s.id;
}

static void test_dispatch_in_order_per_customer(void **state _unused_) {
        Consumer c = {};
        int64_t a1, a2, a3, b1, b2;

        /* earlier tests left messages behind: finish them first */
        assert_int_equal(inbox_set_consumer(inbox, consume, &c), 0);
        for (;;) {
                spin();
                if (c.n == 0)
                        break;
                for (size_t i = 0; i < c.n; i++)
                        finish(c.ids[i]);
                c.n = 0;
        }
        assert_int_equal(inbox_n_active(inbox), 0);

        a1 = submit_sms("d:a1", "+5511900000011", "a1");
        b1 = submit_sms("d:b1", "+5511900000022", "b1");
        a2 = submit_sms("d:a2", "+5511900000011", "a2");
        a3 = submit_sms("d:a3", "+5511900000011", "a3");
        b2 = submit_sms("d:b2", "+5511900000022", "b2");
        spin();
        /* one message per customer at a time, the oldest, side by side */
        assert_int_equal(c.n, 2);
        assert_int_equal(c.ids[0], a1);
        assert_int_equal(c.ids[1], b1);
        assert_int_equal(inbox_n_active(inbox), 2);
        /* handed on without a commit of their own: the rows wait as they were */
        assert_int_equal(count("SELECT count(*) FROM inbox WHERE status = 'incoming'"), 5);
        json_t *counts = inbox_counts_json(inbox);
        assert_int_equal(json_integer_value(json_object_get(counts, "active")), 2);
        assert_int_equal(json_integer_value(json_object_get(counts, "incoming")), 3);
        json_decref(counts);

        /* nothing more until one is done */
        spin();
        assert_int_equal(c.n, 2);
        finish(b1);
        spin();
        assert_int_equal(c.n, 3);
        assert_int_equal(c.ids[2], b2);
        finish(a1);
        spin();
        assert_int_equal(c.ids[3], a2);
        finish(a2);
        finish(b2);
        spin();
        assert_int_equal(c.n, 5);
        assert_int_equal(c.ids[4], a3);
        finish(a3);
        spin();
        assert_int_equal(c.n, 5);
        assert_int_equal(inbox_n_active(inbox), 0);
        assert_int_equal(count("SELECT count(*) FROM inbox WHERE status IN ('incoming', 'active')"), 0);
        assert_int_equal(inbox_mark_done(inbox, a1, false), -ENOENT); /* not active any more */
}

/* A message the consumer could not handle for now comes back, not at once
 * (a lasting failure must not spin the loop) but after the retry delay;
 * the customer's later messages wait behind it, others go on. */
static void test_release_retry(void **state _unused_) {
        Consumer c = {};
        int64_t a1, a2, b1;

        assert_int_equal(inbox_set_consumer(inbox, consume, &c), 0);
        a1 = submit_sms("r:a1", "+5511900000031", "a1");
        a2 = submit_sms("r:a2", "+5511900000031", "a2");
        spin();
        assert_int_equal(c.n, 1);
        assert_int_equal(c.ids[0], a1);
        inbox_release_retry(inbox, a1);
        assert_int_equal(inbox_n_active(inbox), 0);
        b1 = submit_sms("r:b1", "+5511900000032", "b1");
        spin();
        /* the other customer goes on; a1 is not back yet, a2 waits behind it */
        assert_int_equal(c.n, 2);
        assert_int_equal(c.ids[1], b1);
        finish(b1);
        /* after the delay (a second), a1 again */
        for (int i = 0; i < 100 && c.n < 3; i++)
                assert_true(sd_event_run(event, 100 * 1000) >= 0);
        assert_int_equal(c.n, 3);
        assert_int_equal(c.ids[2], a1);
        finish(a1);
        spin();
        assert_int_equal(c.n, 4);
        assert_int_equal(c.ids[3], a2);
        finish(a2);
}

static void test_unfinished_picked_up_after_restart(void **state _unused_) {
        Consumer c = {}, again = {};
        int64_t x1, x2;

        assert_int_equal(inbox_set_consumer(inbox, consume, &c), 0);
        x1 = submit_sms("r:x1", "+5511900000033", "x1");
        x2 = submit_sms("r:x2", "+5511900000033", "x2");
        spin();
        assert_int_equal(c.n, 1);
        assert_int_equal(c.ids[0], x1);

        /* the daemon dies with x1 handed on but not done */
        inbox_free(inbox);
        assert_int_equal(inbox_new(event, store, &inbox), 0);
        assert_int_equal(inbox_set_consumer(inbox, consume, &again), 0);
        spin();
        assert_int_equal(again.n, 1);
        assert_int_equal(again.ids[0], x1); /* the unfinished one again, not the next */
        finish(x1);
        spin();
        assert_int_equal(again.n, 2);
        assert_int_equal(again.ids[1], x2);
        finish(x2);
        spin();
        /* a message marked corrupt is finished too */
        int64_t x3 = submit_sms("r:x3", "+5511900000033", "x3");
        spin();
        assert_int_equal(again.ids[2], x3);
        assert_int_equal(store_begin(store), 0);
        assert_int_equal(inbox_mark_done(inbox, x3, true), 0);
        assert_int_equal(store_commit(store), 0);
        inbox_release(inbox, x3);
        assert_int_equal(count("SELECT count(*) FROM inbox WHERE status = 'corrupt'"), 1);
}

static void fail_handler(Store *s _unused_, int error _unused_, const char *what _unused_, void *userdata) {
        (*(int *) userdata)++;
}

static void test_failure_reported_to_all(void **state _unused_) {
        Seen a = {}, b = {};
        int failures = 0;

        store_set_failure_handler(store, fail_handler, &failures);
        assert_int_equal(inbox_submit(inbox, sms("sns:f1", NULL, "+5511900000004", "x"), on_done, &a, NULL), 0);
        assert_int_equal(inbox_submit(inbox, sms("sns:f2", NULL, "+5511900000005", "y"), on_done, &b, NULL), 0);
        /* The disk fails: the store refuses every write from now on. */
        (void) store_check(store, SQLITE_IOERR_FSYNC, "test");
        run_loop();
        assert_int_equal(failures, 1);
        assert_int_equal(a.outcome, INBOX_FAILED);
        assert_int_equal(b.outcome, INBOX_FAILED);
        assert_int_equal(a.id, 0);
        assert_int_equal(count("SELECT count(*) FROM inbox_keys WHERE key LIKE 'sns:f%'"), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_group_commit_and_dedupe),
                cmocka_unit_test(test_store_hook),
                cmocka_unit_test(test_invalid_refused),
                cmocka_unit_test(test_ignored_stored_as_ignored),
                cmocka_unit_test(test_cancel),
                cmocka_unit_test(test_dispatch_in_order_per_customer),
                cmocka_unit_test(test_release_retry),
                cmocka_unit_test(test_unfinished_picked_up_after_restart),
                cmocka_unit_test(test_failure_reported_to_all), /* last: it fails the store */
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
