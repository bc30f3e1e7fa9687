/* SPDX-License-Identifier: MIT */
/*
 * base64.c — Base64 through OpenSSL.
 *
 * Security: see base64.h.
 */
#include "base64.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdlib.h>

#include "alloc.h"
#include "macro.h"

int base64_decode(const char *in, size_t len, uint8_t **ret, size_t *ret_len) {
        _cleanup_free_ char *clean = NULL;
        size_t n = 0, pad = 0;
        uint8_t *out;
        int k;

        if (len > INT32_MAX)
                return -EBADMSG;
        clean = mem_malloc(len + 1);
        if (!clean)
                return -ENOMEM;
        /* EVP_DecodeBlock wants one block without white space. */
        for (size_t i = 0; i < len; i++)
                if (in[i] != '\r' && in[i] != '\n' && in[i] != ' ' && in[i] != '\t')
                        clean[n++] = in[i];
        clean[n] = '\0';
        if (n % 4 != 0)
                return -EBADMSG;
        if (n >= 1 && clean[n - 1] == '=')
                pad++;
        if (n >= 2 && clean[n - 2] == '=')
                pad++;
        out = mem_malloc(n / 4 * 3 + 1);
        if (!out)
                return -ENOMEM;
        k = EVP_DecodeBlock(out, (const unsigned char *) clean, (int) n);
        if (k < 0 || (size_t) k < pad) {
                free(out);
                return -EBADMSG;
        }
        *ret_len = (size_t) k - pad;
        out[*ret_len] = '\0';
        *ret = out;
        return 0;
}

char *base64_encode(const void *in, size_t len) {
        char *out;

        if (len > INT32_MAX / 2)
                return NULL;
        out = mem_malloc((len + 2) / 3 * 4 + 1);
        if (!out)
                return NULL;
        EVP_EncodeBlock((unsigned char *) out, in, (int) len);
        return out;
}
