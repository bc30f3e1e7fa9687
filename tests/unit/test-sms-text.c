/* SPDX-License-Identifier: MIT */
/*
 * test-sms-text.c — SMS composition: encoding and segment counts at every
 * boundary (160/161 GSM septets, 70/71 UCS-2 units, extension characters,
 * emoji surrogate pairs), accent folding, cutting to max_segments at a word
 * boundary and never inside a character, bad input, allocation failure;
 * splitting a long text between lines, against the straightforward
 * algorithm it replaces.
 */
#include "test-helpers.h"

#include "normalize.h"
#include "sms-text.h"
#include "strutil.h"

/* n copies of unit (a UTF-8 string), then tail. */
static char *rep(const char *unit, size_t n, const char *tail) {
        size_t ul = strlen(unit), tl = strlen(tail);
        char *s = malloc(ul * n + tl + 1);

        assert_non_null(s);
        for (size_t i = 0; i < n; i++)
                memcpy(s + i * ul, unit, ul);
        memcpy(s + ul * n, tail, tl + 1);
        return s;
}

static void test_segments(void **state _unused_) {
        static const struct {
                const char *unit;
                size_t n;
                const char *tail;
                SmsEncoding encoding;
                size_t units;
                unsigned segments;
        } cases[] = {
                { "a", 0, "", SMS_ENCODING_GSM7, 0, 0 },
                { "a", 1, "", SMS_ENCODING_GSM7, 1, 1 },
                { "a", 160, "", SMS_ENCODING_GSM7, 160, 1 },
                { "a", 161, "", SMS_ENCODING_GSM7, 161, 2 },
                { "a", 306, "", SMS_ENCODING_GSM7, 306, 2 },
                { "a", 307, "", SMS_ENCODING_GSM7, 307, 3 },
                { "a", 459, "", SMS_ENCODING_GSM7, 459, 3 },
                { "a", 460, "", SMS_ENCODING_GSM7, 460, 4 },
                /* GSM's own accents and symbols are one septet */
                { "é", 160, "", SMS_ENCODING_GSM7, 160, 1 },
                { "Ç", 80, "ñüàèùìòÅåÄÖÑÜ§£¥¿¡ÆæßÉØøΔΦΓΛΩΠΨΣΘΞ@$_", SMS_ENCODING_GSM7, 117, 1 },
                /* the extension table takes two */
                { "€", 80, "", SMS_ENCODING_GSM7, 160, 1 },
                { "€", 80, "a", SMS_ENCODING_GSM7, 161, 2 },
                { "^{}\\[~]|", 1, "", SMS_ENCODING_GSM7, 16, 1 },
                { "a", 152, "[", SMS_ENCODING_GSM7, 154, 1 }, /* a single SMS holds 160 */
                { "a", 158, "[", SMS_ENCODING_GSM7, 160, 1 },
                { "a", 159, "[", SMS_ENCODING_GSM7, 161, 2 },
                /* an escape pair is not split: 76 pairs fill 152 of a part of 153, so 153 pairs take 3 */
                { "[", 153, "", SMS_ENCODING_GSM7, 306, 3 },
                { "[", 152, "", SMS_ENCODING_GSM7, 304, 2 },
                { "a", 305, "[", SMS_ENCODING_GSM7, 307, 3 },
                /* UCS-2 */
                { "ã", 70, "", SMS_ENCODING_UCS2, 70, 1 },
                { "ã", 71, "", SMS_ENCODING_UCS2, 71, 2 },
                { "a", 69, "ç", SMS_ENCODING_UCS2, 70, 1 },
                { "ã", 134, "", SMS_ENCODING_UCS2, 134, 2 },
                { "ã", 135, "", SMS_ENCODING_UCS2, 135, 3 },
                { "a", 159, "`", SMS_ENCODING_UCS2, 160, 3 }, /* '`' is not GSM */
                { "a", 10, "\t", SMS_ENCODING_UCS2, 11, 1 },
                /* outside the BMP: a surrogate pair, two units, never split */
                { "🍕", 35, "", SMS_ENCODING_UCS2, 70, 1 },
                { "🍕", 35, "a", SMS_ENCODING_UCS2, 71, 2 },
                { "a", 68, "🍕", SMS_ENCODING_UCS2, 70, 1 },
                { "a", 69, "🍕", SMS_ENCODING_UCS2, 71, 2 },
                { "🍕", 66, "", SMS_ENCODING_UCS2, 132, 2 },
                { "🍕", 67, "", SMS_ENCODING_UCS2, 134, 3 }, /* 33 pairs per part of 67 */
                { "a\n", 80, "", SMS_ENCODING_GSM7, 160, 1 },
                { "a\r\n", 53, "a", SMS_ENCODING_GSM7, 160, 1 },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *s = rep(cases[i].unit, cases[i].n, cases[i].tail);
                _cleanup_free_ char *out = NULL;
                SmsTextInfo m, c;

                assert_int_equal(sms_text_measure(s, &m), 0);
                if (m.encoding != cases[i].encoding || m.units != cases[i].units || m.segments != cases[i].segments)
                        fail_msg("case %zu: got %s %zu units %u segments, want %s %zu units %u segments", i,
                                 sms_encoding_to_string(m.encoding), m.units, m.segments,
                                 sms_encoding_to_string(cases[i].encoding), cases[i].units, cases[i].segments);
                assert_false(m.folded);
                assert_false(m.truncated);

                /* composing with room to spare changes nothing */
                assert_int_equal(sms_text_compose(s, SMS_SEGMENTS_MAX, false, &out, &c), 0);
                assert_string_equal(out, s);
                assert_memory_equal(&m, &c, sizeof m);
        }
}

