/* SPDX-License-Identifier: MIT */
/*
 * outbox-aws.c — the part of the AWS SMS transports that does not depend
 * on the API: endpoint, credentials, signed POST, sends in flight.
 *
 * Security: see outbox-aws.h.
 */
#include "outbox-aws.h"

#include <errno.h>
#include <string.h>

#include "alloc.h"
#include "aws-request.h"
#include "strutil.h"

typedef struct AwsSend {
        struct AwsSend *next, **prev_next;
        OutboxAws *aws;
        AwsCall *call;
        OutboxSendDone done;
        void *done_data;
} AwsSend;

struct OutboxAws {
        const OutboxAwsApi *api;
        void *api_data;
        CurlEvent *curl;
        char *region, *url, *host, *path;
        char *ca_file;
        char **connect_to;
        AwsCredentials *credentials;
        AwsCredentialsProvider *provider;
        AwsSend *in_flight;
};

static void send_free(AwsSend *q) {
        aws_call_free(q->call);
        free(q);
}

/* End q (linked) with res; error NULL: "NAME: out of memory" unless OK. */
static void send_finish(AwsSend *q, OutboxResult res, const char *id, const char *error) {
        _cleanup_free_ char *oom = NULL;

        *q->prev_next = q->next;
        if (q->next)
                q->next->prev_next = q->prev_next;
        if (!error && res != OUTBOX_RESULT_OK)
                oom = mem_printf("%s: out of memory", q->aws->api->name);
        q->done(q->done_data, res, id, error ?: oom ?: "out of memory");
        send_free(q);
}

static void on_response(int result, const CurlResponse *resp, bool no_credentials, void *userdata) {
        AwsSend *q = userdata;
        const OutboxAwsApi *api = q->aws->api;
        _cleanup_free_ char *id = NULL, *error = NULL;
        OutboxResult res;

        if (no_credentials) {
                const char *why = aws_credentials_provider_error(q->aws->provider);

                error = mem_printf("%s: no AWS credentials: %s", api->name, why ?: strerror(-result));
                send_finish(q, OUTBOX_RESULT_TEMPFAIL, NULL, error);
                return;
        }
        res = api->parse(result, resp ? resp->body : NULL, resp ? resp->body_len : 0, &id, &error);
        send_finish(q, res, id, error);
}

/* done(), with the API's name in front of why. */
static int finish_now(const OutboxAws *a, OutboxSendDone done, void *done_data, OutboxResult res, const char *why) {
        _cleanup_free_ char *error = mem_printf("%s: %s", a->api->name, why);

        if (!error)
                return -ENOMEM;
        done(done_data, res, NULL, error);
        return 0;
}

int outbox_aws_send(OutboxAws *a, const OutboxDelivery *d, OutboxSendDone done, void *done_data) {
        _cleanup_free_ char *body = NULL;
        const char *why = NULL;
        AwsSend *q;
        int r;

        if (!a || d->channel != OUTBOX_SMS)
                return -EINVAL;
        if (!a->credentials && !a->provider)
                return finish_now(a, done, done_data, OUTBOX_RESULT_TEMPFAIL, "no AWS credentials");
        r = a->api->body(a->api_data, d, &body, &why);
        if (r == -EINVAL)
                return finish_now(a, done, done_data, OUTBOX_RESULT_PERMFAIL, why ?: "the message cannot be sent");
        if (r < 0)
                return r;
        const AwsPost post = {
                .url = a->url,
                .host = a->host,
                .path = a->path,
                .headers = a->api->headers,
                .n_headers = a->api->n_headers,
                .body = body,
                .region = a->region,
                .service = a->api->service,
                .credentials = a->credentials,
                .max_response_body = a->api->max_response,
                .ca_file = a->ca_file,
                .connect_to = a->connect_to,
        };
        q = mem_new(AwsSend, 1);
        if (!q)
                return -ENOMEM;
        q->aws = a;
        r = aws_call(a->curl, a->provider, &post, on_response, q, &q->call);
        if (r < 0) {
                send_free(q);
                if (r != -EINVAL)
                        return r;
                /* A recipient or body the signer refuses will never sign. */
                return finish_now(a, done, done_data, OUTBOX_RESULT_PERMFAIL, "request cannot be signed");
        }
        q->done = done;
        q->done_data = done_data;
        q->next = a->in_flight;
        if (q->next)
                q->next->prev_next = &q->next;
        q->prev_next = &a->in_flight;
        a->in_flight = q;
        return 0;
}

static char *dup_or_null(const char *s) {
        return s && *s ? mem_strdup(s) : NULL;
}

int outbox_aws_new(const OutboxAwsApi *api, void *api_data, const OutboxAwsOptions *o, OutboxAws **ret) {
        _cleanup_(outbox_aws_freep) OutboxAws *a = NULL;
        int r;

        a = mem_new(OutboxAws, 1);
        if (!a)
                return -ENOMEM;
        a->api = api;
        a->api_data = api_data;
        a->curl = o->curl;
        a->region = mem_strdup(o->region && *o->region ? o->region : "us-east-1");
        if (!a->region)
                return -ENOMEM;
        a->url = o->endpoint && *o->endpoint
                ? mem_strdup(o->endpoint)
                : mem_printf("https://%s.%s.amazonaws.com/", api->endpoint_prefix, a->region);
        if (!a->url)
                return -ENOMEM;
        r = aws_url_split(a->url, &a->host, &a->path);
        if (r < 0)
                return r;
        a->ca_file = dup_or_null(o->ca_file);
        if (o->ca_file && *o->ca_file && !a->ca_file)
                return -ENOMEM;
        if (o->connect_to && !(a->connect_to = strv_copy(o->connect_to)))
                return -ENOMEM;
        a->provider = o->provider;
        if (!a->provider && o->credentials && (r = aws_credentials_copy(o->credentials, &a->credentials)) < 0)
                return r;
        *ret = TAKE_PTR(a);
        return 0;
}

OutboxAws *outbox_aws_free(OutboxAws *a) {
        if (!a)
                return NULL;
        while (a->in_flight) {
                _cleanup_free_ char *why = mem_printf("%s: shutting down", a->api->name);
                send_finish(a->in_flight, OUTBOX_RESULT_TEMPFAIL, NULL, why);
        }
        free(a->region);
        free(a->url);
        free(a->host);
        free(a->path);
        free(a->ca_file);
        strv_free(a->connect_to);
        aws_credentials_free(a->credentials);
        free(a);
        return NULL;
}
