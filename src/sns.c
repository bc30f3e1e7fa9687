/* SPDX-License-Identifier: MIT */
/*
 * sns.c — SNS envelope parsing, string to sign, URL checks, signature
 * verification and the certificate cache.
 *
 * The parsed message keeps the jansson tree and points into its strings;
 * nothing is copied.  Rules for the string to sign come from
 * https://docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html
 * and are checked byte for byte against the signed AWS test messages.
 *
 * Security: see sns.h.  URLs are taken apart by libcurl's CURLU parser —
 * the same parser that will later download them — never by hand, so that
 * what we check is what curl connects to ("user@host", "%2e", "\" and other
 * tricks are resolved by curl, not guessed at here).
 */
#include "sns.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"

struct SnsMessage {
        json_t *json;
        SnsMessageType type;
        uint64_t timestamp_usec;
        const char *fields[_SNS_FIELD_MAX]; /* point into json; NULL when absent */
};

static const char *const sns_message_type_table[_SNS_MESSAGE_TYPE_MAX] = {
        [SNS_MESSAGE_NOTIFICATION] = "Notification",
        [SNS_MESSAGE_SUBSCRIPTION_CONFIRMATION] = "SubscriptionConfirmation",
        [SNS_MESSAGE_UNSUBSCRIBE_CONFIRMATION] = "UnsubscribeConfirmation",
};

const char *sns_message_type_to_string(SnsMessageType t) {
        if (t < 0 || t >= _SNS_MESSAGE_TYPE_MAX)
                return NULL;
        return sns_message_type_table[t];
}

SnsMessageType sns_message_type_from_string(const char *s) {
        for (size_t i = 0; s && i < _SNS_MESSAGE_TYPE_MAX; i++)
                if (streq(sns_message_type_table[i], s))
                        return (SnsMessageType) i;
        return _SNS_MESSAGE_TYPE_INVALID;
}

static const char *const sns_verify_result_table[_SNS_VERIFY_RESULT_MAX] = {
        [SNS_VERIFY_OK] = "ok",
        [SNS_VERIFY_BAD_SIGNATURE] = "bad-signature",
        [SNS_VERIFY_MALFORMED_SIGNATURE] = "malformed-signature",
        [SNS_VERIFY_UNKNOWN_VERSION] = "unknown-signature-version",
        [SNS_VERIFY_UNSUPPORTED_VERSION] = "unsupported-signature-version",
        [SNS_VERIFY_BAD_CERT_URL] = "bad-cert-url",
        [SNS_VERIFY_BAD_CERT] = "bad-cert",
        [SNS_VERIFY_CERT_EXPIRED] = "cert-expired",
        [SNS_VERIFY_CERT_NOT_YET_VALID] = "cert-not-yet-valid",
        [SNS_VERIFY_TIMESTAMP_TOO_OLD] = "timestamp-too-old",
        [SNS_VERIFY_TIMESTAMP_IN_FUTURE] = "timestamp-in-future",
};

const char *sns_verify_result_to_string(SnsVerifyResult r) {
        if (r < 0 || r >= _SNS_VERIFY_RESULT_MAX)
                return NULL;
        return sns_verify_result_table[r];
}

SnsVerifyResult sns_verify_result_from_string(const char *s) {
        for (size_t i = 0; s && i < _SNS_VERIFY_RESULT_MAX; i++)
                if (streq(sns_verify_result_table[i], s))
                        return (SnsVerifyResult) i;
        return _SNS_VERIFY_RESULT_INVALID;
}

/* ---- the envelope ------------------------------------------------------- */

#define TYPE_BIT(t) (1U << (t))
#define ALL_TYPES                                                                                                      \
        (TYPE_BIT(SNS_MESSAGE_NOTIFICATION) | TYPE_BIT(SNS_MESSAGE_SUBSCRIPTION_CONFIRMATION) |                        \
         TYPE_BIT(SNS_MESSAGE_UNSUBSCRIBE_CONFIRMATION))
#define CONFIRMATIONS (TYPE_BIT(SNS_MESSAGE_SUBSCRIPTION_CONFIRMATION) | TYPE_BIT(SNS_MESSAGE_UNSUBSCRIBE_CONFIRMATION))

typedef struct SnsFieldInfo {
        const char *key;
        const char *alt_key; /* the Lambda spelling, or NULL */
        unsigned required; /* TYPE_BIT()s of the types that must have it */
        /* Static reasons, spelled out so that they stay static. */
        const char *missing;
        const char *not_string;
        const char *alt_not_string;
        const char *both;
} SnsFieldInfo;

