/* SPDX-License-Identifier: MIT */
/*
 * http.c — libmicrohttpd on sd-event.
 *
 * MHD runs in "external epoll" mode: it keeps its own epoll set, whose fd
 * we add to the loop; when it is readable, or when MHD's own timeout is
 * due, we call MHD_run().  Everything happens on the loop's thread.
 *
 * On top of MHD, this file keeps every connection's place in its request
 * (waiting for a head, for a body, or busy) with the time it got there,
 * for the request deadlines and for eviction at the connection cap; see
 * doc/internals/http.md.
 *
 * Security: see http.h.
 */
#include "http.h"

#include <errno.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>

#include "alloc.h"
#include "log.h"

/* MHD may hold this many connections beyond max_connections: those we have
 * shut down and it has not closed yet.  It accepts at most about ten
 * connections a run, each of which may evict one, and closes the evicted
 * on its next run, so it needs a dozen; past the slack it turns new
 * connections away itself, as it did before we kept the count. */
#define HTTP_CLOSING_SLACK 32U

/* At most one log line this often about the connections we close: under
 * an attack there are thousands a minute, and the counters have them all. */
#define HTTP_REPORT_INTERVAL_USEC (60 * USEC_PER_SEC)

/* Where a connection is in its request.  The first two are waits with a
 * deadline; the connections in them are the ones eviction picks from. */
typedef enum ConnPhase {
        CONN_HEAD, /* accepted, or answered and kept alive: a request head is due */
        CONN_BODY, /* the head is in, the body is due */
        _CONN_WAITING_MAX,
        CONN_BUSY = _CONN_WAITING_MAX, /* the request is whole: handled, deferred or being answered */
        CONN_CLOSING, /* shut down by us; MHD closes it on its next run */
} ConnPhase;

/* One connection (MHD's socket context). */
typedef struct Conn {
        HttpServer *server;
        int fd;
        ConnPhase phase;
        uint64_t since; /* CLOCK_MONOTONIC µs at which the phase began */
        struct Conn *prev, *next; /* in server->waiting[phase] */
} Conn;

/* The connections in one waiting phase, oldest first: one joins at the
 * tail when it enters the phase, and the clock only moves on, so the head
 * has both the first deadline and the longest wait. */
typedef struct ConnQueue {
        Conn *head, *tail;
} ConnQueue;

/* What each waiting phase's deadline is counted in. */
static const MetricId phase_timeout_metric[_CONN_WAITING_MAX] = {
        [CONN_HEAD] = METRIC_HTTP_CLOSED_HEADER_TIMEOUT,
        [CONN_BODY] = METRIC_HTTP_CLOSED_BODY_TIMEOUT,
};

/* The counters the log reports on, in the order of its message. */
static const MetricId reported_metrics[] = { METRIC_HTTP_CLOSED_HEADER_TIMEOUT, METRIC_HTTP_CLOSED_BODY_TIMEOUT,
                                             METRIC_HTTP_CLOSED_EVICTED, METRIC_HTTP_CLOSED_FULL };

struct HttpServer {
        struct MHD_Daemon *daemon;
        sd_event *event;
        sd_event_source *io;
        sd_event_source *timer;
        const HttpRoute *routes;
        size_t n_routes;
        void *userdata;
        Metrics *metrics;
        uint64_t max_body;
        bool accepting;
        unsigned n_pending;

        ConnQueue waiting[_CONN_WAITING_MAX];
        uint64_t timeout[_CONN_WAITING_MAX]; /* header_timeout, body_timeout */
        unsigned max_connections;
        unsigned n_open; /* connections not shut down by us */
        uint64_t reported[ELEMENTSOF(reported_metrics)]; /* the counters at the last report */
        uint64_t report_after; /* no report before this (CLOCK_MONOTONIC µs) */
        /* 503, made at start: the answer when memory for another one, or
         * for the request, cannot be had (the sender tries again; without
         * it MHD would close the connection unanswered). */
        struct MHD_Response *unavailable;
};

