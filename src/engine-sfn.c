/* SPDX-License-Identifier: MIT */
/*
 * engine-sfn.c — engine.backend = stepfunctions (see engine-sfn.h): the
 * durable queue of Step Functions calls and the execution rows.
 *
 * The queue is the truth: a row is 'pending' until AWS answered it for
 * good.  The sender takes, for each order with no call in flight, its
 * oldest pending row that is due, so that an order's calls reach AWS in
 * the order they were made (a SendTaskSuccess never overtakes the
 * StartExecution before it).  A transient failure (after sfn.c's own
 * short retries) pushes the row's next attempt back with capped
 * exponential backoff and full jitter; after a restart every pending row
 * is due at once.  Each answer is recorded in its own short transaction.
 *
 * Security: see engine-sfn.h.  The order JSON goes to AWS as the
 * execution input (the customer's phone or address included: the
 * workflow needs them); nothing of AWS's answers but the execution ARN
 * and the checked DescribeExecution fields is stored.
 */
#include "engine-sfn.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "alloc.h"
#include "log.h"
#include "nlu.h"
#include "sfn.h"
#include "strutil.h"
#include "template.h"

/* Rows sent at once; the others wait for a slot. */
#define SEND_IN_FLIGHT_MAX 16u
/* The longest wait between two attempts of one row. */
#define ROW_BACKOFF_MAX_USEC (5 * 60 * USEC_PER_SEC)
/* After the store failed to record an answer or to list the rows. */
#define RETRY_LATER_USEC (1 * USEC_PER_SEC)
/* A DescribeExecution answer younger than this is shown as it is. */
#define DESCRIBE_FRESH_USEC (2 * USEC_PER_SEC)

typedef struct EngineSfn EngineSfn;

/* A call in flight: a queue row, or a DescribeExecution (row 0). */
typedef struct SfnSend {
        struct SfnSend *next, **prev_next;
        EngineSfn *e;
        int64_t row;
        SfnAction action;
        unsigned prior_attempts;
        char order_id[ORDER_ID_LEN + 1];
        SfnCall *call;
} SfnSend;

struct EngineSfn {
        EngineContext ctx;
        SfnClient *client;
        char *state_machine_arn;
        EngineWakeup wakeup;
        SfnSend *in_flight;
        unsigned n_in_flight;
};

static uint64_t now_usec(EngineSfn *e) {
        struct timespec ts;

        if (e->ctx.clock)
                return e->ctx.clock(e->ctx.clock_data);
        clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / NSEC_PER_USEC;
}

static const Snapshot *snapshot(EngineSfn *e) {
        return e->ctx.snapshot(e->ctx.userdata);
}

/* Run sql with text/int64 parameters ("t" / "i" in types); SQLITE_DONE expected. */
static int sql_run(Store *s, const char *sql, const char *types, ...) {
        sqlite3_stmt *st = NULL;
        va_list ap;
        int r = store_prepare(s, sql, &st), rc;

        if (r < 0)
                return r;
        va_start(ap, types);
        for (int i = 0; types[i]; i++) {
                if (types[i] == 't') {
                        const char *v = va_arg(ap, const char *);
                        if (v)
                                sqlite3_bind_text(st, i + 1, v, -1, SQLITE_TRANSIENT);
                        else
                                sqlite3_bind_null(st, i + 1);
                } else
                        sqlite3_bind_int64(st, i + 1, (sqlite3_int64) va_arg(ap, int64_t));
        }
        va_end(ap);
        rc = sqlite3_step(st);
        r = rc == SQLITE_DONE ? 0 : store_check(s, rc, "write sfn row");
        store_finish(s, st);
        return r;
}

static uint64_t random_u64(void) {
        uint64_t r = 0;

        if (getrandom(&r, sizeof r, GRND_NONBLOCK) != (ssize_t) sizeof r)
                r = (uint64_t) time(NULL) * 2862933555777941757ULL;
        return r;
}

