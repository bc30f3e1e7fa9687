/* SPDX-License-Identifier: MIT */
/*
 * asl-data.h — the data side of Amazon States Language with the JSONPath
 * query language: paths ($ the state's input, $$ the context object),
 * reference paths (ResultPath), payload templates ("key.$" entries of
 * Parameters, ResultSelector, ItemSelector), the intrinsic functions
 * (States.Format … States.UUID), Choice rules, and RFC 3339 timestamps.
 * Pure functions over jansson values, no I/O, no logging: the interpreter
 * (asl.c) calls them and turns an AslFailure into the state's error.
 *
 * Two entry points per construct: a *_check() run when a definition is
 * loaded, so that a definition using something unsupported or malformed
 * is refused with a clear message before it runs; and the evaluation
 * itself, which fails at run time only for what depends on the data
 * (a path that matches nothing, a wrong type).  The interpreter uses the
 * compiled forms at the end of this file instead: the same checks made
 * once at load, giving a parsed construct that is then evaluated without
 * reading its text again.
 *
 * Security: definitions come from the admin; the JSON values evaluated
 * come from customers' orders and task results.  Every evaluation is
 * bounded (path length, recursion depth, output size).
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "macro.h"

/* Limits shared by the checks and the evaluation. */
#define ASL_PATH_MAX 4096 /* bytes of one path or intrinsic expression */
#define ASL_DEPTH_MAX 64 /* nesting of templates, rules, intrinsic calls */

/* A run-time failure: the ASL error name ("States.Runtime",
 * "States.IntrinsicFailure", …, static) and a cause for humans (owned,
 * may be NULL). */
typedef struct AslFailure {
        const char *error;
        char *cause;
} AslFailure;

/* Free the cause and clear f; returns NULL.  f may be NULL. */
void asl_failure_clear(AslFailure *f);

/* Set f (when not NULL) to error with a formatted cause; returns -EINVAL
 * (the value every evaluation returns for a run-time failure). */
int asl_failure_set(AslFailure *f, const char *error, const char *fmt, ...) _printf_(3, 4);

/* ---- paths -------------------------------------------------------------- */

/* Check a path at load time.  reference: only a Reference Path is allowed
 * (ResultPath; "$", "$.a.b", "$['a b']", "$.a[3]": no wildcards, filters,
 * slices, unions, "..").  allow_context: "$$…" is allowed.  0, or -EINVAL
 * with a message in *ret_error (caller frees). */
int asl_path_check(const char *path, bool reference, bool allow_context, char **ret_error);

/* Select with path from input ("$…") or context ("$$…").  A definite path
 * gives the one value; an indefinite one ("[*]", "..", "[?(…)]", "[a,b]",
 * "[1:3]") gives the array of its matches, as AWS does.  A definite path
 * that matches nothing is a States.Runtime failure.  0 and a new reference
 * in *ret; -EINVAL with f set; -ENOMEM. */
int asl_path_select(const char *path, json_t *input, json_t *context, json_t **ret, AslFailure *f);

/* Apply ResultPath: a new document that is input with value stored at
 * reference_path (NULL path = JSON null in the definition: discard the
 * result, keep input; "$": the value itself).  Intermediate objects are
 * created; a path through a non-object or past an array's end is a
 * States.ResultPathMatchFailure (AWS's name for it).  value
 * and input are not stolen.  0 and a new reference in *ret; -EINVAL with
 * f; -ENOMEM. */
int asl_path_apply_result(const char *reference_path, json_t *input, json_t *value, json_t **ret, AslFailure *f);

/* ---- payload templates -------------------------------------------------- */

/* Check a template (any JSON value; objects are walked): every "key.$"
 * value is a string that is a valid path or intrinsic call.  0, or -EINVAL
 * with *ret_error. */
int asl_template_check(json_t *tmpl, char **ret_error);

/* Evaluate a template against input and context: "key.$": "$.x" becomes
 * "key": <selected>, "key.$": "States.Format(…)" becomes "key": <result>,
 * everything else is copied.  0 and a new reference in *ret; -EINVAL with
 * f; -ENOMEM. */
int asl_template_eval(json_t *tmpl, json_t *input, json_t *context, json_t **ret, AslFailure *f);

/* ---- intrinsic functions ------------------------------------------------ */

/* True when s looks like an intrinsic call ("States.Name(…)"). */
bool asl_intrinsic_is_call(const char *s);

/* Check a call at load time: known function, balanced arguments, literal
 * and path arguments well formed.  0, or -EINVAL with *ret_error. */
int asl_intrinsic_check(const char *expr, char **ret_error);

/* Evaluate a call; arguments may be literals (strings in single quotes
 * with \' \{ \} \\ escapes, numbers, true/false/null), paths ($…, $$…) and
 * nested calls.  Failures are States.IntrinsicFailure.  0 and a new
 * reference in *ret; -EINVAL with f; -ENOMEM. */
int asl_intrinsic_eval(const char *expr, json_t *input, json_t *context, json_t **ret, AslFailure *f);

/* ---- Choice rules ------------------------------------------------------- */

