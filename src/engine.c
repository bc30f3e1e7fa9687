/* SPDX-License-Identifier: MIT */
/*
 * engine.c — the backend table (engine.backend) and what every backend
 * shares: whether an event is allowed for an order now, and the callback
 * output that carries it to the waiting task.
 *
 * Security: see engine.h.  Event data is checked here before any backend
 * sees it.
 */
#include "engine.h"

#include <errno.h>
#include <string.h>

#include "alloc.h"
#include "log.h"
#include "engine-local.h"
#include "engine-sfn.h"
#include "strutil.h"

/* Longest address an event may carry (the conversation bounds it too). */
#define ENGINE_ADDRESS_MAX 500

struct Engine {
        const EngineOps *ops;
        void *backend;
        EngineContext ctx;
        sd_event_source *heartbeat_timer;
};

static const char *const engine_event_table[_ENGINE_EVENT_MAX] = {
        [ENGINE_EVENT_CANCEL] = "cancel",
        [ENGINE_EVENT_CHANGE_ADDRESS] = "change_address",
        [ENGINE_EVENT_PAID] = "paid",
        [ENGINE_EVENT_STATUS] = "status",
};

const char *engine_event_to_string(EngineEvent ev) {
        return (unsigned) ev < _ENGINE_EVENT_MAX ? engine_event_table[ev] : NULL;
}

EngineEvent engine_event_from_string(const char *s) {
        for (size_t i = 0; s && i < _ENGINE_EVENT_MAX; i++)
                if (streq(engine_event_table[i], s))
                        return (EngineEvent) i;
        return _ENGINE_EVENT_INVALID;
}

/* One row per backend, indexed by EngineBackend; NULL: not in this build. */
static const EngineOps *const backends[_ENGINE_BACKEND_MAX] = {
        [ENGINE_LOCAL] = &engine_local_ops,
        [ENGINE_STEPFUNCTIONS] = &engine_sfn_ops,
};

int engine_new(const EngineContext *ctx, Engine **ret, char **ret_error) {
        _cleanup_(engine_freep) Engine *e = NULL;
        const Snapshot *s = ctx->snapshot(ctx->userdata);
        int b = s->config->engine_backend;
        int r;

        if (b < 0 || b >= _ENGINE_BACKEND_MAX || !backends[b]) {
                *ret_error = mem_printf("engine.backend=%s is not available in this version",
                                        strempty(engine_backend_to_string(b)));
                return -EOPNOTSUPP;
        }
        e = mem_new(Engine, 1);
        if (!e)
                return -ENOMEM;
        e->ctx = *ctx;
        e->ops = backends[b];
        r = e->ops->new (&e->ctx, &e->backend, ret_error);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(e);
        return 0;
}

Engine *engine_free(Engine *e) {
        if (!e)
                return NULL;
        sd_event_source_disable_unref(e->heartbeat_timer);
        if (e->backend)
                e->ops->free(e->backend);
        free(e);
        return NULL;
}

const char *engine_backend_name(const Engine *e) {
        return e->ops->name;
}

/* A heartbeat is due every engine.heartbeat / 2 (read at each one, so
 * that a reload applies); 0: none. */
static uint64_t heartbeat_interval(Engine *e) {
        return e->ctx.snapshot(e->ctx.userdata)->config->engine_heartbeat_usec / 2;
}

static int on_heartbeat(sd_event_source *s, uint64_t usec _unused_, void *userdata) {
        Engine *e = userdata;
        uint64_t every = heartbeat_interval(e);
        int r;

        r = engine_heartbeat(e);
        if (r < 0 && r != -EIO)
                log_warning_errno(r, "Workflow heartbeat failed, trying again at the next: %m");
        if (every == 0)
                every = 60 * USEC_PER_SEC; /* switched off: look again later */
        (void) sd_event_source_set_time_relative(s, every);
        (void) sd_event_source_set_enabled(s, SD_EVENT_ON);
        return 0;
}

int engine_start(Engine *e) {
        int r = e->ops->start(e->backend);

        if (r < 0)
                return r;
        /* After start: what timed out while the daemon was down has been
         * found due first. */
        if (e->ctx.event && !e->heartbeat_timer) {
                uint64_t every = heartbeat_interval(e);
                r = sd_event_add_time_relative(e->ctx.event, &e->heartbeat_timer, CLOCK_MONOTONIC,
                                               every ?: 60 * USEC_PER_SEC, USEC_PER_SEC, on_heartbeat, e);
                if (r < 0)
                        return r;
                (void) sd_event_source_set_description(e->heartbeat_timer, "engine-heartbeat");
        }
        return 0;
}

int engine_heartbeat(Engine *e) {
        if (heartbeat_interval(e) == 0 || !e->ops->heartbeat)
                return 0;
        return e->ops->heartbeat(e->backend);
}

/* AWS's largest HeartbeatSeconds: "none" where a number is needed. */
#define HEARTBEAT_NONE_SECONDS 99999999

