/* SPDX-License-Identifier: MIT */
/*
 * stock.h — how many of each product the store can still sell, and what
 * each order holds of it.  The stock table is the truth: it is seeded
 * from the catalog's stock the first time a SKU is seen (at the first
 * start, and for a SKU new in the catalog at a reload) and then only
 * changes by reservations and releases, so a reload never resets counts.
 * A reservation is one row per (order, SKU): reserving an order that
 * holds stock already, or releasing one that holds none, changes nothing.
 *
 * No daemon state and no logging; every function but stock_sync() runs
 * inside the caller's transaction.
 *
 * Security: SKUs and quantities come from orders the daemon built from
 * customer text and the catalog; they are bound as SQL parameters.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "catalog.h"
#include "store.h"

/* Add a stock row for every SKU of catalog that has none, with the
 * catalog's count; rows that exist keep their count.  Begins and commits
 * its own transaction.  Returns how many rows were added, or -errno. */
int stock_sync(Store *store, const Catalog *catalog);

/* How many of sku are available.  0 and the count; -ENOENT unknown SKU; -errno. */
int stock_available(Store *store, const char *sku, int64_t *ret);

/* One line of what an order wants. */
typedef struct StockWant {
        const char *sku;
        int64_t qty;
} StockWant;

/* Reserve all of wants for order_id, or nothing: when any SKU has too
 * little (or no stock row), nothing changes and the SKUs short are
 * returned in *ret_short (a NULL-terminated strv the caller frees; NULL
 * when none).  A SKU listed twice counts its quantities together.  When
 * order_id already holds a reservation, nothing changes and 0 is
 * returned.  Returns 0 reserved (or already), 1 short, -EINVAL, -ENOMEM,
 * -errno. */
int stock_reserve_in_txn(Store *store, const char *order_id, const StockWant *wants, size_t n_wants, char ***ret_short);

/* Give back what order_id holds.  Returns 1 when something was given
 * back, 0 when it held nothing, -errno. */
int stock_release_in_txn(Store *store, const char *order_id);

/* 1 when order_id holds a reservation, 0 when not, -errno. */
int stock_reserved(Store *store, const char *order_id);
