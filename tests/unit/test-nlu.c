/* SPDX-License-Identifier: MIT */
/*
 * test-nlu.c — the rules backend with the demo store's catalog, zones and
 * etc/nlu/intents.conf: normalisation, items, addresses, payment, order
 * ids and the JSON form, one row per case; the labelled messages of the
 * shared dev set (TEST_NLU) and of tests/data/nlu/extra.jsonl, with the
 * accuracy of every field printed; broken rule files with their exact
 * diagnostics; allocation failure in loading and parsing.
 */
#include "test-helpers.h"

#include <jansson.h>

#include "catalog.h"
#include "nlu-client.h"
#include "nlu-rules.h"
#include "snapshot.h"
#include "nlu.h"
#include "normalize.h"

#define DEMO_CATALOG TEST_SRCDIR "/etc/catalog.conf"
#define DEMO_ZONES TEST_SRCDIR "/etc/zones.conf"
#define DEMO_RULES TEST_SRCDIR "/etc/nlu/intents.conf"
#define EXTRA_SET TEST_SRCDIR "/tests/data/nlu/extra.jsonl"
#define MAX_INPUT 4096

static Catalog *catalog;
static NluRules *rules;
static bool have_dev_set;

static int setup(void **state) {
        Diags d = {};

        tmpdir_setup(state);
        alloc_init();
        if (catalog_load(DEMO_CATALOG, DEMO_ZONES, &catalog, &d) < 0 ||
            nlu_rules_load(DEMO_RULES, catalog, &rules, &d) < 0) {
                for (size_t i = 0; i < d.n; i++)
                        print_error("%s\n", d.lines[i]);
                diags_clear(&d);
                return -1;
        }
        return 0;
}

static int teardown(void **state) {
        rules = nlu_rules_free(rules);
        catalog = catalog_free(catalog);
        return tmpdir_teardown(state);
}

static NluResult *parse(const char *text) {
        NluResult *res = NULL;

        assert_int_equal(nlu_rules_parse(rules, text, strlen(text), MAX_INPUT, &res), 0);
        assert_non_null(res);
        return res;
}

/* ---- normalisation ------------------------------------------------------ */

static void test_normalize(void **state _unused_) {
        static const struct {
                const char *in;
                size_t len; /* 0: strlen */
                const char *want;
        } plain[] = {
                { "Olá, TUDO BEM?", 0, "ola , tudo bem" },
                { "simmmm!!!", 0, "sim" },
                { "nããããão", 0, "nao" },
                { "coffee pizza", 0, "coffee pizza" }, /* real double letters stay */
                { "Açaí com Guaraná e Pão", 0, "acai com guarana e pao" },
                { "ÆSIR Œuvre Straße Łódź", 0, "aesir oeuvre strasse lodz" },
                { "cafe\xcc\x81 decomposto", 0, "cafe decomposto" },
                { "x-salada e coca-cola", 0, "x salada e coca cola" },
                { "I'd like it, don’t you", 0, "id like it , dont you" },
                { "#9XK4MB # solto", 0, "#9xk4mb solto" },
                { "CEP 01310-100, Nº 5, n° 6", 0, "cep 01310-100 , n\xc2\xba 5 , n\xc2\xba 6" },
                { "R$ 100,00 ou 1.500", 0, "r 100,00 ou 1.500" },
                { "2x calabresa 3×coca", 0, "2x calabresa 3xcoca" },
                { "pizza\n\nmarguerita!\r\nok", 0, "pizza . marguerita . ok" },
                { "… ?! ,", 0, "" },
                { "bad \xff\xfe bytes \xc3", 0, "bad bytes" },
                { "a\0b", 3, "a b" },
                { "😀😀 quero\tpizza", 0, "quero pizza" },
                { "‘quero’ – já", 0, "quero ja" },
                { "onde? está? meu pedido???", 0, "onde ? esta ? meu pedido" },
        };
        static const struct {
                const char *in, *want;
        } with_rules[] = {
                { "vc tb quer?", "voce tambem quer" },
                { "end. R. Augusta", "endereco rua augusta" },
                { "pfv manda nº 12", "por favor manda numero 12" },
                { "p/ mim e c/ gelo", "para mim e com gelo" },
                { "the end", "the end" }, /* "end." only with its dot */
                { "wheres my food", "where is my food" },
                { "Sim\n> quoted line\nmais", "sim . mais" },
                { "Sim\n-- \nJoão\n(11) 99999", "sim" },
                { "Yes\n\nOn Thu, Dec 3, 2026 at 8:10 PM Bella <a@b.example> wrote:\n> Your order\n", "yes" },
                { "ok\nEnviado do meu iPhone", "ok" },
        };

        for (size_t i = 0; i < ELEMENTSOF(plain); i++) {
                _cleanup_(normalize_text_freep) NormText *nt = NULL;
                size_t len = plain[i].len ?: strlen(plain[i].in);
                assert_int_equal(normalize_text(plain[i].in, len, NULL, &nt), 0);
                if (!streq(nt->joined, plain[i].want))
                        fail_msg("row %zu: '%s' gave '%s', want '%s'", i, plain[i].in, nt->joined, plain[i].want);
                for (size_t t = 0; t < nt->n_tokens; t++) {
                        assert_true(nt->tokens[t].start < nt->tokens[t].end);
                        assert_true(nt->tokens[t].end <= len);
                }
        }
        for (size_t i = 0; i < ELEMENTSOF(with_rules); i++) {
                _cleanup_free_ char *got = NULL;
                assert_int_equal(nlu_rules_normalize(rules, with_rules[i].in, strlen(with_rules[i].in), &got), 0);
                if (!streq(got, with_rules[i].want))
                        fail_msg("row %zu: '%s' gave '%s', want '%s'", i, with_rules[i].in, got, with_rules[i].want);
        }
}

