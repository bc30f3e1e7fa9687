/* SPDX-License-Identifier: MIT */
/*
 * test-mail-wire.c — the frames between the daemon and the mail parser
 * process: requests and answers survive the round trip byte for byte
 * (tables of options and messages, and what mail_parse() makes of the
 * corpus); every malformed request and every lying answer is refused, one
 * row each; the largest answer mail_parse() can give fits; and every
 * allocation of each of the four directions fails in turn.
 */
#include "test-helpers.h"

#include <errno.h>
#include <stdint.h>

#include "alloc.h"
#include "mail-wire.h"
#include "mail.h"
#include "strutil.h"

static void assert_strv_equal(char *const *a, char *const *b) {
        assert_int_equal(strv_length(a), strv_length(b));
        for (size_t i = 0; a && a[i]; i++)
                assert_string_equal(a[i], b[i]);
}

/* ---- lengths --------------------------------------------------------- */

static void test_length(void **state _unused_) {
        static const struct {
                size_t n;
                uint8_t bytes[4];
        } rows[] = {
                { 0, { 0, 0, 0, 0 } },
                { 1, { 0, 0, 0, 1 } },
                { 255, { 0, 0, 0, 0xff } },
                { 256, { 0, 0, 1, 0 } },
                { 0x10203, { 0, 1, 2, 3 } },
                { 0x7f000001, { 0x7f, 0, 0, 1 } },
                { UINT32_MAX, { 0xff, 0xff, 0xff, 0xff } },
        };

        for (size_t i = 0; i < ELEMENTSOF(rows); i++) {
                uint8_t b[4];
                mail_wire_length_put(b, rows[i].n);
                assert_memory_equal(b, rows[i].bytes, 4);
                assert_int_equal(mail_wire_length_get(rows[i].bytes), rows[i].n);
        }
}

/* ---- requests -------------------------------------------------------- */

static char *own2[] = { "pedidos@pizzaria.example", "Contato@Pizzaria.Example", NULL };
static char *own0[] = { NULL };
static char *mta[] = { "mx.pizzaria.example", NULL };

static const struct {
        const char *name;
        MailParseOptions o;
        const char *raw;
        size_t len;
} request_rows[] = {
        { "all defaults", {}, "From: a@b.example\r\n\r\noi\r\n", 24 },
        { "every field",
          { .max_size = 10 * 1024 * 1024,
            .max_text = 8192,
            .max_depth = 8,
            .max_parts = 64,
            .max_headers = 500,
            .envelope_sender = "cliente@example.com",
            .own_addresses = own2,
            .trusted_authserv_ids = mta },
          "From: a@b.example\r\n\r\noi\r\n",
          24 },
        { "null sender", { .envelope_sender = "" }, "x", 1 },
        { "empty lists", { .own_addresses = own0, .trusted_authserv_ids = own0 }, "x", 1 },
        { "empty message", { .envelope_sender = "<>" }, "", 0 },
        { "binary bytes and NULs", {}, "From: \xff\xfe\0\x01 x\r\n\r\n\0\0\x80", 16 },
        { "largest limits",
          { .max_size = INT64_MAX,
            .max_text = INT64_MAX,
            .max_depth = UINT32_MAX,
            .max_parts = UINT32_MAX,
            .max_headers = UINT32_MAX },
          "x",
          1 },
};

