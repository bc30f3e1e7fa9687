/* SPDX-License-Identifier: MIT */
/*
 * test-engine-local.c — the local engine's persistence on a real store
 * with the real order.asl.json, tasks and templates, and a fake clock:
 * every step is followed by freeing the engine and making a new one on
 * the same store (a restart), so every wait, deadline and token must come
 * back from the executions table.  Also: a transition rolled back leaves
 * nothing and runs again whole; starting is idempotent; a row that does
 * not fit the definition is marked FAILED and the rest go on.
 */
#include "test-helpers.h"

#include <systemd/sd-event.h>

#include "engine.h"
#include "orders.h"
#include "outbox.h"
#include "snapshot.h"
#include "stock.h"
#include "store.h"

#define SEC USEC_PER_SEC
#define MIN_ (60 * SEC)
#define T0 (1764864000ULL * SEC) /* 2025-12-04T16:00:00Z */

static Store *store;
static Orders *orders;
static Outbox *outbox;
static Snapshot *snap;
static sd_event *event;
static Engine *engine;
static uint64_t fake_now;

static uint64_t fake_clock(void *userdata _unused_) {
        return fake_now;
}

static Snapshot *get_snapshot(void *userdata _unused_) {
        return snap;
}

static void engine_restart(void) {
        char *err = NULL;
        const EngineContext ctx = {
                .store = store,
                .orders = orders,
                .outbox = outbox,
                .snapshot = get_snapshot,
                .clock = fake_clock,
        };

        engine = engine_free(engine);
        assert_int_equal(engine_new(&ctx, &engine, &err), 0);
        assert_null(err);
        assert_int_equal(engine_start(engine), 0);
}

/* The tests jump the clock by many minutes without a loop to beat for the
 * daemon: heartbeats are off but in the heartbeat tests. */
static const char *heartbeat = "engine.heartbeat=0";

static int setup(void **state _unused_) {
        char *const overrides[] = { (char *) heartbeat,
                                    (char *) "engine.definition=" TEST_SRCDIR "/statemachine/order.asl.json",
                                    (char *) "pix.key=pix@bellanapoli.example",
                                    (char *) "pix.merchant_city=Sao Paulo",
                                    (char *) "engine.payment_timeout=10min",
                                    (char *) "http.public_url=https://pizza.example",
                                    NULL };
        const OutboxOptions oo = { .clock = fake_clock };
        char *err = NULL;
        Diags d = {};

        fake_now = T0;
        test_dir = make_tmpdir();
        assert_int_equal(store_open(test_dir, &store, &err), 0);
        assert_int_equal(orders_new(store, &orders), 0);
        assert_int_equal(snapshot_load(TEST_SRCDIR "/etc/deliveryd.conf", overrides, &snap, &d), 0);
        diags_clear(&d);
        assert_int_equal(stock_sync(store, snap->catalog), (int) catalog_n_items(snap->catalog));
        assert_int_equal(sd_event_new(&event), 0);
        assert_int_equal(outbox_new(event, store, &oo, &outbox), 0);
        engine_restart();
        return 0;
}

static int teardown(void **state _unused_) {
        engine = engine_free(engine);
        outbox_free(outbox);
        sd_event_unref(event);
        snapshot_unref(snap);
        orders_free(orders);
        store_close(store);
        rm_rf(test_dir);
        free(test_dir);
        return 0;
}

static int64_t stock_of(const char *sku) {
        int64_t n = -1;
        assert_int_equal(stock_available(store, sku, &n), 0);
        return n;
}

/* A new order of qty sku, paid by payment, and its workflow started, in
 * one transaction as the conversation does. */
