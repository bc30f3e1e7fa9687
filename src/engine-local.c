/* SPDX-License-Identifier: MIT */
/*
 * engine-local.c — engine.backend = local (see engine-local.h): the
 * durable ASL engine and its own tasks.
 *
 * One transaction per transition: load the execution row, apply what
 * happened (the time passing, a callback), step the interpreter, run the
 * plain lambda:invoke tasks it asks for right there (each in a SAVEPOINT,
 * so that a task that fails leaves no half effect), step again, … until it
 * waits for a callback or the time; register the callback tasks' tokens;
 * store the new state and its next deadline; COMMIT.  A crash before the
 * COMMIT leaves the previous state, and the same tasks run again from it.
 *
 * Security: see engine.h.  Task inputs are built by the definition from
 * the order; the local tasks check every field they read.
 */
#include "engine-local.h"

#include <errno.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "alloc.h"
#include "asl.h"
#include "conversation.h"
#include "log.h"
#include "strutil.h"
#include "tasks.h"
#include "template.h"

/* Rounds of "run the tasks, step" in one transition before giving up (a
 * definition that loops through plain tasks forever). */
#define DRIVE_ROUNDS_MAX 200
/* Executions run per engine_run_due() call; the rest on the next one. */
#define RUN_DUE_BATCH 64
/* After a transition failed for want of memory or a busy store. */
#define RETRY_LATER_USEC (1 * USEC_PER_SEC)

typedef struct EngineLocal {
        EngineContext ctx;
        AslDefinition *def;
        char def_hash[65];
        EngineWakeup wakeup;
} EngineLocal;

static uint64_t now_usec(EngineLocal *l) {
        struct timespec ts;

        if (l->ctx.clock)
                return l->ctx.clock(l->ctx.clock_data);
        clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / NSEC_PER_USEC;
}

static const Snapshot *snapshot(EngineLocal *l) {
        return l->ctx.snapshot(l->ctx.userdata);
}

/* ---- the definition ------------------------------------------------------ */

static int definition_hash(const char *text, char out[65]) {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned n = 0;

        unsigned long before = alloc_failures();
        if (EVP_Digest(text, strlen(text), md, &n, EVP_sha256(), NULL) != 1 || n != 32)
                return alloc_errno_since(before, -EIO);
        for (unsigned i = 0; i < n; i++)
                snprintf(out + 2 * i, 3, "%02x", md[i]);
        return 0;
}

/* Read and load the definition at path, with its hash (char[65]) when
 * ret_hash is not NULL.  -EINVAL with the reason in *ret_error. */
static int read_definition(const char *path, AslDefinition **ret_def, char *ret_hash, char **ret_error) {
        _cleanup_fclose_ FILE *f = NULL;
        _cleanup_free_ char *text = NULL, *err = NULL;
        size_t n = 0, size = 0;
        int r;

        f = fopen(strempty(path), "re");
        if (!f) {
                r = -errno;
                *ret_error = mem_printf("engine.definition %s: %s", strempty(path), strerror(-r));
                return -EINVAL;
        }
        for (;;) {
                if (n + 4096 + 1 > size) {
                        size_t ns = size ? size * 2 : 16384;
                        char *t;
                        if (ns > 4 * 1024 * 1024) {
                                *ret_error = mem_printf("engine.definition %s: larger than 4 MiB", path);
                                return -EINVAL;
                        }
                        t = mem_realloc(text, ns);
                        if (!t)
                                return -ENOMEM;
                        text = t;
                        size = ns;
                }
                size_t k = fread(text + n, 1, size - n - 1, f);
                n += k;
                if (k == 0)
                        break;
        }
        if (ferror(f)) {
                *ret_error = mem_printf("engine.definition %s: read error", path);
                return -EINVAL;
        }
        text[n] = 0;
        r = asl_definition_load(text, ret_def, &err);
        if (r == -EINVAL) {
                *ret_error = mem_printf("engine.definition %s: %s", path, strempty(err));
                return r;
        }
        if (r < 0)
                return r;
        return ret_hash ? definition_hash(text, ret_hash) : 0;
}

static int load_definition(EngineLocal *l, char **ret_error) {
        return read_definition(snapshot(l)->config->engine_definition, &l->def, l->def_hash, ret_error);
}

int engine_local_check_definition(const char *path, char **ret_error) {
        _cleanup_(asl_definition_unrefp) AslDefinition *def = NULL;
        return read_definition(path, &def, NULL, ret_error);
}

/* ---- rows ---------------------------------------------------------------- */

/* The execution named id: 0 and *ret, -ENOENT, -EINVAL when the stored
 * state does not fit the definition (why in *ret_error), -errno. */
static int exec_load(EngineLocal *l, const char *id, AslExecution **ret, char **ret_error) {
        sqlite3_stmt *st = NULL;
        _cleanup_(json_decrefp) json_t *j = NULL;
        json_error_t jerr;
        int rc, r;

        r = store_prepare(l->ctx.store, "SELECT state FROM executions WHERE name = ?", &st);
        if (r < 0)
                return r;
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
                j = json_loads((const char *) sqlite3_column_text(st, 0), 0, &jerr);
        else
                r = rc == SQLITE_DONE ? -ENOENT : store_check(l->ctx.store, rc, "read execution");
        store_finish(l->ctx.store, st);
        if (r < 0)
                return r;
        if (!j) {
                *ret_error = mem_printf("stored state is not JSON: %s", jerr.text);
                return -EINVAL;
        }
        return asl_execution_from_json(l->def, j, ret, ret_error);
}

/* Append events (GetExecutionHistory events, numbered on from the
 * stored ones) to execution id's history: one row. */