/* Per-request state while the body arrives. */
typedef struct Upload {
        HttpServer *server;
        struct MHD_Connection *connection;
        const HttpRoute *route;
        char *body;
        size_t len;
        bool too_large;
        bool no_memory; /* the body could not be kept: answered 503 */
        bool deferred; /* suspended, waiting for http_pending_finish() */
        bool answered; /* the deferred answer is in resp */
        bool suspended;
        HttpResponse resp;
} Upload;

/* The pending handle is the request's own state. */
struct HttpPending {
        Upload upload;
};

static int http_reschedule(HttpServer *s);

static uint64_t http_now(HttpServer *s) {
        uint64_t now = 0;

        (void) sd_event_now(s->event, CLOCK_MONOTONIC, &now);
        return now;
}

static void conn_queue_remove(ConnQueue *q, Conn *c) {
        if (c->prev)
                c->prev->next = c->next;
        else
                q->head = c->next;
        if (c->next)
                c->next->prev = c->prev;
        else
                q->tail = c->prev;
        c->prev = c->next = NULL;
}

static void conn_queue_append(ConnQueue *q, Conn *c) {
        c->prev = q->tail;
        c->next = NULL;
        if (q->tail)
                q->tail->next = c;
        else
                q->head = c;
        q->tail = c;
}

/* Move c (NULL: an untracked connection) to phase, as of now.  A connection
 * we shut down stays so: MHD may still finish its request before it sees
 * the hang-up. */
static void conn_enter(Conn *c, ConnPhase phase, uint64_t now) {
        if (!c || c->phase == CONN_CLOSING)
                return;
        if (c->phase < _CONN_WAITING_MAX)
                conn_queue_remove(&c->server->waiting[c->phase], c);
        c->phase = phase;
        c->since = now;
        if (phase < _CONN_WAITING_MAX)
                conn_queue_append(&c->server->waiting[phase], c);
        if (phase == CONN_CLOSING)
                c->server->n_open--;
}

/* Close c for reason why.  MHD owns the socket: shutting it down makes MHD
 * see a hang-up on its next run and close the connection as any other (its
 * callbacks and all); close() here would pull the fd from under it. */
static void conn_close(Conn *c, MetricId why) {
        conn_enter(c, CONN_CLOSING, 0);
        (void) shutdown(c->fd, SHUT_RDWR);
        metrics_inc(c->server->metrics, why);
}

static Conn *conn_of(struct MHD_Connection *connection) {
        const union MHD_ConnectionInfo *info = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

        return info ? info->socket_context : NULL;
}

/* Close the connections whose wait is over.  A deadline counts from the
 * start of the wait, never from the last byte: MHD's own timeout is an idle
 * one, which a client sending a byte a second resets for ever. */
static void http_expire(HttpServer *s, uint64_t now) {
        for (ConnPhase p = 0; p < _CONN_WAITING_MAX; p++)
                while (s->waiting[p].head && s->waiting[p].head->since + s->timeout[p] <= now)
                        conn_close(s->waiting[p].head, phase_timeout_metric[p]);
}

/* A connection came in over max_connections: close the one that has
 * waited longest for (its part of) a request.  A client that means it
 * sends its head in milliseconds, so the longest waiting are the slow ones;
 * the new connection has waited least and is closed only when nothing
 * else waits (everything else is busy with a request).  Between a head and
 * a body waiting as long, the head goes: it has sent the least. */
static void http_make_room(HttpServer *s, Conn *incoming) {
        Conn *victim = s->waiting[CONN_HEAD].head; /* never NULL: incoming is in that queue */
        Conn *body = s->waiting[CONN_BODY].head;

        if (body && body->since < victim->since)
                victim = body;
        conn_close(victim, victim == incoming ? METRIC_HTTP_CLOSED_FULL : METRIC_HTTP_CLOSED_EVICTED);
}

static uint64_t http_unreported(HttpServer *s, size_t i) {
        return s->metrics->value[reported_metrics[i]] - s->reported[i];
}

static bool http_report_due(HttpServer *s) {
        for (size_t i = 0; i < ELEMENTSOF(reported_metrics); i++)
                if (http_unreported(s, i) > 0)
                        return true;
        return false;
}

