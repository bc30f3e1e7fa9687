/* SPDX-License-Identifier: MIT */
/*
 * aws-request.c — signed AWS POSTs on the loop.
 *
 * Security: see aws-request.h.
 */
#include "aws-request.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "strutil.h"

#define AWS_POST_HEADERS_MAX 8

int aws_post(CurlEvent *curl, const AwsPost *p, uint64_t now_usec, CurlEventHandler handler, void *userdata,
             CurlTransfer **ret) {
        _cleanup_(sigv4_signature_freep) SigV4Signature *sig = NULL;
        SigV4Header headers[AWS_POST_HEADERS_MAX + 1];
        SigV4Credentials creds;
        int r;

        if (p->n_headers > AWS_POST_HEADERS_MAX)
                return -EINVAL;
        headers[0] = (SigV4Header){ "Host", p->host };
        memcpy(headers + 1, p->headers, p->n_headers * sizeof(SigV4Header));
        const SigV4Request req = {
                .method = "POST",
                .path = p->path,
                .headers = headers,
                .n_headers = p->n_headers + 1,
                .body = p->body,
                .body_len = strlen(p->body),
                .region = p->region,
                .service = p->service,
        };
        creds = aws_credentials_sigv4(p->credentials);
        r = sigv4_sign(&req, &creds, now_usec, &sig);
        if (r < 0)
                return r;

        const CurlRequest creq = {
                .method = "POST",
                .url = p->url,
                .headers = sigv4_signature_all_headers(sig),
                .body = p->body,
                .body_len = strlen(p->body),
                .max_response_body = p->max_response_body,
                .ca_file = p->ca_file,
                .connect_to = p->connect_to,
        };
        /* curl_event_request() copies the headers and the body. */
        return curl_event_request(curl, &creq, handler, userdata, ret);
}

int aws_url_split(const char *url, char **ret_host, char **ret_path) {
        const char *p, *slash;

        if (strncmp(url, "https://", 8) == 0)
                p = url + 8;
        else if (strncmp(url, "http://", 7) == 0)
                p = url + 7;
        else
                return -EINVAL;
        slash = strchr(p, '/');
        if (slash == p || strpbrk(p, "?#@ \t\r\n"))
                return -EINVAL;
        *ret_host = slash ? mem_strndup(p, (size_t) (slash - p)) : mem_strdup(p);
        *ret_path = mem_strdup(slash ? slash : "/");
        if (!*ret_host || !*ret_path) {
                free(*ret_host);
                free(*ret_path);
                return -ENOMEM;
        }
        return 0;
}

struct AwsCall {
        CurlEvent *curl;
        AwsCredentialsProvider *provider;
        AwsCredentialsWait *wait;
        CurlTransfer *transfer;
        AwsPost post; /* its strings and headers belong to the call */
        SigV4Header *headers;
        AwsCallHandler handler;
        void *userdata;
};

static uint64_t now_realtime(void) {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / NSEC_PER_USEC;
}

AwsCall *aws_call_free(AwsCall *c) {
        if (!c)
                return NULL;
        curl_event_transfer_free(c->transfer);
        aws_credentials_wait_free(c->wait);
        for (size_t i = 0; c->headers && i < c->post.n_headers; i++) {
                free((char *) c->headers[i].name);
                free((char *) c->headers[i].value);
        }
        free(c->headers);
        free((char *) c->post.url);
        free((char *) c->post.host);
        free((char *) c->post.path);
        free((char *) c->post.body);
        free((char *) c->post.region);
        free((char *) c->post.service);
        free((char *) c->post.ca_file);
        strv_free((char **) c->post.connect_to);
        free(c);
        return NULL;
}

/* A 403 that says our keys expired or are unknown. */
static bool stale_credentials(int result, const CurlResponse *resp) {
        static const char *const words[] = { "ExpiredToken", "InvalidClientTokenId", "UnrecognizedClient" };
        const char *type = resp ? curl_event_response_header(resp, "x-amzn-ErrorType") : NULL;

        if (result != 403 || !resp)
                return false;
        for (size_t i = 0; i < ELEMENTSOF(words); i++)
                if ((type && strstr(type, words[i])) || memmem(resp->body, resp->body_len, words[i], strlen(words[i])))
                        return true;
        return false;
}

static void on_call_response(int result, const CurlResponse *resp, void *userdata) {
        AwsCall *c = userdata;

        if (c->provider && stale_credentials(result, resp))
                aws_credentials_provider_invalidate(c->provider);
        c->handler(result, resp, false, c->userdata);
}

static void on_call_credentials(int r, const AwsCredentials *creds, void *userdata) {
        AwsCall *c = userdata;

        c->wait = aws_credentials_wait_free(c->wait);
        if (r < 0) {
                c->handler(r, NULL, true, c->userdata);
                return;
        }
        c->post.credentials = creds;
        r = aws_post(c->curl, &c->post, now_realtime(), on_call_response, c, &c->transfer);
        c->post.credentials = NULL;
        if (r < 0)
                c->handler(r, NULL, false, c->userdata);
}

static char *dup_or_null(const char *s, bool *oom) {
        char *d;

        if (!s)
                return NULL;
        d = mem_strdup(s);
        if (!d)
                *oom = true;
        return d;
}

int aws_call(CurlEvent *curl, AwsCredentialsProvider *provider, const AwsPost *p, AwsCallHandler handler,
             void *userdata, AwsCall **ret) {
        _cleanup_(aws_call_freep) AwsCall *c = NULL;
        bool oom = false;
        int r;

        if (p->n_headers > AWS_POST_HEADERS_MAX || !p->body || !handler)
                return -EINVAL;
        c = mem_new(AwsCall, 1);
        if (!c)
                return -ENOMEM;
        c->curl = curl;
        c->provider = provider;
        c->handler = handler;
        c->userdata = userdata;
        c->post = (AwsPost){
                .url = dup_or_null(p->url, &oom),
                .host = dup_or_null(p->host, &oom),
                .path = dup_or_null(p->path, &oom),
                .body = dup_or_null(p->body, &oom),
                .region = dup_or_null(p->region, &oom),
                .service = dup_or_null(p->service, &oom),
                .ca_file = dup_or_null(p->ca_file, &oom),
                .max_response_body = p->max_response_body,
        };
        c->headers = mem_new(SigV4Header, p->n_headers + 1);
        if (oom || !c->headers || (p->connect_to && !(c->post.connect_to = strv_copy(p->connect_to))))
                return -ENOMEM;
        for (size_t i = 0; i < p->n_headers; i++) {
                c->headers[i].name = dup_or_null(p->headers[i].name, &oom);
                c->headers[i].value = dup_or_null(p->headers[i].value, &oom);
                c->post.n_headers = i + 1;
                if (oom)
                        return -ENOMEM;
        }
        c->post.headers = c->headers;

        if (provider)
                r = aws_credentials_provider_get(provider, on_call_credentials, c, &c->wait);
        else if (p->credentials)
                r = aws_post(curl, p, now_realtime(), on_call_response, c, &c->transfer);
        else
                r = -EINVAL;
        if (r < 0)
                return r;
        *ret = TAKE_PTR(c);
        return 0;
}