static int history_append(EngineLocal *l, const char *id, json_t *events) {
        _cleanup_free_ char *text = NULL;
        sqlite3_stmt *st = NULL;
        int r;

        if (json_array_size(events) == 0)
                return 0;
        text = mem_json_dumps(events, JSON_COMPACT);
        if (!text)
                return -ENOMEM;
        r = store_prepare(l->ctx.store, "INSERT INTO execution_events (execution, first_id, events) VALUES (?, ?, ?)",
                          &st);
        if (r < 0)
                return r;
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, json_integer_value(json_object_get(json_array_get(events, 0), "id")));
        sqlite3_bind_text(st, 3, text, -1, SQLITE_STATIC);
        return store_step_done(l->ctx.store, st, "store execution history");
}

/* The whole history of execution id: the stored events, then those x
 * holds still (an execution stored before the history had its table).
 * -EBADMSG when a stored row is not a JSON array. */
static int history_json(EngineLocal *l, const char *id, AslExecution *x, json_t **ret) {
        _cleanup_(json_decrefp) json_t *a = json_array();
        sqlite3_stmt *st = NULL;
        json_t *held, *ev;
        size_t i;
        int rc, r = 0;

        if (!a)
                return -ENOMEM;
        r = store_prepare(l->ctx.store, "SELECT events FROM execution_events WHERE execution = ? ORDER BY first_id",
                          &st);
        if (r < 0)
                return r;
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                json_error_t err;
                _cleanup_(json_decrefp) json_t *some = json_loads((const char *) sqlite3_column_text(st, 0), 0, &err);
                if (!json_is_array(some))
                        r = some || json_error_code(&err) != json_error_out_of_memory ? -EBADMSG : -ENOMEM;
                else if (json_array_extend(a, some) < 0)
                        r = -ENOMEM;
                if (r < 0)
                        break;
        }
        store_finish(l->ctx.store, st);
        if (r < 0)
                return r;
        r = store_check(l->ctx.store, rc == SQLITE_DONE ? SQLITE_OK : rc, "read execution history");
        if (r < 0)
                return r;
        held = asl_execution_history(x);
        if (!held)
                return -ENOMEM;
        json_array_foreach (held, i, ev)
                if (json_array_append(a, ev) < 0)
                        return -ENOMEM;
        *ret = TAKE_PTR(a);
        return 0;
}

/* Store x as execution id: its state in the row, the history events it
 * recorded since it was loaded (or made) appended to execution_events. */
static int exec_save(EngineLocal *l, const char *id, AslExecution *x, bool insert, uint64_t now) {
        _cleanup_(json_decrefp) json_t *j = NULL, *events = NULL;
        _cleanup_free_ char *text = NULL;
        sqlite3_stmt *st = NULL;
        uint64_t deadline = insert ? 0 : asl_execution_next_deadline(x);
        AslStatus status = asl_execution_status(x);
        int r;

        r = asl_execution_take_history(x, &events);
        if (r < 0)
                return r;
        r = asl_execution_to_json(x, &j);
        if (r < 0)
                return r;
        text = mem_json_dumps(j, JSON_COMPACT);
        if (!text)
                return -ENOMEM;
        r = store_prepare(
                l->ctx.store,
                insert ? "INSERT INTO executions (status, state, next_deadline, transitions, error, cause, "
                         "updated_at, definition_hash, created_at, name) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                       : "UPDATE executions SET status = ?, state = ?, next_deadline = ?, transitions = ?, "
                         "error = ?, cause = ?, updated_at = ?, definition_hash = ? WHERE name = ?",
                &st);
        if (r < 0)
                return r;
        sqlite3_bind_text(st, 1, asl_status_to_string(status), -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, text, -1, SQLITE_STATIC);
        if (status == ASL_RUNNING && deadline != UINT64_MAX)
                sqlite3_bind_int64(st, 3, (sqlite3_int64) deadline);
        sqlite3_bind_int64(st, 4, asl_execution_transitions(x));
        if (asl_execution_error(x))
                sqlite3_bind_text(st, 5, asl_execution_error(x), -1, SQLITE_STATIC);
        if (asl_execution_cause(x))
                sqlite3_bind_text(st, 6, asl_execution_cause(x), -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 7, (sqlite3_int64) now);
        sqlite3_bind_text(st, 8, l->def_hash, -1, SQLITE_STATIC);
        if (insert) {
                sqlite3_bind_int64(st, 9, (sqlite3_int64) now);
                sqlite3_bind_text(st, 10, id, -1, SQLITE_STATIC);
        } else
                sqlite3_bind_text(st, 9, id, -1, SQLITE_STATIC);
        r = store_check(l->ctx.store, sqlite3_step(st), "store execution");
        store_finish(l->ctx.store, st);
        if (r < 0)
                return r;
        /* After the row: the events refer to it. */
        return history_append(l, id, events);
}

/* An execution whose row cannot be restored (a definition changed under
 * it, a damaged row): FAILED, kept for the operator, the loop goes on. */
static int exec_mark_corrupt(EngineLocal *l, const char *id, const char *why, uint64_t now) {
        sqlite3_stmt *st = NULL;
        int r = store_prepare(l->ctx.store,
                              "UPDATE executions SET status = 'FAILED', next_deadline = NULL, error = "
                              "'deliveryd.StateCorrupt', cause = ?, updated_at = ? WHERE name = ?",
                              &st);

        if (r < 0)
                return r;
        sqlite3_bind_text(st, 1, why, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, (sqlite3_int64) now);
        sqlite3_bind_text(st, 3, id, -1, SQLITE_STATIC);
        r = store_check(l->ctx.store, sqlite3_step(st), "mark execution corrupt");
        store_finish(l->ctx.store, st);
        return r;
}