static void new_order(const char *sku, int64_t qty, OrderPayment payment, char id[7]) {
        const OrderItemDraft item = { .sku = sku, .name = sku, .qty = qty, .unit_price_cents = 1000 };
        const OrderDraft d = {
                .customer = "+5511987654321",
                .channel = "sms",
                .lang = "en",
                .address = "Rua Augusta 1500",
                .zone = "centro-sul",
                .delivery_fee_cents = 500,
                .payment = payment,
                .eta_usec = fake_now + 25 * MIN_,
                .items = &item,
                .n_items = 1,
        };
        assert_int_equal(store_begin(store), 0);
        assert_int_equal(orders_create_in_txn(orders, &d, fake_now, id, NULL), 0);
        assert_int_equal(engine_start_in_txn(engine, id, NULL), 0);
        /* Again in the same transaction: the same execution. */
        assert_int_equal(engine_start_in_txn(engine, id, NULL), 0);
        assert_int_equal(store_commit(store), 0);
}

static json_t *order(const char *id) {
        json_t *o = NULL;
        assert_int_equal(orders_get_json(orders, id, NULL, &o), 0);
        return o;
}

static void assert_status(const char *id, const char *status) {
        json_t *o = order(id);
        assert_string_equal(json_string_value(json_object_get(o, "status")), status);
        json_decref(o);
}

/* The events stored for execution id in execution_events. */
static int stored_events(const char *id) {
        sqlite3_stmt *st = NULL;
        int n = -1;

        assert_int_equal(sqlite3_prepare_v2(store_db(store),
                                            "SELECT coalesce(sum(json_array_length(events)), 0) FROM execution_events "
                                            "WHERE execution = ?",
                                            -1, &st, NULL),
                         SQLITE_OK);
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_ROW)
                n = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
        return n;
}

/* The text in the first column of the first row of sql; caller frees. */
static char *query_text(const char *sql) {
        sqlite3_stmt *st = NULL;
        char *v = NULL;

        assert_int_equal(sqlite3_prepare_v2(store_db(store), sql, -1, &st, NULL), SQLITE_OK);
        if (sqlite3_step(st) == SQLITE_ROW)
                v = strdup((const char *) sqlite3_column_text(st, 0));
        sqlite3_finalize(st);
        assert_non_null(v);
        return v;
}

static const char *execution_status(const char *id) {
        static char buf[16];
        json_t *x = NULL;

        assert_int_equal(engine_execution_json(engine, id, &x), 0);
        snprintf(buf, sizeof buf, "%s", json_string_value(json_object_get(x, "status")));
        json_decref(x);
        return buf;
}

/* How many messages for order id contain needle. */
static unsigned messages(const char *id, const char *needle) {
        json_t *l = outbox_list_json(outbox, 1000), *m;
        unsigned n = 0;
        size_t i;

        assert_non_null(l);
        json_array_foreach (l, i, m)
                if (streq_ptr(json_string_value(json_object_get(m, "order_id")), id) &&
                    strstr(json_string_value(json_object_get(m, "body")), needle))
                        n++;
        json_decref(l);
        return n;
}

/* Send an event in a transaction; returns its result (committed on 0). */
static int event_txn(const char *id, const char *ev, const char *data_text, const char **why) {
        json_t *data = data_text ? json_loads(data_text, 0, NULL) : NULL;
        int r;

        assert_int_equal(store_begin(store), 0);
        r = engine_event_in_txn(engine, id, ev, data, why);
        if (r == 0)
                assert_int_equal(store_commit(store), 0);
        else
                store_rollback(store);
        json_decref(data);
        return r;
}

static void status_event(const char *id, const char *status) {
        char data[64];
        snprintf(data, sizeof data, "{\"status\": \"%s\"}", status);
        assert_int_equal(event_txn(id, "status", data, NULL), 0);
}

