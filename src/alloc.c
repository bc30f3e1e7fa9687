/* SPDX-License-Identifier: MIT */
/*
 * alloc.c — allocation wrapper with failure injection for tests.
 *
 * Security: none.
 */
#include "alloc.h"
#include "macro.h"

#include <errno.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned long fail_after; /* 0: never fail */
static unsigned long counter;
static unsigned long failures;

/* The counters are atomic: worker threads allocate too (worker-pool.h,
 * the SMTP worker).  Failure injection itself is for single-threaded
 * tests. */
void alloc_fail_after(unsigned long n) {
        __atomic_store_n(&fail_after, n, __ATOMIC_RELAXED);
        __atomic_store_n(&counter, 0, __ATOMIC_RELAXED);
}

unsigned long alloc_count(void) {
        return __atomic_load_n(&counter, __ATOMIC_RELAXED);
}

unsigned long alloc_failures(void) {
        return __atomic_load_n(&failures, __ATOMIC_RELAXED);
}

int alloc_errno_since(unsigned long before, int otherwise) {
        return alloc_failures() != before ? -ENOMEM : otherwise;
}

static bool should_fail(void) {
        unsigned long c = __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED),
                      f = __atomic_load_n(&fail_after, __ATOMIC_RELAXED);
        if (f > 0 && c >= f) {
                __atomic_fetch_add(&failures, 1, __ATOMIC_RELAXED);
                return true;
        }
        return false;
}

static void *counted(void *p) {
        if (!p)
                __atomic_fetch_add(&failures, 1, __ATOMIC_RELAXED); /* the SMTP worker allocates too */
        return p;
}

void *mem_malloc(size_t size) {
        if (should_fail())
                return NULL;
        return counted(malloc(size ?: 1));
}

void *mem_calloc(size_t n, size_t size) {
        if (should_fail())
                return NULL;
        return counted(calloc(n ?: 1, size ?: 1));
}

void *mem_realloc(void *p, size_t size) {
        if (should_fail())
                return NULL;
        return counted(realloc(p, size ?: 1));
}

char *mem_strndup(const char *s, size_t n) {
        size_t l = strnlen(s, n);
        char *d = mem_malloc(l + 1);
        if (!d)
                return NULL;
        memcpy(d, s, l);
        d[l] = '\0';
        return d;
}

char *mem_strdup(const char *s) {
        return mem_strndup(s, strlen(s));
}

char *mem_printf(const char *fmt, ...) {
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(NULL, 0, fmt, ap);
        va_end(ap);
        if (n < 0)
                return NULL;

        char *s = mem_malloc((size_t) n + 1);
        if (!s)
                return NULL;

        va_start(ap, fmt);
        vsnprintf(s, (size_t) n + 1, fmt, ap);
        va_end(ap);
        return s;
}

static void *ssl_malloc(size_t n, const char *file _unused_, int line _unused_) {
        return mem_malloc(n);
}

static void *ssl_realloc(void *p, size_t n, const char *file _unused_, int line _unused_) {
        return mem_realloc(p, n);
}

static void ssl_free(void *p, const char *file _unused_, int line _unused_) {
        free(p);
}

void alloc_init(void) {
        json_set_alloc_funcs(mem_malloc, free);
        /* jansson seeds its hash function on first use; do it now, before
         * any thread parses JSON. */
        json_object_seed(0);
        /* OpenSSL's allocations are counted too, so that a failure deep in
         * it can be told from a forged signature (sns.c), and tests can
         * fail them in turn.  Only possible before its first allocation;
         * later, OpenSSL keeps malloc(). */
        (void) CRYPTO_set_mem_functions(ssl_malloc, ssl_realloc, ssl_free);
}