static int token_register(EngineLocal *l, const char *id, const char *token, const char *wait, uint64_t now) {
        sqlite3_stmt *st = NULL;
        int r = store_prepare(
                l->ctx.store,
                "INSERT OR IGNORE INTO execution_tokens (token, execution, wait, created_at) VALUES (?, ?, "
                "?, ?)",
                &st);

        if (r < 0)
                return r;
        sqlite3_bind_text(st, 1, token, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, wait, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, (sqlite3_int64) now);
        r = store_check(l->ctx.store, sqlite3_step(st), "register task token");
        store_finish(l->ctx.store, st);
        return r;
}

/* 1 when token is registered, 0 when not, -errno. */
static int token_known(EngineLocal *l, const char *token) {
        sqlite3_stmt *st = NULL;
        int r = store_prepare(l->ctx.store, "SELECT 1 FROM execution_tokens WHERE token = ?", &st), rc;

        if (r < 0)
                return r;
        sqlite3_bind_text(st, 1, token, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        r = rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : store_check(l->ctx.store, rc, "look up task token");
        store_finish(l->ctx.store, st);
        return r;
}

/* Forget the tokens of id that its execution no longer waits for. */
static int tokens_prune(EngineLocal *l, const char *id, const AslTask *t, size_t n) {
        _cleanup_free_ char *keep = NULL;
        sqlite3_stmt *st = NULL;
        json_t *a = json_array();
        int r;

        if (!a)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                if (t[i].callback && json_array_append_new(a, json_string(t[i].token)) < 0) {
                        json_decref(a);
                        return -ENOMEM;
                }
        keep = mem_json_dumps(a, JSON_COMPACT);
        json_decref(a);
        if (!keep)
                return -ENOMEM;
        r = store_prepare(l->ctx.store,
                          "DELETE FROM execution_tokens WHERE execution = ? AND token NOT IN (SELECT value FROM "
                          "json_each(?))",
                          &st);
        if (r < 0)
                return r;
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, keep, -1, SQLITE_STATIC);
        r = store_check(l->ctx.store, sqlite3_step(st), "forget task tokens");
        store_finish(l->ctx.store, st);
        return r;
}

/* ---- the local tasks ----------------------------------------------------- */

typedef struct LocalTask {
        EngineLocal *l;
        TaskContext *tc;
        const char *execution;
        const AslTask *task; /* NULL outside a workflow step (engine_notify_in_txn) */
} LocalTask;

static int task_fail(TaskFailure *f, const char *error, const char *cause) {
        f->error = mem_strdup(error);
        f->cause = mem_strdup(cause);
        if (!f->error || !f->cause) {
                task_failure_clear(f);
                return -ENOMEM;
        }
        return 1;
}

/* The order of the task's input {"order_id": ID}: 0, 1 (failed as a task), -errno. */
static int task_order(LocalTask *lt, json_t *input, json_t **ret, TaskFailure *f) {
        const char *id = json_string_value(json_object_get(input, "order_id"));
        int r;

        if (!id)
                return task_fail(f, "deliveryd.InvalidInput", "the input needs an order_id string");
        r = orders_get_json(lt->tc->orders, id, snapshot(lt->l)->config->http_public_url, ret);
        if (r == -EINVAL || r == -ENOENT)
                return task_fail(f, "deliveryd.OrderNotFound", "no order with that id");
        return r;
}

static uint64_t parse_rfc3339(const char *s) {
        struct tm tm = {};
        const char *end;

        if (!s)
                return 0;
        end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);
        if (!end || *end)
                return 0;
        time_t t = timegm(&tm);
        return t > 0 ? (uint64_t) t * USEC_PER_SEC : 0;
}

static int render(const Snapshot *s, NluLang lang, const char *id, const TemplateVar *v, size_t n, char **ret) {
        return template_render(s->templates, lang, id, v, n, ret);
}