static void test_measures(void **state _unused_) {
        static const struct {
                const char *a, *b;
                unsigned max, want;
        } dist[] = {
                { "calabresa", "calabresa", 2, 0 },
                { "calabreza", "calabresa", 2, 1 },
                { "calbaresa", "calabresa", 2, 1 }, /* a swap is one edit */
                { "margerita", "margherita", 2, 1 },
                { "mrgherita", "margherita", 1, 1 },
                { "pizza", "brownie", 2, 3 },
                { "", "abc", 5, 3 },
                { "abc", "", 1, 2 },
        };
        static const struct {
                const char *in, *want;
        } clean[] = {
                { "  Rua \t Augusta\n 1500 ", "Rua Augusta 1500" },
                { "Rua \xff\xc3 São\x01 Paulo", "Rua São Paulo" },
                { "", "" },
        };

        for (size_t i = 0; i < ELEMENTSOF(dist); i++) {
                unsigned d =
                        normalize_distance(dist[i].a, strlen(dist[i].a), dist[i].b, strlen(dist[i].b), dist[i].max);
                if (d != dist[i].want)
                        fail_msg("distance row %zu: %u, want %u", i, d, dist[i].want);
        }
        for (size_t i = 0; i < ELEMENTSOF(clean); i++) {
                _cleanup_free_ char *s = normalize_clean_span(clean[i].in, strlen(clean[i].in));
                assert_non_null(s);
                assert_string_equal(s, clean[i].want);
                assert_true(normalize_utf8_valid(s, strlen(s)));
        }
        _cleanup_free_ char *sq = normalize_squeeze("siim noo pizza 11");
        assert_string_equal(sq, "sim no piza 11");
        _cleanup_free_ char *fp = normalize_fold_pattern("\\bendereço\\D+É\\W");
        assert_string_equal(fp, "\\bendereco\\D+e\\W");
        assert_false(normalize_utf8_valid("\xc0\xaf", 2)); /* overlong */
        assert_false(normalize_utf8_valid("\xed\xa0\x80", 3)); /* surrogate */
}

/* ---- items, address, payment, order id ----------------------------------- */

static char *items_string(const NluResult *r) {
        char buf[512] = "";

        for (size_t i = 0; i < r->n_items; i++) {
                size_t n = strlen(buf);
                snprintf(buf + n, sizeof buf - n, "%s%s:%u", i ? " " : "", r->items[i].sku, r->items[i].qty);
        }
        return strdup(buf);
}

static void test_items(void **state _unused_) {
        static const struct {
                const char *text, *want;
        } rows[] = {
                { "2 calabresa e 1 coca", "pz-calabresa:2 bebida-coca-2l:1" },
                { "duas calabresas", "pz-calabresa:2" },
                { "uma pizza de calabreza", "pz-calabresa:1" },
                { "3 pizzas grandes de portugesa", "pz-portuguesa:3" },
                { "marguerita", "pz-margherita:1" },
                { "1 pizza margherita e 2 guaraná", "pz-margherita:1 bebida-guarana-2l:2" },
                { "4 queijos", "pz-quatro-queijos:1" },
                { "2 pizzas 4 queijos", "pz-quatro-queijos:2" },
                { "quatro pizzas de quatro queijos", "pz-quatro-queijos:4" },
                { "meia dúzia de brownies", "sobremesa-brownie:6" },
                { "half a dozen brownies", "sobremesa-brownie:6" },
                { "2x x-burguer, 1x batata", "lanche-x-burguer:2 porcao-batata:1" },
                { "calabresa x2 e coca x 3", "pz-calabresa:2 bebida-coca-2l:3" },
                { "2 x coca", "bebida-coca-2l:2" },
                { "a cheeseburger with salad and two cheeseburgers", "lanche-x-salada:1 lanche-x-burguer:2" },
                { "an orange juice and a couple of cokes", "bebida-suco-laranja:1 bebida-coca-2l:2" },
                { "frango com catupiry", "pz-frango-catupiry:1" }, /* sold out, still recognised */
                { "10 cocas 2l", "bebida-coca-2l:10" },
                { "2 coca e mais 1 coca", "bebida-coca-2l:3" },
                { "pra rua augusta 1500 2 calabresas", "pz-calabresa:2" },
                { "an acai to 12 Rua Harmonia", "sobremesa-acai:1" },
                { "batata frita (porção)", "porcao-batata:1" },
                { "as pizzas chegaram frias", "" },
                { "fui a rua frei caneca", "" },
                { "150 calabresas", "pz-calabresa:1" }, /* not a quantity */
        };

        for (size_t i = 0; i < ELEMENTSOF(rows); i++) {
                _cleanup_(nlu_result_freep) NluResult *r = parse(rows[i].text);
                _cleanup_free_ char *got = items_string(r);
                if (!streq(got, rows[i].want))
                        fail_msg("row %zu: '%s' gave '%s', want '%s'", i, rows[i].text, got, rows[i].want);
        }
}

