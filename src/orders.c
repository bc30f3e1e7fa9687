/* SPDX-License-Identifier: MIT */
/*
 * orders.c — orders, their items and history in SQLite.
 *
 * Every change is written inside the caller's transaction: the caller
 * (the conversation, a workflow task, an operator command) commits it
 * together with what it sends, or rolls all of it back.
 *
 * Security: see orders.h.
 */
#include "orders.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "alloc.h"

#define ID_DRAWS 16

struct Orders {
        Store *store;
        OrdersRandom random;
        void *random_data;
};

static const char crockford[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

static const char *const status_table[_ORDER_STATUS_MAX] = {
        [ORDER_CREATED] = "CREATED",     [ORDER_CONFIRMED] = "CONFIRMED",     [ORDER_PREPARING] = "PREPARING",
        [ORDER_READY] = "READY",         [ORDER_IN_DELIVERY] = "IN_DELIVERY", [ORDER_DELIVERED] = "DELIVERED",
        [ORDER_CANCELLED] = "CANCELLED",
};

static const char *const payment_table[_ORDER_PAYMENT_MAX] = {
        [ORDER_PAYMENT_PIX] = "pix",
        [ORDER_PAYMENT_CARD] = "card",
        [ORDER_PAYMENT_CASH] = "cash",
};

const char *order_status_to_string(OrderStatus s) {
        return (unsigned) s < _ORDER_STATUS_MAX ? status_table[s] : NULL;
}

OrderStatus order_status_from_string(const char *s) {
        for (int i = 0; s && i < _ORDER_STATUS_MAX; i++)
                if (streq(status_table[i], s))
                        return (OrderStatus) i;
        return _ORDER_STATUS_INVALID;
}

const char *order_payment_to_string(OrderPayment p) {
        return (unsigned) p < _ORDER_PAYMENT_MAX ? payment_table[p] : NULL;
}

OrderPayment order_payment_from_string(const char *s) {
        for (int i = 0; s && i < _ORDER_PAYMENT_MAX; i++)
                if (streq(payment_table[i], s))
                        return (OrderPayment) i;
        return _ORDER_PAYMENT_INVALID;
}

/* The forward path, one row per status: where it may go next. */
static const OrderStatus next_status[_ORDER_STATUS_MAX] = {
        [ORDER_CREATED] = ORDER_CONFIRMED,         [ORDER_CONFIRMED] = ORDER_PREPARING,
        [ORDER_PREPARING] = ORDER_READY,           [ORDER_READY] = ORDER_IN_DELIVERY,
        [ORDER_IN_DELIVERY] = ORDER_DELIVERED,     [ORDER_DELIVERED] = _ORDER_STATUS_INVALID,
        [ORDER_CANCELLED] = _ORDER_STATUS_INVALID,
};

bool order_transition_allowed(OrderStatus from, OrderStatus to, const char **ret_why) {
        const char *why;

        if ((unsigned) from >= _ORDER_STATUS_MAX || (unsigned) to >= _ORDER_STATUS_MAX)
                why = "unknown status";
        else if (from == ORDER_DELIVERED)
                why = "the order was delivered; it cannot change any more";
        else if (from == ORDER_CANCELLED)
                why = "the order was cancelled; it cannot change any more";
        else if (to == ORDER_CANCELLED || next_status[from] == to)
                return true;
        else if (to == ORDER_CREATED)
                why = "an order cannot go back to CREATED";
        else if (to < from)
                why = "an order cannot go back to an earlier status";
        else if (to == from)
                why = "the order already has that status";
        else
                why = "an order cannot skip a status";
        if (ret_why)
                *ret_why = why;
        return false;
}

int order_id_parse(const char *text, char ret_id[ORDER_ID_LEN + 1]) {
        char id[ORDER_ID_LEN + 1];
        size_t n = 0;

        if (!text)
                return -EINVAL;
        if (*text == '#')
                text++;
        for (; *text; text++) {
                char c = *text;

                if (c >= 'a' && c <= 'z')
                        c = (char) (c - 'a' + 'A');
                if (c == 'I' || c == 'L')
                        c = '1';
                else if (c == 'O')
                        c = '0';
                if (!strchr(crockford, c) || c == '\0' || n >= ORDER_ID_LEN)
                        return -EINVAL;
                id[n++] = c;
        }
        if (n != ORDER_ID_LEN)
                return -EINVAL;
        id[n] = '\0';
        memcpy(ret_id, id, sizeof id);
        return 0;
}

bool order_token_valid(const char *text) {
        static const char alphabet[] = "0123456789abcdefghjkmnpqrstvwxyz";
        size_t n = 0;

        for (; text && *text; text++, n++)
                if (n >= ORDER_TOKEN_LEN || !strchr(alphabet, *text))
                        return false;
        return n == ORDER_TOKEN_LEN;
}

int orders_new(Store *store, Orders **ret) {
        Orders *o = mem_new(Orders, 1);

        if (!o)
                return -ENOMEM;
        o->store = store;
        *ret = o;
        return 0;
}

Orders *orders_free(Orders *o) {
        free(o);
        return NULL;
}

void orders_set_random(Orders *o, OrdersRandom fn, void *userdata) {
        o->random = fn;
        o->random_data = userdata;
}

static int random_bytes(Orders *o, void *buf, size_t n) {
        if (o->random)
                return o->random(buf, n, o->random_data);
        if (getrandom(buf, n, 0) != (ssize_t) n)
                return -errno ?: -EIO;
        return 0;
}

/* n_chars characters of Crockford base32 from the bits of buf. */
static void base32(const uint8_t *buf, size_t n_chars, bool lower, char *out) {
        for (size_t i = 0; i < n_chars; i++) {
                size_t bit = i * 5;
                unsigned v =
                        (unsigned) buf[bit / 8] << 8 | (bit / 8 + 1 < (n_chars * 5 + 7) / 8 ? buf[bit / 8 + 1] : 0);
                char c = crockford[(v >> (11 - bit % 8)) & 31];
                out[i] = lower && c >= 'A' ? (char) (c - 'A' + 'a') : c;
        }
        out[n_chars] = '\0';
}

void orders_format_time(uint64_t usec, char buf[static 32]) {
        time_t t = (time_t) (usec / USEC_PER_SEC);
        struct tm tm;

        gmtime_r(&t, &tm);
        strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* ---- statements -------------------------------------------------------- */

static void bind_opt(sqlite3_stmt *st, int i, const char *s) {
        if (s)
                sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
        else
                sqlite3_bind_null(st, i);
}

static const char *col(sqlite3_stmt *st, int i) {
        return (const char *) sqlite3_column_text(st, i);
}

/* 1 when the id is taken, 0 when free, -errno. */
static int id_taken(Orders *o, const char *id) {
        sqlite3_stmt *st = NULL;
        int rc, r;

        r = store_prepare(o->store, "SELECT 1 FROM orders WHERE id = ?", &st);
        if (r < 0)
                return r;
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        store_finish(o->store, st);
        if (rc == SQLITE_ROW)
                return 1;
        if (rc == SQLITE_DONE)
                return 0;
        return store_check(o->store, rc, "look up order id") ?: -EIO;
}

static int add_history(Orders *o, const char *id, const char *status, const char *reason, uint64_t now_usec) {
        sqlite3_stmt *st = NULL;
        int r;

        r = store_prepare(o->store, "INSERT INTO order_history (order_id, at, status, reason) VALUES (?, ?, ?, ?)",
                          &st);
        if (r < 0)
                return r;
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, (int64_t) now_usec);
        sqlite3_bind_text(st, 3, status, -1, SQLITE_STATIC);
        bind_opt(st, 4, reason);
        return store_step_done(o->store, st, "record order history");
}

static bool draft_valid(const OrderDraft *d, int64_t *ret_subtotal) {
        int64_t subtotal = 0;

        if (!d || isempty(d->customer) || isempty(d->address) || !d->items || d->n_items == 0 ||
            d->n_items > ORDER_MAX_ITEMS)
                return false;
        if (!streq_ptr(d->channel, "sms") && !streq_ptr(d->channel, "email"))
                return false;
        if (!streq_ptr(d->lang, "pt") && !streq_ptr(d->lang, "en"))
                return false;
        if ((unsigned) d->payment >= _ORDER_PAYMENT_MAX || d->delivery_fee_cents < 0 || d->change_for_cents < 0 ||
            d->delivery_fee_cents > INT32_MAX)
                return false;
        for (size_t i = 0; i < d->n_items; i++) {
                const OrderItemDraft *it = &d->items[i];
                if (isempty(it->sku) || !it->name || it->qty < 1 || it->qty > ORDER_MAX_QTY ||
                    it->unit_price_cents < 0 || it->unit_price_cents > INT32_MAX)
                        return false;
                subtotal += it->qty * it->unit_price_cents; /* ≤ 100 × 1000 × 2^31: no overflow */
        }
        *ret_subtotal = subtotal;
        return true;
}

int orders_create_in_txn(Orders *o, const OrderDraft *d, uint64_t now_usec, char ret_id[ORDER_ID_LEN + 1],
                         char ret_token[ORDER_TOKEN_LEN + 1]) {
        char id[ORDER_ID_LEN + 1] = "", token[ORDER_TOKEN_LEN + 1];
        uint8_t rnd[20];
        sqlite3_stmt *st = NULL;
        int64_t subtotal;
        int r;

        if (!draft_valid(d, &subtotal))
                return -EINVAL;
        for (unsigned i = 0;; i++) {
                if (i == ID_DRAWS)
                        return -EEXIST;
                r = random_bytes(o, rnd, 4);
                if (r < 0)
                        return r;
                base32(rnd, ORDER_ID_LEN, false, id);
                r = id_taken(o, id);
                if (r < 0)
                        return r;
                if (r == 0)
                        break;
        }
        /* 160 bits: the token is the only key to the tracking page. */
        r = random_bytes(o, rnd, sizeof rnd);
        if (r < 0)
                return r;
        base32(rnd, ORDER_TOKEN_LEN, true, token);

        r = store_prepare(o->store,
                          "INSERT INTO orders (id, customer, channel, lang, status, address, zone, zone_name, "
                          "delivery_fee_cents, subtotal_cents, total_cents, payment, change_for_cents, eta, "
                          "tracking_token, mail_message_id, mail_subject, created_at, updated_at) "
                          "VALUES (?, ?, ?, ?, 'CREATED', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                          &st);
        if (r < 0)
                return r;
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, d->customer, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, d->channel, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, d->lang, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 5, d->address, -1, SQLITE_STATIC);
        bind_opt(st, 6, d->zone);
        bind_opt(st, 7, d->zone_name);
        sqlite3_bind_int64(st, 8, d->delivery_fee_cents);
        sqlite3_bind_int64(st, 9, subtotal);
        sqlite3_bind_int64(st, 10, subtotal + d->delivery_fee_cents);
        sqlite3_bind_text(st, 11, payment_table[d->payment], -1, SQLITE_STATIC);
        if (d->change_for_cents > 0)
                sqlite3_bind_int64(st, 12, d->change_for_cents);
        else
                sqlite3_bind_null(st, 12);
        if (d->eta_usec > 0)
                sqlite3_bind_int64(st, 13, (int64_t) d->eta_usec);
        else
                sqlite3_bind_null(st, 13);
        sqlite3_bind_text(st, 14, token, -1, SQLITE_STATIC);
        bind_opt(st, 15, d->mail_message_id);
        bind_opt(st, 16, d->mail_subject);
        sqlite3_bind_int64(st, 17, (int64_t) now_usec);
        sqlite3_bind_int64(st, 18, (int64_t) now_usec);
        r = store_step_done(o->store, st, "insert order");
        if (r < 0)
                return r;

        for (size_t i = 0; i < d->n_items; i++) {
                r = store_prepare(o->store,
                                  "INSERT INTO order_items (order_id, line, sku, qty, unit_price_cents, name) "
                                  "VALUES (?, ?, ?, ?, ?, ?)",
                                  &st);
                if (r < 0)
                        return r;
                sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
                sqlite3_bind_int64(st, 2, (int64_t) i);
                sqlite3_bind_text(st, 3, d->items[i].sku, -1, SQLITE_STATIC);
                sqlite3_bind_int64(st, 4, d->items[i].qty);
                sqlite3_bind_int64(st, 5, d->items[i].unit_price_cents);
                sqlite3_bind_text(st, 6, d->items[i].name, -1, SQLITE_STATIC);
                r = store_step_done(o->store, st, "insert order item");
                if (r < 0)
                        return r;
        }
        r = add_history(o, id, "CREATED", NULL, now_usec);
        if (r < 0)
                return r;
        memcpy(ret_id, id, sizeof id);
        if (ret_token)
                memcpy(ret_token, token, sizeof token);
        return 0;
}

/* The status of order id (canonical); -ENOENT, -errno. */
static int read_status(Orders *o, const char *id, OrderStatus *ret) {
        sqlite3_stmt *st = NULL;
        int rc, r;

        r = store_prepare(o->store, "SELECT status FROM orders WHERE id = ?", &st);
        if (r < 0)
                return r;
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
                *ret = order_status_from_string(col(st, 0));
                store_finish(o->store, st);
                return 0;
        }
        store_finish(o->store, st);
        if (rc == SQLITE_DONE)
                return -ENOENT;
        return store_check(o->store, rc, "read order status") ?: -EIO;
}

