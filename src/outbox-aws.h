/* SPDX-License-Identifier: MIT */
/*
 * outbox-aws.h — what the SMS transports that speak to an AWS API share:
 * the endpoint (region, URL, or a VPC or test endpoint), the credentials
 * (a provider, or fixed ones), the signed POST on the loop's CurlEvent,
 * and the sends in flight.  Each API is one OutboxAwsApi row: its signing
 * name, headers, request body and the reading of its answer
 * (outbox-sns.c: SNS Publish; outbox-eum.c: End User Messaging
 * SendTextMessage).
 *
 * Security: the recipient and body come from the daemon; the answer is
 * untrusted and read by the API's parse(), bounded by max_response.
 */
#pragma once

#include <stddef.h>

#include "aws-credentials.h"
#include "curl-event.h"
#include "outbox.h"
#include "sigv4.h"

typedef struct OutboxAwsApi {
        const char *name; /* "sns": starts every error text */
        const char *service; /* SigV4 signing name */
        const char *endpoint_prefix; /* the default endpoint: https://PREFIX.REGION.amazonaws.com/ */
        const SigV4Header *headers;
        size_t n_headers;
        size_t max_response;
        /* The request body for d.  0; -EINVAL when it can never be built
         * (*ret_why, static: the message fails); -ENOMEM. */
        int (*body)(void *api_data, const OutboxDelivery *d, char **ret, const char **ret_why);
        /* What an answer means (status: curl-event's result). */
        OutboxResult (*parse)(int status, const char *body, size_t len, char **ret_id, char **ret_error);
} OutboxAwsApi;

typedef struct OutboxAwsOptions {
        CurlEvent *curl; /* must outlive the transport */
        const char *region; /* NULL or "": "us-east-1" */
        const char *endpoint; /* NULL or "": the API's default in the region */
        /* Where credentials come from at each send (refreshed before they
         * expire); must outlive the transport.  NULL: credentials below. */
        AwsCredentialsProvider *provider;
        const AwsCredentials *credentials; /* without a provider: copied; NULL: every send TEMPFAILs */
        char *const *connect_to; /* as CurlRequest.connect_to; copied */
        const char *ca_file; /* NULL or "": the system's */
} OutboxAwsOptions;

typedef struct OutboxAws OutboxAws;

/* api (static) and api_data (borrowed, given to api->body) must outlive
 * the result.  -EINVAL for a bad endpoint URL, -ENOMEM. */
int outbox_aws_new(const OutboxAwsApi *api, void *api_data, const OutboxAwsOptions *o, OutboxAws **ret);

/* Cancels the requests in flight, reporting each as TEMPFAIL to its done
 * callback ("NAME: shutting down"); the outbox leaves those rows
 * 'sending', to go again at the next start.  Returns NULL. */
OutboxAws *outbox_aws_free(OutboxAws *a);
DEFINE_TRIVIAL_CLEANUP_FUNC(OutboxAws *, outbox_aws_free);

/* OutboxTransport.send for the API: build, sign and POST d; done is called
 * once, from the loop or (for a message that cannot be sent at all) from
 * inside.  -ENOMEM or another -errno: done will not be called. */
int outbox_aws_send(OutboxAws *a, const OutboxDelivery *d, OutboxSendDone done, void *done_data);
