/* SPDX-License-Identifier: MIT */
/*
 * store.c — SQLite store: open, lock, migrate, fail fast on I/O errors.
 *
 * Security: see store.h.
 */
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "fault.h"
#include "strutil.h"

/* Prepared statements kept for reuse, by their SQL text: preparing costs
 * more than running most of ours (the parser and code generator show up
 * first in a profile of the ingest path otherwise).  Open addressing; a
 * statement in use when the same SQL is asked for again (a nested use) is
 * prepared afresh and finalized after it. */
#define STORE_STMTS 256 /* a power of two, well above the statements we have */

typedef struct StoreStmt {
        char *sql; /* NULL: empty */
        sqlite3_stmt *stmt;
        bool busy;
} StoreStmt;

struct Store {
        sqlite3 *db;
        StoreStmt stmts[STORE_STMTS];
        unsigned n_stmts;
        char *path;
        char *directory;
        int lock_fd;
        int schema_version;
        char *instance_id;
        bool failed;
        StoreFailureHandler on_failure;
        void *userdata;

        /* Group commit (store_attach_sync()).  The loop's side: */
        sd_event_source *sync_source; /* the syncer's eventfd */
        int sync_efd, wal_fd, dir_fd;
        bool nosync_txn; /* the open transaction is a store_begin_nosync() one */
        bool level_normal; /* the connection is at synchronous=NORMAL */
        uint64_t commits; /* no-sync commits made: the marks */
        uint64_t requested; /* the highest mark asked to be synced */
        uint64_t durable; /* the loop's copy of synced */
        StoreWaiter *waiters, **waiters_tail; /* oldest first, marks ascending */
        /* The thread's, shared under sync_lock: */
        pthread_t sync_thread;
        bool sync_running, sync_stop;
        pthread_mutex_t sync_lock;
        pthread_cond_t sync_cond;
        uint64_t sync_want, synced;
        int sync_error;
        bool dir_synced;
};

sqlite3 *store_db(Store *s) {
        return s->db;
}

int store_schema_version(Store *s) {
        return s->schema_version;
}

const char *store_path(Store *s) {
        return s->path;
}

const char *store_instance_id(Store *s) {
        return s->instance_id;
}

bool store_failed(Store *s) {
        return s->failed;
}

void store_set_failure_handler(Store *s, StoreFailureHandler h, void *userdata) {
        s->on_failure = h;
        s->userdata = userdata;
}

static bool rc_is_fatal(int rc) {
        switch (rc & 0xff) {
        case SQLITE_IOERR:
        case SQLITE_FULL:
        case SQLITE_CORRUPT:
        case SQLITE_NOTADB:
        case SQLITE_CANTOPEN:
        case SQLITE_READONLY:
                return true;
        default:
                return false;
        }
}

static int rc_to_errno(int rc) {
        switch (rc & 0xff) {
        case SQLITE_OK:
        case SQLITE_ROW:
        case SQLITE_DONE:
                return 0;
        case SQLITE_NOMEM:
                return -ENOMEM;
        case SQLITE_BUSY:
        case SQLITE_LOCKED:
                return -EBUSY;
        case SQLITE_FULL:
                return -ENOSPC;
        case SQLITE_CONSTRAINT:
                return -EEXIST;
        case SQLITE_READONLY:
                return -EROFS;
        case SQLITE_CANTOPEN:
                return -ENOENT;
        case SQLITE_CORRUPT:
        case SQLITE_NOTADB:
                return -EBADMSG;
        case SQLITE_IOERR:
                return -EIO;
        case SQLITE_ERROR: /* SQL error: a bug or a bad migration */
        case SQLITE_MISUSE:
        case SQLITE_RANGE:
                return -EINVAL;
        default:
                return -EPROTO;
        }
}

static void fail(Store *s, int error, const char *what) {
        if (s->failed)
                return;
        s->failed = true;
        if (s->on_failure)
                s->on_failure(s, error, what, s->userdata);
}

int store_check(Store *s, int rc, const char *what) {
        int r = rc_to_errno(rc);

        if (r == 0)
                return 0;
        if (rc_is_fatal(rc))
                fail(s, r, what);
        return r;
}

int store_exec(Store *s, const char *sql) {
        if (s->failed)
                return -EIO;
        return store_check(s, sqlite3_exec(s->db, sql, NULL, NULL, NULL), sql);
}

/* FNV-1a over the length and at most the first and the last 24 bytes:
 * hashing whole statements (often 200 bytes) on every use showed in the
 * ingest profile; statements that share both ends and the length only
 * share a probe sequence, the comparison tells them apart. */
