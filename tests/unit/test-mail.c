/* SPDX-License-Identifier: MIT */
/*
 * test-mail.c — the mail parser: one row per message of the corpus in
 * tests/data/mail/ with everything that must come out of it, then tables of
 * small messages built here for the quote patterns, HTML, charsets, the
 * ignore rules and Authentication-Results, the limits, and a run that fails
 * each of our allocations in turn.
 */
#include "test-helpers.h"

#include <errno.h>
#include <stdint.h>

#include "alloc.h"
#include "mail.h"
#include "strutil.h"

#define OWN "Pedidos@Pizzaria.Example"
#define MTA "mx.pizzaria.example"

/* A space-separated list as a vector ("" is an empty one, NULL none). */
static char **words(const char *s) {
        return s ? strv_split_ws(s) : NULL;
}

static void check_strv(const char *what, const char *file, char **got, const char *want) {
        _cleanup_free_ char *j = strv_join(got, " ");

        assert_non_null(j);
        if (!streq(j, want))
                fail_msg("%s: %s: got '%s', want '%s'", file, what, j, want);
}

static void check_str(const char *what, const char *file, const char *got, const char *want) {
        if (!streq_ptr(got, want))
                fail_msg("%s: %s: got '%s', want '%s'", file, what, strempty(got), strempty(want));
}

typedef struct CorpusCase {
        const char *file;
        /* what the caller passes */
        const char *envelope; /* NULL: not known */
        const char *trusted; /* authserv-ids, space-separated; NULL: MTA */
        size_t max_size, max_text;
        unsigned max_headers;
        /* what must come out */
        int r;
        const char *text, *subject, *from, *to, *message_id, *in_reply_to, *references;
        uint64_t date; /* seconds */
        MailIgnore ignore;
        MailAuth auth;
        const char *results; /* "spf dkim dmarc" */
        bool html, truncated;
} CorpusCase;