/* Log the connections closed since the last report, at most once per
 * HTTP_REPORT_INTERVAL_USEC.  Evicting and turning away mean the cap was
 * reached (an attack, or too low a cap): a warning.  Slow clients alone
 * happen (mobile links, scanners): a notice. */
static void http_report(HttpServer *s, uint64_t now) {
        uint64_t n[ELEMENTSOF(reported_metrics)];

        if (now < s->report_after || !http_report_due(s))
                return;
        for (size_t i = 0; i < ELEMENTSOF(reported_metrics); i++) {
                n[i] = http_unreported(s, i);
                s->reported[i] += n[i];
        }
        log_full(n[2] + n[3] > 0 ? LOG_WARNING : LOG_NOTICE,
                 "HTTP: closed %" PRIu64 " connection(s) too slow to send their request (%" PRIu64
                 " past http.header_timeout, %" PRIu64 " past http.body_timeout); at http.max_connections=%u, "
                 "evicted %" PRIu64 " waiting one(s) to let new ones in and turned away %" PRIu64
                 " new one(s) with all others busy. Reported at most once a minute; "
                 "deliveryd_http_connections_closed_total counts them all.",
                 n[0] + n[1], n[0], n[1], s->max_connections, n[2], n[3]);
        s->report_after = now + HTTP_REPORT_INTERVAL_USEC;
}

static void http_run(HttpServer *s) {
        http_expire(s, http_now(s));
        (void) MHD_run(s->daemon);
        http_report(s, http_now(s));
        (void) http_reschedule(s);
}

static int on_io(sd_event_source *src _unused_, int fd _unused_, uint32_t revents _unused_, void *userdata) {
        http_run(userdata);
        return 0;
}

static int on_timer(sd_event_source *src _unused_, uint64_t usec _unused_, void *userdata) {
        http_run(userdata);
        return 0;
}

/* One timer for MHD's timeout, the first request deadline and a report
 * held back by the rate limit, whichever comes first. */
static int http_reschedule(HttpServer *s) {
        MHD_UNSIGNED_LONG_LONG ms;
        uint64_t when = UINT64_MAX;

        for (ConnPhase p = 0; p < _CONN_WAITING_MAX; p++)
                if (s->waiting[p].head)
                        when = MIN(when, s->waiting[p].head->since + s->timeout[p]);
        if (http_report_due(s))
                when = MIN(when, s->report_after);
        if (MHD_get_timeout(s->daemon, &ms) == MHD_YES)
                when = MIN(when, http_now(s) + (uint64_t) ms * USEC_PER_MSEC);
        if (when == UINT64_MAX)
                return sd_event_source_set_enabled(s->timer, SD_EVENT_OFF);
        (void) sd_event_source_set_time(s->timer, when);
        return sd_event_source_set_enabled(s->timer, SD_EVENT_ONESHOT);
}

/* MHD has accepted a connection, or is done with one. */
static void on_connection(void *cls, struct MHD_Connection *connection, void **socket_context,
                          enum MHD_ConnectionNotificationCode code) {
        HttpServer *s = cls;
        const union MHD_ConnectionInfo *info;
        Conn *c = *socket_context;

        if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
                /* MHD closes the fd after this: nothing may shut it down later. */
                if (c) {
                        conn_enter(c, CONN_CLOSING, 0);
                        free(c);
                }
                *socket_context = NULL;
                return;
        }

        info = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (!info)
                return; /* cannot happen: MHD has the fd before it calls us */
        c = mem_new(Conn, 1);
        if (!c) {
                /* Untracked, it would escape the deadlines and the cap. */
                (void) shutdown(info->connect_fd, SHUT_RDWR);
                return;
        }
        c->server = s;
        c->fd = info->connect_fd;
        c->phase = CONN_BUSY; /* out of every queue, for conn_enter() */
        s->n_open++;
        conn_enter(c, CONN_HEAD, http_now(s));
        *socket_context = c;
        if (s->n_open > s->max_connections)
                http_make_room(s, c);
}

static void mhd_log(void *cls _unused_, const char *fmt, va_list ap) {
        char buf[512];

        vsnprintf(buf, sizeof buf, fmt, ap);
        buf[strcspn(buf, "\n")] = '\0';
        log_debug("http: %s", buf);
}

