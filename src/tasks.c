/* SPDX-License-Identifier: MIT */
/*
 * tasks.c — the workflow's tasks, one function each, in one table.
 *
 * Each task reads what it needs from the store (through orders and stock)
 * and the snapshot, so that its input can stay the small JSON the state
 * machine passes; idempotence comes from the store (reservation rows, a
 * status set twice, a Pix code kept in the order).
 *
 * Security: see tasks.h.
 */
#include "tasks.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "catalog.h"
#include "pix.h"
#include "stock.h"
#include "strutil.h"

typedef int (*TaskFunction)(TaskContext *ctx, json_t *input, json_t **ret, TaskFailure *f);

void task_failure_clear(TaskFailure *f) {
        if (!f)
                return;
        free(f->error);
        free(f->cause);
        f->error = f->cause = NULL;
}

/* Fill f and return 1 (a task failure); -ENOMEM when even that fails. */
_printf_(3, 4) static int fail(TaskFailure *f, const char *error, const char *fmt, ...) {
        char cause[512];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(cause, sizeof cause, fmt, ap);
        va_end(ap);
        f->cause = mem_strdup(cause);
        f->error = mem_strdup(error);
        if (!f->error || !f->cause) {
                task_failure_clear(f);
                return -ENOMEM;
        }
        return 1;
}

/* input.order_id, canonical, or a failure. */
static int input_order_id(json_t *input, char id[ORDER_ID_LEN + 1], TaskFailure *f) {
        const char *s = json_string_value(json_object_get(input, "order_id"));

        if (!s)
                return fail(f, "deliveryd.InvalidInput", "the input needs an order_id string");
        if (order_id_parse(s, id) < 0)
                return fail(f, "deliveryd.InvalidInput", "'%.32s' is not an order id", s);
        return 0;
}

/* The order JSON of input.order_id, or a failure. */
static int input_order(TaskContext *ctx, json_t *input, char id[ORDER_ID_LEN + 1], json_t **ret, TaskFailure *f) {
        int r = input_order_id(input, id, f);

        if (r != 0)
                return r;
        r = orders_get_json(ctx->orders, id, NULL, ret);
        if (r == -ENOENT)
                return fail(f, "deliveryd.OrderNotFound", "no order %s", id);
        return r;
}

static int task_availability(TaskContext *ctx, json_t *input, json_t **ret, TaskFailure *f) {
        _cleanup_free_ StockWant *wants = NULL;
        _cleanup_strv_free_ char **short_skus = NULL;
        char id[ORDER_ID_LEN + 1];
        json_t *order = NULL, *items, *it, *out, *list;
        size_t i, n;
        int r;

        r = input_order(ctx, input, id, &order, f);
        if (r != 0)
                return r;
        items = json_object_get(order, "items");
        n = json_array_size(items);
        wants = mem_new(StockWant, MAX(n, 1u));
        if (!wants) {
                json_decref(order);
                return -ENOMEM;
        }
        json_array_foreach (items, i, it)
                wants[i] = (StockWant){ json_string_value(json_object_get(it, "sku")),
                                        json_integer_value(json_object_get(it, "qty")) };
        r = stock_reserve_in_txn(ctx->store, id, wants, n, &short_skus);
        json_decref(order); /* after the reservation: wants borrow its strings */
        if (r < 0)
                return r;
        if (r == 0) {
                out = json_pack("{s:b}", "available", 1);
                if (!out)
                        return -ENOMEM;
                *ret = out;
                return 0;
        }
        list = json_array();
        for (char **s = short_skus; list && *s; s++)
                if (json_array_append_new(list, json_string(*s)) < 0) {
                        json_decref(list);
                        list = NULL;
                }
        out = list ? json_pack("{s:b,s:o}", "available", 0, "unavailable", list) : NULL;
        if (!out)
                return -ENOMEM;
        *ret = out;
        return 0;
}

static int task_release(TaskContext *ctx, json_t *input, json_t **ret, TaskFailure *f) {
        char id[ORDER_ID_LEN + 1];
        int r;

        r = input_order_id(input, id, f);
        if (r != 0)
                return r;
        r = stock_release_in_txn(ctx->store, id);
        if (r < 0)
                return r;
        *ret = json_pack("{s:b}", "released", r > 0);
        return *ret ? 0 : -ENOMEM;
}

