/* SPDX-License-Identifier: MIT */
/*
 * mail-wire.c — the frames between the daemon and its mail parser process.
 *
 * Security: see mail-wire.h.
 */
#include "mail-wire.h"

#include <errno.h>
#include <jansson.h>
#include <string.h>

#include "alloc.h"
#include "strutil.h"

/* The errors mail_parse() returns; an answer with another is a lie. */
static const int parse_errors[] = { -EFBIG, -E2BIG, -EBADMSG, -EINVAL, -ENOMEM };

static bool parse_error_known(int r) {
        for (size_t i = 0; i < ELEMENTSOF(parse_errors); i++)
                if (r == parse_errors[i])
                        return true;
        return false;
}

#define _cleanup_json_ _cleanup_(json_decrefp)

size_t mail_wire_length_get(const void *p) {
        const uint8_t *b = p;

        return (size_t) b[0] << 24 | (size_t) b[1] << 16 | (size_t) b[2] << 8 | (size_t) b[3];
}

void mail_wire_length_put(void *p, size_t n) {
        uint8_t *b = p;

        b[0] = (uint8_t) (n >> 24);
        b[1] = (uint8_t) (n >> 16);
        b[2] = (uint8_t) (n >> 8);
        b[3] = (uint8_t) n;
}

/* A JSON array of the strings of l (NULL: empty).  NULL when out of
 * memory, which json_pack() then fails on ("o" with NULL), dropping the
 * other values it was given. */
static json_t *strv_to_json(char *const *l) {
        json_t *a = json_array();

        for (size_t i = 0; a && l && l[i]; i++)
                if (json_array_append_new(a, json_string(l[i])) < 0) {
                        json_decref(a);
                        return NULL;
                }
        return a;
}

/* A NULL-terminated copy of the strings of array a, at most max of them:
 * 0, -EPROTO (not an array of strings, or too long), -ENOMEM. */
static int strv_from_json(json_t *a, size_t max, char ***ret) {
        _cleanup_strv_free_ char **l = NULL;
        size_t n = json_array_size(a);

        if (!json_is_array(a) || n > max)
                return -EPROTO;
        l = mem_new(char *, n + 1);
        if (!l)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                const char *s = json_string_value(json_array_get(a, i));
                if (!s)
                        return -EPROTO;
                l[i] = mem_strdup(s);
                if (!l[i])
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(l);
        return 0;
}

/* Parse n bytes of JSON into an object: -EPROTO when it is none, -ENOMEM
 * when jansson ran out of memory (which it reports as a syntax error). */
static int load_object(const void *p, size_t n, int invalid, json_t **ret) {
        unsigned long before = alloc_failures();
        json_t *j = json_loadb(p, n, JSON_REJECT_DUPLICATES, NULL);

        if (!j)
                return alloc_errno_since(before, invalid);
        if (!json_is_object(j)) {
                json_decref(j);
                return invalid;
        }
        *ret = j;
        return 0;
}

/* ---- requests ---------------------------------------------------------- */

/* Dump j compactly at offset at of a new buffer with room for extra bytes
 * after it: 0, the buffer in *ret and the length of the JSON in
 * *ret_json_len; -EFBIG when the JSON is longer than max; -ENOMEM. */
static int dump_at(json_t *j, size_t at, size_t max, size_t extra, char **ret, size_t *ret_json_len) {
        size_t n = json_dumpb(j, NULL, 0, JSON_COMPACT);
        char *buf;

        if (n == 0)
                return -ENOMEM;
        if (n > max)
                return -EFBIG;
        buf = mem_malloc(at + n + extra);
        if (!buf)
                return -ENOMEM;
        if (json_dumpb(j, buf + at, n, JSON_COMPACT) != n) {
                free(buf);
                return -ENOMEM;
        }
        *ret = buf;
        *ret_json_len = n;
        return 0;
}

int mail_wire_request_encode(const MailParseOptions *o, const void *raw, size_t len, char **ret, size_t *ret_len) {
        _cleanup_json_ json_t *j = NULL;
        unsigned long before = alloc_failures();
        size_t hlen;
        char *buf;
        int r;

        if (len > MAIL_WIRE_RAW_MAX)
                return -EFBIG;
        /* JSON integers are signed 64 bits; a size beyond is no limit anyway. */
        j = json_pack("{s:I,s:I,s:I,s:I,s:I,s:s?,s:o,s:o}", "max_size", (json_int_t) MIN(o->max_size, INT64_MAX),
                      "max_text", (json_int_t) MIN(o->max_text, INT64_MAX), "max_depth", (json_int_t) o->max_depth,
                      "max_parts", (json_int_t) o->max_parts, "max_headers", (json_int_t) o->max_headers,
                      "envelope_sender", o->envelope_sender, "own_addresses", strv_to_json(o->own_addresses),
                      "trusted_authserv_ids", strv_to_json(o->trusted_authserv_ids));
        if (!j) /* out of memory, or a string that is not UTF-8 */
                return alloc_errno_since(before, -EINVAL);
        r = dump_at(j, 2 * MAIL_WIRE_LENGTH_SIZE, MAIL_WIRE_OPTIONS_MAX, len, &buf, &hlen);
        if (r < 0)
                return r;
        mail_wire_length_put(buf, MAIL_WIRE_LENGTH_SIZE + hlen + len);
        mail_wire_length_put(buf + MAIL_WIRE_LENGTH_SIZE, hlen);
        if (len > 0)
                memcpy(buf + 2 * MAIL_WIRE_LENGTH_SIZE + hlen, raw, len);
        *ret = buf;
        *ret_len = 2 * MAIL_WIRE_LENGTH_SIZE + hlen + len;
        return 0;
}

