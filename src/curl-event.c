/* SPDX-License-Identifier: MIT */
/*
 * curl-event.c — libcurl's multi-socket API on sd-event.
 *
 * libcurl tells us which sockets to watch (CURLMOPT_SOCKETFUNCTION) and
 * when to call it back (CURLMOPT_TIMERFUNCTION); we turn those into
 * sd-event io sources and one timer, and call curl_multi_socket_action()
 * when they fire.  Finished transfers are collected with
 * curl_multi_info_read() and their handlers called from there, never from
 * inside a libcurl callback, so a handler may do anything (start, cancel,
 * free the client).
 *
 * Neither callback may fail: when one returns -1, libcurl marks the whole
 * multi handle dead and fails every later transfer.  When we cannot watch
 * a socket, we fail only the transfer it belongs to, after the current
 * curl_multi_socket_action() returns.
 *
 * Security: see curl-event.h.
 */
#include "curl-event.h"

#include <curl/curl.h>
#include <errno.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <time.h>

#include "alloc.h"
#include "strutil.h"

typedef struct CurlSocket CurlSocket;

struct CurlSocket {
        CurlEvent *ce;
        sd_event_source *source;
        CurlSocket *prev, *next;
};

struct CurlEvent {
        sd_event *event;
        CURLM *multi;
        sd_event_source *timer;
        sd_event_source *sweep; /* runs finish_transfers() for fail_later() */
        CurlTransfer *transfers; /* in flight */
        CurlSocket *sockets;
        unsigned n_pending;
        unsigned dispatching; /* inside finish_transfers(), where handlers run */
        bool free_pending; /* curl_event_free() was called from a handler */
        bool failed_pending; /* a transfer has fail_errno set */
};

struct CurlTransfer {
        CurlEvent *ce; /* NULL once finished or cancelled */
        CurlTransfer *prev, *next;
        CURL *easy;
        struct curl_slist *headers;
        struct curl_slist *connect_to;
        char *body; /* our copy of the request body */
        bool floating;

        CurlEventHandler handler;
        void *userdata;

        char *buf; /* response body */
        size_t len, allocated, max;
        char **resp_headers;
        size_t n_headers, header_bytes;
        bool too_large;
        int fail_errno; /* set by a callback: finish with this error */
        char error[CURL_ERROR_SIZE];
};

static void finish_transfers(CurlEvent *ce);

/* ---- list helpers --------------------------------------------------------- */

#define LIST_PREPEND(head, item)                                                                                       \
        do {                                                                                                           \
                (item)->prev = NULL;                                                                                   \
                (item)->next = (head);                                                                                 \
                if (head)                                                                                              \
                        (head)->prev = (item);                                                                         \
                (head) = (item);                                                                                       \
        } while (false)

#define LIST_REMOVE(head, item)                                                                                        \
        do {                                                                                                           \
                if ((item)->next)                                                                                      \
                        (item)->next->prev = (item)->prev;                                                             \
                if ((item)->prev)                                                                                      \
                        (item)->prev->next = (item)->next;                                                             \
                else                                                                                                   \
                        (head) = (item)->next;                                                                         \
                (item)->prev = (item)->next = NULL;                                                                    \
        } while (false)

/* ---- sockets and the timer ------------------------------------------------ */

static void run_action(CurlEvent *ce, curl_socket_t fd, int action) {
        int running;

        (void) curl_multi_socket_action(ce->multi, fd, action, &running);
        finish_transfers(ce);
}

static int on_io(sd_event_source *s _unused_, int fd, uint32_t revents, void *userdata) {
        CurlSocket *cs = userdata;
        int action = 0;

        if (revents & EPOLLIN)
                action |= CURL_CSELECT_IN;
        if (revents & EPOLLOUT)
                action |= CURL_CSELECT_OUT;
        if (revents & (EPOLLERR | EPOLLHUP))
                action |= CURL_CSELECT_ERR;
        run_action(cs->ce, fd, action);
        return 0;
}

static int on_timer(sd_event_source *s _unused_, uint64_t usec _unused_, void *userdata) {
        run_action(userdata, CURL_SOCKET_TIMEOUT, 0);
        return 0;
}

