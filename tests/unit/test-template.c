/* SPDX-License-Identifier: MIT */
/*
 * test-template.c — the reply templates: the repository's own (etc/templates)
 * load in both languages, every declared id has a file in each, and each
 * fits the SMS budget it is written for; rendering, one row per case;
 * every load error with its file:line; money; allocation failure.
 */
#include "test-helpers.h"

#include <stdint.h>
#include <sys/stat.h>

#include "sms-text.h"
#include "template.h"

#define REPO_TEMPLATES TEST_SRCDIR "/etc/templates"

/* ---- a scratch templates directory -------------------------------------- */

static void write_bytes(const char *path, const char *data, size_t len) {
        FILE *f = fopen(path, "we");
        assert_non_null(f);
        assert_int_equal(fwrite(data, 1, len, f), len);
        assert_int_equal(fclose(f), 0);
}

/* test_dir/t with every declared template in both languages as "ID {store}". */
static char *make_templates(void) {
        char *dir = NULL;

        assert_true(asprintf(&dir, "%s/t", test_dir) > 0);
        rm_rf(dir);
        assert_int_equal(mkdir(dir, 0755), 0);
        for (NluLang l = 0; l < _NLU_LANG_MAX; l++) {
                char sub[2048];
                snprintf(sub, sizeof sub, "%s/%s", dir, template_lang_dir(l));
                assert_int_equal(mkdir(sub, 0755), 0);
                for (size_t i = 0; i < template_n_ids(); i++) {
                        char name[256], text[256];
                        snprintf(name, sizeof name, "%s.txt", template_id(i));
                        snprintf(text, sizeof text, "%s {store}\n", template_id(i));
                        write_file(sub, name, text);
                }
        }
        return dir;
}

static void put(const char *dir, const char *lang, const char *id, const char *data, size_t len) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s/%s.txt", dir, lang, id);
        write_bytes(path, data, len);
}

/* Load dir; the diagnostics with dir's prefix removed, joined by '|'. */
static char *load_diags(const char *dir, int *ret_r, Templates **ret_t) {
        Templates *t = NULL;
        Diags d = {};
        char buf[16384] = "";

        *ret_r = templates_load(dir, &t, &d);
        for (size_t i = 0; i < d.n; i++) {
                const char *l = d.lines[i];
                if (strncmp(l, dir, strlen(dir)) == 0)
                        l += strlen(dir) + 1;
                strncat(buf, l, sizeof buf - strlen(buf) - 1);
                if (i + 1 < d.n)
                        strncat(buf, "|", sizeof buf - strlen(buf) - 1);
        }
        diags_clear(&d);
        if (*ret_r == 0)
                assert_non_null(t);
        else
                assert_null(t);
        if (ret_t)
                *ret_t = t;
        else
                templates_free(t);
        return strdup(buf);
}

static char *render(const Templates *t, NluLang lang, const char *id, const TemplateVar *vars, size_t n) {
        char *s = NULL;
        int r = template_render(t, lang, id, vars, n, &s);
        if (r < 0)
                fail_msg("rendering %s: %s", id, strerror(-r));
        return s;
}

/* ---- the repository's templates ----------------------------------------- */