int orders_set_status_in_txn(Orders *o, const char *id_text, OrderStatus to, const char *reason, uint64_t now_usec,
                             const char **ret_why) {
        char id[ORDER_ID_LEN + 1];
        OrderStatus from = _ORDER_STATUS_INVALID;
        sqlite3_stmt *st = NULL;
        const char *why = NULL;
        int r;

        if (order_id_parse(id_text, id) < 0)
                return -ENOENT;
        if ((unsigned) to >= _ORDER_STATUS_MAX || (to == ORDER_CANCELLED && isempty(reason)))
                return -EINVAL;
        r = read_status(o, id, &from);
        if (r < 0)
                return r;
        if (from == to)
                return 0;
        if (!order_transition_allowed(from, to, &why)) {
                if (ret_why)
                        *ret_why = why;
                return -EPERM;
        }
        r = store_prepare(o->store,
                          "UPDATE orders SET status = ?, updated_at = ?, cancel_reason = coalesce(?, cancel_reason) "
                          "WHERE id = ?",
                          &st);
        if (r < 0)
                return r;
        sqlite3_bind_text(st, 1, status_table[to], -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, (int64_t) now_usec);
        bind_opt(st, 3, to == ORDER_CANCELLED ? reason : NULL);
        sqlite3_bind_text(st, 4, id, -1, SQLITE_STATIC);
        r = store_step_done(o->store, st, "update order status");
        if (r < 0)
                return r;
        return add_history(o, id, status_table[to], reason, now_usec);
}