/* Render template_id for order (JSON) and queue it to the customer. */
static int notify_order(LocalTask *lt, json_t *order, const char *template_id, const char *reason, const char *status,
                        int64_t *ret_id, TaskFailure *f) {
        const Snapshot *s = snapshot(lt->l);
        _cleanup_free_ char *body = NULL, *subject = NULL, *reason_text = NULL, *total = NULL, *fee = NULL,
                            *status_text = NULL;
        const char *lang_s = json_string_value(json_object_get(order, "lang"));
        const char *channel = json_string_value(json_object_get(order, "channel"));
        NluLang lang = nlu_lang_from_string(lang_s);
        uint64_t eta = parse_rfc3339(json_string_value(json_object_get(order, "eta")));
        char clock[16] = "", minutes[24] = "", id_text[16];
        int r;

        if (lang < 0)
                lang = NLU_LANG_PT;
        snprintf(id_text, sizeof id_text, "%s", strempty(json_string_value(json_object_get(order, "id"))));
        if (eta > 0) {
                uint64_t now = lt->tc->now_usec;
                conv_format_clock(eta, clock, sizeof clock);
                snprintf(minutes, sizeof minutes, "%" PRIu64,
                         eta > now ? (eta - now + 60 * USEC_PER_SEC - 1) / (60 * USEC_PER_SEC) : 0);
        }
        if (reason) {
                _cleanup_free_ char *rid = mem_printf("reason_%s", reason);
                if (!rid)
                        return -ENOMEM;
                r = render(s, lang, rid, NULL, 0, &reason_text);
                if (r == -ENOENT)
                        return task_fail(f, "deliveryd.InvalidInput", "no reason_* template for that reason");
                if (r < 0)
                        return r;
        }
        if (status) {
                _cleanup_free_ char *sid = mem_printf("status_name_%s", status);
                if (!sid)
                        return -ENOMEM;
                for (char *p = sid; *p; p++)
                        if (*p >= 'A' && *p <= 'Z')
                                *p = (char) (*p - 'A' + 'a');
                r = render(s, lang, sid, NULL, 0, &status_text);
                if (r < 0 && r != -ENOENT)
                        return r;
        }
        r = format_money(json_integer_value(json_object_get(order, "total_cents")), lang, &total);
        if (r < 0)
                return r;
        r = format_money(json_integer_value(json_object_get(order, "delivery_fee_cents")), lang, &fee);
        if (r < 0)
                return r;
        const TemplateVar v[] = {
                { "order_id", id_text },
                { "eta_time", clock },
                { "eta_minutes", minutes },
                { "tracking_url", json_string_value(json_object_get(order, "tracking_url")) },
                { "reason", reason_text },
                { "status", status_text },
                { "total", total },
                { "fee", fee },
                { "address", json_string_value(json_object_get(order, "address")) },
                { "zone", json_string_value(json_object_get(order, "zone_name")) },
                { "code", json_string_value(json_object_get(order, "pix_code")) },
        };
        r = render(s, lang, template_id, v, ELEMENTSOF(v), &body);
        if (r == -ENOENT)
                return task_fail(f, "deliveryd.InvalidInput", "no template with that id");
        if (r < 0)
                return r;
        OutboxMessage m = {
                .channel = streq_ptr(channel, "email") ? OUTBOX_EMAIL : OUTBOX_SMS,
                .to = json_string_value(json_object_get(order, "customer")),
                .body = body,
                .order_id = id_text,
        };
        if (m.channel == OUTBOX_EMAIL) {
                r = render(s, lang, "email_subject", NULL, 0, &subject);
                if (r < 0)
                        return r;
                m.subject = subject;
        }
        r = outbox_enqueue_in_txn(lt->l->ctx.outbox, &m, ret_id);
        if (r == -EINVAL)
                return task_fail(f, "deliveryd.InvalidInput", "the message cannot be sent to this customer");
        return r;
}

/* notify {"order_id", "template", "reason"?} → {"message_id": N} */
static int task_notify(LocalTask *lt, json_t *input, json_t **ret, TaskFailure *f) {
        _cleanup_(json_decrefp) json_t *order = NULL;
        const char *template_id = json_string_value(json_object_get(input, "template"));
        const char *reason = json_string_value(json_object_get(input, "reason"));
        int64_t mid = 0;
        int r;

        if (isempty(template_id))
                return task_fail(f, "deliveryd.InvalidInput", "notify needs a template id");
        r = task_order(lt, input, &order, f);
        if (r != 0)
                return r;
        r = notify_order(lt, order, template_id, reason, NULL, &mid, f);
        if (r != 0)
                return r;
        *ret = json_pack("{s:I}", "message_id", (json_int_t) mid);
        return *ret ? 0 : -ENOMEM;
}

/* track {"order_id", "token", "wait"}: the order's events now reach this
 * task (its token is registered for the execution).  The callback's
 * output, not this return, is what the state gets. */
static int task_track(LocalTask *lt, json_t *input, json_t **ret, TaskFailure *f) {
        const char *token = json_string_value(json_object_get(input, "token"));
        const char *wait = json_string_value(json_object_get(input, "wait"));
        int r;

        if (isempty(token) || !(streq_ptr(wait, "payment") || streq_ptr(wait, "status")))
                return task_fail(f, "deliveryd.InvalidInput", "track needs a token and wait: payment or status");
        if (!lt->task || !streq(lt->task->token, token))
                return task_fail(f, "deliveryd.InvalidInput", "track's token is not the task's own");
        r = token_register(lt->l, lt->execution, token, wait, lt->tc->now_usec);
        if (r < 0)
                return r;
        *ret = json_pack("{s:b}", "tracking", 1);
        return *ret ? 0 : -ENOMEM;
}

/* How much of the zone's delivery time is left once an order has status s. */
static uint64_t remaining(uint64_t zone_eta, const char *s) {
        if (streq_ptr(s, "PREPARING"))
                return zone_eta * 3 / 4;
        if (streq_ptr(s, "READY"))
                return zone_eta / 2;
        if (streq_ptr(s, "IN_DELIVERY"))
                return zone_eta / 3;
        return zone_eta;
}

/* eta {"order_id", "late": bool} → {"eta", "eta_minutes", "wait_seconds", "late"}:
 * the ETA from the order's status (never earlier than the one the
 * customer was told), or for a late order a new one engine.delay_step
 * from now; wait_seconds is how long until the order is late. */
static int task_eta(LocalTask *lt, json_t *input, json_t **ret, TaskFailure *f) {
        const Config *c = snapshot(lt->l)->config;
        const Catalog *cat = snapshot(lt->l)->catalog;
        _cleanup_(json_decrefp) json_t *order = NULL;
        json_t *late_j = json_object_get(input, "late");
        const char *zone = NULL, *status;
        uint64_t now = lt->tc->now_usec, zone_eta = 30 * 60 * USEC_PER_SEC, eta, next;
        char eta_s[32];
        int r;

        if (late_j && !json_is_boolean(late_j))
                return task_fail(f, "deliveryd.InvalidInput", "eta's late must be a boolean");
        r = task_order(lt, input, &order, f);
        if (r != 0)
                return r;
        zone = json_string_value(json_object_get(order, "zone"));
        status = json_string_value(json_object_get(order, "status"));
        for (size_t i = 0; zone && i < catalog_n_zones(cat); i++)
                if (streq(catalog_zone(cat, i)->id, zone))
                        zone_eta = catalog_zone(cat, i)->eta_usec;
        eta = parse_rfc3339(json_string_value(json_object_get(order, "eta")));
        if (json_is_true(late_j))
                next = now + c->engine_delay_step_usec;
        else
                next = MAX(eta, now + remaining(zone_eta, status));
        if (next != eta) {
                r = orders_set_eta_in_txn(lt->tc->orders, json_string_value(json_object_get(order, "id")), next, now);
                if (r < 0)
                        return r;
        }
        uint64_t late_at = next + c->engine_late_grace_usec;
        uint64_t wait = late_at > now ? (late_at - now + USEC_PER_SEC - 1) / USEC_PER_SEC : 1;
        orders_format_time(next, eta_s);
        *ret = json_pack("{s:s,s:I,s:I,s:b}", "eta", eta_s, "eta_minutes",
                         (json_int_t) ((next - MIN(next, now)) / (60 * USEC_PER_SEC)), "wait_seconds",
                         (json_int_t) MAX(wait, (uint64_t) 1), "late", json_is_true(late_j));
        return *ret ? 0 : -ENOMEM;
}