/* Whether id has a call in flight. */
static bool in_flight(EngineSfn *e, const char *id, bool describe) {
        for (SfnSend *q = e->in_flight; q; q = q->next)
                if (streq(q->order_id, id) && (q->row == 0) == describe)
                        return true;
        return false;
}

static void send_free(SfnSend *q) {
        if (!q)
                return;
        *q->prev_next = q->next;
        if (q->next)
                q->next->prev_next = q->prev_next;
        if (q->row > 0)
                q->e->n_in_flight--;
        sfn_call_free(q->call);
        free(q);
}

/* ---- timers ---------------------------------------------------------------- */

static void sfn_kick(void *b);

static void on_wakeup(void *userdata) {
        (void) engine_sfn_ops.run_due(userdata);
}

static int arm_at(EngineSfn *e, uint64_t at) {
        return engine_wakeup_at(&e->wakeup, at);
}

/* The timer at the earliest next attempt of a pending row. */
static int arm(EngineSfn *e) {
        sqlite3_stmt *st = NULL;
        uint64_t at = UINT64_MAX;
        int r = store_prepare(e->ctx.store, "SELECT MIN(next_attempt_at) FROM sfn_requests WHERE status = 'pending'",
                              &st),
            rc;

        if (r < 0)
                return r;
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
                at = (uint64_t) sqlite3_column_int64(st, 0);
        else if (rc != SQLITE_ROW)
                r = store_check(e->ctx.store, rc, "read next sfn attempt");
        store_finish(e->ctx.store, st);
        if (r < 0)
                return r;
        return arm_at(e, at);
}

/* ---- answers ------------------------------------------------------------------ */

static void trace(const SfnSend *q, const char *what, const SfnReply *reply) {
        log_event("sfn order=%s action=%s result=%s status=%d code=%s attempts=%u", q->order_id,
                  sfn_action_to_string(q->action), what, reply->status, isempty(reply->code) ? "-" : reply->code,
                  q->prior_attempts + reply->attempts);
}

/* Record the answer to row q in one transaction. */
static int record(EngineSfn *e, SfnSend *q, const SfnReply *reply, const char **ret_what) {
        Store *s = e->ctx.store;
        uint64_t now = now_usec(e);
        unsigned attempts = q->prior_attempts + reply->attempts;
        _cleanup_free_ char *arn = NULL, *error = NULL;
        const char *status = "pending";
        int r;

        switch (reply->result) {
        case SFN_RESULT_OK:
                status = "done";
                *ret_what = "ok";
                if (q->action == SFN_START_EXECUTION &&
                    sfn_parse_start_execution(reply->body, reply->body_len, &arn) < 0 &&
                    sfn_execution_arn(e->state_machine_arn, q->order_id, &arn) < 0)
                        arn = NULL; /* ExecutionAlreadyExists: the ARN is the usual one */
                break;
        case SFN_RESULT_PERMANENT:
                if (q->action != SFN_START_EXECUTION && attempts > 1 && sfn_token_consumed(reply->code)) {
                        /* Sent before and answered then: the task got it. */
                        status = "done";
                        *ret_what = "done_before";
                        break;
                }
                status = "failed";
                *ret_what = "failed";
                break;
        default:
                *ret_what = reply->result == SFN_RESULT_LATER ? "later" : "retry";
                break;
        }
        if (reply->result != SFN_RESULT_OK) {
                error = mem_printf("HTTP %d %s: %s", reply->status, isempty(reply->code) ? "-" : reply->code,
                                   strempty(reply->message));
                if (!error)
                        return -ENOMEM;
        }
        r = store_begin(s);
        if (r < 0)
                return r;
        if (streq(status, "pending"))
                r = sql_run(s,
                            "UPDATE sfn_requests SET attempts = ?, next_attempt_at = ?, last_error = ?, updated_at = ? "
                            "WHERE id = ?",
                            "iitii", (int64_t) attempts,
                            (int64_t) (now + sfn_backoff_usec(attempts, ROW_BACKOFF_MAX_USEC, random_u64())), error,
                            (int64_t) now, q->row);
        else
                r = sql_run(
                        s,
                        "UPDATE sfn_requests SET status = ?, attempts = ?, last_error = ?, updated_at = ? WHERE id = ?",
                        "titii", status, (int64_t) attempts, error, (int64_t) now, q->row);
        if (r >= 0 && arn)
                r = sql_run(s,
                            "UPDATE sfn_executions SET execution_arn = ?, status = CASE status WHEN 'PENDING' THEN "
                            "'STARTED' ELSE status END WHERE order_id = ?",
                            "tt", arn, q->order_id);
        if (r >= 0 && q->action == SFN_SEND_TASK_HEARTBEAT && streq(status, "failed"))
                /* The task is over (timed out, answered, gone): its token
                 * is heartbeaten no more. */
                r = sql_run(s,
                            "DELETE FROM sfn_task_tokens WHERE order_id = ? AND token = (SELECT json_extract(body, "
                            "'$.taskToken') FROM sfn_requests WHERE id = ?)",
                            "ti", q->order_id, q->row);
        if (r >= 0)
                r = store_commit(s);
        else
                store_rollback(s);
        return r;
}