/* Run an UPDATE … WHERE id = ?N on one order; -ENOENT when no row changed. */
static int update_one(Orders *o, sqlite3_stmt *st, const char *what) {
        int r = store_step_done(o->store, st, what);

        if (r < 0)
                return r;
        return sqlite3_changes(store_db(o->store)) > 0 ? 0 : -ENOENT;
}

int orders_set_eta_in_txn(Orders *o, const char *id_text, uint64_t eta_usec, uint64_t now_usec) {
        char id[ORDER_ID_LEN + 1];
        sqlite3_stmt *st = NULL;
        int r;

        if (order_id_parse(id_text, id) < 0)
                return -ENOENT;
        r = store_prepare(o->store, "UPDATE orders SET eta = ?, updated_at = ? WHERE id = ?", &st);
        if (r < 0)
                return r;
        sqlite3_bind_int64(st, 1, (int64_t) eta_usec);
        sqlite3_bind_int64(st, 2, (int64_t) now_usec);
        sqlite3_bind_text(st, 3, id, -1, SQLITE_STATIC);
        return update_one(o, st, "update order ETA");
}

int orders_set_quote_in_txn(Orders *o, const char *id_text, const char *address, const char *zone,
                            const char *zone_name, int64_t fee_cents, uint64_t eta_usec, uint64_t now_usec) {
        char id[ORDER_ID_LEN + 1];
        sqlite3_stmt *st = NULL;
        int r;

        if (order_id_parse(id_text, id) < 0)
                return -ENOENT;
        if (fee_cents < 0 || fee_cents > INT32_MAX)
                return -EINVAL;
        r = store_prepare(
                o->store,
                "UPDATE orders SET zone = ?, zone_name = ?, delivery_fee_cents = ?, total_cents = subtotal_cents "
                "+ ?, eta = ?, updated_at = ?, address = coalesce(?, address) WHERE id = ?",
                &st);
        if (r < 0)
                return r;
        bind_opt(st, 1, zone);
        bind_opt(st, 2, zone_name);
        sqlite3_bind_int64(st, 3, fee_cents);
        sqlite3_bind_int64(st, 4, fee_cents);
        if (eta_usec > 0)
                sqlite3_bind_int64(st, 5, (int64_t) eta_usec);
        else
                sqlite3_bind_null(st, 5);
        sqlite3_bind_int64(st, 6, (int64_t) now_usec);
        bind_opt(st, 7, address);
        sqlite3_bind_text(st, 8, id, -1, SQLITE_STATIC);
        return update_one(o, st, "update order quote");
}

