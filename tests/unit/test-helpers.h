/* SPDX-License-Identifier: MIT */
/*
 * test-helpers.h — temporary directories and files for the unit tests.
 */
#pragma once

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "alloc.h"
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

static inline void rm_rf(const char *path);

/* The test group's temporary directory: cmocka_run_group_tests(tests,
 * tmpdir_setup, tmpdir_teardown) makes it before the first test and
 * removes it after the last. */
static char *test_dir;

static inline int tmpdir_setup(void **state) {
        (void) state;
        test_dir = make_tmpdir();
        return 0;
}

static inline int tmpdir_teardown(void **state) {
        (void) state;
        rm_rf(test_dir);
        free(test_dir);
        return 0;
}

/* Fail the 1st, 2nd, 3rd … allocation of attempt() in turn (curl's
 * "torture" runs) until it returns something other than -ENOMEM, which
 * must be want; attempt() cleans up after itself.  Returns how many
 * allocations were failed in turn. */
static inline unsigned long oom_loop(int (*attempt)(void *userdata), void *userdata, int want) {
        unsigned long n;

        for (n = 1;; n++) {
                alloc_fail_after(n);
                int r = attempt(userdata);
                alloc_fail_after(0);
                if (r != -ENOMEM) {
                        assert_int_equal(r, want);
                        return n;
                }
        }
}

#ifdef TEST_SRCDIR
/* A message of tests/data/mail/, NUL-terminated (free()); its length in
 * *ret_size. */
static inline char *read_mail_corpus(const char *name, size_t *ret_size) {
        char path[4096];
        FILE *f;
        char *buf;
        long n;

        snprintf(path, sizeof path, "%s/tests/data/mail/%s", TEST_SRCDIR, name);
        f = fopen(path, "rbe");
        if (!f)
                fail_msg("cannot open %s", path);
        assert_int_equal(fseek(f, 0, SEEK_END), 0);
        n = ftell(f);
        assert_true(n >= 0);
        rewind(f);
        buf = malloc((size_t) n + 1);
        assert_non_null(buf);
        assert_int_equal(fread(buf, 1, (size_t) n, f), (size_t) n);
        fclose(f);
        buf[n] = '\0';
        *ret_size = (size_t) n;
        return buf;
}
#endif

static inline void rm_rf(const char *path) {
        char cmd[4200];
        /* Test-only clean-up of a directory this test created. */
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
        FILE *p = popen(cmd, "r");
        if (p)
                pclose(p);
}