void mail_wire_request_done(MailWireRequest *r) {
        if (!r)
                return;
        free(r->sender_storage);
        strv_free(r->own_storage);
        strv_free(r->trusted_storage);
        *r = (MailWireRequest){};
}

/* A limit of the request: a non-negative integer that fits. */
static int get_limit(json_t *o, const char *key, uint64_t max, uint64_t *ret) {
        json_t *v = json_object_get(o, key);

        if (!json_is_integer(v) || json_integer_value(v) < 0 || (uint64_t) json_integer_value(v) > max)
                return -EBADMSG;
        *ret = (uint64_t) json_integer_value(v);
        return 0;
}

int mail_wire_request_decode(const void *body, size_t n, MailWireRequest *ret) {
        _cleanup_(mail_wire_request_done) MailWireRequest req = {};
        _cleanup_json_ json_t *j = NULL;
        uint64_t limits[5];
        const char *const names[5] = { "max_size", "max_text", "max_depth", "max_parts", "max_headers" };
        json_t *sender;
        size_t hlen;
        int r;

        if (n < MAIL_WIRE_LENGTH_SIZE)
                return -EBADMSG;
        hlen = mail_wire_length_get(body);
        if (hlen > n - MAIL_WIRE_LENGTH_SIZE || hlen > MAIL_WIRE_OPTIONS_MAX)
                return -EBADMSG;
        r = load_object((const char *) body + MAIL_WIRE_LENGTH_SIZE, hlen, -EBADMSG, &j);
        if (r < 0)
                return r;
        for (size_t i = 0; i < ELEMENTSOF(limits); i++) {
                r = get_limit(j, names[i], i < 2 ? SIZE_MAX : UINT32_MAX, &limits[i]);
                if (r < 0)
                        return r;
        }
        sender = json_object_get(j, "envelope_sender");
        if (sender && !json_is_null(sender)) {
                if (!json_is_string(sender))
                        return -EBADMSG;
                req.sender_storage = mem_strdup(json_string_value(sender));
                if (!req.sender_storage)
                        return -ENOMEM;
        }
        r = strv_from_json(json_object_get(j, "own_addresses"), SIZE_MAX, &req.own_storage);
        if (r >= 0)
                r = strv_from_json(json_object_get(j, "trusted_authserv_ids"), SIZE_MAX, &req.trusted_storage);
        if (r < 0)
                return r == -EPROTO ? -EBADMSG : r;

        req.options = (MailParseOptions){
                .max_size = (size_t) limits[0],
                .max_text = (size_t) limits[1],
                .max_depth = (unsigned) limits[2],
                .max_parts = (unsigned) limits[3],
                .max_headers = (unsigned) limits[4],
                .envelope_sender = req.sender_storage,
                .own_addresses = req.own_storage,
                .trusted_authserv_ids = req.trusted_storage,
        };
        req.raw = (const char *) body + MAIL_WIRE_LENGTH_SIZE + hlen;
        req.raw_len = n - MAIL_WIRE_LENGTH_SIZE - hlen;
        *ret = req;
        req = (MailWireRequest){};
        return 0;
}

/* ---- answers ----------------------------------------------------------- */

/* j as a frame; -EFBIG beyond MAIL_WIRE_ANSWER_MAX. */
static int frame_json(json_t *j, char **ret, size_t *ret_len) {
        size_t n;
        int r = dump_at(j, MAIL_WIRE_LENGTH_SIZE, MAIL_WIRE_ANSWER_MAX, 0, ret, &n);

        if (r < 0)
                return r;
        mail_wire_length_put(*ret, n);
        *ret_len = MAIL_WIRE_LENGTH_SIZE + n;
        return 0;
}

int mail_wire_answer_encode(int error, const MailContent *m, char **ret, size_t *ret_len) {
        _cleanup_json_ json_t *j = NULL;
        unsigned long before = alloc_failures();

        if (error < 0) {
                if (!parse_error_known(error))
                        return -EINVAL;
                j = json_pack("{s:i}", "r", error);
                return j ? frame_json(j, ret, ret_len) : -ENOMEM;
        }
        if (!m || !m->text)
                return -EINVAL;
        j = json_pack("{s:i,s:s?,s:o,s:s?,s:s?,s:s?,s:o,s:I,s:s,s:b,s:b,s:b,s:s,s:s,s:s,s:s}", "r", 0, "from", m->from,
                      "to", strv_to_json(m->to), "subject", m->subject, "message_id", m->message_id, "in_reply_to",
                      m->in_reply_to, "references", strv_to_json(m->references), "date_usec", (json_int_t) m->date_usec,
                      "text", m->text, "text_truncated", m->text_truncated, "text_from_html", m->text_from_html,
                      "mime_limited", m->mime_limited, "ignore", mail_ignore_to_string(m->ignore), "spf",
                      mail_auth_result_to_string(m->spf), "dkim", mail_auth_result_to_string(m->dkim), "dmarc",
                      mail_auth_result_to_string(m->dmarc));
        return j ? frame_json(j, ret, ret_len) : alloc_errno_since(before, -EINVAL);
}

