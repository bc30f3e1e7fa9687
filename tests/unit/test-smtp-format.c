/* SPDX-License-Identifier: MIT */
/*
 * test-smtp-format.c — the pure parts of the smtp transport: quoted-
 * printable bodies, RFC 2047 subjects, the Re: rule and the header set.
 */
#include "test-helpers.h"

#include <stdint.h>

#include "base64.h"
#include "outbox-smtp.h"

static void test_qp(void **state _unused_) {
        static const struct {
                const char *in, *out;
        } cases[] = {
                { "", "" },
                { "Hello, world.", "Hello, world." },
                { "Seu pedido está a caminho — R$ 64,90", "Seu pedido est=C3=A1 a caminho =E2=80=94 R$ 64,90" },
                { "1+1=2", "1+1=3D2" },
                { "trailing space \nnext", "trailing space=20\r\nnext" },
                { "tab\t\r\nend\t", "tab=09\r\nend=09" },
                { "two\n\nlines\n", "two\r\n\r\nlines\r\n" },
                { "\x7f and \x01", "=7F and =01" },
                /* 76 characters fit on a line; 77 need a soft break at 75 + '=' */
                { "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" },
                { "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa=\r\naa" },
                /* an escape is never split across a soft break */
                { "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaé",
                  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa=\r\n=C3=A9" },
                /* a space before a soft break stays literal: the '=' protects it */
                { "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa bb",
                  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa =\r\nbb" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *out = smtp_qp_encode(cases[i].in);
                assert_non_null(out);
                assert_string_equal(out, cases[i].out);
        }
}

static void test_qp_line_length(void **state _unused_) {
        char in[1001];
        _cleanup_free_ char *out = NULL;

        for (size_t i = 0; i < sizeof in - 1; i++)
                in[i] = i % 3 ? 'x' : (i % 2 ? '=' : ' ');
        in[sizeof in - 1] = 0;
        out = smtp_qp_encode(in);
        assert_non_null(out);
        for (char *p = out, *e; *p; p = e + 2) {
                e = strstr(p, "\r\n");
                if (!e) {
                        assert_true(strlen(p) <= 76);
                        break;
                }
                assert_true(e - p <= 76);
        }
}

static void test_reply_subject(void **state _unused_) {
        static const struct {
                const char *in;
                bool answering;
                const char *out;
        } cases[] = {
                { "Pedido", true, "Re: Pedido" },       { "Re: Pedido", true, "Re: Pedido" },
                { "RE: Pedido", true, "RE: Pedido" },   { "re:Pedido", true, "re:Pedido" },
                { "Pedido", false, "Pedido" },          { NULL, true, "Re: " },
                { "Reembolso", true, "Re: Reembolso" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *out = smtp_reply_subject(cases[i].in, cases[i].answering);
                assert_non_null(out);
                assert_string_equal(out, cases[i].out);
        }
}

static void test_header_text(void **state _unused_) {
        const char *long_subject = "Confirmação do pedido #7KQ2XM — entrega às 19h30, pizza grande de calabresa";
        _cleanup_free_ char *ascii = smtp_encode_header_text("Re: Pedido #7KQ2XM");
        _cleanup_free_ char *accented = smtp_encode_header_text("Pedido está a caminho");
        _cleanup_free_ char *folded = smtp_encode_header_text(long_subject);
        _cleanup_free_ char *injected = smtp_encode_header_text("x\r\nBcc: a@b");
        char decoded[256] = "";
        size_t n = 0;

        assert_string_equal(ascii, "Re: Pedido #7KQ2XM");
        assert_string_equal(accented, "=?UTF-8?B?UGVkaWRvIGVzdMOhIGEgY2FtaW5obw==?=");
        assert_non_null(strstr(injected, "=?UTF-8?B?"));
        assert_null(strstr(injected, "\nBcc"));

        /* folded into several words, each under 76, whole characters each */
        assert_non_null(strstr(folded, "?=\r\n =?UTF-8?B?"));
        for (char *p = folded; (p = strstr(p, "=?UTF-8?B?"));) {
                char *end = strstr(p, "?=");
                uint8_t *raw = NULL;
                size_t len = 0;

                assert_non_null(end);
                assert_true(end + 2 - p <= 75);
                assert_int_equal(base64_decode(p + 10, (size_t) (end - p - 10), &raw, &len), 0);
                assert_true((raw[0] & 0xC0) != 0x80);
                memcpy(decoded + n, raw, len);
                n += len;
                free(raw);
                p = end + 2;
        }
        decoded[n] = 0;
        assert_string_equal(decoded, long_subject);
}

static void test_message(void **state _unused_) {
        const SmtpMessageFields f = {
                .from = "pedidos@pizzaria.example",
                .to = "ana@example.com",
                .subject = "Re: Pedido",
                .in_reply_to = "<abc@mail.example.com>",
                .references = "<first@mail.example.com> <abc@mail.example.com>",
                .message_id = "<0123@pizzaria.example>",
                .body = "Seu pedido está a caminho — R$ 64,90\n",
                .date_usec = 1700000000ULL * 1000000,
        };
        _cleanup_free_ char *m = smtp_format_message(&f);

        assert_non_null(m);
        assert_string_equal(m,
                            "From: pedidos@pizzaria.example\r\n"
                            "To: ana@example.com\r\n"
                            "Subject: Re: Pedido\r\n"
                            "Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"
                            "Message-ID: <0123@pizzaria.example>\r\n"
                            "In-Reply-To: <abc@mail.example.com>\r\n"
                            "References: <first@mail.example.com> <abc@mail.example.com>\r\n"
                            "Auto-Submitted: auto-replied\r\n"
                            "MIME-Version: 1.0\r\n"
                            "Content-Type: text/plain; charset=UTF-8\r\n"
                            "Content-Transfer-Encoding: quoted-printable\r\n"
                            "\r\n"
                            "Seu pedido est=C3=A1 a caminho =E2=80=94 R$ 64,90\r\n");

        /* without threading headers: none written; a header value with a line break is dropped */
        SmtpMessageFields g = f;
        g.in_reply_to = NULL;
        g.references = "<a@b>\r\nBcc: x@y";
        g.body = "ok";
        _cleanup_free_ char *m2 = smtp_format_message(&g);
        assert_non_null(m2);
        assert_null(strstr(m2, "In-Reply-To:"));
        assert_null(strstr(m2, "References:"));
        assert_null(strstr(m2, "Bcc:"));
        assert_non_null(strstr(m2, "\r\n\r\nok\r\n"));
}

static void test_message_id(void **state _unused_) {
        _cleanup_free_ char *a = smtp_new_message_id("pedidos@pizzaria.example");
        _cleanup_free_ char *b = smtp_new_message_id("pedidos@pizzaria.example");

        assert_non_null(a);
        assert_int_equal(strlen(a), 1 + 32 + strlen("@pizzaria.example>"));
        assert_true(a[0] == '<');
        assert_non_null(strstr(a, "@pizzaria.example>"));
        assert_string_not_equal(a, b);
        assert_null(smtp_new_message_id(""));
        assert_null(smtp_new_message_id("pedidos"));
        assert_null(smtp_new_message_id("pedidos@"));
        assert_null(smtp_new_message_id(NULL));
}

static void test_credentials(void **state _unused_) {
        static const struct {
                const char *text;
                int r;
                const char *username, *password;
        } cases[] = {
                { "username = pedidos\npassword = s3cr3t pass\n", 0, "pedidos", "s3cr3t pass" },
                { "# the relay\n\nusername=a@b.example\npassword = p=w\nother = x\n", 0, "a@b.example", "p=w" },
                { "[smtp]\nusername = u\npassword = p\n", 0, "u", "p" },
                { "username = pedidos\n", -ENOKEY, NULL, NULL },
                { "username = pedidos\npassword =\n", -ENOKEY, NULL, NULL },
                { "", -ENOKEY, NULL, NULL },
                { "username = a\x01b\npassword = p\n", -EINVAL, NULL, NULL },
        };
        _cleanup_free_ char *dir = make_tmpdir();
        _cleanup_free_ char *path = mem_printf("%s/credentials", dir);
        _cleanup_free_ char *missing = mem_printf("%s/none", dir);
        char *u = NULL, *p = NULL;

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                write_file(dir, "credentials", cases[i].text);
                assert_int_equal(smtp_credentials_read(path, &u, &p), cases[i].r);
                if (cases[i].r == 0) {
                        assert_string_equal(u, cases[i].username);
                        assert_string_equal(p, cases[i].password);
                        free(u);
                        free(p);
                        u = p = NULL;
                }
        }
        assert_int_equal(smtp_credentials_read(missing, &u, &p), -ENOENT);
        rm_rf(dir);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_qp),
                cmocka_unit_test(test_qp_line_length),
                cmocka_unit_test(test_reply_subject),
                cmocka_unit_test(test_header_text),
                cmocka_unit_test(test_message),
                cmocka_unit_test(test_message_id),
                cmocka_unit_test(test_credentials),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
