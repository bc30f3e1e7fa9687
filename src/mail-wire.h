/* SPDX-License-Identifier: MIT */
/*
 * mail-wire.h — what the daemon and its mail parser process say to each
 * other over their socket (see mail-parser.h): one request, one answer, in
 * order.  Every message is a frame: a 4-byte big-endian length, then that
 * many bytes.
 *
 *   request body: a 4-byte big-endian length, then that many bytes of a
 *                 JSON object with the MailParseOptions (limits, envelope
 *                 sender, own addresses, trusted authserv-ids), then the
 *                 raw message, all the rest of the body;
 *   answer body:  a JSON object, {"r": -errno} or {"r": 0, ...} with every
 *                 field of the MailContent.
 *
 * Pure functions, no I/O, no logging; every allocation through mem_*()
 * (jansson's too) so that the OOM loop can fail each in turn.
 *
 * Security: each side reads what the other wrote, and neither trusts it.
 * The parser process holds untrusted mail and may be subverted by it, so
 * an answer is checked as input: bounded in size (MAIL_WIRE_ANSWER_MAX),
 * every field of the right type, names from the tables, lists no longer
 * than mail.c makes them, strings UTF-8 without NUL (jansson), the error
 * one that mail_parse() can return.  A request is bounded by what the
 * daemon allows (MAIL_WIRE_REQUEST_MAX).
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "mail.h"

/* The length prefix of a frame, and of the options inside a request. */
#define MAIL_WIRE_LENGTH_SIZE 4U
/* Largest options object of a request: mail.addresses is one INI line. */
#define MAIL_WIRE_OPTIONS_MAX ((size_t) 256 * 1024)
/* Largest message in a request: the largest mail.max_size. */
#define MAIL_WIRE_RAW_MAX ((size_t) 64 * 1024 * 1024)
/* Largest request body: options and message. */
#define MAIL_WIRE_REQUEST_MAX (MAIL_WIRE_LENGTH_SIZE + MAIL_WIRE_OPTIONS_MAX + MAIL_WIRE_RAW_MAX)
/* Largest answer body.  What mail_parse() returns is bounded (64 To
 * addresses, 32 References, the text at max_text, of at most 8K unless
 * asked for more) to well under this, even with every byte escaped. */
#define MAIL_WIRE_ANSWER_MAX ((size_t) 256 * 1024)

/* A request as the parser process reads it. */
typedef struct MailWireRequest {
        MailParseOptions options; /* its strings belong to the request */
        const void *raw; /* the message: points into the body given to decode */
        size_t raw_len;
        char *sender_storage;
        char **own_storage;
        char **trusted_storage;
} MailWireRequest;

/* The length in a frame's (or the options') 4-byte prefix at p. */
size_t mail_wire_length_get(const void *p);

/* Write n as a 4-byte prefix at p.  n must be at most UINT32_MAX. */
void mail_wire_length_put(void *p, size_t n);

/* A whole request frame, prefix included, for the len bytes at raw parsed
 * with o: 0 and a new buffer (free()) in *ret of *ret_len bytes; -EFBIG
 * when len is over MAIL_WIRE_RAW_MAX or the options over
 * MAIL_WIRE_OPTIONS_MAX; -EINVAL when a string of o is not UTF-8; -ENOMEM. */
int mail_wire_request_encode(const MailParseOptions *o, const void *raw, size_t len, char **ret, size_t *ret_len);

/* Read the body (without the frame's prefix) of a request of n bytes:
 * 0 and *ret (release it with mail_wire_request_done(); its raw points
 * into body, which must outlive it); -EBADMSG when it is not a request;
 * -ENOMEM.  *ret is written only on success. */
int mail_wire_request_decode(const void *body, size_t n, MailWireRequest *ret);

/* Free what mail_wire_request_decode() allocated in r and clear it. */
void mail_wire_request_done(MailWireRequest *r);

/* A whole answer frame, prefix included: error < 0 (one of the errors of
 * mail_parse()), or 0 and m.  0 and a new buffer (free()) in *ret of
 * *ret_len bytes; -EFBIG when it would exceed MAIL_WIRE_ANSWER_MAX (which
 * no MailContent of mail_parse() does); -EINVAL for an error mail_parse()
 * does not return, a missing m, or a string that is not UTF-8; -ENOMEM. */
int mail_wire_answer_encode(int error, const MailContent *m, char **ret, size_t *ret_len);

/* Read the body (without the frame's prefix) of an answer of n bytes.
 * Returns what the parser process answered: 0 and a new MailContent in
 * *ret (mail_content_free()), or its error (-EFBIG, -E2BIG, -EBADMSG,
 * -EINVAL, -ENOMEM); -EPROTO when the answer is malformed or breaks a
 * promise of mail_parse() (then nothing it said can be believed); -ENOMEM
 * when we run out of memory reading it.  *ret is written only on success. */
int mail_wire_answer_decode(const void *body, size_t n, MailContent **ret);