static void test_request_round_trip(void **state _unused_) {
        for (size_t i = 0; i < ELEMENTSOF(request_rows); i++) {
                _cleanup_(mail_wire_request_done) MailWireRequest req = {};
                _cleanup_free_ char *frame = NULL;
                const MailParseOptions *o = &request_rows[i].o;
                size_t len = 0;

                assert_int_equal(mail_wire_request_encode(o, request_rows[i].raw, request_rows[i].len, &frame, &len),
                                 0);
                assert_int_equal(mail_wire_length_get(frame), len - MAIL_WIRE_LENGTH_SIZE);
                assert_int_equal(
                        mail_wire_request_decode(frame + MAIL_WIRE_LENGTH_SIZE, len - MAIL_WIRE_LENGTH_SIZE, &req), 0);
                assert_int_equal(req.options.max_size, o->max_size);
                assert_int_equal(req.options.max_text, o->max_text);
                assert_int_equal(req.options.max_depth, o->max_depth);
                assert_int_equal(req.options.max_parts, o->max_parts);
                assert_int_equal(req.options.max_headers, o->max_headers);
                if (!streq_ptr(req.options.envelope_sender, o->envelope_sender))
                        fail_msg("%s: sender '%s'", request_rows[i].name, strempty(req.options.envelope_sender));
                /* NULL and empty lists are the same to mail_parse() */
                assert_strv_equal(req.options.own_addresses ?: own0, o->own_addresses ?: own0);
                assert_strv_equal(req.options.trusted_authserv_ids ?: own0, o->trusted_authserv_ids ?: own0);
                assert_int_equal(req.raw_len, request_rows[i].len);
                if (req.raw_len > 0)
                        assert_memory_equal(req.raw, request_rows[i].raw, req.raw_len);
        }

        /* JSON has no integers beyond int64: a larger size is as good as none */
        _cleanup_(mail_wire_request_done) MailWireRequest req = {};
        _cleanup_free_ char *frame = NULL;
        size_t len = 0;
        assert_int_equal(mail_wire_request_encode(&(MailParseOptions){ .max_size = SIZE_MAX }, "x", 1, &frame, &len),
                         0);
        assert_int_equal(mail_wire_request_decode(frame + 4, len - 4, &req), 0);
        assert_int_equal(req.options.max_size, INT64_MAX);
}

/* A request body: the options text, then the message. */
static size_t body_of(const char *options, const char *raw, char *buf, size_t size) {
        size_t h = strlen(options), n = strlen(raw);

        assert_true(MAIL_WIRE_LENGTH_SIZE + h + n <= size);
        mail_wire_length_put(buf, h);
        memcpy(buf + MAIL_WIRE_LENGTH_SIZE, options, h);
        memcpy(buf + MAIL_WIRE_LENGTH_SIZE + h, raw, n);
        return MAIL_WIRE_LENGTH_SIZE + h + n;
}

#define LIMITS "\"max_size\":1,\"max_text\":1,\"max_depth\":1,\"max_parts\":1,\"max_headers\":1"