static void arm_timer(CurlEvent *ce, uint64_t delay_usec) {
        uint64_t now = 0;

        (void) sd_event_now(ce->event, CLOCK_MONOTONIC, &now);
        (void) sd_event_source_set_time(ce->timer, now + delay_usec);
        (void) sd_event_source_set_enabled(ce->timer, SD_EVENT_ONESHOT);
}

static int on_sweep(sd_event_source *s _unused_, void *userdata) {
        finish_transfers(userdata);
        return 0;
}

/* Fail the transfer of easy once libcurl is off the stack.  The sweep
 * source exists from the start, so this cannot fail in turn. */
static void fail_later(CurlEvent *ce, CURL *easy, int error) {
        CurlTransfer *t = NULL;

        if (curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **) &t) != CURLE_OK || !t || t->ce != ce)
                return; /* not one of ours (libcurl's own handle): its timeout bounds it */
        if (t->fail_errno == 0)
                t->fail_errno = error;
        ce->failed_pending = true;
        (void) sd_event_source_set_enabled(ce->sweep, SD_EVENT_ONESHOT);
}

static CurlSocket *curl_socket_free(CurlSocket *cs) {
        if (!cs)
                return NULL;
        LIST_REMOVE(cs->ce->sockets, cs);
        sd_event_source_disable_unref(cs->source);
        free(cs);
        return NULL;
}

static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp) {
        CurlEvent *ce = userp;
        CurlSocket *cs = socketp;
        uint32_t events = 0;
        int r;

        if (what == CURL_POLL_REMOVE) {
                /* libcurl forgets its pointer to cs itself. */
                curl_socket_free(cs);
                return 0;
        }

        if (what & CURL_POLL_IN)
                events |= EPOLLIN;
        if (what & CURL_POLL_OUT)
                events |= EPOLLOUT;

        if (cs) {
                r = sd_event_source_set_io_events(cs->source, events);
                if (r < 0)
                        fail_later(ce, easy, r);
                return 0;
        }

        cs = mem_new(CurlSocket, 1);
        if (!cs) {
                fail_later(ce, easy, -ENOMEM);
                return 0;
        }
        cs->ce = ce;
        r = sd_event_add_io(ce->event, &cs->source, fd, events, on_io, cs);
        if (r < 0) {
                free(cs);
                fail_later(ce, easy, r);
                return 0;
        }
        LIST_PREPEND(ce->sockets, cs);
        if (curl_multi_assign(ce->multi, fd, cs) != CURLM_OK) {
                curl_socket_free(cs);
                fail_later(ce, easy, -ENOMEM);
        }
        return 0;
}

static int on_curl_timer(CURLM *multi _unused_, long timeout_ms, void *userp) {
        CurlEvent *ce = userp;

        if (timeout_ms < 0)
                (void) sd_event_source_set_enabled(ce->timer, SD_EVENT_OFF);
        else
                /* Often 0 ("call me at once"); see the timer's accuracy. */
                arm_timer(ce, (uint64_t) timeout_ms * USEC_PER_MSEC);
        return 0;
}

/* ---- transfers ------------------------------------------------------------ */

static size_t on_write(char *p, size_t size, size_t n, void *userdata) {
        CurlTransfer *t = userdata;
        size_t l = size * n;

        if (l > t->max - t->len) {
                t->too_large = true;
                return 0; /* aborts with CURLE_WRITE_ERROR */
        }
        if (t->len + l + 1 > t->allocated) {
                size_t a = MAX(t->allocated * 2, t->len + l + 1);
                char *b;

                a = MIN(a, t->max + 1);
                b = mem_realloc(t->buf, a);
                if (!b) {
                        t->fail_errno = -ENOMEM;
                        return 0;
                }
                t->buf = b;
                t->allocated = a;
        }
        memcpy(t->buf + t->len, p, l);
        t->len += l;
        t->buf[t->len] = '\0';
        return l;
}