/* payment_received {"order_id"} → {"status": "paid"}: the Pix payment arrived. */
static int task_payment_received(LocalTask *lt, json_t *input, json_t **ret, TaskFailure *f) {
        const char *id = json_string_value(json_object_get(input, "order_id"));
        int r;

        if (!id)
                return task_fail(f, "deliveryd.InvalidInput", "payment_received needs an order_id string");
        r = orders_set_payment_in_txn(lt->tc->orders, id, "paid", NULL, lt->tc->now_usec);
        if (r == -ENOENT || r == -EINVAL)
                return task_fail(f, "deliveryd.OrderNotFound", "no order with that id");
        if (r < 0)
                return r;
        *ret = json_pack("{s:s}", "status", "paid");
        return *ret ? 0 : -ENOMEM;
}

static const struct {
        const char *name;
        int (*run)(LocalTask *lt, json_t *input, json_t **ret, TaskFailure *f);
} local_tasks[] = {
        { "notify", task_notify },
        { "track", task_track },
        { "eta", task_eta },
        { "payment_received", task_payment_received },
};

const char *const *engine_local_task_names(void) {
        static const char *const names[] = { "notify", "track", "eta", "payment_received", NULL };
        return names;
}

/* Run t: 0 and *ret, 1 failed as a task (*f), -errno. */
static int invoke(EngineLocal *l, const char *id, const AslTask *t, uint64_t now, json_t **ret, TaskFailure *f) {
        TaskContext tc = {
                .store = l->ctx.store,
                .orders = l->ctx.orders,
                .snapshot = snapshot(l),
                .now_usec = now,
        };
        LocalTask lt = { .l = l, .tc = &tc, .execution = id, .task = t };

        for (size_t i = 0; i < ELEMENTSOF(local_tasks); i++)
                if (streq(local_tasks[i].name, t->function)) {
                        if (!json_is_object(t->payload))
                                return task_fail(f, "deliveryd.InvalidInput", "the task's input must be an object");
                        return local_tasks[i].run(&lt, t->payload, ret, f);
                }
        return task_invoke(t->function, &tc, t->payload, ret, f);
}

/* ---- driving an execution -------------------------------------------------- */

/* Invoke t in a savepoint and report its outcome to x: 1 when reported,
 * 0 when the result comes later (a callback task that started well).
 * -errno only when the store failed or memory ran out while reporting. */
static int run_task(EngineLocal *l, const char *id, AslExecution *x, const AslTask *t, uint64_t now) {
        _cleanup_(json_decrefp) json_t *out = NULL;
        TaskFailure f = {};
        int r;

        r = store_run(l->ctx.store, "SAVEPOINT engine_task");
        if (r < 0)
                return r;
        r = invoke(l, id, t, now, &out, &f);
        if (r == 0) {
                r = store_run(l->ctx.store, "RELEASE engine_task");
                if (r < 0)
                        return r;
                if (t->callback)
                        return 0; /* the result comes through the token */
                r = asl_execution_task_succeeded(x, t->token, out, now);
                return r < 0 ? r : 1;
        }
        /* Failed: nothing of it stays. */
        int q = store_run(l->ctx.store, "ROLLBACK TO engine_task");
        if (q >= 0)
                q = store_run(l->ctx.store, "RELEASE engine_task");
        if (q < 0) {
                task_failure_clear(&f);
                return q;
        }
        if (r < 0) {
                if (store_failed(l->ctx.store))
                        return r;
                /* Worth another try: the definition's Retry decides. */
                r = asl_execution_task_failed(x, t->token, "deliveryd.Transient", strerror(-r), now);
        } else
                r = asl_execution_task_failed(x, t->token, f.error, f.cause, now);
        task_failure_clear(&f);
        return r < 0 ? r : 1;
}

/* The state x waits in (a pending task's), for tracing; static or borrowed. */
static const char *waiting_state(AslExecution *x, char *buf, size_t size) {
        AslTask *t = NULL;
        size_t n = 0;

        if (asl_execution_status(x) != ASL_RUNNING)
                return asl_status_to_string(asl_execution_status(x));
        if (asl_execution_transitions(x) == 0)
                return "(new)";
        if (asl_execution_pending_tasks(x, &t, &n) < 0 || n == 0) {
                asl_tasks_free(t, n);
                return "(timer)";
        }
        strscpy(buf, size, t[0].state);
        asl_tasks_free(t, n);
        return buf;
}

/* Step x, then run the tasks it waits for until only callbacks or the
 * time are left; register the callback tokens.  Inside a transaction. */