static void test_request_refused(void **state _unused_) {
        static const struct {
                const char *name, *options;
        } rows[] = {
                { "not JSON", "{" },
                { "not an object", "[1]" },
                { "no limits", "{\"own_addresses\":[],\"trusted_authserv_ids\":[]}" },
                { "a limit missing",
                  "{\"max_size\":1,\"max_text\":1,\"max_depth\":1,\"max_parts\":1,\"own_addresses\":[],"
                  "\"trusted_authserv_ids\":[]}" },
                { "negative limit",
                  "{\"max_size\":-1,\"max_text\":1,\"max_depth\":1,\"max_parts\":1,\"max_headers\":1,"
                  "\"own_addresses\":[],\"trusted_authserv_ids\":[]}" },
                { "limit too large",
                  "{\"max_size\":1,\"max_text\":1,\"max_depth\":4294967296,\"max_parts\":1,\"max_headers\":1,"
                  "\"own_addresses\":[],\"trusted_authserv_ids\":[]}" },
                { "limit a string",
                  "{" LIMITS ",\"max_headers\":\"1\",\"own_addresses\":[],\"trusted_authserv_ids\":[]}" },
                { "sender a number",
                  "{" LIMITS ",\"envelope_sender\":1,\"own_addresses\":[],\"trusted_authserv_ids\":[]}" },
                { "addresses missing", "{" LIMITS ",\"trusted_authserv_ids\":[]}" },
                { "addresses a string", "{" LIMITS ",\"own_addresses\":\"a@b\",\"trusted_authserv_ids\":[]}" },
                { "address a number", "{" LIMITS ",\"own_addresses\":[1],\"trusted_authserv_ids\":[]}" },
                { "authserv-id null", "{" LIMITS ",\"own_addresses\":[],\"trusted_authserv_ids\":[null]}" },
                { "duplicate key", "{" LIMITS ",\"max_size\":2,\"own_addresses\":[],\"trusted_authserv_ids\":[]}" },
                { "NUL in a string",
                  "{" LIMITS ",\"envelope_sender\":\"a\\u0000b\",\"own_addresses\":[],"
                  "\"trusted_authserv_ids\":[]}" },
        };
        char buf[1024];

        for (size_t i = 0; i < ELEMENTSOF(rows); i++) {
                MailWireRequest req = {};
                size_t n = body_of(rows[i].options, "From: a@b\r\n\r\nx", buf, sizeof buf);
                int r = mail_wire_request_decode(buf, n, &req);
                if (r != -EBADMSG)
                        fail_msg("%s: decode = %d, want -EBADMSG", rows[i].name, r);
        }

        /* the framing itself */
        MailWireRequest req = {};
        assert_int_equal(mail_wire_request_decode("\0\0\0", 3, &req), -EBADMSG);
        mail_wire_length_put(buf, 100); /* options longer than the body */
        memcpy(buf + 4, "{}", 2);
        assert_int_equal(mail_wire_request_decode(buf, 6, &req), -EBADMSG);
        mail_wire_length_put(buf, MAIL_WIRE_OPTIONS_MAX + 1);
        assert_int_equal(mail_wire_request_decode(buf, 6, &req), -EBADMSG);

        /* and a message too large for the protocol, or options that are
         * not UTF-8, are not even encoded */
        char *frame = NULL;
        size_t len = 0;
        assert_int_equal(
                mail_wire_request_encode(&(MailParseOptions){ .envelope_sender = "a\xff@b" }, "x", 1, &frame, &len),
                -EINVAL);
        assert_null(frame);
        assert_int_equal(mail_wire_request_encode(&(MailParseOptions){}, "x", MAIL_WIRE_REQUEST_MAX, &frame, &len),
                         -EFBIG);
        assert_null(frame);
}

/* ---- answers --------------------------------------------------------- */

static void assert_content_equal(const MailContent *a, const MailContent *b) {
        assert_true(streq_ptr(a->from, b->from));
        assert_strv_equal(a->to, b->to);
        assert_true(streq_ptr(a->subject, b->subject));
        assert_true(streq_ptr(a->message_id, b->message_id));
        assert_true(streq_ptr(a->in_reply_to, b->in_reply_to));
        assert_strv_equal(a->references, b->references);
        assert_int_equal(a->date_usec, b->date_usec);
        assert_string_equal(a->text, b->text);
        assert_int_equal(a->text_truncated, b->text_truncated);
        assert_int_equal(a->text_from_html, b->text_from_html);
        assert_int_equal(a->mime_limited, b->mime_limited);
        assert_int_equal(a->ignore, b->ignore);
        assert_int_equal(a->spf, b->spf);
        assert_int_equal(a->dkim, b->dkim);
        assert_int_equal(a->dmarc, b->dmarc);
}

/* Encode, check the frame, decode: what comes back. */
static int round_trip(int error, const MailContent *m, MailContent **ret) {
        _cleanup_free_ char *frame = NULL;
        size_t len = 0;
        int r;

        r = mail_wire_answer_encode(error, m, &frame, &len);
        if (r < 0)
                return r;
        assert_int_equal(mail_wire_length_get(frame), len - MAIL_WIRE_LENGTH_SIZE);
        return mail_wire_answer_decode(frame + MAIL_WIRE_LENGTH_SIZE, len - MAIL_WIRE_LENGTH_SIZE, ret);
}

