/* SPDX-License-Identifier: MIT */
/*
 * sigv4.c — AWS Signature Version 4: canonical URI, query and headers, the
 * canonical request, the string to sign, the signing key (kDate, kRegion,
 * kService, kSigning) and the Authorization header.
 *
 * Security: see sigv4.h.  The derived keys live in fixed-size buffers on
 * the stack and "AWS4" + secret in one heap buffer; all are wiped with
 * explicit_bzero() before they go out of scope.  Every string the
 * signature owns is wiped when it is freed, and buffers grow by copying and
 * wiping rather than realloc(), since some hold the session token.
 */
#include "sigv4.h"

#include <errno.h>
#include <limits.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "alloc.h"
#include "strutil.h"

#define SHA256_LEN 32
#define SHA256_HEX_LEN 64
#define AMZ_DATE_LEN 16 /* 20150830T123600Z */

struct SigV4Signature {
        char *canonical_request;
        char *string_to_sign;
        char *authorization;
        char **headers;
        char **all_headers;
};

/* ---- strings ------------------------------------------------------------ */

/* A growing string.  Errors are sticky: after an allocation failure every
 * put is a no-op and buf_steal() returns NULL. */
typedef struct Buf {
        char *p;
        size_t len, size;
        bool oom;
} Buf;

static void buf_done(Buf *b) {
        if (b->p) {
                explicit_bzero(b->p, b->size);
                free(b->p);
        }
        *b = (Buf){};
}

static void buf_put(Buf *b, const void *s, size_t n) {
        if (b->oom)
                return;
        if (n >= SIZE_MAX / 4 - b->len) {
                b->oom = true;
                return;
        }
        if (b->len + n + 1 > b->size) {
                size_t size = MAX(MAX(b->size * 2, b->len + n + 1), (size_t) 64);
                char *p = mem_malloc(size);

                if (!p) {
                        b->oom = true;
                        return;
                }
                if (b->p) {
                        memcpy(p, b->p, b->len);
                        explicit_bzero(b->p, b->size);
                        free(b->p);
                }
                b->p = p;
                b->size = size;
        }
        memcpy(b->p + b->len, s, n);
        b->len += n;
        b->p[b->len] = '\0';
}

static void buf_puts(Buf *b, const char *s) {
        buf_put(b, s, strlen(s));
}

static void buf_putc(Buf *b, char c) {
        buf_put(b, &c, 1);
}

/* The string, now the caller's; NULL after an allocation failure. */
static char *buf_steal(Buf *b) {
        char *p;

        if (!b->oom && !b->p)
                buf_put(b, "", 0);
        if (b->oom) {
                buf_done(b);
                return NULL;
        }
        p = TAKE_PTR(b->p);
        *b = (Buf){};
        return p;
}

static bool is_unreserved(unsigned char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
                c == '.' || c == '~';
}

static bool is_control(unsigned char c) {
        return c < 0x20 || c == 0x7f;
}

static void buf_uri_encode(Buf *b, const void *p, size_t n, bool keep_slash) {
        static const char hex[] = "0123456789ABCDEF";
        const unsigned char *s = p;

        for (size_t i = 0; i < n; i++) {
                if (is_unreserved(s[i]) || (keep_slash && s[i] == '/'))
                        buf_putc(b, (char) s[i]);
                else {
                        char e[3] = { '%', hex[s[i] >> 4], hex[s[i] & 15] };
                        buf_put(b, e, sizeof e);
                }
        }
}

