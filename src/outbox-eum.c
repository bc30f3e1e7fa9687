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
#include "aws-request.h"
#include "normalize.h"
#include "sigv4.h"
#include "strutil.h"

#define EUM_TARGET "PinpointSMSVoiceV2.SendTextMessage"
#define EUM_CONTENT_TYPE "application/x-amz-json-1.0"
#define EUM_TOKEN_MAX 128

typedef struct EumSend {
        struct EumSend *next, **prev_next;
        OutboxEum *eum;
        AwsCall *call;
        OutboxSendDone done;
        void *done_data;
} EumSend;

struct OutboxEum {
        CurlEvent *curl;
        char *region, *url, *host, *path;
        char *origination_identity;
        char *ca_file;
        char **connect_to;
        AwsCredentials *credentials;
        AwsCredentialsProvider *provider;
        EumSend *in_flight;
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
        s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
        json_decref(o);
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

static void unlink_send(EumSend *q) {
        *q->prev_next = q->next;
        if (q->next)
                q->next->prev_next = q->prev_next;
}

static void send_free(EumSend *q) {
        aws_call_free(q->call);
        free(q);
}

/* End q (linked) with res; error NULL: "eum: out of memory" unless OK. */
static void send_finish(EumSend *q, OutboxResult res, const char *id, const char *error) {
        unlink_send(q);
        q->done(q->done_data, res, id, error ? error : (res == OUTBOX_RESULT_OK ? NULL : "eum: out of memory"));
        send_free(q);
}

static void on_response(int result, const CurlResponse *resp, bool no_credentials, void *userdata) {
        EumSend *q = userdata;
        _cleanup_free_ char *id = NULL, *error = NULL;
        OutboxResult res;

        if (no_credentials) {
                const char *why = aws_credentials_provider_error(q->eum->provider);

                error = mem_printf("eum: no AWS credentials: %s", why ?: strerror(-result));
                send_finish(q, OUTBOX_RESULT_TEMPFAIL, NULL, error);
                return;
        }
        res = outbox_eum_parse_response(result, resp ? resp->body : NULL, resp ? resp->body_len : 0, &id, &error);
        send_finish(q, res, id, error);
}

static int eum_send(void *userdata, const OutboxDelivery *d, OutboxSendDone done, void *done_data) {
        OutboxEum *s = userdata;
        _cleanup_free_ char *body = NULL;
        EumSend *q;
        int r;

        if (!s || d->channel != OUTBOX_SMS)
                return -EINVAL;
        if (!s->credentials && !s->provider) {
                done(done_data, OUTBOX_RESULT_TEMPFAIL, NULL, "eum: no AWS credentials");
                return 0;
        }
        r = outbox_eum_request_body(d->to, d->body, s->origination_identity, &body);
        if (r == -EINVAL) {
                done(done_data, OUTBOX_RESULT_PERMFAIL, NULL, "eum: recipient or body is not UTF-8");
                return 0;
        }
        if (r < 0)
                return r;
        const SigV4Header headers[] = {
                { "Content-Type", EUM_CONTENT_TYPE },
                { "X-Amz-Target", EUM_TARGET },
        };
        const AwsPost post = {
                .url = s->url,
                .host = s->host,
                .path = s->path,
                .headers = headers,
                .n_headers = ELEMENTSOF(headers),
                .body = body,
                .region = s->region,
                .service = "sms-voice",
                .credentials = s->credentials,
                .max_response_body = OUTBOX_EUM_MAX_RESPONSE,
                .ca_file = s->ca_file,
                .connect_to = s->connect_to,
        };
        q = mem_new(EumSend, 1);
        if (!q)
                return -ENOMEM;
        q->eum = s;
        r = aws_call(s->curl, s->provider, &post, on_response, q, &q->call);
        if (r < 0) {
                send_free(q);
                if (r != -EINVAL)
                        return r;
                /* A recipient or body the signer refuses will never sign. */
                done(done_data, OUTBOX_RESULT_PERMFAIL, NULL, "eum: request cannot be signed");
                return 0;
        }
        q->done = done;
        q->done_data = done_data;
        q->next = s->in_flight;
        if (q->next)
                q->next->prev_next = &q->next;
        q->prev_next = &s->in_flight;
        s->in_flight = q;
        return 0;
}

const OutboxTransport outbox_transport_eum = {
        .name = "eum",
        .send = eum_send,
};

static char *dup_or_null(const char *s) {
        return s && *s ? mem_strdup(s) : NULL;
}

int outbox_eum_new(const OutboxEumOptions *o, OutboxEum **ret) {
        _cleanup_(outbox_eum_freep) OutboxEum *s = NULL;
        int r;

        s = mem_new(OutboxEum, 1);
        if (!s)
                return -ENOMEM;
        s->curl = o->curl;
        s->region = mem_strdup(o->region && *o->region ? o->region : "us-east-1");
        if (!s->region)
                return -ENOMEM;
        s->url = o->endpoint && *o->endpoint ? mem_strdup(o->endpoint)
                                             : mem_printf("https://sms-voice.%s.amazonaws.com/", s->region);
        if (!s->url)
                return -ENOMEM;
        r = aws_url_split(s->url, &s->host, &s->path);
        if (r < 0)
                return r;
        s->origination_identity = dup_or_null(o->origination_identity);
        s->ca_file = dup_or_null(o->ca_file);
        if ((o->origination_identity && *o->origination_identity && !s->origination_identity) ||
            (o->ca_file && *o->ca_file && !s->ca_file))
                return -ENOMEM;
        if (o->connect_to && !(s->connect_to = strv_copy(o->connect_to)))
                return -ENOMEM;
        s->provider = o->provider;
        if (!s->provider && o->credentials && (r = aws_credentials_copy(o->credentials, &s->credentials)) < 0)
                return r;
        *ret = TAKE_PTR(s);
        return 0;
}

OutboxEum *outbox_eum_free(OutboxEum *s) {
        if (!s)
                return NULL;
        while (s->in_flight) {
                EumSend *q = s->in_flight;

                send_finish(q, OUTBOX_RESULT_TEMPFAIL, NULL, "eum: shutting down");
        }
        free(s->region);
        free(s->url);
        free(s->host);
        free(s->path);
        free(s->origination_identity);
        free(s->ca_file);
        strv_free(s->connect_to);
        aws_credentials_free(s->credentials);
        free(s);
        return NULL;
}