static void on_row_done(void *userdata, const SfnReply *reply) {
        SfnSend *q = userdata;
        EngineSfn *e = q->e;
        const char *what = "?";
        int r;

        r = record(e, q, reply, &what);
        if (r < 0)
                log_warning_errno(r, "Order %s: the answer to %s could not be recorded; it is sent again: %m",
                                  q->order_id, sfn_action_to_string(q->action));
        else {
                trace(q, what, reply);
                if (streq(what, "failed") && q->action == SFN_SEND_TASK_HEARTBEAT)
                        log_notice("Order %s: Step Functions no longer waits for the task token we beat for (HTTP %d "
                                   "%s); forgotten.",
                                   q->order_id, reply->status, strempty(reply->code));
                else if (streq(what, "failed"))
                        log_error("Order %s: Step Functions refused %s for good: HTTP %d %s: %s", q->order_id,
                                  sfn_action_to_string(q->action), reply->status, strempty(reply->code),
                                  strempty(reply->message));
                else if (streq(what, "later"))
                        log_warning("Order %s: Step Functions refused our credentials for %s (%s: %s); sent again "
                                    "later.",
                                    q->order_id, sfn_action_to_string(q->action), strempty(reply->code),
                                    strempty(reply->message));
        }
        send_free(q);
        sfn_kick(e); /* the order's next row, or a free slot */
}

static void on_describe_done(void *userdata, const SfnReply *reply) {
        SfnSend *q = userdata;
        EngineSfn *e = q->e;
        _cleanup_(json_decrefp) json_t *d = NULL;
        _cleanup_free_ char *text = NULL;
        int r;

        if (reply->result == SFN_RESULT_OK && sfn_parse_describe_execution(reply->body, reply->body_len, &d) >= 0 &&
            (text = mem_json_dumps(d, JSON_COMPACT | JSON_PRESERVE_ORDER))) {
                r = sql_run(e->ctx.store,
                            "UPDATE sfn_executions SET status = ?, described = ?, described_at = ? WHERE order_id = ?",
                            "ttit", json_string_value(json_object_get(d, "status")), text, (int64_t) now_usec(e),
                            q->order_id);
                if (r < 0)
                        log_warning_errno(r, "Order %s: DescribeExecution's answer could not be stored: %m",
                                          q->order_id);
        } else if (reply->result != SFN_RESULT_OK)
                log_notice("Order %s: DescribeExecution failed: HTTP %d %s: %s", q->order_id, reply->status,
                           strempty(reply->code), strempty(reply->message));
        send_free(q);
}

/* ---- sending -------------------------------------------------------------------- */

static SfnSend *send_new(EngineSfn *e, const char *id, int64_t row, SfnAction action, unsigned prior) {
        SfnSend *q = mem_new(SfnSend, 1);

        if (!q)
                return NULL;
        q->e = e;
        q->row = row;
        q->action = action;
        q->prior_attempts = prior;
        strscpy(q->order_id, sizeof q->order_id, id);
        q->next = e->in_flight;
        if (q->next)
                q->next->prev_next = &q->next;
        q->prev_next = &e->in_flight;
        e->in_flight = q;
        if (row > 0)
                e->n_in_flight++;
        return q;
}

