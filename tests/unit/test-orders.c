/* SPDX-License-Identifier: MIT */
/*
 * test-orders.c — orders in a real store: creation inside a transaction
 * (and what a rollback leaves), ids and tokens, the transition table, the
 * order JSON, customer isolation, listing and look-ups.
 */
#include "test-helpers.h"

#include "orders.h"
#include "store.h"

#define SEC USEC_PER_SEC
#define T0 (1764864000ULL * SEC) /* 2025-12-04T16:00:00Z */

static Store *store;
static Orders *orders;

static const OrderItemDraft items2[] = {
        { "pz-calabresa", "Pizza Calabresa", 2, 5290 },
        { "bebida-coca-2l", "Coca-Cola 2L", 1, 1400 },
};

static OrderDraft draft(const char *customer) {
        return (OrderDraft){
                .customer = customer,
                .channel = "sms",
                .lang = "pt",
                .address = "Rua Augusta 1500 apto 12",
                .zone = "centro-sul",
                .zone_name = "Consolação e Bela Vista",
                .delivery_fee_cents = 500,
                .payment = ORDER_PAYMENT_PIX,
                .items = items2,
                .n_items = ELEMENTSOF(items2),
        };
}

static int setup(void **state _unused_) {
        char *err = NULL;

        test_dir = make_tmpdir();
        assert_int_equal(store_open(test_dir, &store, &err), 0);
        assert_int_equal(orders_new(store, &orders), 0);
        return 0;
}

static int teardown(void **state _unused_) {
        orders_free(orders);
        store_close(store);
        rm_rf(test_dir);
        free(test_dir);
        return 0;
}

static void create(const OrderDraft *d, uint64_t at, char id[7], char token[33]) {
        assert_int_equal(store_begin(store), 0);
        assert_int_equal(orders_create_in_txn(orders, d, at, id, token), 0);
        assert_int_equal(store_commit(store), 0);
}