static void test_repo_templates(void **state _unused_) {
        _cleanup_(templates_freep) Templates *t = NULL;
        Diags d = {};
        int r = templates_load(REPO_TEMPLATES, &t, &d);

        for (size_t i = 0; i < d.n; i++)
                print_error("%s\n", d.lines[i]);
        assert_int_equal(r, 0);
        assert_int_equal(d.n, 0);

        /* every declared id has its file in both languages, and renders */
        assert_true(template_n_ids() >= 55);
        assert_null(template_id(template_n_ids()));
        for (size_t i = 0; i < template_n_ids(); i++)
                for (NluLang l = 0; l < _NLU_LANG_MAX; l++) {
                        char path[4096];
                        snprintf(path, sizeof path, "%s/%s/%s.txt", REPO_TEMPLATES, template_lang_dir(l),
                                 template_id(i));
                        if (access(path, R_OK) != 0)
                                fail_msg("%s is missing", path);
                        _cleanup_free_ char *s = render(t, l, template_id(i), NULL, 0);
                        if (isempty(s))
                                fail_msg("%s renders empty", path);
                        if (strchr(s, '{') || strchr(s, '}'))
                                fail_msg("%s renders a brace: %s", path, s);
                }

        assert_int_equal(templates_set_store(t, "Pizzaria Bella Napoli"), 0);
        static const struct {
                NluLang lang;
                const char *id;
                TemplateVar vars[3];
                const char *want;
        } cases[] = {
                { NLU_LANG_PT,
                  "summary_line",
                  { { "qty", "2" }, { "name", "Pizza Calabresa" }, { "price", "R$ 105,80" } },
                  "2x Pizza Calabresa R$ 105,80" },
                { NLU_LANG_EN,
                  "menu_line_sold_out",
                  { { "name", "Chicken and catupiry pizza" }, { "price", "R$57.90" } },
                  "Chicken and catupiry pizza - R$57.90 (sold out)" },
                { NLU_LANG_PT,
                  "payment_name_cash_change",
                  { { "change", "R$ 100,00" } },
                  "dinheiro (troco para R$ 100,00)" },
                { NLU_LANG_PT, "email_subject", {}, "Seu pedido na Pizzaria Bella Napoli" },
                { NLU_LANG_EN, "email_subject", { { "store", "Other" } }, "Your order at Other" },
                { NLU_LANG_PT, "status_name_in_delivery", {}, "saiu para entrega" },
                { NLU_LANG_EN,
                  "cancel_ask",
                  { { "order_id", "7KQ2XM" } },
                  "Do you want to cancel order #7KQ2XM? Reply YES or NO." },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *s = render(t, cases[i].lang, cases[i].id, cases[i].vars, 3);
                if (!streq(s, cases[i].want))
                        fail_msg("case %zu: got '%s', want '%s'", i, s, cases[i].want);
        }

        /* the summary asks for the answer the conversation waits for */
        _cleanup_free_ char *pt = render(t, NLU_LANG_PT, "summary", NULL, 0);
        _cleanup_free_ char *en = render(t, NLU_LANG_EN, "summary", NULL, 0);
        assert_non_null(strstr(pt, "Responda SIM para confirmar ou NÃO para alterar."));
        assert_non_null(strstr(en, "Reply YES to confirm or NO to change it."));
}

/* Typical values, to measure each template as a customer would get it. */
static const TemplateVar samples[] = {
        { "store", "Pizzaria Bella Napoli" },
        { "items", "2x Pizza Calabresa, 1x Coca-Cola 2L" },
        { "address", "Rua Augusta 1500, Consolação" },
        { "zones", "Consolação, Bela Vista, Centro, República, Jardim Paulista, Pinheiros, Vila Mariana, Moema" },
        { "total", "R$ 119,80" },
        { "subtotal", "R$ 114,80" },
        { "fee", "R$ 5,00" },
        { "item", "Pizza Frango com Catupiry" },
        { "alternatives", "Pizza Calabresa ou Pizza Portuguesa" },
        { "lines", "2x Pizza Calabresa R$ 105,80\n1x Guaraná Antarctica 2L R$ 12,00" },
        { "eta_minutes", "25" },
        { "eta_time", "19:45" },
        { "zone", "Consolação e Bela Vista" },
        { "payment", "cartão na entrega" },
        { "qty", "2" },
        { "name", "Pizza Quatro Queijos" },
        { "price", "R$ 117,80" },
        { "order_id", "7KQ2XM" },
        { "customer", "+5511987654321" },
        { "text", "quero falar com alguém" },
        { "status", "saiu para entrega" },
        { "change", "R$ 100,00" },
        { "tracking_url", "https://pedidos.pizzaria.example/t/4f9c2a7d1e8b3c6a" },
        { "reason", "o pagamento não foi aprovado" },
        { "code",
          "00020126580014br.gov.bcb.pix0136123e4567-e12b-12d1-a456-4266554400005204000053039865802BR5913Pizzaria "
          "Bella6009SAO PAULO62070503***63041D3D" },
};

