/* SPDX-License-Identifier: MIT */
/*
 * stock.c — stock counts and reservations in SQLite.
 *
 * Reserving checks every line first and writes only when all of them
 * fit, inside the caller's transaction, so that no other writer can come
 * between the check and the write (the store has one writer, and a
 * transaction is BEGIN IMMEDIATE).
 *
 * Security: see stock.h.
 */
#include "stock.h"

#include <errno.h>
#include <string.h>

#include "alloc.h"
#include "strutil.h"

int stock_sync(Store *store, const Catalog *catalog) {
        int added = 0, r;

        r = store_begin(store);
        if (r < 0)
                return r;
        for (size_t i = 0; i < catalog_n_items(catalog); i++) {
                const CatalogItem *it = catalog_item(catalog, i);
                sqlite3_stmt *st = NULL;

                r = store_prepare(store, "INSERT OR IGNORE INTO stock (sku, available) VALUES (?, ?)", &st);
                if (r < 0)
                        goto fail;
                sqlite3_bind_text(st, 1, it->sku, -1, SQLITE_STATIC);
                sqlite3_bind_int64(st, 2, MAX(it->stock, 0));
                r = store_step_done(store, st, "seed stock");
                if (r < 0)
                        goto fail;
                added += sqlite3_changes(store_db(store));
        }
        r = store_commit(store);
        return r < 0 ? r : added;
fail:
        store_rollback(store);
        return r;
}

int stock_available(Store *store, const char *sku, int64_t *ret) {
        return store_get_int64(store, "SELECT available FROM stock WHERE sku = ?", strempty(sku), ret);
}

int stock_reserved(Store *store, const char *order_id) {
        sqlite3_stmt *st = NULL;
        int rc, r;

        r = store_prepare(store, "SELECT 1 FROM stock_reservations WHERE order_id = ? LIMIT 1", &st);
        if (r < 0)
                return r;
        sqlite3_bind_text(st, 1, strempty(order_id), -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        store_finish(store, st);
        if (rc == SQLITE_ROW)
                return 1;
        if (rc == SQLITE_DONE)
                return 0;
        return store_check(store, rc, "read stock reservations") ?: -EIO;
}

/* The total quantity of wants[i].sku over all of wants. */
static int64_t total_of(const StockWant *wants, size_t n, size_t i) {
        int64_t q = 0;

        for (size_t j = 0; j < n; j++)
                if (streq(wants[j].sku, wants[i].sku))
                        q += wants[j].qty;
        return q;
}

/* Whether wants[i] is the first line with its SKU. */
static bool first_of(const StockWant *wants, size_t i) {
        for (size_t j = 0; j < i; j++)
                if (streq(wants[j].sku, wants[i].sku))
                        return false;
        return true;
}

int stock_reserve_in_txn(Store *store, const char *order_id, const StockWant *wants, size_t n_wants,
                         char ***ret_short) {
        _cleanup_strv_free_ char **short_skus = NULL;
        int r;

        if (isempty(order_id) || !wants || n_wants == 0)
                return -EINVAL;
        for (size_t i = 0; i < n_wants; i++)
                if (isempty(wants[i].sku) || wants[i].qty <= 0 || wants[i].qty > INT32_MAX)
                        return -EINVAL;
        r = stock_reserved(store, order_id);
        if (r != 0)
                return r < 0 ? r : 0;

        /* Check every line before writing any. */
        for (size_t i = 0; i < n_wants; i++) {
                int64_t have = 0;

                if (!first_of(wants, i))
                        continue;
                r = stock_available(store, wants[i].sku, &have);
                if (r < 0 && r != -ENOENT)
                        return r;
                if (r == -ENOENT || have < total_of(wants, n_wants, i)) {
                        r = strv_extend(&short_skus, wants[i].sku);
                        if (r < 0)
                                return r;
                }
        }
        if (short_skus) {
                if (ret_short)
                        *ret_short = TAKE_PTR(short_skus);
                return 1;
        }

        for (size_t i = 0; i < n_wants; i++) {
                int64_t q = total_of(wants, n_wants, i);
                sqlite3_stmt *st = NULL;

                if (!first_of(wants, i))
                        continue;
                r = store_prepare(store, "UPDATE stock SET available = available - ? WHERE sku = ?", &st);
                if (r < 0)
                        return r;
                sqlite3_bind_int64(st, 1, q);
                sqlite3_bind_text(st, 2, wants[i].sku, -1, SQLITE_STATIC);
                r = store_step_done(store, st, "reserve stock");
                if (r < 0)
                        return r;
                r = store_prepare(store, "INSERT INTO stock_reservations (order_id, sku, qty) VALUES (?, ?, ?)", &st);
                if (r < 0)
                        return r;
                sqlite3_bind_text(st, 1, order_id, -1, SQLITE_STATIC);
                sqlite3_bind_text(st, 2, wants[i].sku, -1, SQLITE_STATIC);
                sqlite3_bind_int64(st, 3, q);
                r = store_step_done(store, st, "record stock reservation");
                if (r < 0)
                        return r;
        }
        if (ret_short)
                *ret_short = NULL;
        return 0;
}

int stock_release_in_txn(Store *store, const char *order_id) {
        sqlite3_stmt *st = NULL;
        int r, n;

        if (isempty(order_id))
                return -EINVAL;
        r = store_prepare(store,
                          "UPDATE stock SET available = available + (SELECT qty FROM stock_reservations r WHERE "
                          "r.order_id = ?1 AND r.sku = stock.sku) WHERE sku IN (SELECT sku FROM stock_reservations "
                          "WHERE order_id = ?1)",
                          &st);
        if (r < 0)
                return r;
        sqlite3_bind_text(st, 1, order_id, -1, SQLITE_STATIC);
        r = store_step_done(store, st, "release stock");
        if (r < 0)
                return r;
        r = store_prepare(store, "DELETE FROM stock_reservations WHERE order_id = ?", &st);
        if (r < 0)
                return r;
        sqlite3_bind_text(st, 1, order_id, -1, SQLITE_STATIC);
        r = store_step_done(store, st, "release stock reservation");
        if (r < 0)
                return r;
        n = sqlite3_changes(store_db(store));
        return n > 0 ? 1 : 0;
}
