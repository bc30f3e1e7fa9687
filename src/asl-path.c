/* SPDX-License-Identifier: MIT */
/*
 * asl-path.c — the JSONPath side of asl-data.h: the path parser (the
 * Jayway JSONPath subset AWS Step Functions accepts), selection from the
 * state's input or the context object, ResultPath, and payload templates.
 * Also the AslFailure helpers.  Intrinsic calls are in asl-intrinsics.c,
 * Choice rules and timestamps in asl-choice.c.
 *
 * A path is parsed into segments (child, index, wildcard, union, slice,
 * filter, each possibly a ".." descendant scan) and then run over a list
 * of borrowed nodes; only the result is a new reference.
 *
 * Security: paths come from the admin's definition, the values from
 * customers' orders and task results.  Paths are at most ASL_PATH_MAX
 * bytes, filters nest at most ASL_DEPTH_MAX deep, a scan descends at most
 * ASL_SCAN_DEPTH_MAX levels, a selection holds at most ASL_MATCHES_MAX
 * nodes and visits at most ASL_VISITS_MAX.
 */
#include "asl-data.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>

#include "alloc.h"
#include "asl-data-private.h"
#include "normalize.h"

/* ---- failures ------------------------------------------------------------ */

void asl_failure_clear(AslFailure *f) {
        if (!f)
                return;
        free(f->cause);
        f->cause = NULL;
        f->error = NULL;
}

int asl_failure_set(AslFailure *f, const char *error, const char *fmt, ...) {
        va_list ap;
        char *cause;
        int n;

        if (!f)
                return -EINVAL;
        free(f->cause);
        f->cause = NULL;
        f->error = error;

        va_start(ap, fmt);
        n = vsnprintf(NULL, 0, fmt, ap);
        va_end(ap);
        if (n < 0)
                return -EINVAL;
        cause = mem_malloc((size_t) n + 1);
        if (!cause)
                return -EINVAL; /* the error name is what matters */
        va_start(ap, fmt);
        vsnprintf(cause, (size_t) n + 1, fmt, ap);
        va_end(ap);
        f->cause = cause;
        return -EINVAL;
}

/* ---- parsed paths -------------------------------------------------------- */

typedef enum SegType {
        SEG_CHILD,
        SEG_INDEX,
        SEG_WILDCARD,
        SEG_UNION_NAMES,
        SEG_UNION_INDICES,
        SEG_SLICE,
        SEG_FILTER,
} SegType;

typedef struct Filter Filter;

typedef struct Seg {
        SegType type;
        bool descendant; /* reached through ".." */
        char *name; /* SEG_CHILD */
        int64_t index; /* SEG_INDEX */
        char **names; /* SEG_UNION_NAMES */
        int64_t *indices; /* SEG_UNION_INDICES */
        size_t n_items;
        bool has_start, has_end; /* SEG_SLICE */
        int64_t start, end;
        Filter *filter; /* SEG_FILTER */
} Seg;

typedef enum PathRoot {
        ROOT_INPUT, /* $ */
        ROOT_CONTEXT, /* $$ */
        ROOT_CURRENT, /* @, inside a filter */
} PathRoot;

struct AslPath {
        PathRoot root;
        Seg *segs;
        size_t n_segs;
        bool definite;
        char *text; /* as written, for messages; NULL inside a filter */
};

typedef enum FilterOp {
        FOP_OR,
        FOP_AND,
        FOP_NOT,
        FOP_EXISTS,
        FOP_EQ,
        FOP_NE,
        FOP_LT,
        FOP_LE,
        FOP_GT,
        FOP_GE,
} FilterOp;

typedef struct Operand {
        AslPath *path; /* or */
        json_t *literal;
} Operand;

struct Filter {
        FilterOp op;
        Filter *a, *b; /* OR, AND, NOT (a only) */
        Operand left, right; /* EXISTS (left only), comparisons */
};

static Filter *filter_free(Filter *x);

static void seg_done(Seg *s) {
        free(s->name);
        for (size_t i = 0; s->names && i < s->n_items; i++)
                free(s->names[i]);
        free(s->names);
        free(s->indices);
        filter_free(s->filter);
}

AslPath *asl_path_free(AslPath *p) {
        if (!p)
                return NULL;
        for (size_t i = 0; i < p->n_segs; i++)
                seg_done(&p->segs[i]);
        free(p->segs);
        free(p->text);
        free(p);
        return NULL;
}

static void operand_done(Operand *o) {
        asl_path_free(o->path);
        json_decref(o->literal);
}