static void test_card_order_to_the_door_across_restarts(void **state _unused_) {
        char id[7];
        int64_t before = stock_of("pz-calabresa");

        new_order("pz-calabresa", 2, ORDER_PAYMENT_CARD, id);
        assert_status(id, "CREATED"); /* nothing runs before the kick */
        engine_restart();
        assert_int_equal(engine_run_due(engine), 1);
        assert_status(id, "CONFIRMED");
        assert_int_equal(stock_of("pz-calabresa"), before - 2);
        assert_int_equal(messages(id, "confirmed"), 1);
        assert_int_equal(messages(id, "https://pizza.example/t/"), 1);
        /* Waiting for an event: nothing is due. */
        assert_int_equal(engine_run_due(engine), 0);

        const char *const steps[] = { "PREPARING", "READY", "IN_DELIVERY", "DELIVERED" };
        const char *const words[] = { "being prepared", "is ready", "is on its way!", "delivered" };
        for (size_t i = 0; i < ELEMENTSOF(steps); i++) {
                fake_now += MIN_;
                engine_restart();
                status_event(id, steps[i]);
                assert_status(id, steps[i]);
                assert_int_equal(messages(id, words[i]), 1);
        }
        assert_string_equal(execution_status(id), "SUCCEEDED");
        assert_int_equal(stock_of("pz-calabresa"), before - 2);
        const char *why = NULL;
        assert_int_equal(event_txn(id, "status", "{\"status\": \"DELIVERED\"}", &why), -EPERM);
        assert_non_null(why);
}

static void test_pix_timeout_after_restart(void **state _unused_) {
        char id[7];
        int64_t before = stock_of("pz-portuguesa");

        new_order("pz-portuguesa", 3, ORDER_PAYMENT_PIX, id);
        assert_int_equal(engine_run_due(engine), 1);
        assert_status(id, "CREATED");
        assert_int_equal(messages(id, "Pix"), 1);
        assert_int_equal(stock_of("pz-portuguesa"), before - 3);

        /* Just before the deadline nothing happens; at it, the timeout. */
        fake_now += 10 * MIN_ - SEC;
        engine_restart();
        assert_int_equal(engine_run_due(engine), 0);
        assert_status(id, "CREATED");
        fake_now += SEC;
        engine_restart();
        assert_int_equal(engine_run_due(engine), 1);
        json_t *o = order(id);
        assert_string_equal(json_string_value(json_object_get(o, "status")), "CANCELLED");
        assert_string_equal(json_string_value(json_object_get(o, "cancel_reason")), "timeout");
        assert_string_equal(json_string_value(json_object_get(o, "payment_status")), "voided");
        json_decref(o);
        assert_int_equal(stock_of("pz-portuguesa"), before);
        assert_int_equal(messages(id, "cancelled"), 1);
        assert_string_equal(execution_status(id), "SUCCEEDED");
}

static void test_pix_paid(void **state _unused_) {
        const char *why = NULL;
        char id[7];

        new_order("pz-margherita", 1, ORDER_PAYMENT_PIX, id);
        assert_int_equal(engine_run_due(engine), 1);
        /* Not paid yet: no status from the store. */
        assert_int_equal(event_txn(id, "status", "{\"status\": \"PREPARING\"}", &why), -EPERM);
        engine_restart();
        assert_int_equal(event_txn(id, "paid", NULL, NULL), 0);
        json_t *o = order(id);
        assert_string_equal(json_string_value(json_object_get(o, "status")), "CONFIRMED");
        assert_string_equal(json_string_value(json_object_get(o, "payment_status")), "paid");
        json_decref(o);
        assert_int_equal(event_txn(id, "paid", NULL, &why), -EPERM);
        assert_string_equal(why, "the order is not waiting for a payment");
}

static void test_unavailable(void **state _unused_) {
        char id[7];

        /* The stock went between the customer's SIM and the reservation. */
        assert_int_equal(store_exec(store, "UPDATE stock SET available = 1 WHERE sku = 'sobremesa-brownie'"), 0);
        new_order("sobremesa-brownie", 2, ORDER_PAYMENT_CASH, id);
        assert_int_equal(engine_run_due(engine), 1);
        json_t *o = order(id);
        assert_string_equal(json_string_value(json_object_get(o, "status")), "CANCELLED");
        assert_string_equal(json_string_value(json_object_get(o, "cancel_reason")), "unavailable");
        json_decref(o);
        assert_int_equal(stock_of("sobremesa-brownie"), 1);
        assert_int_equal(messages(id, "no longer available"), 1);
}