static int64_t count_rows(const char *table) {
        char sql[128];
        sqlite3_stmt *st = NULL;
        int64_t n;

        snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", table);
        assert_int_equal(sqlite3_prepare_v2(store_db(store), sql, -1, &st, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        n = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        return n;
}

static void test_create_json(void **state _unused_) {
        OrderDraft d = draft("+5511987654321");
        char id[7], token[33], url[128];
        json_t *j = NULL, *it, *h;

        d.eta_usec = T0 + 25 * 60 * SEC;
        create(&d, T0, id, token);
        assert_int_equal(strlen(id), 6);
        assert_true(order_token_valid(token));
        assert_int_equal(orders_get_json(orders, id, "https://pedidos.example.com/", &j), 0);

        assert_string_equal(json_string_value(json_object_get(j, "id")), id);
        assert_string_equal(json_string_value(json_object_get(j, "customer")), "+5511987654321");
        assert_string_equal(json_string_value(json_object_get(j, "status")), "CREATED");
        assert_string_equal(json_string_value(json_object_get(j, "address")), "Rua Augusta 1500 apto 12");
        assert_string_equal(json_string_value(json_object_get(j, "zone")), "centro-sul");
        assert_int_equal(json_integer_value(json_object_get(j, "delivery_fee_cents")), 500);
        assert_int_equal(json_integer_value(json_object_get(j, "subtotal_cents")), 2 * 5290 + 1400);
        assert_int_equal(json_integer_value(json_object_get(j, "total_cents")), 2 * 5290 + 1400 + 500);
        assert_string_equal(json_string_value(json_object_get(j, "payment")), "pix");
        assert_string_equal(json_string_value(json_object_get(j, "eta")), "2025-12-04T16:25:00Z");
        snprintf(url, sizeof url, "https://pedidos.example.com/t/%s", token);
        assert_string_equal(json_string_value(json_object_get(j, "tracking_url")), url);

        assert_int_equal(json_array_size(json_object_get(j, "items")), 2);
        it = json_array_get(json_object_get(j, "items"), 0);
        assert_string_equal(json_string_value(json_object_get(it, "sku")), "pz-calabresa");
        assert_int_equal(json_integer_value(json_object_get(it, "qty")), 2);
        assert_int_equal(json_integer_value(json_object_get(it, "unit_price_cents")), 5290);
        it = json_array_get(json_object_get(j, "items"), 1);
        assert_string_equal(json_string_value(json_object_get(it, "sku")), "bebida-coca-2l");

        assert_int_equal(json_array_size(json_object_get(j, "history")), 1);
        h = json_array_get(json_object_get(j, "history"), 0);
        assert_string_equal(json_string_value(json_object_get(h, "status")), "CREATED");
        assert_string_equal(json_string_value(json_object_get(h, "at")), "2025-12-04T16:00:00Z");
        assert_true(json_is_null(json_object_get(h, "reason")));
        json_decref(j);

        /* Same link without the trailing slash; no public_url, no link; '#' and lower case find it. */
        char alt[8] = "#";
        for (int i = 0; i < 6; i++)
                alt[i + 1] = (char) (id[i] >= 'A' ? id[i] - 'A' + 'a' : id[i]);
        alt[7] = '\0';
        assert_int_equal(orders_get_json(orders, alt, "https://pedidos.example.com", &j), 0);
        assert_string_equal(json_string_value(json_object_get(j, "tracking_url")), url);
        json_decref(j);
        assert_int_equal(orders_get_json(orders, id, NULL, &j), 0);
        assert_true(json_is_null(json_object_get(j, "tracking_url")));
        assert_true(json_is_null(json_object_get(j, "change_for_cents")));
        json_decref(j);

        assert_int_equal(orders_get_by_token_json(orders, token, NULL, &j), 0);
        assert_string_equal(json_string_value(json_object_get(j, "id")), id);
        json_decref(j);
        token[0] = token[0] == 'a' ? 'b' : 'a';
        assert_int_equal(orders_get_by_token_json(orders, token, NULL, &j), -ENOENT);
        assert_int_equal(orders_get_by_token_json(orders, "'; DROP TABLE orders; --", NULL, &j), -ENOENT);
        assert_int_equal(orders_get_json(orders, "ZZZZZZ", NULL, &j), -ENOENT);
        assert_int_equal(orders_get_json(orders, "not-an-id", NULL, &j), -EINVAL);
}

static void test_rollback_leaves_nothing(void **state _unused_) {
        OrderDraft d = draft("+5511900000001");
        int64_t orders_before = count_rows("orders"), items_before = count_rows("order_items"),
                history_before = count_rows("order_history");
        char id[7], token[33];
        json_t *j = NULL;

        assert_int_equal(store_begin(store), 0);
        assert_int_equal(orders_create_in_txn(orders, &d, T0, id, token), 0);
        assert_int_equal(orders_get_json(orders, id, NULL, &j), 0); /* visible inside the transaction */
        json_decref(j);
        store_rollback(store);
        assert_int_equal(orders_get_json(orders, id, NULL, &j), -ENOENT);
        assert_int_equal(orders_get_by_token_json(orders, token, NULL, &j), -ENOENT);
        assert_int_equal(count_rows("orders"), orders_before);
        assert_int_equal(count_rows("order_items"), items_before);
        assert_int_equal(count_rows("order_history"), history_before);
}

static void test_bad_drafts(void **state _unused_) {
        static const OrderItemDraft zero_qty[] = { { "pz-calabresa", "Pizza", 0, 5290 } };
        static const OrderItemDraft too_many[] = { { "pz-calabresa", "Pizza", ORDER_MAX_QTY + 1, 5290 } };
        static const OrderItemDraft negative[] = { { "pz-calabresa", "Pizza", 1, -1 } };
        static const OrderItemDraft no_sku[] = { { "", "Pizza", 1, 100 } };
        OrderDraft rows[9];
        char id[7];

        for (size_t i = 0; i < ELEMENTSOF(rows); i++)
                rows[i] = draft("+5511900000002");
        rows[0].customer = "";
        rows[1].channel = "fax";
        rows[2].lang = "es";
        rows[3].address = NULL;
        rows[4].n_items = 0;
        rows[5].items = zero_qty, rows[5].n_items = 1;
        rows[6].items = too_many, rows[6].n_items = 1;
        rows[7].items = negative, rows[7].n_items = 1;
        rows[8].items = no_sku, rows[8].n_items = 1;
        assert_int_equal(store_begin(store), 0);
        for (size_t i = 0; i < ELEMENTSOF(rows); i++)
                assert_int_equal(orders_create_in_txn(orders, &rows[i], T0, id, NULL), -EINVAL);
        assert_int_equal(orders_create_in_txn(orders, NULL, T0, id, NULL), -EINVAL);
        store_rollback(store);
}

static void test_ids_unique_and_canonical(void **state _unused_) {
        enum { N = 300 };
        static char ids[N][7], tokens[N][33];
        OrderDraft d = draft("+5511900000003");

        assert_int_equal(store_begin(store), 0);
        for (size_t i = 0; i < N; i++) {
                char again[7];
                assert_int_equal(orders_create_in_txn(orders, &d, T0 + i, ids[i], tokens[i]), 0);
                assert_int_equal(order_id_parse(ids[i], again), 0);
                assert_string_equal(again, ids[i]); /* canonical: parsing changes nothing */
                for (const char *c = ids[i]; *c; c++)
                        assert_non_null(strchr("0123456789ABCDEFGHJKMNPQRSTVWXYZ", *c));
                assert_true(order_token_valid(tokens[i]));
                for (size_t k = 0; k < i; k++) {
                        assert_string_not_equal(ids[i], ids[k]);
                        assert_string_not_equal(tokens[i], tokens[k]);
                }
        }
        assert_int_equal(store_commit(store), 0);
}

/* A random source that repeats the same 4 bytes for the first n_same draws. */
static struct { unsigned n_same, calls; } fake;

static int fake_random(void *buf, size_t n, void *userdata _unused_) {
        if (n == 4 && fake.calls++ < fake.n_same) {
                memset(buf, 0x42, n);
                return 0;
        }
        for (size_t i = 0; i < n; i++)
                ((uint8_t *) buf)[i] = (uint8_t) (fake.calls * 37 + i * 11);
        return 0;
}

static void test_id_collision_retried(void **state _unused_) {
        OrderDraft d = draft("+5511900000004");
        char first[7], second[7];

        orders_set_random(orders, fake_random, NULL);
        fake.n_same = 2, fake.calls = 0;
        assert_int_equal(store_begin(store), 0);
        assert_int_equal(orders_create_in_txn(orders, &d, T0, first, NULL), 0);
        /* The second draw gives the same id: taken, so the next draw is used. */
        assert_int_equal(orders_create_in_txn(orders, &d, T0, second, NULL), 0);
        assert_string_not_equal(first, second);
        assert_int_equal(fake.calls, 3);
        /* Every draw taken: a clear error instead of a loop. */
        fake.n_same = 1000, fake.calls = 0;
        assert_int_equal(orders_create_in_txn(orders, &d, T0, second, NULL), -EEXIST);
        store_rollback(store);
        orders_set_random(orders, NULL, NULL);
}

static void test_id_parse(void **state _unused_) {
        static const struct {
                const char *in, *out; /* out NULL: -EINVAL */
        } rows[] = {
                { "7KQ2XM", "7KQ2XM" }, { "#7KQ2XM", "7KQ2XM" }, { "7kq2xm", "7KQ2XM" },    { "#7kQ2Xm", "7KQ2XM" },
                { "ILO0ab", "1100AB" }, { "il1o0Z", "11100Z" },  { "7KQ2X", NULL },         { "7KQ2XMM", NULL },
                { "7KQ2XU", NULL },     { "##7KQ2XM", NULL },    { "7KQ 2X", NULL },        { "", NULL },
                { "#", NULL },          { "7KQ-XM", NULL },      { "7KQ2X\xc3\xa9", NULL },
        };
        char id[7];

        for (size_t i = 0; i < ELEMENTSOF(rows); i++) {
                int r = order_id_parse(rows[i].in, id);
                if (!rows[i].out)
                        assert_int_equal(r, -EINVAL);
                else {
                        assert_int_equal(r, 0);
                        assert_string_equal(id, rows[i].out);
                }
        }
        assert_int_equal(order_id_parse(NULL, id), -EINVAL);
}

static void test_transition_table(void **state _unused_) {
        /* allowed[from][to], in OrderStatus order. */
        static const bool allowed[_ORDER_STATUS_MAX][_ORDER_STATUS_MAX] = {
                /*                 CRE CON PRE REA INd DEL CAN */
                [ORDER_CREATED] = { 0, 1, 0, 0, 0, 0, 1 },     [ORDER_CONFIRMED] = { 0, 0, 1, 0, 0, 0, 1 },
                [ORDER_PREPARING] = { 0, 0, 0, 1, 0, 0, 1 },   [ORDER_READY] = { 0, 0, 0, 0, 1, 0, 1 },
                [ORDER_IN_DELIVERY] = { 0, 0, 0, 0, 0, 1, 1 }, [ORDER_DELIVERED] = { 0, 0, 0, 0, 0, 0, 0 },
                [ORDER_CANCELLED] = { 0, 0, 0, 0, 0, 0, 0 },
        };
        for (int f = 0; f < _ORDER_STATUS_MAX; f++)
                for (int t = 0; t < _ORDER_STATUS_MAX; t++) {
                        const char *why = NULL;
                        bool ok = order_transition_allowed((OrderStatus) f, (OrderStatus) t, &why);
                        assert_int_equal(ok, allowed[f][t]);
                        if (!ok)
                                assert_non_null(why);
                }
        assert_false(order_transition_allowed(_ORDER_STATUS_INVALID, ORDER_CONFIRMED, NULL));
        for (int s = 0; s < _ORDER_STATUS_MAX; s++)
                assert_int_equal(order_status_from_string(order_status_to_string((OrderStatus) s)), s);
        assert_int_equal(order_status_from_string("confirmed"), _ORDER_STATUS_INVALID);
        assert_int_equal(order_payment_from_string("cheque"), _ORDER_PAYMENT_INVALID);
}

static void test_set_status(void **state _unused_) {
        OrderDraft d = draft("+5511900000005");
        const char *why = NULL;
        char id[7];
        json_t *j = NULL, *h;

        create(&d, T0, id, NULL);
        assert_int_equal(store_begin(store), 0);
        assert_int_equal(orders_set_status_in_txn(orders, id, ORDER_CONFIRMED, NULL, T0 + 60 * SEC, NULL), 0);
        /* Twice: nothing more (a task run again). */
        assert_int_equal(orders_set_status_in_txn(orders, id, ORDER_CONFIRMED, NULL, T0 + 61 * SEC, NULL), 0);
        assert_int_equal(orders_set_status_in_txn(orders, id, ORDER_READY, NULL, T0 + 62 * SEC, &why), -EPERM);
        assert_string_equal(why, "an order cannot skip a status");
        assert_int_equal(orders_set_status_in_txn(orders, id, ORDER_CANCELLED, NULL, T0, NULL), -EINVAL);
        assert_int_equal(orders_set_status_in_txn(orders, id, ORDER_CANCELLED, "", T0, NULL), -EINVAL);
        assert_int_equal(orders_set_status_in_txn(orders, "ZZZZZZ", ORDER_CONFIRMED, NULL, T0, NULL), -ENOENT);
        assert_int_equal(orders_set_status_in_txn(orders, id, ORDER_CANCELLED, "customer", T0 + 120 * SEC, NULL), 0);
        assert_int_equal(orders_set_status_in_txn(orders, id, ORDER_PREPARING, NULL, T0 + 180 * SEC, &why), -EPERM);
        assert_string_equal(why, "the order was cancelled; it cannot change any more");
        assert_int_equal(orders_set_eta_in_txn(orders, id, T0 + 3600 * SEC, T0 + 200 * SEC), 0);
        assert_int_equal(orders_set_eta_in_txn(orders, "ZZZZZZ", T0, T0), -ENOENT);
        assert_int_equal(store_commit(store), 0);

        assert_int_equal(orders_get_json(orders, id, NULL, &j), 0);
        assert_string_equal(json_string_value(json_object_get(j, "status")), "CANCELLED");
        assert_string_equal(json_string_value(json_object_get(j, "cancel_reason")), "customer");
        assert_string_equal(json_string_value(json_object_get(j, "eta")), "2025-12-04T17:00:00Z");
        assert_int_equal(json_array_size(json_object_get(j, "history")), 3);
        h = json_array_get(json_object_get(j, "history"), 1);
        assert_string_equal(json_string_value(json_object_get(h, "status")), "CONFIRMED");
        assert_string_equal(json_string_value(json_object_get(h, "at")), "2025-12-04T16:01:00Z");
        h = json_array_get(json_object_get(j, "history"), 2);
        assert_string_equal(json_string_value(json_object_get(h, "status")), "CANCELLED");
        assert_string_equal(json_string_value(json_object_get(h, "reason")), "customer");
        json_decref(j);
}

static void test_full_path(void **state _unused_) {
        static const OrderStatus path[] = { ORDER_CONFIRMED, ORDER_PREPARING, ORDER_READY, ORDER_IN_DELIVERY,
                                            ORDER_DELIVERED };
        OrderDraft d = draft("+5511900000006");
        char id[7];
        json_t *j = NULL;

        create(&d, T0, id, NULL);
        assert_int_equal(store_begin(store), 0);
        for (size_t i = 0; i < ELEMENTSOF(path); i++)
                assert_int_equal(orders_set_status_in_txn(orders, id, path[i], NULL, T0 + i * SEC, NULL), 0);
        assert_int_equal(orders_set_status_in_txn(orders, id, ORDER_CANCELLED, "late", T0, NULL), -EPERM);
        assert_int_equal(store_commit(store), 0);
        assert_int_equal(orders_get_json(orders, id, NULL, &j), 0);
        assert_int_equal(json_array_size(json_object_get(j, "history")), 1 + ELEMENTSOF(path));
        assert_string_equal(json_string_value(json_object_get(j, "status")), "DELIVERED");
        json_decref(j);
}

static void test_customer_isolation(void **state _unused_) {
        OrderDraft ana = draft("+5511911111111"), bia = draft("bia@example.com");
        char a[7], b[7], latest[7];
        json_t *j = NULL;

        bia.channel = "email";
        create(&ana, T0, a, NULL);
        create(&bia, T0, b, NULL);
        assert_int_equal(orders_get_for_customer(orders, a, "+5511911111111", NULL, &j), 0);
        json_decref(j);
        /* Bia asking for Ana's order gets what an unknown id gets. */
        assert_int_equal(orders_get_for_customer(orders, a, "bia@example.com", NULL, &j), -ENOENT);
        assert_int_equal(orders_get_for_customer(orders, "ZZZZZZ", "bia@example.com", NULL, &j), -ENOENT);
        assert_int_equal(orders_get_for_customer(orders, a, "", NULL, &j), -ENOENT);
        assert_int_equal(orders_latest_active(orders, "bia@example.com", latest), 0);
        assert_string_equal(latest, b);
        assert_int_equal(orders_latest_active(orders, "+5511999999999", latest), -ENOENT);
}

static void test_latest_active(void **state _unused_) {
        OrderDraft d = draft("+5511922222222");
        char old[7], newer[7], done[7], latest[7];

        create(&d, T0, old, NULL);
        create(&d, T0 + 10 * SEC, newer, NULL);
        create(&d, T0 + 20 * SEC, done, NULL);
        assert_int_equal(store_begin(store), 0);
        assert_int_equal(orders_set_status_in_txn(orders, done, ORDER_CANCELLED, "unavailable", T0, NULL), 0);
        assert_int_equal(store_commit(store), 0);
        assert_int_equal(orders_latest_active(orders, "+5511922222222", latest), 0);
        assert_string_equal(latest, newer);
}

static void test_list_oldest_first(void **state _unused_) {
        OrderDraft d = draft("+5511933333333");
        char late[7], early[7], middle[7];
        json_t *a;
        size_t n;

        create(&d, T0 + 3000 * SEC, late, NULL);
        create(&d, T0 + 1000 * SEC, early, NULL);
        create(&d, T0 + 2000 * SEC, middle, NULL);
        a = orders_list_json(orders, NULL, 100000);
        assert_non_null(a);
        n = json_array_size(a);
        assert_true(n >= 3);
        for (size_t i = 1; i < n; i++)
                assert_true(strcmp(json_string_value(json_object_get(json_array_get(a, i - 1), "created_at")),
                                   json_string_value(json_object_get(json_array_get(a, i), "created_at"))) <= 0);
        json_decref(a);
        /* The newest 3 (created after every other order here), oldest first. */
        a = orders_list_json(orders, NULL, 3);
        assert_int_equal(json_array_size(a), 3);
        assert_string_equal(json_string_value(json_object_get(json_array_get(a, 0), "id")), early);
        assert_string_equal(json_string_value(json_object_get(json_array_get(a, 1), "id")), middle);
        assert_string_equal(json_string_value(json_object_get(json_array_get(a, 2), "id")), late);
        json_decref(a);
}

static int oom_attempt(void *userdata _unused_) {
        OrderDraft d = draft("+5511944444444");
        char id[7];
        json_t *j = NULL, *l;
        int r;

        r = store_begin(store);
        if (r < 0)
                return r;
        r = orders_create_in_txn(orders, &d, T0, id, NULL);
        if (r >= 0)
                r = orders_get_json(orders, id, "https://x.example", &j);
        json_decref(j);
        if (r >= 0) {
                l = orders_list_json(orders, NULL, 2);
                r = l ? 0 : -ENOMEM;
                json_decref(l);
        }
        store_rollback(store);
        return r;
}

static void test_oom(void **state _unused_) {
        int64_t before = count_rows("orders");

        assert_true(oom_loop(oom_attempt, NULL, 0) > 1);
        assert_int_equal(count_rows("orders"), before);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_create_json),
                cmocka_unit_test(test_rollback_leaves_nothing),
                cmocka_unit_test(test_bad_drafts),
                cmocka_unit_test(test_ids_unique_and_canonical),
                cmocka_unit_test(test_id_collision_retried),
                cmocka_unit_test(test_id_parse),
                cmocka_unit_test(test_transition_table),
                cmocka_unit_test(test_set_status),
                cmocka_unit_test(test_full_path),
                cmocka_unit_test(test_customer_isolation),
                cmocka_unit_test(test_latest_active),
                cmocka_unit_test(test_list_oldest_first),
                cmocka_unit_test(test_oom),
        };
        alloc_init();
        return cmocka_run_group_tests(tests, setup, teardown);
}
