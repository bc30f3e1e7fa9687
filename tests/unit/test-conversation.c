/* SPDX-License-Identifier: MIT */
/*
 * test-conversation.c — the conversation's state machine alone, with the
 * demo store's snapshot and a fake world (stock, orders): what the
 * multi-turn integration cases cannot reach — stock that goes while the
 * customer reads the summary, a stored state that does not read back,
 * every allocation failing in turn.
 */
#include "test-helpers.h"

#include "conversation.h"
#include "nlu.h"
#include "snapshot.h"
#include "strutil.h"

static Snapshot *snap;

typedef struct World {
        int64_t calabresa_left; /* -1: the catalog's */
        ConvOrder order; /* the customer's one order, when id[0] */
        const char *owner;
        unsigned find_calls;
} World;

static int64_t world_stock(void *userdata, const char *sku) {
        World *w = userdata;
        return streq(sku, "pz-calabresa") ? w->calabresa_left : -1;
}

static int world_find(void *userdata, const char *customer, const char *id, ConvOrder *ret) {
        World *w = userdata;

        w->find_calls++;
        if (!w->order.id[0] || !streq(customer, w->owner) || (id && !streq(id, w->order.id)))
                return 0;
        *ret = w->order;
        return 1;
}

static int setup(void **state) {
        Diags d = {};

        alloc_init();
        if (snapshot_load(TEST_SRCDIR "/etc/deliveryd.conf", NULL, &snap, &d) < 0) {
                for (size_t i = 0; i < d.n; i++)
                        print_error("%s\n", d.lines[i]);
                diags_clear(&d);
                return -1;
        }
        return tmpdir_setup(state);
}

static int teardown(void **state) {
        snap = snapshot_unref(snap);
        return tmpdir_teardown(state);
}

/* One turn of text from customer; the replies joined by "|". */
static char *say(World *w, ConvState *s, const char *customer, const char *text, uint64_t now, ConvActions *a,
                 bool opted_out) {
        ConvEnv env = {
                .snapshot = snap, .now_usec = now, .stock = world_stock, .find_order = world_find, .userdata = w
        };
        _cleanup_(nlu_result_freep) NluResult *r = NULL;

        assert_int_equal(nlu_parse(snap, text, strlen(text), &r), 0);
        ConvInput in = { .customer = customer, .nlu = r, .text = text, .opted_out = opted_out };
        *a = (ConvActions){};
        assert_int_equal(conversation_turn(&env, s, &in, a), 0);
        return a->replies ? strv_join(a->replies, "|") : mem_strdup("");
}

static void test_sold_out_while_reading_the_summary(void **state _unused_) {
        World w = { .calabresa_left = -1 };
        _cleanup_(conv_state_freep) ConvState *s = conv_state_new(NLU_LANG_PT);
        ConvActions a;
        char *t;

        t = say(&w, s, "+5511987654321", "2 calabresas e 1 coca na Rua Augusta 1500, pix", 1, &a, false);
        assert_non_null(strstr(t, "Total: R$ 124,80"));
        assert_int_equal(s->phase, CONV_AWAIT_CONFIRM);
        free(t);
        conv_actions_done(&a);

        w.calabresa_left = 1; /* someone else took the rest */
        t = say(&w, s, "+5511987654321", "sim", 2, &a, false);
        assert_null(a.create);
        assert_non_null(strstr(t, "Pizza Calabresa acabou"));
        assert_non_null(strstr(t, "1x Coca-Cola 2L R$ 14,00"));
        assert_null(strstr(t, "Calabresa R$"));
        assert_int_equal(s->phase, CONV_AWAIT_CONFIRM);
        free(t);
        conv_actions_done(&a);

        t = say(&w, s, "+5511987654321", "sim", 3, &a, false);
        assert_non_null(a.create);
        assert_int_equal(a.create->n_lines, 1);
        assert_int_equal(a.create->total_cents, 1400 + 500);
        assert_int_equal(a.create->fee_cents, 500);
        assert_string_equal(a.create->zone, "centro-sul");
        assert_int_equal(s->phase, CONV_IDLE);
        assert_int_equal(s->n_items, 0);
        free(t);
        conv_actions_done(&a);
}

static void test_orders_of_others_are_unknown(void **state _unused_) {
        World w = { .calabresa_left = -1,
                    .order = { .id = "7KQ2XM", .status = "PREPARING" },
                    .owner = "+5511900000001" };
        _cleanup_(conv_state_freep) ConvState *s = conv_state_new(NLU_LANG_PT);
        ConvActions a;
        char *t;

        t = say(&w, s, "+5511987654321", "status do pedido #7KQ2XM", 1, &a, false);
        assert_non_null(strstr(t, "Não encontramos o pedido #7KQ2XM"));
        free(t);
        conv_actions_done(&a);
        t = say(&w, s, "+5511900000001", "status do pedido #7kq2xm", 1, &a, false);
        assert_non_null(strstr(t, "Pedido #7KQ2XM: "));
        free(t);
        conv_actions_done(&a);
        t = say(&w, s, "+5511900000001", "cancelar", 1, &a, false);
        assert_int_equal(s->phase, CONV_AWAIT_CANCEL);
        free(t);
        conv_actions_done(&a);
        t = say(&w, s, "+5511900000001", "sim", 1, &a, false);
        assert_int_equal(a.request, CONV_REQUEST_CANCEL);
        assert_string_equal(a.request_order, "7KQ2XM");
        free(t);
        conv_actions_done(&a);
}

