/* SPDX-License-Identifier: MIT */
/*
 * aws-credentials.h — where the daemon's AWS credentials come from, in the
 * order the AWS SDKs and CLI look:
 *   1. the environment: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
 *      AWS_SESSION_TOKEN;
 *   2. the shared credentials file: AWS_SHARED_CREDENTIALS_FILE or
 *      ~/.aws/credentials, profile AWS_PROFILE or "default" (read with
 *      ini.c);
 *   3. the container credentials endpoint (ECS, EKS Pod Identity):
 *      AWS_CONTAINER_CREDENTIALS_RELATIVE_URI on http://169.254.170.2, or
 *      AWS_CONTAINER_CREDENTIALS_FULL_URI, with
 *      AWS_CONTAINER_AUTHORIZATION_TOKEN(_FILE) as Authorization;
 *   4. the EC2 instance role through IMDSv2 (a session token from
 *      PUT /latest/api/token, then /latest/meta-data/iam/security-credentials/
 *      and …/ROLE), unless AWS_EC2_METADATA_DISABLED=true.
 *
 * The first source that has credentials wins; one that is configured but
 * wrong (half a key pair, a profile named in AWS_PROFILE that is missing, a
 * refused container URI, an unreadable AWS_SHARED_CREDENTIALS_FILE) stops
 * the walk with an error rather than falling through to another identity.
 *
 * Two parts.  Pure functions parse each source (environment, file, the
 * endpoints' JSON, expiration times), check the container URL and tell
 * whether credentials are fresh.  The provider (AwsCredentialsProvider)
 * walks the chain once, keeps what it found, asks the network sources
 * asynchronously on the daemon's loop through curl-event (never blocking),
 * and refreshes temporary credentials before they expire (refresh_margin,
 * five minutes by default).  Nothing here logs: failures are returned, with
 * a description from aws_credentials_provider_error() for the caller's log.
 *
 * Security: the environment and the file are the admin's.  The endpoints'
 * responses are untrusted: bounded in size, parsed strictly (JSON types,
 * lengths, no control characters), and the role name is checked before it
 * goes into a URL.  A container full URI must be https or name a loopback
 * or the ECS/EKS link-local address, so the authorization token is never
 * sent to another host in the clear.  Secrets and tokens never appear in
 * return values meant for logs (the INI reader's diagnostics quote lines,
 * so they are dropped, not passed on); AwsCredentials wipe their strings
 * with explicit_bzero() when freed.  Not wiped: the copies inside
 * curl-event's and libcurl's response buffers, jansson's parser and the
 * INI reader's line buffer.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "curl-event.h"
#include "macro.h"
#include "sigv4.h"

#define AWS_IMDS_URL_DEFAULT "http://169.254.169.254"
#define AWS_CONTAINER_URL_DEFAULT "http://169.254.170.2"
#define AWS_CREDENTIALS_REFRESH_MARGIN_USEC_DEFAULT (5 * 60 * USEC_PER_SEC)
#define AWS_CREDENTIALS_TIMEOUT_USEC_DEFAULT (5 * USEC_PER_SEC)
#define AWS_CREDENTIALS_RETRY_USEC_DEFAULT (30 * USEC_PER_SEC)
/* The IMDSv2 session token's lifetime asked for (the maximum, 6 h). */
#define AWS_IMDS_TOKEN_TTL_SECONDS 21600
/* Largest endpoint response read (real ones are under 2 KiB). */
#define AWS_CREDENTIALS_MAX_RESPONSE ((size_t) 64 * 1024)

typedef enum AwsCredentialsSource {
        AWS_CREDENTIALS_ENVIRONMENT,
        AWS_CREDENTIALS_FILE,
        AWS_CREDENTIALS_CONTAINER,
        AWS_CREDENTIALS_IMDS,
        _AWS_CREDENTIALS_SOURCE_MAX,
        _AWS_CREDENTIALS_SOURCE_INVALID = -EINVAL,
} AwsCredentialsSource;

/* "environment", "shared-credentials-file", "container", "imds"; NULL or
 * _AWS_CREDENTIALS_SOURCE_INVALID for anything else. */
const char *aws_credentials_source_to_string(AwsCredentialsSource s);
AwsCredentialsSource aws_credentials_source_from_string(const char *s);

/* A set of credentials.  A value: the strings belong to it. */
typedef struct AwsCredentials {
        char *access_key_id;
        char *secret_access_key;
        char *session_token; /* NULL: long-term keys */
        uint64_t expiration_usec; /* CLOCK_REALTIME; 0: does not expire */
        AwsCredentialsSource source;
} AwsCredentials;

/* Copies the strings.  token may be NULL or "" (none).  Returns 0, -EINVAL
 * (no key id or secret), -ENOMEM. */
