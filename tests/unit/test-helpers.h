/* SPDX-License-Identifier: MIT */
/*
 * test-helpers.h — temporary directories and files for the unit tests.
 */
#pragma once

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "macro.h"

/* A fresh directory under $TMPDIR; removed by rm_rf(). */
static inline char *make_tmpdir(void) {
        const char *base = getenv("TMPDIR");
        char *p = NULL;

        assert_true(asprintf(&p, "%s/deliveryd-test-XXXXXX", base ? base : "/tmp") > 0);
        assert_non_null(mkdtemp(p));
        return p;
}

static inline void write_file(const char *dir, const char *name, const char *text) {
        char path[4096];
        FILE *f;

        snprintf(path, sizeof path, "%s/%s", dir, name);
        f = fopen(path, "we");
        assert_non_null(f);
        assert_int_equal(fputs(text, f) >= 0, 1);
        assert_int_equal(fclose(f), 0);
}

static inline void rm_rf(const char *dir) {
        char cmd[4200];
        /* Test-only clean-up of a directory this test created. */
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        FILE *p = popen(cmd, "r");
        if (p)
                pclose(p);
}