static void test_fold(void **state _unused_) {
        static const struct {
                const char *in, *want;
                SmsEncoding encoding;
                bool folded;
        } cases[] = {
                { "Não, obrigado", "Nao, obrigado", SMS_ENCODING_GSM7, true },
                { "ação à café", "acao à café", SMS_ENCODING_GSM7, true }, /* à and é are GSM */
                { "Olá, você está? Pão, maçã, feijão, açaí, órgão, ônibus, útil, ímã",
                  "Ola, voce esta? Pao, maca, feijao, acai, orgao, onibus, util, ima", SMS_ENCODING_GSM7, true },
                { "ÁÂÃÀ ÊË ÍÎÏÌ ÓÔÕÒ ÚÛÙ Ç ç", "AAAA EE IIII OOOO UUU Ç c", SMS_ENCODING_GSM7, true },
                { "É è ù ì ò Ø ø Å å Ä Ö Ñ Ü § ñ ü à ä ö", "É è ù ì ò Ø ø Å å Ä Ö Ñ Ü § ñ ü à ä ö", SMS_ENCODING_GSM7,
                  false },
                { "“Oi” ‘tá’ – já… nº 5, 1ª vez", "\"Oi\" 'ta' - ja... no 5, 1a vez", SMS_ENCODING_GSM7, true },
                { "tab\there", "tab here", SMS_ENCODING_GSM7, true },
                /* still UCS-2 after folding: sent as written */
                { "Não 🍕", "Não 🍕", SMS_ENCODING_UCS2, false },
                { "Привет", "Привет", SMS_ENCODING_UCS2, false },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *out = NULL, *plain = NULL;
                SmsTextInfo info, m;

                assert_int_equal(sms_text_compose(cases[i].in, 3, true, &out, &info), 0);
                if (!streq(out, cases[i].want))
                        fail_msg("case %zu: got '%s', want '%s'", i, out, cases[i].want);
                assert_int_equal(info.encoding, cases[i].encoding);
                assert_int_equal(info.folded, cases[i].folded);
                assert_int_equal(sms_text_measure(out, &m), 0);
                assert_int_equal(m.units, info.units);

                /* without folding, the text is kept */
                assert_int_equal(sms_text_compose(cases[i].in, 3, false, &plain, &info), 0);
                assert_string_equal(plain, cases[i].in);
                assert_false(info.folded);
        }

        /* folding is what keeps a long Portuguese reply in one segment */
        _cleanup_free_ char *pt = rep("Não ", 30, "tá");
        _cleanup_free_ char *a = NULL, *b = NULL;
        SmsTextInfo fa, fb;
        assert_int_equal(sms_text_compose(pt, 10, false, &a, &fa), 0);
        assert_int_equal(sms_text_compose(pt, 10, true, &b, &fb), 0);
        assert_int_equal(fa.encoding, SMS_ENCODING_UCS2);
        assert_int_equal(fa.segments, 2);
        assert_int_equal(fb.encoding, SMS_ENCODING_GSM7);
        assert_int_equal(fb.segments, 1);
}