static void test_opted_out_hears_only_start(void **state _unused_) {
        World w = { .calabresa_left = -1 };
        _cleanup_(conv_state_freep) ConvState *s = conv_state_new(NLU_LANG_PT);
        ConvActions a;
        char *t;

        t = say(&w, s, "+5511987654321", "PARAR", 1, &a, false);
        assert_int_equal(a.opt, CONV_OPT_OUT);
        assert_true(a.opt_out_confirmation);
        free(t);
        conv_actions_done(&a);
        t = say(&w, s, "+5511987654321", "ajuda", 2, &a, true);
        assert_null(a.replies);
        assert_int_equal(a.opt, CONV_OPT_KEEP);
        free(t);
        conv_actions_done(&a);
        t = say(&w, s, "+5511987654321", "START", 3, &a, true);
        assert_int_equal(a.opt, CONV_OPT_IN);
        assert_non_null(a.replies);
        free(t);
        conv_actions_done(&a);
}

static void test_state_round_trip(void **state _unused_) {
        World w = { .calabresa_left = -1 };
        _cleanup_(conv_state_freep) ConvState *s = conv_state_new(NLU_LANG_EN);
        _cleanup_(conv_state_freep) ConvState *back = NULL;
        ConvActions a;
        char *t;

        t = say(&w, s, "+14255550182", "2 calabresa and a brownie to Rua das Flores 10, paying cash change for 200", 1,
                &a, false);
        free(t);
        conv_actions_done(&a);
        assert_int_equal(s->phase, CONV_AWAIT_NEIGHBOURHOOD);
        json_t *j = conv_state_to_json(s);
        assert_non_null(j);
        assert_int_equal(conv_state_from_json(j, &back), 0);
        json_t *again = conv_state_to_json(back);
        assert_true(json_equal(j, again));
        assert_int_equal(back->change_for_cents, 20000);
        assert_int_equal(back->payment, NLU_PAYMENT_CASH);
        assert_int_equal(back->n_items, 2);
        json_decref(again);
        json_decref(j);

        static const char *const bad[] = {
                "{}",
                "{\"phase\": \"nap\", \"lang\": \"pt\", \"items\": []}",
                "{\"phase\": \"idle\", \"lang\": \"fr\", \"items\": []}",
                "{\"phase\": \"idle\", \"lang\": \"pt\", \"items\": [{\"sku\": \"x\", \"qty\": 0}]}",
                "{\"phase\": \"idle\", \"lang\": \"pt\", \"items\": [], \"payment\": \"gold\"}",
                "{\"phase\": \"idle\", \"lang\": \"pt\", \"items\": [], \"order_id\": \"TOOLONG1\"}",
                "{\"phase\": \"idle\", \"lang\": \"pt\", \"items\": {}}",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                json_t *b = json_loads(bad[i], 0, NULL);
                ConvState *x = NULL;
                assert_non_null(b);
                if (conv_state_from_json(b, &x) != -EINVAL)
                        fail_msg("accepted %s", bad[i]);
                json_decref(b);
        }
}

static const char *const oom_texts[] = {
        "2 calabresas e 1 coca", "Rua das Flores 10", "Moema", "pix", "na verdade 3", "sim", "cardapio", "PARAR"
};
static NluResult *oom_results[ELEMENTSOF(oom_texts)];

/* A whole order, every allocation of which may fail. */
static int attempt_turns(void *userdata _unused_) {
        World w = { .calabresa_left = -1 };
        ConvEnv env = {
                .snapshot = snap, .now_usec = 1, .stock = world_stock, .find_order = world_find, .userdata = &w
        };
        ConvState *s = conv_state_new(NLU_LANG_PT);
        int r = s ? 0 : -ENOMEM;

        for (size_t i = 0; r == 0 && i < ELEMENTSOF(oom_texts); i++) {
                ConvInput in = { .customer = "+5511987654321", .nlu = oom_results[i], .text = oom_texts[i] };
                ConvActions a = {};
                r = conversation_turn(&env, s, &in, &a);
                conv_actions_done(&a);
        }
        if (r == 0) {
                json_t *j = conv_state_to_json(s);
                ConvState *back = NULL;
                r = j ? conv_state_from_json(j, &back) : -ENOMEM;
                json_decref(j);
                conv_state_free(back);
        }
        conv_state_free(s);
        return r;
}

static void test_oom(void **state _unused_) {
        for (size_t i = 0; i < ELEMENTSOF(oom_texts); i++)
                assert_int_equal(nlu_parse(snap, oom_texts[i], strlen(oom_texts[i]), &oom_results[i]), 0);
        assert_true(oom_loop(attempt_turns, NULL, 0) > 50);
        for (size_t i = 0; i < ELEMENTSOF(oom_texts); i++)
                oom_results[i] = nlu_result_free(oom_results[i]);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_sold_out_while_reading_the_summary),
                cmocka_unit_test(test_orders_of_others_are_unknown),
                cmocka_unit_test(test_opted_out_hears_only_start),
                cmocka_unit_test(test_state_round_trip),
                cmocka_unit_test(test_oom),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