/* Start row (id, order, action, body, attempts); 1 started, 0 not now, -errno. */
static int send_row(EngineSfn *e, int64_t row, const char *id, const char *action_s, const char *body,
                    unsigned attempts) {
        SfnAction action = sfn_action_from_string(action_s);
        char canon[ORDER_ID_LEN + 1];
        SfnSend *q;
        int r;

        if (action < 0 || action == SFN_DESCRIBE_EXECUTION || order_id_parse(id, canon) < 0 || !body)
                return sql_run(e->ctx.store,
                               "UPDATE sfn_requests SET status = 'failed', last_error = 'corrupt row' WHERE id = ?",
                               "i", row);
        q = send_new(e, id, row, action, attempts);
        if (!q)
                return -ENOMEM;
        r = sfn_call(e->client, action, body, on_row_done, q, &q->call);
        if (r == -ENOKEY) {
                const SfnReply reply = { .result = SFN_RESULT_LATER,
                                         .code = "",
                                         .message = "no AWS credentials provider",
                                         .body = "",
                                         .attempts = 1 };
                on_row_done(q, &reply);
                return 1;
        }
        if (r < 0) {
                send_free(q);
                return r;
        }
        return 1;
}

static int sfn_run_due(void *b) {
        EngineSfn *e = b;
        sqlite3_stmt *st = NULL;
        uint64_t now = now_usec(e);
        int r, rc, n = 0;

        if (store_failed(e->ctx.store))
                return -EIO;
        if (e->n_in_flight >= SEND_IN_FLIGHT_MAX)
                return 0;
        r = store_prepare(e->ctx.store,
                          "SELECT r.id, r.order_id, r.action, r.body, r.attempts FROM sfn_requests r WHERE r.status = "
                          "'pending' AND r.next_attempt_at <= ? AND r.id = (SELECT MIN(id) FROM sfn_requests p WHERE "
                          "p.order_id = r.order_id AND p.status = 'pending') ORDER BY r.id",
                          &st);
        if (r < 0)
                return r;
        sqlite3_bind_int64(st, 1, (sqlite3_int64) now);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW && e->n_in_flight < SEND_IN_FLIGHT_MAX) {
                const char *id = (const char *) sqlite3_column_text(st, 1);

                if (in_flight(e, id, false))
                        continue;
                r = send_row(e, sqlite3_column_int64(st, 0), id, (const char *) sqlite3_column_text(st, 2),
                             (const char *) sqlite3_column_text(st, 3), (unsigned) sqlite3_column_int(st, 4));
                if (r < 0)
                        break;
                n += r;
        }
        if (r >= 0 && rc != SQLITE_ROW && rc != SQLITE_DONE)
                r = store_check(e->ctx.store, rc, "list pending sfn requests");
        store_finish(e->ctx.store, st);
        if (r < 0) {
                (void) arm_at(e, now + RETRY_LATER_USEC);
                return r;
        }
        r = arm(e);
        return r < 0 ? r : n;
}

static void sfn_kick(void *b) {
        EngineSfn *e = b;
        engine_wakeup_now(&e->wakeup);
}

/* After a restart, whatever waits is tried at once. */
static int sfn_start(void *b) {
        EngineSfn *e = b;
        int r = sql_run(e->ctx.store, "UPDATE sfn_requests SET next_attempt_at = ? WHERE status = 'pending'", "i",
                        (int64_t) now_usec(e));

        if (r < 0)
                return r;
        sfn_kick(e);
        return 0;
}

/* ---- the backend ----------------------------------------------------------------- */

