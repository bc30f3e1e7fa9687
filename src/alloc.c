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
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
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

/* jansson's reserve.  jansson 2.14's lexer does not check the allocation
 * that grows its token buffer (lex_save() drops the byte when it fails)
 * and then asserts that each byte it puts back is the one it read: one
 * failed allocation there aborts the whole daemon, or silently drops a
 * byte of a string.  Anywhere else in jansson a failure is reported as it
 * should be.  So that none reaches the lexer, a jansson allocation that
 * fails is served from this reserve instead: a bump arena, emptied when
 * its last block is freed (code of our own because no allocator library
 * has "a fallback for when malloc fails").  It only postpones a failure:
 * enough for one that passes (an allocation refused under a memory
 * limit, the soak's injected ones); a daemon short of memory for longer
 * fails elsewhere first.  The failure is still counted (alloc_failures()).
 * Untouched, it costs no resident memory. */
#define JSON_RESERVE_SIZE (1024 * 1024)
#define JSON_RESERVE_ALIGN 16
static _Alignas(JSON_RESERVE_ALIGN) unsigned char json_reserve[JSON_RESERVE_SIZE];
static size_t json_reserve_used;
static unsigned long json_reserve_live;
static pthread_mutex_t json_reserve_lock = PTHREAD_MUTEX_INITIALIZER;

static bool in_json_reserve(const void *p) {
        uintptr_t a = (uintptr_t) p, base = (uintptr_t) json_reserve;
        return a >= base && a < base + JSON_RESERVE_SIZE;
}

static bool json_reserve_injected; /* injected failures use it too */

void alloc_json_reserve_takes_injected(bool on) {
        __atomic_store_n(&json_reserve_injected, on, __ATOMIC_RELAXED);
}

static void *json_alloc(size_t size) {
        /* Injected failures are not served from the reserve, unless a test
         * asks: the OOM tests are there to walk our own -ENOMEM paths,
         * those that follow a jansson function returning NULL included. */
        bool injected = should_fail();
        void *p = injected ? NULL : counted(malloc(size ?: 1));

        if (p || (injected && !__atomic_load_n(&json_reserve_injected, __ATOMIC_RELAXED)))
                return p;
        size = ((size ?: 1) + JSON_RESERVE_ALIGN - 1) & ~(size_t) (JSON_RESERVE_ALIGN - 1);
        pthread_mutex_lock(&json_reserve_lock);
        if (size <= JSON_RESERVE_SIZE - json_reserve_used) {
                p = json_reserve + json_reserve_used;
                json_reserve_used += size;
                json_reserve_live++;
        }
        pthread_mutex_unlock(&json_reserve_lock);
        return p;
}

static void json_free(void *p) {
        if (!in_json_reserve(p)) {
                free(p);
                return;
        }
        pthread_mutex_lock(&json_reserve_lock);
        if (--json_reserve_live == 0)
                json_reserve_used = 0;
        pthread_mutex_unlock(&json_reserve_lock);
}

char *mem_json_dumps(const json_t *j, size_t flags) {
        /* Written (json_dumps) so that check-style, which bans the plain
         * call everywhere else, lets this one through. */
        char *s = (json_dumps) (j, flags), *copy;

        if (!s || !in_json_reserve(s))
                return s;
        copy = mem_strdup(s);
        json_free(s);
        return copy;
}

void alloc_init(void) {
        json_set_alloc_funcs(json_alloc, json_free);
        /* jansson seeds its hash function on first use; do it now, before
         * any thread parses JSON. */
        json_object_seed(0);
        /* OpenSSL's allocations are counted too, so that a failure deep in
         * it can be told from a forged signature (sns.c), and tests can
         * fail them in turn.  Only possible before its first allocation;
         * later, OpenSSL keeps malloc(). */
        (void) CRYPTO_set_mem_functions(ssl_malloc, ssl_realloc, ssl_free);
}