static void test_fields(void **state _unused_) {
        static const struct {
                const char *text;
                const char *address; /* NULL: none */
                NluPayment payment;
                int64_t change;
                const char *order_id;
        } rows[] = {
                { "pra Rua Teodoro Sampaio 800, pago em dinheiro", "Rua Teodoro Sampaio 800", NLU_PAYMENT_CASH, 0, "" },
                { "entrega na R. Oscar Freire, 300 - apto 12, Jardins", "R. Oscar Freire, 300 - apto 12, Jardins",
                  _NLU_PAYMENT_INVALID, 0, "" },
                { "Av. Paulista nº 1000 bloco B, CEP 01310-100 ok", "Av. Paulista nº 1000 bloco B, CEP 01310-100",
                  _NLU_PAYMENT_INVALID, 0, "" },
                { "to 12 Rua Harmonia?", "12 Rua Harmonia", _NLU_PAYMENT_INVALID, 0, "" },
                { "I'm at 200 Rua Augusta apt 5", "200 Rua Augusta apt 5", _NLU_PAYMENT_INVALID, 0, "" },
                { "Rua Augusta, apto 12, Consolação", "Rua Augusta, apto 12, Consolação", _NLU_PAYMENT_INVALID, 0, "" },
                { "1500 Augusta Street, card", "1500 Augusta Street", NLU_PAYMENT_CARD, 0, "" },
                { "na augusta 1500 por favor", "augusta 1500", _NLU_PAYMENT_INVALID, 0, "" },
                { "Rua Treze de Maio 80", "Rua Treze de Maio 80", _NLU_PAYMENT_INVALID, 0, "" },
                { "Rua 25 de Março 300", "Rua 25 de Março 300", _NLU_PAYMENT_INVALID, 0, "" },
                { "rua augusta por favor", "rua augusta", _NLU_PAYMENT_INVALID, 0, "" },
                { "qual rua?", NULL, _NLU_PAYMENT_INVALID, 0, "" },
                { "troco pra R$ 100,00", NULL, NLU_PAYMENT_CASH, 10000, "" },
                { "dinheiro, troco p/ 50", NULL, NLU_PAYMENT_CASH, 5000, "" },
                { "change for 20.50", NULL, NLU_PAYMENT_CASH, 2050, "" },
                { "cartão de crédito", NULL, NLU_PAYMENT_CARD, 0, "" },
                { "pix ou cartão", NULL, NLU_PAYMENT_PIX, 0, "" },
                { "o cardápio", NULL, _NLU_PAYMENT_INVALID, 0, "" },
                { "status of order #9xk4mb?", NULL, _NLU_PAYMENT_INVALID, 0, "9XK4MB" },
                { "pedido 9XK4MB", NULL, _NLU_PAYMENT_INVALID, 0, "9XK4MB" },
                { "cade o 9xk4mb", NULL, _NLU_PAYMENT_INVALID, 0, "9XK4MB" },
                { "#abcdef", NULL, _NLU_PAYMENT_INVALID, 0, "ABCDEF" },
                { "pedido 123456", NULL, _NLU_PAYMENT_INVALID, 0, "123456" },
                { "my order number is 123456", NULL, _NLU_PAYMENT_INVALID, 0, "123456" },
                { "order xkqmbz", NULL, _NLU_PAYMENT_INVALID, 0, "XKQMBZ" },
                { "order 1lo0ab", NULL, _NLU_PAYMENT_INVALID, 0, "1100AB" }, /* I, L → 1; O → 0 */
                { "meu pedido amanha", NULL, _NLU_PAYMENT_INVALID, 0, "" },
                { "order placed", NULL, _NLU_PAYMENT_INVALID, 0, "" },
                { "pedido 123456 e pedido", NULL, _NLU_PAYMENT_INVALID, 0, "123456" },
                { "ligue 123456", NULL, _NLU_PAYMENT_INVALID, 0, "" },
                { "#9xu4mb", NULL, _NLU_PAYMENT_INVALID, 0, "" }, /* U is not Crockford */
        };

        for (size_t i = 0; i < ELEMENTSOF(rows); i++) {
                _cleanup_(nlu_result_freep) NluResult *r = parse(rows[i].text);
                if (!streq_ptr(r->address, rows[i].address) || r->payment != rows[i].payment ||
                    r->change_for_cents != rows[i].change || !streq(r->order_id, rows[i].order_id))
                        fail_msg("row %zu: '%s' gave address '%s', payment %d, change %lld, id '%s'", i, rows[i].text,
                                 strempty(r->address), r->payment, (long long) r->change_for_cents, r->order_id);
        }
}