/* Whether s is a prefix of full cut at a character boundary of full. */
static bool char_prefix(const char *full, const char *s, size_t len) {
        size_t i = 0;

        if (strncmp(full, s, len) != 0)
                return false;
        while (i < len) {
                uint32_t cp;
                i += normalize_utf8_next(full + i, strlen(full) - i, &cp);
        }
        return i == len;
}

static void test_truncate(void **state _unused_) {
        static const struct {
                const char *unit;
                size_t n;
                const char *tail;
                unsigned max;
                bool fold;
                const char *ellipsis;
                SmsEncoding encoding;
                size_t max_units; /* of the result */
        } cases[] = {
                { "palavra ", 30, "", 1, false, "...", SMS_ENCODING_GSM7, 160 },
                { "palavra ", 100, "", 3, false, "...", SMS_ENCODING_GSM7, 459 },
                { "pão ", 100, "", 1, false, "…", SMS_ENCODING_UCS2, 70 },
                { "pão ", 100, "", 2, false, "…", SMS_ENCODING_UCS2, 134 },
                { "pão ", 100, "", 2, true, "...", SMS_ENCODING_GSM7, 306 },
                { "a", 400, "", 1, false, "...", SMS_ENCODING_GSM7, 160 }, /* one long word: cut inside it */
                { "[", 200, "", 1, false, "...", SMS_ENCODING_GSM7, 160 }, /* never half an escape pair */
                { "€ ", 200, "", 2, false, "...", SMS_ENCODING_GSM7, 306 },
                { "🍕", 100, "", 1, false, "…", SMS_ENCODING_UCS2, 70 }, /* never half a surrogate pair */
                { "🍕 ", 100, "", 3, false, "…", SMS_ENCODING_UCS2, 201 },
                { "e\xcc\x81", 100, "", 1, false, "…", SMS_ENCODING_UCS2, 70 }, /* never before a combining mark */
                { "ok, ", 100, "", 1, false, "...", SMS_ENCODING_GSM7, 160 },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *s = rep(cases[i].unit, cases[i].n, cases[i].tail);
                _cleanup_free_ char *out = NULL;
                SmsTextInfo info, m;
                size_t el = strlen(cases[i].ellipsis), ol;

                assert_int_equal(sms_text_compose(s, cases[i].max, cases[i].fold, &out, &info), 0);
                ol = strlen(out);
                if (!info.truncated || info.segments > cases[i].max || info.encoding != cases[i].encoding ||
                    info.units > cases[i].max_units)
                        fail_msg("case %zu: %s %zu units %u segments truncated %d: %s", i,
                                 sms_encoding_to_string(info.encoding), info.units, info.segments, info.truncated, out);
                /* the info tells the text that is returned */
                assert_int_equal(sms_text_measure(out, &m), 0);
                assert_int_equal(m.units, info.units);
                assert_int_equal(m.segments, info.segments);
                /* it ends with the ellipsis, after no space or comma */
                assert_true(ol > el);
                assert_string_equal(out + ol - el, cases[i].ellipsis);
                assert_true(out[ol - el - 1] != ' ' && out[ol - el - 1] != ',');
                /* what comes before is the start of the text (folded or not), cut between characters */
                if (!cases[i].fold && !char_prefix(s, out, ol - el))
                        fail_msg("case %zu: not a prefix cut at a character: %s", i, out);
                /* and little is wasted: another word would not have fit */
                if (cases[i].unit[strlen(cases[i].unit) - 1] == ' ' && !cases[i].fold) {
                        _cleanup_free_ char *more = malloc(ol + strlen(cases[i].unit) + 1);
                        assert_non_null(more);
                        memcpy(more, out, ol - el);
                        size_t ul = strlen(cases[i].unit);
                        memcpy(more + ol - el, s + ol - el, ul); /* the next " word" */
                        memcpy(more + ol - el + ul, cases[i].ellipsis, el + 1);
                        assert_int_equal(sms_text_measure(more, &m), 0);
                        if (m.segments <= cases[i].max)
                                fail_msg("case %zu: '%s' would have fit too", i, more);
                }
        }

        /* a word boundary: the text is cut after a whole word */
        _cleanup_free_ char *s = rep("x", 140, " abcdefghij klmnopqrstu");
        _cleanup_free_ char *out = NULL;
        SmsTextInfo info;
        assert_int_equal(sms_text_compose(s, 1, false, &out, &info), 0);
        _cleanup_free_ char *want = rep("x", 140, " abcdefghij...");
        assert_string_equal(out, want);
        assert_int_equal(info.units, 154);
        /* "klmnopqrstu..." would be 165: it does not fit, and the word is not cut */
        _cleanup_free_ char *s2 = rep("x", 140, " abcdefghij klmnopqrstu");
        s2[strlen(s2) - 7] = '\0'; /* " klmn": 156 septets with "..." fit, so they stay */
        _cleanup_free_ char *out2 = NULL;
        assert_int_equal(sms_text_compose(s2, 1, false, &out2, &info), 0);
        assert_string_equal(out2, s2);
        assert_false(info.truncated);
}