static size_t sql_hash(const char *sql) {
        size_t n = strlen(sql);
        uint32_t h = 2166136261u ^ (uint32_t) n;
        const unsigned char *p = (const unsigned char *) sql;

        for (size_t i = 0; i < n; i = (i == 23 && n > 48) ? n - 24 : i + 1)
                h = (h ^ p[i]) * 16777619u;
        return h & (STORE_STMTS - 1);
}

/* The slot that holds sql, or the empty one where it would go. */
static StoreStmt *stmt_slot(Store *s, const char *sql) {
        for (size_t i = sql_hash(sql), n = 0; n < STORE_STMTS; i = (i + 1) & (STORE_STMTS - 1), n++) {
                StoreStmt *e = &s->stmts[i];
                if (!e->sql || streq(e->sql, sql))
                        return e;
        }
        return NULL;
}

int store_prepare(Store *s, const char *sql, sqlite3_stmt **ret) {
        StoreStmt *e = stmt_slot(s, sql);
        sqlite3_stmt *st = NULL;
        int rc;

        if (e && e->sql && !e->busy) {
                e->busy = true;
                *ret = e->stmt;
                return 0;
        }
        /* Keep it if there is room (the table at most 3/4 full) and the
         * copy of its text can be made; otherwise it is one-off. */
        bool keep = e && !e->sql && s->n_stmts < STORE_STMTS / 4 * 3;
        rc = sqlite3_prepare_v3(s->db, sql, -1, keep ? SQLITE_PREPARE_PERSISTENT : 0, &st, NULL);
        if (rc != SQLITE_OK) {
                sqlite3_finalize(st);
                return store_check(s, rc, "prepare statement") ?: -EIO;
        }
        if (keep && (e->sql = mem_strdup(sql))) {
                e->stmt = st;
                e->busy = true;
                s->n_stmts++;
        }
        *ret = st;
        return 0;
}

int store_prepare_rc(Store *s, const char *sql, sqlite3_stmt **ret) {
        return store_prepare(s, sql, ret) < 0 ? sqlite3_extended_errcode(s->db) : SQLITE_OK;
}

void store_finish(Store *s, sqlite3_stmt *st) {
        const char *sql;
        StoreStmt *e;

        if (!st)
                return;
        sql = sqlite3_sql(st);
        e = sql ? stmt_slot(s, sql) : NULL;
        if (e && e->stmt == st) {
                (void) sqlite3_reset(st);
                (void) sqlite3_clear_bindings(st);
                e->busy = false;
        } else
                sqlite3_finalize(st);
}

int store_step_done(Store *s, sqlite3_stmt *st, const char *what) {
        int rc = sqlite3_step(st);

        store_finish(s, st);
        return store_check(s, rc == SQLITE_DONE ? SQLITE_OK : rc, what);
}

int store_get_int64(Store *s, const char *sql, const char *param, int64_t *ret) {
        sqlite3_stmt *st;
        int64_t v = 0;
        int rc, r;

        r = store_prepare(s, sql, &st);
        if (r < 0)
                return r;
        if (param)
                sqlite3_bind_text(st, 1, param, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
                v = sqlite3_column_int64(st, 0);
        store_finish(s, st);
        if (rc == SQLITE_DONE)
                return -ENOENT;
        r = store_check(s, rc == SQLITE_ROW ? SQLITE_OK : rc, sql);
        if (r < 0)
                return r;
        *ret = v;
        return 0;
}

int store_get_strv(Store *s, const char *sql, char ***ret) {
        _cleanup_(strv_freep) char **l = NULL;
        sqlite3_stmt *st;
        int r, rc;

        r = store_prepare(s, sql, &st);
        if (r < 0)
                return r;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW)
                for (int i = 0; i < sqlite3_column_count(st); i++)
                        if (strv_extend(&l, strempty((const char *) sqlite3_column_text(st, i))) < 0) {
                                store_finish(s, st);
                                return -ENOMEM;
                        }
        store_finish(s, st);
        r = store_check(s, rc == SQLITE_DONE ? SQLITE_OK : rc, sql);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(l);
        return 0;
}

int store_run(Store *s, const char *sql) {
        sqlite3_stmt *st;
        int r;

        if (s->failed)
                return -EIO;
        r = store_prepare(s, sql, &st);
        if (r < 0)
                return r;
        return store_step_done(s, st, sql);
}