static size_t on_header(char *p, size_t size, size_t n, void *userdata) {
        CurlTransfer *t = userdata;
        size_t l = size * n, k = l;
        char **h;

        /* A status line starts a new response (after a 100 Continue, say):
         * keep only the final one's headers. */
        if (l >= 5 && memcmp(p, "HTTP/", 5) == 0) {
                for (size_t i = 0; i < t->n_headers; i++)
                        free(t->resp_headers[i]);
                t->n_headers = t->header_bytes = 0;
                if (t->resp_headers)
                        t->resp_headers[0] = NULL;
                return l;
        }
        while (k > 0 && (p[k - 1] == '\r' || p[k - 1] == '\n'))
                k--;
        if (k == 0)
                return l; /* the blank line at the end */

        if (t->n_headers >= CURL_EVENT_MAX_HEADERS || t->header_bytes + k > CURL_EVENT_MAX_HEADER_BYTES) {
                t->too_large = true;
                return 0;
        }
        h = mem_realloc(t->resp_headers, (t->n_headers + 2) * sizeof(char *));
        if (!h) {
                t->fail_errno = -ENOMEM;
                return 0;
        }
        t->resp_headers = h;
        h[t->n_headers] = mem_strndup(p, k);
        if (!h[t->n_headers]) {
                h[t->n_headers] = NULL;
                t->fail_errno = -ENOMEM;
                return 0;
        }
        h[++t->n_headers] = NULL;
        t->header_bytes += k;
        return l;
}

/* Take the transfer out of libcurl and the client's list. */
static void transfer_detach(CurlTransfer *t) {
        CurlEvent *ce = t->ce;

        if (ce) {
                (void) curl_multi_remove_handle(ce->multi, t->easy);
                LIST_REMOVE(ce->transfers, t);
                ce->n_pending--;
                t->ce = NULL;
        }
        if (t->easy) {
                curl_easy_cleanup(t->easy);
                t->easy = NULL;
        }
        curl_slist_free_all(t->headers);
        t->headers = NULL;
        curl_slist_free_all(t->connect_to);
        t->connect_to = NULL;
}

static void transfer_free_data(CurlTransfer *t) {
        for (size_t i = 0; i < t->n_headers; i++)
                free(t->resp_headers[i]);
        free(t->resp_headers);
        free(t->buf);
        free(t->body);
        free(t);
}

CurlTransfer *curl_event_transfer_free(CurlTransfer *t) {
        if (!t)
                return NULL;
        transfer_detach(t);
        transfer_free_data(t);
        return NULL;
}

static int curl_code_to_errno(CurlTransfer *t, CURLcode code) {
        long os_errno = 0;

        if (t->fail_errno != 0)
                return t->fail_errno;
        if (t->too_large)
                return -EMSGSIZE;

        switch (code) {
        case CURLE_OPERATION_TIMEDOUT:
                return -ETIMEDOUT;
        case CURLE_COULDNT_CONNECT:
                (void) curl_easy_getinfo(t->easy, CURLINFO_OS_ERRNO, &os_errno);
                return os_errno > 0 ? -(int) os_errno : -ECONNREFUSED;
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_RESOLVE_PROXY:
                return -EHOSTUNREACH;
        case CURLE_FILESIZE_EXCEEDED: /* Content-Length over the cap */
                return -EMSGSIZE;
        case CURLE_OUT_OF_MEMORY:
                return -ENOMEM;
        case CURLE_PEER_FAILED_VERIFICATION:
                return -EPERM;
        case CURLE_SSL_CONNECT_ERROR:
        case CURLE_SSL_CERTPROBLEM:
        case CURLE_SSL_CIPHER:
        case CURLE_SSL_CACERT_BADFILE:
        case CURLE_SSL_ISSUER_ERROR:
        case CURLE_SSL_CRL_BADFILE:
        case CURLE_SSL_ENGINE_NOTFOUND:
        case CURLE_SSL_ENGINE_SETFAILED:
        case CURLE_SSL_ENGINE_INITFAILED:
        case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
        case CURLE_SSL_INVALIDCERTSTATUS:
        case CURLE_SSL_SHUTDOWN_FAILED:
        case CURLE_USE_SSL_FAILED:
                return -EPROTO;
        case CURLE_SEND_ERROR:
        case CURLE_RECV_ERROR:
        case CURLE_GOT_NOTHING:
        case CURLE_PARTIAL_FILE:
                return -ECONNRESET;
        case CURLE_WEIRD_SERVER_REPLY:
        case CURLE_HTTP2:
        case CURLE_HTTP2_STREAM:
        case CURLE_BAD_CONTENT_ENCODING:
                return -EBADMSG;
        case CURLE_UNSUPPORTED_PROTOCOL:
        case CURLE_URL_MALFORMAT:
                return -EINVAL;
        default:
                return -EIO;
        }
}