static void test_json(void **state _unused_) {
        static const struct {
                const char *text, *json;
        } rows[] = {
                { "quero 2 calabresa e 1 coca pra Rua Augusta 1500, pago no pix",
                  "{\"intent\": \"place_order\", \"lang\": \"pt\", \"items\": [{\"sku\": \"pz-calabresa\", \"qty\": "
                  "2}, "
                  "{\"sku\": \"bebida-coca-2l\", \"qty\": 1}], \"payment\": \"pix\", \"address\": \"Rua Augusta "
                  "1500\", \"order_id\": null}" },
                { "where's my order #7kq2xm?",
                  "{\"intent\": \"order_status\", \"lang\": \"en\", \"items\": [], \"payment\": null, \"address\": "
                  "null, \"order_id\": \"7KQ2XM\"}" },
                { "",
                  "{\"intent\": \"other\", \"lang\": \"pt\", \"items\": [], \"payment\": null, \"address\": null, "
                  "\"order_id\": null}" },
                { "Rua \"São\" \\ Bento 7",
                  "{\"intent\": \"other\", \"lang\": \"pt\", \"items\": [], \"payment\": null, \"address\": \"Rua "
                  "\\\"São\\\" \\\\ Bento 7\", \"order_id\": null}" },
        };

        for (size_t i = 0; i < ELEMENTSOF(rows); i++) {
                _cleanup_(nlu_result_freep) NluResult *r = parse(rows[i].text);
                _cleanup_free_ char *json = nlu_result_to_json(r);
                assert_non_null(json);
                if (!streq(json, rows[i].json))
                        fail_msg("row %zu: '%s' gave\n%s\nwant\n%s", i, rows[i].text, json, rows[i].json);
        }
}

/* The input is cut at max_input bytes, on a character boundary. */
static void test_max_input(void **state _unused_) {
        char text[8192];
        NluResult *r = NULL;

        memset(text, ' ', sizeof text);
        memcpy(text + 5000, "quero 2 calabresas", 18);
        assert_int_equal(nlu_rules_parse(rules, text, sizeof text, MAX_INPUT, &r), 0);
        assert_int_equal(r->n_items, 0);
        r = nlu_result_free(r);
        assert_int_equal(nlu_rules_parse(rules, text, sizeof text, sizeof text, &r), 0);
        assert_int_equal(r->n_items, 1);
        r = nlu_result_free(r);

        /* "Rua é é é …": the cut falls inside a two-byte character */
        size_t n = 0;
        n += (size_t) snprintf(text, sizeof text, "Rua");
        while (n + 3 < sizeof text)
                n += (size_t) snprintf(text + n, sizeof text - n, " \xc3\xa9");
        assert_int_equal(nlu_rules_parse(rules, text, n, 301, &r), 0);
        _cleanup_free_ char *json = nlu_result_to_json(r);
        assert_non_null(json);
        assert_true(normalize_utf8_valid(json, strlen(json)));
        nlu_result_free(r);
}

/* ---- labelled sets ------------------------------------------------------ */

enum { F_INTENT, F_LANG, F_ITEMS, F_PAYMENT, F_ADDRESS, F_ORDER_ID, _F_MAX };
static const char *const field_names[_F_MAX] = { "intent", "lang", "items", "payment", "address", "order_id" };

typedef struct Score {
        unsigned n[_F_MAX], ok[_F_MAX];
} Score;

static bool contains_normalized(const char *haystack, const char *needle) {
        _cleanup_(normalize_text_freep) NormText *h = NULL, *n = NULL;

        assert_int_equal(normalize_text(haystack, strlen(haystack), NULL, &h), 0);
        assert_int_equal(normalize_text(needle, strlen(needle), NULL, &n), 0);
        return strstr(h->joined, n->joined) != NULL;
}