static bool route_matches_path(const HttpRoute *r, const char *path) {
        size_t l = strlen(r->path);

        if (l > 0 && r->path[l - 1] == '/')
                return strncmp(path, r->path, l) == 0 && path[l] != '\0';
        return streq(path, r->path);
}

static void count_status(HttpServer *s, unsigned status) {
        if (status >= 500)
                metrics_inc(s->metrics, METRIC_HTTP_REQUESTS_5XX);
        else if (status >= 400)
                metrics_inc(s->metrics, METRIC_HTTP_REQUESTS_4XX);
        else
                metrics_inc(s->metrics, METRIC_HTTP_REQUESTS_2XX);
}

static enum MHD_Result queue_unavailable(HttpServer *s, struct MHD_Connection *c) {
        count_status(s, MHD_HTTP_SERVICE_UNAVAILABLE);
        return MHD_queue_response(c, MHD_HTTP_SERVICE_UNAVAILABLE, s->unavailable);
}

static enum MHD_Result queue(HttpServer *s, struct MHD_Connection *c, HttpResponse *resp, const char *allow) {
        struct MHD_Response *r;
        enum MHD_Result ret;

        r = MHD_create_response_from_buffer(resp->body_len, resp->body, MHD_RESPMEM_MUST_FREE);
        if (!r) {
                /* Even a 2xx: a sender told 503 tries again, and the
                 * inbox knows the message already. */
                free(resp->body);
                return queue_unavailable(s, c);
        }
        resp->body = NULL;
        if (resp->content_type)
                MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, resp->content_type);
        if (allow)
                MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
        for (const char *const *h = resp->headers; h && h[0] && h[1]; h += 2)
                MHD_add_response_header(r, h[0], h[1]);
        MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
        MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
        ret = MHD_queue_response(c, resp->status, r);
        MHD_destroy_response(r);
        count_status(s, resp->status);
        return ret;
}

static enum MHD_Result queue_text(HttpServer *s, struct MHD_Connection *c, unsigned status, const char *text,
                                  const char *allow) {
        HttpResponse resp = {};

        (void) http_response_text(&resp, status, "text/plain; charset=utf-8", text);
        return queue(s, c, &resp, allow);
}

int http_response_text(HttpResponse *resp, unsigned status, const char *content_type, const char *text) {
        resp->status = status;
        resp->content_type = content_type;
        free(resp->body);
        resp->body_len = strlen(text);
        resp->body = mem_strdup(text);
        if (!resp->body) {
                resp->status = 500;
                resp->body_len = 0;
                return -ENOMEM;
        }
        return 0;
}

const char *http_request_header(const HttpRequest *req, const char *name) {
        return MHD_lookup_connection_value(req->connection, MHD_HEADER_KIND, name);
}