/* The connection's level is FULL except within a no-sync transaction:
 * SQLite lets it change only between transactions, and statements run
 * outside any (autocommit) must stay synchronous.  Through sqlite3_exec(),
 * not the statement cache: the pragma acts when it is compiled. */
static int set_synchronous(Store *s, bool full) {
        int r;

        if (s->level_normal != full)
                return 0;
        r = store_check(s,
                        sqlite3_exec(s->db, full ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL", NULL,
                                     NULL, NULL),
                        "set synchronous");
        if (r < 0)
                return r;
        s->level_normal = !full;
        return 0;
}

/* Back to FULL after a no-sync transaction; should that fail (no memory),
 * the next store_begin() tries again before it starts. */
static void end_nosync(Store *s) {
        if (!s->nosync_txn)
                return;
        s->nosync_txn = false;
        if (sqlite3_get_autocommit(s->db))
                (void) set_synchronous(s, true);
}

int store_begin(Store *s) {
        int r = set_synchronous(s, true);
        if (r < 0)
                return r;
        return store_run(s, "BEGIN IMMEDIATE");
}

int store_begin_nosync(Store *s) {
        int r;

        if (!s->sync_running)
                return store_begin(s);
        if (s->failed)
                return -EIO;
        r = set_synchronous(s, false);
        if (r < 0)
                return r;
        r = store_run(s, "BEGIN IMMEDIATE");
        if (r < 0) {
                (void) set_synchronous(s, true);
                return r;
        }
        s->nosync_txn = true;
        return 0;
}

int store_commit(Store *s) {
        int r = store_run(s, "COMMIT");
        if (r < 0)
                store_rollback(s);
        else if (s->nosync_txn)
                s->commits++;
        end_nosync(s);
        return r;
}

void store_rollback(Store *s) {
        if (!sqlite3_get_autocommit(s->db))
                (void) sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        end_nosync(s);
}

/* fdatasync() the log; fsync() the directory too until it has been once,
 * so that the log's name is on disk as well (SQLite does this at its first
 * sync of a log it created; at level NORMAL that would be a checkpoint). */
static int sync_fds(Store *s, bool dir) {
        if (fdatasync(s->wal_fd) < 0)
                return -errno;
        if (dir && fsync(s->dir_fd) < 0)
                return -errno;
        return 0;
}

/* The syncer: one fdatasync() covers every mark asked for before it
 * began; a failure is final (after a failed fsync the kernel may have
 * dropped the pages, so a retry could report success for data that is
 * gone). */
static void *sync_main(void *userdata) {
        Store *s = userdata;
        int r = 0;

        pthread_mutex_lock(&s->sync_lock);
        while (r >= 0) {
                while (!s->sync_stop && s->sync_want <= s->synced)
                        pthread_cond_wait(&s->sync_cond, &s->sync_lock);
                if (s->sync_stop)
                        break;
                uint64_t want = s->sync_want;
                bool dir = !s->dir_synced;
                pthread_mutex_unlock(&s->sync_lock);

                FAULT_WAIT("deliveryd/store/before-sync");
                r = sync_fds(s, dir);

                pthread_mutex_lock(&s->sync_lock);
                if (r < 0)
                        s->sync_error = r;
                else {
                        s->synced = want;
                        s->dir_synced = true;
                }
                pthread_mutex_unlock(&s->sync_lock);
                eventfd_wake(s->sync_efd);
                pthread_mutex_lock(&s->sync_lock);
        }
        pthread_mutex_unlock(&s->sync_lock);
        return NULL;
}

/* Call the waiters whose mark is on disk; all of them when the sync
 * failed.  A waiter may queue another: it goes at the end. */
static void run_waiters(Store *s, int error) {
        while (s->waiters && (error < 0 || s->waiters->mark <= s->durable)) {
                StoreWaiter *w = s->waiters;
                s->waiters = w->next;
                if (!s->waiters)
                        s->waiters_tail = &s->waiters;
                w->next = NULL;
                w->fn(w, error);
        }
}

static int on_sync(sd_event_source *source _unused_, int fd, uint32_t revents _unused_, void *userdata) {
        Store *s = userdata;
        uint64_t v, synced;
        int error;

        (void) read(fd, &v, sizeof v);
        pthread_mutex_lock(&s->sync_lock);
        synced = s->synced;
        error = s->sync_error;
        pthread_mutex_unlock(&s->sync_lock);

        if (synced > s->durable)
                s->durable = synced;
        if (error < 0) {
                /* Once: the thread has stopped. */
                (void) sd_event_source_set_enabled(s->sync_source, SD_EVENT_OFF);
                fail(s, error, "sync the write-ahead log");
        }
        run_waiters(s, error < 0 ? error : 0);
        return 0;
}

