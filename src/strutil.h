/* SPDX-License-Identifier: MIT */
/*
 * strutil.h — strict parsers for numbers, durations, sizes and booleans as
 * they appear in configuration files, string vectors, and path helpers.
 * Pure functions; nothing here logs.
 *
 * Security: parses untrusted text (config values, control requests);
 * every parser is strict — no sign, no trailing garbage, no overflow.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Decimal unsigned integer, no sign, no spaces.  -EINVAL, -ERANGE. */
int parse_uint64(const char *s, uint64_t *ret);

/* "yes/no/true/false/on/off/1/0".  -EINVAL. */
int parse_boolean(const char *s, bool *ret);

/* A duration in microseconds: a number with an optional unit (us, ms, s,
 * min, h, d; bare numbers are seconds), several may be summed ("1min 30s"). */
int parse_duration_usec(const char *s, uint64_t *ret);

/* A size in bytes: a number with optional K, M, G (powers of 1024, with or
 * without "iB"/"B").  */
int parse_size(const char *s, uint64_t *ret);

/* Money "49.90" / "49,90" / "50" into cents.  -EINVAL, -ERANGE. */
int parse_cents(const char *s, int64_t *ret);

/* Remove leading and trailing white space in place; returns s. */
char *strstrip(char *s);

/* NULL-terminated string vectors. */
char **strv_free(char **l);
size_t strv_length(char *const *l);
/* Split on runs of white space.  Returns NULL on OOM; "" gives an empty vector. */
char **strv_split_ws(const char *s);
/* Append a copy of s.  -ENOMEM. */
int strv_extend(char ***l, const char *s);
char **strv_copy(char *const *l);
bool strv_equal(char *const *a, char *const *b);
bool strv_contains(char *const *l, const char *s);
/* Join with sep; NULL on OOM. */
char *strv_join(char *const *l, const char *sep);

static inline void strv_freep(char ***l) {
        strv_free(*l);
}
#define _cleanup_strv_free_ __attribute__((cleanup(strv_freep)))

/* "dir/name", or name itself when it is absolute or dir is NULL.  NULL on OOM. */
char *path_join_relative(const char *dir, const char *name);
/* Directory part of path ("." when none).  NULL on OOM. */
char *path_dirname(const char *path);

/* Secrets: overwrite before freeing, so that a key or password does not
 * linger in freed heap memory.  Accept NULL. */
void wipe_free(char *s);
char **wipe_strv_free(char **l);
static inline void wipe_freep(char **s) {
        wipe_free(*s);
}
#define _cleanup_wipe_ __attribute__((cleanup(wipe_freep)))

/* Create directory path and any missing parents (parents with 0755, path
 * itself with mode); an existing directory is fine.  Returns 0 or -errno. */
int mkdir_p(const char *path, unsigned mode);

/* Wake a loop from another thread through its eventfd.  A write to an
 * eventfd fails only when the counter would overflow (EAGAIN: a wake-up
 * is pending anyway) — or when a fault is injected (the soak's libfiu
 * runs): a lost wake-up would leave an answer undelivered, so the write
 * is tried again. */
void eventfd_wake(int fd);

/* Bounded, always terminated copy; returns the length that would have been copied. */
size_t strscpy(char *dst, size_t size, const char *src);
