/* SPDX-License-Identifier: MIT */
/*
 * base64.h — Base64 (RFC 4648) both ways, over OpenSSL's EVP_EncodeBlock
 * and EVP_DecodeBlock, with the line breaks and padding that real senders
 * (SES, MUAs) produce handled here once.
 *
 * Security: decodes untrusted input; output is bounded by the input.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* Decode, ignoring CR, LF, space and tab.  Returns 0 with a new buffer
 * (NUL-terminated for convenience) and its length; -EBADMSG, -ENOMEM. */
int base64_decode(const char *in, size_t len, uint8_t **ret, size_t *ret_len);

/* Encode without line breaks.  Returns a new string or NULL on OOM. */
char *base64_encode(const void *in, size_t len);