static bool items_equal(const NluResult *r, json_t *want) {
        size_t i;
        json_t *w;

        if (json_array_size(want) != r->n_items)
                return false;
        json_array_foreach (want, i, w) {
                bool found = false;
                for (size_t k = 0; k < r->n_items && !found; k++)
                        found = streq(r->items[k].sku, json_string_value(json_object_get(w, "sku"))) &&
                                r->items[k].qty == json_integer_value(json_object_get(w, "qty"));
                if (!found)
                        return false;
        }
        return true;
}

static void check(Score *s, int field, bool ok, bool *all) {
        s->n[field]++;
        s->ok[field] += ok;
        *all = *all && ok;
}

/* What the inbox's hook decides from nlu_rules_parse_intent() (STOP and
 * START before the acknowledgement) is what the full parse says. */
static void check_intent_only(const char *text, const NluResult *full) {
        _cleanup_(nlu_result_freep) NluResult *r = NULL;

        assert_int_equal(nlu_rules_parse_intent(rules, text, strlen(text), MAX_INPUT, &r), 0);
        if (r->signals != full->signals || (r->intent != NLU_INTENT_OTHER && r->intent != full->intent) ||
            (full->intent == NLU_INTENT_OPT_OUT) != (r->intent == NLU_INTENT_OPT_OUT) || r->n_items > 0 || r->address)
                fail_msg("'%s': intent only %s %#x, full %s %#x", text, nlu_intent_to_string(r->intent), r->signals,
                         nlu_intent_to_string(full->intent), full->signals);
}

/* Parse every labelled line of path and count, per field, how many are
 * right; the misses are printed. */
static void score_file(const char *path, Score *s) {
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        char line[8192];
        unsigned lineno = 0;

        if (!f)
                fail_msg("cannot open %s: %m", path);
        *s = (Score){};
        while (fgets(line, sizeof line, f)) {
                json_error_t err;
                json_t *c;
                const char *text;
                bool all = true;

                lineno++;
                if (!line[strspn(line, " \t\r\n")])
                        continue;
                c = json_loads(line, 0, &err);
                if (!c)
                        fail_msg("%s:%u: %s", path, lineno, err.text);
                text = json_string_value(json_object_get(c, "text"));
                assert_non_null(text);
                _cleanup_(nlu_result_freep) NluResult *r = parse(text);
                check_intent_only(text, r);

                check(s, F_INTENT,
                      streq(nlu_intent_to_string(r->intent), json_string_value(json_object_get(c, "intent"))), &all);
                check(s, F_LANG, streq(nlu_lang_to_string(r->lang), json_string_value(json_object_get(c, "lang"))),
                      &all);
                if (json_object_get(c, "items"))
                        check(s, F_ITEMS, items_equal(r, json_object_get(c, "items")), &all);
                if (json_object_get(c, "payment"))
                        check(s, F_PAYMENT,
                              streq_ptr(nlu_payment_to_string(r->payment),
                                        json_string_value(json_object_get(c, "payment"))),
                              &all);
                json_t *has = json_object_get(c, "address_has"), *h;
                if (has) {
                        bool ok = r->address != NULL;
                        size_t i;
                        json_array_foreach (has, i, h)
                                ok = ok && contains_normalized(r->address, json_string_value(h));
                        check(s, F_ADDRESS, ok, &all);
                }
                if (json_object_get(c, "order_id"))
                        check(s, F_ORDER_ID, streq(r->order_id, json_string_value(json_object_get(c, "order_id"))),
                              &all);
                if (!all) {
                        _cleanup_free_ char *got = nlu_result_to_json(r);
                        print_message("%s:%u: miss: %s\n    got %s\n", path, lineno, line, got);
                }
                json_decref(c);
        }
}

static void report_and_check(const char *name, const Score *s, double min_intent, double min_field) {
        char buf[512] = "";

        for (int i = 0; i < _F_MAX; i++) {
                size_t n = strlen(buf);
                if (s->n[i] > 0)
                        snprintf(buf + n, sizeof buf - n, "%s%s %u/%u (%.1f%%)", n ? ", " : "", field_names[i],
                                 s->ok[i], s->n[i], 100.0 * s->ok[i] / s->n[i]);
        }
        print_message("%s: %s\n", name, buf);
        assert_true(s->n[F_INTENT] > 0);
        for (int i = 0; i < _F_MAX; i++)
                if (s->n[i] > 0 && 100.0 * s->ok[i] / s->n[i] < (i == F_INTENT ? min_intent : min_field))
                        fail_msg("%s: %s accuracy below %.0f%%", name, field_names[i],
                                 i == F_INTENT ? min_intent : min_field);
}

static void test_dev_set(void **state _unused_) {
        Score s;

        if (!have_dev_set)
                skip();
        score_file(TEST_NLU, &s);
        report_and_check("dev.jsonl", &s, 95.0, 90.0);
}

