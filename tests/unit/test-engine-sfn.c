/* SPDX-License-Identifier: MIT */
/*
 * test-engine-sfn.c — engine.backend = stepfunctions on a real store,
 * without the network (no loop: nothing is sent): what start and events
 * record inside the caller's transaction, and what survives a new engine
 * on the same store.  Starting is idempotent and bounded (256 KiB); an
 * event is refused while no task token is known, goes as SendTaskSuccess
 * with the token once one is registered, and uses the token once.  The
 * sending itself is test-sfn-fake.py's.
 */
#include "test-helpers.h"

#include <sqlite3.h>
#include <systemd/sd-event.h>

#include "curl-event.h"
#include "engine-sfn.h"
#include "engine.h"
#include "orders.h"
#include "outbox.h"
#include "sfn.h"
#include "snapshot.h"
#include "stock.h"
#include "store.h"

#define T0 (1764864000ULL * USEC_PER_SEC) /* 2025-12-04T16:00:00Z */
#define ARN "arn:aws:states:sa-east-1:123456789012:stateMachine:order"

static Store *store;
static Orders *orders;
static Outbox *outbox;
static Snapshot *snap;
static sd_event *event;
static CurlEvent *curl;
static Engine *engine;

static uint64_t fake_clock(void *userdata _unused_) {
        return T0;
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
                .curl = curl,
        };

        engine = engine_free(engine);
        assert_int_equal(engine_new(&ctx, &engine, &err), 0);
        assert_null(err);
        assert_string_equal(engine_backend_name(engine), "stepfunctions");
        assert_int_equal(engine_start(engine), 0);
}

static int setup(void **state _unused_) {
        char *const overrides[] = { (char *) "engine.backend=stepfunctions", (char *) "engine.state_machine_arn=" ARN,
                                    (char *) "aws.region=sa-east-1", (char *) "http.public_url=https://pizza.example",
                                    NULL };
        char *err = NULL;
        Diags d = {};

        alloc_init();
        test_dir = make_tmpdir();
        assert_int_equal(store_open(test_dir, &store, &err), 0);
        assert_int_equal(orders_new(store, &orders), 0);
        assert_int_equal(snapshot_load(TEST_SRCDIR "/etc/deliveryd.conf", overrides, &snap, &d), 0);
        diags_clear(&d);
        assert_int_equal(stock_sync(store, snap->catalog), (int) catalog_n_items(snap->catalog));
        assert_int_equal(sd_event_new(&event), 0);
        assert_int_equal(curl_event_new(event, &curl), 0);
        assert_int_equal(outbox_new(event, store, &(OutboxOptions){}, &outbox), 0);
        engine_restart();
        return 0;
}

static int teardown(void **state _unused_) {
        engine = engine_free(engine);
        outbox_free(outbox);
        curl_event_free(curl);
        sd_event_unref(event);
        snapshot_unref(snap);
        orders_free(orders);
        store_close(store);
        rm_rf(test_dir);
        free(test_dir);
        return 0;
}

static void new_order(OrderPayment payment, char id[7]) {
        const OrderItemDraft item = {
                .sku = "pz-calabresa", .name = "Pizza Calabresa", .qty = 2, .unit_price_cents = 5290
        };
        const OrderDraft d = {
                .customer = "+5511987654321",
                .channel = "sms",
                .lang = "pt",
                .address = "Rua Augusta 1500",
                .zone = "centro-sul",
                .delivery_fee_cents = 500,
                .payment = payment,
                .eta_usec = T0 + 25 * 60 * USEC_PER_SEC,
                .items = &item,
                .n_items = 1,
        };
        assert_int_equal(store_begin(store), 0);
        assert_int_equal(orders_create_in_txn(orders, &d, T0, id, NULL), 0);
        assert_int_equal(engine_start_in_txn(engine, id, NULL), 0);
        /* again in the same transaction: the same execution */
        assert_int_equal(engine_start_in_txn(engine, id, NULL), 0);
        assert_int_equal(store_commit(store), 0);
}

