/* SPDX-License-Identifier: MIT */
/*
 * pix.h — "Pix copia e cola": the BR Code a customer pastes into a bank
 * app to pay, as the Banco Central do Brasil's "Manual de Padrões para
 * Iniciação do Pix" defines it: an EMV merchant-presented payload of
 * ID-length-value fields (00 format "01"; 26 merchant account with GUI
 * "br.gov.bcb.pix" and the key; 52 "0000"; 53 "986" (BRL); 54 amount;
 * 58 "BR"; 59 merchant name ≤ 25; 60 city ≤ 15; 62 with 05 txid) closed
 * by 63, the CRC16-CCITT-FALSE of everything before it, as 4 upper-case
 * hex digits.  Pure functions; nothing here logs.
 *
 * Security: the key, name and city come from the admin's configuration,
 * the txid and amount from the order; every field is checked for length
 * and character set, names and cities are folded to ASCII.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* CRC-16/CCITT-FALSE: polynomial 0x1021, initial value 0xFFFF, no
 * reflection, no final XOR ("123456789" → 0x29B1). */
uint16_t pix_crc16(const void *data, size_t len);

typedef struct PixRequest {
        const char *key; /* the store's Pix key: e-mail, phone +55…, CPF/CNPJ digits or random key; ≤ 77 bytes */
        const char *merchant_name; /* UTF-8; folded to ASCII and cut to 25 */
        const char *merchant_city; /* UTF-8; folded to ASCII and cut to 15 */
        int64_t amount_cents; /* > 0; 0 leaves field 54 out (the payer types the amount) */
        const char *txid; /* 1 … 25 of [A-Za-z0-9], or NULL for "***" (none) */
} PixRequest;

/* Build the payload.  0 and a new string in *ret (caller frees), -EINVAL
 * for a missing or invalid field (empty key, name or city after folding,
 * a bad txid, a negative or too large amount), -ENOMEM. */
int pix_brcode(const PixRequest *p, char **ret);

/* name folded to printable ASCII (accents dropped, other characters
 * removed, spaces squeezed) and cut to at most max bytes.  NULL on OOM. */
char *pix_fold(const char *name, size_t max);