static int sfn_new(const EngineContext *ctx, void **ret, char **ret_error) {
        const Config *c = ctx->snapshot(ctx->userdata)->config;
        EngineSfn *e;
        int r;

        if (isempty(c->engine_state_machine_arn)) {
                *ret_error = mem_strdup("engine.state_machine_arn must be set with engine.backend=stepfunctions");
                return -EINVAL;
        }
        if (!ctx->curl) {
                *ret_error = mem_strdup("engine.backend=stepfunctions needs the daemon's HTTP client");
                return -EINVAL;
        }
        e = mem_new(EngineSfn, 1);
        if (!e)
                return -ENOMEM;
        e->ctx = *ctx;
        e->wakeup = (EngineWakeup){ .event = ctx->event, .name = "engine-sfn", .run = on_wakeup, .userdata = e };
        e->state_machine_arn = mem_strdup(c->engine_state_machine_arn);
        const SfnClientOptions o = {
                .event = ctx->event,
                .curl = ctx->curl,
                .provider = ctx->credentials,
                .region = c->aws_region,
                .endpoint = c->aws_endpoint_states,
                .connect_to = c->http_client_connect_to,
                .ca_file = c->http_client_ca_file,
        };
        r = e->state_machine_arn ? sfn_client_new(&o, &e->client) : -ENOMEM;
        if (r < 0) {
                if (r == -EINVAL)
                        *ret_error = mem_printf("aws.endpoint_states=%s is not an http(s):// URL",
                                                strempty(c->aws_endpoint_states));
                free(e->state_machine_arn);
                free(e);
                return r;
        }
        *ret = e;
        return 0;
}

static void sfn_free(void *b) {
        EngineSfn *e = b;

        if (!e)
                return;
        /* Rows in flight stay 'pending': sent again at the next start. */
        while (e->in_flight)
                send_free(e->in_flight);
        sfn_client_free(e->client);
        engine_wakeup_done(&e->wakeup);
        free(e->state_machine_arn);
        free(e);
}

/* Queue action with body for id, due at once (after the commit). */
static int queue_in_txn(EngineSfn *e, const char *id, SfnAction action, const char *body, uint64_t now) {
        return sql_run(e->ctx.store,
                       "INSERT INTO sfn_requests (order_id, action, body, status, next_attempt_at, created_at, "
                       "updated_at) VALUES (?, ?, ?, 'pending', 0, ?, ?)",
                       "tttii", id, sfn_action_to_string(action), body, (int64_t) now, (int64_t) now);
}

static int sfn_start_in_txn(void *b, const char *id, json_t *input) {
        EngineSfn *e = b;
        const Config *c = snapshot(e)->config;
        _cleanup_(json_decrefp) json_t *in = NULL;
        _cleanup_free_ char *text = NULL, *body = NULL;
        sqlite3_stmt *st = NULL;
        uint64_t now = now_usec(e);
        const char *key;
        json_t *v;
        int r, rc;

        r = store_prepare(e->ctx.store, "SELECT 1 FROM sfn_executions WHERE order_id = ?", &st);
        if (r < 0)
                return r;
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        r = rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : store_check(e->ctx.store, rc, "look up sfn execution");
        store_finish(e->ctx.store, st);
        if (r != 0)
                return r < 0 ? r : 0; /* the same order, the same execution */

        /* The input: the order JSON, what the caller adds, and what the
         * workflow reads first (as the local engine gives it). */
        r = orders_get_json(e->ctx.orders, id, c->http_public_url, &in);
        if (r < 0)
                return r;
        if (json_is_object(input))
                json_object_foreach (input, key, v)
                        if (json_object_set(in, key, v) < 0)
                                return -ENOMEM;
        if (json_object_set_new(in, "order_id", json_string(id)) < 0 ||
            json_object_set_new(in, "settings", engine_settings_json(c)) < 0)
                return -ENOMEM;
        r = sfn_input_text(in, &text);
        if (r == -E2BIG) {
                log_error("Order %s: its workflow input is larger than the 256 KiB Step Functions takes; the workflow "
                          "is not started.",
                          id);
                return r;
        }
        if (r < 0)
                return r;
        r = sfn_start_execution_body(e->state_machine_arn, id, text, &body);
        if (r < 0)
                return r;
        r = sql_run(e->ctx.store, "INSERT INTO sfn_executions (order_id, created_at) VALUES (?, ?)", "ti", id,
                    (int64_t) now);
        if (r < 0)
                return r;
        return queue_in_txn(e, id, SFN_START_EXECUTION, body, now);
}

