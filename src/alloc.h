/* SPDX-License-Identifier: MIT */
/*
 * alloc.h — the one allocation wrapper.  Every allocation made by the
 * daemon's own modules goes through these functions so that tests can make
 * the Nth allocation fail (curl's "torture" runs) and prove that each
 * parser, the store and the control protocol return -ENOMEM cleanly instead
 * of crashing or leaking.  jansson and OpenSSL are routed through it too
 * (alloc_init()).
 *
 * Security: none.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* Route jansson's and OpenSSL's allocators through mem_malloc()/free().
 * Call once at start, before anything uses OpenSSL. */
void alloc_init(void);

/* Make allocation number n (counting from 1 after this call) and every
 * later one fail; n == 0 turns failure injection off.  For tests. */
void alloc_fail_after(unsigned long n);

/* How many allocations went through the wrapper since alloc_fail_after(). */
unsigned long alloc_count(void);

/* How many allocations have failed (injected or real) since the start.
 * jansson reports an allocation failure inside json_loads() as a syntax
 * error; comparing this before and after tells the two apart. */
unsigned long alloc_failures(void);

/* For a library call that failed without saying why (OpenSSL's one-shot
 * digests): -ENOMEM when an allocation failed since before (a value of
 * alloc_failures()), else otherwise. */
int alloc_errno_since(unsigned long before, int otherwise);

/* jansson's allocations that fail are served from a reserve (alloc.c);
 * those made to fail by alloc_fail_after() only once this is on.  For
 * tests. */
void alloc_json_reserve_takes_injected(bool on);

/* jansson's json_dumps, for a string the caller frees with free():
 * jansson's own allocations may come from a reserve (alloc.c) that free()
 * must never see.  The plain call is banned by check-style. */
struct json_t;
char *mem_json_dumps(const struct json_t *j, size_t flags);

void *mem_malloc(size_t size);
void *mem_calloc(size_t n, size_t size);
void *mem_realloc(void *p, size_t size);
char *mem_strdup(const char *s);
char *mem_strndup(const char *s, size_t n);
/* Like asprintf(), returns NULL on failure. */
char *mem_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define mem_new(type, n) ((type *) mem_calloc((n), sizeof(type)))
