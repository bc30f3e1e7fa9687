/* SPDX-License-Identifier: MIT */
/*
 * test-tracking.c — the tracking page from an order JSON: language,
 * local times, escaping, and nothing personal in it.
 */
#include "test-helpers.h"

#include <time.h>

#include "tracking.h"

static json_t *order(const char *lang, const char *status, const char *item_name) {
        json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:I,s:s,s:[{s:s,s:I,s:I,s:s}],"
                              "s:[{s:s,s:s,s:n},{s:s,s:s,s:n}]}",
                              "id", "7KQ2XM", "customer", "+5511987654321", "lang", lang, "status", status, "address",
                              "Rua Augusta 1500 apto 12", "zone_name", "Consolação e Bela Vista", "eta",
                              "2026-12-04T18:25:00Z", "total_cents", (json_int_t) 6490, "payment", "pix", "items",
                              "sku", "pz-calabresa", "qty", (json_int_t) 1, "unit_price_cents", (json_int_t) 5290,
                              "name", item_name, "history", "status", "CREATED", "at", "2026-12-04T18:00:00Z", "reason",
                              "status", "CONFIRMED", "at", "2026-12-04T18:01:00Z", "reason");
        assert_non_null(o);
        return o;
}

static void test_pt(void **state _unused_) {
        json_t *o = order("pt", "CONFIRMED", "Pizza Calabresa");
        char *html = NULL;

        assert_int_equal(tracking_page_html(o, "Pizzaria Bella Napoli", &html), 0);
        assert_non_null(strstr(html, "<html lang=\"pt-BR\">"));
        assert_non_null(strstr(html, "<meta http-equiv=\"refresh\" content=\"60\">"));
        assert_non_null(strstr(html, "Pedido #7KQ2XM"));
        assert_non_null(strstr(html, "<p class=\"status\">Confirmado</p>"));
        /* São Paulo is UTC-3 (no summer time since 2019). */
        assert_non_null(strstr(html, "Previsão de entrega: <strong>04/12 15:25</strong>"));
        assert_non_null(strstr(html, "<li><time>04/12 15:00</time> Recebido</li>"));
        assert_non_null(strstr(html, "<li><time>04/12 15:01</time> Confirmado</li>"));
        assert_non_null(strstr(html, "Entrega em: Consolação e Bela Vista"));
        assert_non_null(strstr(html, "1 × Pizza Calabresa"));
        assert_non_null(strstr(html, "R$&nbsp;64,90"));
        /* Nothing personal: no phone, no street. */
        assert_null(strstr(html, "5511987654321"));
        assert_null(strstr(html, "Augusta"));
        free(html);
        json_decref(o);
}

static void test_en_final_no_eta(void **state _unused_) {
        json_t *o = order("en", "DELIVERED", "Calabresa (pepperoni) pizza");
        char *html = NULL;

        assert_int_equal(tracking_page_html(o, "Pizzaria Bella Napoli", &html), 0);
        assert_non_null(strstr(html, "<html lang=\"en\">"));
        assert_non_null(strstr(html, "Order #7KQ2XM"));
        assert_non_null(strstr(html, "<p class=\"status\">Delivered</p>"));
        assert_null(strstr(html, "Expected delivery")); /* delivered: no ETA */
        assert_non_null(strstr(html, "<li><time>Dec 04, 15:00</time> Received</li>"));
        assert_non_null(strstr(html, "R$64.90"));
        free(html);
        json_decref(o);
}

static void test_escaped(void **state _unused_) {
        json_t *o = order("pt", "CREATED", "<script>alert('x')</script> & \"co\"");
        char *html = NULL, *e;

        assert_int_equal(tracking_page_html(o, "Bar <b>&</b>", &html), 0);
        assert_null(strstr(html, "<script>"));
        assert_non_null(strstr(html, "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;co&quot;"));
        assert_non_null(strstr(html, "Bar &lt;b&gt;&amp;&lt;/b&gt;"));
        free(html);
        json_decref(o);
        e = tracking_html_escape("a<b>'\"&");
        assert_string_equal(e, "a&lt;b&gt;&#39;&quot;&amp;");
        free(e);
        assert_int_equal(tracking_page_html(json_object_get(NULL, "x"), "S", &html), -EINVAL);
}

static void test_headers(void **state _unused_) {
        bool csp = false, referrer = false;

        for (const char *const *h = tracking_page_headers; *h; h += 2) {
                if (streq(h[0], "Content-Security-Policy"))
                        csp = streq(h[1], "default-src 'none'; style-src 'unsafe-inline'");
                if (streq(h[0], "Referrer-Policy"))
                        referrer = streq(h[1], "no-referrer");
        }
        assert_true(csp);
        assert_true(referrer);
}

static int oom_attempt(void *userdata) {
        char *html = NULL;
        int r = tracking_page_html(userdata, "Pizzaria", &html);
        free(html);
        return r;
}

static void test_oom(void **state _unused_) {
        json_t *o = order("pt", "READY", "Pizza");
        assert_true(oom_loop(oom_attempt, o, 0) > 1);
        json_decref(o);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_pt),      cmocka_unit_test(test_en_final_no_eta),
                cmocka_unit_test(test_escaped), cmocka_unit_test(test_headers),
                cmocka_unit_test(test_oom),
        };
        setenv("TZ", "America/Sao_Paulo", 1);
        tzset();
        alloc_init();
        return cmocka_run_group_tests(tests, NULL, NULL);
}