static void test_answer_errors(void **state _unused_) {
        static const int errors[] = { -EFBIG, -E2BIG, -EBADMSG, -EINVAL, -ENOMEM };
        MailContent *m = NULL;
        char *frame = NULL;
        size_t len = 0;

        for (size_t i = 0; i < ELEMENTSOF(errors); i++) {
                assert_int_equal(round_trip(errors[i], NULL, &m), errors[i]);
                assert_null(m);
        }
        /* what mail_parse() never returns is not said */
        char *none[] = { NULL };
        const MailContent bad = { .to = none, .references = none, .text = "\xc3(" };
        assert_int_equal(mail_wire_answer_encode(-EIO, NULL, &frame, &len), -EINVAL);
        assert_int_equal(mail_wire_answer_encode(0, NULL, &frame, &len), -EINVAL);
        assert_int_equal(mail_wire_answer_encode(0, &bad, &frame, &len), -EINVAL);
        assert_null(frame);
}

static void test_answer_built(void **state _unused_) {
        char *to[] = { "a@example.com", "b@example.com", NULL }, *none[] = { NULL };
        char *refs[] = { "root@x", "mid@x", "last@x", NULL };
        const MailContent rows[] = {
                { .to = none, .references = none, .text = "" },
                { .from = "ana@example.com",
                  .to = to,
                  .subject = "Pedido \"especial\" — pizza\tboa",
                  .message_id = "m1@example.com",
                  .in_reply_to = "m0@example.com",
                  .references = refs,
                  .date_usec = 1733300000000000,
                  .text = "quero 2 calabresa\npra Rua Augusta 1500 \\ ok",
                  .text_truncated = true,
                  .text_from_html = true,
                  .mime_limited = true,
                  .ignore = MAIL_IGNORE_BULK,
                  .spf = MAIL_AUTH_RESULT_PASS,
                  .dkim = MAIL_AUTH_RESULT_PERMERROR,
                  .dmarc = MAIL_AUTH_RESULT_MISSING },
                { .to = none,
                  .references = none,
                  .text = "x",
                  .ignore = MAIL_IGNORE_OURSELVES,
                  .spf = MAIL_AUTH_RESULT_TEMPERROR,
                  .dkim = MAIL_AUTH_RESULT_NONE,
                  .dmarc = MAIL_AUTH_RESULT_FAIL },
        };

        for (size_t i = 0; i < ELEMENTSOF(rows); i++) {
                _cleanup_(mail_content_freep) MailContent *m = NULL;
                assert_int_equal(round_trip(0, &rows[i], &m), 0);
                assert_content_equal(m, &rows[i]);
        }
}

/* What mail_parse() makes of each message of the corpus comes through. */
static void test_answer_corpus(void **state _unused_) {
        static const char *const files[] = {
                "alternative.eml", "attachment.eml",     "auth-results.eml", "auto-reply.eml",
                "base64-utf8.eml", "bounce.eml",         "broken-mime.eml",  "cp1252-quotes.eml",
                "forwarded.eml",   "gmail-reply-pt.eml", "html-only.eml",    "invalid-utf8.eml",
                "iphone.eml",      "latin1.eml",         "list.eml",         "outlook-reply-en.eml",
                "own-loop.eml",    "qp-soft-breaks.eml", "signature.eml",
        };
        char *own[] = { "pedidos@pizzaria.example", NULL }, *trusted[] = { "mx.pizzaria.example", NULL };
        const MailParseOptions o = { .own_addresses = own, .trusted_authserv_ids = trusted };

        for (size_t i = 0; i < ELEMENTSOF(files); i++) {
                _cleanup_(mail_content_freep) MailContent *parsed = NULL, *m = NULL;
                _cleanup_free_ char *data = NULL;
                size_t size;

                data = read_mail_corpus(files[i], &size);
                assert_int_equal(mail_parse(data, size, &o, &parsed), 0);
                assert_int_equal(round_trip(0, parsed, &m), 0);
                assert_content_equal(m, parsed);
        }
}

