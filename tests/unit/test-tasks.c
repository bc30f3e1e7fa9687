/* SPDX-License-Identifier: MIT */
/*
 * test-tasks.c — the workflow's tasks through task_invoke(), on a real
 * store and the demo store's configuration (etc/): stock reserved all or
 * none and given back exactly once, quotes for every demo zone, payment
 * for every method, status changes, failures and OOM.
 */
#include "test-helpers.h"

#include "orders.h"
#include "pix.h"
#include "snapshot.h"
#include "stock.h"
#include "store.h"
#include "tasks.h"

#define SEC USEC_PER_SEC
#define T0 (1764864000ULL * SEC) /* 2025-12-04T16:00:00Z */

static Store *store;
static Orders *orders;
static Snapshot *snapshot, *snapshot_no_pix;

static int setup(void **state _unused_) {
        char *const overrides[] = { (char *) "pix.key=pix@bellanapoli.example", (char *) "pix.merchant_city=São Paulo",
                                    NULL };
        char *err = NULL;
        Diags d = {};

        test_dir = make_tmpdir();
        assert_int_equal(store_open(test_dir, &store, &err), 0);
        assert_int_equal(orders_new(store, &orders), 0);
        assert_int_equal(snapshot_load(TEST_SRCDIR "/etc/deliveryd.conf", overrides, &snapshot, &d), 0);
        assert_int_equal(snapshot_load(TEST_SRCDIR "/etc/deliveryd.conf", NULL, &snapshot_no_pix, &d), 0);
        diags_clear(&d);
        assert_int_equal(stock_sync(store, snapshot->catalog), (int) catalog_n_items(snapshot->catalog));
        return 0;
}