static void test_extra_set(void **state _unused_) {
        Score s;

        score_file(EXTRA_SET, &s);
        assert_true(s.n[F_INTENT] >= 40);
        report_and_check("extra.jsonl", &s, 95.0, 90.0);
}

/* ---- the rules file ------------------------------------------------------ */

/* Load text as D/r.conf (without a catalog); the diagnostics joined by '|'. */
static int load_rules(const char *text, char **ret_diags) {
        char path[4096], buf[8192] = "";
        NluRules *r = NULL;
        Diags d = {};
        int k;

        write_file(test_dir, "r.conf", text);
        snprintf(path, sizeof path, "%s/r.conf", test_dir);
        k = nlu_rules_load(path, NULL, &r, &d);
        for (size_t i = 0; i < d.n; i++) {
                const char *l = d.lines[i];
                if (strncmp(l, test_dir, strlen(test_dir)) == 0) {
                        strncat(buf, "D", sizeof buf - strlen(buf) - 1);
                        l += strlen(test_dir);
                }
                strncat(buf, l, sizeof buf - strlen(buf) - 1);
                if (i + 1 < d.n)
                        strncat(buf, "|", sizeof buf - strlen(buf) - 1);
        }
        diags_clear(&d);
        assert_true((k == 0) == (r != NULL));
        nlu_rules_free(r);
        *ret_diags = strdup(buf);
        return k;
}

static void test_bad_rules(void **state _unused_) {
        static const struct {
                const char *text, *diags;
        } rows[] = {
                { "[intent help]\nen = (unclosed\n",
                  "D/r.conf:2: bad pattern '(unclosed': missing closing parenthesis at offset 9" },
                /* the offset is the one of the pattern as written, accents and all */
                { "[intent help]\npt = ajudá (\n",
                  "D/r.conf:2: bad pattern 'ajudá (': missing closing parenthesis at offset 8" },
                { "[strip]\nline = a{2,1}\n",
                  "D/r.conf:2: bad pattern 'a{2,1}': numbers out of order in {} quantifier at offset 5" },
                { "[intent help]\nen =\n", "D/r.conf:2: empty pattern" },
                { "[intent helps]\nen = x\n",
                  "D/r.conf:1: unknown intent 'helps' (one of: place_order, order_status, order_eta, change_address, "
                  "cancel_order, menu, confirm, deny, opt_out, help, human, other)" },
                { "[language fr]\nwords = le la\n", "D/r.conf:1: unknown language 'fr' (one of: pt, en)" },
                { "[payment bitcoin]\npattern = btc\n",
                  "D/r.conf:1: unknown payment method 'bitcoin' (one of: pix, card, cash)" },
                { "[intent help]\nfr = aide\n", "D/r.conf:2: unknown key 'fr' in section [intent help]" },
                { "[bogus]\nx = y\n", "D/r.conf:1: unknown section [bogus]" },
                { "[intent]\n", "D/r.conf:1: section [intent] needs a name: [intent NAME]" },
                { "[strip all]\n", "D/r.conf:1: section [strip] takes no name" },
                { "[intent help]\nen = help\n[intent help]\n", "D/r.conf:3: duplicate section [intent help]" },
                { "[abbreviations]\npor favor = pf\n", "D/r.conf:2: abbreviation 'por favor' is not one word" },
                { "[abbreviations]\nvc = voce\nVC = voces\n", "D/r.conf:3: duplicate abbreviation 'VC'" },
                { "[abbreviations]\nvc =\n", "D/r.conf:2: abbreviation 'vc' has an empty expansion" },
                { "[numbers]\nmeia = 0\n", "D/r.conf:2: number 'meia': invalid value '0' (1 to 99)" },
                { "[numbers]\nmil = 1000\n", "D/r.conf:2: number 'mil': invalid value '1000' (1 to 99)" },
                { "[payment cash]\nchange = troco \\d+\n",
                  "D/r.conf:2: pattern 'troco \\d+' needs a (group) around the amount" },
                { "[intent help]\njunk\n", "D/r.conf:2: expected 'key = value', got 'junk'" },
                { "en = help\n", "D/r.conf:1: assignment 'en' outside of any [section]" },
                /* every problem, in file order */
                { "[intent help]\nen = [\n[intent nope]\nen = x\n[address]\nbefore = rua\nbehind = x\n",
                  "D/r.conf:2: bad pattern '[': missing terminating ] for character class at offset 1|D/r.conf:3: "
                  "unknown intent 'nope' (one of: place_order, order_status, order_eta, change_address, "
                  "cancel_order, menu, confirm, deny, opt_out, help, human, other)|D/r.conf:7: unknown key 'behind' "
                  "in section [address]" },
        };

        for (size_t i = 0; i < ELEMENTSOF(rows); i++) {
                _cleanup_free_ char *d = NULL;
                int k = load_rules(rows[i].text, &d);
                if (!streq(d, rows[i].diags))
                        fail_msg("row %zu: got '%s', want '%s'", i, d, rows[i].diags);
                assert_int_equal(k, -EINVAL);
        }

        /* a good file without a catalog is only checked */
        _cleanup_free_ char *d = NULL;
        assert_int_equal(load_rules("[language en]\nwords = the\n[intent help]\nen = ^help$\n", &d), 0);
        assert_string_equal(d, "");

        NluRules *r = NULL;
        Diags diags = {};
        assert_int_equal(nlu_rules_load("/nonexistent/r.conf", NULL, &r, &diags), -EINVAL);
        assert_int_equal(diags.n, 1);
        assert_string_equal(diags.lines[0], "/nonexistent/r.conf: cannot read rules: No such file or directory");
        diags_clear(&diags);
}

