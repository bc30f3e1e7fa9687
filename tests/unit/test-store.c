/* SPDX-License-Identifier: MIT */
/*
 * test-store.c — the store: migrations run once, in order, each whole or
 * not at all; a newer schema is refused; one writer per directory; an I/O
 * error marks the store failed exactly once; group commit: a no-sync
 * transaction leaves the connection synchronous=FULL behind it, and its
 * mark becomes durable through the sync thread.
 */
#include "test-helpers.h"

#include <errno.h>

#include "alloc.h"
#include "store.h"
#include "strutil.h"

static int count_rows(Store *s, const char *sql) {
        sqlite3_stmt *st;
        int n = -1;

        if (sqlite3_prepare_v2(store_db(s), sql, -1, &st, NULL) != SQLITE_OK)
                return -1;
        if (sqlite3_step(st) == SQLITE_ROW)
                n = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
        return n;
}

static bool table_exists(Store *s, const char *name) {
        char sql[256];
        snprintf(sql, sizeof sql, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = '%s'", name);
        return count_rows(s, sql) == 1;
}

static char *subdir(const char *name) {
        char *p = mem_printf("%s/%s", test_dir, name);
        assert_non_null(p);
        return p;
}

static void test_fresh_and_reopen(void **state _unused_) {
        _cleanup_free_ char *d = subdir("fresh"), *err = NULL, *id = NULL;
        Store *s = NULL;
        size_t n;
        const StoreMigration *m = store_migrations(&n);

        assert_int_equal(store_open(d, &s, &err), 0);
        assert_null(err);
        assert_int_equal(store_schema_version(s), m[n - 1].version);
        assert_true(table_exists(s, "meta"));
        assert_true(table_exists(s, "config_history"));
        assert_int_equal(count_rows(s, "PRAGMA synchronous"), 2); /* FULL */
        assert_non_null(store_instance_id(s));
        assert_int_equal(strlen(store_instance_id(s)), 16);
        id = mem_strdup(store_instance_id(s));
        store_close(s);

        /* Reopening runs nothing again and keeps the data. */
        assert_int_equal(store_open(d, &s, &err), 0);
        assert_string_equal(store_instance_id(s), id);
        assert_int_equal(count_rows(s, "SELECT count(*) FROM meta WHERE key = 'instance_id'"), 1);
        sqlite3_stmt *st;
        assert_int_equal(sqlite3_prepare_v2(store_db(s), "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        assert_string_equal((const char *) sqlite3_column_text(st, 0), "wal");
        sqlite3_finalize(st);
        store_close(s);
}

static void test_numbered_versions(void **state _unused_) {
        size_t n;
        const StoreMigration *m = store_migrations(&n);

        /* 1, 2, 3 … with no gap: a migration's number is its position. */
        for (size_t i = 0; i < n; i++) {
                assert_int_equal(m[i].version, (int) i + 1);
                assert_non_null(m[i].name);
                assert_non_null(m[i].sql);
        }
}

static void test_upgrade_keeps_data(void **state _unused_) {
        _cleanup_free_ char *d = subdir("upgrade"), *err = NULL, *v = NULL;
        Store *s = NULL;
        size_t n;
        const StoreMigration *m = store_migrations(&n);

        assert_int_equal(store_open_with(d, m, 1, &s, &err), 0);
        assert_int_equal(store_schema_version(s), 1);
        assert_false(table_exists(s, "config_history"));
        assert_int_equal(store_meta_set(s, "marker", "kept"), 0);
        store_close(s);

        assert_int_equal(store_open(d, &s, &err), 0);
        assert_int_equal(store_schema_version(s), m[n - 1].version);
        assert_true(table_exists(s, "config_history"));
        assert_int_equal(store_meta_get(s, "marker", &v), 0);
        assert_string_equal(v, "kept");
        store_close(s);
}

static void test_failed_migration_rolls_back(void **state _unused_) {
        _cleanup_free_ char *d = subdir("failing"), *err = NULL;
        size_t n;
        const StoreMigration *real = store_migrations(&n);
        /* the real first migration (it creates meta, which open reads), then ours */
        const StoreMigration bad[] = {
                real[0],
                { 2, "broken", "CREATE TABLE half (x INTEGER); CREATE TABLE oops (;" },
        };
        const StoreMigration fixed[] = {
                real[0],
                { 2, "fixed", "CREATE TABLE half (x INTEGER);" },
        };
        Store *s = NULL;

        assert_int_equal(store_open_with(d, bad, 2, &s, &err), -EINVAL);
        assert_null(s);
        assert_non_null(err);
        assert_non_null(strstr(err, "migration 2 (broken) of "));
        assert_non_null(strstr(err, "failed: "));
        free(TAKE_PTR(err));

        /* migration 1 stays, nothing of migration 2 does */
        assert_int_equal(store_open_with(d, bad, 1, &s, &err), 0);
        assert_int_equal(store_schema_version(s), 1);
        assert_true(table_exists(s, "meta"));
        assert_false(table_exists(s, "half"));
        store_close(s);

        assert_int_equal(store_open_with(d, fixed, 2, &s, &err), 0);
        assert_int_equal(store_schema_version(s), 2);
        assert_true(table_exists(s, "half"));
        store_close(s);
}

static void test_newer_schema_refused(void **state _unused_) {
        _cleanup_free_ char *d = subdir("newer"), *err = NULL;
        Store *s = NULL;

        assert_int_equal(store_open(d, &s, &err), 0);
        assert_int_equal(store_exec(s, "PRAGMA user_version = 999"), 0);
        s = store_close(s);

        assert_int_equal(store_open(d, &s, &err), -EPROTONOSUPPORT);
        assert_null(s);
        assert_non_null(strstr(err, "has schema version 999, newer than this deliveryd knows"));
}

static void test_one_writer(void **state _unused_) {
        _cleanup_free_ char *d = subdir("locked"), *err = NULL, *want = NULL;
        Store *a = NULL, *b = NULL;

        assert_int_equal(store_open(d, &a, &err), 0);
        assert_int_equal(store_open(d, &b, &err), -EBUSY);
        assert_null(b);
        want = mem_printf("state directory %s is in use by another deliveryd (pid %d)", d, (int) getpid());
        assert_string_equal(err, want);
        free(TAKE_PTR(err));
        store_close(a);

        /* released with the first */
        assert_int_equal(store_open(d, &b, &err), 0);
        store_close(b);
}

static void test_not_a_directory(void **state _unused_) {
        _cleanup_free_ char *err = NULL;
        Store *s = NULL;

        write_file(test_dir, "plainfile", "x");
        _cleanup_free_ char *p = subdir("plainfile");
        assert_int_equal(store_open(p, &s, &err), -ENOTDIR);
        assert_non_null(strstr(err, "is not a directory"));
}

static int failures;
static int failure_error;
static void on_failure(Store *s _unused_, int error, const char *what _unused_, void *userdata _unused_) {
        failures++;
        failure_error = error;
}

static void test_io_error_fails_once(void **state _unused_) {
        _cleanup_free_ char *d = subdir("ioerr"), *err = NULL;
        Store *s = NULL;

        assert_int_equal(store_open(d, &s, &err), 0);
        store_set_failure_handler(s, on_failure, NULL);

        /* Ordinary errors are not failures of the store. */
        assert_int_equal(store_check(s, SQLITE_CONSTRAINT_UNIQUE, "insert"), -EEXIST);
        assert_int_equal(store_check(s, SQLITE_BUSY, "insert"), -EBUSY);
        assert_false(store_failed(s));
        assert_int_equal(failures, 0);

        /* A failed fsync is, once and for good. */
        assert_int_equal(store_check(s, SQLITE_IOERR_FSYNC, "commit"), -EIO);
        assert_true(store_failed(s));
        assert_int_equal(failures, 1);
        assert_int_equal(failure_error, -EIO);
        assert_int_equal(store_check(s, SQLITE_FULL, "commit"), -ENOSPC);
        assert_int_equal(failures, 1);
        assert_int_equal(store_begin(s), -EIO);
        assert_int_equal(store_meta_set(s, "k", "v"), -EIO);
        store_close(s);
}

static int synchronous_level(Store *s) {
        return count_rows(s, "PRAGMA synchronous");
}

typedef struct Waiting {
        StoreWaiter wait;
        int order, calls, error;
        sd_event *event; /* exit the loop when called */
} Waiting;

static int waiting_order;

static void on_durable(StoreWaiter *w, int error) {
        Waiting *x = container_of(w, Waiting, wait);

        x->calls++;
        x->error = error;
        x->order = ++waiting_order;
        if (x->event)
                (void) sd_event_exit(x->event, 0);
}

static void nosync_insert(Store *s, const char *value) {
        assert_int_equal(store_begin_nosync(s), 0);
        assert_int_equal(store_meta_set(s, "k", value), 0);
        assert_int_equal(store_commit(s), 0);
}

static void test_group_commit_unattached(void **state _unused_) {
        _cleanup_free_ char *d = subdir("nosync-plain"), *err = NULL;
        Store *s = NULL;

        assert_int_equal(store_open(d, &s, &err), 0);
        /* No sync thread: the same as store_begin(), every mark durable. */
        nosync_insert(s, "1");
        assert_int_equal(synchronous_level(s), 2);
        assert_true(store_durable(s, store_durable_mark(s)));
        Waiting now = {};
        store_when_durable(s, &now.wait, on_durable, NULL);
        assert_int_equal(now.calls, 1); /* at once */
        assert_int_equal(store_sync(s), 0);
        store_close(s);
}

static void test_group_commit(void **state _unused_) {
        _cleanup_free_ char *d = subdir("nosync"), *err = NULL, *v = NULL;
        sd_event *e = NULL;
        Store *s = NULL;
        uint64_t m1, m2;

        assert_int_equal(sd_event_new(&e), 0);
        assert_int_equal(store_open(d, &s, &err), 0);
        assert_int_equal(store_attach_sync(s, e), 0);
        assert_int_equal(store_attach_sync(s, e), -EALREADY);

        /* Within a no-sync transaction the level is NORMAL, after it FULL
         * again: statements outside any transaction stay synchronous. */
        assert_int_equal(store_begin_nosync(s), 0);
        assert_int_equal(synchronous_level(s), 1);
        assert_int_equal(store_meta_set(s, "k", "1"), 0);
        assert_int_equal(store_commit(s), 0);
        assert_int_equal(synchronous_level(s), 2);
        m1 = store_durable_mark(s);
        assert_true(m1 > 0);
        assert_false(store_durable(s, m1));

        /* A rolled back one restores FULL too, and adds no mark. */
        assert_int_equal(store_begin_nosync(s), 0);
        store_rollback(s);
        assert_int_equal(synchronous_level(s), 2);
        assert_int_equal(store_durable_mark(s), m1);

        /* A plain transaction in between is FULL. */
        assert_int_equal(store_begin(s), 0);
        assert_int_equal(synchronous_level(s), 2);
        assert_int_equal(store_commit(s), 0);

        /* Waiters queue, and are called in order once the thread has
         * synced, on the loop; one queued later waits its turn even when
         * it needs no more than those before it; one that owner gives up
         * is taken out. */
        Waiting first = {}, gone = {}, second = { .event = e };
        store_when_durable(s, &first.wait, on_durable, NULL);
        store_when_durable(s, &gone.wait, on_durable, &gone);
        store_when_durable(s, &second.wait, on_durable, NULL);
        assert_int_equal(first.calls + second.calls, 0);
        assert_ptr_equal(store_waiters_take(s, &gone), &gone.wait);
        assert_int_equal(sd_event_loop(e), 0);
        assert_int_equal(first.calls, 1);
        assert_int_equal(second.calls, 1);
        assert_int_equal(gone.calls, 0);
        assert_int_equal(first.error, 0);
        assert_int_equal(second.error, 0);
        assert_true(first.order < second.order);
        assert_true(store_durable(s, m1));

        /* An owner that goes away settles its waiters on the spot. */
        nosync_insert(s, "1b");
        Waiting settled = {};
        store_when_durable(s, &settled.wait, on_durable, &settled);
        assert_int_equal(settled.calls, 0);
        store_waiters_settle(s, &settled);
        assert_int_equal(settled.calls, 1);
        assert_int_equal(settled.error, 0);

        /* Later commits get later marks; store_sync() covers them at once. */
        nosync_insert(s, "2");
        m2 = store_durable_mark(s);
        assert_true(m2 > m1);
        assert_int_equal(store_sync(s), 0);
        assert_true(store_durable(s, m2));
        assert_int_equal(store_meta_get(s, "k", &v), 0);
        assert_string_equal(v, "2");

        store_close(s);
        sd_event_unref(e);
}

static int open_close(void *userdata) {
        char *err = NULL;
        Store *s = NULL;
        int r = store_open(userdata, &s, &err);

        free(err);
        store_close(s);
        return r;
}

static void test_oom(void **state _unused_) {
        _cleanup_free_ char *d = subdir("oom");

        assert_true(oom_loop(open_close, d, 0) > 2);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_fresh_and_reopen),
                cmocka_unit_test(test_numbered_versions),
                cmocka_unit_test(test_upgrade_keeps_data),
                cmocka_unit_test(test_failed_migration_rolls_back),
                cmocka_unit_test(test_newer_schema_refused),
                cmocka_unit_test(test_one_writer),
                cmocka_unit_test(test_not_a_directory),
                cmocka_unit_test(test_io_error_fails_once),
                cmocka_unit_test(test_group_commit_unattached),
                cmocka_unit_test(test_group_commit),
                cmocka_unit_test(test_oom),
        };
        return cmocka_run_group_tests(tests, tmpdir_setup, tmpdir_teardown);
}
