/* SPDX-License-Identifier: MIT */
/*
 * asl-choice.c — Choice rules (every comparison operator of the Amazon
 * States Language, its Path variant, the Is* tests, StringMatches,
 * And/Or/Not) and RFC 3339 timestamps, behind asl-data.h.
 *
 * The operator table below is the one list of operators: the check and
 * the evaluation both read it.
 *
 * Security: rules come from the admin's definition, the values compared
 * from customers' orders and task results.  Rules nest at most
 * ASL_DEPTH_MAX deep; StringMatches runs in O(pattern × value) time with
 * no recursion.
 */
#include "asl-data.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "asl-data-private.h"

/* ---- timestamps ---------------------------------------------------------- */

static bool digits(const char *s, size_t n, int *ret) {
        int v = 0;
        for (size_t i = 0; i < n; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return false;
                v = v * 10 + (s[i] - '0');
        }
        *ret = v;
        return true;
}

static bool is_leap(int64_t y) {
        return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian). */
static int64_t days_from_civil(int64_t y, int m, int d) {
        y -= m <= 2;
        int64_t era = (y >= 0 ? y : y - 399) / 400;
        int64_t yoe = y - era * 400;
        int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
        int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *ret_y, int *ret_m, int *ret_d) {
        z += 719468;
        int64_t era = (z >= 0 ? z : z - 146096) / 146097;
        int64_t doe = z - era * 146097;
        int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
        int64_t y = yoe + era * 400;
        int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        int64_t mp = (5 * doy + 2) / 153;
        int d = (int) (doy - (153 * mp + 2) / 5 + 1);
        int m = (int) (mp < 10 ? mp + 3 : mp - 9);
        *ret_y = y + (m <= 2);
        *ret_m = m;
        *ret_d = d;
}