#define FIELD(k, req)                                                                                                  \
        { .key = k, .required = (req), .missing = "missing " k, .not_string = k " is not a string" }
#define FIELD_ALT(k, alt, req)                                                                                         \
        {                                                                                                              \
                .key = k, .alt_key = alt, .required = (req), .missing = "missing " k,                                  \
                .not_string = k " is not a string", .alt_not_string = alt " is not a string",                          \
                .both = "both " k " and " alt                                                                          \
        }

/* Which fields each type requires: the AWS message formats page, and the
 * keys the AWS SDK validators insist on.  UnsubscribeURL is optional:
 * nothing we do depends on it. */
static const SnsFieldInfo sns_fields[_SNS_FIELD_MAX] = {
        [SNS_FIELD_TYPE] = FIELD("Type", ALL_TYPES),
        [SNS_FIELD_MESSAGE_ID] = FIELD("MessageId", ALL_TYPES),
        [SNS_FIELD_TOPIC_ARN] = FIELD("TopicArn", ALL_TYPES),
        [SNS_FIELD_SUBJECT] = FIELD("Subject", 0),
        [SNS_FIELD_MESSAGE] = FIELD("Message", ALL_TYPES),
        [SNS_FIELD_TIMESTAMP] = FIELD("Timestamp", ALL_TYPES),
        [SNS_FIELD_SIGNATURE_VERSION] = FIELD("SignatureVersion", ALL_TYPES),
        [SNS_FIELD_SIGNATURE] = FIELD("Signature", ALL_TYPES),
        [SNS_FIELD_SIGNING_CERT_URL] = FIELD_ALT("SigningCertURL", "SigningCertUrl", ALL_TYPES),
        [SNS_FIELD_SUBSCRIBE_URL] = FIELD("SubscribeURL", CONFIRMATIONS),
        [SNS_FIELD_TOKEN] = FIELD("Token", CONFIRMATIONS),
        [SNS_FIELD_UNSUBSCRIBE_URL] = FIELD_ALT("UnsubscribeURL", "UnsubscribeUrl", 0),
};

const char *sns_field_to_string(SnsField f) {
        if (f < 0 || f >= _SNS_FIELD_MAX)
                return NULL;
        return sns_fields[f].key;
}

