/* SPDX-License-Identifier: MIT */
/*
 * aws-request.h — one signed AWS API call on the loop: SigV4-sign a POST
 * (sigv4.c) and send it through curl-event.  Shared by the AWS clients
 * (SNS Publish, End User Messaging, and the ones to come) so that signing
 * and sending is written once.
 *
 * Security: the credentials are only used to sign; nothing here logs.
 */
#pragma once

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