/* The newest token of id and what it waits for: 0, -EBUSY (none), -ENOENT
 * (no execution, or one that ended), -errno. */
static int latest_token(EngineSfn *e, const char *id, char **ret_token, char **ret_wait) {
        sqlite3_stmt *st = NULL;
        int r, rc;

        r = store_prepare(e->ctx.store,
                          "SELECT t.token, t.wait, x.status FROM sfn_executions x LEFT JOIN sfn_task_tokens t ON "
                          "t.order_id = x.order_id WHERE x.order_id = ? ORDER BY t.created_at DESC LIMIT 1",
                          &st);
        if (r < 0)
                return r;
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
                const char *status = (const char *) sqlite3_column_text(st, 2);
                if (!streq_ptr(status, "PENDING") && !streq_ptr(status, "STARTED") && !streq_ptr(status, "RUNNING"))
                        r = -ENOENT;
                else if (sqlite3_column_type(st, 0) == SQLITE_NULL)
                        r = -EBUSY;
                else {
                        if (ret_token && !(*ret_token = mem_strdup((const char *) sqlite3_column_text(st, 0))))
                                r = -ENOMEM;
                        if (r >= 0 && ret_wait && !(*ret_wait = mem_strdup((const char *) sqlite3_column_text(st, 1))))
                                r = -ENOMEM;
                }
        } else
                r = rc == SQLITE_DONE ? -ENOENT : store_check(e->ctx.store, rc, "look up sfn task token");
        store_finish(e->ctx.store, st);
        return r;
}

static int sfn_waiting(void *b, const char *id, char **ret) {
        return latest_token(b, id, NULL, ret);
}