static const CorpusCase corpus[] = {
        {
                .file = "alternative.eml",
                .envelope = "<ana.souza@gmail.example>",
                .text = "Oi! Quero 2 pizzas de calabresa e 1 Coca-Cola 2L pra Rua Augusta 1500, apto 42.\n"
                        "Pago no pix.\n\nObrigada!\nAna",
                .subject = "Pedido para hoje",
                .from = "ana.souza@gmail.example",
                .to = "pedidos@pizzaria.example",
                .message_id = "CAJ7pQ2d+Xk3Yw8Fh1Zr0nU5mV4bL6sT9eG2oA@mail.gmail.example",
                .references = "",
                .date = 1764801718, /* Wed, 3 Dec 2025 19:41:58 -0300 */
                .auth = MAIL_AUTH_AUTHENTICATED,
                .results = "pass pass pass",
        },
        {
                /* the same, too big for the limit: refused before parsing */
                .file = "alternative.eml",
                .max_size = 1024,
                .r = -EFBIG,
        },
        {
                /* the same, with more header fields (12) than allowed */
                .file = "alternative.eml",
                .max_headers = 11,
                .r = -E2BIG,
        },
        {
                .file = "alternative.eml",
                .max_headers = 12,
                .text = "Oi! Quero 2 pizzas de calabresa e 1 Coca-Cola 2L pra Rua Augusta 1500, apto 42.\n"
                        "Pago no pix.\n\nObrigada!\nAna",
                .subject = "Pedido para hoje",
                .from = "ana.souza@gmail.example",
                .to = "pedidos@pizzaria.example",
                .message_id = "CAJ7pQ2d+Xk3Yw8Fh1Zr0nU5mV4bL6sT9eG2oA@mail.gmail.example",
                .references = "",
                .date = 1764801718,
                .auth = MAIL_AUTH_AUTHENTICATED,
                .results = "pass pass pass",
        },
        {
                .file = "html-only.eml",
                .text = "Boa tarde!\n"
                        "Quero 1 pizza de quatro queijos & 1 guaraná.\n"
                        "Entregar na Rua Haddock Lobo, 595 – Cerqueira César.\n"
                        "Sem cebola\n"
                        "Bem assada – caprichada\n"
                        "Troco para R$ 100\n"
                        "Preço: R$ 70,90 <confirmar>\n"
                        "Obrigado, João",
                .subject = "Pedido",
                .from = "joao.pereira@outlook.example",
                .to = "pedidos@pizzaria.example",
                .message_id = "DM6PR10MB4321A1B2C3D4E5F6@DM6PR10MB4321.namprd10.prod.outlook.example",
                .references = "",
                .date = 1764849933,
                .results = "missing missing missing",
                .html = true,
        },
        {
                .file = "latin1.eml",
                .text = "Boa noite, gostaria de pedir uma pizza portuguesa e uma porção de batata.\n"
                        "Endereço: Rua Vergueiro, 1200 - Vila Mariana.\n"
                        "Pagamento em cartão na entrega.\n\nJosé",
                .subject = "Pedido de pizza à noite",
                .from = "jose.araujo@uol.example",
                .to = "pedidos@pizzaria.example",
                .message_id = "20251205231500.4F2A1C0E9B@smtp.uol.example",
                .references = "",
                .date = 1764976500,
                .results = "missing missing missing",
        },
        {
                .file = "cp1252-quotes.eml",
                .text = "Olá! Quero a pizza “Frango com Catupiry” – se não tiver, pode ser a Margherita.\n"
                        "It’s for my mother… Entrega às 20h, por favor.",
                .subject = "Pedido “especial”",
                .from = "mariana.lima@terra.example",
                .to = "pedidos@pizzaria.example",
                .message_id = "000a01dc66e1$3f2b8c40$bd82a4c0$@terra.example",
                .references = "",
                .date = 1765058531,
                .results = "missing missing missing",
        },
        {
                .file = "base64-utf8.eml",
                .text = "Olá, boa noite!\n"
                        "Vocês entregam em Moema? Quero um açaí de 500ml e um brownie.\n"
                        "Meu endereço: Av. Ibirapuera, 2907 — apto 81.",
                .subject = "Açaí e brownie",
                .from = "beatriz.costa@icloud.example",
                .to = "pedidos@pizzaria.example",
                .message_id = "8E1B2C3D-4F5A-4B6C-9D7E-0F1A2B3C4D5E@icloud.example",
                .references = "",
                .date = 1765153812,
                .results = "missing missing missing",
        },
        {
                /* 21 bytes would split the "ê" of "Vocês": cut before it */
                .file = "base64-utf8.eml",
                .max_text = 21,
                .text = "Olá, boa noite!\nVoc",
                .subject = "Açaí e brownie",
                .from = "beatriz.costa@icloud.example",
                .to = "pedidos@pizzaria.example",
                .message_id = "8E1B2C3D-4F5A-4B6C-9D7E-0F1A2B3C4D5E@icloud.example",
                .references = "",
                .date = 1765153812,
                .results = "missing missing missing",
                .truncated = true,
        },
        {
                .file = "qp-soft-breaks.eml",
                .text = "Bom dia! Gostaria de fazer um pedido grande para a festa de aniversário do meu filho: 3 "
                        "pizzas de margherita, 2 de calabresa e 4 guaranás de 2 litros. Pode entregar na Rua "
                        "Pamplona, 1000 (Jardim Paulista). A conta = R$ 301,00? Pago em dinheiro, preciso de "
                        "troco pra R$ 350.\nObrigado pela atenção!",
                .subject = "Festa de aniversario",
                .from = "carlos.nogueira@bol.example",
                .to = "pedidos@pizzaria.example",
                .message_id = "1765195800.123456.carlos@bol.example",
                .references = "",
                .date = 1765195800,
                .results = "missing missing missing",
        },
        {
                .file = "gmail-reply-pt.eml",
                .text = "Sim, pode confirmar! E troca a Coca por Guaraná, por favor.",
                .subject = "Re: Seu pedido #7KQ2XM",
                .from = "ana.souza@gmail.example",
                .to = "pedidos@pizzaria.example",
                .message_id = "CAJ7pQ2eN4kT8wZp0Lr6vB3xHq1sY9cM5fG7uD@mail.gmail.example",
                .in_reply_to = "20251203224500.7KQ2XM.1@pizzaria.example",
                .references = "20251203224100.3HT9QP.1@pizzaria.example 20251203224500.7KQ2XM.1@pizzaria.example",
                .date = 1764802041,
                .auth = MAIL_AUTH_AUTHENTICATED,
                .results = "pass pass pass",
        },
        {
                .file = "outlook-reply-en.eml",
                .text = "Yes, please deliver it at 8pm. Thanks!\n\nJohn",
                .subject = "RE: Your order #7KQ2XM",
                .from = "john.smith@contoso.example",
                .to = "pedidos@pizzaria.example",
                .message_id = "SA1PR12MB7654E2A9B1C3D4F5A6B7C8D9E0F1@SA1PR12MB7654.namprd12.prod.outlook.example",
                .in_reply_to = "20251203130000.7KQ2XM.2@pizzaria.example",
                .references = "20251203130000.7KQ2XM.2@pizzaria.example",
                .date = 1764777759,
                .results = "missing missing missing",
        },
        {
                .file = "forwarded.eml",
                .text = "Quero pedir de novo igual a esse, mas entregar no meu trabalho: Av. Paulista, 1578.",
                .subject = "Fwd: Pedido #3HT9QP entregue",
                .from = "carla.mendes@gmail.example",
                .to = "pedidos@pizzaria.example",
                .message_id = "CAF3kQ9x7Lm2Pq8Rt4Vw6Yz0Bc1De5Fg3Hj@mail.gmail.example",
                .references = "",
                .date = 1764858005,
                .results = "missing missing missing",
        },
        {
                /* format=flowed: the soft-broken first line is joined */
                .file = "signature.eml",
                .text = "Hi, do you deliver to Itaim Bibi? I'd like a four cheese pizza and some fries.\n\n"
                        "Thanks,\nPaul",
                .subject = "Delivery to Itaim Bibi?",
                .from = "paul.becker@acme.example",
                .to = "pedidos@pizzaria.example",
                .message_id = "7c1e2f3a-9b8d-4e6f-a1b2-c3d4e5f6a7b8@acme.example",
                .references = "",
                .date = 1765316642,
                .results = "missing missing missing",
        },
        {
                .file = "iphone.eml",
                .text = "Quero 2 calabresa e 1 guaraná, pago no cartão",
                .subject = "Re: O que vai ser hoje?",
                .from = "rafael.torres@icloud.example",
                .to = "pedidos@pizzaria.example",
                .message_id = "5D7E9F1A-2B3C-4D5E-8F9A-0B1C2D3E4F5A@icloud.example",
                .in_reply_to = "20251210225000.9XKP2M.1@pizzaria.example",
                .references = "20251210225000.9XKP2M.1@pizzaria.example",
                .date = 1765407520,
                .results = "missing missing missing",
        },
        {
                /* the attached .txt comes first and is skipped, and so is the image */
                .file = "attachment.eml",
                .text = "Quero o mesmo pedido da lista em anexo, mais um brownie.",
                .subject = "Pedido com lista",
                .from = "luiza.prado@yahoo.example",
                .to = "pedidos@pizzaria.example",
                .message_id = "1765465200.998877.luiza@yahoo.example",
                .references = "",
                .date = 1765465200,
                .results = "missing missing missing",
        },
        {
                .file = "auto-reply.eml",
                .text = "Estou de férias até 05/01/2026, com acesso limitado ao e-mail.\n"
                        "Em caso de urgência, ligue para (11) 5555-0199.",
                .subject = "Resposta automática: Seu pedido #7KQ2XM",
                .from = "roberto.alves@empresa.example",
                .to = "pedidos@pizzaria.example",
                .message_id = "auto.7f3e1a2b@empresa.example",
                .in_reply_to = "20251203224500.7KQ2XM.1@pizzaria.example",
                .references = "",
                .date = 1764801961,
                .ignore = MAIL_IGNORE_AUTO_SUBMITTED,
                .results = "missing missing missing",
        },
        {
                /* null envelope sender; also Auto-Submitted, but a bounce is reported first */
                .file = "bounce.eml",
                .envelope = "",
                .text = "This is the mail system at host mx.pizzaria.example.\n\n"
                        "I'm sorry to have to inform you that your message could not\n"
                        "be delivered to one or more recipients. It's attached below.\n\n"
                        "For further assistance, please send mail to postmaster.\n\n"
                        "                   The mail system\n\n"
                        "<cliente.antigo@bol.example>: host mx.bol.example[203.0.113.25] said: 550 5.1.1\n"
                        "    <cliente.antigo@bol.example>: Recipient address rejected: User unknown\n"
                        "    (in reply to RCPT TO command)",
                .subject = "Undelivered Mail Returned to Sender",
                .from = "mailer-daemon@mx.pizzaria.example",
                .to = "pedidos@pizzaria.example",
                .message_id = "20251212130007.8B1F0C2A3D@mx.pizzaria.example",
                .references = "",
                .date = 1765544407,
                .ignore = MAIL_IGNORE_BOUNCE,
                .results = "missing missing missing",
        },
        {
                /* List-Id and Precedence: bulk: the list is reported */
                .file = "list.eml",
                .envelope = "bounce-4521-99@news.mercado.example",
                .text = "Queijos com 30% de desconto só nesta semana!\n"
                        "Mussarela, provolone e gorgonzola para a sua pizzaria.",
                .subject = "Ofertas da semana: queijos com 30% de desconto",
                .from = "ofertas@news.mercado.example",
                .to = "pedidos@pizzaria.example",
                .message_id = "news.2025-12-15.4521@news.mercado.example",
                .references = "",
                .date = 1765792800,
                .ignore = MAIL_IGNORE_LIST,
                .results = "missing missing missing",
        },
        {
                /* our MTA says DMARC failed; the pass below it was written by someone else */
                .file = "auth-results.eml",
                .text = "Seu pedido foi cancelado. Para receber o reembolso, confirme seus dados em "
                        "http://banco.example.invalid/reembolso",
                .subject = "Pedido cancelado - reembolso pendente",
                .from = "suporte@banco.example",
                .to = "pedidos@pizzaria.example",
                .message_id = "a1b2c3d4.reembolso@relay.mail-cheap.example",
                .references = "",
                .date = 1765865560,
                .auth = MAIL_AUTH_UNAUTHENTICATED,
                .results = "fail fail fail",
        },
        {
                /* trusting nobody who wrote a header: the untrusted dmarc=pass counts for nothing */
                .file = "auth-results.eml",
                .trusted = "mx.other.example",
                .text = "Seu pedido foi cancelado. Para receber o reembolso, confirme seus dados em "
                        "http://banco.example.invalid/reembolso",
                .subject = "Pedido cancelado - reembolso pendente",
                .from = "suporte@banco.example",
                .to = "pedidos@pizzaria.example",
                .message_id = "a1b2c3d4.reembolso@relay.mail-cheap.example",
                .references = "",
                .date = 1765865560,
                .auth = MAIL_AUTH_UNKNOWN,
                .results = "missing missing missing",
        },
        {
                /* the text/plain part has no closing boundary and no final newline */
                .file = "broken-mime.eml",
                .text = "Quero uma pizza de frango com catupiry e uma batata frita.\nRua Frei Caneca, 800.",
                .subject = "pedido",
                .from = "diego.martins@hotmail.example",
                .to = "pedidos@pizzaria.example",
                .message_id = "BN8PR04MB6123.diego@hotmail.example",
                .references = "",
                .date = 1766013620,
                .results = "missing missing missing",
        },
        {
                /* bytes that are not UTF-8 are read as Windows-1252, one by one; NUL is dropped */
                .file = "invalid-utf8.eml",
                .text = "Olá, quero uma pizza de calabresaÿ\n"
                        "Preço ok? Ã( â‚ fim\n"
                        "Overlong À¯ e surrogate í € e nulo  aqui\n"
                        "Emoji ok: 🍕 e truncado ðŸ\xEF\xBF\xBD",
                .subject = "Pedido rápido ÿ",
                .from = "fernanda.rocha@ig.example",
                .to = "pedidos@pizzaria.example",
                .message_id = "20251219000000.FR@ig.example",
                .references = "",
                .date = 1766102400,
                .results = "missing missing missing",
        },
        {
                /* our own notification came back; it is auto-generated too, ourselves comes first */
                .file = "own-loop.eml",
                .text = "Seu pedido #7KQ2XM saiu para entrega! Chega por volta das 20:35.",
                .subject = "Seu pedido #7KQ2XM saiu para entrega",
                .from = "pedidos@pizzaria.example",
                .to = "cliente@forward.example",
                .message_id = "20251203231000.7KQ2XM.4@pizzaria.example",
                .references = "",
                .date = 1764803400,
                .ignore = MAIL_IGNORE_OURSELVES,
                .results = "missing missing missing",
        },
};

