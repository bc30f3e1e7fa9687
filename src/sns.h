/* SPDX-License-Identifier: MIT */
/*
 * sns.h — Amazon SNS HTTP(S) messages: parse the JSON envelope of a
 * Notification, SubscriptionConfirmation or UnsubscribeConfirmation, build
 * the exact string AWS signed, check the signing-certificate and subscribe
 * URLs, verify the RSA signature (SignatureVersion 1 = SHA1withRSA, 2 =
 * SHA256withRSA) against a PEM certificate, and keep downloaded
 * certificates in a cache directory keyed by the SHA-256 of their URL.
 *
 * Pure functions: no daemon state, no network, no logging.  The only I/O is
 * reading and writing files in the certificate cache directory.  Fetching a
 * certificate is the caller's job (curl-event.h): check the URL with
 * sns_signing_cert_url_check(), try sns_cert_cache_load(), otherwise GET the
 * URL and hand the body to sns_cert_cache_store(), then sns_message_verify().
 *
 * Trust: a certificate is trusted because its URL names an SNS host
 * (https://sns.<region>.amazonaws.com[.cn]/….pem, checked here) and it was
 * downloaded over HTTPS with the system's CA store verifying the server.  The
 * certificate itself is NOT chain-verified to a CA: the .pem that SNS serves
 * holds the leaf only (its "Amazon" intermediates are not included and rotate),
 * so a chain check would need a bundled, maintained intermediate set and
 * would add nothing an attacker who cannot serve files from an SNS host
 * could defeat.  Its validity period is checked (at a caller-given time).
 *
 * Security: everything here handles untrusted input — the HTTP body of
 * POST /webhooks/sns and the URLs inside it.  The body is bounded in size
 * (SNS_MESSAGE_MAX_SIZE) and JSON depth (SNS_MESSAGE_MAX_DEPTH), duplicate
 * keys are refused, every field is type-checked.  Nothing in a message is
 * trusted before sns_message_verify() returned SNS_VERIFY_OK, and even then
 * only if the TopicArn is allowed (sns_topic_allowed()) and the timestamp is
 * recent (sns_timestamp_check()).
 */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"

/* Largest body parsed; the HTTP layer caps webhooks at the same size. */
#define SNS_MESSAGE_MAX_SIZE ((size_t) 256 * 1024)
/* Deepest JSON nesting accepted (the envelope itself is one object of
 * strings; some room is left for fields AWS may add). */
#define SNS_MESSAGE_MAX_DEPTH 8
/* Largest signing certificate file accepted (real ones are about 2 KiB). */
#define SNS_CERT_MAX_SIZE ((size_t) 64 * 1024)
/* Longest SigningCertURL / SubscribeURL accepted. */
#define SNS_URL_MAX_LENGTH 4096

/* Defaults for the config keys sns.min_signature_version and the
 * timestamp window. */
#define SNS_MIN_SIGNATURE_VERSION_DEFAULT 1U
#define SNS_TIMESTAMP_MAX_AGE_USEC_DEFAULT (65 * 60 * USEC_PER_SEC)
#define SNS_TIMESTAMP_MAX_AHEAD_USEC_DEFAULT (5 * 60 * USEC_PER_SEC)

typedef enum SnsMessageType {
        SNS_MESSAGE_NOTIFICATION,
        SNS_MESSAGE_SUBSCRIPTION_CONFIRMATION,
        SNS_MESSAGE_UNSUBSCRIBE_CONFIRMATION,
        _SNS_MESSAGE_TYPE_MAX,
        _SNS_MESSAGE_TYPE_INVALID = -EINVAL,
} SnsMessageType;

/* "Notification", "SubscriptionConfirmation", "UnsubscribeConfirmation";
 * NULL / _SNS_MESSAGE_TYPE_INVALID for anything else. */
const char *sns_message_type_to_string(SnsMessageType t);
SnsMessageType sns_message_type_from_string(const char *s);

/* The envelope fields we know.  Unknown keys in a message are ignored. */
typedef enum SnsField {
        SNS_FIELD_TYPE,
        SNS_FIELD_MESSAGE_ID,
        SNS_FIELD_TOPIC_ARN,
        SNS_FIELD_SUBJECT,
        SNS_FIELD_MESSAGE,
        SNS_FIELD_TIMESTAMP,
        SNS_FIELD_SIGNATURE_VERSION,
        SNS_FIELD_SIGNATURE,
        SNS_FIELD_SIGNING_CERT_URL, /* also spelled SigningCertUrl (Lambda events) */
        SNS_FIELD_SUBSCRIBE_URL,
        SNS_FIELD_TOKEN,
        SNS_FIELD_UNSUBSCRIBE_URL, /* also spelled UnsubscribeUrl (Lambda events) */
        _SNS_FIELD_MAX,
        _SNS_FIELD_INVALID = -EINVAL,
} SnsField;