static void finish_one(CurlTransfer *t, CURLcode code) {
        CurlEventHandler handler = t->handler;
        void *userdata = t->userdata;
        _cleanup_free_ char *body = NULL;
        char **headers, *none = NULL;
        size_t n_headers, len;
        char error[CURL_ERROR_SIZE];
        long status = 0;
        int result;

        (void) curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
        if (code == CURLE_OK && t->fail_errno == 0)
                result = status >= 100 && status <= 599 ? (int) status : -EBADMSG;
        else
                result = curl_code_to_errno(t, code);
        strscpy(error, sizeof error, result < 0 ? (t->error[0] ? t->error : curl_easy_strerror(code)) : "");

        /* Off libcurl and out of the client before the handler runs, which
         * may free the transfer or the client. */
        transfer_detach(t);
        body = TAKE_PTR(t->buf);
        len = t->len;
        headers = TAKE_PTR(t->resp_headers);
        n_headers = t->n_headers;
        t->n_headers = t->len = t->allocated = 0;
        if (t->floating)
                transfer_free_data(t);

        CurlResponse resp = {
                .status = status,
                .headers = headers ?: &none,
                .body = body ?: "",
                .body_len = body ? len : 0,
                .error = error,
        };
        handler(result, &resp, userdata);

        for (size_t i = 0; i < n_headers; i++)
                free(headers[i]);
        free(headers);
}

static CurlEvent *curl_event_destroy(CurlEvent *ce);

/* Run handlers of finished and failed transfers. */
static void finish_transfers(CurlEvent *ce) {
        CURLMsg *msg;
        int left;

        ce->dispatching++;
        while (!ce->free_pending) {
                CurlTransfer *t = NULL;
                CURLcode code = CURLE_OK;

                if (ce->failed_pending) {
                        for (t = ce->transfers; t; t = t->next)
                                if (t->fail_errno != 0)
                                        break;
                        if (!t)
                                ce->failed_pending = false;
                }
                if (!t) {
                        msg = curl_multi_info_read(ce->multi, &left);
                        if (!msg)
                                break;
                        if (msg->msg != CURLMSG_DONE)
                                continue;
                        code = msg->data.result;
                        if (curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **) &t) != CURLE_OK || !t)
                                continue;
                }
                finish_one(t, code);
        }
        ce->dispatching--;
        if (ce->dispatching == 0 && ce->free_pending)
                free(ce);
}

/* ---- the client ------------------------------------------------------------ */

int curl_event_new(sd_event *e, CurlEvent **ret) {
        _cleanup_(curl_event_freep) CurlEvent *ce = NULL;
        int r;

        ce = mem_new(CurlEvent, 1);
        if (!ce)
                return -ENOMEM;
        ce->event = sd_event_ref(e);
        ce->multi = curl_multi_init();
        if (!ce->multi)
                return -ENOMEM;
        if (curl_multi_setopt(ce->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket) != CURLM_OK ||
            curl_multi_setopt(ce->multi, CURLMOPT_SOCKETDATA, ce) != CURLM_OK ||
            curl_multi_setopt(ce->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer) != CURLM_OK ||
            curl_multi_setopt(ce->multi, CURLMOPT_TIMERDATA, ce) != CURLM_OK)
                return -EIO;

        /* Accuracy 1 µs: libcurl's timeout is often "now" (a transfer was
         * added, a connection is ready), and sd-event's default accuracy of
         * 250 ms would delay every request by up to that much. */
        r = sd_event_add_time(e, &ce->timer, CLOCK_MONOTONIC, 0, 1, on_timer, ce);
        if (r < 0)
                return r;
        r = sd_event_source_set_enabled(ce->timer, SD_EVENT_OFF);
        if (r < 0)
                return r;
        r = sd_event_add_defer(e, &ce->sweep, on_sweep, ce);
        if (r < 0)
                return r;
        r = sd_event_source_set_enabled(ce->sweep, SD_EVENT_OFF);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(ce);
        return 0;
}