static int drive(EngineLocal *l, const char *id, AslExecution *x, uint64_t now) {
        AslTask *t = NULL;
        size_t n = 0;
        int r;

        for (unsigned round = 0;; round++) {
                bool ran = false;

                r = asl_execution_step(x, NULL, NULL);
                if (r < 0)
                        return r;
                if (asl_execution_status(x) != ASL_RUNNING)
                        return tokens_prune(l, id, NULL, 0);
                if (round >= DRIVE_ROUNDS_MAX)
                        return -ELOOP;
                r = asl_execution_pending_tasks(x, &t, &n);
                if (r < 0)
                        return r;
                for (size_t i = 0; i < n && r >= 0; i++) {
                        /* A callback task runs once (its token registered);
                         * then it waits. */
                        if (t[i].callback) {
                                r = token_known(l, t[i].token);
                                if (r != 0)
                                        continue;
                        }
                        r = run_task(l, id, x, &t[i], now);
                        ran = ran || r > 0;
                }
                if (r >= 0 && !ran)
                        r = tokens_prune(l, id, t, n);
                t = asl_tasks_free(t, n);
                n = 0;
                if (r < 0 || !ran)
                        return r;
        }
}

/* Every transition, one line: where the execution waited, what moved it
 * (the time, or the event the callback carried), where it waits now, and
 * how many state transitions that took. */
static void trace(const char *id, const char *from, const char *to, const char *cause, unsigned steps) {
        log_event("workflow order=%s old=%s new=%s cause=%s transitions=%u", id, from, to, cause, steps);
}

/* One transition of execution id in the caller's transaction: the time is
 * now, then the callback (output for token) or the heartbeat (token, with
 * no callback) if any, then drive.  A heartbeat comes after the time: a
 * wait whose heartbeat ran out before it times out first. */
static int transition_in_txn(EngineLocal *l, const char *id, json_t *callback, const char *token) {
        _cleanup_(asl_execution_freep) AslExecution *x = NULL;
        _cleanup_free_ char *err = NULL;
        uint64_t now = now_usec(l);
        char before[128], after[128];
        const char *from;
        int r;

        r = exec_load(l, id, &x, &err);
        if (r == -EINVAL) {
                log_error("Execution of order %s cannot be restored (%s); marked FAILED.", id, strempty(err));
                return exec_mark_corrupt(l, id, strempty(err), now);
        }
        if (r < 0)
                return r;
        if (asl_execution_status(x) != ASL_RUNNING)
                return callback ? -ENOENT : 0;
        from = waiting_state(x, before, sizeof before);
        unsigned t0 = asl_execution_transitions(x);
        r = asl_execution_advance_time(x, now);
        if (r < 0)
                return r;
        if (callback) {
                r = asl_execution_task_succeeded(x, token, callback, now);
                if (r < 0)
                        return r;
        } else if (token) {
                r = asl_execution_task_heartbeat(x, token, now);
                if (r < 0 && r != -ENOENT) /* -ENOENT: no longer waited for */
                        return r;
        }
        r = drive(l, id, x, now);
        if (r < 0)
                return r;
        r = exec_save(l, id, x, false, now);
        if (r < 0)
                return r;
        /* A heartbeat that only moved a deadline is not a transition. */
        if (callback || !token || asl_execution_transitions(x) != t0)
                trace(id, from, waiting_state(x, after, sizeof after),
                      callback        ? strempty(json_string_value(json_object_get(callback, "event")))
                              : token ? "heartbeat"
                                      : "time",
                      asl_execution_transitions(x) - t0);
        return 0;
}

/* ---- timers ------------------------------------------------------------------ */

static int arm(EngineLocal *l);

static void on_wakeup(void *userdata) {
        (void) engine_local_ops.run_due(userdata);
}

static int next_deadline(EngineLocal *l, uint64_t *ret) {
        sqlite3_stmt *st = NULL;
        int r = store_prepare(l->ctx.store, "SELECT MIN(next_deadline) FROM executions WHERE status = 'RUNNING'", &st),
            rc;

        if (r < 0)
                return r;
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
                *ret = sqlite3_column_type(st, 0) == SQLITE_NULL ? UINT64_MAX : (uint64_t) sqlite3_column_int64(st, 0);
        else
                r = store_check(l->ctx.store, rc, "read next deadline");
        store_finish(l->ctx.store, st);
        return r;
}

static int arm_at(EngineLocal *l, uint64_t at) {
        return engine_wakeup_at(&l->wakeup, at);
}

static int arm(EngineLocal *l) {
        uint64_t at = UINT64_MAX;
        int r = next_deadline(l, &at);

        if (r < 0)
                return r;
        return arm_at(l, at);
}

/* ---- the backend ----------------------------------------------------------- */

static int local_new(const EngineContext *ctx, void **ret, char **ret_error) {
        EngineLocal *l = mem_new(EngineLocal, 1);
        int r;

        if (!l)
                return -ENOMEM;
        l->ctx = *ctx;
        l->wakeup = (EngineWakeup){ .event = ctx->event, .name = "engine", .run = on_wakeup, .userdata = l };
        r = load_definition(l, ret_error);
        if (r < 0) {
                asl_definition_unref(l->def);
                free(l);
                return r;
        }
        *ret = l;
        return 0;
}

static void local_free(void *b) {
        EngineLocal *l = b;

        if (!l)
                return;
        engine_wakeup_done(&l->wakeup);
        asl_definition_unref(l->def);
        free(l);
}

static void local_kick(void *b) {
        EngineLocal *l = b;
        engine_wakeup_now(&l->wakeup);
}

static int local_start(void *b) {
        EngineLocal *l = b;

        local_kick(l);
        return arm(l);
}