int store_attach_sync(Store *s, sd_event *e) {
        _cleanup_free_ char *wal = NULL;
        sigset_t all, old;
        int r;

        if (s->sync_running)
                return -EALREADY;
        /* A write transaction makes sure the log exists, so that it can be
         * opened (and synced) by name. */
        r = store_begin(s);
        if (r >= 0)
                r = store_commit(s);
        if (r < 0)
                return r;
        wal = mem_printf("%s-wal", s->path);
        if (!wal)
                return -ENOMEM;
        s->wal_fd = open(wal, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (s->wal_fd < 0)
                return -errno;
        s->dir_fd = open(s->directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (s->dir_fd < 0)
                return -errno;
        s->sync_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (s->sync_efd < 0)
                return -errno;
        r = sd_event_add_io(e, &s->sync_source, s->sync_efd, EPOLLIN, on_sync, s);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(s->sync_source, "store-sync");

        /* Signals are the loop's. */
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        r = -pthread_create(&s->sync_thread, NULL, sync_main, s);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (r < 0) {
                s->sync_source = sd_event_source_disable_unref(s->sync_source);
                return r;
        }
        (void) pthread_setname_np(s->sync_thread, "deliveryd-sync");
        s->sync_running = true;
        return 0;
}

uint64_t store_durable_mark(Store *s) {
        uint64_t mark = s->commits;

        if (mark > s->durable && mark > s->requested) {
                s->requested = mark;
                pthread_mutex_lock(&s->sync_lock);
                s->sync_want = mark;
                pthread_cond_signal(&s->sync_cond);
                pthread_mutex_unlock(&s->sync_lock);
        }
        return mark;
}

bool store_durable(Store *s, uint64_t mark) {
        return mark <= s->durable;
}

void store_when_durable(Store *s, StoreWaiter *w, StoreDurableFn fn, void *owner) {
        *w = (StoreWaiter){ .mark = store_durable_mark(s), .fn = fn, .owner = owner };
        if (!s->waiters && store_durable(s, w->mark)) {
                fn(w, 0);
                return;
        }
        if (s->failed && !store_durable(s, w->mark)) {
                /* The sync may never come: nothing more is promised. */
                fn(w, -EIO);
                return;
        }
        *s->waiters_tail = w;
        s->waiters_tail = &w->next;
}

StoreWaiter *store_waiters_take(Store *s, void *owner) {
        StoreWaiter *taken = NULL, **taken_tail = &taken, **p = &s->waiters;

        while (*p) {
                StoreWaiter *w = *p;
                if (w->owner != owner) {
                        p = &w->next;
                        continue;
                }
                *p = w->next;
                w->next = NULL;
                *taken_tail = w;
                taken_tail = &w->next;
        }
        s->waiters_tail = &s->waiters;
        while (*s->waiters_tail)
                s->waiters_tail = &(*s->waiters_tail)->next;
        return taken;
}

void store_waiters_settle(Store *s, void *owner) {
        StoreWaiter *w = store_waiters_take(s, owner);
        int r = w ? store_sync(s) : 0;

        while (w) {
                StoreWaiter *next = w->next;
                w->fn(w, r);
                w = next;
        }
}

int store_sync(Store *s) {
        uint64_t mark = s->commits;
        bool dir;
        int r;

        if (mark <= s->durable)
                return 0;
        if (s->failed)
                return -EIO;
        pthread_mutex_lock(&s->sync_lock);
        dir = !s->dir_synced;
        pthread_mutex_unlock(&s->sync_lock);
        r = sync_fds(s, dir);
        if (r < 0) {
                fail(s, r, "sync the write-ahead log");
                return r;
        }
        pthread_mutex_lock(&s->sync_lock);
        s->dir_synced = true;
        pthread_mutex_unlock(&s->sync_lock);
        s->durable = mark;
        return 0;
}

int store_meta_get(Store *s, const char *key, char **ret) {
        sqlite3_stmt *st = NULL;
        int rc, r;

        r = store_prepare(s, "SELECT value FROM meta WHERE key = ?", &st);
        if (r < 0)
                return r;
        sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
                char *v = mem_strdup((const char *) sqlite3_column_text(st, 0));
                r = v ? 0 : -ENOMEM;
                if (v)
                        *ret = v;
        } else if (rc == SQLITE_DONE)
                r = -ENOENT;
        else
                r = store_check(s, rc, "read meta");
        store_finish(s, st);
        return r;
}

int store_meta_set(Store *s, const char *key, const char *value) {
        sqlite3_stmt *st = NULL;
        int r;

        if (s->failed)
                return -EIO;
        r = store_prepare(s,
                          "INSERT INTO meta (key, value) VALUES (?, ?) "
                          "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                          &st);
        if (r < 0)
                return r;
        sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC);
        return store_step_done(s, st, "write meta");
}

static int read_user_version(sqlite3 *db, int *ret) {
        sqlite3_stmt *st = NULL;
        int rc;

        rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL);
        if (rc != SQLITE_OK)
                return rc;
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
                *ret = sqlite3_column_int(st, 0);
                rc = SQLITE_OK;
        }
        sqlite3_finalize(st);
        return rc;
}