int orders_set_payment_in_txn(Orders *o, const char *id_text, const char *payment_status, const char *pix_code,
                              uint64_t now_usec) {
        char id[ORDER_ID_LEN + 1];
        sqlite3_stmt *st = NULL;
        int r;

        if (order_id_parse(id_text, id) < 0)
                return -ENOENT;
        if (!streq_ptr(payment_status, "authorised") && !streq_ptr(payment_status, "pending") &&
            !streq_ptr(payment_status, "paid") && !streq_ptr(payment_status, "voided"))
                return -EINVAL;
        r = store_prepare(o->store,
                          "UPDATE orders SET payment_status = ?, pix_code = coalesce(?, pix_code), updated_at = ? "
                          "WHERE id = ?",
                          &st);
        if (r < 0)
                return r;
        sqlite3_bind_text(st, 1, payment_status, -1, SQLITE_STATIC);
        bind_opt(st, 2, pix_code);
        sqlite3_bind_int64(st, 3, (int64_t) now_usec);
        sqlite3_bind_text(st, 4, id, -1, SQLITE_STATIC);
        return update_one(o, st, "update order payment");
}

/* ---- reading ----------------------------------------------------------- */

#define ORDER_COLUMNS                                                                                                  \
        "id, customer, channel, lang, status, address, zone, zone_name, delivery_fee_cents, subtotal_cents, "          \
        "total_cents, payment, change_for_cents, payment_status, pix_code, eta, tracking_token, cancel_reason, "       \
        "created_at, updated_at"

