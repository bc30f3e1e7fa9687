/* SPDX-License-Identifier: MIT */
/*
 * sns-payload.c — two-way SMS and SES "Received" payloads.
 *
 * Security: see sns-payload.h.
 */
#include "sns-payload.h"

#include <errno.h>
#include <jansson.h>
#include <string.h>

#include "alloc.h"
#include "base64.h"
#include "customer.h"
#include "strutil.h"

#define JSON_DEPTH_MAX 16

static const char *const verdict_table[_SES_VERDICT_MAX] = {
        [SES_VERDICT_ABSENT] = "absent",
        [SES_VERDICT_PASS] = "PASS",
        [SES_VERDICT_FAIL] = "FAIL",
        [SES_VERDICT_GRAY] = "GRAY",
        [SES_VERDICT_PROCESSING_FAILED] = "PROCESSING_FAILED",
};

const char *ses_verdict_to_string(SesVerdict v) {
        return (unsigned) v < _SES_VERDICT_MAX ? verdict_table[v] : NULL;
}

SnsPayload *sns_payload_free(SnsPayload *p) {
        if (!p)
                return NULL;
        free(p->origination_number);
        free(p->destination_number);
        free(p->keyword);
        free(p->body);
        free(p->inbound_message_id);
        free(p->previous_published_message_id);
        free(p->ses_message_id);
        free(p->ses_source);
        strv_free(p->ses_recipients);
        free(p->content);
        free(p);
        return NULL;
}

/* Copy an optional string member; -EBADMSG when present but not a string. */
static int dup_member(json_t *o, const char *key, bool required, char **ret) {
        json_t *v = json_object_get(o, key);

        if (!v || json_is_null(v))
                return required ? -EBADMSG : 0;
        if (!json_is_string(v))
                return -EBADMSG;
        *ret = mem_strndup(json_string_value(v), json_string_length(v));
        return *ret ? 0 : -ENOMEM;
}

static int depth_ok(json_t *j, unsigned depth) {
        const char *k;
        json_t *v;
        size_t i;

        if (depth > JSON_DEPTH_MAX)
                return 0;
        if (json_is_object(j))
                json_object_foreach (j, k, v)
                        if (!depth_ok(v, depth + 1))
                                return 0;
        if (json_is_array(j))
                json_array_foreach (j, i, v)
                        if (!depth_ok(v, depth + 1))
                                return 0;
        return 1;
}

static int parse_sms(json_t *o, size_t max_sms, SnsPayload *p, const char **ret_reason) {
        int r;

        if ((r = dup_member(o, "originationNumber", true, &p->origination_number)) < 0 ||
            (r = dup_member(o, "destinationNumber", false, &p->destination_number)) < 0 ||
            (r = dup_member(o, "messageKeyword", false, &p->keyword)) < 0 ||
            (r = dup_member(o, "messageBody", true, &p->body)) < 0 ||
            (r = dup_member(o, "inboundMessageId", true, &p->inbound_message_id)) < 0 ||
            (r = dup_member(o, "previousPublishedMessageId", false, &p->previous_published_message_id)) < 0) {
                *ret_reason = "two-way SMS payload: a required field is missing or not a string";
                return r;
        }
        if (!customer_phone_valid(p->origination_number)) {
                *ret_reason = "two-way SMS payload: originationNumber is not an E.164 number";
                return -EBADMSG;
        }
        if (strlen(p->body) > max_sms) {
                *ret_reason = "two-way SMS payload: messageBody is too long";
                return -EMSGSIZE;
        }
        if (isempty(p->inbound_message_id) || strlen(p->inbound_message_id) > 256) {
                *ret_reason = "two-way SMS payload: bad inboundMessageId";
                return -EBADMSG;
        }
        p->kind = SNS_PAYLOAD_SMS;
        return 0;
}

static SesVerdict verdict(json_t *receipt, const char *key) {
        const char *s = json_string_value(json_object_get(json_object_get(receipt, key), "status"));

        if (!s)
                return SES_VERDICT_ABSENT;
        for (size_t i = 1; i < _SES_VERDICT_MAX; i++)
                if (streq(s, verdict_table[i]))
                        return (SesVerdict) i;
        return SES_VERDICT_PROCESSING_FAILED; /* unknown: treat as not verified */
}

