/* SPDX-License-Identifier: MIT */
/*
 * strutil.c — strict value parsers and small string helpers.
 *
 * Security: see strutil.h.  strtoull() is not used because it accepts
 * signs, leading spaces and "0x"; these parsers accept exactly digits.
 */
#include "strutil.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "macro.h"

/* Parse leading decimal digits; *end receives the first other character. */
static int parse_digits(const char *s, uint64_t *ret, const char **end) {
        uint64_t v = 0;
        const char *p = s;

        if (!isdigit((unsigned char) *p))
                return -EINVAL;
        for (; isdigit((unsigned char) *p); p++) {
                unsigned d = (unsigned) (*p - '0');
                if (v > (UINT64_MAX - d) / 10)
                        return -ERANGE;
                v = v * 10 + d;
        }
        *ret = v;
        *end = p;
        return 0;
}

int parse_uint64(const char *s, uint64_t *ret) {
        const char *end;
        uint64_t v;
        int r;

        r = parse_digits(s, &v, &end);
        if (r < 0)
                return r;
        if (*end)
                return -EINVAL;
        *ret = v;
        return 0;
}

int parse_boolean(const char *s, bool *ret) {
        static const char *const yes[] = { "1", "yes", "y", "true", "t", "on" };
        static const char *const no[] = { "0", "no", "n", "false", "f", "off" };

        for (size_t i = 0; i < ELEMENTSOF(yes); i++)
                if (strcasecmp(s, yes[i]) == 0) {
                        *ret = true;
                        return 0;
                }
        for (size_t i = 0; i < ELEMENTSOF(no); i++)
                if (strcasecmp(s, no[i]) == 0) {
                        *ret = false;
                        return 0;
                }
        return -EINVAL;
}

static int mul_add(uint64_t *acc, uint64_t v, uint64_t factor) {
        if (factor && v > UINT64_MAX / factor)
                return -ERANGE;
        if (*acc > UINT64_MAX - v * factor)
                return -ERANGE;
        *acc += v * factor;
        return 0;
}

int parse_duration_usec(const char *s, uint64_t *ret) {
        static const struct {
                const char *suffix;
                uint64_t usec;
        } units[] = {
                /* longest first where one is a prefix of another */
                { "usec", 1 },
                { "us", 1 },
                { "msec", USEC_PER_MSEC },
                { "ms", USEC_PER_MSEC },
                { "seconds", USEC_PER_SEC },
                { "second", USEC_PER_SEC },
                { "sec", USEC_PER_SEC },
                { "s", USEC_PER_SEC },
                { "minutes", 60 * USEC_PER_SEC },
                { "minute", 60 * USEC_PER_SEC },
                { "min", 60 * USEC_PER_SEC },
                { "m", 60 * USEC_PER_SEC },
                { "hours", 3600 * USEC_PER_SEC },
                { "hour", 3600 * USEC_PER_SEC },
                { "h", 3600 * USEC_PER_SEC },
                { "days", 86400 * USEC_PER_SEC },
                { "day", 86400 * USEC_PER_SEC },
                { "d", 86400 * USEC_PER_SEC },
        };
        uint64_t total = 0;
        const char *p = s;
        bool any = false;
        int r;

        for (;;) {
                uint64_t v, factor = USEC_PER_SEC;
                const char *end;
                size_t ulen = 0;

                while (*p == ' ' || *p == '\t')
                        p++;
                if (!*p)
                        break;

                r = parse_digits(p, &v, &end);
                if (r < 0)
                        return r;
                p = end;
                while (*p == ' ')
                        p++;
                while (isalpha((unsigned char) p[ulen]))
                        ulen++;
                if (ulen > 0) {
                        bool found = false;
                        for (size_t i = 0; i < ELEMENTSOF(units); i++)
                                if (strlen(units[i].suffix) == ulen && strncmp(p, units[i].suffix, ulen) == 0) {
                                        factor = units[i].usec;
                                        found = true;
                                        break;
                                }
                        if (!found)
                                return -EINVAL;
                        p += ulen;
                }
                r = mul_add(&total, v, factor);
                if (r < 0)
                        return r;
                any = true;
        }
        if (!any)
                return -EINVAL;
        *ret = total;
        return 0;
}

int parse_size(const char *s, uint64_t *ret) {
        static const struct {
                const char *suffix;
                uint64_t factor;
        } units[] = {
                { "", 1 },
                { "B", 1 },
                { "K", 1024ULL },
                { "KB", 1024ULL },
                { "KiB", 1024ULL },
                { "M", 1024ULL * 1024 },
                { "MB", 1024ULL * 1024 },
                { "MiB", 1024ULL * 1024 },
                { "G", 1024ULL * 1024 * 1024 },
                { "GB", 1024ULL * 1024 * 1024 },
                { "GiB", 1024ULL * 1024 * 1024 },
        };
        const char *end;
        uint64_t v;
        int r;

        r = parse_digits(s, &v, &end);
        if (r < 0)
                return r;
        while (*end == ' ')
                end++;
        for (size_t i = 0; i < ELEMENTSOF(units); i++)
                if (strcasecmp(end, units[i].suffix) == 0) {
                        if (v > UINT64_MAX / units[i].factor)
                                return -ERANGE;
                        *ret = v * units[i].factor;
                        return 0;
                }
        return -EINVAL;
}