/* The most mail_parse() can say, every byte escaped, fits in a frame. */
static void test_answer_largest(void **state _unused_) {
        _cleanup_(mail_content_freep) MailContent *m = NULL, *back = NULL;
        char addr[321], id[513];

        memset(addr, '"', 320);
        addr[320] = '\0';
        memset(id, '\\', 512);
        id[512] = '\0';
        m = mem_new(MailContent, 1);
        assert_non_null(m);
        m->to = mem_new(char *, 1);
        m->references = mem_new(char *, 1);
        for (int i = 0; i < MAIL_TO_MAX; i++)
                assert_int_equal(strv_extend(&m->to, addr), 0);
        for (int i = 0; i < MAIL_REFERENCES_MAX; i++)
                assert_int_equal(strv_extend(&m->references, id), 0);
        m->from = mem_strdup(addr);
        m->subject = mem_malloc(1025);
        m->text = mem_malloc(MAIL_MAX_TEXT_DEFAULT + 1);
        assert_non_null(m->subject);
        assert_non_null(m->text);
        memset(m->subject, '"', 1024);
        m->subject[1024] = '\0';
        memset(m->text, '\t', MAIL_MAX_TEXT_DEFAULT);
        m->text[MAIL_MAX_TEXT_DEFAULT] = '\0';
        m->message_id = mem_strdup(id);
        m->in_reply_to = mem_strdup(id);
        assert_int_equal(round_trip(0, m, &back), 0);
        assert_content_equal(back, m);
}

/* A parser process that lies, row by row: nothing it says is believed. */
static void test_answer_refused(void **state _unused_) {
        static const char *const rows[] = {
                "",
                "{",
                "[0]",
                "0",
                "{}",
                "{\"r\":\"0\"}",
                "{\"r\":1}",
                "{\"r\":-5}", /* EIO: not an error of mail_parse() */
                "{\"r\":-4294967308}", /* -ENOMEM once truncated to an int */
                "{\"r\":-12,\"text\":\"x\"}", /* an error says nothing else */
                "{\"r\":0}", /* no content */
                "{\"r\":0,\"to\":[],\"references\":[],\"date_usec\":0,\"text_truncated\":false,"
                "\"text_from_html\":false,\"mime_limited\":false,\"ignore\":\"none\",\"spf\":\"missing\","
                "\"dkim\":\"missing\",\"dmarc\":\"missing\"}", /* no text */
        };
        MailContent *m = NULL;

        for (size_t i = 0; i < ELEMENTSOF(rows); i++) {
                int r = mail_wire_answer_decode(rows[i], strlen(rows[i]), &m);
                if (r != -EPROTO)
                        fail_msg("row %zu (%s): decode = %d, want -EPROTO", i, rows[i], r);
                assert_null(m);
        }
}