json_t *engine_settings_json(const Config *c) {
        uint64_t hb = (c->engine_heartbeat_usec + USEC_PER_SEC - 1) / USEC_PER_SEC;

        return json_pack("{s:I,s:I}", "payment_timeout_seconds",
                         (json_int_t) ((c->engine_payment_timeout_usec + USEC_PER_SEC - 1) / USEC_PER_SEC),
                         "heartbeat_seconds", (json_int_t) (hb > 0 ? hb : HEARTBEAT_NONE_SECONDS));
}

int engine_start_in_txn(Engine *e, const char *order_id, json_t *input) {
        char id[ORDER_ID_LEN + 1];

        if (order_id_parse(order_id, id) < 0)
                return -EINVAL;
        return e->ops->start_in_txn(e->backend, id, input);
}

void engine_kick(Engine *e) {
        if (e)
                e->ops->kick(e->backend);
}

int engine_run_due(Engine *e) {
        return e->ops->run_due(e->backend);
}

int engine_execution_json(Engine *e, const char *order_id, json_t **ret) {
        char id[ORDER_ID_LEN + 1];

        if (order_id_parse(order_id, id) < 0)
                return -EINVAL;
        return e->ops->execution_json(e->backend, id, ret);
}

int engine_notify_in_txn(Engine *e, const char *order_id, const char *template_id, const char *status) {
        char id[ORDER_ID_LEN + 1];

        if (order_id_parse(order_id, id) < 0)
                return -EINVAL;
        return e->ops->notify_in_txn(e->backend, id, template_id, status);
}

/* Whether a customer may still cancel an order in status s. */
static bool cancel_allowed(OrderStatus s, int until) {
        switch (s) {
        case ORDER_CREATED:
        case ORDER_CONFIRMED:
                return true;
        case ORDER_PREPARING:
                return until >= ENGINE_CANCEL_UNTIL_PREPARING;
        case ORDER_READY:
                return until >= ENGINE_CANCEL_UNTIL_READY;
        default:
                return false;
        }
}

static const char *cancel_refusal(OrderStatus s) {
        switch (s) {
        case ORDER_PREPARING:
                return "the order is already being prepared";
        case ORDER_READY:
                return "the order is already ready";
        case ORDER_IN_DELIVERY:
                return "the order is already on its way";
        case ORDER_DELIVERED:
                return "the order was already delivered";
        case ORDER_CANCELLED:
                return "the order is already cancelled";
        default:
                return "the order cannot be cancelled now";
        }
}

/* The callback output that carries ev to the waiting task, after
 * checking it against the order and what the execution waits for. */
static int event_output(Engine *e, EngineEvent ev, OrderStatus cur, const char *wait, json_t *data, json_t **ret,
                        const char **ret_why) {
        const Config *c = e->ctx.snapshot(e->ctx.userdata)->config;
        const char *why = NULL;

        switch (ev) {
        case ENGINE_EVENT_CANCEL:
                if (!cancel_allowed(cur, c->engine_cancel_until)) {
                        *ret_why = cancel_refusal(cur);
                        return -EPERM;
                }
                *ret = json_pack("{s:s}", "event", "cancel");
                break;
        case ENGINE_EVENT_CHANGE_ADDRESS: {
                const char *address = json_string_value(json_object_get(data, "address"));
                if (isempty(address) || strlen(address) > ENGINE_ADDRESS_MAX) {
                        *ret_why = "change_address needs an address of 1 to 500 bytes";
                        return -EINVAL;
                }
                if (cur >= ORDER_IN_DELIVERY) {
                        *ret_why = cur == ORDER_IN_DELIVERY ? "the order is already on its way"
                                : cur == ORDER_DELIVERED    ? "the order was already delivered"
                                                            : "the order is cancelled";
                        return -EPERM;
                }
                if (!streq_ptr(wait, "status")) {
                        *ret_why = "the order is waiting for its Pix payment; the address can change once it is paid";
                        return -EPERM;
                }
                *ret = json_pack("{s:s,s:s}", "event", "change_address", "address", address);
                break;
        }
        case ENGINE_EVENT_PAID:
                if (!streq_ptr(wait, "payment")) {
                        *ret_why = "the order is not waiting for a payment";
                        return -EPERM;
                }
                *ret = json_pack("{s:s}", "event", "paid");
                break;
        case ENGINE_EVENT_STATUS: {
                const char *status = json_string_value(json_object_get(data, "status"));
                OrderStatus to = order_status_from_string(status);
                _cleanup_free_ char *template = NULL;

                if (to != ORDER_PREPARING && to != ORDER_READY && to != ORDER_IN_DELIVERY && to != ORDER_DELIVERED) {
                        *ret_why = "the status must be PREPARING, READY, IN_DELIVERY or DELIVERED";
                        return -EINVAL;
                }
                if (!order_transition_allowed(cur, to, &why)) {
                        *ret_why = why ?: "that status change is not allowed";
                        return -EPERM;
                }
                if (!streq_ptr(wait, "status")) {
                        *ret_why = "the order is not confirmed yet";
                        return -EPERM;
                }
                template = mem_printf("notify_%s", status);
                if (!template)
                        return -ENOMEM;
                for (char *p = template; *p; p++)
                        if (*p >= 'A' && *p <= 'Z')
                                *p = (char) (*p - 'A' + 'a');
                *ret = json_pack("{s:s,s:s,s:s}", "event", "status", "status", status, "template", template);
                break;
        }
        default:
                *ret_why = "unknown event (cancel, change_address, paid or status)";
                return -EINVAL;
        }
        return *ret ? 0 : -ENOMEM;
}

