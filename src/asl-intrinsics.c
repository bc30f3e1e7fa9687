/* SPDX-License-Identifier: MIT */
/*
 * asl-intrinsics.c — the intrinsic functions of the Amazon States
 * Language (States.Format … States.UUID) behind asl-data.h: a small
 * parser of calls into a tree (literals, paths, nested calls), one table
 * of functions with their argument types, and the functions themselves.
 *
 * The check and the evaluation parse with the same code; the check also
 * tests the types of literal arguments, so that a definition calling
 * States.ArrayLength('x') is refused when it is loaded.
 *
 * Security: calls come from the admin's definition, their arguments from
 * customers' orders and task results.  A call is at most ASL_PATH_MAX
 * bytes and nests at most INTRINSIC_DEPTH_MAX calls (AWS's limit); every
 * string made is at most ASL_OUTPUT_MAX bytes, every array made at most
 * ARRAY_MAKE_MAX items; inputs to encodings and hashes are at most
 * TEXT_INPUT_MAX characters, as on AWS.
 */
#include "asl-data.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "alloc.h"
#include "asl-data-private.h"
#include "base64.h"
#include "normalize.h"

#define INTRINSIC_DEPTH_MAX 10 /* nested calls in one field, as AWS */
#define ARRAY_MAKE_MAX 1000 /* items States.ArrayRange makes, as AWS */
#define UNIQUE_INPUT_MAX 10000 /* items States.ArrayUnique compares pairwise */
#define TEXT_INPUT_MAX 10000 /* characters hashed or Base64-coded, as AWS */

static const char *const FAIL = "States.IntrinsicFailure";

typedef enum ArgKind {
        ARG_LITERAL,
        ARG_PATH,
        ARG_CALL,
} ArgKind;

typedef struct Arg {
        ArgKind kind;
        json_t *literal;
        char *raw; /* a string literal as written, escapes kept (States.Format) */
        AslPath *path;
        AslCall *call;
} Arg;

typedef struct Func Func;

struct AslCall {
        const Func *func;
        Arg *args;
        size_t n_args;
};

typedef struct Ctx {
        json_t *input, *context;
        AslFailure *f;
} Ctx;

/* Argument types: 's' string, 'i' number (rounded to an integer), 'I'
 * integer, 'a' array, 'o' object, 'b' boolean, '*' anything.  The last
 * letter repeats when max_args is SIZE_MAX. */
struct Func {
        const char *name;
        size_t min_args, max_args;
        const char *types;
        int (*eval)(Ctx *c, const AslCall *call, json_t **argv, json_t **ret);
};

static void arg_done(Arg *a) {
        json_decref(a->literal);
        free(a->raw);
        asl_path_free(a->path);
        asl_call_free(a->call);
}

AslCall *asl_call_free(AslCall *c) {
        if (!c)
                return NULL;
        for (size_t i = 0; i < c->n_args; i++)
                arg_done(&c->args[i]);
        free(c->args);
        free(c);
        return NULL;
}

/* ---- helpers --------------------------------------------------------------- */

/* A number as an integer: AWS rounds a non-integer to the nearest one,
 * halves up, as Java's Math.round() does. */
static bool integral(json_t *v, int64_t *ret) {
        if (json_is_integer(v)) {
                *ret = json_integer_value(v);
                return true;
        }
        if (json_is_real(v)) {
                double d = floor(json_real_value(v) + 0.5);
                if (fabs(d) < 9e15) {
                        *ret = (int64_t) d;
                        return true;
                }
        }
        return false;
}

static bool int32_arg(json_t *v, int64_t *ret) {
        return integral(v, ret) && *ret >= INT32_MIN && *ret <= INT32_MAX;
}

static bool type_ok(char t, json_t *v) {
        int64_t i;

        switch (t) {
        case 's':
                return json_is_string(v);
        case 'i':
                return integral(v, &i);
        case 'I':
                return json_is_integer(v) || (json_is_real(v) && json_real_value(v) == floor(json_real_value(v)));
        case 'a':
                return json_is_array(v);
        case 'o':
                return json_is_object(v);
        case 'b':
                return json_is_boolean(v);
        default:
                return true;
        }
}

static const char *type_name(char t) {
        switch (t) {
        case 's':
                return "a string";
        case 'i':
                return "a number";
        case 'I':
                return "an integer";
        case 'a':
                return "an array";
        case 'o':
                return "an object";
        case 'b':
                return "a boolean";
        default:
                return "a value";
        }
}

static char arg_type(const Func *fn, size_t i) {
        size_t n = strlen(fn->types);
        if (n == 0)
                return '*';
        return fn->types[MIN(i, n - 1)];
}