static void test_corpus(void **state _unused_) {
        for (size_t i = 0; i < ELEMENTSOF(corpus); i++) {
                const CorpusCase *c = &corpus[i];
                _cleanup_strv_free_ char **trusted = words(c->trusted ?: MTA);
                char *own[] = { OWN, NULL };
                MailParseOptions o = {
                        .max_size = c->max_size,
                        .max_text = c->max_text,
                        .max_headers = c->max_headers,
                        .envelope_sender = c->envelope,
                        .own_addresses = own,
                        .trusted_authserv_ids = trusted,
                };
                _cleanup_(mail_content_freep) MailContent *m = NULL;
                _cleanup_free_ char *data = NULL, *results = NULL;
                size_t size;
                int r;

                data = read_mail_corpus(c->file, &size);
                r = mail_parse(data, size, &o, &m);
                if (r != c->r)
                        fail_msg("%s (row %zu): mail_parse() = %d, want %d", c->file, i, r, c->r);
                if (r < 0) {
                        assert_null(m);
                        continue;
                }

                check_str("text", c->file, m->text, c->text);
                check_str("subject", c->file, m->subject, c->subject);
                check_str("from", c->file, m->from, c->from);
                check_strv("to", c->file, m->to, c->to);
                check_str("message_id", c->file, m->message_id, c->message_id);
                check_str("in_reply_to", c->file, m->in_reply_to, c->in_reply_to);
                check_strv("references", c->file, m->references, c->references);
                assert_int_equal(m->date_usec, c->date * USEC_PER_SEC);
                check_str("ignore", c->file, mail_ignore_to_string(m->ignore), mail_ignore_to_string(c->ignore));
                check_str("auth", c->file, mail_auth_to_string(mail_authenticated(m)), mail_auth_to_string(c->auth));
                results = mem_printf("%s %s %s", mail_auth_result_to_string(m->spf),
                                     mail_auth_result_to_string(m->dkim), mail_auth_result_to_string(m->dmarc));
                check_str("results", c->file, results, c->results);
                assert_int_equal(m->text_from_html, c->html);
                assert_int_equal(m->text_truncated, c->truncated);
                assert_false(m->mime_limited);
        }
}

/* Parse a message made of the given header lines and body. */
static int parse_text(const char *headers, const char *body, const MailParseOptions *o, MailContent **ret) {
        _cleanup_free_ char *msg = mem_printf("%s\n%s", headers, body);

        assert_non_null(msg);
        return mail_parse(msg, strlen(msg), o, ret);
}

typedef struct TextCase {
        const char *content_type; /* NULL: text/plain; charset=utf-8 */
        const char *body;
        const char *text;
} TextCase;

static void run_text_cases(const TextCase *cases, size_t n) {
        for (size_t i = 0; i < n; i++) {
                _cleanup_(mail_content_freep) MailContent *m = NULL;
                _cleanup_free_ char *h =
                        mem_printf("From: cliente@example.com\nTo: pedidos@pizzaria.example\nSubject: t\nMIME-Version: "
                                   "1.0\nContent-Type: %s\n",
                                   cases[i].content_type ?: "text/plain; charset=utf-8");

                assert_int_equal(parse_text(h, cases[i].body, NULL, &m), 0);
                if (!streq(m->text, cases[i].text))
                        fail_msg("row %zu: got '%s', want '%s'", i, m->text, cases[i].text);
        }
}