int asl_timestamp_parse(const char *s, int64_t *ret_usec) {
        static const int mdays[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
        int y, mo, d, h, mi, sec, usec = 0, off = 0;
        size_t len, i;

        if (!s)
                return -EINVAL;
        len = strlen(s);
        /* AWS: an upper-case T between date and time, an upper-case Z. */
        if (len < 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':')
                return -EINVAL;
        if (!digits(s, 4, &y) || !digits(s + 5, 2, &mo) || !digits(s + 8, 2, &d) || !digits(s + 11, 2, &h) ||
            !digits(s + 14, 2, &mi) || !digits(s + 17, 2, &sec))
                return -EINVAL;
        if (mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || sec > 59)
                return -EINVAL;
        if (d > mdays[mo - 1] + (mo == 2 && is_leap(y)))
                return -EINVAL;
        i = 19;
        if (s[i] == '.') {
                size_t n = 0;
                i++;
                while (s[i] >= '0' && s[i] <= '9') {
                        if (n < 6)
                                usec = usec * 10 + (s[i] - '0');
                        n++;
                        i++;
                }
                if (n == 0 || n > 9)
                        return -EINVAL;
                for (; n < 6; n++)
                        usec *= 10;
        }
        if (s[i] == 'Z') {
                i++;
        } else if (s[i] == '+' || s[i] == '-') {
                int oh, om;
                if (len - i != 6 || s[i + 3] != ':' || !digits(s + i + 1, 2, &oh) || !digits(s + i + 4, 2, &om) ||
                    oh > 23 || om > 59)
                        return -EINVAL;
                off = (oh * 60 + om) * (s[i] == '-' ? -1 : 1);
                i += 6;
        } else
                return -EINVAL;
        if (i != len)
                return -EINVAL;

        int64_t days = days_from_civil(y, mo, d);
        int64_t secs = days * 86400 + h * 3600 + mi * 60 + sec - (int64_t) off * 60;
        *ret_usec = secs * (int64_t) USEC_PER_SEC + usec;
        return 0;
}

void asl_timestamp_format(int64_t usec, char *buf, size_t size) {
        int64_t secs = usec / (int64_t) USEC_PER_SEC, rem = usec % (int64_t) USEC_PER_SEC;
        if (rem < 0) {
                rem += USEC_PER_SEC;
                secs--;
        }
        int64_t days = secs / 86400, sod = secs % 86400;
        if (sod < 0) {
                sod += 86400;
                days--;
        }
        int64_t y;
        int m, d;
        civil_from_days(days, &y, &m, &d);
        snprintf(buf, size, "%04" PRId64 "-%02d-%02dT%02d:%02d:%02d.%03dZ", y, m, d, (int) (sod / 3600),
                 (int) (sod / 60 % 60), (int) (sod % 60), (int) (rem / 1000));
}

/* ---- operators ------------------------------------------------------------ */

typedef enum OpKind {
        KIND_STRING,
        KIND_NUMERIC,
        KIND_BOOLEAN,
        KIND_TIMESTAMP,
        KIND_MATCHES,
        KIND_TYPE, /* IsNull … IsTimestamp: a boolean operand */
} OpKind;

typedef enum Cmp {
        CMP_EQ,
        CMP_LT,
        CMP_GT,
        CMP_LE,
        CMP_GE,
        CMP_IS_NULL,
        CMP_IS_PRESENT,
        CMP_IS_NUMERIC,
        CMP_IS_STRING,
        CMP_IS_BOOLEAN,
        CMP_IS_TIMESTAMP,
} Cmp;

typedef struct Op {
        const char *name;
        OpKind kind;
        Cmp cmp;
        bool path; /* the operand is a path to the value compared with */
} Op;

#define COMPARISONS(prefix, kind)                                                                                      \
        { prefix "Equals", kind, CMP_EQ, false }, { prefix "EqualsPath", kind, CMP_EQ, true },                         \
                { prefix "LessThan", kind, CMP_LT, false }, { prefix "LessThanPath", kind, CMP_LT, true },             \
                { prefix "GreaterThan", kind, CMP_GT, false }, { prefix "GreaterThanPath", kind, CMP_GT, true },       \
                { prefix "LessThanEquals", kind, CMP_LE, false }, { prefix "LessThanEqualsPath", kind, CMP_LE, true }, \
                { prefix "GreaterThanEquals", kind, CMP_GE, false }, {                                                 \
                prefix "GreaterThanEqualsPath", kind, CMP_GE, true                                                     \
        }

static const Op ops[] = {
        COMPARISONS("String", KIND_STRING),
        COMPARISONS("Numeric", KIND_NUMERIC),
        COMPARISONS("Timestamp", KIND_TIMESTAMP),
        { "BooleanEquals", KIND_BOOLEAN, CMP_EQ, false },
        { "BooleanEqualsPath", KIND_BOOLEAN, CMP_EQ, true },
        { "StringMatches", KIND_MATCHES, CMP_EQ, false },
        { "IsNull", KIND_TYPE, CMP_IS_NULL, false },
        { "IsPresent", KIND_TYPE, CMP_IS_PRESENT, false },
        { "IsNumeric", KIND_TYPE, CMP_IS_NUMERIC, false },
        { "IsString", KIND_TYPE, CMP_IS_STRING, false },
        { "IsBoolean", KIND_TYPE, CMP_IS_BOOLEAN, false },
        { "IsTimestamp", KIND_TYPE, CMP_IS_TIMESTAMP, false },
};

static const Op *op_find(const char *name) {
        for (size_t i = 0; i < ELEMENTSOF(ops); i++)
                if (streq(ops[i].name, name))
                        return &ops[i];
        return NULL;
}

/* ---- the check ----------------------------------------------------------- */

static int fail_check(char **ret_error, const char *fmt, ...) _printf_(2, 3);
static int fail_check(char **ret_error, const char *fmt, ...) {
        va_list ap;
        int n;

        if (!ret_error)
                return -EINVAL;
        va_start(ap, fmt);
        n = vsnprintf(NULL, 0, fmt, ap);
        va_end(ap);
        char *s = n >= 0 ? mem_malloc((size_t) n + 1) : NULL;
        if (!s)
                return -ENOMEM;
        va_start(ap, fmt);
        vsnprintf(s, (size_t) n + 1, fmt, ap);
        va_end(ap);
        *ret_error = s;
        return -EINVAL;
}

typedef enum RuleKind {
        RULE_COMPARE, /* Variable and one operator */
        RULE_NOT,
        RULE_AND,
        RULE_OR,
} RuleKind;

struct AslRule {
        RuleKind kind;
        AslRule **rules; /* RULE_NOT (one), RULE_AND, RULE_OR */
        size_t n_rules;
        const Op *op; /* RULE_COMPARE */
        AslPath *variable;
        AslPath *operand_path; /* op->path */
        json_t *operand; /* otherwise: the literal */
        bool uses_context;
};

AslRule *asl_rule_free(AslRule *r) {
        if (!r)
                return NULL;
        for (size_t i = 0; i < r->n_rules; i++)
                asl_rule_free(r->rules[i]);
        free(r->rules);
        asl_path_free(r->variable);
        asl_path_free(r->operand_path);
        json_decref(r->operand);
        free(r);
        return NULL;
}

bool asl_rule_uses_context(const AslRule *r) {
        return r->uses_context;
}

static int operand_compile(const Op *op, json_t *v, AslRule *out, char **ret_error) {
        if (op->path) {
                if (!json_is_string(v))
                        return fail_check(ret_error, "Choice rule: %s needs a path string", op->name);
                _cleanup_free_ char *err = NULL;
                int r = asl_path_compile(json_string_value(v), false, true, &out->operand_path, &err);
                if (r == -EINVAL)
                        r = fail_check(ret_error, "Choice rule: %s: %s", op->name, strempty(err));
                return r;
        }
        switch (op->kind) {
        case KIND_STRING:
        case KIND_MATCHES:
                if (!json_is_string(v))
                        return fail_check(ret_error, "Choice rule: %s needs a string", op->name);
                break;
        case KIND_NUMERIC:
                if (!json_is_number(v))
                        return fail_check(ret_error, "Choice rule: %s needs a number", op->name);
                break;
        case KIND_BOOLEAN:
        case KIND_TYPE:
                if (!json_is_boolean(v))
                        return fail_check(ret_error, "Choice rule: %s needs true or false", op->name);
                break;
        case KIND_TIMESTAMP: {
                int64_t t;
                if (!json_is_string(v) || asl_timestamp_parse(json_string_value(v), &t) < 0)
                        return fail_check(ret_error, "Choice rule: %s needs an RFC 3339 timestamp", op->name);
                break;
        }
        }
        out->operand = json_incref(v);
        return 0;
}

static int rule_compile(json_t *rule, bool top_level, unsigned depth, AslRule **ret, char **ret_error) {
        _cleanup_(asl_rule_freep) AslRule *out = NULL;
        const char *k, *combinator = NULL;
        const Op *op = NULL;
        json_t *v, *variable = NULL;
        int r;

        if (depth > ASL_DEPTH_MAX)
                return fail_check(ret_error, "Choice rule nested deeper than %d", ASL_DEPTH_MAX);
        if (!json_is_object(rule))
                return fail_check(ret_error, "a Choice rule must be an object");

        json_object_foreach (rule, k, v) {
                if (streq(k, "Next")) {
                        if (!top_level)
                                return fail_check(ret_error, "a nested Choice rule must not have \"Next\"");
                        if (!json_is_string(v) || !json_string_length(v))
                                return fail_check(ret_error, "Choice rule: \"Next\" must be a state name");
                } else if (streq(k, "Comment")) {
                        if (!json_is_string(v))
                                return fail_check(ret_error, "Choice rule: \"Comment\" must be a string");
                } else if (streq(k, "Variable")) {
                        variable = v;
                } else if (streq(k, "And") || streq(k, "Or") || streq(k, "Not")) {
                        if (combinator || op)
                                return fail_check(ret_error, "Choice rule: \"%s\" with another operator", k);
                        combinator = k;
                } else if ((op = op_find(k)) == NULL) {
                        return fail_check(ret_error, "Choice rule: unknown field \"%s\"", k);
                } else if (combinator) {
                        return fail_check(ret_error, "Choice rule: \"%s\" with \"%s\"", k, combinator);
                } else {
                        /* op_find() succeeded; a second one is caught by counting below. */
                }
        }
        if (top_level && !json_object_get(rule, "Next"))
                return fail_check(ret_error, "a Choice rule must have \"Next\"");

        size_t n_ops = 0;
        json_object_foreach (rule, k, v)
                if (op_find(k)) {
                        n_ops++;
                        op = op_find(k);
                }
        if (n_ops > 1)
                return fail_check(ret_error, "Choice rule: more than one comparison operator");

        out = mem_new(AslRule, 1);
        if (!out)
                return -ENOMEM;
        if (combinator) {
                if (variable)
                        return fail_check(ret_error, "Choice rule: \"Variable\" with \"%s\"", combinator);
                json_t *c = json_object_get(rule, combinator);
                bool is_not = streq(combinator, "Not");
                size_t n = is_not ? 1 : json_array_size(c);
                if (!is_not && (!json_is_array(c) || n == 0))
                        return fail_check(ret_error, "Choice rule: \"%s\" must be a non-empty array of rules",
                                          combinator);
                out->kind = is_not ? RULE_NOT : streq(combinator, "And") ? RULE_AND : RULE_OR;
                out->rules = mem_new(AslRule *, n);
                if (!out->rules)
                        return -ENOMEM;
                for (size_t i = 0; i < n; i++) {
                        r = rule_compile(is_not ? c : json_array_get(c, i), false, depth + 1, &out->rules[i],
                                         ret_error);
                        if (r < 0)
                                return r;
                        out->n_rules++;
                        out->uses_context |= out->rules[i]->uses_context;
                }
                *ret = TAKE_PTR(out);
                return 0;
        }
        if (!op)
                return fail_check(ret_error, "Choice rule: no comparison operator, And, Or or Not");
        if (!variable)
                return fail_check(ret_error, "Choice rule: %s needs \"Variable\"", op->name);
        if (!json_is_string(variable))
                return fail_check(ret_error, "Choice rule: \"Variable\" must be a path string");
        _cleanup_free_ char *err = NULL;
        r = asl_path_compile(json_string_value(variable), false, true, &out->variable, &err);
        if (r == -EINVAL)
                r = fail_check(ret_error, "Choice rule: \"Variable\": %s", strempty(err));
        if (r < 0)
                return r;
        out->kind = RULE_COMPARE;
        out->op = op;
        r = operand_compile(op, json_object_get(rule, op->name), out, ret_error);
        if (r < 0)
                return r;
        out->uses_context =
                asl_path_uses_context(out->variable) || (out->operand_path && asl_path_uses_context(out->operand_path));
        *ret = TAKE_PTR(out);
        return 0;
}

int asl_rule_compile(json_t *rule, bool top_level, AslRule **ret, char **ret_error) {
        return rule_compile(rule, top_level, 0, ret, ret_error);
}

int asl_choice_check(json_t *rule, bool top_level, char **ret_error) {
        _cleanup_(asl_rule_freep) AslRule *r = NULL;
        return asl_rule_compile(rule, top_level, &r, ret_error);
}

/* ---- evaluation ---------------------------------------------------------- */

/* StringMatches: '*' any run of characters, "\*" a star, "\\" a backslash.
 * The classic two-pointer wildcard match: backtrack only to the last star. */
static bool wildcard_match(const char *pat, const char *s) {
        const char *star_p = NULL, *star_s = NULL;

        for (;;) {
                if (*pat == '*') {
                        star_p = ++pat;
                        star_s = s;
                        continue;
                }
                if (!*s) {
                        if (!*pat)
                                return true;
                        goto backtrack;
                }
                if (*pat) {
                        const char *lit = pat;
                        size_t step = 1;
                        if (*pat == '\\' && (pat[1] == '*' || pat[1] == '\\')) {
                                lit = pat + 1;
                                step = 2;
                        }
                        if (*lit == *s) {
                                pat += step;
                                s++;
                                continue;
                        }
                }
        backtrack:
                if (!star_p || !*star_s)
                        return false;
                pat = star_p;
                s = ++star_s;
        }
}

static int cmp_result(Cmp cmp, int c) {
        switch (cmp) {
        case CMP_EQ:
                return c == 0;
        case CMP_LT:
                return c < 0;
        case CMP_GT:
                return c > 0;
        case CMP_LE:
                return c <= 0;
        case CMP_GE:
                return c >= 0;
        default:
                return false;
        }
}

static bool compare_op(const Op *op, json_t *a, json_t *b) {
        int c;

        switch (op->kind) {
        case KIND_STRING:
                if (!json_is_string(a) || !json_is_string(b))
                        return false;
                c = strcmp(json_string_value(a), json_string_value(b));
                return cmp_result(op->cmp, c);
        case KIND_NUMERIC:
                if (!json_is_number(a) || !json_is_number(b))
                        return false;
                return cmp_result(op->cmp, asl_number_cmp(a, b));
        case KIND_BOOLEAN:
                return json_is_boolean(a) && json_is_boolean(b) && json_is_true(a) == json_is_true(b);
        case KIND_TIMESTAMP: {
                int64_t x, y;
                if (!json_is_string(a) || !json_is_string(b) || asl_timestamp_parse(json_string_value(a), &x) < 0 ||
                    asl_timestamp_parse(json_string_value(b), &y) < 0)
                        return false;
                return cmp_result(op->cmp, x < y ? -1 : x > y);
        }
        case KIND_MATCHES:
                return json_is_string(a) && json_is_string(b) &&
                        wildcard_match(json_string_value(b), json_string_value(a));
        case KIND_TYPE:
                break;
        }
        return false;
}

static int rule_eval(const AslRule *rule, json_t *input, json_t *context, bool *ret, AslFailure *f) {
        json_t *value = NULL, *operand = rule->operand;
        const Op *op = rule->op;
        AslFailure sel = {};
        bool m = false;
        int r;

        /* No depth check: the compilation bounded the nesting. */
        switch (rule->kind) {
        case RULE_NOT:
                r = rule_eval(rule->rules[0], input, context, &m, f);
                if (r < 0)
                        return r;
                *ret = !m;
                return 0;
        case RULE_AND:
        case RULE_OR:
                for (size_t i = 0; i < rule->n_rules; i++) {
                        r = rule_eval(rule->rules[i], input, context, &m, f);
                        if (r < 0)
                                return r;
                        if (m != (rule->kind == RULE_AND)) {
                                *ret = m;
                                return 0;
                        }
                }
                *ret = rule->kind == RULE_AND;
                return 0;
        case RULE_COMPARE:
                break;
        }

        r = asl_path_eval(rule->variable, input, context, &value, &sel);
        if (r == -ENOMEM) {
                asl_failure_clear(&sel);
                return r;
        }
        bool present = r >= 0;
        asl_failure_clear(&sel);
        if (op->cmp == CMP_IS_PRESENT) {
                json_decref(value);
                *ret = present == json_is_true(operand);
                return 0;
        }
        if (!present)
                return asl_failure_set(f, "States.Runtime",
                                       "Invalid path '%.200s': The choice state's condition path references an "
                                       "invalid value.",
                                       asl_path_text(rule->variable));

        if (op->kind == KIND_TYPE) {
                int64_t t;
                switch (op->cmp) {
                case CMP_IS_NULL:
                        m = json_is_null(value);
                        break;
                case CMP_IS_NUMERIC:
                        m = json_is_number(value);
                        break;
                case CMP_IS_STRING:
                        m = json_is_string(value);
                        break;
                case CMP_IS_BOOLEAN:
                        m = json_is_boolean(value);
                        break;
                case CMP_IS_TIMESTAMP:
                        m = json_is_string(value) && asl_timestamp_parse(json_string_value(value), &t) >= 0;
                        break;
                default:
                        break;
                }
                m = m == json_is_true(operand);
        } else if (op->path) {
                json_t *other = NULL;
                r = asl_path_eval(rule->operand_path, input, context, &other, f);
                if (r < 0) {
                        json_decref(value);
                        return r;
                }
                m = compare_op(op, value, other);
                json_decref(other);
        } else
                m = compare_op(op, value, operand);
        json_decref(value);
        *ret = m;
        return 0;
}

int asl_rule_eval(const AslRule *rule, json_t *input, json_t *context, bool *ret_match, AslFailure *f) {
        bool m = false;
        int r = rule_eval(rule, input, context, &m, f);
        if (r < 0)
                return r;
        *ret_match = m;
        return 0;
}

int asl_choice_eval(json_t *rule, json_t *input, json_t *context, bool *ret_match, AslFailure *f) {
        _cleanup_(asl_rule_freep) AslRule *r = NULL;
        _cleanup_free_ char *err = NULL;
        int k;

        /* Rules are checked when a definition is loaded; one that was not
         * fails here as a definition the interpreter would refuse. */
        k = asl_rule_compile(rule, json_object_get(rule, "Next") != NULL, &r, &err);
        if (k == -ENOMEM)
                return k;
        if (k < 0)
                return asl_failure_set(f, "States.Runtime", "%s", strempty(err));
        return asl_rule_eval(r, input, context, ret_match, f);
}
