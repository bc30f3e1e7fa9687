/* SPDX-License-Identifier: MIT */
/*
 * http.h — the HTTP service: libmicrohttpd driven from the daemon's
 * sd-event loop (MHD's own epoll fd is watched by the loop; no threads),
 * with a route table, a body cap enforced before the handler runs,
 * connection limits and timeouts.  Handlers build their response in
 * memory; 404 and 405 (with Allow) come from the table.
 *
 * Security: everything here is untrusted network input.  Bodies are
 * capped (413), connections are limited in number, per client address and
 * in idle time, and header memory is bounded by MHD's connection memory
 * limit.  A request must arrive whole by a deadline (head, then body),
 * however slowly it trickles, and when every slot is taken the connection
 * that has waited longest for its request is closed to let a new one in,
 * so slow clients cannot hold the service (slowloris).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "macro.h"
#include "metrics.h"

typedef struct HttpServer HttpServer;

/* A request whose answer comes later (after a commit, a download …). */
typedef struct HttpPending HttpPending;

typedef struct HttpRequest {
        const char *method;
        const char *path; /* without the query string */
        const char *body;
        size_t body_len;
        void *connection; /* struct MHD_Connection *, for header look-ups */
        HttpPending *pending; /* for http_request_defer() */
} HttpRequest;

typedef struct HttpResponse {
        unsigned status;
        const char *content_type; /* static string */
        char *body; /* malloc'd, freed by the server; may be NULL */
        size_t body_len;
        const char *const *headers; /* more headers: name, value, …, NULL (static); may be NULL */
} HttpResponse;

typedef void (*HttpHandler)(void *userdata, const HttpRequest *req, HttpResponse *resp);

typedef struct HttpRoute {
        const char *method;
        const char *path; /* exact match, or a prefix when it ends in '/' */
        HttpHandler handler;
} HttpRoute;

typedef struct HttpOptions {
        uint64_t max_body;
        uint64_t connection_timeout_usec; /* idle: reset by every byte */
        uint64_t header_timeout_usec; /* from accept, or the previous answer, to a whole request head */
        uint64_t body_timeout_usec; /* from the head to the whole body */
        unsigned max_connections;
        unsigned max_connections_per_ip;
} HttpOptions;

/* Serve on listen_fd (taken over) from loop e.  Returns 0 or -errno. */
int http_server_new(sd_event *e, int listen_fd, const HttpOptions *opts, const HttpRoute *routes, size_t n_routes,
                    void *userdata, Metrics *metrics, HttpServer **ret);

/* Close the listening socket; connections already open are served on. */
void http_server_stop_accepting(HttpServer *s);

/* Reloadable limits. */
void http_server_set_max_body(HttpServer *s, uint64_t max_body);

unsigned http_server_n_connections(HttpServer *s);

/* Called by a handler that cannot answer yet: it returns without setting
 * a response, and the connection waits (suspended, costing no polling)
 * until http_pending_finish().  The request body stays valid until then.
 * Every deferred request must be finished, also when the daemon stops. */
HttpPending *http_request_defer(const HttpRequest *req);

/* Answer a deferred request; takes resp->body.  */
void http_pending_finish(HttpPending *p, HttpResponse *resp);

/* Deferred requests not finished yet. */
unsigned http_server_n_pending(HttpServer *s);

/* Value of a request header, or NULL. */
const char *http_request_header(const HttpRequest *req, const char *name);

/* Set a text response (copies text).  -ENOMEM leaves a 500 without body. */
int http_response_text(HttpResponse *resp, unsigned status, const char *content_type, const char *text);

HttpServer *http_server_free(HttpServer *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(HttpServer *, http_server_free);
