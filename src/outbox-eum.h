/* SPDX-License-Identifier: MIT */
/*
 * outbox-eum.h — the "eum" SMS transport of the outbox: one AWS End User
 * Messaging SMS SendTextMessage (AWS JSON 1.0, X-Amz-Target
 * PinpointSMSVoiceV2.SendTextMessage, SigV4 signing name "sms-voice") per
 * message, through curl-event on the loop.  The MessageId of the answer
 * becomes the row's transport_id.
 *
 * Outcomes: 2xx with a MessageId → OK; HTTP 5xx, a network failure,
 * ThrottlingException, InternalServerException or a credentials error →
 * TEMPFAIL; any other error (ValidationException, AccessDeniedException,
 * ResourceNotFoundException, …) → PERMFAIL.
 *
 * Security: recipient and body go into the JSON through jansson, never by
 * hand.  The answer is untrusted: capped (OUTBOX_EUM_MAX_RESPONSE), parsed
 * by jansson, and only a MessageId and an error type that are short tokens
 * of [A-Za-z0-9._:#-] are kept.
 */
#pragma once

#include <stddef.h>

#include "aws-credentials.h"
#include "curl-event.h"
#include "outbox.h"

#define OUTBOX_EUM_MAX_RESPONSE ((size_t) 64 * 1024)

typedef struct OutboxEumOptions {
        CurlEvent *curl; /* must outlive the transport */
        const char *region; /* NULL or "": "us-east-1" */
        const char *endpoint; /* NULL or "": https://sms-voice.REGION.amazonaws.com/ */
        const char *origination_identity; /* OriginationIdentity; NULL or "": none */
        /* Where credentials come from at each send (refreshed before they
         * expire); must outlive the transport.  NULL: credentials below. */
        AwsCredentialsProvider *provider;
        const AwsCredentials *credentials; /* without a provider: copied; NULL: every send TEMPFAILs */
        char *const *connect_to; /* as CurlRequest.connect_to; copied */
        const char *ca_file; /* NULL or "": the system's */
} OutboxEumOptions;

typedef struct OutboxEum OutboxEum;

/* A transport context for OutboxOptions.transport_data (with
 * outbox_transport_eum).  Strings are copied.  0, -EINVAL (an endpoint
 * that is not http(s)://HOST/…), -ENOMEM. */
int outbox_eum_new(const OutboxEumOptions *o, OutboxEum **ret);

/* Cancels the requests in flight, reporting each as TEMPFAIL to its done
 * callback (free the outbox first).  Accepts NULL; returns NULL. */
OutboxEum *outbox_eum_free(OutboxEum *e);
DEFINE_TRIVIAL_CLEANUP_FUNC(OutboxEum *, outbox_eum_free);

extern const OutboxTransport outbox_transport_eum;

/* The SendTextMessage body: {"DestinationPhoneNumber", "MessageBody",
 * "MessageType": "TRANSACTIONAL", "OriginationIdentity" (when non-empty)},
 * compact.  New string in *ret.  0, -EINVAL (not UTF-8), -ENOMEM. */
int outbox_eum_request_body(const char *phone, const char *message, const char *origination_identity, char **ret);

/* What an answer means (status: curl-event's result).  *ret_transport_id
 * (OK only) and *ret_error ("HTTP 400 ValidationException") are new
 * strings or NULL.  Pure. */
OutboxResult outbox_eum_parse_response(int status, const char *body, size_t len, char **ret_transport_id,
                                       char **ret_error);
