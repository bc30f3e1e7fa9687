/* SPDX-License-Identifier: MIT */
/*
 * customer.c — customer identifiers.
 *
 * Security: see customer.h.
 */
#include "customer.h"

#include <ctype.h>
#include <errno.h>
#include <string.h>

#include "alloc.h"

bool customer_phone_valid(const char *s) {
        size_t n;

        if (!s || s[0] != '+' || s[1] < '1' || s[1] > '9')
                return false;
        for (n = 1; s[n]; n++)
                if (!isdigit((unsigned char) s[n]))
                        return false;
        n--; /* digits, without the '+' */
        return n >= 7 && n <= 15;
}

int customer_email_normalize(const char *s, char **ret) {
        const char *at;
        size_t n;
        char *c;

        if (!s)
                return -EINVAL;
        n = strlen(s);
        at = strrchr(s, '@');
        if (n == 0 || n > 254 || !at || at == s || !at[1] || strchr(at + 1, '.') == NULL)
                return -EINVAL;
        for (size_t i = 0; i < n; i++) {
                unsigned char ch = (unsigned char) s[i];
                if (ch <= ' ' || ch == 0x7f || strchr("<>()[],;:\\\"", ch))
                        return -EINVAL;
        }
        c = mem_strdup(s);
        if (!c)
                return -ENOMEM;
        for (char *p = c; *p; p++)
                *p = (char) tolower((unsigned char) *p);
        *ret = c;
        return 0;
}