/* The requests of order id, "action:status" joined by spaces. */
static char *requests(const char *id) {
        sqlite3_stmt *st = NULL;
        char buf[1024] = "";

        assert_int_equal(sqlite3_prepare_v2(store_db(store),
                                            "SELECT action, status FROM sfn_requests WHERE order_id = ? ORDER BY id",
                                            -1, &st, NULL),
                         SQLITE_OK);
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        while (sqlite3_step(st) == SQLITE_ROW) {
                size_t n = strlen(buf);
                snprintf(buf + n, sizeof buf - n, "%s%s:%s", n ? " " : "", sqlite3_column_text(st, 0),
                         sqlite3_column_text(st, 1));
        }
        sqlite3_finalize(st);
        return strdup(buf);
}

/* The body of the n-th (from 0) request of id, parsed. */
static json_t *request_body(const char *id, int n) {
        sqlite3_stmt *st = NULL;
        json_t *j = NULL;

        assert_int_equal(
                sqlite3_prepare_v2(store_db(store),
                                   "SELECT body FROM sfn_requests WHERE order_id = ? ORDER BY id LIMIT 1 OFFSET ?", -1,
                                   &st, NULL),
                SQLITE_OK);
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 2, n);
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        j = json_loads((const char *) sqlite3_column_text(st, 0), 0, NULL);
        sqlite3_finalize(st);
        assert_non_null(j);
        return j;
}

static void test_start_is_recorded(void **state _unused_) {
        char id[7];
        _cleanup_free_ char *r = NULL;
        json_t *body, *in, *x = NULL;

        new_order(ORDER_PAYMENT_CARD, id);
        r = requests(id);
        assert_string_equal(r, "StartExecution:pending");
        body = request_body(id, 0);
        assert_string_equal(json_string_value(json_object_get(body, "stateMachineArn")), ARN);
        assert_string_equal(json_string_value(json_object_get(body, "name")), id);
        in = json_loads(json_string_value(json_object_get(body, "input")), 0, NULL);
        assert_non_null(in);
        /* the order JSON, and what the workflow reads first */
        assert_string_equal(json_string_value(json_object_get(in, "id")), id);
        assert_string_equal(json_string_value(json_object_get(in, "order_id")), id);
        assert_int_equal(json_integer_value(json_object_get(in, "total_cents")), 2 * 5290 + 500);
        assert_int_equal(
                json_integer_value(json_object_get(json_object_get(in, "settings"), "payment_timeout_seconds")), 900);
        json_decref(in);
        json_decref(body);

        /* a new engine on the same store: the same rows; started again: nothing new */
        engine_restart();
        assert_int_equal(store_begin(store), 0);
        assert_int_equal(engine_start_in_txn(engine, id, NULL), 0);
        assert_int_equal(store_commit(store), 0);
        free(r);
        r = requests(id);
        assert_string_equal(r, "StartExecution:pending");

        assert_int_equal(engine_execution_json(engine, id, &x), 0);
        assert_string_equal(json_string_value(json_object_get(x, "backend")), "stepfunctions");
        assert_string_equal(json_string_value(json_object_get(x, "status")), "PENDING");
        assert_string_equal(json_string_value(json_object_get(x, "state_machine_arn")), ARN);
        assert_int_equal(json_array_size(json_object_get(x, "requests")), 1);
        json_decref(x);
        assert_int_equal(engine_execution_json(engine, "ZZZZZZ", &x), -ENOENT);
}