static void test_rolled_back_event_runs_again_whole(void **state _unused_) {
        char id[7];

        new_order("lanche-x-burguer", 1, ORDER_PAYMENT_CARD, id);
        assert_int_equal(engine_run_due(engine), 1);
        /* A crash before the COMMIT: the status change, its notice and the
         * new state all go. */
        assert_int_equal(store_begin(store), 0);
        json_t *data = json_pack("{s:s}", "status", "PREPARING");
        assert_int_equal(engine_event_in_txn(engine, id, "status", data, NULL), 0);
        store_rollback(store);
        assert_status(id, "CONFIRMED");
        assert_int_equal(messages(id, "being prepared"), 0);
        engine_restart();
        assert_int_equal(store_begin(store), 0);
        assert_int_equal(engine_event_in_txn(engine, id, "status", data, NULL), 0);
        assert_int_equal(store_commit(store), 0);
        json_decref(data);
        assert_status(id, "PREPARING");
        assert_int_equal(messages(id, "being prepared"), 1);
}

static void test_cancel_and_address(void **state _unused_) {
        const char *why = NULL;
        char a[7], b[7];
        int64_t before = stock_of("lanche-x-salada");

        new_order("lanche-x-salada", 1, ORDER_PAYMENT_CARD, a);
        new_order("lanche-x-salada", 1, ORDER_PAYMENT_CARD, b);
        assert_int_equal(engine_run_due(engine), 2);

        /* An address in another zone: re-quoted, the new fee told. */
        assert_int_equal(event_txn(a, "change_address", "{\"address\": \"Rua Teodoro Sampaio 500\"}", NULL), 0);
        json_t *o = order(a);
        assert_string_equal(json_string_value(json_object_get(o, "zone")), "oeste");
        assert_int_equal(json_integer_value(json_object_get(o, "delivery_fee_cents")), 900);
        json_decref(o);
        assert_int_equal(messages(a, "Delivery fee: R$9.00"), 1);
        assert_int_equal(event_txn(a, "change_address", "{}", &why), -EINVAL);

        /* Cancelled while confirmed: stock back, payment voided. */
        assert_int_equal(event_txn(a, "cancel", NULL, NULL), 0);
        o = order(a);
        assert_string_equal(json_string_value(json_object_get(o, "cancel_reason")), "customer");
        assert_string_equal(json_string_value(json_object_get(o, "payment_status")), "voided");
        json_decref(o);
        assert_int_equal(stock_of("lanche-x-salada"), before - 1);

        /* Too late for b once it is on its way. */
        status_event(b, "PREPARING");
        assert_int_equal(event_txn(b, "cancel", NULL, &why), -EPERM);
        assert_string_equal(why, "the order is already being prepared");
        status_event(b, "READY");
        status_event(b, "IN_DELIVERY");
        assert_int_equal(event_txn(b, "change_address", "{\"address\": \"Rua Teodoro Sampaio 500\"}", &why), -EPERM);
        assert_string_equal(why, "the order is already on its way");
        assert_int_equal(event_txn(b, "status", "{\"status\": \"CANCELLED\"}", &why), -EINVAL);
        assert_int_equal(event_txn(b, "refund", NULL, &why), -EINVAL);
        assert_int_equal(event_txn("7KQ2XM", "cancel", NULL, &why), -ENOENT);
}

static void test_late_order(void **state _unused_) {
        char id[7];

        new_order("pz-margherita", 1, ORDER_PAYMENT_CASH, id);
        assert_int_equal(engine_run_due(engine), 1);
        json_t *o = order(id);
        char *eta = strdup(json_string_value(json_object_get(o, "eta")));
        json_decref(o);
        /* The ETA (25 min) and the grace (5 min) pass without a delivery. */
        fake_now += 30 * MIN_ + SEC;
        engine_restart();
        assert_int_equal(engine_run_due(engine), 1);
        assert_int_equal(messages(id, "Sorry for the wait"), 1);
        o = order(id);
        assert_true(strcmp(json_string_value(json_object_get(o, "eta")), eta) > 0);
        json_decref(o);
        free(eta);
        /* Still waiting for the store, with the context kept. */
        status_event(id, "PREPARING");
        assert_status(id, "PREPARING");
}