/* Everything but the struct itself, which a running finish_transfers()
 * may still look at. */
static CurlEvent *curl_event_destroy(CurlEvent *ce) {
        while (ce->transfers) {
                CurlTransfer *t = ce->transfers;

                transfer_detach(t);
                if (t->floating)
                        transfer_free_data(t);
        }
        /* Closes the pooled connections; libcurl removes their sockets
         * through on_curl_socket() as it goes. */
        if (ce->multi)
                curl_multi_cleanup(ce->multi);
        ce->multi = NULL;
        while (ce->sockets)
                curl_socket_free(ce->sockets);
        ce->timer = sd_event_source_disable_unref(ce->timer);
        ce->sweep = sd_event_source_disable_unref(ce->sweep);
        ce->event = sd_event_unref(ce->event);
        return NULL;
}

CurlEvent *curl_event_free(CurlEvent *ce) {
        if (!ce || ce->free_pending)
                return NULL;
        curl_event_destroy(ce);
        if (ce->dispatching > 0)
                ce->free_pending = true; /* finish_transfers() frees it */
        else
                free(ce);
        return NULL;
}

unsigned curl_event_n_pending(const CurlEvent *ce) {
        return ce ? ce->n_pending : 0;
}

static bool method_valid(const char *m) {
        if (isempty(m) || strlen(m) > 16)
                return false;
        for (const char *p = m; *p; p++)
                if (*p < 'A' || *p > 'Z')
                        return false;
        return true;
}

static bool header_valid(const char *h) {
        const char *colon = strchr(h, ':');

        /* "Name: value" (or "Name;" / "Name:" which libcurl reads as an
         * empty or removed header); no line breaks smuggled in. */
        return colon && colon != h && !strpbrk(h, "\r\n");
}

#define SETOPT(easy, opt, val)                                                                                         \
        do {                                                                                                           \
                if (curl_easy_setopt((easy), (opt), (val)) != CURLE_OK)                                                \
                        return -EIO;                                                                                   \
        } while (false)

static long usec_to_msec(uint64_t usec, uint64_t def) {
        uint64_t ms = ((usec ?: def) + USEC_PER_MSEC - 1) / USEC_PER_MSEC;
        return (long) MIN(ms, (uint64_t) 0x7fffffff);
}