/* A good answer with one field changed, row by row. */
static void test_answer_field_refused(void **state _unused_) {
#define FIELDS(from, to, text, refs, date, trunc, ignore, spf, extra)                                                  \
        "{\"r\":0,\"from\":" from ",\"to\":" to ",\"subject\":null,\"message_id\":null,\"in_reply_to\":null,"          \
        "\"references\":" refs ",\"date_usec\":" date ",\"text\":" text ",\"text_truncated\":" trunc                   \
        ",\"text_from_html\":false,\"mime_limited\":false,\"ignore\":" ignore ",\"spf\":" spf                          \
        ",\"dkim\":\"pass\",\"dmarc\":\"none\"" extra "}"
        static const char *const good =
                FIELDS("\"a@b\"", "[]", "\"oi\"", "[]", "0", "false", "\"none\"", "\"pass\"", "");
        static const char *const rows[] = {
                FIELDS("1", "[]", "\"oi\"", "[]", "0", "false", "\"none\"", "\"pass\"", ""),
                FIELDS("\"a@b\"", "{}", "\"oi\"", "[]", "0", "false", "\"none\"", "\"pass\"", ""),
                FIELDS("\"a@b\"", "[1]", "\"oi\"", "[]", "0", "false", "\"none\"", "\"pass\"", ""),
                FIELDS("\"a@b\"", "[]", "null", "[]", "0", "false", "\"none\"", "\"pass\"", ""),
                FIELDS("\"a@b\"", "[]", "\"o\\u0000i\"", "[]", "0", "false", "\"none\"", "\"pass\"", ""),
                FIELDS("\"a@b\"", "[]", "\"\xff\"", "[]", "0", "false", "\"none\"", "\"pass\"", ""),
                FIELDS("\"a@b\"", "[]", "\"oi\"", "[null]", "0", "false", "\"none\"", "\"pass\"", ""),
                FIELDS("\"a@b\"", "[]", "\"oi\"", "[]", "-1", "false", "\"none\"", "\"pass\"", ""),
                FIELDS("\"a@b\"", "[]", "\"oi\"", "[]", "1.5", "false", "\"none\"", "\"pass\"", ""),
                FIELDS("\"a@b\"", "[]", "\"oi\"", "[]", "0", "0", "\"none\"", "\"pass\"", ""),
                FIELDS("\"a@b\"", "[]", "\"oi\"", "[]", "0", "false", "\"spam\"", "\"pass\"", ""),
                FIELDS("\"a@b\"", "[]", "\"oi\"", "[]", "0", "false", "\"none\"", "\"bogus\"", ""),
                FIELDS("\"a@b\"", "[]", "\"oi\"", "[]", "0", "false", "\"none\"", "null", ""),
                FIELDS("\"a@b\"", "[]", "\"oi\"", "[]", "0", "false", "\"none\"", "\"pass\"", ",\"admin\":true"),
                FIELDS("\"a@b\"", "[]", "\"oi\"", "[]", "0", "false", "\"none\"", "\"pass\"", ",\"text\":\"x\""),
        };
        _cleanup_(mail_content_freep) MailContent *ok = NULL;
        MailContent *m = NULL;

        assert_int_equal(mail_wire_answer_decode(good, strlen(good), &ok), 0);
        assert_string_equal(ok->text, "oi");
        for (size_t i = 0; i < ELEMENTSOF(rows); i++) {
                int r = mail_wire_answer_decode(rows[i], strlen(rows[i]), &m);
                if (r != -EPROTO)
                        fail_msg("row %zu (%s): decode = %d, want -EPROTO", i, rows[i], r);
                assert_null(m);
        }
#undef FIELDS
}

/* Longer lists than mail_parse() ever makes, and a body over the bound. */
static void test_answer_too_much(void **state _unused_) {
        _cleanup_(mail_content_freep) MailContent *m = mem_new(MailContent, 1);
        _cleanup_free_ char *frame = NULL, *big = NULL;
        MailContent *back = NULL;
        size_t len = 0;

        assert_non_null(m);
        m->to = mem_new(char *, 1);
        m->references = mem_new(char *, 1);
        m->text = mem_strdup("");
        for (int i = 0; i <= MAIL_TO_MAX; i++)
                assert_int_equal(strv_extend(&m->to, "a@b.example"), 0);
        assert_int_equal(mail_wire_answer_encode(0, m, &frame, &len), 0);
        assert_int_equal(mail_wire_answer_decode(frame + 4, len - 4, &back), -EPROTO);
        frame = mfree(frame);

        m->to = strv_free(m->to);
        m->to = mem_new(char *, 1);
        for (int i = 0; i <= MAIL_REFERENCES_MAX; i++)
                assert_int_equal(strv_extend(&m->references, "r@x"), 0);
        assert_int_equal(mail_wire_answer_encode(0, m, &frame, &len), 0);
        assert_int_equal(mail_wire_answer_decode(frame + 4, len - 4, &back), -EPROTO);

        /* a text that cannot be framed is not encoded, and not read */
        free(m->text);
        m->text = big = NULL;
        big = mem_malloc(MAIL_WIRE_ANSWER_MAX + 1);
        assert_non_null(big);
        memset(big, 'x', MAIL_WIRE_ANSWER_MAX);
        big[MAIL_WIRE_ANSWER_MAX] = '\0';
        m->text = big;
        assert_int_equal(mail_wire_answer_encode(0, m, &frame, &len), -EFBIG);
        m->text = NULL;
        assert_int_equal(mail_wire_answer_decode(big, MAIL_WIRE_ANSWER_MAX + 1, &back), -EPROTO);
        assert_null(back);
}