static void test_quotes(void **state _unused_) {
        static const TextCase cases[] = {
                /* Outlook on the web: a rule, then the header block */
                { NULL,
                  "Pode ser às 21h.\n\n________________________________\nFrom: Pizzaria Bella "
                  "<pedidos@pizzaria.example>\nSent: Wednesday, December 3, 2025 7:45 PM\nTo: Ana "
                  "<ana@example.com>\nSubject: Seu pedido\n\nTexto antigo\n",
                  "Pode ser às 21h." },
                /* the same in Portuguese */
                { NULL,
                  "Sim\n\nDe: Pizzaria Bella <pedidos@pizzaria.example>\nEnviado: quarta-feira, 3 de dezembro de "
                  "2025 19:45\nPara: Ana\nAssunto: Seu pedido\n\nantigo\n",
                  "Sim" },
                /* Gmail's plain text of a bold header block */
                { NULL,
                  "Ok, vou querer.\n\n*From:* Pizzaria Bella <pedidos@pizzaria.example>\n*Date:* Wed, Dec 3, "
                  "2025 at 7:45 PM\n*Subject:* Menu\n*To:* <ana@example.com>\n\nMenu antigo\n",
                  "Ok, vou querer." },
                /* a "From:" line in the customer's words is not a header block */
                { NULL, "From: my house to yours, 2 pizzas please\nThanks\n",
                  "From: my house to yours, 2 pizzas please\nThanks" },
                { NULL, "Ok, obrigado\n-----Mensagem original-----\nDe: Pizzaria\nAssunto: x\n", "Ok, obrigado" },
                { NULL, "Olha isso\n\n---------- Mensagem encaminhada ---------\nDe: Pizzaria\n", "Olha isso" },
                { NULL, "See below\n\n-------- Forwarded Message --------\nSubject: x\n", "See below" },
                { NULL, "Veja\n\nBegin forwarded message:\n\nFrom: Pizzaria\n", "Veja" },
                { NULL, "Veja\n\nInício da mensagem encaminhada:\n\nDe: Pizzaria\n", "Veja" },
                /* bottom-posting: the answer below the quote is kept */
                { NULL,
                  "On Wed, Dec 3, 2025 at 7:45 PM Pizzaria Bella <pedidos@pizzaria.example> wrote:\n> Your "
                  "total is R$64.90.\n> Reply YES to confirm.\n\nYES\n",
                  "YES" },
                /* an attribution without '>' lines after it: everything after is the old message */
                { NULL, "Sounds good\n\nOn Wed, Dec 3, 2025 at 7:45 PM Pizzaria <p@x.example> wrote:\nYour order\n",
                  "Sounds good" },
                /* wrapped over three lines */
                { NULL,
                  "Ok!\n\nEm qua., 3 de dez. de 2025 às 19:45, Pizzaria Bella Napoli Delivery\nExpress "
                  "<pedidos@pizzaria-bella-napoli-delivery.example>\nescreveu:\n\n> texto\n",
                  "Ok!" },
                /* interleaved answers */
                { NULL, "> Qual o endereço?\nRua Augusta, 1500\n  > Forma de pagamento?\nPix\n",
                  "Rua Augusta, 1500\nPix" },
                /* Portuguese that merely starts with "Em" and has a number */
                { NULL, "Em casa às 20h, pode ser?\nMeu filho escreveu: quero pizza\n",
                  "Em casa às 20h, pode ser?\nMeu filho escreveu: quero pizza" },
                /* an attribution needs a date: no digit, no attribution */
                { NULL, "On second thought, my brother wrote:\n> nothing\nno onions\n",
                  "On second thought, my brother wrote:\nno onions" },
                /* only dash dash space is the signature delimiter */
                { NULL, "Obrigado\n--\nAna\n", "Obrigado\n--\nAna" },
                { NULL, "Obrigado\n-- \nAna\nTel. 11 5555-0100\n", "Obrigado" },
                { NULL, "Quero 1 açaí\n\nSent from my Galaxy\n", "Quero 1 açaí" },
                { NULL, "Quero 1 açaí\n\nEnviado do meu Android\n", "Quero 1 açaí" },
                { NULL, "Two cokes\n\nGet Outlook for Android<https://aka.ms/AAb9ysg>\n", "Two cokes" },
                { NULL, "Duas cocas\n\nObter o Outlook para Android<https://aka.ms/AAb9ysg>\n", "Duas cocas" },
                /* a long line is not a footer */
                { NULL,
                  "Sent from my office: I want two pizzas delivered to Rua Augusta 1500 before eight o'clock, "
                  "thanks\n",
                  "Sent from my office: I want two pizzas delivered to Rua Augusta 1500 before eight o'clock, "
                  "thanks" },
                /* blank lines: trimmed at both ends, runs made one, trailing blanks cut */
                { NULL, "\n\n  Oi  \n\n\n\nTudo bem?   \n\n", "  Oi\n\nTudo bem?" },
                { NULL, "", "" },
                { NULL, "> only a quote\n", "" },
                /* format=flowed with DelSp */
                { "text/plain; charset=utf-8; format=flowed; delsp=yes", "Quero uma pizza de cala \nbresa.\n",
                  "Quero uma pizza de calabresa." },
                /* flowed quoted lines are joined and then dropped */
                { "text/plain; charset=utf-8; format=flowed",
                  "Sim.\n\nEm 3 de dez. de 2025, às 19:45, Pizzaria escreveu:\n> Confirma o \n> pedido?\n", "Sim." },
        };
        run_text_cases(cases, ELEMENTSOF(cases));
}