static json_t *time_or_null(sqlite3_stmt *st, int i) {
        char buf[32];

        if (sqlite3_column_type(st, i) == SQLITE_NULL)
                return json_null();
        orders_format_time((uint64_t) sqlite3_column_int64(st, i), buf);
        return json_string(buf);
}

static json_t *int_or_null(sqlite3_stmt *st, int i) {
        if (sqlite3_column_type(st, i) == SQLITE_NULL)
                return json_null();
        return json_integer(sqlite3_column_int64(st, i));
}

static json_t *str_or_null(sqlite3_stmt *st, int i) {
        const char *s = col(st, i);
        return s ? json_string(s) : json_null();
}

/* The items and history of order id into o; -ENOMEM, -errno. */
static int add_children(Orders *o, const char *id, json_t *order) {
        sqlite3_stmt *st = NULL;
        json_t *items, *history;
        int rc, r;

        items = json_array();
        if (!items || json_object_set_new(order, "items", items) < 0)
                return -ENOMEM;
        r = store_prepare(o->store,
                          "SELECT sku, qty, unit_price_cents, name FROM order_items WHERE order_id = ? ORDER BY line",
                          &st);
        if (r < 0)
                return r;
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                json_t *it = json_pack("{s:s,s:I,s:I,s:s}", "sku", col(st, 0), "qty",
                                       (json_int_t) sqlite3_column_int64(st, 1), "unit_price_cents",
                                       (json_int_t) sqlite3_column_int64(st, 2), "name", col(st, 3));
                if (!it || json_array_append_new(items, it) < 0) {
                        store_finish(o->store, st);
                        return -ENOMEM;
                }
        }
        store_finish(o->store, st);
        r = store_check(o->store, rc == SQLITE_DONE ? SQLITE_OK : rc, "read order items");
        if (r < 0)
                return r;

        history = json_array();
        if (!history || json_object_set_new(order, "history", history) < 0)
                return -ENOMEM;
        r = store_prepare(o->store, "SELECT status, at, reason FROM order_history WHERE order_id = ? ORDER BY id", &st);
        if (r < 0)
                return r;
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                json_t *h = json_pack("{s:s,s:o,s:o}", "status", col(st, 0), "at", time_or_null(st, 1), "reason",
                                      str_or_null(st, 2));
                if (!h || json_array_append_new(history, h) < 0) {
                        store_finish(o->store, st);
                        return -ENOMEM;
                }
        }
        store_finish(o->store, st);
        return store_check(o->store, rc == SQLITE_DONE ? SQLITE_OK : rc, "read order history");
}

