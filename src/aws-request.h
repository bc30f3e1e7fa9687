/* SPDX-License-Identifier: MIT */
/*
 * aws-request.h — one signed AWS API call on the loop: SigV4-sign a POST
 * (sigv4.c) and send it through curl-event, with credentials given or
 * asked of the daemon's AwsCredentialsProvider at each call.  Shared by
 * the AWS clients (SNS Publish, End User Messaging, Bedrock) so that
 * getting credentials, signing and sending is written once.
 *
 * Security: the credentials are only used to sign; nothing here logs.
 */
#pragma once

#include <stdbool.h>

#include "aws-credentials.h"
#include "curl-event.h"
#include "sigv4.h"

typedef struct AwsPost {
        const char *url; /* where it goes */
        const char *host; /* Host header (aws_url_split()) */
        const char *path; /* request path as sent */
        const SigV4Header *headers; /* besides Host: Content-Type, X-Amz-Target … */
        size_t n_headers;
        const char *body;
        const char *region, *service;
        const AwsCredentials *credentials;
        size_t max_response_body;
        const char *ca_file;
        char *const *connect_to;
} AwsPost;

/* Sign and start p; handler as curl_event_request(), which owns the transfer
 * in *ret.  -EINVAL when the request cannot be signed (it never will be),
 * -ENOMEM, or curl_event_request()'s error. */
int aws_post(CurlEvent *curl, const AwsPost *p, uint64_t now_usec, CurlEventHandler handler, void *userdata,
             CurlTransfer **ret);

/* Split "http(s)://HOST[:PORT]/PATH" into the Host header and the path
 * ("/" when none).  -EINVAL for anything else, -ENOMEM. */
int aws_url_split(const char *url, char **ret_host, char **ret_path);

typedef struct AwsCall AwsCall;

/* How an AwsCall ended: as CurlEventHandler (result is the HTTP status or
 * curl-event's -errno, resp what arrived), or, with no_credentials, the
 * provider's error in result (see AwsCredentialsHandler) and resp NULL.
 * The handler may free the call. */
typedef void (*AwsCallHandler)(int result, const CurlResponse *resp, bool no_credentials, void *userdata);

/* aws_post() of p (copied, p->credentials ignored when provider is set)
 * with credentials asked of provider first, so that temporary ones are
 * refreshed; with provider NULL, p->credentials are used at once.  A 403
 * naming ExpiredToken, InvalidClientTokenId or UnrecognizedClient
 * invalidates the provider before the handler runs.  handler is called
 * once, from the loop, unless *ret is freed first.  Returns 0, -EINVAL
 * (neither provider nor p->credentials; with provider NULL, p cannot be
 * signed), -ENOMEM. */
int aws_call(CurlEvent *curl, AwsCredentialsProvider *provider, const AwsPost *p, AwsCallHandler handler,
             void *userdata, AwsCall **ret);

/* Cancels a call in flight (its handler is not called).  Accepts NULL;
 * returns NULL. */
AwsCall *aws_call_free(AwsCall *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(AwsCall *, aws_call_free);