static void test_html(void **state _unused_) {
        static const TextCase cases[] = {
                /* Gmail's HTML reply: attribution, then the quote in a <blockquote> */
                { "text/html; charset=utf-8",
                  "<div dir=\"ltr\">Sim, pode!</div><br><div class=\"gmail_quote\"><div dir=\"ltr\" "
                  "class=\"gmail_attr\">Em qua., 3 de dez. de 2025 às 19:45, Pizzaria Bella &lt;<a "
                  "href=\"mailto:pedidos@pizzaria.example\">pedidos@pizzaria.example</a>&gt; "
                  "escreveu:<br></div><blockquote class=\"gmail_quote\">Seu pedido #7KQ2XM<br>Total: R$ "
                  "124,80</blockquote></div>",
                  "Sim, pode!" },
                /* Outlook's HTML reply: a rule and a bold header block */
                { "text/html",
                  "<p class=MsoNormal>Yes please<o:p></o:p></p><p class=MsoNormal><o:p>&nbsp;</o:p></p><hr><div><b>"
                  "From:</b> Pizzaria Bella &lt;pedidos@pizzaria.example&gt;<br><b>Sent:</b> Wednesday, December 3, "
                  "2025 7:45 PM<br><b>To:</b> John<br><b>Subject:</b> Your order</div><p>old text</p>",
                  "Yes please" },
                /* a quote without attribution is still a quote */
                { "text/html", "<blockquote>antigo<br>texto</blockquote>novo", "novo" },
                { "text/html", "<pre>  2x  pizza\n  1x  coca</pre>depois", "  2x  pizza\n  1x  coca\ndepois" },
                { "text/html", "a&#0;b&#x110000;c&#150;d&#xD800;e&bogus;f&amp g&#x41;&#65;",
                  "a\xEF\xBF\xBD"
                  "b\xEF\xBF\xBD"
                  "c–d\xEF\xBF\xBD"
                  "e&bogus;f&amp gAA" },
                { "text/html", "1 < 2 e 3 > 2, <3", "1 < 2 e 3 > 2, <3" },
                { "text/html", "antes<script>var x = '</p>';", "antes" },
                { "text/html", "<head><title>t</title>corpo", "corpo" },
                { "text/html", "a<!-- b", "a" },
                { "text/html", "<a title=\"x>y\" href='z>w'>link</a>", "link" },
                { "text/html", "<P>Um</P><P>Dois</P><BR>Tres", "Um\nDois\n\nTres" },
                { "text/html", "<style>p{}</style><STYLE>x</STYLE>ok", "ok" },
                { "text/html", "  muitos   espaços \n e\tlinhas  ", "muitos espaços e linhas" },
                { "text/html", "pre&shy;ço&nbsp;&nbsp;bom&zwj;", "preço  bom" },
                { "text/html; charset=iso-8859-1", "<p>Cora\xe7\xe3o &eacute; &#231;</p>", "Coração é ç" },
        };
        run_text_cases(cases, ELEMENTSOF(cases));
}

static void test_charsets(void **state _unused_) {
        static const TextCase cases[] = {
                /* "ISO-8859-1" mail with Windows-1252 quotes, as Outlook sends it */
                { "text/plain; charset=iso-8859-1", "\x93Oi\x94 \x96 ok", "“Oi” – ok" },
                /* mislabelled: it is valid UTF-8 */
                { "text/plain; charset=ISO-8859-1", "Ol\xc3\xa1", "Olá" },
                /* no label, Latin-1 bytes */
                { "text/plain", "Ol\xe1", "Olá" },
                { "text/plain; charset=us-ascii", "caf\xe9", "café" },
                /* through iconv */
                { "text/plain; charset=iso-8859-15", "\xa4 10", "€ 10" },
                { "text/plain; charset=koi8-r", "\xf0\xc9\xc3\xc3\xc1", "Пицца" },
                { "text/plain; charset=utf-7", "caf+AOk-", "café" },
                /* a charset nobody knows: UTF-8, then Windows-1252 */
                { "text/plain; charset=x-made-up", "caf\xc3\xa9 \xe0", "café à" },
                /* not Shift_JIS at all: same fallback */
                { "text/plain; charset=shift_jis", "caf\xc3\xa9\xff", "caféÿ" },
                { "text/plain; charset=utf-8", "\xef\xbb\xbfOi", "Oi" },
                { "text/plain; charset=utf-8", "a\rb\r\nc", "a\nb\nc" },
                { "text/plain; charset=utf-8",
                  "a\x01\x07"
                  "b\x1b"
                  "c\x7f\xc2\x85"
                  "d\te",
                  "abcd\te" },
        };
        run_text_cases(cases, ELEMENTSOF(cases));
}

static void test_alternative_empty_plain(void **state _unused_) {
        _cleanup_(mail_content_freep) MailContent *m = NULL;

        assert_int_equal(parse_text("From: a@example.com\nMIME-Version: 1.0\nContent-Type: multipart/alternative; "
                                    "boundary=b\n",
                                    "--b\nContent-Type: text/plain\n\n \n\n--b\nContent-Type: text/html\n\n<p>Só "
                                    "no HTML</p>\n--b--\n",
                                    NULL, &m),
                         0);
        assert_string_equal(m->text, "Só no HTML");
        assert_true(m->text_from_html);
}

typedef struct IgnoreCase {
        const char *from; /* NULL: cliente@example.com */
        const char *headers;
        const char *envelope;
        MailIgnore ignore;
} IgnoreCase;

static void test_ignore(void **state _unused_) {
        static const IgnoreCase cases[] = {
                { NULL, "", "cliente@example.com", MAIL_IGNORE_NONE },
                { NULL, "", NULL, MAIL_IGNORE_NONE },
                { NULL, "Auto-Submitted: no\n", NULL, MAIL_IGNORE_NONE },
                { NULL, "Auto-Submitted: NO (a person)\n", NULL, MAIL_IGNORE_NONE },
                { NULL, "Auto-Submitted:\n", NULL, MAIL_IGNORE_NONE },
                { NULL, "Auto-Submitted: auto-generated\n", NULL, MAIL_IGNORE_AUTO_SUBMITTED },
                { NULL, "Auto-Submitted: Auto-Replied (vacation)\n", NULL, MAIL_IGNORE_AUTO_SUBMITTED },
                { NULL, "auto-submitted: auto-notified; owner-email=x@example.com\n", NULL,
                  MAIL_IGNORE_AUTO_SUBMITTED },
                { NULL, "X-Autoreply: yes\n", NULL, MAIL_IGNORE_AUTO_SUBMITTED },
                { NULL, "Precedence: bulk\n", NULL, MAIL_IGNORE_BULK },
                { NULL, "Precedence: JUNK\n", NULL, MAIL_IGNORE_BULK },
                { NULL, "Precedence: list\n", NULL, MAIL_IGNORE_LIST },
                { NULL, "Precedence: first-class\n", NULL, MAIL_IGNORE_NONE },
                { NULL, "List-Id: Ofertas <ofertas.example.com>\n", NULL, MAIL_IGNORE_LIST },
                { NULL, "", "", MAIL_IGNORE_BOUNCE },
                { NULL, "", "<>", MAIL_IGNORE_BOUNCE },
                { NULL, "", " <> ", MAIL_IGNORE_BOUNCE },
                { NULL, "", "<MAILER-DAEMON@mx.example.com>", MAIL_IGNORE_BOUNCE },
                { NULL, "", "Postmaster@example.com", MAIL_IGNORE_BOUNCE },
                { NULL, "", "postmaster", MAIL_IGNORE_BOUNCE },
                { NULL, "", "postmaster.sp@example.com", MAIL_IGNORE_NONE },
                { "Mailer-Daemon@mx.example.com", "", NULL, MAIL_IGNORE_BOUNCE },
                { "postmaster@example.com", "", "<>", MAIL_IGNORE_BOUNCE },
                /* no envelope from the caller: the Return-Path header tells */
                { NULL, "Return-Path: <>\n", NULL, MAIL_IGNORE_BOUNCE },
                /* the caller's envelope sender wins over the header */
                { NULL, "Return-Path: <>\n", "cliente@example.com", MAIL_IGNORE_NONE },
                { "PEDIDOS@pizzaria.example", "", NULL, MAIL_IGNORE_OURSELVES },
                { NULL, "", "<pedidos@PIZZARIA.example>", MAIL_IGNORE_OURSELVES },
                { NULL, "Return-Path: <pedidos@pizzaria.example>\n", NULL, MAIL_IGNORE_OURSELVES },
                /* several reasons: the first in enum order */
                { NULL, "List-Id: <l.example.com>\nPrecedence: bulk\n", NULL, MAIL_IGNORE_LIST },
                { NULL, "Precedence: bulk\nList-Id: <l.example.com>\n", NULL, MAIL_IGNORE_LIST },
                { NULL, "List-Id: <l.example.com>\nAuto-Submitted: auto-replied\n", NULL, MAIL_IGNORE_AUTO_SUBMITTED },
                { NULL, "Auto-Submitted: auto-replied\nList-Id: <l.example.com>\n", "", MAIL_IGNORE_BOUNCE },
                { "pedidos@pizzaria.example", "Auto-Submitted: auto-generated\n", "", MAIL_IGNORE_OURSELVES },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char *own[] = { OWN, "contato@pizzaria.example", NULL };
                MailParseOptions o = { .envelope_sender = cases[i].envelope, .own_addresses = own };
                _cleanup_(mail_content_freep) MailContent *m = NULL;
                _cleanup_free_ char *h = mem_printf("From: %s\nTo: pedidos@pizzaria.example\nSubject: t\n%s",
                                                    cases[i].from ?: "cliente@example.com", cases[i].headers);

                assert_int_equal(parse_text(h, "oi\n", &o, &m), 0);
                if (m->ignore != cases[i].ignore)
                        fail_msg("row %zu: got %s, want %s", i, mail_ignore_to_string(m->ignore),
                                 mail_ignore_to_string(cases[i].ignore));
        }
}