/* An admin's rules decide: the order of the sections, unless, languages. */
static void test_custom_rules(void **state _unused_) {
        char path[4096];
        NluRules *r = NULL;
        NluResult *res = NULL;
        Diags d = {};

        write_file(test_dir, "c.conf",
                   "[language en]\nwords = the\n[language pt]\nwords = o\n"
                   "[intent deny]\nunless = ^no pix\npt = ^no\\b\n[intent confirm]\nany = ^(sim|yes)\n"
                   "[payment pix]\npattern = \\bpix\\b\n");
        snprintf(path, sizeof path, "%s/c.conf", test_dir);
        assert_int_equal(nlu_rules_load(path, catalog, &r, &d), 0);
        assert_int_equal(nlu_rules_n_intents(r), 2);

        assert_int_equal(nlu_rules_parse(r, "no", 2, MAX_INPUT, &res), 0);
        assert_int_equal(res->intent, NLU_INTENT_DENY);
        assert_int_equal(res->lang, NLU_LANG_PT); /* from the pattern's language */
        res = nlu_result_free(res);
        assert_int_equal(nlu_rules_parse(r, "no pix", 6, MAX_INPUT, &res), 0);
        assert_int_equal(res->intent, NLU_INTENT_OTHER);
        assert_int_equal(res->payment, NLU_PAYMENT_PIX);
        assert_int_equal(res->lang, NLU_LANG_EN); /* the first [language] is the default */
        res = nlu_result_free(res);
        assert_int_equal(nlu_rules_parse(r, "siiim", 5, MAX_INPUT, &res), 0);
        assert_int_equal(res->intent, NLU_INTENT_CONFIRM); /* the squeezed reading */
        res = nlu_result_free(res);
        assert_int_equal(nlu_rules_parse(r, "2 coca", 6, MAX_INPUT, &res), 0);
        assert_int_equal(res->intent, NLU_INTENT_PLACE_ORDER); /* products and no rule */
        nlu_result_free(res);
        nlu_rules_free(r);
}

/* ---- allocation failure ------------------------------------------------- */

static int load_demo(void *userdata _unused_) {
        NluRules *r = NULL;
        Diags d = {};
        int k = nlu_rules_load(DEMO_RULES, catalog, &r, &d);

        diags_clear(&d);
        nlu_rules_free(r);
        return k;
}

static int load_broken(void *userdata) {
        NluRules *r = NULL;
        Diags d = {};
        int k = nlu_rules_load(userdata, NULL, &r, &d);

        diags_clear(&d);
        nlu_rules_free(r);
        return k;
}

static int parse_some(void *userdata _unused_) {
        static const char *const texts[] = {
                "Boa noite, queria pedir duas calabresas pra Rua Teodoro Sampaio 800, pago em dinheiro, troco pra 100",
                "status of order #9xk4mb?",
                "I'd like a portuguese pizza and two cokes\n\nOn Thu, Dec 3 2026, Bella <a@b.example> wrote:\n> x",
                "siiim",
        };

        for (size_t i = 0; i < ELEMENTSOF(texts); i++) {
                NluResult *r = NULL;
                int k = nlu_rules_parse(rules, texts[i], strlen(texts[i]), MAX_INPUT, &r);
                if (k < 0)
                        return k;
                char *json = nlu_result_to_json(r);
                nlu_result_free(r);
                if (!json)
                        return -ENOMEM;
                free(json);
        }
        return 0;
}

