/* SPDX-License-Identifier: MIT */
/*
 * store-migrations.c — the database schema, as numbered migrations.
 *
 * A migration is never edited once released: a change is a new row with
 * the next number.  Each runs in its own transaction together with the
 * PRAGMA user_version bump, so a crash leaves the schema at a whole number.
 *
 * Security: none (no input).
 */
#include "store.h"

static const StoreMigration migrations[] = {
        { 1, "meta",
          "CREATE TABLE meta (\n"
          "        key   TEXT PRIMARY KEY,\n"
          "        value TEXT NOT NULL\n"
          ") STRICT;\n"
          "INSERT INTO meta (key, value) VALUES\n"
          "        ('created_at', strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),\n"
          "        ('instance_id', lower(hex(randomblob(8))));\n" },
        { 2, "config_history",
          /* Every configuration the daemon ran with, when it was taken up
           * and whether a reload was refused: what an operator asks first
           * when behaviour changed overnight. */
          "CREATE TABLE config_history (\n"
          "        id         INTEGER PRIMARY KEY,\n"
          "        generation INTEGER NOT NULL,\n"
          "        loaded_at  TEXT NOT NULL,\n"
          "        path       TEXT NOT NULL,\n"
          "        result     TEXT NOT NULL CHECK (result IN ('started', 'reloaded', 'refused')),\n"
          "        detail     TEXT\n"
          ") STRICT;\n" },
};

const StoreMigration *store_migrations(size_t *ret_n) {
        *ret_n = sizeof migrations / sizeof migrations[0];
        return migrations;
}