static int sfn_send_in_txn(void *b, const char *id, json_t *output) {
        EngineSfn *e = b;
        _cleanup_free_ char *token = NULL, *text = NULL, *body = NULL;
        uint64_t now = now_usec(e);
        int r;

        r = latest_token(e, id, &token, NULL);
        if (r < 0)
                return r == -ENOENT ? -ENOENT : r; /* -EBUSY: no token known yet (the Lambda side registers it) */
        text = mem_json_dumps(output, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (!text)
                return -ENOMEM;
        r = sfn_send_task_success_body(token, text, &body);
        if (r < 0)
                return r;
        r = queue_in_txn(e, id, SFN_SEND_TASK_SUCCESS, body, now);
        if (r < 0)
                return r;
        /* A token answers once: the next event waits for the next token. */
        return sql_run(e->ctx.store, "DELETE FROM sfn_task_tokens WHERE token = ?", "t", token);
}

/* Ask DescribeExecution for id in the background (its answer is shown next
 * time), unless one is in flight or the last answer is fresh. */
static void describe(EngineSfn *e, const char *id, const char *arn, uint64_t described_at) {
        _cleanup_free_ char *body = NULL;
        SfnSend *q;

        if (!e->ctx.event || in_flight(e, id, true) || described_at + DESCRIBE_FRESH_USEC > now_usec(e) ||
            sfn_describe_execution_body(arn, &body) < 0)
                return;
        q = send_new(e, id, 0, SFN_DESCRIBE_EXECUTION, 0);
        if (!q)
                return;
        if (sfn_call(e->client, SFN_DESCRIBE_EXECUTION, body, on_describe_done, q, &q->call) < 0)
                send_free(q);
}

/* The token holder's heartbeat: a SendTaskHeartbeat queued for every
 * task token known for a running execution, unless one is queued
 * already.  One transaction. */
static int sfn_heartbeat(void *b) {
        EngineSfn *e = b;
        _cleanup_strv_free_ char **pairs = NULL; /* order, token, order, token … */
        uint64_t now = now_usec(e);
        int r, n = 0;

        if (store_failed(e->ctx.store))
                return -EIO;
        r = store_get_strv(e->ctx.store,
                           "SELECT t.order_id, t.token FROM sfn_task_tokens t JOIN sfn_executions x ON x.order_id = "
                           "t.order_id WHERE x.status IN ('PENDING', 'STARTED', 'RUNNING') AND NOT EXISTS (SELECT 1 "
                           "FROM sfn_requests q WHERE q.order_id = t.order_id AND q.status = 'pending' AND q.action = "
                           "'SendTaskHeartbeat') ORDER BY t.order_id",
                           &pairs);
        if (r < 0 || !pairs)
                return r;
        r = store_begin(e->ctx.store);
        for (char **p = pairs; r >= 0 && p[0] && p[1]; p += 2, n++) {
                _cleanup_free_ char *body = NULL;
                r = sfn_send_task_heartbeat_body(p[1], &body);
                if (r >= 0)
                        r = queue_in_txn(e, p[0], SFN_SEND_TASK_HEARTBEAT, body, now);
        }
        if (r >= 0)
                r = store_commit(e->ctx.store);
        else
                store_rollback(e->ctx.store);
        if (r < 0)
                return r;
        sfn_kick(e);
        return n;
}

static int requests_json(EngineSfn *e, const char *id, json_t **ret) {
        _cleanup_(json_decrefp) json_t *a = json_array();
        sqlite3_stmt *st = NULL;
        int r, rc;

        if (!a)
                return -ENOMEM;
        r = store_prepare(e->ctx.store,
                          "SELECT id, action, status, attempts, last_error FROM sfn_requests WHERE order_id = ? ORDER "
                          "BY id",
                          &st);
        if (r < 0)
                return r;
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW)
                if (json_array_append_new(
                            a,
                            json_pack("{s:I,s:s,s:s,s:i,s:s?}", "id", (json_int_t) sqlite3_column_int64(st, 0),
                                      "action", (const char *) sqlite3_column_text(st, 1), "status",
                                      (const char *) sqlite3_column_text(st, 2), "attempts", sqlite3_column_int(st, 3),
                                      "last_error", (const char *) sqlite3_column_text(st, 4))) < 0) {
                        r = -ENOMEM;
                        break;
                }
        if (r >= 0 && rc != SQLITE_DONE)
                r = store_check(e->ctx.store, rc, "list sfn requests");
        store_finish(e->ctx.store, st);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(a);
        return 0;
}

static int sfn_execution_json(void *b, const char *id, json_t **ret) {
        EngineSfn *e = b;
        _cleanup_(json_decrefp) json_t *requests = NULL, *described = NULL, *j = NULL;
        _cleanup_free_ char *arn = NULL, *status = NULL;
        sqlite3_stmt *st = NULL;
        uint64_t described_at = 0;
        int r, rc;

        r = store_prepare(
                e->ctx.store,
                "SELECT execution_arn, status, described, described_at FROM sfn_executions WHERE order_id = ?", &st);
        if (r < 0)
                return r;
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
                const char *a = (const char *) sqlite3_column_text(st, 0),
                           *d = (const char *) sqlite3_column_text(st, 2);
                arn = a ? mem_strdup(a) : NULL;
                status = mem_strdup((const char *) sqlite3_column_text(st, 1));
                described = d ? json_loads(d, 0, NULL) : NULL;
                described_at = (uint64_t) sqlite3_column_int64(st, 3);
                if ((a && !arn) || !status)
                        r = -ENOMEM;
        } else
                r = rc == SQLITE_DONE ? -ENOENT : store_check(e->ctx.store, rc, "look up sfn execution");
        store_finish(e->ctx.store, st);
        if (r < 0)
                return r;
        r = requests_json(e, id, &requests);
        if (r < 0)
                return r;
        if (arn)
                describe(e, id, arn, described_at);
        /* PENDING: StartExecution not answered yet; STARTED: started, not
         * described yet; otherwise DescribeExecution's status. */
        j = json_pack("{s:s,s:s,s:s,s:n,s:n,s:s?,s:s?,s:O?,s:O,s:[]}", "name", id, "backend", "stepfunctions", "status",
                      status, "state", "next_deadline", "state_machine_arn", e->state_machine_arn, "execution_arn", arn,
                      "described", described, "requests", requests, "history");
        if (!j)
                return -ENOMEM;
        *ret = TAKE_PTR(j);
        return 0;
}