static int task_quote(TaskContext *ctx, json_t *input, json_t **ret, TaskFailure *f) {
        _cleanup_free_ char *place = NULL;
        const char *address = json_string_value(json_object_get(input, "address"));
        const Zone *zone = NULL;
        char id[ORDER_ID_LEN + 1] = "", eta[32];
        json_t *out;
        int r;

        if (isempty(address))
                return fail(f, "deliveryd.InvalidInput", "quote needs an address string");
        if (json_object_get(input, "order_id")) {
                r = input_order_id(input, id, f);
                if (r != 0)
                        return r;
        }
        r = catalog_locate(ctx->snapshot->catalog, address, false, &zone, &place);
        if (r < 0)
                return r;
        if (r != ZONE_PLACE_FOUND) {
                out = json_pack("{s:b,s:s,s:s?}", "served", 0, "reason",
                                r == ZONE_PLACE_OUTSIDE ? "outside" : "unknown", "place", place);
                if (out && !place && json_object_set_new(out, "place", json_null()) < 0) {
                        json_decref(out);
                        out = NULL;
                }
                if (!out)
                        return -ENOMEM;
                *ret = out;
                return 0;
        }
        uint64_t eta_usec = ctx->now_usec + zone->eta_usec;
        if (*id) {
                r = orders_set_quote_in_txn(ctx->orders, id, address, zone->id, zone->name, zone->fee_cents, eta_usec,
                                            ctx->now_usec);
                if (r == -ENOENT)
                        return fail(f, "deliveryd.OrderNotFound", "no order %s", id);
                if (r < 0)
                        return r;
        }
        orders_format_time(eta_usec, eta);
        out = json_pack("{s:b,s:s,s:s,s:I,s:I,s:s}", "served", 1, "zone", zone->id, "zone_name", zone->name,
                        "delivery_fee_cents", (json_int_t) zone->fee_cents, "eta_minutes",
                        (json_int_t) (zone->eta_usec / (60 * USEC_PER_SEC)), "eta", eta);
        if (!out)
                return -ENOMEM;
        *ret = out;
        return 0;
}

static int task_payment(TaskContext *ctx, json_t *input, json_t **ret, TaskFailure *f) {
        _cleanup_free_ char *code = NULL;
        const Config *c = ctx->snapshot->config;
        char id[ORDER_ID_LEN + 1];
        json_t *order = NULL, *out;
        const char *method, *existing;
        json_int_t total;
        int r;

        r = input_order(ctx, input, id, &order, f);
        if (r != 0)
                return r;
        method = json_string_value(json_object_get(order, "payment"));
        total = json_integer_value(json_object_get(order, "total_cents"));
        existing = json_string_value(json_object_get(order, "pix_code"));
        if (!streq_ptr(method, "pix")) {
                bool card = streq_ptr(method, "card");
                json_decref(order);
                r = orders_set_payment_in_txn(ctx->orders, id, "authorised", NULL, ctx->now_usec);
                if (r < 0)
                        return r;
                *ret = json_pack("{s:s,s:s}", "method", card ? "card" : "cash", "status", "authorised");
                return *ret ? 0 : -ENOMEM;
        }
        if (existing)
                /* Run again: the customer already has this code; keep it. */
                code = mem_strdup(existing);
        json_decref(order);
        if (existing && !code)
                return -ENOMEM;
        if (!code) {
                if (isempty(c->pix_key) || isempty(c->pix_merchant_city))
                        return fail(f, "deliveryd.PixNotConfigured",
                                    "Pix needs pix.key and pix.merchant_city in the configuration");
                const PixRequest p = {
                        .key = c->pix_key,
                        .merchant_name = isempty(c->pix_merchant_name) ? c->store_name : c->pix_merchant_name,
                        .merchant_city = c->pix_merchant_city,
                        .amount_cents = total,
                        .txid = id,
                };
                r = pix_brcode(&p, &code);
                if (r == -EINVAL)
                        return fail(f, "deliveryd.PixNotConfigured",
                                    "pix.key, pix.merchant_name or pix.merchant_city cannot go in a BR Code");
                if (r < 0)
                        return r;
                r = orders_set_payment_in_txn(ctx->orders, id, "pending", code, ctx->now_usec);
                if (r < 0)
                        return r;
        }
        out = json_pack("{s:s,s:s,s:s,s:I}", "method", "pix", "status", "pending", "pix_code", code, "amount_cents",
                        total);
        if (!out)
                return -ENOMEM;
        *ret = out;
        return 0;
}

