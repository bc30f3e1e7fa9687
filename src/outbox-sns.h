/* SPDX-License-Identifier: MIT */
/*
 * outbox-sns.h — the "sns" SMS transport of the outbox: one Amazon SNS
 * Publish (Query protocol, form-encoded POST, SigV4 service "sns") per
 * message, sent through curl-event on the loop.  The MessageId of the
 * PublishResponse becomes the row's transport_id.
 *
 * Outcomes: 2xx with a MessageId → OK; HTTP 5xx, a network failure, or a
 * code of the TEMPFAIL table (Throttling, …) → TEMPFAIL; any other error
 * code (InvalidParameter, AuthorizationError, OptedOut, …) → PERMFAIL.
 *
 * Security: the recipient and body are the daemon's (from customer data)
 * and only form-encoded, never interpreted.  The response is untrusted: the
 * body is capped (OUTBOX_SNS_MAX_RESPONSE), only <MessageId> and <Code> are
 * read, and they are accepted only when short and made of safe characters,
 * so nothing odd reaches the store or the journal.  The secret key stays in
 * the credentials and the signer.
 */
#pragma once

#include <stddef.h>

#include "aws-credentials.h"
#include "curl-event.h"
#include "outbox.h"

#define OUTBOX_SNS_REGION_DEFAULT "us-east-1"
#define OUTBOX_SNS_MAX_RESPONSE ((size_t) 64 * 1024)

typedef struct OutboxSnsOptions {
        CurlEvent *curl; /* must outlive the transport */
        const char *region; /* NULL or "": OUTBOX_SNS_REGION_DEFAULT */
        const char *endpoint; /* NULL or "": https://sns.REGION.amazonaws.com/ */
        const char *sender_id; /* AWS.SNS.SMS.SenderID; NULL or "": none */
        const char *origination_number; /* AWS.MM.SMS.OriginationNumber; NULL or "": none */
        /* Where credentials come from at each send (refreshed before they
         * expire); must outlive the transport.  NULL: credentials below. */
        AwsCredentialsProvider *provider;
        const AwsCredentials *credentials; /* without a provider: copied; NULL: every send TEMPFAILs */
        char *const *connect_to; /* as CurlRequest.connect_to; copied */
        const char *ca_file; /* NULL or "": the system's */
} OutboxSnsOptions;

typedef struct OutboxSns OutboxSns;

/* A transport context for OutboxOptions.transport_data (with
 * outbox_transport_sns).  Strings are copied.  0, -EINVAL (an endpoint
 * that is not http(s)://HOST/…), -ENOMEM. */
int outbox_sns_new(const OutboxSnsOptions *o, OutboxSns **ret);

/* Cancels the requests in flight, reporting each as TEMPFAIL to its done
 * callback (free the outbox first: its rows stay 'sending' and are sent
 * again, flagged, at the next start).  Accepts NULL; returns NULL. */
OutboxSns *outbox_sns_free(OutboxSns *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(OutboxSns *, outbox_sns_free);

extern const OutboxTransport outbox_transport_sns;

/* The Publish form body for one SMS to phone: Action, Version,
 * PhoneNumber, Message, then the attributes SMSType=Transactional,
 * SenderID and OriginationNumber (the last two when non-empty), every
 * value percent-encoded (AWS unreserved set, space as %20).  New string in
 * *ret.  0, -ENOMEM. */
int outbox_sns_publish_body(const char *phone, const char *message, const char *sender_id,
                            const char *origination_number, char **ret);

/* What an SNS answer means: status is curl-event's result (an HTTP status
 * or -errno), body the response.  *ret_transport_id (OK only) and
 * *ret_error (otherwise: "HTTP 400 InvalidParameter", never text from the
 * message) are new strings or NULL on OOM.  Pure. */
OutboxResult outbox_sns_parse_response(int status, const char *body, size_t len, char **ret_transport_id,
                                       char **ret_error);