/* Written for SMS: English is GSM 7-bit as it is, Portuguese once its
 * accents are folded (no emoji, no characters without a GSM form), and
 * each reply takes one segment but for the few that list things. */
static void test_repo_templates_fit_sms(void **state _unused_) {
        _cleanup_(templates_freep) Templates *t = NULL;
        Diags d = {};
        static const struct {
                const char *id;
                unsigned segments;
        } budget[] = {
                { "summary", 3 },      { "menu", 3 },     { "help", 2 },
                { "outside_zone", 2 }, { "pix_code", 2 }, { "mail_unauthenticated", 2 }, /* only ever sent by e-mail */
        };

        assert_int_equal(templates_load(REPO_TEMPLATES, &t, &d), 0);
        for (size_t i = 0; i < template_n_ids(); i++) {
                const char *id = template_id(i);
                unsigned allowed = 1;
                for (size_t b = 0; b < ELEMENTSOF(budget); b++)
                        if (streq(budget[b].id, id))
                                allowed = budget[b].segments;
                for (NluLang l = 0; l < _NLU_LANG_MAX; l++) {
                        _cleanup_free_ char *text = render(t, l, id, NULL, 0);
                        _cleanup_free_ char *s = render(t, l, id, samples, ELEMENTSOF(samples));
                        _cleanup_free_ char *sms = NULL, *sms_text = NULL;
                        SmsTextInfo info;

                        /* the template's own words */
                        assert_int_equal(sms_text_compose(text, SMS_SEGMENTS_MAX, l == NLU_LANG_PT, &sms_text, &info),
                                         0);
                        if (info.encoding != SMS_ENCODING_GSM7)
                                fail_msg("%s/%s is not GSM 7-bit%s: %s", template_lang_dir(l), id,
                                         l == NLU_LANG_PT ? " even folded" : "", text);
                        if (l == NLU_LANG_EN && info.folded)
                                fail_msg("en/%s needed folding: %s", id, text);
                        /* with typical values (Portuguese names, folded) */
                        assert_int_equal(sms_text_compose(s, SMS_SEGMENTS_MAX, true, &sms, &info), 0);
                        assert_int_equal(info.encoding, SMS_ENCODING_GSM7);
                        if (info.segments > allowed)
                                fail_msg("%s/%s takes %u segments (at most %u): %s", template_lang_dir(l), id,
                                         info.segments, allowed, s);
                }
        }
}

/* The summary ends with the question the conversation waits for: cut, it
 * would lose it.  A two-item order must fit the default sms.max_segments
 * (3) even in UCS-2, without folding. */
static void test_repo_summary_fits_unfolded(void **state _unused_) {
        _cleanup_(templates_freep) Templates *t = NULL;
        Diags d = {};
        static const TemplateVar vars[] = {
                { "lines", "2x Pizza Calabresa R$ 105,80\n1x Guaraná 2L R$ 12,00" },
                { "fee", "R$ 5,00" },
                { "total", "R$ 119,80" },
                { "eta_minutes", "25" },
                { "address", "Rua Augusta 1500" },
                { "zone", "Consolação e Bela Vista" },
                { "payment", "Pix" },
        };

        assert_int_equal(templates_load(REPO_TEMPLATES, &t, &d), 0);
        for (NluLang l = 0; l < _NLU_LANG_MAX; l++) {
                _cleanup_free_ char *s = render(t, l, "summary", vars, ELEMENTSOF(vars));
                _cleanup_free_ char *sms = NULL;
                SmsTextInfo info;

                assert_int_equal(sms_text_compose(s, 3, false, &sms, &info), 0);
                assert_int_equal(info.encoding, SMS_ENCODING_UCS2);
                if (info.truncated)
                        fail_msg("%s/summary takes more than 3 UCS-2 segments (%zu units): %s", template_lang_dir(l),
                                 info.units, s);
        }
}