static int parse_ses(json_t *o, size_t max_mail, SnsPayload *p, const char **ret_reason) {
        json_t *mail = json_object_get(o, "mail"), *receipt = json_object_get(o, "receipt");
        json_t *content = json_object_get(o, "content"), *v;
        const char *encoding;
        size_t i;
        int r;

        if (!json_is_object(mail) || !json_is_object(receipt)) {
                *ret_reason = "SES notification: mail or receipt missing";
                return -EBADMSG;
        }
        if ((r = dup_member(mail, "messageId", true, &p->ses_message_id)) < 0 ||
            (r = dup_member(mail, "source", false, &p->ses_source)) < 0) {
                *ret_reason = "SES notification: mail.messageId missing or not a string";
                return r;
        }
        p->ses_recipients = mem_new(char *, 1);
        if (!p->ses_recipients)
                return -ENOMEM;
        json_array_foreach (json_object_get(receipt, "recipients"), i, v) {
                if (!json_is_string(v)) {
                        *ret_reason = "SES notification: receipt.recipients holds a non-string";
                        return -EBADMSG;
                }
                if (strv_extend(&p->ses_recipients, json_string_value(v)) < 0)
                        return -ENOMEM;
        }
        p->spf = verdict(receipt, "spfVerdict");
        p->dkim = verdict(receipt, "dkimVerdict");
        p->dmarc = verdict(receipt, "dmarcVerdict");
        p->spam = verdict(receipt, "spamVerdict");
        p->virus = verdict(receipt, "virusVerdict");

        if (content && !json_is_null(content)) {
                if (!json_is_string(content)) {
                        *ret_reason = "SES notification: content is not a string";
                        return -EBADMSG;
                }
                encoding = json_string_value(json_object_get(json_object_get(receipt, "action"), "encoding"));
                if (encoding && streq(encoding, "BASE64")) {
                        r = base64_decode(json_string_value(content), json_string_length(content), &p->content,
                                          &p->content_len);
                        if (r < 0) {
                                *ret_reason = "SES notification: content is not valid base64";
                                return r;
                        }
                } else if (!encoding || streq(encoding, "UTF8")) {
                        p->content_len = json_string_length(content);
                        p->content = (uint8_t *) mem_strndup(json_string_value(content), p->content_len);
                        if (!p->content)
                                return -ENOMEM;
                } else {
                        *ret_reason = "SES notification: unknown content encoding";
                        return -EBADMSG;
                }
                if (p->content_len > max_mail) {
                        *ret_reason = "SES notification: message too large";
                        return -EMSGSIZE;
                }
                p->has_content = true;
        }
        p->kind = SNS_PAYLOAD_SES;
        return 0;
}

int sns_payload_parse(const char *message, size_t max_sms, size_t max_mail, SnsPayload **ret, const char **ret_reason) {
        _cleanup_(sns_payload_freep) SnsPayload *p = NULL;
        json_error_t jerr;
        json_t *o;
        int r;

        *ret_reason = NULL;
        p = mem_new(SnsPayload, 1);
        if (!p)
                return -ENOMEM;
        p->kind = SNS_PAYLOAD_OTHER;

        unsigned long failures = alloc_failures();
        o = json_loads(message, JSON_REJECT_DUPLICATES, &jerr);
        /* Out of memory must not pass for "not JSON": the message would be
         * stored as ignored, that is, lost. */
        if (!o && (json_error_code(&jerr) == json_error_out_of_memory || alloc_failures() != failures))
                return -ENOMEM;
        if (!o || !json_is_object(o) || !depth_ok(o, 0)) {
                /* Plain text, or JSON of some other service: not ours to parse. */
                json_decref(o);
                *ret = TAKE_PTR(p);
                return 0;
        }
        if (json_object_get(o, "originationNumber") || json_object_get(o, "inboundMessageId"))
                r = parse_sms(o, max_sms, p, ret_reason);
        else if (json_is_string(json_object_get(o, "notificationType")) &&
                 streq(json_string_value(json_object_get(o, "notificationType")), "Received"))
                r = parse_ses(o, max_mail, p, ret_reason);
        else
                r = 0;
        json_decref(o);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(p);
        return 0;
}
