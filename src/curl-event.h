/* SPDX-License-Identifier: MIT */
/*
 * curl-event.h — a small HTTP client for the daemon's loop: libcurl's
 * multi-socket API driven from sd-event, so that no request ever blocks the
 * loop.  Every AWS client (SNS Publish, Step Functions, Bedrock, the SNS
 * signing-certificate download) sends its requests through one CurlEvent.
 *
 * A request is described by a CurlRequest (copied; the caller's buffers may
 * go away at once) and ends in exactly one call of its handler, unless it is
 * cancelled first.  Only http and https are allowed, redirects are not
 * followed (a 3xx is returned as such), TLS peers and host names are
 * verified, every request has a total and a connect timeout and a cap on the
 * response body.  Name resolution uses libcurl's threaded resolver, which
 * does not block the loop either.
 *
 * The daemon calls curl_global_init(CURL_GLOBAL_DEFAULT) once at start,
 * before any thread exists.
 *
 * Fetching an SNS signing certificate is composed by the caller:
 *   sns_signing_cert_url_check(url) → sns_cert_cache_load() → on -ENOENT,
 *   curl_event_request(GET url, max_response_body = SNS_CERT_MAX_SIZE) →
 *   on 200, sns_cert_cache_store(body) → sns_message_verify().
 *
 * Security: response status, headers and body come from the network and
 * are untrusted: the body is capped (max_response_body), the headers are
 * capped in number and size (CURL_EVENT_MAX_HEADERS,
 * CURL_EVENT_MAX_HEADER_BYTES); the callee parses them.  URLs are the
 * caller's; only http/https are ever fetched, and https is verified against
 * the system's CA store (or ca_file).
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "macro.h"

#define CURL_EVENT_TIMEOUT_USEC_DEFAULT (30 * USEC_PER_SEC)
#define CURL_EVENT_CONNECT_TIMEOUT_USEC_DEFAULT (10 * USEC_PER_SEC)
#define CURL_EVENT_MAX_RESPONSE_BODY_DEFAULT ((size_t) 1024 * 1024)
/* Response headers kept per response, and their total size. */
#define CURL_EVENT_MAX_HEADERS 128
#define CURL_EVENT_MAX_HEADER_BYTES ((size_t) 32 * 1024)

typedef struct CurlEvent CurlEvent;
typedef struct CurlTransfer CurlTransfer;

typedef struct CurlRequest {
        const char *method; /* "GET" when NULL; "HEAD", "POST", "PUT", … */
        const char *url; /* http:// or https:// */
        char *const *headers; /* "Name: value" lines, NULL-terminated; may be NULL */
        const void *body; /* request body, copied; NULL: none */
        size_t body_len;
        uint64_t timeout_usec; /* whole request; 0: CURL_EVENT_TIMEOUT_USEC_DEFAULT */
        uint64_t connect_timeout_usec; /* 0: CURL_EVENT_CONNECT_TIMEOUT_USEC_DEFAULT */
        size_t max_response_body; /* 0: CURL_EVENT_MAX_RESPONSE_BODY_DEFAULT */
        const char *ca_file; /* CA bundle for https; NULL: the system's */
        /* "HOST:PORT:CONNECT-TO-HOST:CONNECT-TO-PORT" entries, as curl's
         * --connect-to: connect elsewhere than the URL says while TLS still
         * checks the URL's host name (VPC endpoints, test servers). */
        char *const *connect_to;
} CurlRequest;

typedef struct CurlResponse {
        long status; /* HTTP status code; 0 when none arrived */
        char *const *headers; /* "Name: value" of the final response, NULL-terminated */
        const char *body; /* NUL-terminated (the body may hold NULs too); "" when empty */
        size_t body_len;
        const char *error; /* libcurl's message when the request failed, else "" */
} CurlResponse;

/* Called once per request that was not cancelled.  result is the HTTP
 * status code (100..599) or a negative errno:
 *   -ETIMEDOUT     the total or the connect timeout passed;
 *   -ECONNREFUSED  nobody listens (or another connect() errno, as reported);
 *   -EHOSTUNREACH  the host name does not resolve;
 *   -EMSGSIZE      the response body is larger than max_response_body, or
 *                  the headers larger than the header caps;
 *   -EPERM         the TLS peer's certificate or name did not verify;
 *   -EPROTO        another TLS failure;
 *   -ECONNRESET    the connection broke or closed without a response;
 *   -EBADMSG       the server's response is not HTTP;
 *   -EINVAL        the URL is malformed or its scheme is not http/https;
 *   -ENOMEM, -EIO  anything else.
 * resp and everything it points to belong to the module and are valid until
 * the handler returns; on a negative result, status/headers/body hold what
 * had arrived.  The handler may start new requests, free other transfers,
 * its own transfer, or the whole CurlEvent. */
typedef void (*CurlEventHandler)(int result, const CurlResponse *resp, void *userdata);

/* A client on loop e (referenced).  Returns 0 or -ENOMEM/-errno. */
int curl_event_new(sd_event *e, CurlEvent **ret);

/* Cancel every request in flight without calling their handlers and free
 * the client.  Transfers the caller still holds stay valid until freed with
 * curl_event_transfer_free().  Safe from inside a handler.  Returns NULL. */
CurlEvent *curl_event_free(CurlEvent *ce);
DEFINE_TRIVIAL_CLEANUP_FUNC(CurlEvent *, curl_event_free);

/* Start a request; handler(result, resp, userdata) is called later from
 * the loop, never from inside this call.  With ret == NULL the transfer
 * belongs to the client and is freed after its handler ran; otherwise the
 * caller owns it in *ret and frees it with curl_event_transfer_free() —
 * before the handler ran (cancelling it) or after.  Returns 0, -EINVAL (no
 * URL, bad method or header line), -ENOMEM. */
int curl_event_request(CurlEvent *ce, const CurlRequest *req, CurlEventHandler handler, void *userdata,
                       CurlTransfer **ret);

/* Free a transfer; a request still in flight is cancelled and its handler
 * is not called.  Returns NULL. */
CurlTransfer *curl_event_transfer_free(CurlTransfer *t);
DEFINE_TRIVIAL_CLEANUP_FUNC(CurlTransfer *, curl_event_transfer_free);

/* Requests in flight (started, not yet finished or cancelled). */
unsigned curl_event_n_pending(const CurlEvent *ce);

/* The value of the first response header called name (case-insensitive),
 * without leading white space, or NULL.  Points into resp. */
const char *curl_event_response_header(const CurlResponse *resp, const char *name);