/* The JSON key of a field as AWS spells it in HTTP deliveries ("MessageId"). */
const char *sns_field_to_string(SnsField f);

typedef struct SnsMessage SnsMessage;

/* Parse an HTTP body as an SNS envelope.  Returns 0 and a new message in
 * *ret (caller frees with sns_message_free()), or:
 *   -EBADMSG          not a valid envelope: malformed JSON, duplicate key,
 *                     nesting deeper than SNS_MESSAGE_MAX_DEPTH, unknown
 *                     Type, a required field missing or not a string, a bad
 *                     Timestamp;
 *   -EPROTONOSUPPORT  raw message delivery: the body is not an SNS envelope
 *                     at all (plain text, or JSON without Type and
 *                     Signature) — the subscription has RawMessageDelivery
 *                     enabled and such a body cannot be verified;
 *   -EMSGSIZE         body larger than SNS_MESSAGE_MAX_SIZE;
 *   -ENOMEM.
 * On every error but -ENOMEM, *ret_reason (if not NULL) is set to a short
 * static string saying why ("missing MessageId", "Subject is not a string").
 * Subject may be absent or JSON null (then it is treated as absent). */
int sns_message_parse(const char *body, size_t len, SnsMessage **ret, const char **ret_reason);

SnsMessage *sns_message_free(SnsMessage *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(SnsMessage *, sns_message_free);

SnsMessageType sns_message_get_type(const SnsMessage *m);

/* The value of a field, or NULL when the message does not have it.  The
 * string belongs to the message. */
const char *sns_message_get(const SnsMessage *m, SnsField f);

/* Timestamp in microseconds since the epoch (UTC). */
uint64_t sns_message_get_timestamp(const SnsMessage *m);

/* The string to sign, per the AWS documentation: "Key\nValue\n" for each of
 * Message, MessageId, Subject (Notification only, when present), SubscribeURL
 * (confirmations only), Timestamp, Token (confirmations only), TopicArn,
 * Type, in that (byte-sorted) order.  Returns 0 and a new NUL-terminated
 * string in *ret (caller frees) and its length in *ret_len (may be NULL), or
 * -ENOMEM. */
int sns_message_string_to_sign(const SnsMessage *m, char **ret, size_t *ret_len);

/* Parse "2022-07-28T22:19:51.853Z" (UTC, 'Z' required, 0 to 9 fraction
 * digits, years 1970..9999) into microseconds since the epoch; fraction digits
 * past microseconds are dropped.  Independent of the local time zone.
 * Returns 0 or -EINVAL. */
int sns_parse_timestamp(const char *s, uint64_t *ret_usec);

/* URL checks (libcurl's URL parser, see sns.c).  A URL is accepted when it is
 * https, has no user, password, login options or port, its host matches
 * ^sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$ (lower case only: AWS always sends
 * lower case, and the cache is keyed by the exact string), and it is in
 * canonical form (libcurl re-serialises it byte for byte: no percent-encoded
 * host, no "..", no "https:/host").  The signing-certificate URL must also
 * have a path ending in ".pem" and no query or fragment.  Return 0, or
 * -EPERM with a short static reason in *ret_reason (may be NULL); -ENOMEM. */
int sns_signing_cert_url_check(const char *url, const char **ret_reason);
int sns_subscribe_url_check(const char *url, const char **ret_reason);

/* Outcome of a check on a message; not an error. */
typedef enum SnsVerifyResult {
        SNS_VERIFY_OK,
        SNS_VERIFY_BAD_SIGNATURE, /* does not verify with the certificate's key */
        SNS_VERIFY_MALFORMED_SIGNATURE, /* Signature is not base64 */
        SNS_VERIFY_UNKNOWN_VERSION, /* SignatureVersion neither "1" nor "2" */
        SNS_VERIFY_UNSUPPORTED_VERSION, /* below the configured minimum */
        SNS_VERIFY_BAD_CERT_URL, /* SigningCertURL fails sns_signing_cert_url_check() */
        SNS_VERIFY_BAD_CERT, /* not an X.509 PEM, or its key is not RSA */
        SNS_VERIFY_CERT_EXPIRED, /* notAfter at or before the check time */
        SNS_VERIFY_CERT_NOT_YET_VALID, /* notBefore after the check time */
        SNS_VERIFY_TIMESTAMP_TOO_OLD, /* from sns_timestamp_check() */
        SNS_VERIFY_TIMESTAMP_IN_FUTURE, /* from sns_timestamp_check() */
        _SNS_VERIFY_RESULT_MAX,
        _SNS_VERIFY_RESULT_INVALID = -EINVAL,
} SnsVerifyResult;

/* "ok", "bad-signature", "cert-expired", …; NULL when out of range. */
const char *sns_verify_result_to_string(SnsVerifyResult r);
SnsVerifyResult sns_verify_result_from_string(const char *s);

/* A parsed signing certificate, kept so that each message does not parse
 * the PEM again.  sns_cert_parse() takes the first certificate of pem:
 * 0 and a new SnsCert with one reference, -EBADMSG when there is none,
 * -ENOMEM.  References may be taken and dropped from any thread, and a
 * certificate verifies from several threads at once. */
typedef struct SnsCert SnsCert;
int sns_cert_parse(const char *pem, size_t pem_len, SnsCert **ret);
SnsCert *sns_cert_ref(SnsCert *c);
SnsCert *sns_cert_unref(SnsCert *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(SnsCert *, sns_cert_unref);

/* Verify the message's signature with the certificate in pem (pem_len
 * bytes, need not be NUL-terminated).  The SigningCertURL is checked again,
 * the SignatureVersion must be known and at least min_signature_version
 * (1 or 2; 0 means 1), and the certificate must be valid at check_time_usec
 * (microseconds since the epoch; the caller passes the current time, tests a
 * fixed one).  Returns 0 and the outcome in *ret_result, or -ENOMEM. */
int sns_message_verify(const SnsMessage *m, const char *pem, size_t pem_len, unsigned min_signature_version,
                       uint64_t check_time_usec, SnsVerifyResult *ret_result);

/* The same with a parsed certificate (cert NULL: unusable, the outcome
 * sns_message_verify() gives a PEM that does not parse). */
int sns_message_verify_cert(const SnsMessage *m, const SnsCert *cert, unsigned min_signature_version,
                            uint64_t check_time_usec, SnsVerifyResult *ret_result);

/* Whether a message time stamp lies in [now - max_age, now + max_ahead].
 * SNS keeps the original Timestamp on retries, so max_age bounds how late a
 * retried delivery may still be accepted.  Returns SNS_VERIFY_OK,
 * SNS_VERIFY_TIMESTAMP_TOO_OLD or SNS_VERIFY_TIMESTAMP_IN_FUTURE. */
SnsVerifyResult sns_timestamp_check(uint64_t timestamp_usec, uint64_t now_usec, uint64_t max_age_usec,
                                    uint64_t max_ahead_usec);

/* Whether topic_arn is one of allowed (exact, case-sensitive match).  A NULL
 * or empty list allows nothing. */
bool sns_topic_allowed(char *const *allowed, const char *topic_arn);

/* "dir/<SHA-256 of url, lower-case hex>.pem" in a new string (caller
 * frees).  The hash is of the exact URL bytes.  Returns 0, -EINVAL (empty
 * dir or url), -ENOMEM. */
int sns_cert_cache_path(const char *dir, const char *url, char **ret);

/* Read the cached certificate for url.  Returns 0 and a new NUL-terminated
 * buffer in *ret_pem (caller frees) with its length in *ret_len (may be
 * NULL); -ENOENT when not cached; -EFBIG when larger than
 * SNS_CERT_MAX_SIZE; -EBADF when not a regular file; other -errno from
 * open/read.  The content is not checked: sns_message_verify() does. */
int sns_cert_cache_load(const char *dir, const char *url, char **ret_pem, size_t *ret_len);

/* Store a downloaded certificate for url: checks that pem begins with an
 * X.509 certificate in PEM form (-EBADMSG otherwise; -EFBIG when larger than
 * SNS_CERT_MAX_SIZE), writes it to a temporary file in dir, fsyncs it and
 * renames it over the cache entry, so a reader sees the old file or the new
 * one, never a part.  Returns 0 or -errno.  The URL is not checked here
 * (tests seed the cache for AWS URLs they do not serve); the caller checks
 * it before downloading. */
int sns_cert_cache_store(const char *dir, const char *url, const char *pem, size_t pem_len);