static int teardown(void **state _unused_) {
        snapshot_unref(snapshot);
        snapshot_unref(snapshot_no_pix);
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

static void new_order(const OrderItemDraft *items, size_t n, OrderPayment payment, char id[7]) {
        const OrderDraft d = {
                .customer = "+5511987654321",
                .channel = "sms",
                .lang = "pt",
                .address = "Rua Augusta 1500",
                .delivery_fee_cents = 500,
                .payment = payment,
                .items = items,
                .n_items = n,
        };
        assert_int_equal(store_begin(store), 0);
        assert_int_equal(orders_create_in_txn(orders, &d, T0, id, NULL), 0);
        assert_int_equal(store_commit(store), 0);
}

/* Invoke name with input (JSON text) in a transaction that is committed
 * on success and rolled back on failure, as the engine does.  Returns
 * task_invoke()'s result; the output or failure in *ret_out / *ret_f. */
static int invoke_with(const Snapshot *s, const char *name, const char *input, json_t **ret_out, TaskFailure *ret_f) {
        TaskContext ctx = { .store = store, .orders = orders, .snapshot = s, .now_usec = T0 };
        json_t *in = json_loads(input, 0, NULL);
        int r;

        assert_non_null(in);
        assert_int_equal(store_begin(store), 0);
        r = task_invoke(name, &ctx, in, ret_out, ret_f);
        json_decref(in);
        if (r == 0)
                assert_int_equal(store_commit(store), 0);
        else
                store_rollback(store);
        return r;
}

static json_t *invoke_ok(const char *name, const char *input) {
        TaskFailure f = {};
        json_t *out = NULL;

        assert_int_equal(invoke_with(snapshot, name, input, &out, &f), 0);
        assert_non_null(out);
        return out;
}

static void invoke_fails(const Snapshot *s, const char *name, const char *input, const char *error) {
        TaskFailure f = {};
        json_t *out = NULL;

        assert_int_equal(invoke_with(s, name, input, &out, &f), 1);
        assert_null(out);
        assert_string_equal(f.error, error);
        assert_non_null(f.cause);
        assert_true(strlen(f.cause) > 0);
        task_failure_clear(&f);
}

static char *order_input(const char *id) {
        static char buf[64];
        snprintf(buf, sizeof buf, "{\"order_id\": \"#%s\"}", id);
        return buf;
}

static void test_stock_seeded_and_kept(void **state _unused_) {
        /* The demo catalog's counts (DESIGN.md). */
        assert_int_equal(stock_of("pz-margherita"), 20);
        assert_int_equal(stock_of("pz-frango-catupiry"), 0);
        assert_int_equal(stock_of("sobremesa-acai"), 8);
        int64_t n;
        assert_int_equal(stock_available(store, "no-such-sku", &n), -ENOENT);

        /* The store is the truth: a second sync (a reload) keeps counts. */
        assert_int_equal(store_exec(store, "UPDATE stock SET available = 3 WHERE sku = 'pz-margherita'"), 0);
        assert_int_equal(store_exec(store, "DELETE FROM stock WHERE sku = 'lanche-x-salada'"), 0);
        assert_int_equal(stock_sync(store, snapshot->catalog), 1); /* only the missing SKU */
        assert_int_equal(stock_of("pz-margherita"), 3);
        assert_int_equal(stock_of("lanche-x-salada"), 30);
        assert_int_equal(store_exec(store, "UPDATE stock SET available = 20 WHERE sku = 'pz-margherita'"), 0);
}

static void test_reserve_all_or_none(void **state _unused_) {
        static const OrderItemDraft items[] = {
                { "pz-calabresa", "Pizza Calabresa", 2, 5290 },
                { "pz-frango-catupiry", "Pizza Frango com Catupiry", 1, 5790 },
                { "bebida-coca-2l", "Coca-Cola 2L", 1, 1400 },
        };
        int64_t calabresa = stock_of("pz-calabresa"), coca = stock_of("bebida-coca-2l");
        char id[7];
        json_t *out;

        new_order(items, ELEMENTSOF(items), ORDER_PAYMENT_CASH, id);
        out = invoke_ok("availability", order_input(id));
        assert_false(json_is_true(json_object_get(out, "available")));
        assert_int_equal(json_array_size(json_object_get(out, "unavailable")), 1);
        assert_string_equal(json_string_value(json_array_get(json_object_get(out, "unavailable"), 0)),
                            "pz-frango-catupiry");
        json_decref(out);
        /* Nothing was taken of what was there. */
        assert_int_equal(stock_of("pz-calabresa"), calabresa);
        assert_int_equal(stock_of("bebida-coca-2l"), coca);
        assert_int_equal(stock_reserved(store, id), 0);
}

static void test_reserve_more_than_stock(void **state _unused_) {
        /* 5 + 4 of the same SKU: 9 > 8 in stock, counted together. */
        static const OrderItemDraft items[] = {
                { "sobremesa-acai", "Açaí 500ml", 5, 2200 },
                { "sobremesa-acai", "Açaí 500ml", 4, 2200 },
        };
        char id[7];
        json_t *out;

        new_order(items, ELEMENTSOF(items), ORDER_PAYMENT_CASH, id);
        out = invoke_ok("availability", order_input(id));
        assert_false(json_is_true(json_object_get(out, "available")));
        assert_string_equal(json_string_value(json_array_get(json_object_get(out, "unavailable"), 0)),
                            "sobremesa-acai");
        json_decref(out);
        assert_int_equal(stock_of("sobremesa-acai"), 8);
}

static void test_reserve_release_idempotent(void **state _unused_) {
        static const OrderItemDraft items[] = {
                { "pz-margherita", "Pizza Margherita", 3, 4990 },
                { "bebida-guarana-2l", "Guaraná Antarctica 2L", 2, 1200 },
        };
        int64_t margherita = stock_of("pz-margherita"), guarana = stock_of("bebida-guarana-2l");
        char id[7];
        json_t *out;

        new_order(items, ELEMENTSOF(items), ORDER_PAYMENT_CARD, id);
        for (int i = 0; i < 2; i++) { /* the second call (a retry) reserves nothing more */
                out = invoke_ok("availability", order_input(id));
                assert_true(json_is_true(json_object_get(out, "available")));
                assert_null(json_object_get(out, "unavailable"));
                json_decref(out);
                assert_int_equal(stock_of("pz-margherita"), margherita - 3);
                assert_int_equal(stock_of("bebida-guarana-2l"), guarana - 2);
        }
        out = invoke_ok("release", order_input(id));
        assert_true(json_is_true(json_object_get(out, "released")));
        json_decref(out);
        assert_int_equal(stock_of("pz-margherita"), margherita);
        assert_int_equal(stock_of("bebida-guarana-2l"), guarana);
        out = invoke_ok("release", order_input(id));
        assert_false(json_is_true(json_object_get(out, "released")));
        json_decref(out);
        assert_int_equal(stock_of("pz-margherita"), margherita);
        assert_int_equal(stock_of("bebida-guarana-2l"), guarana);
}

static void test_reserve_until_sold_out(void **state _unused_) {
        static const OrderItemDraft items[] = { { "sobremesa-brownie", "Brownie", 5, 1290 } };
        char a[7], b[7], c[7];
        json_t *out;

        assert_int_equal(stock_of("sobremesa-brownie"), 12);
        new_order(items, 1, ORDER_PAYMENT_CASH, a);
        new_order(items, 1, ORDER_PAYMENT_CASH, b);
        new_order(items, 1, ORDER_PAYMENT_CASH, c);
        json_decref(invoke_ok("availability", order_input(a)));
        json_decref(invoke_ok("availability", order_input(b)));
        assert_int_equal(stock_of("sobremesa-brownie"), 2);
        out = invoke_ok("availability", order_input(c));
        assert_false(json_is_true(json_object_get(out, "available")));
        json_decref(out);
        assert_int_equal(stock_of("sobremesa-brownie"), 2);
        json_decref(invoke_ok("release", order_input(a)));
        out = invoke_ok("availability", order_input(c));
        assert_true(json_is_true(json_object_get(out, "available")));
        json_decref(out);
        assert_int_equal(stock_of("sobremesa-brownie"), 2);
}

static void test_quote(void **state _unused_) {
        static const struct {
                const char *address;
                const char *zone; /* NULL: not served */
                int64_t fee, minutes;
                const char *reason, *place;
        } rows[] = {
                { "Rua Augusta 1500 apto 12", "centro-sul", 500, 25, NULL, NULL },
                { "Av. Paulista, 900 - Bela Vista", "centro-sul", 500, 25, NULL, NULL },
                { "Rua Oscar Freire 100", "centro", 700, 30, NULL, NULL },
                { "Rua Teodoro Sampaio 10", "oeste", 900, 35, NULL, NULL },
                { "Avenida Ibirapuera 2000", "sul", 1100, 40, NULL, NULL },
                { "Rua Tuiuti 100, Tatuapé", NULL, 0, 0, "outside", "Tatuapé" },
                { "perto da padaria", NULL, 0, 0, "unknown", NULL },
        };
        for (size_t i = 0; i < ELEMENTSOF(rows); i++) {
                _cleanup_free_ char *in = NULL;
                json_t *j = json_pack("{s:s}", "address", rows[i].address), *out;

                in = mem_json_dumps(j, 0);
                json_decref(j);
                out = invoke_ok("quote", in);
                if (rows[i].zone) {
                        assert_true(json_is_true(json_object_get(out, "served")));
                        assert_string_equal(json_string_value(json_object_get(out, "zone")), rows[i].zone);
                        assert_int_equal(json_integer_value(json_object_get(out, "delivery_fee_cents")), rows[i].fee);
                        assert_int_equal(json_integer_value(json_object_get(out, "eta_minutes")), rows[i].minutes);
                        char eta[32];
                        orders_format_time(T0 + (uint64_t) rows[i].minutes * 60 * SEC, eta);
                        assert_string_equal(json_string_value(json_object_get(out, "eta")), eta);
                } else {
                        assert_false(json_is_true(json_object_get(out, "served")));
                        assert_string_equal(json_string_value(json_object_get(out, "reason")), rows[i].reason);
                        if (rows[i].place)
                                assert_string_equal(json_string_value(json_object_get(out, "place")), rows[i].place);
                        else
                                assert_true(json_is_null(json_object_get(out, "place")));
                }
                json_decref(out);
        }
        invoke_fails(snapshot, "quote", "{}", "deliveryd.InvalidInput");
        invoke_fails(snapshot, "quote", "{\"address\": 12}", "deliveryd.InvalidInput");
}

static void test_quote_recorded_in_order(void **state _unused_) {
        static const OrderItemDraft items[] = { { "lanche-x-burguer", "X-Burguer", 2, 2490 } };
        char id[7], in[128];
        json_t *out, *order = NULL;

        new_order(items, 1, ORDER_PAYMENT_CASH, id);
        snprintf(in, sizeof in, "{\"address\": \"Rua Joaquim Floriano 50\", \"order_id\": \"%s\"}", id);
        out = invoke_ok("quote", in);
        assert_string_equal(json_string_value(json_object_get(out, "zone")), "sul");
        json_decref(out);
        assert_int_equal(orders_get_json(orders, id, NULL, &order), 0);
        assert_string_equal(json_string_value(json_object_get(order, "zone")), "sul");
        assert_int_equal(json_integer_value(json_object_get(order, "delivery_fee_cents")), 1100);
        assert_int_equal(json_integer_value(json_object_get(order, "total_cents")), 2 * 2490 + 1100);
        assert_string_equal(json_string_value(json_object_get(order, "eta")), "2025-12-04T16:40:00Z");
        json_decref(order);
        invoke_fails(snapshot, "quote", "{\"address\": \"Rua Augusta 1\", \"order_id\": \"ZZZZZZ\"}",
                     "deliveryd.OrderNotFound");
}

static void test_payment(void **state _unused_) {
        static const OrderItemDraft items[] = { { "pz-portuguesa", "Pizza Portuguesa", 1, 5690 } };
        static const struct {
                OrderPayment method;
                const char *name;
        } rows[] = { { ORDER_PAYMENT_CASH, "cash" }, { ORDER_PAYMENT_CARD, "card" } };
        char id[7], txid[16];
        json_t *out, *order = NULL;

        for (size_t i = 0; i < ELEMENTSOF(rows); i++) {
                new_order(items, 1, rows[i].method, id);
                out = invoke_ok("payment", order_input(id));
                assert_string_equal(json_string_value(json_object_get(out, "method")), rows[i].name);
                assert_string_equal(json_string_value(json_object_get(out, "status")), "authorised");
                assert_null(json_object_get(out, "pix_code"));
                json_decref(out);
                out = invoke_ok("void_payment", order_input(id));
                assert_string_equal(json_string_value(json_object_get(out, "status")), "voided");
                json_decref(out);
                assert_int_equal(orders_get_json(orders, id, NULL, &order), 0);
                assert_string_equal(json_string_value(json_object_get(order, "payment_status")), "voided");
                json_decref(order);
        }

        new_order(items, 1, ORDER_PAYMENT_PIX, id);
        /* Without pix.key: a clear failure, nothing recorded. */
        invoke_fails(snapshot_no_pix, "payment", order_input(id), "deliveryd.PixNotConfigured");
        out = invoke_ok("payment", order_input(id));
        assert_string_equal(json_string_value(json_object_get(out, "status")), "pending");
        assert_int_equal(json_integer_value(json_object_get(out, "amount_cents")), 5690 + 500);
        const char *code = json_string_value(json_object_get(out, "pix_code"));
        assert_non_null(code);
        assert_non_null(strstr(code, "0014br.gov.bcb.pix0123pix@bellanapoli.example"));
        assert_non_null(strstr(code, "540561.90"));
        assert_non_null(strstr(code, "5921Pizzaria Bella Napoli")); /* store.name */
        assert_non_null(strstr(code, "6009Sao Paulo"));
        snprintf(txid, sizeof txid, "62100506%s", id);
        assert_non_null(strstr(code, txid));
        char crc[5];
        snprintf(crc, sizeof crc, "%04X", pix_crc16(code, strlen(code) - 4));
        assert_string_equal(code + strlen(code) - 4, crc);
        _cleanup_free_ char *first = strdup(code);
        json_decref(out);
        /* Again (a retry): the same code. */
        out = invoke_ok("payment", order_input(id));
        assert_string_equal(json_string_value(json_object_get(out, "pix_code")), first);
        json_decref(out);
        assert_int_equal(orders_get_json(orders, id, NULL, &order), 0);
        assert_string_equal(json_string_value(json_object_get(order, "payment_status")), "pending");
        assert_string_equal(json_string_value(json_object_get(order, "pix_code")), first);
        json_decref(order);
}

static void test_set_status(void **state _unused_) {
        static const OrderItemDraft items[] = { { "porcao-batata", "Batata Frita", 1, 1990 } };
        char id[7], in[128];
        json_t *out;

        new_order(items, 1, ORDER_PAYMENT_CASH, id);
        snprintf(in, sizeof in, "{\"order_id\": \"%s\", \"status\": \"CONFIRMED\"}", id);
        out = invoke_ok("set_status", in);
        assert_string_equal(json_string_value(json_object_get(out, "status")), "CONFIRMED");
        assert_string_equal(json_string_value(json_object_get(out, "previous")), "CREATED");
        json_decref(out);
        snprintf(in, sizeof in, "{\"order_id\": \"%s\", \"status\": \"DELIVERED\"}", id);
        invoke_fails(snapshot, "set_status", in, "deliveryd.TransitionRefused");
        snprintf(in, sizeof in, "{\"order_id\": \"%s\", \"status\": \"CANCELLED\"}", id);
        invoke_fails(snapshot, "set_status", in, "deliveryd.InvalidInput");
        snprintf(in, sizeof in, "{\"order_id\": \"%s\", \"status\": \"LOST\"}", id);
        invoke_fails(snapshot, "set_status", in, "deliveryd.InvalidInput");
        snprintf(in, sizeof in, "{\"order_id\": \"%s\", \"status\": \"CANCELLED\", \"reason\": \"payment\"}", id);
        out = invoke_ok("set_status", in);
        assert_string_equal(json_string_value(json_object_get(out, "status")), "CANCELLED");
        json_decref(out);
}

static void test_failures(void **state _unused_) {
        TaskFailure f = {};
        json_t *out = NULL;
        TaskContext ctx = { .store = store, .orders = orders, .snapshot = snapshot, .now_usec = T0 };
        json_t *arr = json_array();

        invoke_fails(snapshot, "notify", "{}", "deliveryd.UnknownTask");
        invoke_fails(snapshot, "availability", "{}", "deliveryd.InvalidInput");
        invoke_fails(snapshot, "availability", "{\"order_id\": 7}", "deliveryd.InvalidInput");
        invoke_fails(snapshot, "availability", "{\"order_id\": \"not an id\"}", "deliveryd.InvalidInput");
        invoke_fails(snapshot, "availability", "{\"order_id\": \"ZZZZZZ\"}", "deliveryd.OrderNotFound");
        invoke_fails(snapshot, "payment", "{\"order_id\": \"ZZZZZZ\"}", "deliveryd.OrderNotFound");
        invoke_fails(snapshot, "void_payment", "{\"order_id\": \"ZZZZZZ\"}", "deliveryd.OrderNotFound");
        invoke_fails(snapshot, "release", "{}", "deliveryd.InvalidInput");
        assert_int_equal(task_invoke("release", &ctx, arr, &out, &f), 1);
        assert_string_equal(f.error, "deliveryd.InvalidInput");
        task_failure_clear(&f);
        json_decref(arr);
        for (const char *const *n = task_names(); *n; n++)
                assert_true(streq(*n, "availability") || streq(*n, "release") || streq(*n, "quote") ||
                            streq(*n, "payment") || streq(*n, "void_payment") || streq(*n, "set_status"));
}

static char oom_id[7];

static int oom_attempt(void *userdata _unused_) {
        static const char *const names[] = { "availability", "quote", "payment", "set_status", "release" };
        TaskContext ctx = { .store = store, .orders = orders, .snapshot = snapshot, .now_usec = T0 };
        int r = 0;

        for (size_t i = 0; i < ELEMENTSOF(names) && r == 0; i++) {
                TaskFailure f = {};
                json_t *out = NULL;
                json_t *in = json_pack("{s:s,s:s,s:s}", "order_id", oom_id, "address", "Rua Augusta 1500", "status",
                                       "CONFIRMED");
                if (!in)
                        return -ENOMEM;
                r = store_begin(store);
                if (r == 0)
                        r = task_invoke(names[i], &ctx, in, &out, &f);
                json_decref(in);
                json_decref(out);
                task_failure_clear(&f);
                store_rollback(store); /* every attempt starts from the same state */
        }
        return r;
}

static void test_oom(void **state _unused_) {
        static const OrderItemDraft items[] = { { "pz-quatro-queijos", "Pizza Quatro Queijos", 1, 5890 } };
        int64_t before = stock_of("pz-quatro-queijos");

        new_order(items, 1, ORDER_PAYMENT_PIX, oom_id);
        assert_true(oom_loop(oom_attempt, NULL, 0) > 1);
        assert_int_equal(stock_of("pz-quatro-queijos"), before);
        assert_int_equal(stock_reserved(store, oom_id), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_stock_seeded_and_kept),
                cmocka_unit_test(test_reserve_all_or_none),
                cmocka_unit_test(test_reserve_more_than_stock),
                cmocka_unit_test(test_reserve_release_idempotent),
                cmocka_unit_test(test_reserve_until_sold_out),
                cmocka_unit_test(test_quote),
                cmocka_unit_test(test_quote_recorded_in_order),
                cmocka_unit_test(test_payment),
                cmocka_unit_test(test_set_status),
                cmocka_unit_test(test_failures),
                cmocka_unit_test(test_oom),
        };
        alloc_init();
        return cmocka_run_group_tests(tests, setup, teardown);
}