static void test_bad_input(void **state _unused_) {
        char *out = (char *) "untouched";
        SmsTextInfo info = { .units = 42 };

        assert_int_equal(sms_text_compose("ol\xe1", 3, false, &out, &info), -EINVAL);
        assert_int_equal(sms_text_compose("\xed\xa0\x80", 3, true, &out, &info), -EINVAL); /* a lone surrogate */
        assert_int_equal(sms_text_compose("\xc0\xaf", 3, false, &out, &info), -EINVAL); /* overlong */
        assert_int_equal(sms_text_compose("ok", 0, false, &out, &info), -EINVAL);
        assert_int_equal(sms_text_compose("ok", SMS_SEGMENTS_MAX + 1, false, &out, &info), -EINVAL);
        assert_int_equal(sms_text_compose(NULL, 3, false, &out, &info), -EINVAL);
        assert_int_equal(sms_text_measure("\xff", &info), -EINVAL);
        assert_string_equal(out, "untouched");
        assert_int_equal(info.units, 42);

        /* ret_info is optional */
        _cleanup_free_ char *ok = NULL;
        assert_int_equal(sms_text_compose("ok", 1, false, &ok, NULL), 0);
        assert_string_equal(ok, "ok");

        assert_string_equal(sms_encoding_to_string(SMS_ENCODING_GSM7), "gsm7");
        assert_string_equal(sms_encoding_to_string(SMS_ENCODING_UCS2), "ucs2");
        assert_null(sms_encoding_to_string(_SMS_ENCODING_MAX));
        assert_int_equal(sms_encoding_from_string("ucs2"), SMS_ENCODING_UCS2);
        assert_int_equal(sms_encoding_from_string("utf8"), _SMS_ENCODING_INVALID);
}

/* The straightforward split: compose every growing candidate again.  What
 * sms_text_split() must give, in linear time. */
static char *compose_ref(const char *text, unsigned max, bool fold, bool *ret_fits) {
        char *out = NULL;
        SmsTextInfo info;

        assert_int_equal(sms_text_compose(text, max, fold, &out, &info), 0);
        if (info.truncated && !fold) {
                free(out);
                assert_int_equal(sms_text_compose(text, max, true, &out, &info), 0);
        }
        *ret_fits = !info.truncated;
        return out;
}

static char **split_ref(const char *text, unsigned max, bool fold) {
        char **out = NULL, *chunk = NULL;
        bool fits;
        char *body = compose_ref(text, max, fold, &fits);

        if (fits) {
                assert_int_equal(strv_extend(&out, body), 0);
                free(body);
                return out;
        }
        free(body);
        for (const char *p = text; *p;) {
                size_t n = strcspn(p, "\n");
                char *line = strndup(p, n), *grown;
                assert_non_null(line);
                if (chunk)
                        assert_true(asprintf(&grown, "%s\n%s", chunk, line) > 0);
                else
                        grown = strdup(line);
                free(compose_ref(grown, max, fold, &fits));
                if (!fits && chunk) {
                        body = compose_ref(chunk, max, fold, &fits);
                        assert_int_equal(strv_extend(&out, body), 0);
                        free(body);
                        free(chunk);
                        free(grown);
                        chunk = line;
                } else {
                        free(chunk);
                        free(line);
                        chunk = grown;
                }
                p += n;
                if (*p == '\n')
                        p++;
        }
        if (chunk) {
                body = compose_ref(chunk, max, fold, &fits);
                assert_int_equal(strv_extend(&out, body), 0);
                free(body);
                free(chunk);
        }
        return out;
}