static int unhex(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

/* Percent-decode n bytes into out (which may then hold NUL bytes; out.len
 * counts them).  -EINVAL on a '%' not followed by two hex digits. */
static int buf_percent_decode(Buf *out, const char *p, size_t n) {
        for (size_t i = 0; i < n; i++) {
                if (p[i] != '%') {
                        buf_putc(out, p[i]);
                        continue;
                }
                if (i + 2 >= n)
                        return -EINVAL;
                int hi = unhex(p[i + 1]), lo = unhex(p[i + 2]);
                if (hi < 0 || lo < 0)
                        return -EINVAL;
                buf_putc(out, (char) (hi << 4 | lo));
                i += 2;
        }
        return 0;
}

/* Decode, then encode again: one canonical spelling of an encoded string. */
static int buf_reencode(Buf *b, const char *p, size_t n, bool keep_slash) {
        Buf d = {};
        int r;

        r = buf_percent_decode(&d, p, n);
        if (r >= 0 && d.oom)
                r = -ENOMEM;
        if (r >= 0)
                buf_uri_encode(b, d.p ?: "", d.len, keep_slash);
        buf_done(&d);
        return r;
}

int sigv4_uri_encode(const void *p, size_t n, bool keep_slash, char **ret) {
        Buf b = {};
        char *s;

        buf_uri_encode(&b, p, n, keep_slash);
        s = buf_steal(&b);
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

/* ---- canonical URI ------------------------------------------------------ */

typedef struct Segment {
        const char *p;
        size_t n;
} Segment;

int sigv4_canonical_uri(const char *path, bool s3, char **ret) {
        _cleanup_free_ Segment *segs = NULL;
        size_t n_segs = 0, len;
        Buf b = {};
        char *s;
        int r;

        if (isempty(path))
                path = "/";
        if (path[0] != '/')
                return -EINVAL;
        len = strlen(path);
        for (size_t i = 0; i < len; i++)
                if (is_control((unsigned char) path[i]) || path[i] == '?' || path[i] == '#')
                        return -EINVAL;

        if (s3) {
                /* S3 signs the object key as it is, encoded once: "a//b" and
                 * "a/./b" are different keys. */
                r = buf_reencode(&b, path, len, true);
                if (r < 0) {
                        buf_done(&b);
                        return r;
                }
        } else {
                /* RFC 3986 section 5.2.4 dot segments, and empty segments
                 * dropped too, as the AWS test suite's normalize-path cases
                 * and botocore's remove_dot_segments() do. */
                segs = mem_new(Segment, len / 2 + 1);
                if (!segs)
                        return -ENOMEM;
                for (const char *p = path + 1;; p++) {
                        size_t k = strcspn(p, "/");

                        if (k == 0 || (k == 1 && p[0] == '.'))
                                ;
                        else if (k == 2 && p[0] == '.' && p[1] == '.') {
                                if (n_segs > 0)
                                        n_segs--;
                        } else
                                segs[n_segs++] = (Segment){ p, k };
                        p += k;
                        if (!*p)
                                break;
                }
                buf_putc(&b, '/');
                for (size_t i = 0; i < n_segs; i++) {
                        if (i > 0)
                                buf_putc(&b, '/');
                        /* The second encoding: the path as sent is already
                         * encoded once, so "%3A" becomes "%253A". */
                        buf_uri_encode(&b, segs[i].p, segs[i].n, false);
                }
                if (n_segs > 0 && path[len - 1] == '/')
                        buf_putc(&b, '/');
        }

        s = buf_steal(&b);
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

/* ---- canonical query string --------------------------------------------- */

typedef struct Param {
        char *name;
        char *value;
} Param;

static int param_cmp(const void *a, const void *b) {
        const Param *x = a, *y = b;
        int c = strcmp(x->name, y->name);

        return c != 0 ? c : strcmp(x->value, y->value);
}

/* A new string, or NULL with *error set. */
static char *reencode(const char *p, size_t n, int *error) {
        Buf b = {};
        char *s;
        int r = buf_reencode(&b, p, n, false);

        if (r < 0) {
                buf_done(&b);
                *error = r;
                return NULL;
        }
        s = buf_steal(&b);
        if (!s)
                *error = -ENOMEM;
        return s;
}

int sigv4_canonical_query(const char *query, char **ret) {
        Param *params = NULL;
        size_t n_params = 0, n_max = 1, len;
        Buf b = {};
        char *s;
        int r = 0;

        query = strempty(query);
        len = strlen(query);
        for (size_t i = 0; i < len; i++) {
                if (is_control((unsigned char) query[i]) || query[i] == '#')
                        return -EINVAL;
                if (query[i] == '&')
                        n_max++;
        }

        params = mem_new(Param, n_max);
        if (!params)
                return -ENOMEM;
        for (const char *p = query;; p++) {
                size_t k = strcspn(p, "&");

                /* "a&&b": the empty parameter between is no parameter. */
                if (k > 0) {
                        const char *eq = memchr(p, '=', k);
                        size_t nk = eq ? (size_t) (eq - p) : k;
                        Param *q = &params[n_params++];

                        q->name = reencode(p, nk, &r);
                        if (q->name)
                                q->value = eq ? reencode(eq + 1, k - nk - 1, &r) : reencode("", 0, &r);
                        if (r < 0)
                                goto finish;
                }
                p += k;
                if (!*p)
                        break;
        }

        /* By encoded name, then by encoded value, byte by byte. */
        qsort(params, n_params, sizeof(Param), param_cmp);
        for (size_t i = 0; i < n_params; i++) {
                if (i > 0)
                        buf_putc(&b, '&');
                buf_puts(&b, params[i].name);
                buf_putc(&b, '=');
                buf_puts(&b, params[i].value);
        }
        s = buf_steal(&b);
        if (!s) {
                r = -ENOMEM;
                goto finish;
        }
        *ret = s;
        r = 0;
finish:
        for (size_t i = 0; i < n_params; i++) {
                free(params[i].name);
                free(params[i].value);
        }
        free(params);
        return r;
}

/* ---- canonical headers -------------------------------------------------- */

typedef struct Entry {
        char *name; /* lower-case */
        char *value; /* trimmed, folded lines joined with ',' */
        size_t index; /* order of appearance, for duplicates */
} Entry;

static int entry_cmp(const void *a, const void *b) {
        const Entry *x = a, *y = b;
        int c = strcmp(x->name, y->name);

        if (c != 0)
                return c;
        return x->index < y->index ? -1 : x->index > y->index;
}

static bool header_name_valid(const char *s) {
        if (isempty(s))
                return false;
        for (; *s; s++)
                if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
                      strchr("!#$%&'*+-.^_`|~", *s)))
                        return false;
        return true;
}

/* Trimall: leading and trailing white space removed, inner runs of spaces
 * and tabs made one space; the lines of a folded value joined with ','. */
static void buf_header_value(Buf *b, const char *v) {
        bool first = true;

        for (const char *line = v;; line++) {
                size_t n = strcspn(line, "\r\n"), i = 0, end = n;
                bool space = false;

                while (i < end && (line[i] == ' ' || line[i] == '\t'))
                        i++;
                while (end > i && (line[end - 1] == ' ' || line[end - 1] == '\t'))
                        end--;
                if (end > i) {
                        if (!first)
                                buf_putc(b, ',');
                        first = false;
                        for (; i < end; i++) {
                                if (line[i] == ' ' || line[i] == '\t') {
                                        space = true;
                                        continue;
                                }
                                if (space)
                                        buf_putc(b, ' ');
                                space = false;
                                buf_putc(b, line[i]);
                        }
                }
                line += n;
                if (!*line)
                        break;
        }
}

/* Control characters other than tab and the line breaks of a folded value
 * would be sent as they are. */
static bool header_value_valid(const char *v) {
        for (; *v; v++)
                if (is_control((unsigned char) *v) && !strchr("\t\r\n", *v))
                        return false;
        return true;
}

static bool header_reserved(const char *name) {
        static const char *const reserved[] = { "authorization", "x-amz-date", "x-amz-security-token",
                                                "x-amz-content-sha256" };

        for (size_t i = 0; i < ELEMENTSOF(reserved); i++)
                if (strcasecmp(name, reserved[i]) == 0)
                        return true;
        return false;
}

static int entry_set(Entry *e, const char *name, const char *value, size_t index) {
        Buf b = {};

        e->index = index;
        e->name = mem_strdup(name);
        if (!e->name)
                return -ENOMEM;
        for (char *p = e->name; *p; p++)
                if (*p >= 'A' && *p <= 'Z')
                        *p = (char) (*p - 'A' + 'a');
        buf_header_value(&b, value);
        e->value = buf_steal(&b);
        return e->value ? 0 : -ENOMEM;
}

/* ---- hashing ------------------------------------------------------------ */

static void hex_lower(const uint8_t *p, size_t n, char *out) {
        static const char hex[] = "0123456789abcdef";

        for (size_t i = 0; i < n; i++) {
                out[2 * i] = hex[p[i] >> 4];
                out[2 * i + 1] = hex[p[i] & 15];
        }
        out[2 * n] = '\0';
}

static int sha256_hex(const void *p, size_t n, char out[SHA256_HEX_LEN + 1]) {
        uint8_t md[EVP_MAX_MD_SIZE];
        unsigned md_len = 0;

        unsigned long before = alloc_failures();
        if (EVP_Digest(n > 0 ? p : "", n, md, &md_len, EVP_sha256(), NULL) != 1 || md_len != SHA256_LEN)
                return alloc_errno_since(before, -EIO);
        hex_lower(md, SHA256_LEN, out);
        return 0;
}

static int hmac_sha256(const void *key, size_t key_len, const void *data, size_t len, uint8_t out[SHA256_LEN]) {
        unsigned out_len = 0;

        if (key_len > INT_MAX)
                return -EINVAL;
        unsigned long before = alloc_failures();
        if (!HMAC(EVP_sha256(), key, (int) key_len, data, len, out, &out_len) || out_len != SHA256_LEN)
                return alloc_errno_since(before, -EIO);
        return 0;
}

/* kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request"),
 * then the signature = hex(HMAC(kSigning, string to sign)). */
static int sign_string(const char *secret, const char *date, const char *region, const char *service,
                       const char *string_to_sign, char out[SHA256_HEX_LEN + 1]) {
        uint8_t k1[SHA256_LEN], k2[SHA256_LEN], sig[SHA256_LEN];
        _cleanup_wipe_ char *k_secret = NULL;
        int r;

        k_secret = mem_printf("AWS4%s", secret);
        if (!k_secret)
                return -ENOMEM;
        r = hmac_sha256(k_secret, strlen(k_secret), date, strlen(date), k1);
        if (r >= 0)
                r = hmac_sha256(k1, sizeof k1, region, strlen(region), k2);
        if (r >= 0)
                r = hmac_sha256(k2, sizeof k2, service, strlen(service), k1);
        if (r >= 0)
                r = hmac_sha256(k1, sizeof k1, "aws4_request", strlen("aws4_request"), k2);
        if (r >= 0)
                r = hmac_sha256(k2, sizeof k2, string_to_sign, strlen(string_to_sign), sig);
        if (r >= 0)
                hex_lower(sig, sizeof sig, out);
        explicit_bzero(k1, sizeof k1);
        explicit_bzero(k2, sizeof k2);
        explicit_bzero(sig, sizeof sig);
        return r;
}

/* ---- checks ------------------------------------------------------------- */

static bool method_valid(const char *m) {
        size_t n = 0;

        if (isempty(m))
                return false;
        for (; m[n]; n++)
                if (m[n] < 'A' || m[n] > 'Z')
                        return false;
        return n <= 32;
}

/* Region, service: they go into the credential scope between '/'. */
static bool scope_part_valid(const char *s) {
        if (isempty(s))
                return false;
        for (; *s; s++)
                if (!is_unreserved((unsigned char) *s) || *s == '~')
                        return false;
        return true;
}

static bool no_controls(const char *s) {
        for (; *s; s++)
                if (is_control((unsigned char) *s))
                        return false;
        return true;
}

static bool credentials_valid(const SigV4Credentials *c) {
        if (!c || isempty(c->access_key_id) || isempty(c->secret_access_key))
                return false;
        /* The key id goes into "Credential=ID/scope, …". */
        for (const char *p = c->access_key_id; *p; p++)
                if (is_control((unsigned char) *p) || strchr(" /,=", *p))
                        return false;
        return no_controls(c->secret_access_key) && (!c->session_token || no_controls(c->session_token));
}

static bool payload_hash_valid(const char *h) {
        if (streq(h, SIGV4_UNSIGNED_PAYLOAD))
                return true;
        if (strlen(h) != SHA256_HEX_LEN)
                return false;
        for (; *h; h++)
                if (!((*h >= '0' && *h <= '9') || (*h >= 'a' && *h <= 'f')))
                        return false;
        return true;
}

static int format_amz_date(uint64_t now_usec, char out[AMZ_DATE_LEN + 1]) {
        time_t t = (time_t) (now_usec / USEC_PER_SEC);
        struct tm tm;

        if ((uint64_t) t != now_usec / USEC_PER_SEC || !gmtime_r(&t, &tm) || tm.tm_year + 1900 > 9999)
                return -ERANGE;
        if (strftime(out, AMZ_DATE_LEN + 1, "%Y%m%dT%H%M%SZ", &tm) != AMZ_DATE_LEN)
                return -ERANGE;
        return 0;
}

/* ---- signing ------------------------------------------------------------ */

SigV4Signature *sigv4_signature_free(SigV4Signature *s) {
        if (!s)
                return NULL;
        wipe_free(s->canonical_request);
        wipe_free(s->string_to_sign);
        wipe_free(s->authorization);
        wipe_strv_free(s->headers);
        wipe_strv_free(s->all_headers);
        free(s);
        return NULL;
}

static int strv_add(char **l, size_t *n, char *s) {
        if (!s)
                return -ENOMEM;
        l[(*n)++] = s;
        l[*n] = NULL;
        return 0;
}

int sigv4_sign(const SigV4Request *req, const SigV4Credentials *creds, uint64_t now_usec, SigV4Signature **ret) {
        _cleanup_(sigv4_signature_freep) SigV4Signature *s = NULL;
        _cleanup_free_ char *uri = NULL, *query = NULL;
        _cleanup_wipe_ char *signed_headers = NULL;
        char amz_date[AMZ_DATE_LEN + 1], date[9], payload[SHA256_HEX_LEN + 1], creq_hash[SHA256_HEX_LEN + 1],
                signature[SHA256_HEX_LEN + 1];
        const char *token;
        Entry *entries = NULL;
        size_t n_entries = 0, n_hosts = 0, n = 0;
        bool s3, sign_token;
        Buf b = {};
        int r;

        if (!req || !ret || !method_valid(req->method) || !scope_part_valid(req->region) ||
            !scope_part_valid(req->service) || !credentials_valid(creds) || (req->n_headers > 0 && !req->headers) ||
            (req->body_len > 0 && !req->body) || (req->payload_hash && !payload_hash_valid(req->payload_hash)) ||
            (req->flags & ~(unsigned) (SIGV4_CONTENT_SHA256 | SIGV4_TOKEN_UNSIGNED)))
                return -EINVAL;
        token = isempty(creds->session_token) ? NULL : creds->session_token;
        sign_token = token && !(req->flags & SIGV4_TOKEN_UNSIGNED);
        s3 = streq(req->service, "s3");

        r = format_amz_date(now_usec, amz_date);
        if (r < 0)
                return r;
        memcpy(date, amz_date, 8);
        date[8] = '\0';

        if (req->payload_hash)
                memcpy(payload, req->payload_hash, strlen(req->payload_hash) + 1);
        else {
                r = sha256_hex(req->body, req->body_len, payload);
                if (r < 0)
                        return r;
        }

        r = sigv4_canonical_uri(req->path, s3, &uri);
        if (r < 0)
                return r;
        r = sigv4_canonical_query(req->query, &query);
        if (r < 0)
                return r;

        /* The request's headers and the ones we sign in, sorted by name;
         * duplicates keep their order. */
        entries = mem_new(Entry, req->n_headers + 3);
        if (!entries)
                return -ENOMEM;
        for (size_t i = 0; i < req->n_headers; i++) {
                const SigV4Header *h = &req->headers[i];

                if (!header_name_valid(h->name) || !h->value || !header_value_valid(h->value) ||
                    header_reserved(h->name)) {
                        r = -EINVAL;
                        goto finish;
                }
                r = entry_set(&entries[n_entries++], h->name, h->value, i);
                if (r < 0)
                        goto finish;
                if (streq(entries[n_entries - 1].name, "host"))
                        n_hosts += isempty(entries[n_entries - 1].value) ? 2 : 1;
        }
        /* One Host with a value: the signature is bound to it. */
        if (n_hosts != 1) {
                r = -EINVAL;
                goto finish;
        }
        r = entry_set(&entries[n_entries++], "x-amz-date", amz_date, SIZE_MAX);
        if (r >= 0 && sign_token)
                r = entry_set(&entries[n_entries++], "x-amz-security-token", token, SIZE_MAX);
        if (r >= 0 && (req->flags & SIGV4_CONTENT_SHA256))
                r = entry_set(&entries[n_entries++], "x-amz-content-sha256", payload, SIZE_MAX);
        if (r < 0)
                goto finish;
        qsort(entries, n_entries, sizeof(Entry), entry_cmp);

        for (size_t i = 0; i < n_entries; i++) {
                if (i > 0 && streq(entries[i].name, entries[i - 1].name))
                        continue;
                if (i > 0)
                        buf_putc(&b, ';');
                buf_puts(&b, entries[i].name);
        }
        signed_headers = buf_steal(&b);
        if (!signed_headers) {
                r = -ENOMEM;
                goto finish;
        }

        /* method, URI, query, headers (each line ending in "\n"), a blank
         * line, signed headers, payload hash. */
        buf_puts(&b, req->method);
        buf_putc(&b, '\n');
        buf_puts(&b, uri);
        buf_putc(&b, '\n');
        buf_puts(&b, query);
        buf_putc(&b, '\n');
        for (size_t i = 0; i < n_entries; i++) {
                bool again = i > 0 && streq(entries[i].name, entries[i - 1].name);

                if (again)
                        buf_putc(&b, ',');
                else {
                        if (i > 0)
                                buf_putc(&b, '\n');
                        buf_puts(&b, entries[i].name);
                        buf_putc(&b, ':');
                }
                buf_puts(&b, entries[i].value);
        }
        buf_puts(&b, "\n\n");
        buf_puts(&b, signed_headers);
        buf_putc(&b, '\n');
        buf_puts(&b, payload);

        s = mem_new(SigV4Signature, 1);
        if (!s) {
                buf_done(&b);
                r = -ENOMEM;
                goto finish;
        }
        s->canonical_request = buf_steal(&b);
        if (!s->canonical_request) {
                r = -ENOMEM;
                goto finish;
        }

        r = sha256_hex(s->canonical_request, strlen(s->canonical_request), creq_hash);
        if (r < 0)
                goto finish;
        s->string_to_sign = mem_printf(SIGV4_ALGORITHM "\n%s\n%s/%s/%s/aws4_request\n%s", amz_date, date, req->region,
                                       req->service, creq_hash);
        if (!s->string_to_sign) {
                r = -ENOMEM;
                goto finish;
        }
        r = sign_string(creds->secret_access_key, date, req->region, req->service, s->string_to_sign, signature);
        if (r < 0)
                goto finish;
        s->authorization = mem_printf(SIGV4_ALGORITHM " Credential=%s/%s/%s/%s/aws4_request, SignedHeaders=%s, "
                                                      "Signature=%s",
                                      creds->access_key_id, date, req->region, req->service, signed_headers, signature);
        explicit_bzero(signature, sizeof signature);
        if (!s->authorization) {
                r = -ENOMEM;
                goto finish;
        }

        s->headers = mem_new(char *, 5);
        s->all_headers = mem_new(char *, req->n_headers + 5);
        if (!s->headers || !s->all_headers) {
                r = -ENOMEM;
                goto finish;
        }
        r = strv_add(s->headers, &n, mem_printf("X-Amz-Date: %s", amz_date));
        if (r >= 0 && token)
                r = strv_add(s->headers, &n, mem_printf("X-Amz-Security-Token: %s", token));
        if (r >= 0 && (req->flags & SIGV4_CONTENT_SHA256))
                r = strv_add(s->headers, &n, mem_printf("X-Amz-Content-Sha256: %s", payload));
        if (r >= 0)
                r = strv_add(s->headers, &n, mem_printf("Authorization: %s", s->authorization));
        n = 0;
        for (size_t i = 0; r >= 0 && i < req->n_headers; i++)
                r = strv_add(s->all_headers, &n, mem_printf("%s: %s", req->headers[i].name, req->headers[i].value));
        for (size_t i = 0; r >= 0 && s->headers[i]; i++)
                r = strv_add(s->all_headers, &n, mem_strdup(s->headers[i]));
        if (r < 0)
                goto finish;

        *ret = TAKE_PTR(s);
        r = 0;
finish:
        for (size_t i = 0; i < n_entries; i++) {
                free(entries[i].name);
                wipe_free(entries[i].value);
        }
        free(entries);
        return r;
}

char *const *sigv4_signature_headers(const SigV4Signature *s) {
        return s->headers;
}

char *const *sigv4_signature_all_headers(const SigV4Signature *s) {
        return s->all_headers;
}

const char *sigv4_signature_authorization(const SigV4Signature *s) {
        return s->authorization;
}

const char *sigv4_signature_canonical_request(const SigV4Signature *s) {
        return s->canonical_request;
}

const char *sigv4_signature_string_to_sign(const SigV4Signature *s) {
        return s->string_to_sign;
}

char *sigv4_signature_debug_string(const SigV4Signature *s) {
        static const char token[] = "x-amz-security-token:";
        Buf b = {};

        buf_puts(&b, "CanonicalRequest:\n");
        for (const char *line = s->canonical_request;; line++) {
                size_t n = strcspn(line, "\n");

                if (strncmp(line, token, strlen(token)) == 0 && n >= strlen(token)) {
                        buf_puts(&b, token);
                        buf_puts(&b, "<redacted>");
                } else
                        buf_put(&b, line, n);
                line += n;
                if (!*line)
                        break;
                buf_putc(&b, '\n');
        }
        buf_puts(&b, "\nStringToSign:\n");
        buf_puts(&b, s->string_to_sign);
        return buf_steal(&b);
}