/* Characters (code points) of a UTF-8 string, as AWS counts its limits. */
static size_t utf8_chars(json_t *v) {
        const unsigned char *p = (const unsigned char *) json_string_value(v);
        size_t n = 0, len = json_string_length(v);

        for (size_t i = 0; i < len; i++)
                n += (p[i] & 0xC0) != 0x80;
        return n;
}

static int new_string(Ctx *c, const char *name, const char *s, size_t len, json_t **ret) {
        if (len > ASL_OUTPUT_MAX)
                return asl_failure_set(c->f, FAIL, "%s: the result is longer than %d bytes", name, ASL_OUTPUT_MAX);
        json_t *v = json_stringn(s, len);
        if (!v)
                return -ENOMEM;
        *ret = v;
        return 0;
}

/* A growing string for States.Format. */
typedef struct Buf {
        char *s;
        size_t n, cap;
} Buf;

static int buf_add(Buf *b, const char *s, size_t n) {
        if (b->n + n + 1 > b->cap) {
                size_t cap = MAX(b->cap * 2, b->n + n + 64);
                char *ns = mem_realloc(b->s, cap);
                if (!ns)
                        return -ENOMEM;
                b->s = ns;
                b->cap = cap;
        }
        memcpy(b->s + b->n, s, n);
        b->n += n;
        b->s[b->n] = '\0';
        return 0;
}

/* A number as AWS prints it: integers without a point, other values as
 * short as they read back exactly, with a point. */