/* The order JSON of the current row of st (ORDER_COLUMNS).  -ENOMEM, -errno. */
static int row_json(Orders *o, sqlite3_stmt *st, const char *public_url, json_t **ret) {
        _cleanup_free_ char *url = NULL;
        json_t *j;
        int r;

        if (!isempty(public_url)) {
                size_t l = strlen(public_url);
                /* "https://x/" and "https://x" give the same link. */
                url = mem_printf("%.*s/t/%s", (int) (public_url[l - 1] == '/' ? l - 1 : l), public_url, col(st, 16));
                if (!url)
                        return -ENOMEM;
        }
        j = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:o,s:o,s:I,s:I,s:I,s:s,s:o,s:o,s:o,s:o,s:s?,s:o,s:o,s:o}", "id",
                      col(st, 0), "customer", col(st, 1), "channel", col(st, 2), "lang", col(st, 3), "status",
                      col(st, 4), "address", col(st, 5), "zone", str_or_null(st, 6), "zone_name", str_or_null(st, 7),
                      "delivery_fee_cents", (json_int_t) sqlite3_column_int64(st, 8), "subtotal_cents",
                      (json_int_t) sqlite3_column_int64(st, 9), "total_cents",
                      (json_int_t) sqlite3_column_int64(st, 10), "payment", col(st, 11), "change_for_cents",
                      int_or_null(st, 12), "payment_status", str_or_null(st, 13), "pix_code", str_or_null(st, 14),
                      "eta", time_or_null(st, 15), "tracking_url", url, "cancel_reason", str_or_null(st, 17),
                      "created_at", time_or_null(st, 18), "updated_at", time_or_null(st, 19));
        if (!j)
                return -ENOMEM;
        if (!url && json_object_set_new(j, "tracking_url", json_null()) < 0) {
                json_decref(j);
                return -ENOMEM;
        }
        r = add_children(o, col(st, 0), j);
        if (r < 0) {
                json_decref(j);
                return r;
        }
        *ret = j;
        return 0;
}

