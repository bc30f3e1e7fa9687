/* SPDX-License-Identifier: MIT */
/*
 * aws-request.c — signed AWS POSTs on the loop.
 *
 * Security: see aws-request.h.
 */
#include "aws-request.h"

#include <errno.h>
#include <string.h>

#include "alloc.h"

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
