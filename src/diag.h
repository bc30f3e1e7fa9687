/* SPDX-License-Identifier: MIT */
/*
 * diag.h — a list of problems found while reading a file, each already
 * formatted as "file:line: message" so that --check-config, reload and the
 * control socket can show them the same way.
 *
 * Security: messages quote parts of the input; they are bounded in length.
 */
#pragma once

#include <stddef.h>

#include "macro.h"

typedef struct Diags {
        char **lines; /* NULL-terminated, or NULL when empty */
        size_t n;
        int oom; /* an allocation failed while recording: the list is incomplete */
} Diags;

/* Record "file:line: message" (line 0: "file: message").  Never fails; on
 * OOM the diagnostic is counted in oom instead. */
void diags_add(Diags *d, const char *file, unsigned line, const char *fmt, ...) _printf_(4, 5);

/* Append every line of src to dst. */
void diags_merge(Diags *dst, const Diags *src);

void diags_clear(Diags *d);

/* What a reader returns for what it recorded: -ENOMEM when a diagnostic
 * was lost to OOM, -EINVAL when there is any, 0 otherwise. */
int diags_to_errno(const Diags *d);