static int transfer_setup(CurlTransfer *t, const CurlRequest *req) {
        const char *method = req->method ?: "GET";
        bool has_expect = false;
        CURL *e = t->easy;

        SETOPT(e, CURLOPT_URL, req->url);
#if LIBCURL_VERSION_NUM >= 0x075500 /* 7.85: the _STR variants */
        SETOPT(e, CURLOPT_PROTOCOLS_STR, "http,https");
        SETOPT(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
        SETOPT(e, CURLOPT_PROTOCOLS, (long) (CURLPROTO_HTTP | CURLPROTO_HTTPS));
        SETOPT(e, CURLOPT_REDIR_PROTOCOLS, (long) (CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
        SETOPT(e, CURLOPT_FOLLOWLOCATION, 0L);
        SETOPT(e, CURLOPT_SSL_VERIFYPEER, 1L);
        SETOPT(e, CURLOPT_SSL_VERIFYHOST, 2L);
        if (req->ca_file)
                SETOPT(e, CURLOPT_CAINFO, req->ca_file);
        for (size_t i = 0; req->connect_to && req->connect_to[i]; i++) {
                struct curl_slist *l = curl_slist_append(t->connect_to, req->connect_to[i]);
                if (!l)
                        return -ENOMEM;
                t->connect_to = l;
        }
        if (t->connect_to)
                SETOPT(e, CURLOPT_CONNECT_TO, t->connect_to);
        /* No SIGALRM-based timeouts: the daemon's signals belong to sd-event. */
        SETOPT(e, CURLOPT_NOSIGNAL, 1L);
        SETOPT(e, CURLOPT_TIMEOUT_MS, usec_to_msec(req->timeout_usec, CURL_EVENT_TIMEOUT_USEC_DEFAULT));
        SETOPT(e, CURLOPT_CONNECTTIMEOUT_MS,
               usec_to_msec(req->connect_timeout_usec, CURL_EVENT_CONNECT_TIMEOUT_USEC_DEFAULT));
        /* Refuses a too large Content-Length up front; on_write() catches
         * bodies without one. */
        SETOPT(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t) t->max);
        SETOPT(e, CURLOPT_USERAGENT, PACKAGE_NAME "/" PACKAGE_VERSION);
        SETOPT(e, CURLOPT_WRITEFUNCTION, on_write);
        SETOPT(e, CURLOPT_WRITEDATA, t);
        SETOPT(e, CURLOPT_HEADERFUNCTION, on_header);
        SETOPT(e, CURLOPT_HEADERDATA, t);
        SETOPT(e, CURLOPT_PRIVATE, t);
        SETOPT(e, CURLOPT_ERRORBUFFER, t->error);

        if (streq(method, "HEAD"))
                SETOPT(e, CURLOPT_NOBODY, 1L);
        else if (req->body) {
                SETOPT(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) req->body_len);
                SETOPT(e, CURLOPT_POSTFIELDS, t->body);
                if (!streq(method, "POST"))
                        SETOPT(e, CURLOPT_CUSTOMREQUEST, method);
        } else if (streq(method, "GET"))
                SETOPT(e, CURLOPT_HTTPGET, 1L);
        else
                SETOPT(e, CURLOPT_CUSTOMREQUEST, method);

        for (size_t i = 0; req->headers && req->headers[i]; i++) {
                struct curl_slist *l;

                if (!header_valid(req->headers[i]))
                        return -EINVAL;
                if (strncasecmp(req->headers[i], "Expect:", 7) == 0)
                        has_expect = true;
                l = curl_slist_append(t->headers, req->headers[i]);
                if (!l)
                        return -ENOMEM;
                t->headers = l;
        }
        /* libcurl sends "Expect: 100-continue" for larger bodies and waits
         * a second for a server that may never answer it. */
        if (!has_expect && req->body) {
                struct curl_slist *l = curl_slist_append(t->headers, "Expect:");
                if (!l)
                        return -ENOMEM;
                t->headers = l;
        }
        if (t->headers)
                SETOPT(e, CURLOPT_HTTPHEADER, t->headers);
        return 0;
}

int curl_event_request(CurlEvent *ce, const CurlRequest *req, CurlEventHandler handler, void *userdata,
                       CurlTransfer **ret) {
        _cleanup_(curl_event_transfer_freep) CurlTransfer *t = NULL;
        int r;

        if (!ce || !req || isempty(req->url) || !handler || (req->method && !method_valid(req->method)))
                return -EINVAL;

        t = mem_new(CurlTransfer, 1);
        if (!t)
                return -ENOMEM;
        t->handler = handler;
        t->userdata = userdata;
        t->floating = !ret;
        t->max = req->max_response_body ?: CURL_EVENT_MAX_RESPONSE_BODY_DEFAULT;
        if (req->body) {
                t->body = mem_malloc(req->body_len);
                if (!t->body)
                        return -ENOMEM;
                memcpy(t->body, req->body, req->body_len);
        }
        t->easy = curl_easy_init();
        if (!t->easy)
                return -ENOMEM;
        r = transfer_setup(t, req);
        if (r < 0)
                return r;

        if (curl_multi_add_handle(ce->multi, t->easy) != CURLM_OK)
                return -ENOMEM;
        t->ce = ce;
        LIST_PREPEND(ce->transfers, t);
        ce->n_pending++;

        if (ret)
                *ret = t;
        TAKE_PTR(t);
        return 0;
}

const char *curl_event_response_header(const CurlResponse *resp, const char *name) {
        size_t l = strlen(name);

        for (size_t i = 0; resp->headers && resp->headers[i]; i++) {
                const char *h = resp->headers[i];

                if (strncasecmp(h, name, l) == 0 && h[l] == ':') {
                        h += l + 1;
                        while (*h == ' ' || *h == '\t')
                                h++;
                        return h;
                }
        }
        return NULL;
}