static int migrate(Store *s, const StoreMigration *m, size_t n, char **ret_error) {
        int version = 0, rc;

        rc = read_user_version(s->db, &version);
        if (rc != SQLITE_OK) {
                *ret_error = mem_printf("cannot read schema version of %s: %s", s->path, sqlite3_errmsg(s->db));
                return store_check(s, rc, "read schema version") ?: -EIO;
        }
        if (n > 0 && version > m[n - 1].version) {
                *ret_error = mem_printf("%s has schema version %d, newer than this deliveryd knows (%d); "
                                        "run the newer deliveryd or restore a backup",
                                        s->path, version, m[n - 1].version);
                return -EPROTONOSUPPORT;
        }
        for (size_t i = 0; i < n; i++) {
                char *err = NULL;
                _cleanup_free_ char *sql = NULL;

                if (m[i].version <= version)
                        continue;
                sql = mem_printf("BEGIN IMMEDIATE;\n%s\nPRAGMA user_version = %d;\nCOMMIT;", m[i].sql, m[i].version);
                if (!sql)
                        return -ENOMEM;
                rc = sqlite3_exec(s->db, sql, NULL, NULL, &err);
                if (rc != SQLITE_OK) {
                        *ret_error = mem_printf("migration %d (%s) of %s failed: %s", m[i].version, m[i].name, s->path,
                                                err ? err : sqlite3_errmsg(s->db));
                        sqlite3_free(err);
                        store_rollback(s);
                        return store_check(s, rc, "migrate");
                }
                version = m[i].version;
        }
        s->schema_version = version;
        return 0;
}

/* One writer per state directory: a second daemon on the same directory
 * would interleave transactions with ours and break the ordering
 * guarantees, so it is refused at start.  flock() is released by the
 * kernel when we die, even by SIGKILL. */
static int take_lock(Store *s, char **ret_error) {
        _cleanup_free_ char *p = mem_printf("%s/deliveryd.lock", s->directory);
        char buf[32] = "";
        int fd;

        if (!p)
                return -ENOMEM;
        fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);
        if (fd < 0) {
                int r = -errno;
                *ret_error = mem_printf("cannot open lock file %s: %s", p, strerror(errno));
                return r;
        }
        if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
                int r = -errno;
                ssize_t k = pread(fd, buf, sizeof buf - 1, 0);
                buf[k > 0 ? k : 0] = '\0';
                buf[strcspn(buf, "\n")] = '\0';
                close(fd);
                if (r == -EWOULDBLOCK) {
                        *ret_error = mem_printf("state directory %s is in use by another deliveryd%s%s%s", s->directory,
                                                *buf ? " (pid " : "", buf, *buf ? ")" : "");
                        return -EBUSY;
                }
                *ret_error = mem_printf("cannot lock %s: %s", p, strerror(-r));
                return r;
        }
        snprintf(buf, sizeof buf, "%d\n", (int) getpid());
        if (ftruncate(fd, 0) < 0 || pwrite(fd, buf, strlen(buf), 0) < 0) {
                int r = -errno;
                *ret_error = mem_printf("cannot write lock file %s: %s", p, strerror(errno));
                close(fd);
                return r;
        }
        s->lock_fd = fd;
        return 0;
}

static void close_fd(int fd) {
        if (fd >= 0)
                (void) close(fd);
}

