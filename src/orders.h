/* SPDX-License-Identifier: MIT */
/*
 * orders.h — orders in the store: creation inside the caller's
 * transaction, the Open Delivery v2 statuses with a declared table of
 * allowed transitions and a history row for each, the order JSON of
 * DESIGN.md's public contract, listing, and look-ups by id, by customer
 * and by tracking token.
 *
 * Order ids are 6 characters of Crockford base32 (shown "#7KQ2XM"), drawn
 * with getrandom() and unique in the store.  Tracking tokens are 32
 * characters of lower-case Crockford base32 (160 random bits).
 *
 * No daemon state: an Orders works on a Store and takes the time from its
 * caller, so the same code can run in a Lambda function.  Nothing here
 * logs.
 *
 * Security: ids and tokens come from customers, operators and the web
 * (GET /t/TOKEN); they are parsed strictly and only ever bound as SQL
 * parameters.  Another customer's order behaves exactly like an unknown
 * one.
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"
#include "store.h"

#define ORDER_ID_LEN 6
#define ORDER_TOKEN_LEN 32
#define ORDER_MAX_ITEMS 100
#define ORDER_MAX_QTY 1000

typedef enum OrderStatus {
        ORDER_CREATED,
        ORDER_CONFIRMED,
        ORDER_PREPARING,
        ORDER_READY,
        ORDER_IN_DELIVERY,
        ORDER_DELIVERED,
        ORDER_CANCELLED,
        _ORDER_STATUS_MAX,
        _ORDER_STATUS_INVALID = -EINVAL,
} OrderStatus;

typedef enum OrderPayment {
        ORDER_PAYMENT_PIX,
        ORDER_PAYMENT_CARD,
        ORDER_PAYMENT_CASH,
        _ORDER_PAYMENT_MAX,
        _ORDER_PAYMENT_INVALID = -EINVAL,
} OrderPayment;

/* "CREATED" … "CANCELLED"; from_string is exact (upper case). */
const char *order_status_to_string(OrderStatus s);
OrderStatus order_status_from_string(const char *s);
/* "pix", "card", "cash". */
const char *order_payment_to_string(OrderPayment p);
OrderPayment order_payment_from_string(const char *s);

/* Whether an order may go from one status to another (Open Delivery v2:
 * CREATED → CONFIRMED → PREPARING → READY → IN_DELIVERY → DELIVERED, and
 * CANCELLED from any state that is not final).  When not, *ret_why (may
 * be NULL) says why, as a static English sentence. */
bool order_transition_allowed(OrderStatus from, OrderStatus to, const char **ret_why);

/* Parse an order id as people write it: case-insensitive, with or without
 * a leading '#', Crockford's aliases I and L for 1 and O for 0.  Writes the
 * canonical upper-case id and its NUL to ret_id.  -EINVAL. */
int order_id_parse(const char *text, char ret_id[ORDER_ID_LEN + 1]);

/* Whether text has the form of a tracking token (length and alphabet). */
bool order_token_valid(const char *text);

typedef struct OrderItemDraft {
        const char *sku;
        const char *name; /* as shown to the customer, in the order's language */
        int64_t qty; /* 1 … ORDER_MAX_QTY */
        int64_t unit_price_cents;
} OrderItemDraft;

/* What a new order is made of.  Strings are borrowed (copied into the store). */
typedef struct OrderDraft {
        const char *customer; /* E.164 phone or e-mail address */
        const char *channel; /* "sms" or "email" */
        const char *lang; /* "pt" or "en" */
        const char *address;
        const char *zone; /* zone id, may be NULL */
        const char *zone_name; /* the zone's name as shown, may be NULL */
        int64_t delivery_fee_cents;
        OrderPayment payment;
        int64_t change_for_cents; /* cash: the note to change; 0 none */
        uint64_t eta_usec; /* 0: not known yet */
        const char *mail_message_id, *mail_subject; /* e-mail thread, may be NULL */
        const OrderItemDraft *items;
        size_t n_items; /* 1 … ORDER_MAX_ITEMS */
} OrderDraft;

typedef struct Orders Orders;

/* Fill buf with n random bytes; 0 or -errno.  Tests inject their own. */
typedef int (*OrdersRandom)(void *buf, size_t n, void *userdata);