/* The refusals the engine sends outside a workflow step (cancel_refused,
 * change_address_refused): {order_id} and {status} in the order's words. */
static int sfn_notify_in_txn(void *b, const char *id, const char *template_id, const char *status) {
        EngineSfn *e = b;
        const Snapshot *s = snapshot(e);
        _cleanup_(json_decrefp) json_t *order = NULL;
        _cleanup_free_ char *body = NULL, *subject = NULL, *status_text = NULL, *sid = NULL;
        const char *channel;
        NluLang lang;
        int r;

        r = orders_get_json(e->ctx.orders, id, s->config->http_public_url, &order);
        if (r < 0)
                return r;
        lang = nlu_lang_from_string(json_string_value(json_object_get(order, "lang")));
        if (lang < 0)
                lang = NLU_LANG_PT;
        if (status) {
                sid = mem_printf("status_name_%s", status);
                if (!sid)
                        return -ENOMEM;
                for (char *p = sid; *p; p++)
                        if (*p >= 'A' && *p <= 'Z')
                                *p = (char) (*p - 'A' + 'a');
                r = template_render(s->templates, lang, sid, NULL, 0, &status_text);
                if (r < 0 && r != -ENOENT)
                        return r;
        }
        const TemplateVar v[] = {
                { "order_id", id },
                { "status", status_text },
                { "tracking_url", json_string_value(json_object_get(order, "tracking_url")) },
        };
        r = template_render(s->templates, lang, template_id, v, ELEMENTSOF(v), &body);
        if (r == -ENOENT)
                return -EINVAL;
        if (r < 0)
                return r;
        channel = json_string_value(json_object_get(order, "channel"));
        OutboxMessage m = {
                .channel = streq_ptr(channel, "email") ? OUTBOX_EMAIL : OUTBOX_SMS,
                .to = json_string_value(json_object_get(order, "customer")),
                .body = body,
                .order_id = id,
        };
        if (m.channel == OUTBOX_EMAIL) {
                r = template_render(s->templates, lang, "email_subject", NULL, 0, &subject);
                if (r < 0)
                        return r;
                m.subject = subject;
        }
        return outbox_enqueue_in_txn(e->ctx.outbox, &m, NULL);
}

int engine_sfn_register_token_in_txn(Store *store, const char *order_id, const char *token, const char *wait,
                                     uint64_t now_usec) {
        char id[ORDER_ID_LEN + 1];
        sqlite3_stmt *st = NULL;
        int r, rc;

        if (order_id_parse(order_id, id) < 0 || isempty(token) || strlen(token) > SFN_TOKEN_MAX ||
            !(streq_ptr(wait, "payment") || streq_ptr(wait, "status")))
                return -EINVAL;
        r = store_prepare(store, "SELECT 1 FROM sfn_executions WHERE order_id = ?", &st);
        if (r < 0)
                return r;
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        r = rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? -ENOENT : store_check(store, rc, "look up sfn execution");
        store_finish(store, st);
        if (r < 0)
                return r;
        return sql_run(store,
                       "INSERT INTO sfn_task_tokens (token, order_id, wait, created_at) VALUES (?, ?, ?, ?) ON "
                       "CONFLICT (token) DO NOTHING",
                       "ttti", token, id, wait, (int64_t) now_usec);
}

const EngineOps engine_sfn_ops = {
        .name = "stepfunctions",
        .new = sfn_new,
        .free = sfn_free,
        .start = sfn_start,
        .start_in_txn = sfn_start_in_txn,
        .kick = sfn_kick,
        .heartbeat = sfn_heartbeat,
        .run_due = sfn_run_due,
        .waiting = sfn_waiting,
        .send_in_txn = sfn_send_in_txn,
        .execution_json = sfn_execution_json,
        .notify_in_txn = sfn_notify_in_txn,
};