int aws_credentials_new(const char *access_key_id, const char *secret_access_key, const char *session_token,
                        uint64_t expiration_usec, AwsCredentialsSource source, AwsCredentials **ret);
/* A deep copy of c, owned by the caller (to keep credentials beyond a
 * handler).  Returns 0, -EINVAL, -ENOMEM. */
int aws_credentials_copy(const AwsCredentials *c, AwsCredentials **ret);
/* Wipes every string, then frees; accepts NULL; returns NULL. */
AwsCredentials *aws_credentials_free(AwsCredentials *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(AwsCredentials *, aws_credentials_free);

/* A view for sigv4_sign(), valid as long as c. */
static inline SigV4Credentials aws_credentials_sigv4(const AwsCredentials *c) {
        return (SigV4Credentials){ c->access_key_id, c->secret_access_key, c->session_token };
}

typedef enum AwsCredentialsFreshness {
        AWS_CREDENTIALS_FRESH, /* use them */
        AWS_CREDENTIALS_REFRESH_DUE, /* still valid, within refresh_margin of the expiration */
        AWS_CREDENTIALS_EXPIRED,
} AwsCredentialsFreshness;

/* Credentials without an expiration are always fresh. */
AwsCredentialsFreshness aws_credentials_freshness(const AwsCredentials *c, uint64_t now_usec,
                                                  uint64_t refresh_margin_usec);

/* ---- the pure part ---------------------------------------------------- */

/* The value of NAME in env ("NAME=value" strings, NULL-terminated; NULL:
 * empty), or NULL.  Points into env. */
const char *aws_env_get(char *const *env, const char *name);

/* Credentials from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
 * AWS_SESSION_TOKEN in env.  Returns 0, -ENOENT (no key id), -EINVAL (a key
 * id without a secret, or a value with control characters), -ENOMEM. */
int aws_credentials_from_env(char *const *env, AwsCredentials **ret);

/* The shared credentials file and profile env names: AWS_SHARED_CREDENTIALS_FILE
 * ("~/" expanded with HOME) or $HOME/.aws/credentials, and AWS_PROFILE or
 * "default".  New strings in *ret_path and *ret_profile; *ret_explicit is
 * true when AWS_PROFILE chose the profile.  Returns 0, -ENOENT (no file
 * named and no HOME), -ENOMEM. */
int aws_credentials_file_location(char *const *env, char **ret_path, char **ret_profile, bool *ret_explicit);

/* Credentials of [profile] in the shared credentials file at path:
 * aws_access_key_id, aws_secret_access_key, aws_session_token (or the older
 * aws_security_token); key names are case-insensitive, later assignments
 * win.  Syntax problems in other lines are skipped, not reported (the
 * reader's messages would quote a line that may hold a secret).  Returns 0,
 * -ENOENT (no such file), -ENOKEY (no such profile, or one without a key
 * id), -EINVAL (a key id without a secret), -ENOMEM, -errno. */
int aws_credentials_from_file(const char *path, const char *profile, AwsCredentials **ret);

/* "2024-03-07T18:00:00Z", also with fractional seconds and a "+hh:mm" or
 * "-hh:mm" offset, into CLOCK_REALTIME microseconds.  -EINVAL. */
int aws_credentials_parse_expiration(const char *s, uint64_t *ret_usec);

/* The JSON the IMDS role and the container endpoints return:
 * {"Code": "Success", "AccessKeyId", "SecretAccessKey", "Token",
 * "Expiration", …} ("Code" only from IMDS, other members ignored).
 * Returns 0, -EBADMSG (not that JSON: a member missing, of the wrong type,
 * empty, too long or with control characters), -EACCES (a Code other than
 * "Success"), -ENOMEM. */
int aws_credentials_parse_json(const char *body, size_t len, AwsCredentialsSource source, AwsCredentials **ret);

/* The role name in the IMDS listing …/iam/security-credentials/: its first
 * line, which must be an IAM role name ([A-Za-z0-9+=,.@_-], 1 to 64).
 * Returns 0 with a new string, -ENOENT (empty: no role attached), -EBADMSG,
 * -ENOMEM. */
int aws_imds_role_parse(const char *body, size_t len, char **ret);

/* The container endpoint from env: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI
 * appended to base_url (NULL: AWS_CONTAINER_URL_DEFAULT), else
 * AWS_CONTAINER_CREDENTIALS_FULL_URI, which must be https or http to a
 * loopback address, 169.254.170.2, 169.254.170.23 or fd00:ec2::23.  The
 * token is AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE's content (read here,
 * trimmed) or AWS_CONTAINER_AUTHORIZATION_TOKEN, NULL without either.
 * Returns 0 with new strings, -ENOENT (neither URI set), -EINVAL (a
 * malformed URI, a token with control characters), -EPERM (a full URI to
 * another host over http), -errno (the token file), -ENOMEM. */
int aws_container_endpoint(char *const *env, const char *base_url, char **ret_url, char **ret_token);

/* ---- the provider ----------------------------------------------------- */

typedef struct AwsCredentialsProvider AwsCredentialsProvider;
typedef struct AwsCredentialsWait AwsCredentialsWait;

typedef struct AwsCredentialsOptions {
        char *const *env; /* "NAME=value", copied; NULL: the process environment at creation */
        const char *imds_url; /* NULL: AWS_IMDS_URL_DEFAULT; tests point it at a fake */
        const char *container_url; /* base for the relative URI; NULL: AWS_CONTAINER_URL_DEFAULT */
        uint64_t refresh_margin_usec; /* 0: AWS_CREDENTIALS_REFRESH_MARGIN_USEC_DEFAULT */
        uint64_t timeout_usec; /* each endpoint request; 0: AWS_CREDENTIALS_TIMEOUT_USEC_DEFAULT */
        uint64_t retry_usec; /* after a failure, before the next attempt; 0: AWS_CREDENTIALS_RETRY_USEC_DEFAULT */
} AwsCredentialsOptions;

/* Called with r == 0 and credentials valid until the handler returns (copy
 * them to keep them), or with r < 0 and NULL:
 *   -ENOKEY        no source has credentials (nothing configured, no role);
 *   -EINVAL        a source is configured wrongly (partial keys, a bad URI);
 *   -ESTALE        an endpoint returned credentials that had expired;
 *   -EBADMSG       an endpoint's answer is malformed;
 *   -EACCES        an endpoint refused (HTTP 401/403, IMDS Code not "Success");
 *   -EIO           another HTTP status;
 *   curl-event's   -ETIMEDOUT, -ECONNREFUSED, …;
 *   -ENOMEM.
 * The handler may free its wait, start other waits, or free the provider. */
typedef void (*AwsCredentialsHandler)(int r, const AwsCredentials *c, void *userdata);

/* A provider on loop e, asking the endpoints through ce (which must
 * outlive it).  Nothing is read before the first get or peek.  Returns 0,
 * -EINVAL, -ENOMEM. */
int aws_credentials_provider_new(sd_event *e, CurlEvent *ce, const AwsCredentialsOptions *o,
                                 AwsCredentialsProvider **ret);

/* Cancels everything in flight without calling handlers.  Waits the
 * caller still holds stay valid until freed.  Safe from a handler.
 * Returns NULL. */
AwsCredentialsProvider *aws_credentials_provider_free(AwsCredentialsProvider *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(AwsCredentialsProvider *, aws_credentials_provider_free);

/* Ask for credentials; handler is called from the loop, never from inside
 * this call: at once with cached credentials that are still valid, else
 * when a fetch ends, or with the last error while the retry wait after a
 * failure lasts.  With ret == NULL the wait belongs to the provider;
 * otherwise the caller frees it with aws_credentials_wait_free() (before
 * the handler ran: cancelled).  Returns 0, -EINVAL, -ENOMEM. */
int aws_credentials_provider_get(AwsCredentialsProvider *p, AwsCredentialsHandler handler, void *userdata,
                                 AwsCredentialsWait **ret);

/* Accepts NULL; returns NULL. */
AwsCredentialsWait *aws_credentials_wait_free(AwsCredentialsWait *w);
DEFINE_TRIVIAL_CLEANUP_FUNC(AwsCredentialsWait *, aws_credentials_wait_free);

/* The cached credentials if they are still valid, without waiting: 0 and
 * *ret (owned by p, valid until the loop runs again).  Otherwise a fetch is
 * started if none is running and the retry wait is over, and -EAGAIN is
 * returned — or the last error while the retry wait lasts. */
int aws_credentials_provider_peek(AwsCredentialsProvider *p, const AwsCredentials **ret);

/* Forget the cached credentials and the chosen source (after AWS answered
 * ExpiredToken or InvalidClientTokenId, or on reload): the next get walks
 * the chain again.  A fetch in flight is cancelled; its waiters stay and
 * are served by the next fetch, started here if there are any. */
void aws_credentials_provider_invalidate(AwsCredentialsProvider *p);

/* What went wrong last ("IMDS PUT /latest/api/token: HTTP 403"), never
 * holding a secret; NULL when the last fetch succeeded.  Owned by p. */
const char *aws_credentials_provider_error(const AwsCredentialsProvider *p);

/* Where the cached credentials came from, or _AWS_CREDENTIALS_SOURCE_INVALID. */
AwsCredentialsSource aws_credentials_provider_source(const AwsCredentialsProvider *p);