static void number_text(json_t *v, char *buf, size_t size) {
        if (json_is_integer(v)) {
                snprintf(buf, size, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
                return;
        }
        double d = json_real_value(v);
        for (int prec = 15; prec <= 17; prec++) {
                snprintf(buf, size, "%.*g", prec, d);
                if (strtod(buf, NULL) == d)
                        break;
        }
        /* A real keeps its point (3.0), as Java's Double prints it. */
        if (!strpbrk(buf, ".eEni") && strlen(buf) + 3 <= size)
                memcpy(buf + strlen(buf), ".0", 3);
}

/* ---- the functions --------------------------------------------------------- */

/* One States.Format argument as AWS prints it: a string as it is, other
 * scalars as JSON, arrays and objects as Java prints its lists and maps:
 * [a, b] and {k=v, k2=v2}.  -E2BIG past ASL_OUTPUT_MAX. */
static int format_value(Buf *out, json_t *v) {
        char num[64];
        const char *k;
        json_t *e;
        size_t i;
        int r;

        if (out->n > ASL_OUTPUT_MAX)
                return -E2BIG;
        if (json_is_string(v))
                return buf_add(out, json_string_value(v), json_string_length(v));
        if (json_is_number(v)) {
                number_text(v, num, sizeof num);
                return buf_add(out, num, strlen(num));
        }
        if (json_is_boolean(v))
                return json_is_true(v) ? buf_add(out, "true", 4) : buf_add(out, "false", 5);
        if (json_is_array(v)) {
                if ((r = buf_add(out, "[", 1)) < 0)
                        return r;
                json_array_foreach (v, i, e)
                        if ((i > 0 && (r = buf_add(out, ", ", 2)) < 0) || (r = format_value(out, e)) < 0)
                                return r;
                return buf_add(out, "]", 1);
        }
        if (json_is_object(v)) {
                bool first = true;
                if ((r = buf_add(out, "{", 1)) < 0)
                        return r;
                json_object_foreach (v, k, e) {
                        if ((!first && (r = buf_add(out, ", ", 2)) < 0) || (r = buf_add(out, k, strlen(k))) < 0 ||
                            (r = buf_add(out, "=", 1)) < 0 || (r = format_value(out, e)) < 0)
                                return r;
                        first = false;
                }
                return buf_add(out, "}", 1);
        }
        return buf_add(out, "null", 4);
}

/* How many "{}" a States.Format template has, or -EINVAL for a lone brace. */
static int format_walk(const char *t, json_t **argv, size_t n_args, Buf *out) {
        size_t k = 0;
        int r;

        for (const char *p = t; *p; p++) {
                if (*p == '\\' && (p[1] == '{' || p[1] == '}' || p[1] == '\\' || p[1] == '\'')) {
                        p++;
                        if (out && (r = buf_add(out, p, 1)) < 0)
                                return r;
                } else if (*p == '{' && p[1] == '}') {
                        if (out) {
                                if (k >= n_args)
                                        return -EINVAL;
                                r = format_value(out, argv[k]);
                                if (r < 0)
                                        return r;
                        }
                        k++;
                        p++;
                } else if (*p == '{' || *p == '}') {
                        return -EINVAL;
                } else if (out && (r = buf_add(out, p, 1)) < 0)
                        return r;
        }
        return (int) MIN(k, (size_t) INT32_MAX);
}

static int fn_format(Ctx *c, const AslCall *call, json_t **argv, json_t **ret) {
        const char *t = call->args[0].raw ?: json_string_value(argv[0]);
        size_t n = call->n_args - 1;
        Buf b = {};
        int r;

        r = format_walk(t, NULL, 0, NULL);
        if (r < 0)
                return asl_failure_set(c->f, FAIL, "States.Format: a '{' or '}' that is not '{}' must be escaped");
        if ((size_t) r != n)
                return asl_failure_set(c->f, FAIL, "States.Format: the template has %d '{}' for %zu argument(s)", r, n);
        r = buf_add(&b, "", 0);
        if (r >= 0)
                r = format_walk(t, argv + 1, n, &b);
        if (r == -E2BIG) {
                free(b.s);
                return asl_failure_set(c->f, FAIL, "States.Format: the result is longer than %d bytes", ASL_OUTPUT_MAX);
        }
        if (r < 0) {
                free(b.s);
                return -ENOMEM;
        }
        r = new_string(c, "States.Format", b.s, b.n, ret);
        free(b.s);
        return r;
}

static int fn_string_to_json(Ctx *c, const AslCall *call _unused_, json_t **argv, json_t **ret) {
        json_error_t err;
        unsigned long before = alloc_failures();
        json_t *v = json_loadb(json_string_value(argv[0]), json_string_length(argv[0]), JSON_DECODE_ANY, &err);

        if (!v) {
                if (alloc_failures() != before)
                        return -ENOMEM;
                return asl_failure_set(c->f, FAIL, "States.StringToJson: not JSON: %s", err.text);
        }
        *ret = v;
        return 0;
}

static int fn_json_to_string(Ctx *c, const AslCall *call _unused_, json_t **argv, json_t **ret) {
        char *s = NULL;
        int r;

        /* Numbers as short as they read back exactly (0.1, not jansson's
         * default 0.10000000000000001), as AWS prints them. */
        for (int prec = 15; prec <= 17 && !s; prec++) {
                unsigned long before = alloc_failures();
                s = mem_json_dumps(argv[0], JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(prec));
                if (!s)
                        return -ENOMEM;
                if (prec == 17)
                        break;
                json_t *back = json_loads(s, JSON_DECODE_ANY, NULL);
                if (!back) {
                        free(s);
                        if (alloc_failures() != before)
                                return -ENOMEM;
                        return asl_failure_set(c->f, FAIL, "States.JsonToString: cannot print the value");
                }
                if (!json_equal(back, argv[0])) {
                        free(s);
                        s = NULL;
                }
                json_decref(back);
        }
        r = new_string(c, "States.JsonToString", s, strlen(s), ret);
        free(s);
        return r;
}

static int fn_array(Ctx *c _unused_, const AslCall *call, json_t **argv, json_t **ret) {
        json_t *a = json_array();

        if (!a)
                return -ENOMEM;
        for (size_t i = 0; i < call->n_args; i++)
                if (json_array_append(a, argv[i]) < 0) {
                        json_decref(a);
                        return -ENOMEM;
                }
        *ret = a;
        return 0;
}

static int fn_array_partition(Ctx *c, const AslCall *call _unused_, json_t **argv, json_t **ret) {
        int64_t size;
        json_t *out, *chunk = NULL, *v;
        size_t i;

        if (!integral(argv[1], &size) || size <= 0)
                return asl_failure_set(c->f, FAIL, "States.ArrayPartition: the chunk size must be a positive integer");
        out = json_array();
        if (!out)
                return -ENOMEM;
        json_array_foreach (argv[0], i, v) {
                if (!chunk) {
                        chunk = json_array();
                        if (!chunk || json_array_append_new(out, chunk) < 0)
                                goto oom;
                }
                if (json_array_append(chunk, v) < 0)
                        goto oom;
                if ((int64_t) json_array_size(chunk) == size)
                        chunk = NULL;
        }
        *ret = out;
        return 0;
oom:
        json_decref(out);
        return -ENOMEM;
}

static int fn_array_contains(Ctx *c _unused_, const AslCall *call _unused_, json_t **argv, json_t **ret) {
        json_t *v;
        size_t i;
        bool found = false;

        json_array_foreach (argv[0], i, v)
                if (json_equal(v, argv[1])) {
                        found = true;
                        break;
                }
        *ret = json_boolean(found);
        return 0;
}

static int fn_array_range(Ctx *c, const AslCall *call _unused_, json_t **argv, json_t **ret) {
        int64_t start, end, step, n;
        json_t *a;

        if (!int32_arg(argv[0], &start) || !int32_arg(argv[1], &end) || !int32_arg(argv[2], &step))
                return asl_failure_set(c->f, FAIL, "States.ArrayRange: start, end and step must be 32-bit integers");
        if (step == 0)
                return asl_failure_set(c->f, FAIL, "States.ArrayRange: the step must not be 0");
        n = (end - start) / step + 1;
        if (n < 0)
                n = 0;
        if (n > ARRAY_MAKE_MAX)
                return asl_failure_set(c->f, FAIL, "States.ArrayRange: more than %d items", ARRAY_MAKE_MAX);
        a = json_array();
        if (!a)
                return -ENOMEM;
        for (int64_t k = 0; k < n; k++)
                if (json_array_append_new(a, json_integer(start + k * step)) < 0) {
                        json_decref(a);
                        return -ENOMEM;
                }
        *ret = a;
        return 0;
}

static int fn_array_get_item(Ctx *c, const AslCall *call _unused_, json_t **argv, json_t **ret) {
        int64_t i;

        if (!integral(argv[1], &i) || i < 0 || (uint64_t) i >= json_array_size(argv[0]))
                return asl_failure_set(c->f, FAIL, "States.ArrayGetItem: index out of bounds for an array of %zu",
                                       json_array_size(argv[0]));
        *ret = json_incref(json_array_get(argv[0], (size_t) i));
        return 0;
}

static int fn_array_length(Ctx *c _unused_, const AslCall *call _unused_, json_t **argv, json_t **ret) {
        json_t *v = json_integer((json_int_t) json_array_size(argv[0]));
        if (!v)
                return -ENOMEM;
        *ret = v;
        return 0;
}

static int fn_array_unique(Ctx *c, const AslCall *call _unused_, json_t **argv, json_t **ret) {
        json_t *out, *v;
        size_t i;

        if (json_array_size(argv[0]) > UNIQUE_INPUT_MAX)
                return asl_failure_set(c->f, FAIL, "States.ArrayUnique: more than %d items", UNIQUE_INPUT_MAX);
        out = json_array();
        if (!out)
                return -ENOMEM;
        json_array_foreach (argv[0], i, v) {
                bool seen = false;
                for (size_t j = 0; j < json_array_size(out) && !seen; j++)
                        seen = json_equal(json_array_get(out, j), v);
                if (!seen && json_array_append(out, v) < 0) {
                        json_decref(out);
                        return -ENOMEM;
                }
        }
        *ret = out;
        return 0;
}

static int fn_base64_encode(Ctx *c, const AslCall *call _unused_, json_t **argv, json_t **ret) {
        size_t len = json_string_length(argv[0]);
        char *s;
        int r;

        if (utf8_chars(argv[0]) > TEXT_INPUT_MAX)
                return asl_failure_set(c->f, FAIL, "States.Base64Encode: input longer than %d characters",
                                       TEXT_INPUT_MAX);
        s = base64_encode(json_string_value(argv[0]), len);
        if (!s)
                return -ENOMEM;
        r = new_string(c, "States.Base64Encode", s, strlen(s), ret);
        free(s);
        return r;
}

static int fn_base64_decode(Ctx *c, const AslCall *call _unused_, json_t **argv, json_t **ret) {
        size_t len = json_string_length(argv[0]), n = 0;
        uint8_t *d = NULL;
        int r;

        if (len > TEXT_INPUT_MAX)
                return asl_failure_set(c->f, FAIL, "States.Base64Decode: input longer than %d characters",
                                       TEXT_INPUT_MAX);
        r = base64_decode(json_string_value(argv[0]), len, &d, &n);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return asl_failure_set(c->f, FAIL, "States.Base64Decode: not Base64");
        if (memchr(d, '\0', n) || !normalize_utf8_valid((const char *) d, n)) {
                free(d);
                return asl_failure_set(c->f, FAIL, "States.Base64Decode: the decoded data is not UTF-8 text");
        }
        r = new_string(c, "States.Base64Decode", (const char *) d, n, ret);
        free(d);
        return r;
}

static int fn_hash(Ctx *c, const AslCall *call _unused_, json_t **argv, json_t **ret) {
        static const struct {
                const char *name;
                const EVP_MD *(*md)(void);
        } algos[] = {
                { "MD5", EVP_md5 },        { "SHA-1", EVP_sha1 },     { "SHA-256", EVP_sha256 },
                { "SHA-384", EVP_sha384 }, { "SHA-512", EVP_sha512 },
        };
        const char *name = json_string_value(argv[1]);
        const EVP_MD *md = NULL;
        unsigned char digest[EVP_MAX_MD_SIZE];
        unsigned int n = 0;
        char hex[2 * EVP_MAX_MD_SIZE + 1];

        for (size_t i = 0; i < ELEMENTSOF(algos); i++)
                if (streq(algos[i].name, name))
                        md = algos[i].md();
        if (!md)
                return asl_failure_set(c->f, FAIL,
                                       "States.Hash: unknown algorithm '%.40s' (MD5, SHA-1, SHA-256, SHA-384, SHA-512)",
                                       name);
        if (utf8_chars(argv[0]) > TEXT_INPUT_MAX)
                return asl_failure_set(c->f, FAIL, "States.Hash: input longer than %d characters", TEXT_INPUT_MAX);
        if (EVP_Digest(json_string_value(argv[0]), json_string_length(argv[0]), digest, &n, md, NULL) != 1)
                return -ENOMEM;
        for (unsigned i = 0; i < n; i++)
                snprintf(hex + 2 * i, 3, "%02x", digest[i]);
        return new_string(c, "States.Hash", hex, 2 * n, ret);
}

static int fn_json_merge(Ctx *c, const AslCall *call _unused_, json_t **argv, json_t **ret) {
        json_t *out;

        if (json_is_true(argv[2]))
                return asl_failure_set(c->f, FAIL, "States.JsonMerge: deep merge (true) is not supported, as on AWS");
        out = json_copy(argv[0]);
        if (!out)
                return -ENOMEM;
        if (json_object_update(out, argv[1]) < 0) {
                json_decref(out);
                return -ENOMEM;
        }
        *ret = out;
        return 0;
}

static uint64_t splitmix64(uint64_t *s) {
        uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
        return z ^ (z >> 31);
}

static int fn_math_random(Ctx *c, const AslCall *call, json_t **argv, json_t **ret) {
        int64_t start, end, seed;
        uint64_t state;
        json_t *v;

        if (!int32_arg(argv[0], &start) || !int32_arg(argv[1], &end))
                return asl_failure_set(c->f, FAIL, "States.MathRandom: start and end must be 32-bit integers");
        if (end <= start)
                return asl_failure_set(c->f, FAIL, "States.MathRandom: end must be greater than start");
        if (call->n_args == 3) {
                if (!int32_arg(argv[2], &seed))
                        return asl_failure_set(c->f, FAIL, "States.MathRandom: the seed must be a 32-bit integer");
                state = (uint64_t) seed;
        } else if (getrandom(&state, sizeof state, 0) != (ssize_t) sizeof state)
                return asl_failure_set(c->f, FAIL, "States.MathRandom: no random numbers: %s", strerror(errno));
        /* The end is exclusive; the modulo bias over at most 2^32 values of a
         * 64-bit draw is below 2^-32. */
        v = json_integer(start + (int64_t) (splitmix64(&state) % (uint64_t) (end - start)));
        if (!v)
                return -ENOMEM;
        *ret = v;
        return 0;
}

static int fn_math_add(Ctx *c, const AslCall *call _unused_, json_t **argv, json_t **ret) {
        int64_t a, b;
        json_t *v;

        if (!int32_arg(argv[0], &a) || !int32_arg(argv[1], &b))
                return asl_failure_set(c->f, FAIL, "States.MathAdd: the values must be 32-bit integers");
        v = json_integer(a + b);
        if (!v)
                return -ENOMEM;
        *ret = v;
        return 0;
}

static int fn_string_split(Ctx *c, const AslCall *call _unused_, json_t **argv, json_t **ret) {
        const char *s = json_string_value(argv[0]), *delims = json_string_value(argv[1]);
        size_t len = json_string_length(argv[0]);
        json_t *out;

        if (!*delims)
                return asl_failure_set(c->f, FAIL, "States.StringSplit: the delimiter is empty");
        for (const char *d = delims; *d; d++)
                if ((unsigned char) *d >= 0x80)
                        return asl_failure_set(c->f, FAIL, "States.StringSplit: delimiters must be ASCII characters");
        out = json_array();
        if (!out)
                return -ENOMEM;
        /* Every character of the second argument splits; empty pieces are
         * dropped, as AWS does. */
        for (size_t i = 0; i < len;) {
                size_t j = i;
                while (j < len && !strchr(delims, s[j]))
                        j++;
                if (j > i && json_array_append_new(out, json_stringn(s + i, j - i)) < 0) {
                        json_decref(out);
                        return -ENOMEM;
                }
                i = j + 1;
        }
        *ret = out;
        return 0;
}

static int fn_uuid(Ctx *c, const AslCall *call _unused_, json_t **argv _unused_, json_t **ret) {
        uint8_t u[16];
        char s[37];
        size_t k = 0;

        if (getrandom(u, sizeof u, 0) != (ssize_t) sizeof u)
                return asl_failure_set(c->f, FAIL, "States.UUID: no random numbers: %s", strerror(errno));
        u[6] = (u[6] & 0x0F) | 0x40; /* version 4 */
        u[8] = (u[8] & 0x3F) | 0x80; /* RFC 4122 variant */
        for (size_t i = 0; i < 16; i++) {
                if (i == 4 || i == 6 || i == 8 || i == 10)
                        s[k++] = '-';
                snprintf(s + k, 3, "%02x", u[i]);
                k += 2;
        }
        return new_string(c, "States.UUID", s, k, ret);
}

static const Func funcs[] = {
        { "States.Format", 1, SIZE_MAX, "s*", fn_format },
        { "States.StringToJson", 1, 1, "s", fn_string_to_json },
        { "States.JsonToString", 1, 1, "*", fn_json_to_string },
        { "States.Array", 0, SIZE_MAX, "*", fn_array },
        { "States.ArrayPartition", 2, 2, "ai", fn_array_partition },
        { "States.ArrayContains", 2, 2, "a*", fn_array_contains },
        { "States.ArrayRange", 3, 3, "iii", fn_array_range },
        { "States.ArrayGetItem", 2, 2, "aI", fn_array_get_item },
        { "States.ArrayLength", 1, 1, "a", fn_array_length },
        { "States.ArrayUnique", 1, 1, "a", fn_array_unique },
        { "States.Base64Encode", 1, 1, "s", fn_base64_encode },
        { "States.Base64Decode", 1, 1, "s", fn_base64_decode },
        { "States.Hash", 2, 2, "ss", fn_hash },
        { "States.JsonMerge", 3, 3, "oob", fn_json_merge },
        { "States.MathRandom", 2, 3, "iii", fn_math_random },
        { "States.MathAdd", 2, 2, "ii", fn_math_add },
        { "States.StringSplit", 2, 2, "ss", fn_string_split },
        { "States.UUID", 0, 0, "", fn_uuid },
};

/* ---- the parser ------------------------------------------------------------ */

typedef struct Parser {
        const char *s;
        size_t len, pos;
        char *error; /* owned */
        bool oom;
} Parser;

static int perr(Parser *p, const char *fmt, ...) _printf_(2, 3);
static int perr(Parser *p, const char *fmt, ...) {
        va_list ap;
        char msg[256];

        if (p->error || p->oom)
                return -EINVAL;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        p->error = mem_printf("invalid intrinsic call '%.200s': %s at offset %zu", p->s, msg, p->pos);
        if (!p->error) {
                p->oom = true;
                return -ENOMEM;
        }
        return -EINVAL;
}

static int poom(Parser *p) {
        p->oom = true;
        return -ENOMEM;
}

static void skip_ws(Parser *p) {
        while (p->pos < p->len && (p->s[p->pos] == ' ' || p->s[p->pos] == '\t'))
                p->pos++;
}

static bool starts(Parser *p, const char *w) {
        size_t l = strlen(w);
        return p->len - p->pos >= l && !strncmp(p->s + p->pos, w, l);
}

static int parse_call(Parser *p, unsigned depth, AslCall **ret);

/* 'text' with \' \{ \} \\ escapes: the value unescaped, the raw text kept. */
static int parse_string(Parser *p, Arg *a) {
        size_t start = ++p->pos, n = 0;
        _cleanup_free_ char *val = mem_malloc(p->len - start + 1);

        if (!val)
                return poom(p);
        while (p->pos < p->len && p->s[p->pos] != '\'') {
                char ch = p->s[p->pos];
                if (ch == '\\') {
                        char e = p->pos + 1 < p->len ? p->s[p->pos + 1] : '\0';
                        if (!strchr("'{}\\", e) || !e)
                                return perr(p, "unknown escape '\\%c' in a string", e ?: ' ');
                        ch = e;
                        p->pos++;
                }
                val[n++] = ch;
                p->pos++;
        }
        if (p->pos >= p->len)
                return perr(p, "unterminated string");
        a->raw = mem_strndup(p->s + start, p->pos - start);
        if (!a->raw)
                return poom(p);
        p->pos++;
        if (memchr(val, '\0', n) || !normalize_utf8_valid(val, n))
                return perr(p, "a string that is not UTF-8");
        a->literal = json_stringn(val, n);
        if (!a->literal)
                return poom(p);
        a->kind = ARG_LITERAL;
        return 0;
}

static int parse_number(Parser *p, Arg *a) {
        size_t start = p->pos;
        bool real = false;
        char buf[64], *end;

        if (p->s[p->pos] == '-')
                p->pos++;
        while (p->pos < p->len && strchr("0123456789.eE+-", p->s[p->pos])) {
                if (strchr(".eE", p->s[p->pos]))
                        real = true;
                p->pos++;
        }
        if (p->pos - start >= sizeof buf)
                return perr(p, "number too long");
        memcpy(buf, p->s + start, p->pos - start);
        buf[p->pos - start] = '\0';
        errno = 0;
        if (real) {
                double d = strtod(buf, &end);
                if (*end || errno || !isfinite(d) || end == buf)
                        return perr(p, "bad number '%s'", buf);
                a->literal = json_real(d);
        } else {
                long long v = strtoll(buf, &end, 10);
                if (*end || errno || end == buf)
                        return perr(p, "bad number '%s'", buf);
                a->literal = json_integer(v);
        }
        if (!a->literal)
                return poom(p);
        a->kind = ARG_LITERAL;
        return 0;
}

static int parse_arg(Parser *p, unsigned depth, Arg *a) {
        char ch = p->pos < p->len ? p->s[p->pos] : '\0';
        int r;

        if (ch == '\'')
                return parse_string(p, a);
        if (ch == '-' || (ch >= '0' && ch <= '9'))
                return parse_number(p, a);
        if (ch == '$') {
                _cleanup_free_ char *err = NULL;
                size_t used = 0;
                r = asl_path_parse_prefix(p->s + p->pos, p->len - p->pos, &used, &a->path, &err);
                if (r == -ENOMEM)
                        return poom(p);
                if (r < 0)
                        return perr(p, "%s", err);
                p->pos += used;
                a->kind = ARG_PATH;
                return 0;
        }
        if (starts(p, "States.")) {
                a->kind = ARG_CALL;
                return parse_call(p, depth + 1, &a->call);
        }
        static const char *const words[] = { "true", "false", "null" };
        for (size_t i = 0; i < ELEMENTSOF(words); i++)
                if (starts(p, words[i])) {
                        p->pos += strlen(words[i]);
                        a->literal = i == 0 ? json_true() : i == 1 ? json_false() : json_null();
                        a->kind = ARG_LITERAL;
                        return 0;
                }
        return perr(p, "expected a string, a number, true, false, null, a path or a call");
}

static int parse_call(Parser *p, unsigned depth, AslCall **ret) {
        _cleanup_(asl_call_freep) AslCall *c = NULL;
        size_t start = p->pos;
        int r;

        if (depth > INTRINSIC_DEPTH_MAX)
                return perr(p, "more than %d nested calls", INTRINSIC_DEPTH_MAX);
        while (p->pos < p->len && p->s[p->pos] != '(' && p->s[p->pos] != ' ')
                p->pos++;
        c = mem_new(AslCall, 1);
        if (!c)
                return poom(p);
        for (size_t i = 0; i < ELEMENTSOF(funcs); i++)
                if (strlen(funcs[i].name) == p->pos - start && !strncmp(funcs[i].name, p->s + start, p->pos - start))
                        c->func = &funcs[i];
        if (!c->func) {
                size_t n = p->pos - start;
                p->pos = start;
                return perr(p, "unknown function '%.*s'", (int) MIN(n, 60), p->s + start);
        }
        if (p->pos >= p->len || p->s[p->pos] != '(')
                return perr(p, "expected '('");
        p->pos++;
        skip_ws(p);
        if (p->pos < p->len && p->s[p->pos] == ')') {
                p->pos++;
        } else
                for (;;) {
                        Arg *na = mem_realloc(c->args, (c->n_args + 1) * sizeof(Arg));
                        if (!na)
                                return poom(p);
                        c->args = na;
                        c->args[c->n_args++] = (Arg){};
                        skip_ws(p);
                        r = parse_arg(p, depth, &c->args[c->n_args - 1]);
                        if (r < 0)
                                return r;
                        skip_ws(p);
                        if (p->pos < p->len && p->s[p->pos] == ',') {
                                p->pos++;
                                continue;
                        }
                        if (p->pos < p->len && p->s[p->pos] == ')') {
                                p->pos++;
                                break;
                        }
                        return perr(p, "expected ',' or ')'");
                }

        const Func *fn = c->func;
        if (c->n_args < fn->min_args || c->n_args > fn->max_args) {
                if (fn->min_args == fn->max_args)
                        return perr(p, "%s takes %zu argument(s), not %zu", fn->name, fn->min_args, c->n_args);
                if (fn->max_args == SIZE_MAX)
                        return perr(p, "%s takes at least %zu argument(s)", fn->name, fn->min_args);
                return perr(p, "%s takes %zu to %zu arguments, not %zu", fn->name, fn->min_args, fn->max_args,
                            c->n_args);
        }
        for (size_t i = 0; i < c->n_args; i++)
                if (c->args[i].kind == ARG_LITERAL && !type_ok(arg_type(fn, i), c->args[i].literal))
                        return perr(p, "%s: argument %zu must be %s", fn->name, i + 1, type_name(arg_type(fn, i)));
        if (fn->eval == fn_format && c->args[0].kind == ARG_LITERAL) {
                int k = format_walk(c->args[0].raw, NULL, 0, NULL);
                if (k < 0)
                        return perr(p, "States.Format: a '{' or '}' that is not '{}' must be escaped");
                if ((size_t) k != c->n_args - 1)
                        return perr(p, "States.Format: the template has %d '{}' for %zu argument(s)", k, c->n_args - 1);
        }
        if (fn->eval == fn_json_merge && c->args[2].kind == ARG_LITERAL && json_is_true(c->args[2].literal))
                return perr(p, "States.JsonMerge: deep merge (true) is not supported, as on AWS");
        if (fn->eval == fn_hash && c->args[1].kind == ARG_LITERAL) {
                const char *a = json_string_value(c->args[1].literal);
                if (!streq(a, "MD5") && !streq(a, "SHA-1") && !streq(a, "SHA-256") && !streq(a, "SHA-384") &&
                    !streq(a, "SHA-512"))
                        return perr(p, "States.Hash: unknown algorithm '%.40s'", a);
        }
        *ret = TAKE_PTR(c);
        return 0;
}

int asl_call_parse(const char *expr, AslCall **ret, char **ret_error) {
        Parser p = { .s = expr, .len = strlen(expr) };
        AslCall *c = NULL;
        int r;

        if (p.len > ASL_PATH_MAX)
                r = perr(&p, "longer than %d bytes", ASL_PATH_MAX);
        else if (!asl_intrinsic_is_call(expr))
                r = perr(&p, "not a call States.Name(…)");
        else {
                r = parse_call(&p, 1, &c);
                if (r >= 0 && p.pos != p.len) {
                        c = asl_call_free(c);
                        r = perr(&p, "unexpected text after the call");
                }
        }
        if (p.oom) {
                asl_call_free(c);
                free(p.error);
                return -ENOMEM;
        }
        if (r < 0) {
                if (ret_error)
                        *ret_error = TAKE_PTR(p.error);
                free(p.error);
                return -EINVAL;
        }
        *ret = c;
        return 0;
}

/* ---- entry points ---------------------------------------------------------- */

bool asl_intrinsic_is_call(const char *s) {
        size_t i = 7;

        if (!s || strncmp(s, "States.", 7) != 0)
                return false;
        while ((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9'))
                i++;
        return i > 7 && s[i] == '(';
}

int asl_intrinsic_check(const char *expr, char **ret_error) {
        _cleanup_(asl_call_freep) AslCall *c = NULL;
        return asl_call_parse(expr, &c, ret_error);
}

bool asl_call_uses_context(const AslCall *c) {
        for (size_t i = 0; i < c->n_args; i++)
                if ((c->args[i].path && asl_path_uses_context(c->args[i].path)) ||
                    (c->args[i].call && asl_call_uses_context(c->args[i].call)))
                        return true;
        return false;
}

bool asl_call_reads_only(const AslCall *c, const char *member) {
        for (size_t i = 0; i < c->n_args; i++)
                if ((c->args[i].path && !asl_path_reads_only(c->args[i].path, member)) ||
                    (c->args[i].call && !asl_call_reads_only(c->args[i].call, member)))
                        return false;
        return true;
}

static int call_eval(Ctx *ctx, const AslCall *call, json_t **ret) {
        json_t **argv;
        int r = 0;

        argv = mem_new(json_t *, call->n_args ?: 1);
        if (!argv)
                return -ENOMEM;
        for (size_t i = 0; i < call->n_args && r >= 0; i++) {
                const Arg *a = &call->args[i];
                switch (a->kind) {
                case ARG_LITERAL:
                        argv[i] = json_incref(a->literal);
                        break;
                case ARG_PATH:
                        r = asl_path_eval(a->path, ctx->input, ctx->context, &argv[i], ctx->f);
                        break;
                case ARG_CALL:
                        r = call_eval(ctx, a->call, &argv[i]);
                        break;
                }
                if (r >= 0 && !type_ok(arg_type(call->func, i), argv[i]))
                        r = asl_failure_set(ctx->f, FAIL, "%s: argument %zu must be %s", call->func->name, i + 1,
                                            type_name(arg_type(call->func, i)));
        }
        if (r >= 0)
                r = call->func->eval(ctx, call, argv, ret);
        for (size_t i = 0; i < call->n_args; i++)
                json_decref(argv[i]);
        free(argv);
        return r;
}

int asl_call_eval(const AslCall *c, json_t *input, json_t *context, json_t **ret, AslFailure *f) {
        Ctx ctx = { .input = input, .context = context, .f = f };
        return call_eval(&ctx, c, ret);
}

int asl_intrinsic_eval(const char *expr, json_t *input, json_t *context, json_t **ret, AslFailure *f) {
        _cleanup_(asl_call_freep) AslCall *c = NULL;
        _cleanup_free_ char *err = NULL;
        int r;

        r = asl_call_parse(expr, &c, &err);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return asl_failure_set(f, FAIL, "%s", strempty(err));
        return asl_call_eval(c, input, context, ret, f);
}
