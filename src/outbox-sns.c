/* SPDX-License-Identifier: MIT */
/*
 * outbox-sns.c — SMS through Amazon SNS Publish.
 *
 * The response is read without an XML library: only two elements of a
 * small, fixed envelope are needed (<MessageId> of a PublishResponse,
 * <Code> of an ErrorResponse), their values are plain tokens, and a
 * bounded search for the literal tags with a strict check of what lies
 * between them rejects everything else.  A full parser would add a
 * dependency and far more untrusted-input surface (entities, DTDs) for
 * nothing the daemon reads.
 *
 * Security: see outbox-sns.h.
 */
#include "outbox-sns.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "aws-request.h"
#include "sigv4.h"
#include "strutil.h"

#define SNS_VERSION "2010-03-31"
#define SNS_CONTENT_TYPE "application/x-www-form-urlencoded; charset=utf-8"
/* Longest MessageId or error code accepted (real ones are 36 and < 40). */
#define SNS_TOKEN_MAX 128

typedef struct SnsSend {
        struct SnsSend *next, **prev_next;
        OutboxSns *sns;
        AwsCall *call;
        OutboxSendDone done;
        void *done_data;
} SnsSend;

struct OutboxSns {
        CurlEvent *curl;
        char *region, *url, *host, *path;
        char *sender_id, *origination_number;
        char *ca_file;
        char **connect_to;
        AwsCredentials *credentials;
        AwsCredentialsProvider *provider;
        SnsSend *in_flight;
};

/* Error codes that mean "later": SNS is busy, or our own credentials are
 * wrong or stale (the operator's to fix; the message itself is fine and
 * goes out once they are).  Every other code is about the message or what
 * the account may send (InvalidParameter, AuthorizationError, OptedOut,
 * …): PERMFAIL. */
static const char *const tempfail_codes[] = {
        "Throttling",          "Throttled",
        "ThrottlingException", "InternalError",
        "InternalFailure",     "ServiceUnavailable",
        "KMSThrottling",       "ExpiredToken",
        "RequestExpired",      "SignatureDoesNotMatch",
        "IncompleteSignature", "InvalidClientTokenId",
};

static bool is_tempfail_code(const char *code) {
        for (size_t i = 0; i < ELEMENTSOF(tempfail_codes); i++)
                if (streq(tempfail_codes[i], code))
                        return true;
        return false;
}

/* The text of the first <tag>…</tag> in body[0..len), when it is a short
 * token of [A-Za-z0-9._:-]; NULL otherwise (or on OOM). */