/* Check one Choice rule (top_level: it must have "Next"; nested rules in
 * And/Or/Not must not).  Every comparison operator (StringEquals …
 * TimestampGreaterThanEqualsPath, IsNull, IsPresent, IsNumeric, IsString,
 * IsBoolean, IsTimestamp, StringMatches) with its operand type checked.
 * 0, or -EINVAL with *ret_error. */
int asl_choice_check(json_t *rule, bool top_level, char **ret_error);

/* Evaluate one rule against input (and context for "$$" variables).
 * 0 and the outcome in *ret_match; -EINVAL with f (a Variable that does
 * not exist in a comparison other than IsPresent is States.Runtime, as
 * AWS does); -ENOMEM. */
int asl_choice_eval(json_t *rule, json_t *input, json_t *context, bool *ret_match, AslFailure *f);

/* ---- timestamps ---------------------------------------------------------- */

/* Parse an RFC 3339 timestamp ("2026-12-04T16:20:00Z", "…T13:20:00.5-03:00")
 * to microseconds since the epoch.  0, or -EINVAL. */
int asl_timestamp_parse(const char *s, int64_t *ret_usec);

/* Format usec as "2026-12-04T16:20:00.000Z" into buf (at least 32 bytes). */
void asl_timestamp_format(int64_t usec, char *buf, size_t size);

/* ---- compiled forms ------------------------------------------------------ */

/* A definition's paths, templates, intrinsic calls and Choice rules parsed
 * once, when it is loaded, and evaluated at every state without being
 * parsed again.  Each *_compile() makes the same checks as the *_check()
 * above (and refuses with the same messages); each evaluation behaves as
 * its text counterpart, with one difference: what it returns may share
 * parts with its input and with the definition (jansson references, not
 * copies), so it must be treated as read-only.  The interpreter never
 * changes a value once made, so sharing is safe there and saves copying
 * the state's whole document at every step.  A compiled form holds
 * references of its own to the JSON parts it keeps (literals), so the
 * JSON it was compiled from may go. */

typedef struct AslPath AslPath;
typedef struct AslExpr AslExpr;
typedef struct AslTemplate AslTemplate;
typedef struct AslRule AslRule;

/* asl_path_check() that keeps the parsed path.  0 and a new path in *ret;
 * -EINVAL with *ret_error; -ENOMEM. */
int asl_path_compile(const char *path, bool reference, bool allow_context, AslPath **ret, char **ret_error);
AslPath *asl_path_free(AslPath *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(AslPath *, asl_path_free);
/* True for a "$$" path: it reads the context object. */
bool asl_path_uses_context(const AslPath *p);
/* True when evaluating p reads nothing of its input but what is under the
 * input's member (a path "$.member…" with no ".." first and no filter
 * comparing with "$"), or reads only the context object: the other
 * members of the input need not exist. */
bool asl_path_reads_only(const AslPath *p, const char *member);
/* asl_path_select() with a compiled path. */
int asl_path_eval(const AslPath *p, json_t *input, json_t *context, json_t **ret, AslFailure *f);
/* asl_path_apply_result() with a compiled reference path (NULL: JSON
 * null, keep input): the new document shares everything but the objects
 * and arrays on the way to the result with input, and the result itself
 * is value, not a copy. */
int asl_path_store(const AslPath *reference, json_t *input, json_t *value, json_t **ret, AslFailure *f);

/* A "key.$" value, ErrorPath or CausePath: a path ("$…", "$$…") or an
 * intrinsic call.  0 and a new expression in *ret; -EINVAL with
 * *ret_error; -ENOMEM. */
int asl_expr_compile(const char *expr, AslExpr **ret, char **ret_error);
AslExpr *asl_expr_free(AslExpr *x);
DEFINE_TRIVIAL_CLEANUP_FUNC(AslExpr *, asl_expr_free);
bool asl_expr_uses_context(const AslExpr *x);
/* asl_path_reads_only() of the path, or of every path in the call. */
bool asl_expr_reads_only(const AslExpr *x, const char *member);
/* The path's selection or the call's value (asl_path_select(),
 * asl_intrinsic_eval()). */
int asl_expr_eval(const AslExpr *x, json_t *input, json_t *context, json_t **ret, AslFailure *f);

/* asl_template_check() that keeps the template: its "key.$" entries
 * compiled, the parts without any shared as they are. */
int asl_template_compile(json_t *tmpl, AslTemplate **ret, char **ret_error);
AslTemplate *asl_template_free(AslTemplate *t);
DEFINE_TRIVIAL_CLEANUP_FUNC(AslTemplate *, asl_template_free);
bool asl_template_uses_context(const AslTemplate *t);
/* asl_path_reads_only() of every path in the template. */
bool asl_template_reads_only(const AslTemplate *t, const char *member);
/* asl_template_eval() with a compiled template. */
int asl_template_apply(const AslTemplate *t, json_t *input, json_t *context, json_t **ret, AslFailure *f);

/* asl_choice_check() that keeps the rule (its "Next" is not kept). */
int asl_rule_compile(json_t *rule, bool top_level, AslRule **ret, char **ret_error);
AslRule *asl_rule_free(AslRule *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(AslRule *, asl_rule_free);
bool asl_rule_uses_context(const AslRule *r);
/* asl_choice_eval() with a compiled rule. */
int asl_rule_eval(const AslRule *r, json_t *input, json_t *context, bool *ret_match, AslFailure *f);
