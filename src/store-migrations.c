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
        { 3, "inbox",
          /* Every inbound message, committed before it is acknowledged.
           * Its dedupe keys (SNS MessageId, the SMS inboundMessageId, the
           * mail Message-ID with the recipient) live in inbox_keys, one row
           * each: a message whose any key is already there is a duplicate,
           * however it came in. */
          "CREATE TABLE inbox (\n"
          "        id            INTEGER PRIMARY KEY,\n"
          "        channel       TEXT NOT NULL CHECK (channel IN ('sms', 'email')),\n"
          "        source        TEXT NOT NULL CHECK (source IN ('sns', 'lmtp', 'inject')),\n"
          "        customer      TEXT NOT NULL,\n"
          "        recipient     TEXT,\n"
          "        body          TEXT NOT NULL,\n"
          "        subject       TEXT,\n"
          "        message_id    TEXT,\n"
          "        in_reply_to   TEXT,\n"
          "        refs          TEXT,\n"
          "        authenticated INTEGER CHECK (authenticated IN (0, 1)),\n"
          "        status        TEXT NOT NULL CHECK (status IN ('incoming', 'active', 'done', 'ignored', "
          "'corrupt')),\n"
          "        reason        TEXT,\n"
          "        received_at   TEXT NOT NULL\n"
          ") STRICT;\n"
          "CREATE INDEX inbox_pending ON inbox (customer, id) WHERE status IN ('incoming', 'active');\n"
          "CREATE TABLE inbox_keys (\n"
          "        key      TEXT PRIMARY KEY,\n"
          "        inbox_id INTEGER NOT NULL REFERENCES inbox (id)\n"
          ") STRICT, WITHOUT ROWID;\n" },
        { 4, "sns_events",
          /* SNS messages that are not customer messages: subscription
           * confirmations (and whether we confirmed), unsubscribe
           * confirmations, and notifications whose payload is not ours. */
          "CREATE TABLE sns_events (\n"
          "        id          INTEGER PRIMARY KEY,\n"
          "        message_id  TEXT NOT NULL UNIQUE,\n"
          "        type        TEXT NOT NULL,\n"
          "        topic_arn   TEXT NOT NULL,\n"
          "        status      TEXT NOT NULL CHECK (status IN ('confirmed', 'confirm_failed', 'unsubscribed', "
          "'ignored')),\n"
          "        detail      TEXT,\n"
          "        received_at TEXT NOT NULL\n"
          ") STRICT;\n" },
        { 5, "outbox",
          /* Every message to a customer, committed with the state change
           * that produced it, and the customers who said STOP.  Times are
           * microseconds since the epoch (UTC). */
          "CREATE TABLE outbox (\n"
          "        id                   INTEGER PRIMARY KEY,\n"
          "        channel              TEXT NOT NULL CHECK (channel IN ('sms', 'email')),\n"
          "        recipient            TEXT NOT NULL,\n"
          "        body                 TEXT NOT NULL,\n"
          "        subject              TEXT,\n"
          "        in_reply_to          TEXT,\n"
          "        refs                 TEXT,\n"
          "        message_id           TEXT,\n"
          "        order_id             TEXT,\n"
          "        opt_out_confirmation INTEGER NOT NULL DEFAULT 0 CHECK (opt_out_confirmation IN (0, 1)),\n"
          "        status               TEXT NOT NULL CHECK (status IN ('queued', 'sending', 'sent', 'deferred', "
          "'failed')),\n"
          "        attempts             INTEGER NOT NULL DEFAULT 0,\n"
          "        next_attempt_at      INTEGER NOT NULL,\n"
          "        expires_at           INTEGER NOT NULL,\n"
          "        last_error           TEXT,\n"
          "        possible_duplicate   INTEGER NOT NULL DEFAULT 0 CHECK (possible_duplicate IN (0, 1)),\n"
          "        transport_id         TEXT,\n"
          "        created_at           INTEGER NOT NULL,\n"
          "        sent_at              INTEGER\n"
          ") STRICT;\n"
          "CREATE INDEX outbox_due ON outbox (channel, next_attempt_at, id) WHERE status IN ('queued', "
          "'deferred');\n"
          "CREATE TABLE opt_outs (\n"
          "        customer TEXT PRIMARY KEY,\n"
          "        since    INTEGER NOT NULL\n"
          ") STRICT, WITHOUT ROWID;\n" },
        { 6, "orders",
          /* Orders, their items and status history, the stock and what
           * each order holds of it.  The stock table is the truth once
           * seeded from the catalog; a reservation row per (order, sku)
           * makes reserving and releasing idempotent.  Times are
           * microseconds since the epoch (UTC). */
          "CREATE TABLE orders (\n"
          "        id                 TEXT PRIMARY KEY CHECK (length(id) = 6),\n"
          "        customer           TEXT NOT NULL,\n"
          "        channel            TEXT NOT NULL CHECK (channel IN ('sms', 'email')),\n"
          "        lang               TEXT NOT NULL CHECK (lang IN ('pt', 'en')),\n"
          "        status             TEXT NOT NULL CHECK (status IN ('CREATED', 'CONFIRMED', 'PREPARING', "
          "'READY', 'IN_DELIVERY', 'DELIVERED', 'CANCELLED')),\n"
          "        address            TEXT NOT NULL,\n"
          "        zone               TEXT,\n"
          "        zone_name          TEXT,\n"
          "        delivery_fee_cents INTEGER NOT NULL CHECK (delivery_fee_cents >= 0),\n"
          "        subtotal_cents     INTEGER NOT NULL CHECK (subtotal_cents >= 0),\n"
          "        total_cents        INTEGER NOT NULL CHECK (total_cents >= 0),\n"
          "        payment            TEXT NOT NULL CHECK (payment IN ('pix', 'card', 'cash')),\n"
          "        change_for_cents   INTEGER,\n"
          "        payment_status     TEXT CHECK (payment_status IN ('authorised', 'pending', 'paid', "
          "'voided')),\n"
          "        pix_code           TEXT,\n"
          "        eta                INTEGER,\n"
          "        tracking_token     TEXT NOT NULL UNIQUE,\n"
          "        cancel_reason      TEXT,\n"
          "        mail_message_id    TEXT,\n"
          "        mail_subject       TEXT,\n"
          "        created_at         INTEGER NOT NULL,\n"
          "        updated_at         INTEGER NOT NULL\n"
          ") STRICT;\n"
          "CREATE INDEX orders_customer ON orders (customer, created_at);\n"
          "CREATE TABLE order_items (\n"
          "        order_id         TEXT NOT NULL REFERENCES orders (id),\n"
          "        line             INTEGER NOT NULL,\n"
          "        sku              TEXT NOT NULL,\n"
          "        qty              INTEGER NOT NULL CHECK (qty > 0),\n"
          "        unit_price_cents INTEGER NOT NULL CHECK (unit_price_cents >= 0),\n"
          "        name             TEXT NOT NULL,\n"
          "        PRIMARY KEY (order_id, line)\n"
          ") STRICT, WITHOUT ROWID;\n"
          "CREATE TABLE order_history (\n"
          "        id       INTEGER PRIMARY KEY,\n"
          "        order_id TEXT NOT NULL REFERENCES orders (id),\n"
          "        at       INTEGER NOT NULL,\n"
          "        status   TEXT NOT NULL,\n"
          "        reason   TEXT\n"
          ") STRICT;\n"
          "CREATE INDEX order_history_order ON order_history (order_id, id);\n"
          "CREATE TABLE stock (\n"
          "        sku       TEXT PRIMARY KEY,\n"
          "        available INTEGER NOT NULL CHECK (available >= 0)\n"
          ") STRICT, WITHOUT ROWID;\n"
          "CREATE TABLE stock_reservations (\n"
          "        order_id TEXT NOT NULL,\n"
          "        sku      TEXT NOT NULL,\n"
          "        qty      INTEGER NOT NULL CHECK (qty > 0),\n"
          "        PRIMARY KEY (order_id, sku)\n"
          ") STRICT, WITHOUT ROWID;\n" },
        { 7, "conversations",
          /* One row per customer: the conversation's state as JSON
           * (conversation.c), its phase for listing, and the time of the
           * last message (usec since the epoch).  The index lets a
           * customer's reply to one of our e-mails find its order. */
          "CREATE TABLE conversations (\n"
          "        customer   TEXT PRIMARY KEY,\n"
          "        phase      TEXT NOT NULL,\n"
          "        state      TEXT NOT NULL,\n"
          "        updated_at INTEGER NOT NULL\n"
          ") STRICT, WITHOUT ROWID;\n"
          "CREATE INDEX conversations_phase ON conversations (phase, updated_at);\n"
          "CREATE INDEX outbox_message_id ON outbox (message_id) WHERE message_id IS NOT NULL;\n" },
        { 8, "executions",
          /* The local engine's workflow executions (engine-local.c), one
           * per order, named by the order id: the whole interpreter state
           * as JSON (asl_execution_to_json, which holds the event
           * history too), the earliest deadline it waits for (usec since
           * the epoch; NULL: none), and the task tokens its
           * .waitForTaskToken tasks handed out, so that an event for an
           * order finds the task that waits for it. */
          "CREATE TABLE executions (\n"
          "        name            TEXT PRIMARY KEY,\n"
          "        definition_hash TEXT NOT NULL,\n"
          "        status          TEXT NOT NULL CHECK (status IN ('RUNNING', 'SUCCEEDED', 'FAILED', "
          "'TIMED_OUT')),\n"
          "        state           TEXT NOT NULL,\n"
          "        next_deadline   INTEGER,\n"
          "        transitions     INTEGER NOT NULL DEFAULT 0,\n"
          "        error           TEXT,\n"
          "        cause           TEXT,\n"
          "        created_at      INTEGER NOT NULL,\n"
          "        updated_at      INTEGER NOT NULL\n"
          ") STRICT, WITHOUT ROWID;\n"
          "CREATE INDEX executions_due ON executions (next_deadline) WHERE status = 'RUNNING';\n"
          "CREATE TABLE execution_tokens (\n"
          "        token      TEXT PRIMARY KEY,\n"
          "        execution  TEXT NOT NULL REFERENCES executions (name),\n"
          "        wait       TEXT NOT NULL,\n"
          "        created_at INTEGER NOT NULL\n"
          ") STRICT, WITHOUT ROWID;\n"
          "CREATE INDEX execution_tokens_execution ON execution_tokens (execution);\n" },
        { 9, "sfn",
          /* engine.backend = stepfunctions (engine-sfn.c): one row per
           * order whose workflow runs on AWS (its execution ARN once
           * StartExecution answered, the last DescribeExecution answer);
           * the calls made inside a transaction, with their bodies as
           * sent, waiting to be sent after the commit, in id order per
           * order ('pending' → 'done' or 'failed'); and the task tokens
           * of the tasks that wait for an order's events, filled by the
           * Lambda side or an operator. */
          "CREATE TABLE sfn_executions (\n"
          "        order_id      TEXT PRIMARY KEY,\n"
          "        execution_arn TEXT,\n"
          "        status        TEXT NOT NULL DEFAULT 'PENDING',\n"
          "        described     TEXT,\n"
          "        described_at  INTEGER,\n"
          "        created_at    INTEGER NOT NULL\n"
          ") STRICT, WITHOUT ROWID;\n"
          "CREATE TABLE sfn_requests (\n"
          "        id              INTEGER PRIMARY KEY,\n"
          "        order_id        TEXT NOT NULL REFERENCES sfn_executions (order_id),\n"
          "        action          TEXT NOT NULL CHECK (action IN ('StartExecution', 'SendTaskSuccess', "
          "'SendTaskFailure', 'SendTaskHeartbeat')),\n"
          "        body            TEXT NOT NULL,\n"
          "        status          TEXT NOT NULL CHECK (status IN ('pending', 'done', 'failed')),\n"
          "        attempts        INTEGER NOT NULL DEFAULT 0,\n"
          "        next_attempt_at INTEGER NOT NULL,\n"
          "        last_error      TEXT,\n"
          "        created_at      INTEGER NOT NULL,\n"
          "        updated_at      INTEGER NOT NULL\n"
          ") STRICT;\n"
          "CREATE INDEX sfn_requests_pending ON sfn_requests (order_id, id) WHERE status = 'pending';\n"
          "CREATE TABLE sfn_task_tokens (\n"
          "        token      TEXT PRIMARY KEY,\n"
          "        order_id   TEXT NOT NULL REFERENCES sfn_executions (order_id),\n"
          "        wait       TEXT NOT NULL CHECK (wait IN ('payment', 'status')),\n"
          "        created_at INTEGER NOT NULL\n"
          ") STRICT, WITHOUT ROWID;\n"
          "CREATE INDEX sfn_task_tokens_order ON sfn_task_tokens (order_id);\n" },
        /* Every start looks for rows left 'sending' (outbox.c
         * requeue_sending()); without an index that read the whole outbox,
         * a quarter of a second on a 1 GiB store. */
        { 10, "outbox rows being sent, indexed",
          "CREATE INDEX outbox_sending ON outbox (channel) WHERE status = 'sending';\n" },
        /* The history of an execution, appended to as it runs, so that a
         * transition writes its few new events and not the whole history
         * again inside executions.state (engine-local.c exec_save()): one
         * row a save, a JSON array of the events from first_id on. */
        { 11, "execution history, appended a save at a time",
          "CREATE TABLE execution_events (\n"
          "        execution TEXT NOT NULL REFERENCES executions (name),\n"
          "        first_id  INTEGER NOT NULL,\n"
          "        events    TEXT NOT NULL,\n"
          "        PRIMARY KEY (execution, first_id)\n"
          ") STRICT, WITHOUT ROWID;\n" },
};

const StoreMigration *store_migrations(size_t *ret_n) {
        *ret_n = sizeof migrations / sizeof migrations[0];
        return migrations;
}