/* ---- rendering ---------------------------------------------------------- */

static void test_render_syntax(void **state _unused_) {
        static const struct {
                const char *file, *want;
        } cases[] = {
                { "{qty}x {name} {price}\n", "2x Pizza R$ 1,00" },
                { "{{literal}} {qty} }}\n", "{literal} 2 }" },
                { "{{{qty}}}\n", "{2}" },
                { "# a comment\n{qty}\n# another\nb\n", "2\nb" },
                { "##{qty} is a line that starts with '#'\n", "#2 is a line that starts with '#'" },
                { "##\n", "#" },
                { "a\r\nb\r\n", "a\nb" },
                { "one line break dropped\n\n", "one line break dropped\n" },
                { "no line break", "no line break" },
                { "{price}", "R$ 1,00" },
                { "{name}{name}", "PizzaPizza" },
                { "undeclared value: {store}\n", "undeclared value: Loja" },
                { "ação, café, 🍕\n", "ação, café, 🍕" },
        };
        static const TemplateVar vars[] = {
                { "qty", "2" },         { "name", "Pizza" },  { "price", "R$ 1,00" },
                { "price", "ignored" }, { "code", "unused" }, { NULL, "no name" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *dir = make_templates();
                _cleanup_(templates_freep) Templates *t = NULL;
                int r;

                put(dir, "en", "summary_line", cases[i].file, strlen(cases[i].file));
                _cleanup_free_ char *d = load_diags(dir, &r, &t);
                if (r != 0)
                        fail_msg("case %zu: %s", i, d);
                assert_int_equal(templates_set_store(t, "Loja"), 0);
                _cleanup_free_ char *s = render(t, NLU_LANG_EN, "summary_line", vars, ELEMENTSOF(vars));
                if (!streq(s, cases[i].want))
                        fail_msg("case %zu: got '%s', want '%s'", i, s, cases[i].want);
                /* the other language is untouched */
                _cleanup_free_ char *o = render(t, NLU_LANG_PT, "summary_line", vars, ELEMENTSOF(vars));
                assert_string_equal(o, "summary_line Loja");
        }
}

static void test_render_missing_and_bad(void **state _unused_) {
        _cleanup_free_ char *dir = make_templates();
        _cleanup_(templates_freep) Templates *t = NULL;
        _cleanup_free_ char *big = NULL;
        char *s = (char *) "untouched";
        int r;

        put(dir, "pt-BR", "summary_line", "{qty}x {name} {price}", 21);
        _cleanup_free_ char *d = load_diags(dir, &r, &t);
        assert_int_equal(r, 0);

        /* a declared placeholder without a value is empty, so is {store} before it is set */
        _cleanup_free_ char *a = render(t, NLU_LANG_PT, "summary_line", (TemplateVar[]){ { "qty", "3" } }, 1);
        assert_string_equal(a, "3x  ");
        _cleanup_free_ char *b = render(t, NLU_LANG_PT, "summary_line", (TemplateVar[]){ { "name", NULL } }, 1);
        assert_string_equal(b, "x  ");
        _cleanup_free_ char *c = render(t, NLU_LANG_EN, "help", NULL, 0);
        assert_string_equal(c, "help ");

        assert_int_equal(template_render(t, NLU_LANG_PT, "no_such_template", NULL, 0, &s), -ENOENT);
        assert_int_equal(template_render(t, _NLU_LANG_MAX, "help", NULL, 0, &s), -EINVAL);
        assert_int_equal(template_render(t, _NLU_LANG_INVALID, "help", NULL, 0, &s), -EINVAL);
        assert_string_equal(s, "untouched");

        /* the output is bounded */
        big = malloc(TEMPLATE_OUTPUT_MAX);
        assert_non_null(big);
        memset(big, 'x', TEMPLATE_OUTPUT_MAX - 1);
        big[TEMPLATE_OUTPUT_MAX - 1] = '\0';
        assert_int_equal(template_render(t, NLU_LANG_PT, "summary_line", (TemplateVar[]){ { "qty", big } }, 1, &s),
                         -E2BIG);
        assert_string_equal(s, "untouched");
        big[TEMPLATE_OUTPUT_MAX - 3] = '\0'; /* with "x" and two spaces: exactly the limit */
        _cleanup_free_ char *e = render(t, NLU_LANG_PT, "summary_line", (TemplateVar[]){ { "qty", big } }, 1);
        assert_int_equal(strlen(e), TEMPLATE_OUTPUT_MAX);

        assert_string_equal(template_lang_dir(NLU_LANG_PT), "pt-BR");
        assert_string_equal(template_lang_dir(NLU_LANG_EN), "en");
        assert_null(template_lang_dir(_NLU_LANG_MAX));
        assert_true(template_id_allows("summary", "eta_minutes"));
        assert_true(template_id_allows("ask_items", "store"));
        assert_false(template_id_allows("ask_items", "items"));
        assert_false(template_id_allows("no_such_template", "store"));
}

/* ---- load errors -------------------------------------------------------- */

static void test_load_errors(void **state _unused_) {
        static const struct {
                const char *lang, *id, *file;
                size_t len; /* 0: strlen(file) */
                const char *diags;
        } cases[] = {
                { "pt-BR", "ask_items", "Oi! {items}\n", 0,
                  "pt-BR/ask_items.txt:1: placeholder {items} is not declared for template ask_items (it may use: "
                  "{store})" },
                { "en", "ask_address", "# comment\nGot {item}.\n", 0,
                  "en/ask_address.txt:2: placeholder {item} is not declared for template ask_address (it may use: "
                  "{items} and {store})" },
                { "en", "summary", "a\nb\nTotal {total\n", 0,
                  "en/summary.txt:3: unterminated '{' (write '{{' for a literal brace)" },
                { "en", "summary", "a {total}\n{\nc}\n", 0,
                  "en/summary.txt:2: unterminated '{' (write '{{' for a literal brace)|en/summary.txt:3: '}' without "
                  "'{' (write '}}' for a literal brace)" },
                { "pt-BR", "help", "{Store}, {}, { store }\n", 0,
                  "pt-BR/help.txt:1: invalid placeholder '{Store}' (lower-case letters, digits and '_'; write '{{' "
                  "for a literal brace)|pt-BR/help.txt:1: invalid placeholder '{}' (lower-case letters, digits and "
                  "'_'; write '{{' for a literal brace)|pt-BR/help.txt:1: invalid placeholder '{ store }' "
                  "(lower-case letters, digits and '_'; write '{{' for a literal brace)" },
                { "pt-BR", "help", "ok\nol\xe1 {store}\n", 0, "pt-BR/help.txt:2: invalid UTF-8" },
                { "pt-BR", "help", "ok\n\xed\xa0\x80 surrogate\n", 0, "pt-BR/help.txt:2: invalid UTF-8" },
                { "en", "help", "a\0b\n", 4, "en/help.txt:1: NUL byte in template" },
                { "en", "help", "# only a comment\n", 0, "en/help.txt: template is empty" },
                { "en", "help", "", 0, "en/help.txt: template is empty" },
                { "en", "help", "\n", 0, "en/help.txt: template is empty" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *dir = make_templates();
                int r;

                put(dir, cases[i].lang, cases[i].id, cases[i].file, cases[i].len ?: strlen(cases[i].file));
                _cleanup_free_ char *d = load_diags(dir, &r, NULL);
                if (!streq(d, cases[i].diags))
                        fail_msg("case %zu: got '%s', want '%s'", i, d, cases[i].diags);
                assert_int_equal(r, -EINVAL);
        }
}

static void test_load_size_limit(void **state _unused_) {
        _cleanup_free_ char *dir = make_templates();
        char buf[TEMPLATE_FILE_MAX + 1];
        int r;

        memset(buf, 'a', sizeof buf);
        put(dir, "en", "help", buf, TEMPLATE_FILE_MAX); /* exactly the limit: fine */
        _cleanup_free_ char *ok = load_diags(dir, &r, NULL);
        assert_int_equal(r, 0);
        assert_string_equal(ok, "");

        put(dir, "en", "help", buf, TEMPLATE_FILE_MAX + 1);
        _cleanup_free_ char *d = load_diags(dir, &r, NULL);
        assert_int_equal(r, -EINVAL);
        assert_string_equal(d, "en/help.txt: template is larger than 4096 bytes");
}

static void test_load_files_and_directories(void **state _unused_) {
        char path[2048];
        int r;

        /* a missing file in either language */
        _cleanup_free_ char *dir = make_templates();
        snprintf(path, sizeof path, "%s/en/notify_ready.txt", dir);
        assert_int_equal(unlink(path), 0);
        snprintf(path, sizeof path, "%s/pt-BR/ask_items.txt", dir);
        assert_int_equal(unlink(path), 0);
        _cleanup_free_ char *d1 = load_diags(dir, &r, NULL);
        assert_int_equal(r, -EINVAL);
        assert_string_equal(d1,
                            "pt-BR/ask_items.txt: cannot read template: No such file or directory|en/notify_ready.txt: "
                            "cannot read template: No such file or directory");

        /* a directory where a file should be; an unknown id (a typo); other files are ignored */
        _cleanup_free_ char *dir2 = make_templates();
        snprintf(path, sizeof path, "%s/en/help.txt", dir2);
        assert_int_equal(unlink(path), 0);
        assert_int_equal(mkdir(path, 0755), 0);
        snprintf(path, sizeof path, "%s/pt-BR", dir2);
        write_file(path, "ask_itens.txt", "Oi\n");
        write_file(path, "README", "not a template\n");
        write_file(path, ".help.txt.swp", "editor\n");
        _cleanup_free_ char *d2 = load_diags(dir2, &r, NULL);
        assert_int_equal(r, -EINVAL);
        assert_string_equal(d2,
                            "pt-BR: ask_itens.txt: unknown template id 'ask_itens' (see deliveryd.conf(5))|"
                            "en/help.txt: cannot read template: not a regular file");

        /* a missing language, a missing directory */
        _cleanup_free_ char *dir3 = make_templates();
        snprintf(path, sizeof path, "%s/en", dir3);
        rm_rf(path);
        _cleanup_free_ char *d3 = load_diags(dir3, &r, NULL);
        assert_int_equal(r, -EINVAL);
        assert_string_equal(d3, "en: cannot read template directory: No such file or directory");

        snprintf(path, sizeof path, "%s/nonexistent", test_dir);
        _cleanup_free_ char *d4 = load_diags(path, &r, NULL);
        assert_int_equal(r, -EINVAL);
        assert_string_equal(d4,
                            "pt-BR: cannot read template directory: No such file or directory|en: cannot read template "
                            "directory: No such file or directory");

        /* every problem of every file at once */
        _cleanup_free_ char *dir5 = make_templates();
        put(dir5, "pt-BR", "eta", "{eta_time} {total}\n", 19);
        put(dir5, "en", "eta", "{eta_time} {total}\n", 19);
        put(dir5, "en", "status", "{oops\n", 6);
        _cleanup_free_ char *d5 = load_diags(dir5, &r, NULL);
        assert_int_equal(r, -EINVAL);
        assert_string_equal(
                d5,
                "pt-BR/eta.txt:1: placeholder {total} is not declared for template eta (it may use: "
                "{order_id}, {eta_time}, {eta_minutes} and {store})|en/status.txt:1: unterminated '{' (write "
                "'{{' for a literal brace)|en/eta.txt:1: placeholder {total} is not declared for template "
                "eta (it may use: {order_id}, {eta_time}, {eta_minutes} and {store})");
}

/* ---- money -------------------------------------------------------------- */

static void test_money(void **state _unused_) {
        static const struct {
                int64_t cents;
                const char *pt, *en;
        } cases[] = {
                { 6490, "R$ 64,90", "R$64.90" },
                { 123450, "R$ 1.234,50", "R$1,234.50" },
                { 0, "R$ 0,00", "R$0.00" },
                { 5, "R$ 0,05", "R$0.05" },
                { 100, "R$ 1,00", "R$1.00" },
                { 99999, "R$ 999,99", "R$999.99" },
                { 100000, "R$ 1.000,00", "R$1,000.00" },
                { 123456789, "R$ 1.234.567,89", "R$1,234,567.89" },
                { -500, "-R$ 5,00", "-R$5.00" },
                { -123450, "-R$ 1.234,50", "-R$1,234.50" },
                { INT64_MAX, "R$ 92.233.720.368.547.758,07", "R$92,233,720,368,547,758.07" },
                { INT64_MIN, "-R$ 92.233.720.368.547.758,08", "-R$92,233,720,368,547,758.08" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *pt = NULL, *en = NULL;
                assert_int_equal(format_money(cases[i].cents, NLU_LANG_PT, &pt), 0);
                assert_int_equal(format_money(cases[i].cents, NLU_LANG_EN, &en), 0);
                assert_string_equal(pt, cases[i].pt);
                assert_string_equal(en, cases[i].en);
        }
        char *s = NULL;
        assert_int_equal(format_money(100, _NLU_LANG_MAX, &s), -EINVAL);
        assert_null(s);
}

/* ---- allocation failure ------------------------------------------------- */

static int attempt_load(void *userdata) {
        Templates *t = NULL;
        Diags d = {};
        int r = templates_load(userdata, &t, &d);

        if (r == 0) {
                char *s = NULL;
                r = templates_set_store(t, "Pizzaria Bella Napoli");
                if (r == 0)
                        r = template_render(t, NLU_LANG_PT, "summary", samples, ELEMENTSOF(samples), &s);
                free(s);
        }
        /* a lost diagnostic must say so: never a silent -EINVAL */
        if (r == -EINVAL && d.oom)
                r = -ENOMEM;
        templates_free(t);
        diags_clear(&d);
        return r;
}

static int attempt_load_broken(void *userdata) {
        Templates *t = NULL;
        Diags d = {};
        int r = templates_load(userdata, &t, &d);

        if (r == -EINVAL && (d.n != 1 || d.oom))
                r = -ENOMEM; /* only what was recorded in full counts */
        assert_null(t);
        diags_clear(&d);
        return r;
}

static int attempt_money(void *userdata _unused_) {
        _cleanup_free_ char *s = NULL;
        int r = format_money(123450, NLU_LANG_PT, &s);
        if (r == 0)
                assert_string_equal(s, "R$ 1.234,50");
        return r;
}

static void test_oom(void **state _unused_) {
        assert_true(oom_loop(attempt_load, (void *) REPO_TEMPLATES, 0) > 200);

        _cleanup_free_ char *dir = make_templates();
        put(dir, "en", "eta", "{eta_time} {total}\n", 19);
        assert_true(oom_loop(attempt_load_broken, dir, -EINVAL) > 1);

        assert_true(oom_loop(attempt_money, NULL, 0) >= 1);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_repo_templates),
                cmocka_unit_test(test_repo_templates_fit_sms),
                cmocka_unit_test(test_repo_summary_fits_unfolded),
                cmocka_unit_test(test_render_syntax),
                cmocka_unit_test(test_render_missing_and_bad),
                cmocka_unit_test(test_load_errors),
                cmocka_unit_test(test_load_size_limit),
                cmocka_unit_test(test_load_files_and_directories),
                cmocka_unit_test(test_money),
                cmocka_unit_test(test_oom),
        };

        alloc_init();
        return cmocka_run_group_tests(tests, tmpdir_setup, tmpdir_teardown);
}
