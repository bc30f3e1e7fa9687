/* SPDX-License-Identifier: MIT */
/*
 * store.h — the SQLite database under the state directory: the one source
 * of truth for every message, conversation, order and execution.  WAL mode,
 * synchronous=FULL (a COMMIT is on disk when it returns), one writer per
 * state directory (enforced with a lock file), schema versioned by numbered
 * migrations in store-migrations.c.
 *
 * An I/O error (EIO, ENOSPC, a failed fsync, corruption) is never retried:
 * after a failed fsync the kernel may have dropped the dirty pages, so a
 * retry could report success for data that is gone.  The store becomes
 * "failed", tells its owner through the failure callback, and refuses
 * every later write; the daemon then stops and systemd restarts it, and
 * SQLite's recovery brings back the last committed state.
 *
 * Security: the state directory holds customer data; it is created 0750
 * and the database 0640.  SQL is only ever run with bound parameters.
 */
#pragma once

#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

#include "macro.h"

typedef struct Store Store;

typedef struct StoreMigration {
        int version;
        const char *name;
        const char *sql;
} StoreMigration;

/* The migrations this build knows, ascending by version, from 1. */
const StoreMigration *store_migrations(size_t *ret_n);

typedef void (*StoreFailureHandler)(Store *s, int error, const char *what, void *userdata);

/* Open (creating if needed) the state directory and the database in it,
 * take the instance lock and run pending migrations.  On failure returns
 * -errno and, where there is more to say, a message in *ret_error (caller
 * frees):  -EBUSY when another process holds the lock. */
int store_open(const char *state_directory, Store **ret, char **ret_error);

/* Like store_open() with an explicit list of migrations (for tests). */
int store_open_with(const char *state_directory, const StoreMigration *m, size_t n, Store **ret, char **ret_error);

Store *store_close(Store *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(Store *, store_close);

void store_set_failure_handler(Store *s, StoreFailureHandler h, void *userdata);

/* The raw handle, for modules that prepare their own statements. */
sqlite3 *store_db(Store *s);

int store_schema_version(Store *s);
const char *store_path(Store *s);
const char *store_instance_id(Store *s);
bool store_failed(Store *s);

/* Translate a SQLite result code into -errno; a code that means the disk or
 * file is in trouble marks the store failed and calls the handler once.
 * what names the operation for the log. */
int store_check(Store *s, int sqlite_rc, const char *what);

/* A prepared statement for sql, kept by the store and reused (preparing
 * costs more than running most statements): hand it back with
 * store_finish(), which resets it and clears its bindings.  Asked for again
 * while in use, the same SQL gets a statement of its own.  Returns 0 and
 * *ret, or -errno (store_check()). */
int store_prepare(Store *s, const char *sql, sqlite3_stmt **ret);
/* The same for code that works in SQLite result codes: SQLITE_OK, or the
 * code preparing failed with. */
int store_prepare_rc(Store *s, const char *sql, sqlite3_stmt **ret);
/* Done with a statement from store_prepare() (NULL is fine). */
void store_finish(Store *s, sqlite3_stmt *st);
/* Step st, which returns no rows, finish it and check the outcome: 0 or
 * -errno; what names the operation for the log. */
int store_step_done(Store *s, sqlite3_stmt *st, const char *what);

/* The first column of the first row of sql, run with one text parameter
 * (NULL binds NULL): 0 and *ret, -ENOENT when there is no row, -errno. */
int store_get_int64(Store *s, const char *sql, const char *param, int64_t *ret);

/* Every column of every row of sql (no parameters; NULL columns read as
 * ""), one after the other in a new strv in *ret (NULL when there are no
 * rows).  0, -errno. */
int store_get_strv(Store *s, const char *sql, char ***ret);

/* Run one statement without parameters or results from the statement
 * cache (BEGIN, COMMIT, SAVEPOINT …, run for every transaction).  -errno;
 * -EIO when failed. */
int store_run(Store *s, const char *sql);

/* Run SQL without results, any number of statements (schema).  -errno. */
int store_exec(Store *s, const char *sql);

/* BEGIN IMMEDIATE / COMMIT / ROLLBACK.  -errno; -EIO when failed. */
int store_begin(Store *s);
int store_commit(Store *s);
void store_rollback(Store *s);

/* Size of the database file and its WAL, in bytes. */
int store_size(Store *s, uint64_t *ret_bytes);

/* Read or write one row of the meta table (key/value text).  get: 0 and a
 * new string, -ENOENT, -errno. */
int store_meta_get(Store *s, const char *key, char **ret);
int store_meta_set(Store *s, const char *key, const char *value);