static void assert_split(const char *text, unsigned max, bool fold, size_t n_bodies) {
        _cleanup_strv_free_ char **got = NULL, **want = split_ref(text, max, fold);

        assert_int_equal(sms_text_split(text, max, fold, &got), 0);
        assert_true(strv_equal(got, want));
        if (n_bodies > 0)
                assert_int_equal(strv_length(got), n_bodies);
}

static void test_split(void **state _unused_) {
        /* A menu: 20 lines of 40 septets do not fit 3 segments (459). */
        _cleanup_free_ char *menu = rep("Pizza Calabresa ........... R$ 52,90 \n", 20, "Responda com o pedido.");
        _cleanup_strv_free_ char **got = NULL;
        SmsTextInfo info;

        assert_split("Olá! Tudo bem?", 1, false, 1);
        assert_split(menu, 3, false, 2);
        assert_split(menu, 1, true, 6);
        assert_int_equal(sms_text_split(menu, 3, false, &got), 0);
        for (char **b = got; *b; b++) {
                assert_int_equal(sms_text_measure(*b, &info), 0);
                assert_true(info.segments <= 3);
        }
        _cleanup_free_ char *joined = strv_join(got, "\n"); /* cut between lines: nothing lost */
        assert_string_equal(joined, menu);
        /* a line too long for one body is cut at a word */
        _cleanup_free_ char *long_line = rep("palavra ", 60, "\nfim");
        assert_split(long_line, 1, false, 2);
        /* fits only folded: with fold false it is folded after all */
        _cleanup_free_ char *accents = rep("ã", 100, "");
        assert_split(accents, 1, false, 1);
        /* empty lines, a trailing newline, extension characters and emoji */
        assert_split("\n\n{a}\n", 1, false, 1);
        _cleanup_free_ char *mixed = rep("[x] 🍕 pão\n\n", 30, "€ fim\n");
        assert_split(mixed, 1, false, 0);
        assert_split(mixed, 2, true, 0);

        /* Random texts from pieces that change the encoding and the units. */
        static const char *const pieces[] = { "a", "pão", "ç",    "…", "€", "{",  "🍕",       " ",
                                              " ", "\n",  "\n\n", "é", "Œ", "\t", "palavra", "R$ 9,00" };
        unsigned seed = 7;
        for (int round = 0; round < 300; round++) {
                char text[1200] = "";
                size_t len = 0;
                int n = (int) (rand_r(&seed) % 160);
                for (int i = 0; i < n; i++) {
                        const char *p = pieces[rand_r(&seed) % ELEMENTSOF(pieces)];
                        if (len + strlen(p) >= sizeof text)
                                break;
                        memcpy(text + len, p, strlen(p) + 1);
                        len += strlen(p);
                }
                assert_split(text, 1 + (unsigned) (rand_r(&seed) % 3), rand_r(&seed) % 2, 0);
        }

        assert_int_equal(sms_text_split("ol\xe1", 3, false, &got), -EINVAL);
        assert_int_equal(sms_text_split("ok", 0, false, &got), -EINVAL);
}

static int attempt_split(void *userdata) {
        char **out = NULL;
        int r = sms_text_split(userdata, 1, false, &out);

        if (r == 0)
                assert_true(strv_length(out) > 1);
        strv_free(out);
        return r;
}

static int attempt_compose(void *userdata) {
        char *out = NULL;
        SmsTextInfo info;
        int r = sms_text_compose(userdata, 1, true, &out, &info);

        if (r == 0) {
                assert_true(info.truncated);
                assert_true(info.folded);
        }
        free(out);
        return r;
}

static void test_oom(void **state _unused_) {
        _cleanup_free_ char *s = rep("Não ", 100, "");
        assert_true(oom_loop(attempt_compose, s, 0) > 3);
        _cleanup_free_ char *menu = rep("Açaí 500ml ....... R$ 22,00\n", 20, "");
        assert_true(oom_loop(attempt_split, menu, 0) > 3);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_segments),  cmocka_unit_test(test_fold),  cmocka_unit_test(test_truncate),
                cmocka_unit_test(test_bad_input), cmocka_unit_test(test_split), cmocka_unit_test(test_oom),
        };

        alloc_init();
        return cmocka_run_group_tests(tests, tmpdir_setup, tmpdir_teardown);
}