/* One order by a query with one text parameter (and a second when b is set). */
static int get_one(Orders *o, const char *sql, const char *a, const char *b, const char *public_url, json_t **ret) {
        sqlite3_stmt *st = NULL;
        int rc, r;

        r = store_prepare(o->store, sql, &st);
        if (r < 0)
                return r;
        sqlite3_bind_text(st, 1, a, -1, SQLITE_STATIC);
        if (b)
                sqlite3_bind_text(st, 2, b, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
                r = row_json(o, st, public_url, ret);
        else if (rc == SQLITE_DONE)
                r = -ENOENT;
        else
                r = store_check(o->store, rc, "read order") ?: -EIO;
        store_finish(o->store, st);
        return r;
}

int orders_get_json(Orders *o, const char *id_text, const char *public_url, json_t **ret) {
        char id[ORDER_ID_LEN + 1];

        if (order_id_parse(id_text, id) < 0)
                return -EINVAL;
        return get_one(o, "SELECT " ORDER_COLUMNS " FROM orders WHERE id = ?", id, NULL, public_url, ret);
}

int orders_get_for_customer(Orders *o, const char *id_text, const char *customer, const char *public_url,
                            json_t **ret) {
        char id[ORDER_ID_LEN + 1];

        if (order_id_parse(id_text, id) < 0)
                return -EINVAL;
        if (isempty(customer))
                return -ENOENT;
        return get_one(o, "SELECT " ORDER_COLUMNS " FROM orders WHERE id = ? AND customer = ?", id, customer,
                       public_url, ret);
}

int orders_get_by_token_json(Orders *o, const char *token, const char *public_url, json_t **ret) {
        if (!token)
                return -ENOENT;
        /* An exact-key look-up in the unique index, whatever the token looks
         * like: a wrong token costs what a right one costs. */
        return get_one(o, "SELECT " ORDER_COLUMNS " FROM orders WHERE tracking_token = ?", token, NULL, public_url,
                       ret);
}

json_t *orders_list_json(Orders *o, const char *public_url, unsigned limit) {
        sqlite3_stmt *st = NULL;
        json_t *a = json_array();
        int rc;

        if (!a ||
            store_prepare(o->store,
                          "SELECT " ORDER_COLUMNS " FROM (SELECT rowid AS r, * FROM orders ORDER BY created_at DESC, "
                          "rowid DESC LIMIT ?) ORDER BY created_at, r",
                          &st) < 0) {
                json_decref(a);
                return NULL;
        }
        sqlite3_bind_int64(st, 1, limit);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                json_t *j = NULL;
                if (row_json(o, st, public_url, &j) < 0 || json_array_append_new(a, j) < 0) {
                        rc = SQLITE_NOMEM;
                        break;
                }
        }
        store_finish(o->store, st);
        if (rc != SQLITE_DONE) {
                json_decref(a);
                return NULL;
        }
        return a;
}

int orders_latest_active(Orders *o, const char *customer, char ret_id[ORDER_ID_LEN + 1]) {
        sqlite3_stmt *st = NULL;
        int rc, r;

        r = store_prepare(o->store,
                          "SELECT id FROM orders WHERE customer = ? AND status NOT IN ('DELIVERED', 'CANCELLED') "
                          "ORDER BY created_at DESC, rowid DESC LIMIT 1",
                          &st);
        if (r < 0)
                return r;
        sqlite3_bind_text(st, 1, strempty(customer), -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
                memcpy(ret_id, col(st, 0), ORDER_ID_LEN + 1);
                r = 0;
        } else if (rc == SQLITE_DONE)
                r = -ENOENT;
        else
                r = store_check(o->store, rc, "read latest order") ?: -EIO;
        store_finish(o->store, st);
        return r;
}