typedef struct AuthCase {
        const char *headers;
        const char *trusted; /* NULL: none */
        const char *results; /* "spf dkim dmarc" */
        MailAuth auth;
} AuthCase;

static void test_auth(void **state _unused_) {
        static const AuthCase cases[] = {
                { "", MTA, "missing missing missing", MAIL_AUTH_UNKNOWN },
                { "Authentication-Results: mx.pizzaria.example; none\n", MTA, "missing missing missing",
                  MAIL_AUTH_UNKNOWN },
                { "Authentication-Results: mx.pizzaria.example; spf=fail smtp.mailfrom=x.example; dkim=fail\n", MTA,
                  "fail fail missing", MAIL_AUTH_UNAUTHENTICATED },
                { "Authentication-Results: mx.pizzaria.example; spf=fail; dkim=pass header.d=x.example\n", MTA,
                  "fail pass missing", MAIL_AUTH_AUTHENTICATED },
                /* the rule is "SPF and DKIM both fail": an unsigned message with SPF fail passes it */
                { "Authentication-Results: mx.pizzaria.example; spf=fail; dkim=none; dmarc=none\n", MTA,
                  "fail none none", MAIL_AUTH_AUTHENTICATED },
                { "Authentication-Results: mx.pizzaria.example; spf=softfail; dkim=fail\n", MTA,
                  "softfail fail missing", MAIL_AUTH_AUTHENTICATED },
                { "Authentication-Results: mx.pizzaria.example; spf=pass; dkim=pass; dmarc=fail\n", MTA,
                  "pass pass fail", MAIL_AUTH_UNAUTHENTICATED },
                /* two signatures, one good */
                { "Authentication-Results: mx.pizzaria.example; dkim=fail header.d=a.example; dkim=pass "
                  "header.d=b.example; dkim=fail header.d=c.example\n",
                  MTA, "missing pass missing", MAIL_AUTH_AUTHENTICATED },
                /* two trusted headers: the topmost decides */
                { "Authentication-Results: mx.pizzaria.example; dmarc=pass\nAuthentication-Results: "
                  "mx.pizzaria.example; dmarc=fail; spf=fail\n",
                  MTA, "fail missing pass", MAIL_AUTH_AUTHENTICATED },
                { "Authentication-Results: evil.example; spf=pass; dkim=pass; dmarc=pass\n", MTA,
                  "missing missing missing", MAIL_AUTH_UNKNOWN },
                { "Authentication-Results: mx.pizzaria.example.evil.example; dmarc=pass\n", MTA,
                  "missing missing missing", MAIL_AUTH_UNKNOWN },
                { "Authentication-Results: mx.pizzaria.example; dmarc=pass\n", NULL, "missing missing missing",
                  MAIL_AUTH_UNKNOWN },
                { "Authentication-Results: MX.Pizzaria.Example; SPF=PASS\n", MTA, "pass missing missing",
                  MAIL_AUTH_AUTHENTICATED },
                { "Authentication-Results: \"mx.pizzaria.example\"; spf=pass\n", MTA, "pass missing missing",
                  MAIL_AUTH_AUTHENTICATED },
                { "Authentication-Results: mx.pizzaria.example 1; spf = pass; dkim/1=pass\n", MTA, "pass pass missing",
                  MAIL_AUTH_AUTHENTICATED },
                /* comments may hold ';', '=' and more comments */
                { "Authentication-Results: (x) mx.pizzaria.example (y; dmarc=pass); spf=pass (a; b (c; dkim=pass) "
                  "e=f) smtp.mailfrom=x.example; dkim=fail reason=\"bad; sig\"\n",
                  MTA, "pass fail missing", MAIL_AUTH_AUTHENTICATED },
                /* folded over lines, another trusted id */
                { "Authentication-Results: mx2.pizzaria.example;\n\tdmarc=fail\n\t(p=reject)\n",
                  MTA " mx2.pizzaria.example", "missing missing fail", MAIL_AUTH_UNAUTHENTICATED },
                /* results that do not exist are no results */
                { "Authentication-Results: mx.pizzaria.example; spf=hardfail; dkim=; =pass; dmarc\n", MTA,
                  "missing missing missing", MAIL_AUTH_UNKNOWN },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_strv_free_ char **trusted = words(cases[i].trusted);
                MailParseOptions o = { .trusted_authserv_ids = trusted };
                _cleanup_(mail_content_freep) MailContent *m = NULL;
                _cleanup_free_ char *results = NULL, *h = mem_printf("%sFrom: a@example.com\n", cases[i].headers);

                assert_int_equal(parse_text(h, "oi\n", &o, &m), 0);
                results = mem_printf("%s %s %s", mail_auth_result_to_string(m->spf),
                                     mail_auth_result_to_string(m->dkim), mail_auth_result_to_string(m->dmarc));
                if (!streq(results, cases[i].results) || mail_authenticated(m) != cases[i].auth)
                        fail_msg("row %zu: got %s → %s, want %s → %s", i, results,
                                 mail_auth_to_string(mail_authenticated(m)), cases[i].results,
                                 mail_auth_to_string(cases[i].auth));
        }
}