static char *xml_token(const char *body, size_t len, const char *tag) {
        _cleanup_free_ char *open = mem_printf("<%s>", tag), *close = mem_printf("</%s>", tag);
        const char *p, *end;

        if (!open || !close || !body)
                return NULL;
        p = memmem(body, len, open, strlen(open));
        if (!p)
                return NULL;
        p += strlen(open);
        end = memmem(p, len - (size_t) (p - body), close, strlen(close));
        if (!end || end == p || end - p > SNS_TOKEN_MAX)
                return NULL;
        for (const char *c = p; c < end; c++)
                if (!((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') ||
                      strchr("._:-", *c)))
                        return NULL;
        return mem_strndup(p, (size_t) (end - p));
}

OutboxResult outbox_sns_parse_response(int status, const char *body, size_t len, char **ret_transport_id,
                                       char **ret_error) {
        _cleanup_free_ char *code = NULL;

        *ret_transport_id = NULL;
        *ret_error = NULL;
        if (status < 0) {
                *ret_error = mem_printf("sns: %s", strerror(-status));
                return OUTBOX_RESULT_TEMPFAIL;
        }
        if (status >= 200 && status < 300) {
                *ret_transport_id = xml_token(body, len, "MessageId");
                if (*ret_transport_id)
                        return OUTBOX_RESULT_OK;
                /* Accepted, but we cannot tell by what: sending again could
                 * duplicate, so it is recorded as sent without an id. */
                return OUTBOX_RESULT_OK;
        }
        code = xml_token(body, len, "Code");
        *ret_error = mem_printf("sns: HTTP %d%s%s", status, code ? " " : "", code ? code : "");
        if (status >= 500 || status == 429 || status == 408)
                return OUTBOX_RESULT_TEMPFAIL;
        if (code && is_tempfail_code(code))
                return OUTBOX_RESULT_TEMPFAIL;
        return OUTBOX_RESULT_PERMFAIL;
}

static int append(char **buf, size_t *len, const char *s, size_t n) {
        char *b = mem_realloc(*buf, *len + n + 1);

        if (!b)
                return -ENOMEM;
        memcpy(b + *len, s, n);
        *len += n;
        b[*len] = 0;
        *buf = b;
        return 0;
}

/* "&name=VALUE" with value percent-encoded (no '&' before the first). */
static int append_field(char **buf, size_t *len, const char *name, const char *value) {
        _cleanup_free_ char *enc = NULL;
        int r;

        r = sigv4_uri_encode(value, strlen(value), false, &enc);
        if (r < 0)
                return r;
        if ((*len > 0 && (r = append(buf, len, "&", 1)) < 0) || (r = append(buf, len, name, strlen(name))) < 0 ||
            (r = append(buf, len, "=", 1)) < 0 || (r = append(buf, len, enc, strlen(enc))) < 0)
                return r;
        return 0;
}

int outbox_sns_publish_body(const char *phone, const char *message, const char *sender_id,
                            const char *origination_number, char **ret) {
        const struct {
                const char *name, *value;
        } attrs[] = {
                { "AWS.SNS.SMS.SMSType", "Transactional" },
                { "AWS.SNS.SMS.SenderID", sender_id },
                { "AWS.MM.SMS.OriginationNumber", origination_number },
        };
        _cleanup_free_ char *buf = NULL;
        size_t len = 0;
        unsigned n = 0;
        int r;

        if ((r = append_field(&buf, &len, "Action", "Publish")) < 0 ||
            (r = append_field(&buf, &len, "Version", SNS_VERSION)) < 0 ||
            (r = append_field(&buf, &len, "PhoneNumber", phone)) < 0 ||
            (r = append_field(&buf, &len, "Message", message)) < 0)
                return r;
        for (size_t i = 0; i < ELEMENTSOF(attrs); i++) {
                char name[80];

                if (!attrs[i].value || !*attrs[i].value)
                        continue;
                n++;
                snprintf(name, sizeof name, "MessageAttributes.entry.%u.Name", n);
                if ((r = append_field(&buf, &len, name, attrs[i].name)) < 0)
                        return r;
                snprintf(name, sizeof name, "MessageAttributes.entry.%u.Value.DataType", n);
                if ((r = append_field(&buf, &len, name, "String")) < 0)
                        return r;
                snprintf(name, sizeof name, "MessageAttributes.entry.%u.Value.StringValue", n);
                if ((r = append_field(&buf, &len, name, attrs[i].value)) < 0)
                        return r;
        }
        *ret = TAKE_PTR(buf);
        return 0;
}

static void unlink_send(SnsSend *q) {
        *q->prev_next = q->next;
        if (q->next)
                q->next->prev_next = q->prev_next;
}

static void send_free(SnsSend *q) {
        aws_call_free(q->call);
        free(q);
}

/* End q (linked) with res; error NULL: "sns: out of memory" unless OK. */
static void send_finish(SnsSend *q, OutboxResult res, const char *id, const char *error) {
        unlink_send(q);
        q->done(q->done_data, res, id, error ? error : (res == OUTBOX_RESULT_OK ? NULL : "sns: out of memory"));
        send_free(q);
}

static void on_response(int result, const CurlResponse *resp, bool no_credentials, void *userdata) {
        SnsSend *q = userdata;
        _cleanup_free_ char *id = NULL, *error = NULL;
        OutboxResult res;

        if (no_credentials) {
                const char *why = aws_credentials_provider_error(q->sns->provider);

                error = mem_printf("sns: no AWS credentials: %s", why ?: strerror(-result));
                send_finish(q, OUTBOX_RESULT_TEMPFAIL, NULL, error);
                return;
        }
        res = outbox_sns_parse_response(result, resp ? resp->body : NULL, resp ? resp->body_len : 0, &id, &error);
        send_finish(q, res, id, error);
}

static int sns_send(void *userdata, const OutboxDelivery *d, OutboxSendDone done, void *done_data) {
        OutboxSns *s = userdata;
        _cleanup_free_ char *body = NULL;
        SnsSend *q;
        int r;

        if (!s || d->channel != OUTBOX_SMS)
                return -EINVAL;
        if (!s->credentials && !s->provider) {
                done(done_data, OUTBOX_RESULT_TEMPFAIL, NULL, "sns: no AWS credentials");
                return 0;
        }
        r = outbox_sns_publish_body(d->to, d->body, s->sender_id, s->origination_number, &body);
        if (r < 0)
                return r;
        const SigV4Header headers[] = {
                { "Content-Type", SNS_CONTENT_TYPE },
        };
        const AwsPost post = {
                .url = s->url,
                .host = s->host,
                .path = s->path,
                .headers = headers,
                .n_headers = ELEMENTSOF(headers),
                .body = body,
                .region = s->region,
                .service = "sns",
                .credentials = s->credentials,
                .max_response_body = OUTBOX_SNS_MAX_RESPONSE,
                .ca_file = s->ca_file,
                .connect_to = s->connect_to,
        };
        q = mem_new(SnsSend, 1);
        if (!q)
                return -ENOMEM;
        q->sns = s;
        r = aws_call(s->curl, s->provider, &post, on_response, q, &q->call);
        if (r < 0) {
                send_free(q);
                if (r != -EINVAL)
                        return r;
                /* A recipient or body the signer refuses will never sign. */
                done(done_data, OUTBOX_RESULT_PERMFAIL, NULL, "sns: request cannot be signed");
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

const OutboxTransport outbox_transport_sns = {
        .name = "sns",
        .send = sns_send,
};

static char *dup_or_null(const char *s) {
        return s && *s ? mem_strdup(s) : NULL;
}

int outbox_sns_new(const OutboxSnsOptions *o, OutboxSns **ret) {
        _cleanup_(outbox_sns_freep) OutboxSns *s = NULL;
        int r;

        s = mem_new(OutboxSns, 1);
        if (!s)
                return -ENOMEM;
        s->curl = o->curl;
        s->region = mem_strdup(o->region && *o->region ? o->region : OUTBOX_SNS_REGION_DEFAULT);
        if (!s->region)
                return -ENOMEM;
        s->url = o->endpoint && *o->endpoint ? mem_strdup(o->endpoint)
                                             : mem_printf("https://sns.%s.amazonaws.com/", s->region);
        if (!s->url)
                return -ENOMEM;
        r = aws_url_split(s->url, &s->host, &s->path);
        if (r < 0)
                return r;
        s->sender_id = dup_or_null(o->sender_id);
        s->origination_number = dup_or_null(o->origination_number);
        s->ca_file = dup_or_null(o->ca_file);
        if ((o->sender_id && *o->sender_id && !s->sender_id) ||
            (o->origination_number && *o->origination_number && !s->origination_number) ||
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

OutboxSns *outbox_sns_free(OutboxSns *s) {
        if (!s)
                return NULL;
        while (s->in_flight) {
                SnsSend *q = s->in_flight;

                send_finish(q, OUTBOX_RESULT_TEMPFAIL, NULL, "sns: shutting down");
        }
        free(s->region);
        free(s->url);
        free(s->host);
        free(s->path);
        free(s->sender_id);
        free(s->origination_number);
        free(s->ca_file);
        strv_free(s->connect_to);
        aws_credentials_free(s->credentials);
        free(s);
        return NULL;
}