/* The history of order id, checked: ids 1, 2, … with every previous
 * event earlier; returns how many events there are. */
static size_t history_checked(const char *id) {
        json_t *x = NULL, *h, *ev;
        size_t i, n;

        assert_int_equal(engine_execution_json(engine, id, &x), 0);
        h = json_object_get(x, "history");
        json_array_foreach (h, i, ev) {
                assert_int_equal(json_integer_value(json_object_get(ev, "id")), (json_int_t) i + 1);
                assert_true(json_integer_value(json_object_get(ev, "previousEventId")) <= (json_int_t) i);
        }
        assert_string_equal(json_string_value(json_object_get(json_array_get(h, 0), "type")), "ExecutionStarted");
        n = json_array_size(h);
        json_decref(x);
        return n;
}

static void test_history_kept_apart(void **state _unused_) {
        char a[7], b[7], sql[256];
        size_t n;

        new_order("pz-margherita", 1, ORDER_PAYMENT_CARD, a);
        new_order("pz-margherita", 1, ORDER_PAYMENT_CARD, b);
        assert_int_equal(engine_run_due(engine), 2);
        /* The row holds the state; the events are rows of their own. */
        n = history_checked(a);
        assert_true(n > 10);
        assert_int_equal(stored_events(a), (int) n);

        /* b as a version without the events table stored it: the whole
         * history inside the state.  It reads back whole and goes on
         * numbering from there. */
        json_t *x = NULL, *saved = NULL;
        assert_int_equal(engine_execution_json(engine, b, &x), 0);
        snprintf(sql, sizeof sql, "SELECT state FROM executions WHERE name = '%s'", b);
        _cleanup_free_ char *text = query_text(sql);
        saved = json_loads(text, 0, NULL);
        assert_non_null(saved);
        assert_int_equal(json_object_set(saved, "events", json_object_get(x, "history")), 0);
        assert_int_equal(json_object_del(saved, "events_offset"), 0);
        _cleanup_free_ char *old = mem_json_dumps(saved, JSON_COMPACT);
        json_decref(saved);
        json_decref(x);
        sqlite3_stmt *st = NULL;
        assert_int_equal(
                sqlite3_prepare_v2(store_db(store), "UPDATE executions SET state = ? WHERE name = ?", -1, &st, NULL),
                SQLITE_OK);
        sqlite3_bind_text(st, 1, old, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, b, -1, SQLITE_STATIC);
        assert_int_equal(sqlite3_step(st), SQLITE_DONE);
        sqlite3_finalize(st);
        snprintf(sql, sizeof sql, "DELETE FROM execution_events WHERE execution = '%s'", b);
        assert_int_equal(store_exec(store, sql), 0);
        assert_int_equal(history_checked(b), n);

        engine_restart();
        status_event(b, "PREPARING");
        assert_status(b, "PREPARING");
        size_t after = history_checked(b);
        assert_true(after > n);
        /* The first transition moved the old events to the table. */
        assert_int_equal(stored_events(b), (int) after);
}

/* An event that comes before the workflow's first step ran (the customer
 * cancels right after saying yes, or a restart came between): the due step
 * runs first, then the event finds its wait. */
static void test_event_before_first_step(void **state _unused_) {
        char id[7];
        int64_t before = stock_of("pz-calabresa");

        new_order("pz-calabresa", 1, ORDER_PAYMENT_CARD, id);
        assert_status(id, "CREATED");
        assert_int_equal(event_txn(id, "cancel", NULL, NULL), 0);
        assert_status(id, "CANCELLED");
        assert_int_equal(stock_of("pz-calabresa"), before);
        assert_string_equal(execution_status(id), "SUCCEEDED");
        /* Not due (waiting for an event): still refused as before. */
        char other[7];
        new_order("pz-calabresa", 1, ORDER_PAYMENT_CARD, other);
        assert_int_equal(engine_run_due(engine), 1);
        assert_int_equal(event_txn(other, "paid", NULL, NULL), -EPERM);
}