static void test_ses_verdicts(void **state _unused_) {
        static const struct {
                const char *spf, *dkim, *dmarc;
                int r;
                MailAuth auth;
        } cases[] = {
                { "PASS", "PASS", "PASS", 0, MAIL_AUTH_AUTHENTICATED },
                { "FAIL", "FAIL", "GRAY", 0, MAIL_AUTH_UNAUTHENTICATED },
                { "FAIL", "PASS", NULL, 0, MAIL_AUTH_AUTHENTICATED },
                { "PROCESSING_FAILED", "PASS", "FAIL", 0, MAIL_AUTH_UNAUTHENTICATED },
                { "GRAY", "GRAY", "GRAY", 0, MAIL_AUTH_AUTHENTICATED },
                { NULL, NULL, NULL, 0, MAIL_AUTH_UNKNOWN },
                /* SES spells them in capitals; anything else leaves the results as they were */
                { "pass", "PASS", "PASS", -EINVAL, MAIL_AUTH_UNAUTHENTICATED },
                { "PASS", "DISABLED", "PASS", -EINVAL, MAIL_AUTH_UNAUTHENTICATED },
        };
        _cleanup_free_ char *data = NULL;
        char *trusted[] = { MTA, NULL };
        MailParseOptions o = { .trusted_authserv_ids = trusted };
        size_t size;

        data = read_mail_corpus("auth-results.eml", &size);
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(mail_content_freep) MailContent *m = NULL;

                /* the headers say fail, fail, fail; the verdicts replace them */
                assert_int_equal(mail_parse(data, size, &o, &m), 0);
                assert_int_equal(mail_content_set_ses_verdicts(m, cases[i].spf, cases[i].dkim, cases[i].dmarc),
                                 cases[i].r);
                if (mail_authenticated(m) != cases[i].auth)
                        fail_msg("row %zu: got %s", i, mail_auth_to_string(mail_authenticated(m)));
        }
        assert_int_equal(mail_content_set_ses_verdicts(NULL, "PASS", "PASS", "PASS"), -EINVAL);
        assert_int_equal(mail_authenticated(NULL), MAIL_AUTH_UNKNOWN);
}

static void test_names(void **state _unused_) {
        for (int i = 0; i < _MAIL_IGNORE_MAX; i++)
                assert_int_equal(mail_ignore_from_string(mail_ignore_to_string(i)), i);
        for (int i = 1; i < _MAIL_AUTH_RESULT_MAX; i++)
                assert_int_equal(mail_auth_result_from_string(mail_auth_result_to_string(i)), i);
        for (int i = 0; i < _MAIL_AUTH_MAX; i++)
                assert_int_equal(mail_auth_from_string(mail_auth_to_string(i)), i);
        assert_string_equal(mail_ignore_to_string(MAIL_IGNORE_AUTO_SUBMITTED), "auto-submitted");
        assert_null(mail_ignore_to_string(_MAIL_IGNORE_MAX));
        assert_null(mail_ignore_to_string(_MAIL_IGNORE_INVALID));
        assert_int_equal(mail_ignore_from_string("robot"), _MAIL_IGNORE_INVALID);
        assert_int_equal(mail_ignore_from_string(NULL), _MAIL_IGNORE_INVALID);
        assert_int_equal(mail_auth_result_from_string("missing"), _MAIL_AUTH_RESULT_INVALID);
        assert_int_equal(mail_auth_result_from_string("PermError"), MAIL_AUTH_RESULT_PERMERROR);
        assert_int_equal(mail_auth_result_from_ses("GRAY"), MAIL_AUTH_RESULT_NONE);
        assert_int_equal(mail_auth_result_from_ses("PROCESSING_FAILED"), MAIL_AUTH_RESULT_TEMPERROR);
        assert_int_equal(mail_auth_result_from_ses("gray"), _MAIL_AUTH_RESULT_INVALID);
        assert_int_equal(mail_auth_result_from_ses(NULL), _MAIL_AUTH_RESULT_INVALID);
}

/* A message whose text/plain body sits under depth nested multiparts, after
 * skip binary parts. */
static char *nested(unsigned depth, unsigned skip) {
        _cleanup_free_ char *body = mem_strdup("Content-Type: text/plain\n\nfundo\n");

        for (unsigned d = depth; d > 0; d--) {
                _cleanup_free_ char *skipped = mem_strdup("");
                for (unsigned s = 0; d == depth && s < skip; s++) {
                        char *n = mem_printf("%s--b%u\nContent-Type: application/octet-stream\n\nx\n", skipped, d);
                        free(skipped);
                        skipped = n;
                }
                char *n = mem_printf("Content-Type: multipart/mixed; boundary=b%u\n\n%s--b%u\n%s--b%u--\n", d, skipped,
                                     d, body, d);
                free(body);
                body = n;
        }
        return mem_printf("From: a@example.com\nMIME-Version: 1.0\n%s", body);
}

/* head, then unit n times. */
static char *repeat(const char *head, const char *unit, unsigned n) {
        size_t h = strlen(head), u = strlen(unit);
        char *s = malloc(h + u * n + 1);

        assert_non_null(s);
        memcpy(s, head, h);
        for (unsigned i = 0; i < n; i++)
                memcpy(s + h + u * i, unit, u);
        s[h + u * n] = '\0';
        return s;
}

/* Floods that would make GMime build a huge tree are refused before it
 * starts: more header fields than max_headers, more "--" lines than 64 per
 * allowed part. */
static void test_floods(void **state _unused_) {
        static const char multipart[] = "From: a@example.com\nMIME-Version: 1.0\nContent-Type: multipart/mixed; "
                                        "boundary=b\n\n";
        static const struct {
                const char *head, *unit;
                unsigned n, max_parts, max_headers;
                int r;
                bool limited;
        } cases[] = {
                { multipart, "--b\nContent-Type: image/gif\n\nx\n", 4000, 0, 0, 0, true },
                { multipart, "--b\nContent-Type: image/gif\n\nx\n", 5000, 0, 0, -E2BIG, false },
                { multipart, "--b\nContent-Type: image/gif\n\nx\n", 5000, 100, 0, 0, true },
                /* rules of dashes in a text are counted too, but a text has few */
                { "From: a@example.com\n\n", "----------\n", 300, 0, 0, 0, false },
                { "From: a@example.com\n", "X-Field: x\n", 499, 0, 0, 0, false },
                { "From: a@example.com\n", "X-Field: x\n", 500, 0, 0, -E2BIG, false },
                { "From: a@example.com\n", "X-Field: x\n\tfolded\n", 5000, 0, 6000, 0, false },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(mail_content_freep) MailContent *m = NULL;
                _cleanup_free_ char *msg = repeat(cases[i].head, cases[i].unit, cases[i].n);
                MailParseOptions o = { .max_parts = cases[i].max_parts, .max_headers = cases[i].max_headers };
                int r = mail_parse(msg, strlen(msg), &o, &m);

                if (r != cases[i].r || (r == 0 && m->mime_limited != cases[i].limited))
                        fail_msg("row %zu: got %d (limited %d)", i, r, r == 0 ? m->mime_limited : -1);
        }
}