int parse_cents(const char *s, int64_t *ret) {
        const char *end;
        uint64_t whole, frac = 0;
        int r;

        r = parse_digits(s, &whole, &end);
        if (r < 0)
                return r;
        if (*end == '.' || *end == ',') {
                const char *f = end + 1;
                if (!isdigit((unsigned char) f[0]))
                        return -EINVAL;
                frac = (uint64_t) (f[0] - '0') * 10;
                end = f + 1;
                if (isdigit((unsigned char) *end)) {
                        frac += (uint64_t) (*end - '0');
                        end++;
                }
        }
        if (*end)
                return -EINVAL;
        if (whole > (uint64_t) INT64_MAX / 100 - 1)
                return -ERANGE;
        *ret = (int64_t) (whole * 100 + frac);
        return 0;
}

char *strstrip(char *s) {
        char *e;

        while (*s && isspace((unsigned char) *s))
                s++;
        e = s + strlen(s);
        while (e > s && isspace((unsigned char) e[-1]))
                e--;
        *e = '\0';
        return s;
}

char **strv_free(char **l) {
        if (!l)
                return NULL;
        for (char **i = l; *i; i++)
                free(*i);
        free(l);
        return NULL;
}

size_t strv_length(char *const *l) {
        size_t n = 0;
        if (l)
                while (l[n])
                        n++;
        return n;
}

int strv_extend(char ***l, const char *s) {
        size_t n = strv_length(*l);
        char **nl;
        char *c;

        c = mem_strdup(s);
        if (!c)
                return -ENOMEM;
        nl = mem_realloc(*l, sizeof(char *) * (n + 2));
        if (!nl) {
                free(c);
                return -ENOMEM;
        }
        nl[n] = c;
        nl[n + 1] = NULL;
        *l = nl;
        return 0;
}

char **strv_split_ws(const char *s) {
        char **l = mem_new(char *, 1);
        const char *p = s;

        if (!l)
                return NULL;
        for (;;) {
                size_t n;
                char *w;

                while (*p && isspace((unsigned char) *p))
                        p++;
                if (!*p)
                        break;
                n = 0;
                while (p[n] && !isspace((unsigned char) p[n]))
                        n++;
                w = mem_strndup(p, n);
                if (!w || strv_extend(&l, w) < 0) {
                        free(w);
                        return strv_free(l);
                }
                free(w);
                p += n;
        }
        return l;
}

char **strv_copy(char *const *l) {
        char **c = mem_new(char *, 1);

        if (!c)
                return NULL;
        for (size_t i = 0; l && l[i]; i++)
                if (strv_extend(&c, l[i]) < 0)
                        return strv_free(c);
        return c;
}

bool strv_equal(char *const *a, char *const *b) {
        size_t n = strv_length(a);

        if (n != strv_length(b))
                return false;
        for (size_t i = 0; i < n; i++)
                if (!streq(a[i], b[i]))
                        return false;
        return true;
}

bool strv_contains(char *const *l, const char *s) {
        for (size_t i = 0; l && l[i]; i++)
                if (streq(l[i], s))
                        return true;
        return false;
}

char *strv_join(char *const *l, const char *sep) {
        size_t len = 1, seplen = strlen(sep);
        char *r, *p;

        for (size_t i = 0; l && l[i]; i++)
                len += strlen(l[i]) + seplen;
        r = p = mem_malloc(len);
        if (!r)
                return NULL;
        *p = '\0';
        for (size_t i = 0; l && l[i]; i++) {
                if (i > 0) {
                        memcpy(p, sep, seplen);
                        p += seplen;
                }
                size_t n = strlen(l[i]);
                memcpy(p, l[i], n);
                p += n;
        }
        *p = '\0';
        return r;
}

char *path_join_relative(const char *dir, const char *name) {
        if (name[0] == '/' || isempty(dir))
                return mem_strdup(name);
        return mem_printf("%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/", name);
}

char *path_dirname(const char *path) {
        const char *slash = strrchr(path, '/');

        if (!slash)
                return mem_strdup(".");
        if (slash == path)
                return mem_strdup("/");
        return mem_strndup(path, (size_t) (slash - path));
}

void wipe_free(char *s) {
        if (!s)
                return;
        explicit_bzero(s, strlen(s));
        free(s);
}

char **wipe_strv_free(char **l) {
        if (!l)
                return NULL;
        for (char **i = l; *i; i++)
                wipe_free(*i);
        free(l);
        return NULL;
}

int mkdir_p(const char *path, unsigned mode) {
        _cleanup_free_ char *p = mem_strdup(path);

        if (!p)
                return -ENOMEM;
        for (char *s = p + 1; *s; s++) {
                if (*s != '/')
                        continue;
                *s = '\0';
                if (mkdir(p, 0755) < 0 && errno != EEXIST)
                        return -errno;
                *s = '/';
        }
        if (mkdir(p, mode) < 0 && errno != EEXIST)
                return -errno;
        return 0;
}

size_t strscpy(char *dst, size_t size, const char *src) {
        size_t n = strlen(src);

        if (size > 0) {
                size_t c = MIN(n, size - 1);
                memcpy(dst, src, c);
                dst[c] = '\0';
        }
        return n;
}

void eventfd_wake(int fd) {
        uint64_t one = 1;

        for (unsigned i = 0; i < 10000; i++)
                if (write(fd, &one, sizeof one) == sizeof one || errno == EAGAIN)
                        return;
}