/* An Orders on store (borrowed; must outlive it).  -ENOMEM. */
int orders_new(Store *store, Orders **ret);
Orders *orders_free(Orders *o);
DEFINE_TRIVIAL_CLEANUP_FUNC(Orders *, orders_free);

/* Replace getrandom() (NULL: back to it).  For tests of id collisions. */
void orders_set_random(Orders *o, OrdersRandom fn, void *userdata);

/* Insert a new order in status CREATED, with its items and a first
 * history row, WITHOUT beginning or committing: call it inside the
 * caller's transaction.  subtotal and total are computed here.  Writes
 * the id to ret_id and (ret_token may be NULL) the tracking token.
 * -EINVAL for a bad draft, -EEXIST when no free id was found after a few
 * draws, -ENOMEM, -errno from the store. */
int orders_create_in_txn(Orders *o, const OrderDraft *d, uint64_t now_usec, char ret_id[ORDER_ID_LEN + 1],
                         char ret_token[ORDER_TOKEN_LEN + 1]);

/* Move order id to status to, with reason (required for CANCELLED, else
 * may be NULL), and add a history row; inside the caller's transaction.
 * Setting the status the order already has changes nothing and returns
 * 0 (so that a task run twice does no harm).  -ENOENT unknown order,
 * -EINVAL bad status or CANCELLED without reason, -EPERM when the
 * transition is not allowed (why in *ret_why, static, may be NULL). */
int orders_set_status_in_txn(Orders *o, const char *id, OrderStatus to, const char *reason, uint64_t now_usec,
                             const char **ret_why);

/* Record a new ETA (usec since the epoch); inside the caller's transaction.  -ENOENT. */
int orders_set_eta_in_txn(Orders *o, const char *id, uint64_t eta_usec, uint64_t now_usec);

/* Record a quote: the address it was for (NULL: keep the order's), its
 * zone and fee (total recomputed) and its ETA; inside the caller's
 * transaction.  -ENOENT, -EINVAL. */
int orders_set_quote_in_txn(Orders *o, const char *id, const char *address, const char *zone, const char *zone_name,
                            int64_t fee_cents, uint64_t eta_usec, uint64_t now_usec);

/* Record the payment's state ("authorised", "pending", "paid", "voided")
 * and the Pix code (may be NULL: kept as it is); inside the caller's
 * transaction.  -ENOENT, -EINVAL. */
int orders_set_payment_in_txn(Orders *o, const char *id, const char *payment_status, const char *pix_code,
                              uint64_t now_usec);

/* The order JSON (DESIGN.md): id, customer, channel, lang, status, items
 * [{sku, qty, unit_price_cents, name}], address, zone, zone_name,
 * delivery_fee_cents, subtotal_cents, total_cents, payment,
 * change_for_cents, payment_status, pix_code, eta (RFC 3339 or null),
 * tracking_url (public_url + "/t/" + token; null when public_url is
 * empty), cancel_reason, created_at, updated_at, history [{status, at,
 * reason}].  id is parsed with order_id_parse().  0 and a new reference,
 * -EINVAL not an order id, -ENOENT, -ENOMEM, -errno. */
int orders_get_json(Orders *o, const char *id, const char *public_url, json_t **ret);

/* Like orders_get_json(), but an order of another customer is -ENOENT,
 * exactly as an unknown one. */
int orders_get_for_customer(Orders *o, const char *id, const char *customer, const char *public_url, json_t **ret);

/* Like orders_get_json(), found by tracking token; a malformed token is
 * looked up all the same (and not found), so that both take the same
 * path.  -ENOENT. */
int orders_get_by_token_json(Orders *o, const char *token, const char *public_url, json_t **ret);

/* The newest limit orders, oldest first, as order JSON.  New reference or NULL. */
json_t *orders_list_json(Orders *o, const char *public_url, unsigned limit);

/* The id of customer's newest order that is neither DELIVERED nor
 * CANCELLED.  0, -ENOENT, -errno. */
int orders_latest_active(Orders *o, const char *customer, char ret_id[ORDER_ID_LEN + 1]);

/* Format usec since the epoch as RFC 3339 UTC ("2026-12-04T18:15:00Z"). */
void orders_format_time(uint64_t usec, char buf[static 32]);