/* The first call for a request: pick the route, or answer 404/405/413. */
static enum MHD_Result begin_request(HttpServer *s, struct MHD_Connection *c, const char *method, const char *url,
                                     void **con_cls) {
        const HttpRoute *match = NULL;
        char allow[128] = "";
        const char *cl;
        Upload *u;

        for (size_t i = 0; i < s->n_routes; i++) {
                if (!route_matches_path(&s->routes[i], url))
                        continue;
                if (streq(s->routes[i].method, method)) {
                        match = &s->routes[i];
                        break;
                }
                if (!strstr(allow, s->routes[i].method)) {
                        if (*allow)
                                strncat(allow, ", ", sizeof allow - strlen(allow) - 1);
                        strncat(allow, s->routes[i].method, sizeof allow - strlen(allow) - 1);
                }
        }
        if (!match) {
                if (*allow)
                        return queue_text(s, c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n", allow);
                return queue_text(s, c, MHD_HTTP_NOT_FOUND, "not found\n", NULL);
        }

        cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl) {
                char *end;
                errno = 0;
                unsigned long long v = strtoull(cl, &end, 10);
                if (errno == 0 && *end == '\0' && v > s->max_body) {
                        metrics_inc(s->metrics, METRIC_REJECTED_SIZE);
                        return queue_text(s, c, MHD_HTTP_CONTENT_TOO_LARGE, "request body too large\n", NULL);
                }
        }

        u = (Upload *) mem_new(HttpPending, 1);
        if (!u)
                return queue_unavailable(s, c);
        u->server = s;
        u->connection = c;
        u->route = match;
        *con_cls = u;
        return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version _unused_, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls) {
        HttpServer *s = cls;
        Upload *u = *con_cls;

        if (!u) {
                /* The head is in: from now on the body is due. */
                Conn *conn = conn_of(c);
                enum MHD_Result r;

                conn_enter(conn, CONN_BODY, http_now(s));
                r = begin_request(s, c, method, url, con_cls);
                if (!*con_cls)
                        conn_enter(conn, CONN_BUSY, 0); /* answered already (404, 405, 413) */
                return r;
        }

        if (u->deferred) {
                /* Resumed: the answer is in. */
                if (!u->answered)
                        return MHD_YES;
                u->deferred = false;
                return queue(s, c, &u->resp, NULL);
        }

        if (*upload_data_size > 0) {
                /* Without a Content-Length (chunked) the cap is enforced here. */
                if (!u->too_large && u->len + *upload_data_size > s->max_body)
                        u->too_large = true;
                if (!u->too_large && !u->no_memory) {
                        char *b = mem_realloc(u->body, u->len + *upload_data_size + 1);
                        if (!b) {
                                u->no_memory = true; /* the rest is read and dropped */
                                *upload_data_size = 0;
                                return MHD_YES;
                        }
                        memcpy(b + u->len, upload_data, *upload_data_size);
                        u->len += *upload_data_size;
                        b[u->len] = '\0';
                        u->body = b;
                }
                *upload_data_size = 0;
                return MHD_YES;
        }

        /* The request is whole; whatever it waits for now is ours. */
        conn_enter(conn_of(c), CONN_BUSY, 0);
        if (u->too_large) {
                metrics_inc(s->metrics, METRIC_REJECTED_SIZE);
                return queue_text(s, c, MHD_HTTP_CONTENT_TOO_LARGE, "request body too large\n", NULL);
        }
        if (u->no_memory)
                return queue_unavailable(s, c);

        HttpRequest req = {
                .method = method,
                .path = url,
                .body = u->body ? u->body : "",
                .body_len = u->len,
                .connection = c,
                .pending = (HttpPending *) u,
        };
        HttpResponse resp = { .status = 500 };
        u->route->handler(s->userdata, &req, &resp);
        if (u->deferred) {
                if (!u->answered) {
                        s->n_pending++;
                        u->suspended = true;
                        MHD_suspend_connection(c);
                        return MHD_YES;
                }
                /* finished from within the handler */
                u->deferred = false;
                return queue(s, c, &u->resp, NULL);
        }
        return queue(s, c, &resp, NULL);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe _unused_) {
        Upload *u = *con_cls;

        /* Kept alive, the connection waits for the next head, under the same
         * deadline as a new one: an idle keep-alive connection holds a slot
         * as a slow one does.  (MHD also calls here for a connection it is
         * closing; NOTIFY_CLOSED follows and takes it out again.) */
        conn_enter(conn_of(c), CONN_HEAD, http_now(cls));

        if (u) {
                free(u->body);
                free(u->resp.body);
                free(u);
        }
        *con_cls = NULL;
}

HttpPending *http_request_defer(const HttpRequest *req) {
        Upload *u = &req->pending->upload;

        u->deferred = true;
        return req->pending;
}

void http_pending_finish(HttpPending *p, HttpResponse *resp) {
        Upload *u = &p->upload;
        HttpServer *s = u->server;
        free(u->resp.body);
        u->resp = *resp;
        resp->body = NULL;
        u->answered = true;
        if (!u->suspended)
                return; /* still inside the handler: on_request queues it */
        u->suspended = false;
        s->n_pending--;
        MHD_resume_connection(u->connection);
        /* MHD notices the resumed connection on its next run: make that now. */
        (void) sd_event_source_set_time(s->timer, 0);
        (void) sd_event_source_set_enabled(s->timer, SD_EVENT_ONESHOT);
}

unsigned http_server_n_pending(HttpServer *s) {
        return s ? s->n_pending : 0;
}

