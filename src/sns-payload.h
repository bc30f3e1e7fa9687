/* SPDX-License-Identifier: MIT */
/*
 * sns-payload.h — what an SNS Notification's Message carries: the two-way
 * SMS JSON of AWS End User Messaging (Pinpoint) or an Amazon SES
 * "Received" notification.  Anything else is "other": acknowledged and
 * stored as ignored by the caller.
 *
 * Security: the Message is untrusted until the envelope's signature is
 * verified, and remains customer-controlled after; every field is
 * type-checked and bounded here.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "macro.h"

typedef enum SnsPayloadKind {
        SNS_PAYLOAD_SMS,
        SNS_PAYLOAD_SES,
        SNS_PAYLOAD_OTHER,
        _SNS_PAYLOAD_KIND_MAX,
} SnsPayloadKind;

/* SES verdicts: PASS, FAIL, GRAY, PROCESSING_FAILED, or absent. */
typedef enum SesVerdict {
        SES_VERDICT_ABSENT,
        SES_VERDICT_PASS,
        SES_VERDICT_FAIL,
        SES_VERDICT_GRAY,
        SES_VERDICT_PROCESSING_FAILED,
        _SES_VERDICT_MAX,
} SesVerdict;

typedef struct SnsPayload {
        SnsPayloadKind kind;
        /* SMS */
        char *origination_number; /* the customer, E.164 */
        char *destination_number; /* ours */
        char *keyword;
        char *body;
        char *inbound_message_id;
        char *previous_published_message_id;
        /* SES */
        char *ses_message_id;
        char *ses_source; /* envelope sender */
        char **ses_recipients; /* receipt.recipients: ours */
        SesVerdict spf, dkim, dmarc, spam, virus;
        uint8_t *content; /* the raw message, decoded from UTF8 or BASE64 */
        size_t content_len;
        bool has_content; /* false for S3-action alerts: no content in the notification */
} SnsPayload;

/* Classify and parse message (the Notification's Message string).  A
 * Message that is neither SMS nor SES gives kind OTHER and 0.  A Message
 * that claims to be one of them but is malformed gives -EBADMSG with a
 * short static reason.  max_sms and max_mail bound the text and content. */
int sns_payload_parse(const char *message, size_t max_sms, size_t max_mail, SnsPayload **ret, const char **ret_reason);

SnsPayload *sns_payload_free(SnsPayload *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(SnsPayload *, sns_payload_free);

const char *ses_verdict_to_string(SesVerdict v);
