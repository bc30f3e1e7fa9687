/* SPDX-License-Identifier: MIT */
/*
 * asl-data-private.h — what asl-path.c, asl-intrinsics.c and asl-choice.c
 * share behind asl-data.h: the path parser, so that an intrinsic call's
 * path arguments are parsed with the same code as every other path, and
 * parsed intrinsic calls, which AslExpr holds.  Not for other modules.
 *
 * Security: see asl-data.h.
 */
#pragma once

#include <stddef.h>

#include "asl-data.h"

#define ASL_MATCHES_MAX 100000 /* values one selection may hold */
#define ASL_SCAN_DEPTH_MAX 512 /* levels one ".." descends */
#define ASL_VISITS_MAX 1000000 /* values one selection may look at */
#define ASL_OUTPUT_MAX (256 * 1024) /* bytes of one string an intrinsic makes */

/* Parse the whole of s as a path.  0 and a new path in *ret; -EINVAL with
 * a message in *ret_error (when not NULL; caller frees); -ENOMEM. */
int asl_path_parse(const char *s, AslPath **ret, char **ret_error);

/* Parse a path at the start of s[0..len), as far as it goes (an intrinsic
 * argument ends at ',' or ')'); *ret_used is how many bytes it took. */
int asl_path_parse_prefix(const char *s, size_t len, size_t *ret_used, AslPath **ret, char **ret_error);

/* The path as written, for messages. */
const char *asl_path_text(const AslPath *p);

/* Compare two JSON numbers by value (exactly when both are integers):
 * -1, 0 or 1. */
int asl_number_cmp(json_t *a, json_t *b);

/* A parsed intrinsic call (asl-intrinsics.c), for AslExpr. */
typedef struct AslCall AslCall;

/* Parse and check a call as asl_intrinsic_check() does.  0 and a new call
 * in *ret; -EINVAL with *ret_error (when not NULL); -ENOMEM. */
int asl_call_parse(const char *expr, AslCall **ret, char **ret_error);
AslCall *asl_call_free(AslCall *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(AslCall *, asl_call_free);
/* True when a path argument, at any depth, is a "$$" path. */
bool asl_call_uses_context(const AslCall *c);
/* asl_expr_reads_only() for a call: every path argument, at any depth. */
bool asl_call_reads_only(const AslCall *c, const char *member);
/* asl_intrinsic_eval() with a parsed call. */
int asl_call_eval(const AslCall *c, json_t *input, json_t *context, json_t **ret, AslFailure *f);