static Filter *filter_free(Filter *x) {
        if (!x)
                return NULL;
        filter_free(x->a);
        filter_free(x->b);
        operand_done(&x->left);
        operand_done(&x->right);
        free(x);
        return NULL;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(Filter *, filter_free);

const char *asl_path_text(const AslPath *p) {
        return p->text;
}

bool asl_path_uses_context(const AslPath *p) {
        return p->root == ROOT_CONTEXT;
}

static bool path_reads_root(const AslPath *p);

/* True when a filter compares with something under "$" (not "@"). */
static bool filter_reads_root(const Filter *x) {
        return x &&
                (filter_reads_root(x->a) || filter_reads_root(x->b) ||
                 (x->left.path && path_reads_root(x->left.path)) || (x->right.path && path_reads_root(x->right.path)));
}

static bool path_reads_root(const AslPath *p) {
        if (p->root == ROOT_INPUT)
                return true;
        for (size_t i = 0; i < p->n_segs; i++)
                if (filter_reads_root(p->segs[i].filter))
                        return true;
        return false;
}

bool asl_path_reads_only(const AslPath *p, const char *member) {
        if (p->root == ROOT_CONTEXT)
                return true;
        if (p->n_segs == 0 || p->segs[0].type != SEG_CHILD || p->segs[0].descendant || !streq(p->segs[0].name, member))
                return false;
        for (size_t i = 0; i < p->n_segs; i++)
                if (filter_reads_root(p->segs[i].filter))
                        return false;
        return true;
}

/* ---- the parser ---------------------------------------------------------- */

typedef struct Parser {
        const char *s;
        size_t len, pos;
        const char *error; /* static, set once */
        size_t error_pos;
        bool oom;
        unsigned depth;
} Parser;

static int perr(Parser *p, const char *msg) {
        if (!p->error && !p->oom) {
                p->error = msg;
                p->error_pos = p->pos;
        }
        return -EINVAL;
}

static int poom(Parser *p) {
        p->oom = true;
        return -ENOMEM;
}

static char peek(Parser *p) {
        return p->pos < p->len ? p->s[p->pos] : '\0';
}

static char peek_at(Parser *p, size_t k) {
        return p->pos + k < p->len ? p->s[p->pos + k] : '\0';
}

static void skip_ws(Parser *p) {
        while (p->pos < p->len && (p->s[p->pos] == ' ' || p->s[p->pos] == '\t'))
                p->pos++;
}

static bool is_name_char(char c) {
        if ((unsigned char) c >= 0x80)
                return true; /* UTF-8 names */
        if (c <= ' ' || c == 0x7F)
                return false;
        return !strchr(".[]()'\",=!<>&|*?@$\\", c);
}

static int add_seg(Parser *p, AslPath *path, Seg *seg) {
        Seg *n = mem_realloc(path->segs, (path->n_segs + 1) * sizeof(Seg));
        if (!n) {
                seg_done(seg);
                return poom(p);
        }
        path->segs = n;
        path->segs[path->n_segs++] = *seg;
        return 0;
}

/* A quoted name: '…' or "…" with \' \" \\ escapes; *ret is new. */
static int parse_quoted(Parser *p, char **ret) {
        char q = peek(p);
        size_t start, n = 0;
        char *out;

        p->pos++;
        start = p->pos;
        out = mem_malloc(p->len - start + 1);
        if (!out)
                return poom(p);
        while (p->pos < p->len && p->s[p->pos] != q) {
                char c = p->s[p->pos];
                if (c == '\\') {
                        char e = peek_at(p, 1);
                        if (e != '\'' && e != '"' && e != '\\') {
                                free(out);
                                return perr(p, "unknown escape in a quoted name");
                        }
                        c = e;
                        p->pos++;
                }
                out[n++] = c;
                p->pos++;
        }
        if (p->pos >= p->len) {
                free(out);
                return perr(p, "unterminated quoted name");
        }
        p->pos++;
        out[n] = '\0';
        if (!normalize_utf8_valid(out, n)) {
                free(out);
                return perr(p, "a name that is not UTF-8");
        }
        *ret = out;
        return 0;
}

static int parse_int(Parser *p, int64_t *ret) {
        bool neg = false;
        int64_t v = 0;
        size_t digits = 0;

        if (peek(p) == '-') {
                neg = true;
                p->pos++;
        }
        while (peek(p) >= '0' && peek(p) <= '9') {
                if (v > (INT64_MAX - 9) / 10)
                        return perr(p, "index out of range");
                v = v * 10 + (peek(p) - '0');
                p->pos++;
                digits++;
        }
        if (digits == 0)
                return perr(p, "expected a number");
        *ret = neg ? -v : v;
        return 0;
}

static int parse_filter_or(Parser *p, Filter **ret);
static int parse_path_at(Parser *p, PathRoot root, AslPath **ret);

/* A literal in a filter: a number, 'string', "string", true, false, null. */
static int parse_filter_literal(Parser *p, json_t **ret) {
        char c = peek(p);
        json_t *v = NULL;

        if (c == '\'' || c == '"') {
                char *s = NULL;
                int r = parse_quoted(p, &s);
                if (r < 0)
                        return r;
                if (!normalize_utf8_valid(s, strlen(s))) {
                        free(s);
                        return perr(p, "string literal is not UTF-8");
                }
                v = json_string(s);
                free(s);
        } else if (c == '-' || (c >= '0' && c <= '9')) {
                const char *start = p->s + p->pos;
                bool real = false;
                size_t k = 0;
                if (start[k] == '-')
                        k++;
                while (p->pos + k < p->len && strchr("0123456789.eE+-", start[k])) {
                        if (strchr(".eE", start[k]))
                                real = true;
                        k++;
                }
                char buf[64];
                if (k >= sizeof buf)
                        return perr(p, "number literal too long");
                memcpy(buf, start, k);
                buf[k] = '\0';
                char *end;
                errno = 0;
                if (real) {
                        double d = strtod(buf, &end);
                        if (*end || errno || !isfinite(d))
                                return perr(p, "bad number literal");
                        v = json_real(d);
                } else {
                        long long ll = strtoll(buf, &end, 10);
                        if (*end || errno)
                                return perr(p, "bad number literal");
                        v = json_integer(ll);
                }
                p->pos += k;
        } else if (p->len - p->pos >= 4 && !strncmp(p->s + p->pos, "true", 4)) {
                v = json_true();
                p->pos += 4;
        } else if (p->len - p->pos >= 5 && !strncmp(p->s + p->pos, "false", 5)) {
                v = json_false();
                p->pos += 5;
        } else if (p->len - p->pos >= 4 && !strncmp(p->s + p->pos, "null", 4)) {
                v = json_null();
                p->pos += 4;
        } else
                return perr(p, "expected a path or a literal in the filter");
        if (!v)
                return poom(p);
        *ret = v;
        return 0;
}

static int parse_operand(Parser *p, Operand *o) {
        char c = peek(p);

        if (c == '@')
                return parse_path_at(p, ROOT_CURRENT, &o->path);
        if (c == '$') {
                if (peek_at(p, 1) == '$')
                        return perr(p, "context paths are not allowed in filters");
                return parse_path_at(p, ROOT_INPUT, &o->path);
        }
        return parse_filter_literal(p, &o->literal);
}

static int parse_filter_primary(Parser *p, Filter **ret) {
        _cleanup_(filter_freep) Filter *x = NULL;
        int r;

        skip_ws(p);
        if (peek(p) == '!' && peek_at(p, 1) != '=') {
                if (++p->depth > ASL_DEPTH_MAX)
                        return perr(p, "filter nested too deep");
                p->pos++;
                x = mem_new(Filter, 1);
                if (!x)
                        return poom(p);
                x->op = FOP_NOT;
                r = parse_filter_primary(p, &x->a);
                if (r < 0)
                        return r;
                p->depth--;
                *ret = TAKE_PTR(x);
                return 0;
        }
        if (peek(p) == '(') {
                if (++p->depth > ASL_DEPTH_MAX)
                        return perr(p, "filter nested too deep");
                p->pos++;
                r = parse_filter_or(p, ret);
                if (r < 0)
                        return r;
                skip_ws(p);
                if (peek(p) != ')')
                        return perr(p, "expected ')'");
                p->pos++;
                p->depth--;
                return 0;
        }

        x = mem_new(Filter, 1);
        if (!x)
                return poom(p);
        r = parse_operand(p, &x->left);
        if (r < 0)
                return r;
        skip_ws(p);

        static const struct {
                const char *tok;
                FilterOp op;
        } ops[] = {
                { "==", FOP_EQ }, { "!=", FOP_NE }, { "<=", FOP_LE },
                { ">=", FOP_GE }, { "<", FOP_LT },  { ">", FOP_GT },
        };
        for (size_t i = 0; i < ELEMENTSOF(ops); i++) {
                size_t l = strlen(ops[i].tok);
                if (p->len - p->pos >= l && !strncmp(p->s + p->pos, ops[i].tok, l)) {
                        x->op = ops[i].op;
                        p->pos += l;
                        skip_ws(p);
                        r = parse_operand(p, &x->right);
                        if (r < 0)
                                return r;
                        *ret = TAKE_PTR(x);
                        return 0;
                }
        }
        if (peek(p) == '=' || peek(p) == '!')
                return perr(p, "unsupported filter operator (==, !=, <, <=, >, >= are)");
        if (!x->left.path)
                return perr(p, "a literal alone is not a filter");
        x->op = FOP_EXISTS;
        *ret = TAKE_PTR(x);
        return 0;
}

/* level 0: a || b || …, of level 1: a && b && …, of primaries. */
static int parse_filter_binary(Parser *p, unsigned level, Filter **ret) {
        _cleanup_(filter_freep) Filter *left = NULL;
        char tok = level == 0 ? '|' : '&';
        int r;

        r = level == 0 ? parse_filter_binary(p, 1, &left) : parse_filter_primary(p, &left);
        if (r < 0)
                return r;
        for (;;) {
                skip_ws(p);
                if (peek(p) != tok || peek_at(p, 1) != tok)
                        break;
                p->pos += 2;
                Filter *x = mem_new(Filter, 1);
                if (!x)
                        return poom(p);
                x->op = level == 0 ? FOP_OR : FOP_AND;
                x->a = TAKE_PTR(left);
                left = x;
                r = level == 0 ? parse_filter_binary(p, 1, &x->b) : parse_filter_primary(p, &x->b);
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(left);
        return 0;
}

static int parse_filter_or(Parser *p, Filter **ret) {
        return parse_filter_binary(p, 0, ret);
}

/* After '[': a bracket segment up to and including ']'. */
static int parse_bracket(Parser *p, Seg *seg) {
        int r;

        skip_ws(p);
        if (peek(p) == '*') {
                p->pos++;
                seg->type = SEG_WILDCARD;
        } else if (peek(p) == '?') {
                p->pos++;
                skip_ws(p);
                if (peek(p) != '(')
                        return perr(p, "expected '(' after '?'");
                if (++p->depth > ASL_DEPTH_MAX)
                        return perr(p, "filter nested too deep");
                p->pos++;
                seg->type = SEG_FILTER;
                r = parse_filter_or(p, &seg->filter);
                if (r < 0)
                        return r;
                skip_ws(p);
                if (peek(p) != ')')
                        return perr(p, "expected ')' closing the filter");
                p->pos++;
                p->depth--;
        } else if (peek(p) == '\'' || peek(p) == '"') {
                char *name = NULL;
                r = parse_quoted(p, &name);
                if (r < 0)
                        return r;
                seg->type = SEG_CHILD;
                seg->name = name;
                skip_ws(p);
                while (peek(p) == ',') {
                        p->pos++;
                        skip_ws(p);
                        if (peek(p) != '\'' && peek(p) != '"')
                                return perr(p, "a union mixes names and indices");
                        if (seg->type == SEG_CHILD) {
                                seg->names = mem_new(char *, 1);
                                if (!seg->names)
                                        return poom(p);
                                seg->names[0] = TAKE_PTR(seg->name);
                                seg->n_items = 1;
                                seg->type = SEG_UNION_NAMES;
                        }
                        r = parse_quoted(p, &name);
                        if (r < 0)
                                return r;
                        char **n = mem_realloc(seg->names, (seg->n_items + 1) * sizeof(char *));
                        if (!n) {
                                free(name);
                                return poom(p);
                        }
                        seg->names = n;
                        seg->names[seg->n_items++] = name;
                        skip_ws(p);
                }
        } else if (peek(p) == ':' || peek(p) == '-' || (peek(p) >= '0' && peek(p) <= '9')) {
                int64_t v = 0;
                bool have_v = false;
                if (peek(p) != ':') {
                        r = parse_int(p, &v);
                        if (r < 0)
                                return r;
                        have_v = true;
                        skip_ws(p);
                }
                if (peek(p) == ':') {
                        seg->type = SEG_SLICE;
                        seg->has_start = have_v;
                        seg->start = v;
                        p->pos++;
                        skip_ws(p);
                        if (peek(p) == '-' || (peek(p) >= '0' && peek(p) <= '9')) {
                                r = parse_int(p, &seg->end);
                                if (r < 0)
                                        return r;
                                seg->has_end = true;
                                skip_ws(p);
                        }
                        if (peek(p) == ':')
                                return perr(p, "slice steps are not supported");
                } else {
                        seg->type = SEG_INDEX;
                        seg->index = v;
                        while (peek(p) == ',') {
                                p->pos++;
                                skip_ws(p);
                                if (seg->type == SEG_INDEX) {
                                        seg->indices = mem_new(int64_t, 1);
                                        if (!seg->indices)
                                                return poom(p);
                                        seg->indices[0] = seg->index;
                                        seg->n_items = 1;
                                        seg->type = SEG_UNION_INDICES;
                                }
                                if (peek(p) == '\'' || peek(p) == '"')
                                        return perr(p, "a union mixes names and indices");
                                r = parse_int(p, &v);
                                if (r < 0)
                                        return r;
                                int64_t *n = mem_realloc(seg->indices, (seg->n_items + 1) * sizeof(int64_t));
                                if (!n)
                                        return poom(p);
                                seg->indices = n;
                                seg->indices[seg->n_items++] = v;
                                skip_ws(p);
                        }
                }
        } else
                return perr(p, "expected a name, an index, '*' or a filter in brackets");

        skip_ws(p);
        if (peek(p) != ']')
                return perr(p, "expected ']'");
        p->pos++;
        return 0;
}

/* A path from its root character(s) as far as it goes; the caller checks
 * what follows. */
static int parse_path_at(Parser *p, PathRoot root, AslPath **ret) {
        _cleanup_(asl_path_freep) AslPath *path = NULL;
        int r;

        path = mem_new(AslPath, 1);
        if (!path)
                return poom(p);
        path->root = root;
        path->definite = true;
        p->pos += root == ROOT_CONTEXT ? 2 : 1;

        for (;;) {
                Seg seg = {};
                char c = peek(p);

                if (c == '.') {
                        p->pos++;
                        if (peek(p) == '.') {
                                p->pos++;
                                seg.descendant = true;
                                if (peek(p) == '[') {
                                        p->pos++;
                                        r = parse_bracket(p, &seg);
                                        if (r < 0) {
                                                seg_done(&seg);
                                                return r;
                                        }
                                        goto add;
                                }
                        }
                        if (peek(p) == '*') {
                                p->pos++;
                                seg.type = SEG_WILDCARD;
                                goto add;
                        }
                        size_t start = p->pos;
                        while (p->pos < p->len && is_name_char(p->s[p->pos]))
                                p->pos++;
                        if (p->pos == start)
                                return perr(p, "expected a name after '.'");
                        if (!normalize_utf8_valid(p->s + start, p->pos - start))
                                return perr(p, "a name that is not UTF-8");
                        seg.type = SEG_CHILD;
                        seg.name = mem_strndup(p->s + start, p->pos - start);
                        if (!seg.name)
                                return poom(p);
                        if (peek(p) == '(') {
                                seg_done(&seg);
                                return perr(p, "path functions are not supported");
                        }
                } else if (c == '[') {
                        p->pos++;
                        r = parse_bracket(p, &seg);
                        if (r < 0) {
                                seg_done(&seg);
                                return r;
                        }
                } else
                        break;
        add:
                if (seg.descendant || (seg.type != SEG_CHILD && seg.type != SEG_INDEX))
                        path->definite = false;
                r = add_seg(p, path, &seg);
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(path);
        return 0;
}

int asl_path_parse_prefix(const char *s, size_t len, size_t *ret_used, AslPath **ret, char **ret_error) {
        Parser p = { .s = s, .len = len };
        AslPath *path = NULL;
        int r;

        if (len == 0 || s[0] != '$')
                r = perr(&p, "a path starts with '$'");
        else
                r = parse_path_at(&p, len >= 2 && s[1] == '$' ? ROOT_CONTEXT : ROOT_INPUT, &path);
        if (r < 0) {
                if (p.oom)
                        return -ENOMEM;
                if (ret_error) {
                        *ret_error = mem_printf("invalid path '%.*s': %s at offset %zu", (int) MIN(len, 200), s,
                                                p.error, p.error_pos);
                        if (!*ret_error)
                                return -ENOMEM;
                }
                return -EINVAL;
        }
        path->text = mem_strndup(s, p.pos);
        if (!path->text) {
                asl_path_free(path);
                return -ENOMEM;
        }
        *ret_used = p.pos;
        *ret = path;
        return 0;
}

int asl_path_parse(const char *s, AslPath **ret, char **ret_error) {
        _cleanup_(asl_path_freep) AslPath *path = NULL;
        size_t len = strlen(s), used = 0;
        int r;

        if (len > ASL_PATH_MAX) {
                if (ret_error) {
                        *ret_error = mem_printf("path longer than %d bytes", ASL_PATH_MAX);
                        if (!*ret_error)
                                return -ENOMEM;
                }
                return -EINVAL;
        }
        r = asl_path_parse_prefix(s, len, &used, &path, ret_error);
        if (r < 0)
                return r;
        if (used != len) {
                if (ret_error) {
                        *ret_error =
                                mem_printf("invalid path '%.200s': unexpected '%c' at offset %zu", s, s[used], used);
                        if (!*ret_error)
                                return -ENOMEM;
                }
                return -EINVAL;
        }
        *ret = TAKE_PTR(path);
        return 0;
}

static bool path_is_reference(const AslPath *p) {
        for (size_t i = 0; i < p->n_segs; i++)
                if (p->segs[i].descendant || (p->segs[i].type != SEG_CHILD && p->segs[i].type != SEG_INDEX) ||
                    (p->segs[i].type == SEG_INDEX && p->segs[i].index < 0))
                        return false;
        return true;
}

int asl_path_compile(const char *path, bool reference, bool allow_context, AslPath **ret, char **ret_error) {
        _cleanup_(asl_path_freep) AslPath *p = NULL;
        int r;

        if (!path) {
                if (ret_error && !(*ret_error = mem_strdup("a path is missing")))
                        return -ENOMEM;
                return -EINVAL;
        }
        r = asl_path_parse(path, &p, ret_error);
        if (r < 0)
                return r;
        if (p->root == ROOT_CONTEXT && (!allow_context || reference)) {
                if (ret_error && !(*ret_error = mem_printf("'%.200s': a context path ($$) is not allowed here", path)))
                        return -ENOMEM;
                return -EINVAL;
        }
        if (reference && !path_is_reference(p)) {
                if (ret_error &&
                    !(*ret_error = mem_printf("'%.200s' is not a reference path (only names and "
                                              "non-negative indices, no *, .., filters, slices or unions)",
                                              path)))
                        return -ENOMEM;
                return -EINVAL;
        }
        *ret = TAKE_PTR(p);
        return 0;
}

int asl_path_check(const char *path, bool reference, bool allow_context, char **ret_error) {
        _cleanup_(asl_path_freep) AslPath *p = NULL;
        return asl_path_compile(path, reference, allow_context, &p, ret_error);
}

/* ---- evaluation ---------------------------------------------------------- */

typedef struct Nodes {
        json_t **v;
        size_t n, cap;
} Nodes;

static void nodes_done(Nodes *n) {
        free(n->v);
        n->v = NULL;
        n->n = n->cap = 0;
}

typedef struct Eval {
        json_t *root; /* $ */
        AslFailure *f;
        size_t visits; /* values a segment was applied to, for ASL_VISITS_MAX */
} Eval;

static int nodes_add(Eval *e, Nodes *n, json_t *v) {
        if (n->n == n->cap) {
                size_t cap = n->cap ? n->cap * 2 : 8;
                if (n->n >= ASL_MATCHES_MAX)
                        return asl_failure_set(e->f, "States.Runtime", "a path matched more than %d values",
                                               ASL_MATCHES_MAX);
                json_t **nv = mem_realloc(n->v, cap * sizeof(json_t *));
                if (!nv)
                        return -ENOMEM;
                n->v = nv;
                n->cap = cap;
        }
        n->v[n->n++] = v;
        return 0;
}

static int path_run(Eval *e, const AslPath *path, json_t *start, Nodes *out);
static int filter_match(Eval *e, const Filter *x, json_t *cur, bool *ret);

/* Resolve an index as Jayway does: negative counts from the end. */
static bool resolve_index(int64_t i, size_t size, size_t *ret) {
        if (i < 0)
                i += (int64_t) size;
        if (i < 0 || (uint64_t) i >= size)
                return false;
        *ret = (size_t) i;
        return true;
}

/* Apply one segment (not its descendant scan) to one node. */
static int seg_apply(Eval *e, const Seg *s, json_t *node, Nodes *out) {
        size_t idx;
        int r;

        /* Chained ".." and filters multiply: bound the work, not just the
         * matches. */
        if (++e->visits > ASL_VISITS_MAX)
                return asl_failure_set(e->f, "States.Runtime", "a path visited more than %d values", ASL_VISITS_MAX);
        switch (s->type) {
        case SEG_CHILD: {
                json_t *v = json_is_object(node) ? json_object_get(node, s->name) : NULL;
                return v ? nodes_add(e, out, v) : 0;
        }
        case SEG_INDEX:
                if (json_is_array(node) && resolve_index(s->index, json_array_size(node), &idx))
                        return nodes_add(e, out, json_array_get(node, idx));
                return 0;
        case SEG_WILDCARD: {
                const char *k;
                json_t *v;
                size_t i;
                if (json_is_object(node)) {
                        json_object_foreach (node, k, v)
                                if ((r = nodes_add(e, out, v)) < 0)
                                        return r;
                } else if (json_is_array(node)) {
                        json_array_foreach (node, i, v)
                                if ((r = nodes_add(e, out, v)) < 0)
                                        return r;
                }
                return 0;
        }
        case SEG_UNION_NAMES:
                if (!json_is_object(node))
                        return 0;
                for (size_t i = 0; i < s->n_items; i++) {
                        json_t *v = json_object_get(node, s->names[i]);
                        if (v && (r = nodes_add(e, out, v)) < 0)
                                return r;
                }
                return 0;
        case SEG_UNION_INDICES:
                if (!json_is_array(node))
                        return 0;
                for (size_t i = 0; i < s->n_items; i++)
                        if (resolve_index(s->indices[i], json_array_size(node), &idx) &&
                            (r = nodes_add(e, out, json_array_get(node, idx))) < 0)
                                return r;
                return 0;
        case SEG_SLICE: {
                if (!json_is_array(node))
                        return 0;
                int64_t size = (int64_t) json_array_size(node);
                int64_t a = s->has_start ? s->start : 0, b = s->has_end ? s->end : size;
                if (a < 0)
                        a = MAX(a + size, 0);
                if (b < 0)
                        b = MAX(b + size, 0);
                a = MIN(a, size);
                b = MIN(b, size);
                for (int64_t i = a; i < b; i++)
                        if ((r = nodes_add(e, out, json_array_get(node, (size_t) i))) < 0)
                                return r;
                return 0;
        }
        case SEG_FILTER: {
                bool m;
                json_t *v;
                size_t i;
                if (json_is_array(node)) {
                        json_array_foreach (node, i, v) {
                                r = filter_match(e, s->filter, v, &m);
                                if (r < 0)
                                        return r;
                                if (m && (r = nodes_add(e, out, v)) < 0)
                                        return r;
                        }
                } else if (json_is_object(node)) {
                        /* Jayway tests an object against the filter itself. */
                        r = filter_match(e, s->filter, node, &m);
                        if (r < 0)
                                return r;
                        if (m)
                                return nodes_add(e, out, node);
                }
                return 0;
        }
        }
        return 0;
}

/* "..": the segment applied to node and to every value below it, in
 * document order. */
static int seg_scan(Eval *e, const Seg *s, json_t *node, unsigned level, Nodes *out) {
        const char *k;
        json_t *v;
        size_t i;
        int r;

        if (level > ASL_SCAN_DEPTH_MAX)
                return asl_failure_set(e->f, "States.Runtime", "'..' descends more than %d levels", ASL_SCAN_DEPTH_MAX);
        r = seg_apply(e, s, node, out);
        if (r < 0)
                return r;
        if (json_is_object(node)) {
                json_object_foreach (node, k, v)
                        if ((r = seg_scan(e, s, v, level + 1, out)) < 0)
                                return r;
        } else if (json_is_array(node)) {
                json_array_foreach (node, i, v)
                        if ((r = seg_scan(e, s, v, level + 1, out)) < 0)
                                return r;
        }
        return 0;
}

static int path_run(Eval *e, const AslPath *path, json_t *start, Nodes *out) {
        Nodes cur = {}, next = {};
        int r;

        r = nodes_add(e, &cur, start);
        if (r < 0)
                return r;
        for (size_t i = 0; i < path->n_segs; i++) {
                const Seg *s = &path->segs[i];
                for (size_t j = 0; j < cur.n; j++) {
                        r = s->descendant ? seg_scan(e, s, cur.v[j], 0, &next) : seg_apply(e, s, cur.v[j], &next);
                        if (r < 0) {
                                nodes_done(&cur);
                                nodes_done(&next);
                                return r;
                        }
                }
                nodes_done(&cur);
                cur = next;
                next = (Nodes){};
        }
        *out = cur;
        return 0;
}

/* The value of a filter operand: borrowed, NULL when the path matches
 * nothing ("undefined").  An indefinite path gives a new array in *owned. */
static int operand_value(Eval *e, const Operand *o, json_t *cur, json_t **ret, json_t **owned) {
        Nodes n = {};
        int r;

        *owned = NULL;
        if (o->literal) {
                *ret = o->literal;
                return 0;
        }
        r = path_run(e, o->path, o->path->root == ROOT_CURRENT ? cur : e->root, &n);
        if (r < 0)
                return r;
        if (o->path->definite) {
                *ret = n.n > 0 ? n.v[0] : NULL;
        } else {
                json_t *a = json_array();
                if (!a) {
                        nodes_done(&n);
                        return -ENOMEM;
                }
                for (size_t i = 0; i < n.n; i++)
                        if (json_array_append(a, n.v[i]) < 0) {
                                json_decref(a);
                                nodes_done(&n);
                                return -ENOMEM;
                        }
                *ret = *owned = a;
        }
        nodes_done(&n);
        return 0;
}

int asl_number_cmp(json_t *a, json_t *b) {
        if (json_is_integer(a) && json_is_integer(b)) {
                json_int_t x = json_integer_value(a), y = json_integer_value(b);
                return x < y ? -1 : x > y;
        }
        double x = json_number_value(a), y = json_number_value(b);
        return x < y ? -1 : x > y;
}

/* Jayway's comparisons: numbers by value, strings by code unit, anything
 * else only for (in)equality; different types are unequal. */
static bool compare(FilterOp op, json_t *a, json_t *b) {
        int c;

        if (!a || !b)
                return op == FOP_NE;
        if (json_is_number(a) && json_is_number(b)) {
                c = asl_number_cmp(a, b);
        } else if (json_is_string(a) && json_is_string(b)) {
                c = strcmp(json_string_value(a), json_string_value(b));
        } else {
                bool eq = json_equal(a, b);
                return op == FOP_EQ ? eq : op == FOP_NE ? !eq : false;
        }
        switch (op) {
        case FOP_EQ:
                return c == 0;
        case FOP_NE:
                return c != 0;
        case FOP_LT:
                return c < 0;
        case FOP_LE:
                return c <= 0;
        case FOP_GT:
                return c > 0;
        case FOP_GE:
                return c >= 0;
        default:
                return false;
        }
}

static int filter_match(Eval *e, const Filter *x, json_t *cur, bool *ret) {
        json_t *a, *b, *oa = NULL, *ob = NULL;
        bool m1, m2;
        int r;

        /* No depth check here: the parser bounded the nesting, and a chain of
         * && or || is as long as the path allows (ASL_PATH_MAX). */
        switch (x->op) {
        case FOP_OR:
        case FOP_AND:
                r = filter_match(e, x->a, cur, &m1);
                if (r < 0)
                        break;
                if ((x->op == FOP_OR && m1) || (x->op == FOP_AND && !m1)) {
                        *ret = m1;
                        break;
                }
                r = filter_match(e, x->b, cur, &m2);
                if (r >= 0)
                        *ret = m2;
                break;
        case FOP_NOT:
                r = filter_match(e, x->a, cur, &m1);
                if (r >= 0)
                        *ret = !m1;
                break;
        case FOP_EXISTS:
                r = operand_value(e, &x->left, cur, &a, &oa);
                if (r >= 0)
                        *ret = oa ? json_array_size(oa) > 0 : a != NULL;
                break;
        default:
                r = operand_value(e, &x->left, cur, &a, &oa);
                if (r < 0)
                        break;
                r = operand_value(e, &x->right, cur, &b, &ob);
                if (r >= 0)
                        *ret = compare(x->op, a, b);
                break;
        }
        json_decref(oa);
        json_decref(ob);
        return r < 0 ? r : 0;
}

/* A definite path from start: one walk down, no list of nodes.  What
 * seg_apply() would find for SEG_CHILD and SEG_INDEX, or NULL. */
static json_t *definite_walk(const AslPath *path, json_t *node) {
        for (size_t i = 0; node && i < path->n_segs; i++) {
                const Seg *s = &path->segs[i];
                size_t idx;

                if (s->type == SEG_CHILD)
                        node = json_is_object(node) ? json_object_get(node, s->name) : NULL;
                else if (json_is_array(node) && resolve_index(s->index, json_array_size(node), &idx))
                        node = json_array_get(node, idx);
                else
                        node = NULL;
        }
        return node;
}

int asl_path_eval(const AslPath *path, json_t *input, json_t *context, json_t **ret, AslFailure *f) {
        Eval e = { .root = input, .f = f };
        json_t *start = path->root == ROOT_CONTEXT ? context : input;
        Nodes n = {};
        json_t *v;
        int r;

        if (!start) {
                if (path->definite)
                        return asl_failure_set(f, "States.Runtime", "Invalid path '%.200s': there is no %s", path->text,
                                               path->root == ROOT_CONTEXT ? "context object" : "input");
                start = json_null();
        }
        if (path->definite) {
                /* Most paths are names and indices: no node lists. */
                v = definite_walk(path, start);
                if (!v)
                        return asl_failure_set(f, "States.Runtime", "Invalid path '%.200s': No results for path",
                                               path->text);
                *ret = json_incref(v);
                return 0;
        }
        r = path_run(&e, path, start, &n);
        if (r < 0)
                return r;
        v = json_array();
        for (size_t i = 0; v && i < n.n; i++)
                if (json_array_append(v, n.v[i]) < 0) {
                        json_decref(v);
                        v = NULL;
                }
        nodes_done(&n);
        if (!v)
                return -ENOMEM;
        *ret = v;
        return 0;
}

int asl_path_select(const char *path, json_t *input, json_t *context, json_t **ret, AslFailure *f) {
        _cleanup_(asl_path_freep) AslPath *p = NULL;
        _cleanup_free_ char *err = NULL;
        int r;

        r = asl_path_parse(path, &p, &err);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return asl_failure_set(f, "States.Runtime", "%s", err);
        return asl_path_eval(p, input, context, ret, f);
}

/* ---- ResultPath ---------------------------------------------------------- */

/* An object or array of its own in place of *slot's value in parent (a
 * shallow copy, so that setting in it leaves the original alone); other
 * values are left as they are.  The copy's address in *ret. */
static int own_container(json_t *parent, const Seg *s, json_t *v, json_t **ret) {
        json_t *c;

        if (!json_is_object(v) && !json_is_array(v)) {
                *ret = v;
                return 0;
        }
        c = json_copy(v);
        if (!c)
                return -ENOMEM;
        if ((s->type == SEG_CHILD ? json_object_set_new(parent, s->name, c)
                                  : json_array_set_new(parent, (size_t) s->index, c)) < 0)
                return -ENOMEM;
        *ret = c;
        return 0;
}

int asl_path_store(const AslPath *p, json_t *input, json_t *value, json_t **ret, AslFailure *f) {
        _cleanup_(json_decrefp) json_t *doc = NULL;
        json_t *cur;
        int r;

        if (!p) {
                *ret = input ? json_incref(input) : json_null();
                return 0;
        }
        if (p->root != ROOT_INPUT || !path_is_reference(p))
                return asl_failure_set(f, "States.ResultPathMatchFailure", "'%.200s' is not a reference path", p->text);
        if (p->n_segs == 0) {
                *ret = value ? json_incref(value) : json_null();
                return 0;
        }
        /* Copy only the containers on the way down; the rest is shared. */
        doc = input ? json_copy(input) : json_null();
        if (!doc)
                return -ENOMEM;

        cur = doc;
        for (size_t i = 0; i < p->n_segs; i++) {
                const Seg *s = &p->segs[i];
                bool last = i + 1 == p->n_segs;
                json_t *next;

                if (s->type == SEG_CHILD) {
                        if (!json_is_object(cur))
                                return asl_failure_set(f, "States.ResultPathMatchFailure",
                                                       "Unable to apply ResultPath '%.200s': '%.100s' is set in a "
                                                       "value that is not an object",
                                                       p->text, s->name);
                        if (last) {
                                if (json_object_set(cur, s->name, value ?: json_null()) < 0)
                                        return -ENOMEM;
                                break;
                        }
                        next = json_object_get(cur, s->name);
                        if (!next) {
                                next = json_object();
                                if (!next || json_object_set_new(cur, s->name, next) < 0)
                                        return -ENOMEM;
                        } else if ((r = own_container(cur, s, next, &next)) < 0)
                                return r;
                } else {
                        if (!json_is_array(cur) || (size_t) s->index >= json_array_size(cur))
                                return asl_failure_set(f, "States.ResultPathMatchFailure",
                                                       "Unable to apply ResultPath '%.200s': index %" PRId64
                                                       " is not in an array",
                                                       p->text, s->index);
                        if (last) {
                                if (json_array_set(cur, (size_t) s->index, value ?: json_null()) < 0)
                                        return -ENOMEM;
                                break;
                        }
                        r = own_container(cur, s, json_array_get(cur, (size_t) s->index), &next);
                        if (r < 0)
                                return r;
                }
                cur = next;
        }
        *ret = TAKE_PTR(doc);
        return 0;
}

int asl_path_apply_result(const char *reference_path, json_t *input, json_t *value, json_t **ret, AslFailure *f) {
        _cleanup_(asl_path_freep) AslPath *p = NULL;
        _cleanup_(json_decrefp) json_t *shared = NULL;
        _cleanup_free_ char *err = NULL;
        json_t *doc;
        int r;

        if (reference_path) {
                r = asl_path_parse(reference_path, &p, &err);
                if (r == -ENOMEM)
                        return r;
                if (r < 0)
                        return asl_failure_set(f, "States.ResultPathMatchFailure", "%s", err);
        }
        r = asl_path_store(p, input, value, &shared, f);
        if (r < 0)
                return r;
        /* A document of its own, that the caller may change. */
        doc = json_deep_copy(shared);
        if (!doc)
                return -ENOMEM;
        *ret = doc;
        return 0;
}

/* ---- expressions: a path or an intrinsic call ---------------------------- */

struct AslExpr {
        AslPath *path; /* or */
        AslCall *call;
};

int asl_expr_compile(const char *expr, AslExpr **ret, char **ret_error) {
        _cleanup_(asl_expr_freep) AslExpr *x = NULL;
        int r;

        x = mem_new(AslExpr, 1);
        if (!x)
                return -ENOMEM;
        if (asl_intrinsic_is_call(expr))
                r = asl_call_parse(expr, &x->call, ret_error);
        else
                r = asl_path_compile(expr, false, true, &x->path, ret_error);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(x);
        return 0;
}

AslExpr *asl_expr_free(AslExpr *x) {
        if (!x)
                return NULL;
        asl_path_free(x->path);
        asl_call_free(x->call);
        free(x);
        return NULL;
}

bool asl_expr_uses_context(const AslExpr *x) {
        return x->path ? asl_path_uses_context(x->path) : asl_call_uses_context(x->call);
}

bool asl_expr_reads_only(const AslExpr *x, const char *member) {
        return x->path ? asl_path_reads_only(x->path, member) : asl_call_reads_only(x->call, member);
}

int asl_expr_eval(const AslExpr *x, json_t *input, json_t *context, json_t **ret, AslFailure *f) {
        if (x->path)
                return asl_path_eval(x->path, input, context, ret, f);
        return asl_call_eval(x->call, input, context, ret, f);
}

/* ---- payload templates --------------------------------------------------- */

typedef enum TemplateKind {
        TEMPLATE_LITERAL, /* no "key.$" anywhere below: the value itself, shared */
        TEMPLATE_EXPR, /* the value of a "key.$" */
        TEMPLATE_OBJECT,
        TEMPLATE_ARRAY,
} TemplateKind;

struct AslTemplate {
        TemplateKind kind;
        json_t *literal; /* TEMPLATE_LITERAL */
        AslExpr *expr; /* TEMPLATE_EXPR */
        char **keys; /* TEMPLATE_OBJECT: the output's keys ("key.$" without ".$") */
        AslTemplate **items; /* TEMPLATE_OBJECT, TEMPLATE_ARRAY */
        size_t n_items;
        bool uses_context;
};

AslTemplate *asl_template_free(AslTemplate *t) {
        if (!t)
                return NULL;
        json_decref(t->literal);
        asl_expr_free(t->expr);
        for (size_t i = 0; i < t->n_items; i++) {
                if (t->keys)
                        free(t->keys[i]);
                asl_template_free(t->items[i]);
        }
        free(t->keys);
        free(t->items);
        free(t);
        return NULL;
}

bool asl_template_uses_context(const AslTemplate *t) {
        return t->uses_context;
}

bool asl_template_reads_only(const AslTemplate *t, const char *member) {
        if (t->kind == TEMPLATE_EXPR)
                return asl_expr_reads_only(t->expr, member);
        for (size_t i = 0; i < t->n_items; i++)
                if (!asl_template_reads_only(t->items[i], member))
                        return false;
        return true;
}

static bool key_is_dynamic(const char *k, size_t *ret_len) {
        size_t l = strlen(k);
        *ret_len = l;
        return l >= 2 && k[l - 2] == '.' && k[l - 1] == '$';
}

/* True when some object in t, at any depth, has a "key.$". */
static bool template_is_dynamic(json_t *t, unsigned depth) {
        const char *k;
        json_t *v;
        size_t i, l;

        if (depth > ASL_DEPTH_MAX)
                return true; /* let the compilation say why */
        if (json_is_array(t)) {
                json_array_foreach (t, i, v)
                        if (template_is_dynamic(v, depth + 1))
                                return true;
        } else if (json_is_object(t))
                json_object_foreach (t, k, v)
                        if (key_is_dynamic(k, &l) || template_is_dynamic(v, depth + 1))
                                return true;
        return false;
}

/* The "key.$" entry k: v of template t. */
static int template_compile_expr(json_t *t, const char *k, size_t l, json_t *v, AslTemplate *out, char **ret_error) {
        _cleanup_free_ char *plain = NULL, *err = NULL;
        int r;

        if (l == 2) {
                if (ret_error && !(*ret_error = mem_strdup("template key '.$' has no name")))
                        return -ENOMEM;
                return -EINVAL;
        }
        if (!json_is_string(v)) {
                if (ret_error &&
                    !(*ret_error = mem_printf("template key '%.200s' must have a string value "
                                              "(a path or an intrinsic function call)",
                                              k)))
                        return -ENOMEM;
                return -EINVAL;
        }
        plain = mem_strndup(k, l - 2);
        if (!plain)
                return -ENOMEM;
        if (json_object_get(t, plain)) {
                if (ret_error && !(*ret_error = mem_printf("template has both '%.200s' and '%.200s'", plain, k)))
                        return -ENOMEM;
                return -EINVAL;
        }
        out->kind = TEMPLATE_EXPR;
        r = asl_expr_compile(json_string_value(v), &out->expr, &err);
        if (r == -EINVAL && err && ret_error) {
                *ret_error = mem_printf("template key '%.200s': %s", k, err);
                if (!*ret_error)
                        return -ENOMEM;
        }
        if (r < 0)
                return r;
        out->uses_context = asl_expr_uses_context(out->expr);
        return 0;
}

static int template_compile_at(json_t *t, unsigned depth, AslTemplate **ret, char **ret_error) {
        _cleanup_(asl_template_freep) AslTemplate *out = NULL;
        const char *k;
        json_t *v;
        size_t i, l, n;
        int r;

        if (depth > ASL_DEPTH_MAX) {
                if (ret_error && !(*ret_error = mem_printf("template nested deeper than %d", ASL_DEPTH_MAX)))
                        return -ENOMEM;
                return -EINVAL;
        }
        out = mem_new(AslTemplate, 1);
        if (!out)
                return -ENOMEM;
        if (!template_is_dynamic(t, depth)) {
                out->kind = TEMPLATE_LITERAL;
                out->literal = json_incref(t);
                *ret = TAKE_PTR(out);
                return 0;
        }
        n = json_is_array(t) ? json_array_size(t) : json_object_size(t);
        out->kind = json_is_array(t) ? TEMPLATE_ARRAY : TEMPLATE_OBJECT;
        out->items = mem_new(AslTemplate *, n);
        if (!out->items)
                return -ENOMEM;
        /* n_items counts the slots filled so far; asl_template_free() takes a
         * NULL item (one that failed). */
        if (out->kind == TEMPLATE_ARRAY) {
                json_array_foreach (t, i, v) {
                        r = template_compile_at(v, depth + 1, &out->items[out->n_items++], ret_error);
                        if (r < 0)
                                return r;
                        out->uses_context |= out->items[i]->uses_context;
                }
                *ret = TAKE_PTR(out);
                return 0;
        }
        out->keys = mem_new(char *, n);
        if (!out->keys)
                return -ENOMEM;
        json_object_foreach (t, k, v) {
                bool dyn = key_is_dynamic(k, &l);

                i = out->n_items;
                out->keys[i] = mem_strndup(k, dyn ? l - 2 : l);
                if (!out->keys[i])
                        return -ENOMEM;
                out->n_items++;
                if (dyn) {
                        out->items[i] = mem_new(AslTemplate, 1);
                        if (!out->items[i])
                                return -ENOMEM;
                        r = template_compile_expr(t, k, l, v, out->items[i], ret_error);
                } else
                        r = template_compile_at(v, depth + 1, &out->items[i], ret_error);
                if (r < 0)
                        return r;
                out->uses_context |= out->items[i]->uses_context;
        }
        *ret = TAKE_PTR(out);
        return 0;
}

int asl_template_compile(json_t *tmpl, AslTemplate **ret, char **ret_error) {
        return template_compile_at(tmpl, 0, ret, ret_error);
}

int asl_template_check(json_t *tmpl, char **ret_error) {
        _cleanup_(asl_template_freep) AslTemplate *t = NULL;
        return asl_template_compile(tmpl, &t, ret_error);
}

int asl_template_apply(const AslTemplate *t, json_t *input, json_t *context, json_t **ret, AslFailure *f) {
        json_t *out, *e;
        int r;

        switch (t->kind) {
        case TEMPLATE_LITERAL:
                *ret = json_incref(t->literal);
                return 0;
        case TEMPLATE_EXPR:
                return asl_expr_eval(t->expr, input, context, ret, f);
        default:
                break;
        }
        out = t->kind == TEMPLATE_ARRAY ? json_array() : json_object();
        if (!out)
                return -ENOMEM;
        for (size_t i = 0; i < t->n_items; i++) {
                r = asl_template_apply(t->items[i], input, context, &e, f);
                if (r < 0) {
                        json_decref(out);
                        return r;
                }
                if ((t->kind == TEMPLATE_ARRAY ? json_array_append_new(out, e)
                                               : json_object_set_new_nocheck(out, t->keys[i], e)) < 0) {
                        json_decref(out);
                        return -ENOMEM;
                }
        }
        *ret = out;
        return 0;
}

int asl_template_eval(json_t *tmpl, json_t *input, json_t *context, json_t **ret, AslFailure *f) {
        _cleanup_(asl_template_freep) AslTemplate *t = NULL;
        _cleanup_(json_decrefp) json_t *shared = NULL;
        _cleanup_free_ char *err = NULL;
        json_t *out;
        int r;

        /* Templates are checked when a definition is loaded; one that was
         * not fails here as a definition the interpreter would refuse. */
        r = asl_template_compile(tmpl, &t, &err);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return asl_failure_set(f, "States.Runtime", "%s", strempty(err));
        r = asl_template_apply(t, input, context, &shared, f);
        if (r < 0)
                return r;
        /* A payload of its own, as this entry point promises. */
        out = json_deep_copy(shared);
        if (!out)
                return -ENOMEM;
        *ret = out;
        return 0;
}