/* Up to RUN_DUE_BATCH due execution names (a new strv in *ret). */
static int due_names(EngineLocal *l, uint64_t now, char ***ret) {
        _cleanup_strv_free_ char **names = NULL;
        sqlite3_stmt *st = NULL;
        int r, rc;

        r = store_prepare(l->ctx.store,
                          "SELECT name FROM executions WHERE status = 'RUNNING' AND next_deadline <= ? ORDER BY "
                          "next_deadline, name LIMIT ?",
                          &st);
        if (r < 0)
                return r;
        sqlite3_bind_int64(st, 1, (sqlite3_int64) now);
        sqlite3_bind_int(st, 2, RUN_DUE_BATCH);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW)
                if (strv_extend(&names, (const char *) sqlite3_column_text(st, 0)) < 0) {
                        store_finish(l->ctx.store, st);
                        return -ENOMEM;
                }
        r = rc == SQLITE_DONE ? 0 : store_check(l->ctx.store, rc, "list due executions");
        store_finish(l->ctx.store, st);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(names);
        return 0;
}

/* Advance each execution of list in one transaction (one fsync for them
 * all), each in a savepoint of its own so that one that cannot advance is
 * undone alone (logged, *ret_failed) and leaves the others be.  list holds
 * names (stride 1: the time), or name and token pairs (stride 2: a
 * heartbeat for the token).  0 and in *ret_n how many advanced; -errno
 * when the transaction failed. */
static int advance_batch(EngineLocal *l, char **list, size_t stride, unsigned *ret_n, bool *ret_failed) {
        unsigned n = 0;
        bool failed = false;
        /* What a step sends leaves through the outbox, which waits for the
         * disk; nothing else is promised. */
        int r = store_begin_nosync(l->ctx.store);

        for (char **p = list; r >= 0 && p && p[0] && (stride == 1 || p[1]); p += stride) {
                int k = store_run(l->ctx.store, "SAVEPOINT engine_execution");
                if (k >= 0) {
                        k = transition_in_txn(l, p[0], NULL, stride == 2 ? p[1] : NULL);
                        if (k < 0 && !store_failed(l->ctx.store) &&
                            store_run(l->ctx.store, "ROLLBACK TO engine_execution") < 0)
                                r = -EIO;
                }
                if (r >= 0 && store_run(l->ctx.store, "RELEASE engine_execution") < 0)
                        r = -EIO;
                if (store_failed(l->ctx.store))
                        r = -EIO;
                else if (k < 0) {
                        log_warning_errno(k, "Workflow of order %s could not advance, trying again shortly: %m", p[0]);
                        failed = true;
                } else
                        n++;
        }
        if (r >= 0)
                r = store_commit(l->ctx.store);
        else
                store_rollback(l->ctx.store);
        if (r < 0)
                return r;
        *ret_n = n;
        *ret_failed = failed;
        return 0;
}

static int local_run_due(void *b) {
        EngineLocal *l = b;
        _cleanup_strv_free_ char **names = NULL;
        bool failed = false;
        unsigned n = 0;
        int r;

        if (store_failed(l->ctx.store))
                return -EIO;
        r = due_names(l, now_usec(l), &names);
        if (r < 0) {
                (void) arm_at(l, now_usec(l) + RETRY_LATER_USEC);
                return r;
        }
        r = advance_batch(l, names, 1, &n, &failed);
        if (r < 0) {
                if (store_failed(l->ctx.store))
                        return -EIO;
                (void) arm_at(l, now_usec(l) + RETRY_LATER_USEC);
                return r;
        }
        if (n > 0)
                outbox_kick(l->ctx.outbox);
        if (strv_length(names) == RUN_DUE_BATCH)
                local_kick(l); /* more are due */
        r = failed ? arm_at(l, now_usec(l) + RETRY_LATER_USEC) : arm(l);
        if (r < 0)
                return r;
        return (int) n;
}

/* Every token held for a running execution: its wait is told the daemon
 * lives.  One transaction, each execution in a savepoint. */
static int local_heartbeat(void *b) {
        EngineLocal *l = b;
        _cleanup_strv_free_ char **pairs = NULL; /* name, token, name, token … */
        bool failed = false;
        unsigned n = 0;
        int r;

        if (store_failed(l->ctx.store))
                return -EIO;
        r = store_get_strv(l->ctx.store,
                           "SELECT t.execution, t.token FROM execution_tokens t JOIN executions e ON e.name = "
                           "t.execution WHERE e.status = 'RUNNING' ORDER BY t.execution",
                           &pairs);
        if (r < 0 || !pairs)
                return r;
        r = advance_batch(l, pairs, 2, &n, &failed);
        if (r < 0)
                return r;
        outbox_kick(l->ctx.outbox);
        (void) arm(l);
        return (int) n;
}

static int local_advance_in_txn(void *b, const char *id) {
        EngineLocal *l = b;
        sqlite3_stmt *st = NULL;
        int r, rc;

        r = store_prepare(l->ctx.store,
                          "SELECT 1 FROM executions WHERE name = ? AND status = 'RUNNING' AND next_deadline <= ?", &st);
        if (r < 0)
                return r;
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, (sqlite3_int64) now_usec(l));
        rc = sqlite3_step(st);
        store_finish(l->ctx.store, st);
        if (rc == SQLITE_DONE)
                return 0;
        r = store_check(l->ctx.store, rc == SQLITE_ROW ? SQLITE_OK : rc, "look up due execution");
        if (r < 0)
                return r;
        r = transition_in_txn(l, id, NULL, NULL);
        return r < 0 ? r : 1;
}