int http_server_new(sd_event *e, int listen_fd, const HttpOptions *opts, const HttpRoute *routes, size_t n_routes,
                    void *userdata, Metrics *metrics, HttpServer **ret) {
        _cleanup_(http_server_freep) HttpServer *s = NULL;
        const union MHD_DaemonInfo *info;
        unsigned timeout_s;
        int r;

        s = mem_new(HttpServer, 1);
        if (!s)
                return -ENOMEM;
        s->event = sd_event_ref(e);
        s->routes = routes;
        s->n_routes = n_routes;
        s->userdata = userdata;
        s->metrics = metrics;
        s->max_body = opts->max_body;
        s->timeout[CONN_HEAD] = opts->header_timeout_usec;
        s->timeout[CONN_BODY] = opts->body_timeout_usec;
        s->max_connections = opts->max_connections;

        static const char unavailable[] = "out of memory; try again\n";
        s->unavailable =
                MHD_create_response_from_buffer(sizeof unavailable - 1, (void *) unavailable, MHD_RESPMEM_PERSISTENT);
        if (!s->unavailable ||
            MHD_add_response_header(s->unavailable, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8") !=
                    MHD_YES ||
            MHD_add_response_header(s->unavailable, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store") != MHD_YES ||
            MHD_add_response_header(s->unavailable, MHD_HTTP_HEADER_RETRY_AFTER, "1") != MHD_YES) {
                close(listen_fd);
                return -ENOMEM;
        }

        timeout_s = (unsigned) MAX(1, opts->connection_timeout_usec / USEC_PER_SEC);
        s->daemon = MHD_start_daemon(
                MHD_USE_EPOLL | MHD_USE_ERROR_LOG | MHD_USE_SUSPEND_RESUME, 0, NULL, NULL, on_request, s,
                MHD_OPTION_LISTEN_SOCKET, listen_fd, MHD_OPTION_CONNECTION_TIMEOUT, timeout_s,
                /* max_connections is ours to enforce (by eviction, on_connection()); MHD
                 * at its own limit would refuse instead, and evict no one. */
                MHD_OPTION_CONNECTION_LIMIT, opts->max_connections + HTTP_CLOSING_SLACK,
                MHD_OPTION_PER_IP_CONNECTION_LIMIT, opts->max_connections_per_ip, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
                (size_t) 32 * 1024, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_NOTIFY_CONNECTION,
                on_connection, s, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s, MHD_OPTION_END);
        if (!s->daemon) {
                close(listen_fd);
                return -EIO;
        }
        s->accepting = true;

        info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_EPOLL_FD);
        if (!info)
                return -EIO;
        r = sd_event_add_io(e, &s->io, info->epoll_fd, EPOLLIN, on_io, s);
        if (r < 0)
                return r;
        /* Accuracy 1 µs: MHD's timeout is often "now" (buffered data to
         * process), and sd-event's default accuracy of 250 ms would stall
         * every such connection by that much. */
        r = sd_event_add_time(e, &s->timer, CLOCK_MONOTONIC, 0, 1, on_timer, s);
        if (r < 0)
                return r;
        r = http_reschedule(s);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(s);
        return 0;
}

void http_server_stop_accepting(HttpServer *s) {
        if (!s || !s->accepting)
                return;
        int fd = MHD_quiesce_daemon(s->daemon);
        if (fd >= 0)
                close(fd);
        s->accepting = false;
}

void http_server_set_max_body(HttpServer *s, uint64_t max_body) {
        s->max_body = max_body;
}

unsigned http_server_n_connections(HttpServer *s) {
        const union MHD_DaemonInfo *info;

        if (!s)
                return 0;
        info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
        return info ? info->num_connections : 0;
}

HttpServer *http_server_free(HttpServer *s) {
        if (!s)
                return NULL;
        sd_event_source_disable_unref(s->io);
        sd_event_source_disable_unref(s->timer);
        if (s->daemon)
                MHD_stop_daemon(s->daemon);
        if (s->unavailable)
                MHD_destroy_response(s->unavailable);
        sd_event_unref(s->event);
        free(s);
        return NULL;
}
