/* SPDX-License-Identifier: MIT */
/*
 * asl-data-private.h — what asl-path.c, asl-intrinsics.c and asl-choice.c
 * share behind asl-data.h: parsed paths, so that an intrinsic call's path
 * arguments are parsed with the same code as every other path.  Not for
 * other modules.
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

typedef struct AslPath AslPath;

/* Free a parsed path; returns NULL.  p may be NULL. */
AslPath *asl_path_free(AslPath *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(AslPath *, asl_path_free);

/* Parse the whole of s as a path.  0 and a new path in *ret; -EINVAL with
 * a message in *ret_error (when not NULL; caller frees); -ENOMEM. */
int asl_path_parse(const char *s, AslPath **ret, char **ret_error);

/* Parse a path at the start of s[0..len), as far as it goes (an intrinsic
 * argument ends at ',' or ')'); *ret_used is how many bytes it took. */
int asl_path_parse_prefix(const char *s, size_t len, size_t *ret_used, AslPath **ret, char **ret_error);

/* True when the path gives one value rather than an array of matches. */
bool asl_path_is_definite(const AslPath *p);

/* True for a "$$" path. */
bool asl_path_is_context(const AslPath *p);

/* asl_path_select() with a parsed path; text is the path for messages. */
int asl_path_eval(const AslPath *path, const char *text, json_t *input, json_t *context, json_t **ret, AslFailure *f);

/* Compare two JSON numbers by value (exactly when both are integers):
 * -1, 0 or 1. */
int asl_number_cmp(json_t *a, json_t *b);