Store *store_close(Store *s) {
        if (!s)
                return NULL;
        if (s->sync_running) {
                pthread_mutex_lock(&s->sync_lock);
                s->sync_stop = true;
                pthread_cond_signal(&s->sync_cond);
                pthread_mutex_unlock(&s->sync_lock);
                pthread_join(s->sync_thread, NULL);
                /* SQLite's own close syncs at its checkpoint; a failing
                 * disk is reported there. */
                (void) store_sync(s);
        }
        sd_event_source_disable_unref(s->sync_source);
        close_fd(s->sync_efd);
        close_fd(s->wal_fd);
        close_fd(s->dir_fd);
        pthread_mutex_destroy(&s->sync_lock);
        pthread_cond_destroy(&s->sync_cond);
        for (size_t i = 0; i < STORE_STMTS; i++) {
                sqlite3_finalize(s->stmts[i].stmt);
                free(s->stmts[i].sql);
        }
        if (s->db)
                sqlite3_close_v2(s->db);
        if (s->lock_fd >= 0)
                close(s->lock_fd);
        free(s->path);
        free(s->directory);
        free(s->instance_id);
        free(s);
        return NULL;
}

int store_open_with(const char *state_directory, const StoreMigration *m, size_t n, Store **ret, char **ret_error) {
        _cleanup_(store_closep) Store *s = NULL;
        struct stat st;
        int rc, r;

        *ret_error = NULL;
        s = mem_new(Store, 1);
        if (!s)
                return -ENOMEM;
        s->lock_fd = s->sync_efd = s->wal_fd = s->dir_fd = -EBADF;
        s->waiters_tail = &s->waiters;
        pthread_mutex_init(&s->sync_lock, NULL);
        pthread_cond_init(&s->sync_cond, NULL);
        s->directory = mem_strdup(state_directory);
        s->path = mem_printf("%s/deliveryd.sqlite", state_directory);
        if (!s->directory || !s->path)
                return -ENOMEM;

        r = mkdir_p(state_directory, 0750);
        if (r < 0) {
                *ret_error = mem_printf("cannot create state directory %s: %s", state_directory, strerror(-r));
                return r;
        }
        if (stat(state_directory, &st) < 0 || !S_ISDIR(st.st_mode)) {
                *ret_error = mem_printf("state directory %s is not a directory", state_directory);
                return -ENOTDIR;
        }

        r = take_lock(s, ret_error);
        if (r < 0)
                return r;

        rc = sqlite3_open_v2(s->path, &s->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW,
                             NULL);
        if (rc != SQLITE_OK) {
                *ret_error = mem_printf("cannot open %s: %s", s->path, s->db ? sqlite3_errmsg(s->db) : "out of memory");
                return rc_to_errno(rc) ?: -EIO;
        }
        (void) chmod(s->path, 0640);
        sqlite3_extended_result_codes(s->db, 1);
        sqlite3_busy_timeout(s->db, 5000);

        /* WAL: readers never block the writer; synchronous=FULL: COMMIT
         * returns after the WAL is on disk, which is what lets us
         * acknowledge a message right after it. */
        rc = sqlite3_exec(s->db,
                          "PRAGMA journal_mode = WAL;"
                          "PRAGMA synchronous = FULL;"
                          "PRAGMA foreign_keys = ON;"
                          "PRAGMA trusted_schema = OFF;",
                          NULL, NULL, NULL);
        if (rc != SQLITE_OK) {
                *ret_error = mem_printf("cannot set up %s: %s", s->path, sqlite3_errmsg(s->db));
                return rc_to_errno(rc) ?: -EIO;
        }

        r = migrate(s, m, n, ret_error);
        if (r < 0)
                return r;

        if (s->schema_version >= 1) {
                r = store_meta_get(s, "instance_id", &s->instance_id);
                if (r < 0 && r != -ENOENT) {
                        *ret_error = mem_printf("cannot read %s: %s", s->path, sqlite3_errmsg(s->db));
                        return r;
                }
        }
        *ret = TAKE_PTR(s);
        return 0;
}

int store_open(const char *state_directory, Store **ret, char **ret_error) {
        size_t n;
        const StoreMigration *m = store_migrations(&n);

        return store_open_with(state_directory, m, n, ret, ret_error);
}

int store_size(Store *s, uint64_t *ret_bytes) {
        _cleanup_free_ char *wal = mem_printf("%s-wal", s->path);
        struct stat st;
        uint64_t total = 0;

        if (!wal)
                return -ENOMEM;
        if (stat(s->path, &st) < 0)
                return -errno;
        total += (uint64_t) st.st_size;
        if (stat(wal, &st) == 0)
                total += (uint64_t) st.st_size;
        *ret_bytes = total;
        return 0;
}