/* An optional string field: absent or null is NULL.  0, -EPROTO, -ENOMEM. */
static int get_string(json_t *o, const char *key, bool optional, char **ret) {
        json_t *v = json_object_get(o, key);

        if (!v || json_is_null(v)) {
                if (!optional)
                        return -EPROTO;
                *ret = NULL;
                return 0;
        }
        if (!json_is_string(v))
                return -EPROTO;
        *ret = mem_strdup(json_string_value(v));
        return *ret ? 0 : -ENOMEM;
}

static int get_bool(json_t *o, const char *key, bool *ret) {
        json_t *v = json_object_get(o, key);

        if (!json_is_boolean(v))
                return -EPROTO;
        *ret = json_is_true(v);
        return 0;
}

static int get_auth_result(json_t *o, const char *key, MailAuthResult *ret) {
        const char *s = json_string_value(json_object_get(o, key));
        MailAuthResult r;

        if (!s)
                return -EPROTO;
        /* "missing" is no statement anybody made, so from_string refuses it */
        r = streq(s, "missing") ? MAIL_AUTH_RESULT_MISSING : mail_auth_result_from_string(s);
        if (r < 0)
                return -EPROTO;
        *ret = r;
        return 0;
}

static int content_from_json(json_t *j, MailContent **ret) {
        static const char *const known[] = {
                "r",          "from",      "to",   "subject",        "message_id",     "in_reply_to",
                "references", "date_usec", "text", "text_truncated", "text_from_html", "mime_limited",
                "ignore",     "spf",       "dkim", "dmarc"
        };
        _cleanup_(mail_content_freep) MailContent *m = NULL;
        const char *key;
        json_t *v;
        int r;

        json_object_foreach (j, key, v) {
                bool found = false;
                for (size_t i = 0; i < ELEMENTSOF(known) && !found; i++)
                        found = streq(known[i], key);
                if (!found)
                        return -EPROTO;
        }
        m = mem_new(MailContent, 1);
        if (!m)
                return -ENOMEM;
        if ((r = get_string(j, "from", true, &m->from)) < 0 ||
            (r = strv_from_json(json_object_get(j, "to"), MAIL_TO_MAX, &m->to)) < 0 ||
            (r = get_string(j, "subject", true, &m->subject)) < 0 ||
            (r = get_string(j, "message_id", true, &m->message_id)) < 0 ||
            (r = get_string(j, "in_reply_to", true, &m->in_reply_to)) < 0 ||
            (r = strv_from_json(json_object_get(j, "references"), MAIL_REFERENCES_MAX, &m->references)) < 0 ||
            (r = get_string(j, "text", false, &m->text)) < 0 ||
            (r = get_bool(j, "text_truncated", &m->text_truncated)) < 0 ||
            (r = get_bool(j, "text_from_html", &m->text_from_html)) < 0 ||
            (r = get_bool(j, "mime_limited", &m->mime_limited)) < 0 || (r = get_auth_result(j, "spf", &m->spf)) < 0 ||
            (r = get_auth_result(j, "dkim", &m->dkim)) < 0 || (r = get_auth_result(j, "dmarc", &m->dmarc)) < 0)
                return r;
        v = json_object_get(j, "date_usec");
        if (!json_is_integer(v) || json_integer_value(v) < 0)
                return -EPROTO;
        m->date_usec = (uint64_t) json_integer_value(v);
        m->ignore = mail_ignore_from_string(json_string_value(json_object_get(j, "ignore")));
        if (m->ignore < 0)
                return -EPROTO;
        *ret = TAKE_PTR(m);
        return 0;
}

int mail_wire_answer_decode(const void *body, size_t n, MailContent **ret) {
        _cleanup_json_ json_t *j = NULL;
        json_t *rv;
        int r;

        if (n > MAIL_WIRE_ANSWER_MAX)
                return -EPROTO;
        r = load_object(body, n, -EPROTO, &j);
        if (r < 0)
                return r;
        rv = json_object_get(j, "r");
        if (!json_is_integer(rv))
                return -EPROTO;
        json_int_t v = json_integer_value(rv);
        if (v < 0)
                /* an error says nothing else */
                return v >= -4095 && parse_error_known((int) v) && json_object_size(j) == 1 ? (int) v : -EPROTO;
        if (v != 0)
                return -EPROTO;
        return content_from_json(j, ret);
}
