/* SPDX-License-Identifier: MIT */
/*
 * outbox-eum.c — SMS through AWS End User Messaging SMS SendTextMessage.
 * Built like outbox-sns.c; request and answer are JSON, through jansson.
 *
 * Security: see outbox-eum.h.
 */
#include "outbox-eum.h"

#include <errno.h>
#include <jansson.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "outbox-aws.h"
#include "normalize.h"
#include "sigv4.h"
#include "strutil.h"

#define EUM_TARGET "PinpointSMSVoiceV2.SendTextMessage"
#define EUM_CONTENT_TYPE "application/x-amz-json-1.0"
#define EUM_TOKEN_MAX 128

struct OutboxEum {
        OutboxAws *aws;
        char *origination_identity;
};

/* Error types that mean "later": the service is busy or our credentials
 * are wrong or stale.  Every other type is PERMFAIL. */
static const char *const tempfail_types[] = {
        "ThrottlingException",          "InternalServerException",   "ServiceUnavailableException",
        "ExpiredTokenException",        "InvalidSignatureException", "UnrecognizedClientException",
        "IncompleteSignatureException",
};

static bool token_ok(const char *s) {
        size_t n = strlen(s);

        if (n == 0 || n > EUM_TOKEN_MAX)
                return false;
        for (const char *c = s; *c; c++)
                if (!((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') ||
                      strchr("._:#-", *c)))
                        return false;
        return true;
}

OutboxResult outbox_eum_parse_response(int status, const char *body, size_t len, char **ret_transport_id,
                                       char **ret_error) {
        json_t *o = NULL;
        const char *type = NULL, *hash;
        OutboxResult res;

        *ret_transport_id = NULL;
        *ret_error = NULL;
        if (status < 0) {
                *ret_error = mem_printf("eum: %s", strerror(-status));
                return OUTBOX_RESULT_TEMPFAIL;
        }
        if (body && len > 0)
                o = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
        if (status >= 200 && status < 300) {
                const char *id = json_string_value(json_object_get(o, "MessageId"));

                /* Accepted even without a readable id: sending again could
                 * duplicate. */
                if (id && token_ok(id))
                        *ret_transport_id = mem_strdup(id);
                json_decref(o);
                return OUTBOX_RESULT_OK;
        }
        type = json_string_value(json_object_get(o, "__type"));
        if (type && !token_ok(type))
                type = NULL;
        /* "com.amazonaws…#ThrottlingException": the name after the '#'. */
        if (type && (hash = strrchr(type, '#')))
                type = hash + 1;
        if (type && !*type)
                type = NULL;
        *ret_error = mem_printf("eum: HTTP %d%s%s", status, type ? " " : "", type ? type : "");
        res = OUTBOX_RESULT_PERMFAIL;
        if (status >= 500 || status == 429 || status == 408)
                res = OUTBOX_RESULT_TEMPFAIL;
        for (size_t i = 0; type && i < ELEMENTSOF(tempfail_types); i++)
                if (streq(tempfail_types[i], type))
                        res = OUTBOX_RESULT_TEMPFAIL;
        json_decref(o);
        return res;
}

int outbox_eum_request_body(const char *phone, const char *message, const char *origination_identity, char **ret) {
        json_t *o;
        char *s;

        o = json_object();
        if (!o)
                return -ENOMEM;
        if (json_object_set_new(o, "DestinationPhoneNumber", json_string(phone)) < 0 ||
            json_object_set_new(o, "MessageBody", json_string(message)) < 0 ||
            json_object_set_new(o, "MessageType", json_string("TRANSACTIONAL")) < 0 ||
            (origination_identity && *origination_identity &&
             json_object_set_new(o, "OriginationIdentity", json_string(origination_identity)) < 0)) {
                json_decref(o);
                /* json_string() refuses invalid UTF-8 and fails on OOM alike. */
                return normalize_utf8_valid(phone, strlen(phone)) && normalize_utf8_valid(message, strlen(message))
                        ? -ENOMEM
                        : -EINVAL;
        }
        s = mem_json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
        json_decref(o);
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

static int eum_body(void *api_data, const OutboxDelivery *d, char **ret, const char **ret_why) {
        const OutboxEum *s = api_data;
        int r = outbox_eum_request_body(d->to, d->body, s->origination_identity, ret);

        if (r == -EINVAL)
                *ret_why = "recipient or body is not UTF-8";
        return r;
}

static const SigV4Header eum_headers[] = {
        { "Content-Type", EUM_CONTENT_TYPE },
        { "X-Amz-Target", EUM_TARGET },
};

static const OutboxAwsApi eum_api = {
        .name = "eum",
        .service = "sms-voice",
        .endpoint_prefix = "sms-voice",
        .headers = eum_headers,
        .n_headers = ELEMENTSOF(eum_headers),
        .max_response = OUTBOX_EUM_MAX_RESPONSE,
        .body = eum_body,
        .parse = outbox_eum_parse_response,
};

static int eum_send(void *userdata, const OutboxDelivery *d, OutboxSendDone done, void *done_data) {
        OutboxEum *s = userdata;
        return s ? outbox_aws_send(s->aws, d, done, done_data) : -EINVAL;
}

const OutboxTransport outbox_transport_eum = {
        .name = "eum",
        .send = eum_send,
};

int outbox_eum_new(const OutboxEumOptions *o, OutboxEum **ret) {
        _cleanup_(outbox_eum_freep) OutboxEum *s = NULL;
        int r;

        s = mem_new(OutboxEum, 1);
        if (!s)
                return -ENOMEM;
        if (o->origination_identity && *o->origination_identity &&
            !(s->origination_identity = mem_strdup(o->origination_identity)))
                return -ENOMEM;
        const OutboxAwsOptions ao = {
                .curl = o->curl,
                .region = o->region,
                .endpoint = o->endpoint,
                .provider = o->provider,
                .credentials = o->credentials,
                .connect_to = o->connect_to,
                .ca_file = o->ca_file,
        };
        r = outbox_aws_new(&eum_api, s, &ao, &s->aws);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(s);
        return 0;
}

OutboxEum *outbox_eum_free(OutboxEum *s) {
        if (!s)
                return NULL;
        outbox_aws_free(s->aws);
        free(s->origination_identity);
        free(s);
        return NULL;
}