static void test_limits(void **state _unused_) {
        static const struct {
                unsigned depth, skip, max_depth, max_parts;
                const char *text;
                bool limited;
        } cases[] = {
                { 3, 0, 0, 0, "fundo", false },
                { 8, 0, 0, 0, "fundo", false },
                { 9, 0, 0, 0, "", true },
                { 9, 0, 9, 0, "fundo", false },
                { 30, 0, 30, 0, "fundo", false },
                { 3, 2, 3, 3 + 2, "", true },
                { 3, 2, 3, 3 + 2 + 1, "fundo", false },
                { 1, 100, 0, 0, "", true },
                { 1, 100, 0, 102, "fundo", false },
        };
        MailContent *m = NULL;

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(mail_content_freep) MailContent *c = NULL;
                _cleanup_free_ char *msg = nested(cases[i].depth, cases[i].skip);
                MailParseOptions o = { .max_depth = cases[i].max_depth, .max_parts = cases[i].max_parts };

                assert_int_equal(mail_parse(msg, strlen(msg), &o, &c), 0);
                if (!streq(c->text, cases[i].text) || c->mime_limited != cases[i].limited)
                        fail_msg("row %zu: got '%s' (limited %d)", i, c->text, c->mime_limited);
        }

        assert_int_equal(mail_parse("", 0, NULL, &m), -EBADMSG);
        assert_int_equal(mail_parse(NULL, 0, NULL, &m), -EBADMSG);
        assert_int_equal(mail_parse("no header here", 14, NULL, &m), -EBADMSG);
        assert_int_equal(mail_parse(NULL, 1, NULL, &m), -EINVAL);
        assert_int_equal(mail_parse("From: a@b.example\n\nx", 20, NULL, NULL), -EINVAL);
        assert_int_equal(mail_parse("From: a@b.example\n\nx", 20, &(MailParseOptions){ .max_size = 19 }, &m), -EFBIG);
        assert_null(m);
        assert_null(mail_content_free(NULL));
}

static void test_headers_odd(void **state _unused_) {
        _cleanup_(mail_content_freep) MailContent *m = NULL;
        _cleanup_free_ char *refs = mem_strdup("References:");

        /* 40 references: the root and the 31 most recent are kept */
        for (int i = 1; i <= 40; i++) {
                char *n = mem_printf("%s <r%d@example.com>", refs, i);
                free(refs);
                refs = n;
        }
        _cleanup_free_ char *h = mem_printf("From: \"No address\" <>, Grupo: Ana <ANA@Example.com>;\n"
                                            "To: Lista: a@example.com, b@example.com;, c@example.com, bad address\n"
                                            "Subject: =?utf-8?Q?Linha_1?=\n\t=?utf-8?Q?_e_linha_2?=\tcom\ttabs\n"
                                            "Message-ID: <com espaco@example.com>\n"
                                            "In-Reply-To: bare-id@example.com\n"
                                            "Date: not a date\n"
                                            "%s\n",
                                            refs);

        assert_int_equal(parse_text(h, "oi\n", NULL, &m), 0);
        assert_string_equal(m->from, "ana@example.com");
        check_strv("to", "odd", m->to, "a@example.com b@example.com c@example.com");
        assert_string_equal(m->subject, "Linha 1 e linha 2 com tabs");
        assert_null(m->message_id);
        assert_string_equal(m->in_reply_to, "bare-id@example.com");
        assert_int_equal(m->date_usec, 0);
        assert_int_equal(strv_length(m->references), 32);
        assert_string_equal(m->references[0], "r1@example.com");
        assert_string_equal(m->references[1], "r10@example.com");
        assert_string_equal(m->references[31], "r40@example.com");
}

/* Fail each of our allocations in turn: mail_parse() returns -ENOMEM and
 * leaks nothing (ASan/LSan runs check the latter) until it has enough
 * memory to succeed.  GMime's own allocations are not ours: g_malloc()
 * aborts on OOM, which ends the mail parser process, not the daemon (see
 * test-mail-parser.c). */
static void test_oom(void **state _unused_) {
        static const char *const files[] = {
                "alternative.eml", "html-only.eml",    "gmail-reply-pt.eml", "auth-results.eml",
                "attachment.eml",  "invalid-utf8.eml", "signature.eml",      "cp1252-quotes.eml",
        };
        static const char koi8[] = "From: a@example.com\nTo: b@example.com, c@example.com\nReferences: <x@y> "
                                   "<z@w>\nContent-Type: text/plain; charset=koi8-r\n\n\xf0\xc9\xc3\xc3\xc1\n";
        char *own[] = { OWN, NULL }, *trusted[] = { MTA, NULL };
        MailParseOptions o = { .own_addresses = own, .trusted_authserv_ids = trusted, .envelope_sender = "" };

        for (size_t f = 0; f <= ELEMENTSOF(files); f++) {
                _cleanup_free_ char *data = NULL;
                const char *msg = koi8;
                size_t size = sizeof koi8 - 1;
                unsigned long n;

                if (f < ELEMENTSOF(files)) {
                        data = read_mail_corpus(files[f], &size);
                        msg = data;
                }
                for (n = 1;; n++) {
                        MailContent *m = NULL;
                        int r;

                        alloc_fail_after(n);
                        r = mail_parse(msg, size, &o, &m);
                        alloc_fail_after(0);
                        mail_content_free(m);
                        if (r != -ENOMEM) {
                                assert_int_equal(r, 0);
                                break;
                        }
                        assert_null(m);
                }
                assert_true(n > 5);
        }
}

static int teardown(void **state _unused_) {
        mail_shutdown();
        return 0;
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_corpus),
                cmocka_unit_test(test_quotes),
                cmocka_unit_test(test_html),
                cmocka_unit_test(test_charsets),
                cmocka_unit_test(test_alternative_empty_plain),
                cmocka_unit_test(test_ignore),
                cmocka_unit_test(test_auth),
                cmocka_unit_test(test_ses_verdicts),
                cmocka_unit_test(test_names),
                cmocka_unit_test(test_limits),
                cmocka_unit_test(test_floods),
                cmocka_unit_test(test_headers_odd),
                cmocka_unit_test(test_oom),
        };

        alloc_init();
        mail_init();
        return cmocka_run_group_tests(tests, NULL, teardown);
}