static int setup_heartbeat(void **state) {
        heartbeat = "engine.heartbeat=5min";
        int r = setup(state);
        heartbeat = "engine.heartbeat=0";
        return r;
}

/* A daemon that beats every half heartbeat keeps its waits however long
 * they last; one that was silent longer (down) finds them lapsed: the
 * status wait tells the customer of a delay and goes on with its context,
 * the payment wait starts again. */
static void test_heartbeat(void **state _unused_) {
        char card[7], pix[7];

        new_order("pz-margherita", 1, ORDER_PAYMENT_CARD, card);
        new_order("pz-calabresa", 1, ORDER_PAYMENT_PIX, pix);
        assert_int_equal(engine_run_due(engine), 2);
        assert_status(card, "CONFIRMED");
        /* A beat at 2.5 minutes moves both heartbeats (5 min) to 7.5: at
         * 5 min + 1 s nothing has lapsed, nor the ETA (25 min) nor the
         * payment (10 min). */
        fake_now += 150 * SEC;
        assert_int_equal(engine_heartbeat(engine), 2);
        assert_int_equal(engine_run_due(engine), 0);
        fake_now += 150 * SEC + SEC;
        assert_int_equal(engine_run_due(engine), 0);
        assert_int_equal(messages(card, "Sorry for the wait"), 0);
        assert_status(pix, "CREATED");

        /* Then no beat until 8 minutes (the daemon was down): both
         * heartbeats ran out at 7.5, before the payment's timeout. */
        fake_now += 3 * MIN_ - SEC;
        engine_restart();
        assert_int_equal(engine_run_due(engine), 2);
        assert_int_equal(messages(card, "Sorry for the wait"), 1);
        status_event(card, "PREPARING"); /* the context kept */
        assert_status(card, "PREPARING");
        /* the payment wait started again: not cancelled, still payable */
        assert_status(pix, "CREATED");
        assert_int_equal(event_txn(pix, "paid", NULL, NULL), 0);
        assert_status(pix, "CONFIRMED");
        /* A beat for a wait that lapsed is no error: the next wait's token. */
        assert_true(engine_heartbeat(engine) >= 1);
}

static void test_corrupt_row(void **state _unused_) {
        char a[7], b[7];

        new_order("pz-margherita", 1, ORDER_PAYMENT_CASH, a);
        new_order("pz-margherita", 1, ORDER_PAYMENT_CASH, b);
        char sql[128];
        snprintf(sql, sizeof sql, "UPDATE executions SET state = '{\"version\": 99}' WHERE name = '%s'", a);
        assert_int_equal(store_exec(store, sql), 0);
        assert_int_equal(engine_run_due(engine), 2);
        assert_string_equal(execution_status(b), "RUNNING");
        assert_status(b, "CONFIRMED");
        assert_status(a, "CREATED");
        /* Marked, not retried for ever. */
        assert_int_equal(engine_run_due(engine), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_card_order_to_the_door_across_restarts, setup, teardown),
                cmocka_unit_test_setup_teardown(test_pix_timeout_after_restart, setup, teardown),
                cmocka_unit_test_setup_teardown(test_pix_paid, setup, teardown),
                cmocka_unit_test_setup_teardown(test_unavailable, setup, teardown),
                cmocka_unit_test_setup_teardown(test_rolled_back_event_runs_again_whole, setup, teardown),
                cmocka_unit_test_setup_teardown(test_cancel_and_address, setup, teardown),
                cmocka_unit_test_setup_teardown(test_late_order, setup, teardown),
                cmocka_unit_test_setup_teardown(test_corrupt_row, setup, teardown),
                cmocka_unit_test_setup_teardown(test_history_kept_apart, setup, teardown),
                cmocka_unit_test_setup_teardown(test_heartbeat, setup_heartbeat, teardown),
                cmocka_unit_test_setup_teardown(test_event_before_first_step, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
