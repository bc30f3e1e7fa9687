/* SPDX-License-Identifier: MIT */
/*
 * sigv4.h — AWS Signature Version 4 for the requests the daemon sends to
 * SNS, Step Functions, Bedrock and End User Messaging SMS: the canonical
 * request, the string to sign, the signing key derived from the secret, and
 * the headers to add to the request (Authorization, X-Amz-Date,
 * X-Amz-Security-Token, optionally X-Amz-Content-Sha256) as "Name: value"
 * lines ready for CurlRequest.headers.
 *
 * Our own rather than libcurl's CURLOPT_AWS_SIGV4: libcurl 7.88 puts the
 * request path into the canonical request as it is sent, without the second
 * URI encoding that every AWS service but S3 applies, so the path of every
 * Bedrock call (the model id "…-v1:0" is sent as "…-v1%3A0") is signed
 * wrongly.  doc/internals/sigv4.md has the rules and the differences.
 *
 * Pure: no I/O, no clock (the time is a parameter), no logging.  Hashing and
 * HMAC are OpenSSL's.
 *
 * Security: the inputs are the daemon's own (the path, headers and body it
 * built; credentials from aws-credentials.h), but header values may quote
 * customer text, so every field is checked and a bad one refused with
 * -EINVAL rather than signed.  The secret access key is used only to derive
 * the signing key; every buffer holding the secret or a derived key is wiped
 * before it is freed.  The canonical request contains the session token
 * when one is signed: log it only through sigv4_signature_debug_string(),
 * which redacts it.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"

#define SIGV4_ALGORITHM "AWS4-HMAC-SHA256"
/* The payload hash to sign when the body is not hashed (S3 over TLS). */
#define SIGV4_UNSIGNED_PAYLOAD "UNSIGNED-PAYLOAD"

/* One request header.  name is an HTTP token; value is as it will be sent
 * (the signer trims it).  A value with line breaks is a folded header: its
 * lines are trimmed and joined with ',' as the AWS test suite does (such a
 * header cannot be sent through curl-event, which refuses line breaks). */
typedef struct SigV4Header {
        const char *name;
        const char *value;
} SigV4Header;

/* Borrowed for the duration of sigv4_sign(). */
typedef struct SigV4Credentials {
        const char *access_key_id;
        const char *secret_access_key;
        const char *session_token; /* NULL or "": long-term keys, no X-Amz-Security-Token */
} SigV4Credentials;

typedef enum SigV4Flags {
        /* Add X-Amz-Content-Sha256 (the payload hash) and sign it; S3 wants
         * it, the JSON and Query services do not. */
        SIGV4_CONTENT_SHA256 = 1 << 0,
        /* Add X-Amz-Security-Token without signing it (the test suite's
         * post-sts-header-after; no service the daemon calls needs this). */
        SIGV4_TOKEN_UNSIGNED = 1 << 1,
} SigV4Flags;

typedef struct SigV4Request {
        const char *method; /* "GET", "POST", …: upper-case letters */
        /* The path exactly as it goes on the request line, already
         * URI-encoded once ("/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse"),
         * without the query.  NULL or "": "/".  For every service but "s3"
         * it is normalised (dot segments and empty segments removed) and
         * each segment URI-encoded again: "%3A" is signed as "%253A". */
        const char *path;
        /* The query string as sent, without '?'; NULL or "": none.  Each
         * name and value is percent-decoded and encoded again with the AWS
         * unreserved set, so "a=%7e" and "a=~" sign alike.  '+' is a plus
         * sign, not a space: encode spaces as %20. */
        const char *query;
        /* Every header that will be sent and signed; Host is required.  Not
         * allowed: Authorization, X-Amz-Date, X-Amz-Security-Token,
         * X-Amz-Content-Sha256 (the signer adds those). */
        const SigV4Header *headers;
        size_t n_headers;
        const void *body; /* NULL with body_len 0: no body */
        size_t body_len;
        /* NULL: the SHA-256 of body.  Otherwise 64 lower-case hex digits or
         * SIGV4_UNSIGNED_PAYLOAD, signed as given and body ignored. */
        const char *payload_hash;
        const char *region; /* "us-east-1" */
        /* The signing name of the service: "sns", "states", "bedrock",
         * "sms-voice"; "s3" selects S3's URI rules (no normalisation, one
         * encoding). */
        const char *service;
        unsigned flags; /* SigV4Flags */
} SigV4Request;

typedef struct SigV4Signature SigV4Signature;

/* Sign req with creds at now_usec (CLOCK_REALTIME, microseconds since the
 * epoch; X-Amz-Date has whole seconds).  On success *ret is a new signature
 * owned by the caller (sigv4_signature_free()).  Returns 0, -EINVAL (a field
 * is missing or malformed, Host is missing, a header the signer adds is
 * already there), -ERANGE (now_usec is not a four-digit year), -ENOMEM, -EIO
 * (OpenSSL failed). */
int sigv4_sign(const SigV4Request *req, const SigV4Credentials *creds, uint64_t now_usec, SigV4Signature **ret);

/* Wipes and frees; accepts NULL; returns NULL. */
SigV4Signature *sigv4_signature_free(SigV4Signature *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(SigV4Signature *, sigv4_signature_free);

/* The headers to add to the request, "Name: value", NULL-terminated:
 * X-Amz-Date, X-Amz-Security-Token (with a session token),
 * X-Amz-Content-Sha256 (with SIGV4_CONTENT_SHA256), Authorization.  Owned
 * by s. */
char *const *sigv4_signature_headers(const SigV4Signature *s);

/* Every header of the request in order, "Name: value" as given in
 * SigV4Request.headers, followed by sigv4_signature_headers(): what goes
 * into CurlRequest.headers.  Owned by s. */
char *const *sigv4_signature_all_headers(const SigV4Signature *s);

/* The value of the Authorization header.  Owned by s. */
const char *sigv4_signature_authorization(const SigV4Signature *s);

/* The intermediate products, for tests: the canonical request and the
 * string to sign, byte for byte as hashed and signed.  The canonical
 * request may hold the session token.  Owned by s. */
const char *sigv4_signature_canonical_request(const SigV4Signature *s);
const char *sigv4_signature_string_to_sign(const SigV4Signature *s);

/* "CanonicalRequest:\n…\nStringToSign:\n…" with the session token replaced
 * by "<redacted>", for a debug log.  A new string owned by the caller, or
 * NULL on OOM. */
char *sigv4_signature_debug_string(const SigV4Signature *s);

/* The building blocks, exported for tests.  Each returns 0 with a new
 * string in *ret, -EINVAL or -ENOMEM. */

/* The canonical URI of path (as sent): for other services normalised and
 * each segment encoded again, for S3 (s3 == true) decoded and encoded once,
 * not normalised.  -EINVAL: path does not start with '/', holds a control
 * character or '?' (or, for S3, a malformed %-escape). */
int sigv4_canonical_uri(const char *path, bool s3, char **ret);

/* The canonical query string of query (as sent, without '?'): parameters
 * decoded, encoded, sorted by name then value, "name=value" joined by '&'.
 * -EINVAL: a malformed %-escape or a control character. */
int sigv4_canonical_query(const char *query, char **ret);

/* URI-encode n bytes: everything but A-Z a-z 0-9 - _ . ~ (and '/' when
 * keep_slash) becomes %XX with upper-case hex digits. */
int sigv4_uri_encode(const void *p, size_t n, bool keep_slash, char **ret);
