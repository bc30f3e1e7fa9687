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
#include <systemd/sd-event.h>
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

/* Group commit.  Once attached to a loop, the store keeps a thread of its
 * own that fdatasync()s the write-ahead log.  A transaction begun with
 * store_begin_nosync() commits without waiting for the disk: SQLite has
 * written the log when store_commit() returns (safe from a crash of the
 * process, not yet from one of the machine), and one sync, made off the
 * loop, covers every commit made before it began.  Whoever promises such a
 * commit to the outside (an acknowledgement, a send) queues a waiter after
 * the commit with store_when_durable() and keeps the promise when it is
 * called.  A failed sync fails the store (as any I/O error does: the
 * failure handler runs) and every waiter hears the error: nothing after
 * the last durable point may then be promised.
 *
 * Not attached (tests, tools), or attached but unable to open the log,
 * every transaction is synchronous=FULL and every waiter is called at
 * once. */
int store_attach_sync(Store *s, sd_event *e);
/* BEGIN IMMEDIATE for a transaction whose COMMIT need not wait for the
 * disk (see above).  -errno; -EIO when failed. */
int store_begin_nosync(Store *s);
/* A mark for everything committed so far, and a request that the thread
 * sync it. */
uint64_t store_durable_mark(Store *s);
/* Whether everything up to mark is on disk. */
bool store_durable(Store *s, uint64_t mark);

/* Something that waits for the disk, embedded in its owner's struct. */
typedef struct StoreWaiter StoreWaiter;
typedef void (*StoreDurableFn)(StoreWaiter *w, int error);
struct StoreWaiter {
        StoreWaiter *next;
        uint64_t mark;
        StoreDurableFn fn;
        void *owner;
};
/* Call fn(w, 0) once everything committed so far is on disk: at once
 * when it is already and no one waits before it, otherwise from the loop
 * when the sync thread says so; fn(w, -errno) when the sync failed, and at
 * once when the store has failed already (a sync may never come).
 * Waiters are called in the order they came.  owner is for
 * store_waiters_take(). */
void store_when_durable(Store *s, StoreWaiter *w, StoreDurableFn fn, void *owner);
/* Take every waiter of owner out of the queue (the owner goes away), in
 * order, linked by next; their functions are not called. */
StoreWaiter *store_waiters_take(Store *s, void *owner);
/* The owner goes away but its waiters must hear: sync now (on this
 * thread) and call each of owner's waiters with the outcome. */
void store_waiters_settle(Store *s, void *owner);
/* Sync the log now, on the calling thread (at shutdown, for what still
 * waits): 0 when everything committed is durable, -errno (the store has
 * then failed). */
int store_sync(Store *s);

/* Size of the database file and its WAL, in bytes. */
int store_size(Store *s, uint64_t *ret_bytes);

/* Read or write one row of the meta table (key/value text).  get: 0 and a
 * new string, -ENOENT, -errno. */
int store_meta_get(Store *s, const char *key, char **ret);
int store_meta_set(Store *s, const char *key, const char *value);
