/* SPDX-License-Identifier: MIT */
/*
 * alloc.h — the one allocation wrapper.  Every allocation made by the
 * daemon's own modules goes through these functions so that tests can make
 * the Nth allocation fail (curl's "torture" runs) and prove that each
 * parser, the store and the control protocol return -ENOMEM cleanly instead
 * of crashing or leaking.  jansson is routed through it too (alloc_init()).
 *
 * Security: none.
 */
#pragma once

#include <stddef.h>

/* Route jansson's allocator through mem_malloc()/free().  Call once at start. */
void alloc_init(void);

/* Make allocation number n (counting from 1 after this call) and every
 * later one fail; n == 0 turns failure injection off.  For tests. */
void alloc_fail_after(unsigned long n);

/* How many allocations went through the wrapper since alloc_fail_after(). */
unsigned long alloc_count(void);

/* How many allocations have failed since the start, injected or real.  A
 * caller of a library that reports its own allocation failure as something
 * else (jansson's lexer says "invalid token") compares this before and
 * after the call to return -ENOMEM instead. */
unsigned long alloc_failures(void);

void *mem_malloc(size_t size);
void *mem_calloc(size_t n, size_t size);
void *mem_realloc(void *p, size_t size);
char *mem_strdup(const char *s);
char *mem_strndup(const char *s, size_t n);
/* Like asprintf(), returns NULL on failure. */
char *mem_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define mem_new(type, n) ((type *) mem_calloc((n), sizeof(type)))