static int local_start_in_txn(void *b, const char *id, json_t *input) {
        EngineLocal *l = b;
        const Config *c = snapshot(l)->config;
        _cleanup_(asl_execution_freep) AslExecution *x = NULL;
        _cleanup_(json_decrefp) json_t *in = NULL, *order = NULL;
        sqlite3_stmt *st = NULL;
        uint64_t seed = 0, now = now_usec(l);
        int r, rc;

        r = store_prepare(l->ctx.store, "SELECT 1 FROM executions WHERE name = ?", &st);
        if (r < 0)
                return r;
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        r = rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : store_check(l->ctx.store, rc, "look up execution");
        store_finish(l->ctx.store, st);
        if (r != 0)
                return r < 0 ? r : 0; /* started already: the same order, the same execution */

        r = orders_get_json(l->ctx.orders, id, NULL, &order);
        if (r < 0)
                return r;
        in = json_is_object(input) ? json_deep_copy(input) : json_object();
        if (!in)
                return -ENOMEM;
        if (json_object_set_new(in, "order_id", json_string(id)) < 0 ||
            json_object_set(in, "address", json_object_get(order, "address")) < 0 ||
            json_object_set_new(in, "settings", engine_settings_json(c)) < 0)
                return -ENOMEM;
        if (getrandom(&seed, sizeof seed, 0) != (ssize_t) sizeof seed)
                return -errno;
        const AslOptions o = { .state_machine_name = "order", .seed = seed };
        r = asl_execution_new(l->def, id, in, now, &o, &x);
        if (r < 0)
                return r;
        return exec_save(l, id, x, true, now);
}

static int local_waiting(void *b, const char *id, char **ret) {
        EngineLocal *l = b;
        sqlite3_stmt *st = NULL;
        int r, rc;

        r = store_prepare(l->ctx.store,
                          "SELECT t.wait, e.status FROM executions e LEFT JOIN execution_tokens t ON t.execution = "
                          "e.name WHERE e.name = ? ORDER BY t.created_at DESC LIMIT 1",
                          &st);
        if (r < 0)
                return r;
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
                if (!streq((const char *) sqlite3_column_text(st, 1), "RUNNING"))
                        r = -ENOENT; /* over: nothing waits any more */
                else if (sqlite3_column_type(st, 0) == SQLITE_NULL)
                        r = -EBUSY;
                else {
                        *ret = mem_strdup((const char *) sqlite3_column_text(st, 0));
                        r = *ret ? 0 : -ENOMEM;
                }
        } else
                r = rc == SQLITE_DONE ? -ENOENT : store_check(l->ctx.store, rc, "look up waiting task");
        store_finish(l->ctx.store, st);
        return r;
}

static int local_send_in_txn(void *b, const char *id, json_t *output) {
        EngineLocal *l = b;
        _cleanup_free_ char *token = NULL;
        sqlite3_stmt *st = NULL;
        int r, rc;

        r = store_prepare(l->ctx.store,
                          "SELECT token FROM execution_tokens WHERE execution = ? ORDER BY created_at DESC LIMIT 1",
                          &st);
        if (r < 0)
                return r;
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
                token = mem_strdup((const char *) sqlite3_column_text(st, 0));
                r = token ? 0 : -ENOMEM;
        } else
                r = rc == SQLITE_DONE ? -EBUSY : store_check(l->ctx.store, rc, "look up task token");
        store_finish(l->ctx.store, st);
        if (r < 0)
                return r;
        r = transition_in_txn(l, id, output, token);
        if (r == -ENOENT)
                return -EBUSY; /* the token was stale: the execution moved on */
        return r;
}

static int local_execution_json(void *b, const char *id, json_t **ret) {
        EngineLocal *l = b;
        _cleanup_(asl_execution_freep) AslExecution *x = NULL;
        _cleanup_free_ char *err = NULL;
        char buf[128], deadline[32];
        uint64_t d;
        int r;

        r = exec_load(l, id, &x, &err);
        if (r < 0)
                return r;
        d = asl_execution_next_deadline(x);
        if (d != UINT64_MAX)
                orders_format_time(d, deadline);
        _cleanup_(json_decrefp) json_t *history = NULL;
        r = history_json(l, id, x, &history);
        if (r < 0)
                return r;
        *ret = json_pack("{s:s,s:s,s:s,s:s?,s:s?,s:s?,s:O}", "name", id, "status",
                         asl_status_to_string(asl_execution_status(x)), "state", waiting_state(x, buf, sizeof buf),
                         "next_deadline", d != UINT64_MAX ? deadline : NULL, "error", asl_execution_error(x), "cause",
                         asl_execution_cause(x), "history", history);
        return *ret ? 0 : -ENOMEM;
}

static int local_notify_in_txn(void *b, const char *id, const char *template_id, const char *status) {
        EngineLocal *l = b;
        _cleanup_(json_decrefp) json_t *order = NULL;
        TaskContext tc = {
                .store = l->ctx.store, .orders = l->ctx.orders, .snapshot = snapshot(l), .now_usec = now_usec(l)
        };
        LocalTask lt = { .l = l, .tc = &tc, .execution = id };
        TaskFailure f = {};
        int r;

        r = orders_get_json(l->ctx.orders, id, snapshot(l)->config->http_public_url, &order);
        if (r < 0)
                return r;
        r = notify_order(&lt, order, template_id, NULL, status, NULL, &f);
        task_failure_clear(&f);
        return r == 1 ? -EINVAL : r;
}

const EngineOps engine_local_ops = {
        .name = "local",
        .new = local_new,
        .free = local_free,
        .start = local_start,
        .heartbeat = local_heartbeat,
        .advance_in_txn = local_advance_in_txn,
        .start_in_txn = local_start_in_txn,
        .kick = local_kick,
        .run_due = local_run_due,
        .waiting = local_waiting,
        .send_in_txn = local_send_in_txn,
        .execution_json = local_execution_json,
        .notify_in_txn = local_notify_in_txn,
};
