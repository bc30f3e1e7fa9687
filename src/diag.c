/* SPDX-License-Identifier: MIT */
/*
 * diag.c — collected "file:line: message" diagnostics.
 *
 * Security: see diag.h.
 */
#include "diag.h"

#include <errno.h>
#include <stdarg.h>

#include "alloc.h"
#include "strutil.h"

static void diags_push(Diags *d, const char *text) {
        if (strv_extend(&d->lines, text) < 0) {
                d->oom++;
                return;
        }
        d->n++;
}

void diags_add(Diags *d, const char *file, unsigned line, const char *fmt, ...) {
        char msg[1024];
        _cleanup_free_ char *text = NULL;
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);

        if (line > 0)
                text = mem_printf("%s:%u: %s", file, line, msg);
        else
                text = mem_printf("%s: %s", file, msg);
        if (!text) {
                d->oom++;
                return;
        }
        diags_push(d, text);
}

void diags_merge(Diags *dst, const Diags *src) {
        for (size_t i = 0; i < src->n; i++)
                diags_push(dst, src->lines[i]);
        dst->oom += src->oom;
}

int diags_to_errno(const Diags *d) {
        if (d->oom)
                return -ENOMEM;
        return d->n > 0 ? -EINVAL : 0;
}

void diags_clear(Diags *d) {
        d->lines = strv_free(d->lines);
        d->n = 0;
        d->oom = 0;
}
