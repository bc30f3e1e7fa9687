/* SPDX-License-Identifier: MIT */
/*
 * asl-intrinsics.c — the intrinsic functions (States.Format …
 * States.UUID) behind asl-data.h.
 *
 * Security: calls come from the admin's definition, their arguments from
 * customers' orders and task results.
 */
#include "asl-data.h"

#include <errno.h>
#include <string.h>

#include "alloc.h"
#include "asl-data-private.h"

bool asl_intrinsic_is_call(const char *s) {
        size_t i = 7;

        if (!s || strncmp(s, "States.", 7) != 0)
                return false;
        while ((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9'))
                i++;
        return i > 7 && s[i] == '(';
}

int asl_intrinsic_check(const char *expr, char **ret_error) {
        if (ret_error && !(*ret_error = mem_printf("'%.200s': intrinsic functions are not supported yet", expr)))
                return -ENOMEM;
        return -EINVAL;
}

int asl_intrinsic_eval(const char *expr, json_t *input, json_t *context, json_t **ret, AslFailure *f) {
        (void) input;
        (void) context;
        (void) ret;
        return asl_failure_set(f, "States.Runtime", "'%.200s': intrinsic functions are not supported yet", expr);
}