static void test_signals(void **state _unused_) {
        static const struct {
                const char *text;
                unsigned signals, bare_qty;
        } rows[] = {
                { "START", 1u << NLU_SIGNAL_OPT_IN, 0 },
                { "Voltar", 1u << NLU_SIGNAL_OPT_IN, 0 },
                { "quero voltar a receber as mensagens", 1u << NLU_SIGNAL_OPT_IN, 0 },
                { "tira a coca", 1u << NLU_SIGNAL_REMOVE, 0 },
                { "remove the fries please", 1u << NLU_SIGNAL_REMOVE, 0 },
                { "na verdade 3", 1u << NLU_SIGNAL_REPLACE, 3 },
                { "na vdd tres", 0, 3 },
                { "actually make it two", 1u << NLU_SIGNAL_REPLACE, 2 },
                { "só 1 coca", 1u << NLU_SIGNAL_REPLACE, 0 },
                { "quero 2 calabresas", 0, 0 },
                { "sim", 0, 0 },
        };
        for (size_t i = 0; i < ELEMENTSOF(rows); i++) {
                NluResult *r = parse(rows[i].text);
                check_intent_only(rows[i].text, r);
                if (r->signals != rows[i].signals || r->bare_qty != rows[i].bare_qty)
                        fail_msg("'%s': signals %#x qty %u, want %#x %u", rows[i].text, r->signals, r->bare_qty,
                                 rows[i].signals, rows[i].bare_qty);
                nlu_result_free(r);
        }
        assert_string_equal(nlu_signal_to_string(NLU_SIGNAL_REPLACE), "replace");
        assert_int_equal(nlu_signal_from_string("opt_in"), NLU_SIGNAL_OPT_IN);
        assert_int_equal(nlu_signal_from_string("nope"), _NLU_SIGNAL_INVALID);
}

/* ---- the loop's client -------------------------------------------------- */

typedef struct Answers {
        char intents[4][32];
        unsigned n;
} Answers;

static void on_answer(void *userdata, NluResult *r) {
        Answers *a = userdata;

        assert_non_null(r);
        assert_true(a->n < ELEMENTSOF(a->intents));
        snprintf(a->intents[a->n++], sizeof a->intents[0], "%s", nlu_intent_to_string(r->intent));
        nlu_result_free(r);
}

static void test_client(void **state _unused_) {
        _cleanup_(snapshot_unrefp) Snapshot *s = NULL;
        Diags d = {};
        sd_event *e = NULL;
        NluClient *c = NULL;
        NluQuery *q = NULL;
        Answers a = {};

        assert_int_equal(snapshot_load(TEST_SRCDIR "/etc/deliveryd.conf", NULL, &s, &d), 0);
        assert_int_equal(sd_event_new(&e), 0);
        assert_int_equal(nlu_client_new(e, NULL, &c), 0);
        assert_int_equal(nlu_client_parse(c, s, "+5511999990000", "cardapio", 8, on_answer, &a, NULL), 0);
        assert_int_equal(nlu_client_parse(c, s, "+5511999990000", "STOP", 4, on_answer, &a, &q), 0);
        assert_int_equal(nlu_client_parse(c, s, "+5511999990001", "onde esta meu pedido", 20, on_answer, &a, NULL), 0);
        nlu_query_cancel(q);
        assert_int_equal(nlu_client_n_pending(c), 2);
        /* Never answered from inside the call. */
        assert_int_equal(a.n, 0);
        while (nlu_client_n_pending(c) > 0)
                assert_true(sd_event_run(e, USEC_PER_SEC) >= 0);
        assert_int_equal(a.n, 2);
        assert_string_equal(a.intents[0], "menu");
        assert_string_equal(a.intents[1], "order_status");
        /* Pending queries die with the client, unanswered. */
        assert_int_equal(nlu_client_parse(c, s, "+5511999990000", "oi", 2, on_answer, &a, NULL), 0);
        c = nlu_client_free(c);
        assert_int_equal(a.n, 2);
        sd_event_unref(e);
}

static void test_oom(void **state _unused_) {
        char path[4096];

        assert_true(oom_loop(load_demo, NULL, 0) > 1000);
        write_file(test_dir, "broken.conf", "[abbreviations]\nvc = voce\n[intent help]\nen = (\n[bogus]\n");
        snprintf(path, sizeof path, "%s/broken.conf", test_dir);
        assert_true(oom_loop(load_broken, path, -EINVAL) > 10);
        assert_true(oom_loop(parse_some, NULL, 0) > 50);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_normalize),    cmocka_unit_test(test_measures),  cmocka_unit_test(test_items),
                cmocka_unit_test(test_fields),       cmocka_unit_test(test_json),      cmocka_unit_test(test_max_input),
                cmocka_unit_test(test_dev_set),      cmocka_unit_test(test_extra_set), cmocka_unit_test(test_bad_rules),
                cmocka_unit_test(test_custom_rules), cmocka_unit_test(test_signals),   cmocka_unit_test(test_client),
                cmocka_unit_test(test_oom),
        };
        int r;

        /* The dev set lives beside the repository; a tree without it (a
         * release tarball) runs everything else and reports a skip. */
        have_dev_set = access(TEST_NLU, R_OK) == 0;
        if (!have_dev_set)
                print_message("%s not found: the dev set is not scored\n", TEST_NLU);
        r = cmocka_run_group_tests(tests, setup, teardown);
        return r != 0 || have_dev_set ? r : 77; /* automake: SKIP */
}