int engine_event_in_txn(Engine *e, const char *order_id, const char *event, json_t *data,
                        const char **ret_refused_reason) {
        _cleanup_(json_decrefp) json_t *order = NULL, *output = NULL;
        _cleanup_free_ char *wait = NULL;
        const char *why = NULL;
        char id[ORDER_ID_LEN + 1];
        EngineEvent ev;
        OrderStatus cur;
        int r;

        ev = engine_event_from_string(event);
        if (ev < 0) {
                if (ret_refused_reason)
                        *ret_refused_reason = "unknown event (cancel, change_address, paid or status)";
                return -EINVAL;
        }
        if (order_id_parse(order_id, id) < 0) {
                if (ret_refused_reason)
                        *ret_refused_reason = "not an order id";
                return -EINVAL;
        }
        r = orders_get_json(e->ctx.orders, id, NULL, &order);
        if (r < 0)
                return r;
        cur = order_status_from_string(json_string_value(json_object_get(order, "status")));
        if (cur < 0)
                return -EBADMSG;
        if (cur == ORDER_CANCELLED || cur == ORDER_DELIVERED) {
                if (ret_refused_reason)
                        *ret_refused_reason =
                                cur == ORDER_CANCELLED ? "the order is cancelled" : "the order was already delivered";
                return -EPERM;
        }
        r = e->ops->waiting(e->backend, id, &wait);
        if (r == -EBUSY && e->ops->advance_in_txn) {
                /* Between two steps: if the next one is due already (a
                 * workflow just started, a kill before it ran), take it
                 * now, so that the event finds the wait it is for. */
                r = e->ops->advance_in_txn(e->backend, id);
                if (r > 0)
                        r = e->ops->waiting(e->backend, id, &wait);
                else if (r == 0)
                        r = -EBUSY;
        }
        if (r < 0 && r != -EBUSY)
                return r;
        r = event_output(e, ev, cur, wait, data, &output, &why);
        if (r < 0) {
                if (ret_refused_reason)
                        *ret_refused_reason = why;
                return r;
        }
        if (!wait) {
                if (ret_refused_reason)
                        *ret_refused_reason = "the workflow waits for no event now (between two steps, or on Step "
                                              "Functions no task token is known for it yet)";
                return -EBUSY;
        }
        return e->ops->send_in_txn(e->backend, id, output);
}

/* ---- wake-ups ------------------------------------------------------------ */

static int on_wakeup_timer(sd_event_source *s _unused_, uint64_t usec _unused_, void *userdata) {
        EngineWakeup *w = userdata;

        w->run(w->userdata);
        return 0;
}

static int on_wakeup_defer(sd_event_source *s _unused_, void *userdata) {
        EngineWakeup *w = userdata;

        w->run(w->userdata);
        return 0;
}

int engine_wakeup_at(EngineWakeup *w, uint64_t at) {
        int r;

        if (!w->event)
                return 0;
        if (at == UINT64_MAX)
                return w->timer ? sd_event_source_set_enabled(w->timer, SD_EVENT_OFF) : 0;
        if (!w->timer) {
                r = sd_event_add_time(w->event, &w->timer, CLOCK_REALTIME, at, 10 * USEC_PER_MSEC, on_wakeup_timer, w);
                if (r < 0)
                        return r;
                (void) sd_event_source_set_description(w->timer, w->name);
                return 0;
        }
        r = sd_event_source_set_time(w->timer, at);
        if (r < 0)
                return r;
        return sd_event_source_set_enabled(w->timer, SD_EVENT_ONESHOT);
}

void engine_wakeup_now(EngineWakeup *w) {
        if (!w->event)
                return;
        if (!w->defer) {
                if (sd_event_add_defer(w->event, &w->defer, on_wakeup_defer, w) < 0)
                        return; /* the timer looks again */
                (void) sd_event_source_set_description(w->defer, w->name);
        }
        (void) sd_event_source_set_enabled(w->defer, SD_EVENT_ONESHOT);
}

void engine_wakeup_done(EngineWakeup *w) {
        w->timer = sd_event_source_disable_unref(w->timer);
        w->defer = sd_event_source_disable_unref(w->defer);
}