static int task_void_payment(TaskContext *ctx, json_t *input, json_t **ret, TaskFailure *f) {
        char id[ORDER_ID_LEN + 1];
        int r;

        r = input_order_id(input, id, f);
        if (r != 0)
                return r;
        r = orders_set_payment_in_txn(ctx->orders, id, "voided", NULL, ctx->now_usec);
        if (r == -ENOENT)
                return fail(f, "deliveryd.OrderNotFound", "no order %s", id);
        if (r < 0)
                return r;
        *ret = json_pack("{s:s}", "status", "voided");
        return *ret ? 0 : -ENOMEM;
}

static int task_set_status(TaskContext *ctx, json_t *input, json_t **ret, TaskFailure *f) {
        const char *status = json_string_value(json_object_get(input, "status"));
        const char *reason = json_string_value(json_object_get(input, "reason"));
        const char *why = NULL, *previous;
        char id[ORDER_ID_LEN + 1];
        json_t *order = NULL;
        OrderStatus to;
        int r;

        to = order_status_from_string(status);
        if (to < 0)
                return fail(f, "deliveryd.InvalidInput", "'%.32s' is not an order status", strempty(status));
        if (to == ORDER_CANCELLED && isempty(reason))
                return fail(f, "deliveryd.InvalidInput", "CANCELLED needs a reason");
        r = input_order(ctx, input, id, &order, f);
        if (r != 0)
                return r;
        /* The order JSON owns the string; copy what we keep. */
        _cleanup_free_ char *prev = mem_strdup(strempty(json_string_value(json_object_get(order, "status"))));
        json_decref(order);
        if (!prev)
                return -ENOMEM;
        previous = prev;
        r = orders_set_status_in_txn(ctx->orders, id, to, reason, ctx->now_usec, &why);
        if (r == -EPERM)
                return fail(f, "deliveryd.TransitionRefused", "order %s is %s and cannot become %s: %s", id, previous,
                            status, why);
        if (r < 0)
                return r;
        *ret = json_pack("{s:s,s:s,s:s}", "order_id", id, "status", order_status_to_string(to), "previous", previous);
        return *ret ? 0 : -ENOMEM;
}

static const struct {
        const char *name;
        TaskFunction run;
} task_table[] = {
        { "availability", task_availability }, { "release", task_release },           { "quote", task_quote },
        { "payment", task_payment },           { "void_payment", task_void_payment }, { "set_status", task_set_status },
};

const char *const *task_names(void) {
        static const char *const names[] = { "availability", "release",    "quote", "payment",
                                             "void_payment", "set_status", NULL };
        return names;
}

int task_invoke(const char *name, TaskContext *ctx, json_t *input, json_t **ret_output, TaskFailure *ret_failure) {
        TaskFailure f = {};
        json_t *out = NULL;
        int r;

        for (size_t i = 0; i < ELEMENTSOF(task_table); i++) {
                if (!streq_ptr(task_table[i].name, name))
                        continue;
                if (!json_is_object(input))
                        r = fail(&f, "deliveryd.InvalidInput", "the input of %s must be a JSON object", name);
                else
                        r = task_table[i].run(ctx, input, &out, &f);
                if (r == 0)
                        *ret_output = out;
                else if (r == 1)
                        *ret_failure = f;
                return r;
        }
        r = fail(&f, "deliveryd.UnknownTask", "no task named '%.64s'", strempty(name));
        if (r == 1)
                *ret_failure = f;
        return r;
}
