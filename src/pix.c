/* SPDX-License-Identifier: MIT */
/*
 * pix.c — the BR Code ("Pix copia e cola") payload and its CRC.
 *
 * Security: see pix.h.
 */
#include "pix.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "macro.h"
#include "normalize.h"

#define PIX_GUI "br.gov.bcb.pix"
#define PIX_MAX_KEY 77 /* field 26 holds at most 99: 4 + 14 (GUI) + 4 + key */

uint16_t pix_crc16(const void *data, size_t len) {
        const uint8_t *p = data;
        uint16_t crc = 0xFFFF;

        for (size_t i = 0; i < len; i++) {
                crc ^= (uint16_t) (p[i] << 8);
                for (int b = 0; b < 8; b++)
                        crc = (uint16_t) (crc & 0x8000 ? (crc << 1) ^ 0x1021 : crc << 1);
        }
        return crc;
}

char *pix_fold(const char *name, size_t max) {
        _cleanup_free_ char *folded = normalize_fold_pattern(name ? name : "");
        char *out;
        size_t n = 0;

        if (!folded)
                return NULL;
        out = mem_malloc(strlen(folded) + 1);
        if (!out)
                return NULL;
        for (const char *s = folded; *s && n < max; s++) {
                unsigned char c = (unsigned char) *s;
                if (c == '\t' || c == '\n' || c == '\r')
                        c = ' ';
                if (c < 0x20 || c > 0x7e)
                        continue;
                if (c == ' ' && (n == 0 || out[n - 1] == ' '))
                        continue;
                out[n++] = (char) c;
        }
        while (n > 0 && out[n - 1] == ' ')
                n--;
        out[n] = '\0';
        return out;
}

static bool txid_valid(const char *t) {
        size_t n = strlen(t);

        if (n == 0 || n > 25)
                return false;
        for (; *t; t++)
                if (!((*t >= '0' && *t <= '9') || (*t >= 'A' && *t <= 'Z') || (*t >= 'a' && *t <= 'z')))
                        return false;
        return true;
}

static bool key_valid(const char *k) {
        size_t n = strlen(k);

        if (n == 0 || n > PIX_MAX_KEY)
                return false;
        for (; *k; k++)
                if ((unsigned char) *k <= 0x20 || (unsigned char) *k > 0x7e)
                        return false;
        return true;
}

/* Append field id with value to buf at *n; buf is large enough (checked by the caller's bounds). */
static void field(char *buf, size_t size, size_t *n, const char *id, const char *value) {
        *n += (size_t) snprintf(buf + *n, size - *n, "%s%02zu%s", id, strlen(value), value);
}

int pix_brcode(const PixRequest *p, char **ret) {
        _cleanup_free_ char *name = NULL, *city = NULL;
        char account[128], extra[40], amount[32] = "", crc[8];
        size_t n = 0, size;
        char *buf;

        if (!p || !p->key || !key_valid(p->key) || p->amount_cents < 0 || p->amount_cents > 999999999999LL)
                return -EINVAL;
        if (p->txid && !txid_valid(p->txid))
                return -EINVAL;
        name = pix_fold(p->merchant_name, 25);
        city = pix_fold(p->merchant_city, 15);
        if (!name || !city)
                return -ENOMEM;
        if (!*name || !*city)
                return -EINVAL;

        size_t a = 0;
        field(account, sizeof account, &a, "00", PIX_GUI);
        field(account, sizeof account, &a, "01", p->key);
        size_t e = 0;
        field(extra, sizeof extra, &e, "05", p->txid ? p->txid : "***");
        if (p->amount_cents > 0)
                snprintf(amount, sizeof amount, "%lld.%02lld", (long long) (p->amount_cents / 100),
                         (long long) (p->amount_cents % 100));

        size = 256;
        buf = mem_malloc(size);
        if (!buf)
                return -ENOMEM;
        field(buf, size, &n, "00", "01");
        field(buf, size, &n, "26", account);
        field(buf, size, &n, "52", "0000");
        field(buf, size, &n, "53", "986");
        if (*amount)
                field(buf, size, &n, "54", amount);
        field(buf, size, &n, "58", "BR");
        field(buf, size, &n, "59", name);
        field(buf, size, &n, "60", city);
        field(buf, size, &n, "62", extra);
        n += (size_t) snprintf(buf + n, size - n, "6304");
        snprintf(crc, sizeof crc, "%04X", pix_crc16(buf, n));
        n += (size_t) snprintf(buf + n, size - n, "%s", crc);
        *ret = buf;
        return 0;
}