static void test_start_bounds(void **state _unused_) {
        char id[7];
        _cleanup_free_ char *pad = malloc(SFN_INPUT_MAX + 1), *r = NULL;
        const OrderItemDraft item = {
                .sku = "pz-calabresa", .name = "Pizza Calabresa", .qty = 1, .unit_price_cents = 5290
        };
        const OrderDraft d = { .customer = "+5511987654322",
                               .channel = "sms",
                               .lang = "pt",
                               .address = "Rua Augusta 1500",
                               .zone = "centro-sul",
                               .payment = ORDER_PAYMENT_CASH,
                               .items = &item,
                               .n_items = 1 };
        json_t *big;

        assert_non_null(pad);
        memset(pad, 'x', SFN_INPUT_MAX);
        pad[SFN_INPUT_MAX] = 0;
        big = json_pack("{s:s}", "note", pad);
        assert_non_null(big);
        assert_int_equal(store_begin(store), 0);
        assert_int_equal(orders_create_in_txn(orders, &d, T0, id, NULL), 0);
        assert_int_equal(engine_start_in_txn(engine, id, big), -E2BIG);
        store_rollback(store);
        json_decref(big);
        r = requests(id);
        assert_string_equal(r, "");
        /* not an order, or an unknown one */
        assert_int_equal(engine_start_in_txn(engine, "not-an-id", NULL), -EINVAL);
        assert_int_equal(store_begin(store), 0);
        assert_int_equal(engine_start_in_txn(engine, "ZZZZZZ", NULL), -ENOENT);
        store_rollback(store);
}

static void test_events_need_a_token(void **state _unused_) {
        static const char token[] = "AAAAKgAAAAIAAAAAAAAAAQ-EXAMPLE-TASK-TOKEN";
        const char *why = NULL;
        _cleanup_free_ char *r = NULL;
        char id[7];
        json_t *body, *out;

        new_order(ORDER_PAYMENT_PIX, id);
        /* no token yet: refused, with the reason */
        assert_int_equal(store_begin(store), 0);
        assert_int_equal(engine_event_in_txn(engine, id, "paid", NULL, &why), -EPERM);
        assert_string_equal(why, "the order is not waiting for a payment");
        assert_int_equal(engine_event_in_txn(engine, id, "cancel", NULL, &why), -EBUSY);
        assert_non_null(strstr(why, "no task token is known"));
        /* the Lambda side registers the AwaitPayment token */
        assert_int_equal(engine_sfn_register_token_in_txn(store, id, token, "payment", T0), 0);
        assert_int_equal(engine_sfn_register_token_in_txn(store, id, token, "payment", T0), 0); /* once */
        assert_int_equal(engine_sfn_register_token_in_txn(store, id, token, "dinner", T0), -EINVAL);
        assert_int_equal(engine_sfn_register_token_in_txn(store, id, "", "payment", T0), -EINVAL);
        assert_int_equal(engine_sfn_register_token_in_txn(store, "ZZZZZZ", token, "payment", T0), -ENOENT);
        assert_int_equal(store_commit(store), 0);

        engine_restart(); /* the token is in the store */
        assert_int_equal(store_begin(store), 0);
        assert_int_equal(engine_event_in_txn(engine, id, "paid", NULL, &why), 0);
        assert_int_equal(store_commit(store), 0);
        r = requests(id);
        assert_string_equal(r, "StartExecution:pending SendTaskSuccess:pending");
        body = request_body(id, 1);
        assert_string_equal(json_string_value(json_object_get(body, "taskToken")), token);
        out = json_loads(json_string_value(json_object_get(body, "output")), 0, NULL);
        assert_non_null(out);
        assert_string_equal(json_string_value(json_object_get(out, "event")), "paid");
        json_decref(out);
        json_decref(body);
        /* a token answers once */
        assert_int_equal(store_begin(store), 0);
        assert_int_equal(engine_event_in_txn(engine, id, "paid", NULL, &why), -EPERM);
        store_rollback(store);
}

static void test_refusal_is_sent(void **state _unused_) {
        char id[7];

        new_order(ORDER_PAYMENT_CARD, id);
        assert_int_equal(store_begin(store), 0);
        assert_int_equal(engine_notify_in_txn(engine, id, "cancel_refused", "PREPARING"), 0);
        assert_int_equal(engine_notify_in_txn(engine, id, "no_such_template", NULL), -EINVAL);
        assert_int_equal(store_commit(store), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_start_is_recorded),
                cmocka_unit_test(test_start_bounds),
                cmocka_unit_test(test_events_need_a_token),
                cmocka_unit_test(test_refusal_is_sent),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