static bool is_json_space(char c) {
        return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* jansson's own depth limit is 2048; the envelope is flat, so refuse deep
 * nesting before building a tree for it.  Brackets inside strings do not
 * count; a malformed body is left for the parser to reject. */
static bool json_depth_ok(const char *p, size_t n, unsigned max) {
        unsigned depth = 0;
        bool in_string = false, escaped = false;

        for (size_t i = 0; i < n; i++) {
                char c = p[i];

                if (in_string) {
                        if (escaped)
                                escaped = false;
                        else if (c == '\\')
                                escaped = true;
                        else if (c == '"')
                                in_string = false;
                        continue;
                }
                if (c == '"')
                        in_string = true;
                else if (c == '{' || c == '[') {
                        if (++depth > max)
                                return false;
                } else if ((c == '}' || c == ']') && depth > 0)
                        depth--;
        }
        return true;
}

static int parse_fixed_digits(const char *s, size_t n, unsigned *ret) {
        unsigned v = 0;

        for (size_t i = 0; i < n; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return -EINVAL;
                v = v * 10 + (unsigned) (s[i] - '0');
        }
        *ret = v;
        return 0;
}

static bool is_leap_year(unsigned y) {
        return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar
 * (H. Hinnant's days_from_civil), so that no time zone is involved. */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
        y -= m <= 2;
        int64_t era = (y >= 0 ? y : y - 399) / 400;
        unsigned yoe = (unsigned) (y - era * 400);
        unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
        unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        return era * 146097 + (int64_t) doe - 719468;
}

int sns_parse_timestamp(const char *s, uint64_t *ret_usec) {
        static const unsigned month_days[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
        unsigned year, month, day, hour, minute, second, usec = 0;
        const char *p;

        if (!s || strlen(s) < 20)
                return -EINVAL;
        /* YYYY-MM-DDTHH:MM:SS */
        if (parse_fixed_digits(s, 4, &year) < 0 || s[4] != '-' || parse_fixed_digits(s + 5, 2, &month) < 0 ||
            s[7] != '-' || parse_fixed_digits(s + 8, 2, &day) < 0 || s[10] != 'T' ||
            parse_fixed_digits(s + 11, 2, &hour) < 0 || s[13] != ':' || parse_fixed_digits(s + 14, 2, &minute) < 0 ||
            s[16] != ':' || parse_fixed_digits(s + 17, 2, &second) < 0)
                return -EINVAL;
        if (year < 1970 || month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 59)
                return -EINVAL;
        if (day > month_days[month - 1] + (month == 2 && is_leap_year(year)))
                return -EINVAL;

        p = s + 19;
        if (*p == '.') {
                unsigned n = 0, scale = 100000;

                for (p++; *p >= '0' && *p <= '9'; p++, n++) {
                        if (n >= 9)
                                return -EINVAL;
                        usec += (unsigned) (*p - '0') * scale;
                        scale /= 10;
                }
                if (n == 0)
                        return -EINVAL;
        }
        if (!streq(p, "Z"))
                return -EINVAL;

        int64_t days = days_from_civil(year, month, day);
        uint64_t secs = (uint64_t) days * 86400 + hour * 3600 + minute * 60 + second;
        *ret_usec = secs * USEC_PER_SEC + usec;
        return 0;
}

static int parse_fail(int r, const char *reason, const char **ret_reason) {
        if (ret_reason)
                *ret_reason = reason;
        return r;
}

int sns_message_parse(const char *body, size_t len, SnsMessage **ret, const char **ret_reason) {
        _cleanup_(sns_message_freep) SnsMessage *m = NULL;
        json_error_t err = {};
        json_t *root, *v;
        unsigned long failures;
        size_t i = 0;

        if (len > SNS_MESSAGE_MAX_SIZE)
                return parse_fail(-EMSGSIZE, "body too large", ret_reason);

        /* An envelope is a JSON object; anything else is a raw delivery. */
        while (i < len && is_json_space(body[i]))
                i++;
        if (i >= len || body[i] != '{')
                return parse_fail(-EPROTONOSUPPORT, "raw message delivery (body is not an SNS envelope)", ret_reason);
        if (!json_depth_ok(body, len, SNS_MESSAGE_MAX_DEPTH))
                return parse_fail(-EBADMSG, "JSON nested too deeply", ret_reason);

        failures = alloc_failures();
        root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &err);
        /* jansson reports some allocation failures as syntax errors
         * ("invalid token") and others not at all. */
        if (!root && (alloc_failures() != failures || err.text[0] == '\0'))
                return -ENOMEM;
        if (!root)
                switch (json_error_code(&err)) {
                case json_error_out_of_memory:
                        return -ENOMEM;
                case json_error_duplicate_key:
                        return parse_fail(-EBADMSG, "duplicate key", ret_reason);
                case json_error_invalid_utf8:
                        return parse_fail(-EBADMSG, "invalid UTF-8", ret_reason);
                case json_error_null_character:
                        return parse_fail(-EBADMSG, "NUL character in JSON", ret_reason);
                default:
                        return parse_fail(-EBADMSG, "malformed JSON", ret_reason);
                }

        m = mem_new(SnsMessage, 1);
        if (!m) {
                json_decref(root);
                return -ENOMEM;
        }
        m->json = root;

        /* JSON published with raw delivery on (an SMS or SES payload) has
         * neither; a broken envelope has one of them. */
        if (!json_object_get(root, "Type") && !json_object_get(root, "Signature"))
                return parse_fail(-EPROTONOSUPPORT, "raw message delivery (JSON without Type and Signature)",
                                  ret_reason);

        v = json_object_get(root, "Type");
        if (!v)
                return parse_fail(-EBADMSG, sns_fields[SNS_FIELD_TYPE].missing, ret_reason);
        if (!json_is_string(v))
                return parse_fail(-EBADMSG, sns_fields[SNS_FIELD_TYPE].not_string, ret_reason);
        m->type = sns_message_type_from_string(json_string_value(v));
        if (m->type < 0)
                return parse_fail(-EBADMSG, "unknown Type", ret_reason);

        for (SnsField f = 0; f < _SNS_FIELD_MAX; f++) {
                const SnsFieldInfo *info = &sns_fields[f];
                bool required = info->required & TYPE_BIT(m->type);
                const char *not_string = info->not_string;
                json_t *alt = info->alt_key ? json_object_get(root, info->alt_key) : NULL;

                v = json_object_get(root, info->key);
                if (v && alt)
                        return parse_fail(-EBADMSG, info->both, ret_reason);
                if (!v && alt) {
                        v = alt;
                        not_string = info->alt_not_string;
                }
                /* null is "absent" for optional fields (Lambda sends
                 * "Subject": null), and wrong for required ones. */
                if (!v || (!required && json_is_null(v))) {
                        if (required)
                                return parse_fail(-EBADMSG, info->missing, ret_reason);
                        continue;
                }
                if (!json_is_string(v))
                        return parse_fail(-EBADMSG, not_string, ret_reason);
                m->fields[f] = json_string_value(v);
        }

        if (sns_parse_timestamp(m->fields[SNS_FIELD_TIMESTAMP], &m->timestamp_usec) < 0)
                return parse_fail(-EBADMSG, "invalid Timestamp", ret_reason);

        *ret = TAKE_PTR(m);
        return 0;
}

SnsMessage *sns_message_free(SnsMessage *m) {
        if (!m)
                return NULL;
        json_decref(m->json);
        free(m);
        return NULL;
}

SnsMessageType sns_message_get_type(const SnsMessage *m) {
        return m->type;
}

const char *sns_message_get(const SnsMessage *m, SnsField f) {
        if (f < 0 || f >= _SNS_FIELD_MAX)
                return NULL;
        return m->fields[f];
}

uint64_t sns_message_get_timestamp(const SnsMessage *m) {
        return m->timestamp_usec;
}

int sns_message_string_to_sign(const SnsMessage *m, char **ret, size_t *ret_len) {
        /* Byte-sorted key order, as AWS builds it. */
        static const SnsField notification[] = {
                SNS_FIELD_MESSAGE,   SNS_FIELD_MESSAGE_ID, SNS_FIELD_SUBJECT,
                SNS_FIELD_TIMESTAMP, SNS_FIELD_TOPIC_ARN,  SNS_FIELD_TYPE,
        };
        static const SnsField confirmation[] = {
                SNS_FIELD_MESSAGE, SNS_FIELD_MESSAGE_ID, SNS_FIELD_SUBSCRIBE_URL, SNS_FIELD_TIMESTAMP,
                SNS_FIELD_TOKEN,   SNS_FIELD_TOPIC_ARN,  SNS_FIELD_TYPE,
        };
        const SnsField *keys = m->type == SNS_MESSAGE_NOTIFICATION ? notification : confirmation;
        size_t n = m->type == SNS_MESSAGE_NOTIFICATION ? ELEMENTSOF(notification) : ELEMENTSOF(confirmation);
        size_t len = 0;
        char *s, *p;

        for (size_t i = 0; i < n; i++)
                if (m->fields[keys[i]])
                        len += strlen(sns_fields[keys[i]].key) + 1 + strlen(m->fields[keys[i]]) + 1;

        s = mem_malloc(len + 1);
        if (!s)
                return -ENOMEM;
        p = s;
        for (size_t i = 0; i < n; i++) {
                const char *k = sns_fields[keys[i]].key, *v = m->fields[keys[i]];
                size_t kl, vl;

                if (!v)
                        continue;
                kl = strlen(k);
                vl = strlen(v);
                memcpy(p, k, kl);
                p[kl] = '\n';
                memcpy(p + kl + 1, v, vl);
                p[kl + 1 + vl] = '\n';
                p += kl + vl + 2;
        }
        *p = '\0';

        *ret = s;
        if (ret_len)
                *ret_len = len;
        return 0;
}

/* ---- URLs --------------------------------------------------------------- */

static void curl_url_cleanupp(CURLU **u) {
        curl_url_cleanup(*u);
}

static void curl_freep(char **p) {
        curl_free(*p);
}

static bool is_lower_alnum_dash(char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

/* ^sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$ */
static bool host_is_sns(const char *host) {
        static const char *const suffixes[] = { ".amazonaws.com", ".amazonaws.com.cn" };
        size_t l = strlen(host);

        if (strncmp(host, "sns.", 4) != 0)
                return false;
        for (size_t i = 0; i < ELEMENTSOF(suffixes); i++) {
                size_t sl = strlen(suffixes[i]);
                size_t region = l >= 4 + sl ? l - 4 - sl : 0;

                if (region == 0 || !streq(host + l - sl, suffixes[i]))
                        continue;
                for (size_t j = 4; j < 4 + region; j++)
                        if (!is_lower_alnum_dash(host[j]))
                                return false;
                return true;
        }
        return false;
}

/* 0 if the part is absent, 1 if present (value in *ret when ret is not
 * NULL), -ENOMEM. */
static int url_part(CURLU *u, CURLUPart part, char **ret) {
        char *v = NULL;
        CURLUcode rc = curl_url_get(u, part, &v, 0);

        switch (rc) {
        case CURLUE_OK:
                if (ret)
                        *ret = v;
                else
                        curl_free(v);
                return 1;
        case CURLUE_OUT_OF_MEMORY:
                return -ENOMEM;
        default: /* CURLUE_NO_USER, CURLUE_NO_PORT, … */
                return 0;
        }
}

static int url_check(const char *url, bool cert, const char **ret_reason) {
        _cleanup_(curl_url_cleanupp) CURLU *u = NULL;
        _cleanup_(curl_freep) char *scheme = NULL, *host = NULL, *path = NULL, *canonical = NULL;
        static const struct {
                CURLUPart part;
                const char *reason;
        } forbidden[] = {
                { CURLUPART_USER, "URL has user information" },
                { CURLUPART_PASSWORD, "URL has user information" },
                { CURLUPART_OPTIONS, "URL has user information" },
                { CURLUPART_PORT, "URL has a port" },
        };
        CURLUcode rc;
        int r;

        if (isempty(url))
                return parse_fail(-EPERM, "empty URL", ret_reason);
        if (strlen(url) > SNS_URL_MAX_LENGTH)
                return parse_fail(-EPERM, "URL too long", ret_reason);

        u = curl_url();
        if (!u)
                return -ENOMEM;
        rc = curl_url_set(u, CURLUPART_URL, url, 0);
        if (rc == CURLUE_OUT_OF_MEMORY)
                return -ENOMEM;
        if (rc != CURLUE_OK)
                return parse_fail(-EPERM, "not a valid URL", ret_reason);

        r = url_part(u, CURLUPART_SCHEME, &scheme);
        if (r < 0)
                return r;
        if (r == 0 || !streq(scheme, "https"))
                return parse_fail(-EPERM, "URL is not https", ret_reason);

        for (size_t i = 0; i < ELEMENTSOF(forbidden); i++) {
                r = url_part(u, forbidden[i].part, NULL);
                if (r < 0)
                        return r;
                if (r > 0)
                        return parse_fail(-EPERM, forbidden[i].reason, ret_reason);
        }

        r = url_part(u, CURLUPART_HOST, &host);
        if (r < 0)
                return r;
        if (r == 0 || !host_is_sns(host))
                return parse_fail(-EPERM, "URL host is not an SNS host", ret_reason);

        if (cert) {
                size_t l;

                r = url_part(u, CURLUPART_PATH, &path);
                if (r < 0)
                        return r;
                l = r > 0 ? strlen(path) : 0;
                if (l < 5 || !streq(path + l - 4, ".pem"))
                        return parse_fail(-EPERM, "certificate URL path does not end in .pem", ret_reason);
                r = url_part(u, CURLUPART_QUERY, NULL);
                if (r == 0)
                        r = url_part(u, CURLUPART_FRAGMENT, NULL);
                if (r < 0)
                        return r;
                if (r > 0)
                        return parse_fail(-EPERM, "certificate URL has a query or fragment", ret_reason);
        }

        /* What curl would fetch must be exactly what was sent: AWS sends
         * canonical URLs, and the cache is keyed by the string. */
        r = url_part(u, CURLUPART_URL, &canonical);
        if (r < 0)
                return r;
        if (r == 0 || !streq(canonical, url))
                return parse_fail(-EPERM, "URL is not in canonical form", ret_reason);
        return 0;
}

int sns_signing_cert_url_check(const char *url, const char **ret_reason) {
        return url_check(url, true, ret_reason);
}

int sns_subscribe_url_check(const char *url, const char **ret_reason) {
        return url_check(url, false, ret_reason);
}

/* ---- verification ------------------------------------------------------- */

static void bio_freep(BIO **b) {
        BIO_free(*b);
}

static void x509_freep(X509 **x) {
        X509_free(*x);
}

static void evp_md_ctx_freep(EVP_MD_CTX **c) {
        EVP_MD_CTX_free(*c);
}

static int base64_value(char c) {
        if (c >= 'A' && c <= 'Z')
                return c - 'A';
        if (c >= 'a' && c <= 'z')
                return c - 'a' + 26;
        if (c >= '0' && c <= '9')
                return c - '0' + 52;
        if (c == '+')
                return 62;
        if (c == '/')
                return 63;
        return -1;
}

/* Strict standard base64: padded, no white space.  -EINVAL, -ENOMEM. */
static int base64_decode(const char *s, uint8_t **ret, size_t *ret_len) {
        size_t n = strlen(s), len = 0;
        uint8_t *out;

        if (n == 0 || n % 4 != 0)
                return -EINVAL;
        out = mem_malloc(n / 4 * 3);
        if (!out)
                return -ENOMEM;
        for (size_t i = 0; i < n; i += 4) {
                bool last = i + 4 == n;
                int v[4];

                for (size_t j = 0; j < 4; j++)
                        v[j] = base64_value(s[i + j]);
                if (v[0] < 0 || v[1] < 0 || (v[2] < 0 && !(last && s[i + 2] == '=' && s[i + 3] == '=')) ||
                    (v[3] < 0 && !(last && s[i + 3] == '='))) {
                        free(out);
                        return -EINVAL;
                }
                out[len++] = (uint8_t) (v[0] << 2 | v[1] >> 4);
                if (v[2] >= 0)
                        out[len++] = (uint8_t) ((v[1] & 0xf) << 4 | v[2] >> 2);
                if (v[3] >= 0)
                        out[len++] = (uint8_t) ((v[2] & 0x3) << 6 | v[3]);
        }
        *ret = out;
        *ret_len = len;
        return 0;
}

/* Whether an allocation failed since before (alloc_failures(): OpenSSL
 * allocates through mem_*, alloc_init()): then a failure is "try again"
 * (5xx), never "forged" (403, which SNS does not retry).  OpenSSL's
 * error queue is emptied; its reasons do not say it reliably (a PEM
 * buffer that could not be allocated reads as "no start line"). */
static bool openssl_out_of_memory(unsigned long before) {
        ERR_clear_error();
        return alloc_failures() != before;
}

/* The first certificate in a PEM buffer: 0 and *ret, -EBADMSG when it is
 * not one, -ENOMEM. */
static int pem_read_cert(const char *pem, size_t len, X509 **ret) {
        _cleanup_(bio_freep) BIO *b = NULL;
        X509 *x;

        if (len == 0 || len > SNS_CERT_MAX_SIZE)
                return -EBADMSG;
        b = BIO_new_mem_buf(pem, (int) len);
        if (!b)
                return -ENOMEM;
        unsigned long before = alloc_failures();
        x = PEM_read_bio_X509(b, NULL, NULL, NULL);
        if (!x)
                return openssl_out_of_memory(before) ? -ENOMEM : -EBADMSG;
        *ret = x;
        return 0;
}

struct SnsCert {
        unsigned n_ref; /* atomic: checked from worker threads too */
        X509 *x509;
};

SnsCert *sns_cert_ref(SnsCert *c) {
        if (c)
                __atomic_add_fetch(&c->n_ref, 1, __ATOMIC_RELAXED);
        return c;
}

SnsCert *sns_cert_unref(SnsCert *c) {
        if (!c || __atomic_sub_fetch(&c->n_ref, 1, __ATOMIC_ACQ_REL) > 0)
                return NULL;
        X509_free(c->x509);
        free(c);
        return NULL;
}

int sns_cert_parse(const char *pem, size_t pem_len, SnsCert **ret) {
        _cleanup_(x509_freep) X509 *x = NULL;
        SnsCert *c;
        int r;

        r = pem_read_cert(pem, pem_len, &x);
        if (r < 0)
                return r;
        c = mem_new(SnsCert, 1);
        if (!c)
                return -ENOMEM;
        c->n_ref = 1;
        c->x509 = TAKE_PTR(x);
        *ret = c;
        return 0;
}

/* Returns an SnsVerifyResult (>= 0) or -ENOMEM.  cert NULL: the caller's
 * PEM did not parse, which is reported where the certificate is first
 * needed, so that the other outcomes keep their order. */
static int verify(const SnsMessage *m, const SnsCert *cert, unsigned min_version, uint64_t check_time_usec) {
        _cleanup_(evp_md_ctx_freep) EVP_MD_CTX *ctx = NULL;
        _cleanup_free_ uint8_t *sig = NULL;
        _cleanup_free_ char *tbs = NULL;
        const char *version = m->fields[SNS_FIELD_SIGNATURE_VERSION];
        time_t t = (time_t) (check_time_usec / USEC_PER_SEC);
        const EVP_MD *md;
        EVP_PKEY *key;
        X509 *x;
        size_t sig_len, tbs_len;
        unsigned v;
        int r;

        if (streq(version, "1")) {
                v = 1;
                md = EVP_sha1();
        } else if (streq(version, "2")) {
                v = 2;
                md = EVP_sha256();
        } else
                return SNS_VERIFY_UNKNOWN_VERSION;
        if (v < MAX(min_version, 1U))
                return SNS_VERIFY_UNSUPPORTED_VERSION;

        r = sns_signing_cert_url_check(m->fields[SNS_FIELD_SIGNING_CERT_URL], NULL);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return SNS_VERIFY_BAD_CERT_URL;

        r = base64_decode(m->fields[SNS_FIELD_SIGNATURE], &sig, &sig_len);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return SNS_VERIFY_MALFORMED_SIGNATURE;

        if (!cert)
                return SNS_VERIFY_BAD_CERT;
        x = cert->x509;
        /* X509_cmp_time(): -1 if the certificate's time is at or before t,
         * 1 if after, 0 if it cannot be read. */
        r = X509_cmp_time(X509_get0_notBefore(x), &t);
        if (r == 0)
                return SNS_VERIFY_BAD_CERT;
        if (r > 0)
                return SNS_VERIFY_CERT_NOT_YET_VALID;
        r = X509_cmp_time(X509_get0_notAfter(x), &t);
        if (r == 0)
                return SNS_VERIFY_BAD_CERT;
        if (r < 0)
                return SNS_VERIFY_CERT_EXPIRED;
        key = X509_get0_pubkey(x);
        if (!key)
                return SNS_VERIFY_BAD_CERT;
        if (EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA)
                return SNS_VERIFY_BAD_CERT;

        r = sns_message_string_to_sign(m, &tbs, &tbs_len);
        if (r < 0)
                return r;

        ctx = EVP_MD_CTX_new();
        if (!ctx)
                return -ENOMEM;
        /* RSA PKCS #1 v1.5, the default padding for an RSA key. */
        if (EVP_DigestVerifyInit(ctx, NULL, md, NULL, key) != 1)
                return SNS_VERIFY_BAD_CERT;
        r = EVP_DigestVerify(ctx, sig, sig_len, (const unsigned char *) tbs, tbs_len);
        return r == 1 ? SNS_VERIFY_OK : SNS_VERIFY_BAD_SIGNATURE;
}

static int verify_result(int r, unsigned long before, SnsVerifyResult *ret_result) {
        /* Anything but OK while an allocation failed may be the failure's
         * doing: the sender must try again. */
        if (r > SNS_VERIFY_OK && openssl_out_of_memory(before))
                r = -ENOMEM;
        /* Leave no error behind in OpenSSL's per-thread queue for the next
         * user (the TLS code in libcurl reads it). */
        ERR_clear_error();
        if (r < 0)
                return r;
        *ret_result = (SnsVerifyResult) r;
        return 0;
}

int sns_message_verify_cert(const SnsMessage *m, const SnsCert *cert, unsigned min_signature_version,
                            uint64_t check_time_usec, SnsVerifyResult *ret_result) {
        unsigned long before = alloc_failures();

        return verify_result(verify(m, cert, min_signature_version, check_time_usec), before, ret_result);
}

int sns_message_verify(const SnsMessage *m, const char *pem, size_t pem_len, unsigned min_signature_version,
                       uint64_t check_time_usec, SnsVerifyResult *ret_result) {
        _cleanup_(sns_cert_unrefp) SnsCert *cert = NULL;
        unsigned long before = alloc_failures();
        int r;

        r = sns_cert_parse(pem, pem_len, &cert);
        if (r == -ENOMEM)
                return r;
        r = verify(m, cert, min_signature_version, check_time_usec);
        return verify_result(r, before, ret_result);
}

SnsVerifyResult sns_timestamp_check(uint64_t timestamp_usec, uint64_t now_usec, uint64_t max_age_usec,
                                    uint64_t max_ahead_usec) {
        if (timestamp_usec < now_usec && now_usec - timestamp_usec > max_age_usec)
                return SNS_VERIFY_TIMESTAMP_TOO_OLD;
        if (timestamp_usec > now_usec && timestamp_usec - now_usec > max_ahead_usec)
                return SNS_VERIFY_TIMESTAMP_IN_FUTURE;
        return SNS_VERIFY_OK;
}

bool sns_topic_allowed(char *const *allowed, const char *topic_arn) {
        if (!topic_arn)
                return false;
        for (size_t i = 0; allowed && allowed[i]; i++)
                if (streq(allowed[i], topic_arn))
                        return true;
        return false;
}

/* ---- certificate cache ---------------------------------------------------- */

int sns_cert_cache_path(const char *dir, const char *url, char **ret) {
        unsigned char md[EVP_MAX_MD_SIZE];
        char hex[2 * EVP_MAX_MD_SIZE + 1];
        unsigned md_len = 0;
        char *p;

        if (isempty(dir) || isempty(url))
                return -EINVAL;
        if (EVP_Digest(url, strlen(url), md, &md_len, EVP_sha256(), NULL) != 1) {
                ERR_clear_error();
                return -ENOMEM;
        }
        for (unsigned i = 0; i < md_len; i++) {
                hex[2 * i] = "0123456789abcdef"[md[i] >> 4];
                hex[2 * i + 1] = "0123456789abcdef"[md[i] & 0xf];
        }
        hex[2 * md_len] = '\0';

        p = mem_printf("%s/%s.pem", dir, hex);
        if (!p)
                return -ENOMEM;
        *ret = p;
        return 0;
}

int sns_cert_cache_load(const char *dir, const char *url, char **ret_pem, size_t *ret_len) {
        _cleanup_free_ char *path = NULL, *buf = NULL;
        _cleanup_close_ int fd = -EBADF;
        struct stat st;
        size_t len = 0;
        int r;

        r = sns_cert_cache_path(dir, url, &path);
        if (r < 0)
                return r;
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EBADF;
        if ((uint64_t) st.st_size > SNS_CERT_MAX_SIZE)
                return -EFBIG;

        buf = mem_malloc(SNS_CERT_MAX_SIZE + 1);
        if (!buf)
                return -ENOMEM;
        /* Read to the end, not to st_size: the file is small, and a longer
         * one than SNS_CERT_MAX_SIZE is refused however it got so. */
        for (;;) {
                ssize_t n = read(fd, buf + len, SNS_CERT_MAX_SIZE + 1 - len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        break;
                len += (size_t) n;
                if (len > SNS_CERT_MAX_SIZE)
                        return -EFBIG;
        }
        buf[len] = '\0';

        *ret_pem = TAKE_PTR(buf);
        if (ret_len)
                *ret_len = len;
        return 0;
}

static int write_all(int fd, const char *p, size_t n) {
        while (n > 0) {
                ssize_t k = write(fd, p, n);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += k;
                n -= (size_t) k;
        }
        return 0;
}

int sns_cert_cache_store(const char *dir, const char *url, const char *pem, size_t pem_len) {
        _cleanup_free_ char *path = NULL, *tmp = NULL;
        _cleanup_close_ int fd = -EBADF, dfd = -EBADF;
        X509 *x;
        int r;

        if (pem_len > SNS_CERT_MAX_SIZE)
                return -EFBIG;
        r = pem_read_cert(pem, pem_len, &x);
        if (r < 0)
                return r; /* -EBADMSG: not a certificate, nothing stored */
        X509_free(x);

        r = sns_cert_cache_path(dir, url, &path);
        if (r < 0)
                return r;
        tmp = mem_printf("%s.XXXXXX", path);
        if (!tmp)
                return -ENOMEM;

        fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return -errno;
        /* A certificate is public; readable like any other cache file. */
        if (fchmod(fd, 0644) < 0)
                r = -errno;
        if (r >= 0)
                r = write_all(fd, pem, pem_len);
        if (r >= 0 && fsync(fd) < 0)
                r = -errno;
        if (r >= 0 && close(TAKE_FD(fd)) < 0)
                r = -errno;
        if (r >= 0 && rename(tmp, path) < 0)
                r = -errno;
        if (r < 0) {
                (void) unlink(tmp);
                return r;
        }

        /* Make the rename itself durable. */
        dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return -errno;
        if (fsync(dfd) < 0)
                return -errno;
        return 0;
}