/* ---- out of memory ----------------------------------------------------- */

static const MailParseOptions oom_options = {
        .max_size = 1000, .envelope_sender = "a@b.example", .own_addresses = own2, .trusted_authserv_ids = mta
};

static int attempt_request_encode(void *userdata _unused_) {
        _cleanup_free_ char *frame = NULL;
        size_t len;

        return mail_wire_request_encode(&oom_options, "From: a@b\r\n\r\noi", 16, &frame, &len);
}

static int attempt_request_decode(void *userdata) {
        char **frame = userdata;
        MailWireRequest req = {};
        int r = mail_wire_request_decode(frame[0] + 4, mail_wire_length_get(frame[0]), &req);

        mail_wire_request_done(&req);
        return r;
}

static MailContent *oom_content;

static int attempt_answer_encode(void *userdata _unused_) {
        _cleanup_free_ char *frame = NULL;
        size_t len;

        return mail_wire_answer_encode(0, oom_content, &frame, &len);
}

static int attempt_answer_decode(void *userdata) {
        char **frame = userdata;
        MailContent *m = NULL;
        int r = mail_wire_answer_decode(frame[0] + 4, mail_wire_length_get(frame[0]), &m);

        if (r == 0)
                assert_content_equal(m, oom_content);
        mail_content_free(m);
        return r;
}

static void test_oom(void **state _unused_) {
        _cleanup_free_ char *request = NULL, *answer = NULL, *data = NULL;
        char *own[] = { "pedidos@pizzaria.example", NULL };
        size_t len, size;

        data = read_mail_corpus("gmail-reply-pt.eml", &size);
        assert_int_equal(mail_parse(data, size, &(MailParseOptions){ .own_addresses = own }, &oom_content), 0);
        assert_int_equal(mail_wire_request_encode(&oom_options, "From: a@b\r\n\r\noi", 16, &request, &len), 0);
        assert_int_equal(mail_wire_answer_encode(0, oom_content, &answer, &len), 0);

        assert_true(oom_loop(attempt_request_encode, NULL, 0) > 3);
        assert_true(oom_loop(attempt_request_decode, &request, 0) > 3);
        assert_true(oom_loop(attempt_answer_encode, NULL, 0) > 3);
        assert_true(oom_loop(attempt_answer_decode, &answer, 0) > 3);
        oom_content = mail_content_free(oom_content);
}

static int teardown(void **state _unused_) {
        mail_shutdown();
        return 0;
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_length),
                cmocka_unit_test(test_request_round_trip),
                cmocka_unit_test(test_request_refused),
                cmocka_unit_test(test_answer_errors),
                cmocka_unit_test(test_answer_built),
                cmocka_unit_test(test_answer_corpus),
                cmocka_unit_test(test_answer_largest),
                cmocka_unit_test(test_answer_refused),
                cmocka_unit_test(test_answer_field_refused),
                cmocka_unit_test(test_answer_too_much),
                cmocka_unit_test(test_oom),
        };

        alloc_init();
        mail_init();
        return cmocka_run_group_tests(tests, NULL, teardown);
}
