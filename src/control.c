/* SPDX-License-Identifier: MIT */
/*
 * control.c — control socket server (on the loop) and client (blocking,
 * for deliveryctl).
 *
 * Security: see control.h.
 */
#include "control.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>

#include "alloc.h"
#include "listen.h"
#include "log.h"
#include "strutil.h"

typedef struct ControlConnection ControlConnection;

struct ControlServer {
        sd_event *event;
        sd_event_source *accept_source;
        int fd;
        char *path;
        const ControlCommand *table;
        size_t n_commands;
        void *userdata;
        Metrics *metrics;
        ControlConnection *connections;
        unsigned n_connections;
        ControlConnection *dispatching; /* whose handler runs, for control_server_defer() */
};

struct ControlConnection {
        ControlServer *server;
        ControlConnection *next, *prev;
        int fd;
        sd_event_source *io;
        sd_event_source *timeout;
        char *in;
        size_t in_len;
        char *out;
        size_t out_len, out_done;
        ControlPending *pending; /* deferred: the answer comes from control_pending_finish() */
};

struct ControlPending {
        ControlConnection *connection; /* NULL once the connection is gone */
        char command[64];
};

static void connection_free(ControlConnection *c) {
        ControlServer *s = c->server;

        if (c->prev)
                c->prev->next = c->next;
        else
                s->connections = c->next;
        if (c->next)
                c->next->prev = c->prev;
        s->n_connections--;
        if (c->pending)
                c->pending->connection = NULL;

        sd_event_source_disable_unref(c->io);
        sd_event_source_disable_unref(c->timeout);
        if (c->fd >= 0)
                close(c->fd);
        free(c->in);
        free(c->out);
        free(c);
}

/* The answer line to a command that ended with r (result taken over). */
static char *answer_text(ControlServer *s, const char *command, int r, json_t *result, const char *error) {
        _cleanup_free_ char *fallback = NULL;
        json_t *answer;
        char *text;

        if (r < 0) {
                json_decref(result);
                if (!error)
                        error = fallback = mem_printf("%s failed: %s", command, strerror(-r));
                metrics_inc(s->metrics, METRIC_CONTROL_ERRORS);
                answer = json_pack("{s:b,s:s}", "ok", 0, "error", error ? error : "out of memory");
        } else {
                metrics_inc(s->metrics, METRIC_CONTROL_REQUESTS);
                answer = json_pack("{s:b,s:o}", "ok", 1, "result", result ? result : json_null());
        }
        if (!answer)
                return NULL;
        text = mem_json_dumps(answer, JSON_COMPACT);
        json_decref(answer);
        return text;
}

/* Build the answer line for one request line; NULL with *ret_deferred set
 * when the command answers later. */
static char *dispatch(ControlServer *s, ControlConnection *c, const char *line, bool *ret_deferred) {
        _cleanup_free_ char *error = NULL;
        json_t *req, *cmd, *args, *result = NULL;
        json_error_t jerr;
        const ControlCommand *command = NULL;
        int r;

        *ret_deferred = false;
        req = json_loads(line, JSON_REJECT_DUPLICATES, &jerr);
        if (!req || !json_is_object(req)) {
                error = mem_printf("malformed request: %s", req ? "not a JSON object" : jerr.text);
                json_decref(req);
                return answer_text(s, "request", -EINVAL, NULL, error);
        }
        cmd = json_object_get(req, "command");
        args = json_object_get(req, "args");
        if (!json_is_string(cmd) || (args && !json_is_object(args) && !json_is_null(args))) {
                json_decref(req);
                return answer_text(s, "request", -EINVAL, NULL,
                                   "malformed request: expected {\"command\": NAME, \"args\": {...}}");
        }
        for (size_t i = 0; i < s->n_commands; i++)
                if (streq(s->table[i].name, json_string_value(cmd))) {
                        command = &s->table[i];
                        break;
                }
        if (!command) {
                error = mem_printf("unknown command '%s'", json_string_value(cmd));
                json_decref(req);
                return answer_text(s, "request", -EINVAL, NULL, error);
        }
        log_debug("control: command=%s", command->name);
        s->dispatching = c;
        r = command->handler(s->userdata, json_is_object(args) ? args : NULL, &result, &error);
        s->dispatching = NULL;
        json_decref(req);
        if (r == CONTROL_DEFERRED && c->pending) {
                json_decref(result);
                strscpy(c->pending->command, sizeof c->pending->command, command->name);
                *ret_deferred = true;
                return NULL;
        }
        if (c->pending) {
                /* took a handle but answered now: whoever holds the handle
                 * finds the connection gone */
                c->pending->connection = NULL;
                c->pending = NULL;
        }
        if (r > 0) /* deferred without a handle: a bug in the command */
                r = -EPROTO;
        return answer_text(s, command->name, r, result, error);
}

static int on_connection_io(sd_event_source *src _unused_, int fd, uint32_t revents, void *userdata);

static int start_reply(ControlConnection *c, char *text) {
        size_t n;

        if (!text) {
                text = mem_strdup("{\"ok\":false,\"error\":\"out of memory\"}");
                if (!text)
                        return -ENOMEM;
        }
        n = strlen(text);
        c->out = mem_realloc(text, n + 2);
        if (!c->out) {
                free(text);
                return -ENOMEM;
        }
        c->out[n] = '\n';
        c->out[n + 1] = '\0';
        c->out_len = n + 1;
        c->out_done = 0;
        return sd_event_source_set_io_events(c->io, EPOLLOUT);
}

/* The request was taken; until its answer only a hang-up matters.  The
 * command bounds its own wait, so the request timeout stops. */
static int connection_wait(ControlConnection *c) {
        int r;

        r = sd_event_source_set_io_events(c->io, EPOLLRDHUP);
        if (r >= 0)
                r = sd_event_source_set_enabled(c->timeout, SD_EVENT_OFF);
        if (r < 0)
                connection_free(c); /* the pending handle stays, without a connection */
        return 0;
}

static int on_connection_io(sd_event_source *src _unused_, int fd, uint32_t revents, void *userdata) {
        ControlConnection *c = userdata;

        if (c->pending) {
                /* Waiting for the answer: a client that hangs up gets none. */
                if (revents & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
                        connection_free(c);
                return 0;
        }
        if (c->out) {
                ssize_t k = send(fd, c->out + c->out_done, c->out_len - c->out_done, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (k < 0) {
                        if (errno == EAGAIN || errno == EINTR)
                                return 0;
                        connection_free(c);
                        return 0;
                }
                c->out_done += (size_t) k;
                if (c->out_done >= c->out_len)
                        connection_free(c);
                return 0;
        }

        if (revents & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
                char buf[8192];
                ssize_t k = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
                char *nl;

                if (k < 0) {
                        if (errno == EAGAIN || errno == EINTR)
                                return 0;
                        connection_free(c);
                        return 0;
                }
                if (k == 0) { /* closed before a whole line: nothing to answer */
                        connection_free(c);
                        return 0;
                }
                if (c->in_len + (size_t) k > CONTROL_REQUEST_MAX || memchr(buf, '\0', (size_t) k)) {
                        (void) start_reply(c,
                                           mem_strdup("{\"ok\":false,\"error\":\"malformed request: too "
                                                      "large or not text\"}"));
                        return 0;
                }
                char *n = mem_realloc(c->in, c->in_len + (size_t) k + 1);
                if (!n) {
                        connection_free(c);
                        return 0;
                }
                memcpy(n + c->in_len, buf, (size_t) k);
                c->in_len += (size_t) k;
                n[c->in_len] = '\0';
                c->in = n;
                nl = strchr(c->in, '\n');
                if (nl) {
                        bool deferred;
                        char *text;

                        *nl = '\0';
                        text = dispatch(c->server, c, c->in, &deferred);
                        if (deferred)
                                return connection_wait(c);
                        (void) start_reply(c, text);
                }
        }
        return 0;
}

static int on_connection_timeout(sd_event_source *src _unused_, uint64_t usec _unused_, void *userdata) {
        connection_free(userdata);
        return 0;
}

static int on_accept(sd_event_source *src _unused_, int fd, uint32_t revents _unused_, void *userdata) {
        ControlServer *s = userdata;
        ControlConnection *c;
        uint64_t now;
        int cfd, r;

        cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd < 0)
                return 0;
        if (s->n_connections >= CONTROL_CONNECTIONS_MAX) {
                static const char busy[] = "{\"ok\":false,\"error\":\"too many control connections\"}\n";
                (void) send(cfd, busy, sizeof busy - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
                close(cfd);
                return 0;
        }
        c = mem_new(ControlConnection, 1);
        if (!c) {
                close(cfd);
                return 0;
        }
        c->server = s;
        c->fd = cfd;
        c->next = s->connections;
        if (s->connections)
                s->connections->prev = c;
        s->connections = c;
        s->n_connections++;

        r = sd_event_add_io(s->event, &c->io, cfd, EPOLLIN, on_connection_io, c);
        if (r >= 0) {
                (void) sd_event_now(s->event, CLOCK_MONOTONIC, &now);
                r = sd_event_add_time(s->event, &c->timeout, CLOCK_MONOTONIC, now + CONTROL_TIMEOUT_USEC, 0,
                                      on_connection_timeout, c);
        }
        if (r < 0)
                connection_free(c);
        return 0;
}

int control_server_new(sd_event *e, const char *path, const ControlCommand *table, size_t n, void *userdata,
                       Metrics *metrics, ControlServer **ret) {
        _cleanup_(control_server_freep) ControlServer *s = NULL;
        const char *reason;
        ListenAddress a;
        int r;

        r = listen_address_parse(path, &a, &reason);
        if (r < 0)
                return r;
        s = mem_new(ControlServer, 1);
        if (!s)
                return -ENOMEM;
        s->fd = -EBADF;
        s->event = sd_event_ref(e);
        s->table = table;
        s->n_commands = n;
        s->userdata = userdata;
        s->metrics = metrics;
        s->path = mem_strdup(path);
        if (!s->path)
                return -ENOMEM;

        /* Under systemd RuntimeDirectory= made it; run by hand, we do. */
        _cleanup_free_ char *parent = path_dirname(path);
        if (!parent)
                return -ENOMEM;
        r = mkdir_p(parent, 0755);
        if (r < 0)
                return r;
        s->fd = listen_bind(&a, 16, 0660);
        if (s->fd < 0)
                return s->fd;
        r = sd_event_add_io(e, &s->accept_source, s->fd, EPOLLIN, on_accept, s);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(s);
        return 0;
}

ControlPending *control_server_defer(ControlServer *s) {
        ControlConnection *c = s ? s->dispatching : NULL;

        if (!c || c->pending)
                return NULL;
        c->pending = mem_new(ControlPending, 1);
        if (!c->pending)
                return NULL;
        c->pending->connection = c;
        return c->pending;
}

void control_pending_finish(ControlPending *p, int r, json_t *result, const char *error) {
        ControlConnection *c;
        uint64_t now;

        if (!p)
                return;
        c = p->connection;
        if (!c) {
                json_decref(result);
                free(p);
                return;
        }
        c->pending = NULL;
        if (start_reply(c, answer_text(c->server, p->command, r, result, error)) < 0)
                connection_free(c);
        else {
                /* the client must now take the answer in the usual time */
                (void) sd_event_now(c->server->event, CLOCK_MONOTONIC, &now);
                (void) sd_event_source_set_time(c->timeout, now + CONTROL_TIMEOUT_USEC);
                (void) sd_event_source_set_enabled(c->timeout, SD_EVENT_ONESHOT);
        }
        free(p);
}

void control_pending_cancel(ControlPending *p) {
        if (!p)
                return;
        if (p->connection && p->connection->pending == p)
                p->connection->pending = NULL;
        free(p);
}

void control_server_stop_accepting(ControlServer *s) {
        if (!s || s->fd < 0)
                return;
        s->accept_source = sd_event_source_disable_unref(s->accept_source);
        close(s->fd);
        s->fd = -EBADF;
        (void) unlink(s->path);
}

unsigned control_server_n_connections(ControlServer *s) {
        return s ? s->n_connections : 0;
}

ControlServer *control_server_free(ControlServer *s) {
        if (!s)
                return NULL;
        while (s->connections)
                connection_free(s->connections);
        control_server_stop_accepting(s);
        sd_event_unref(s->event);
        free(s->path);
        free(s);
        return NULL;
}

static uint64_t now_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / NSEC_PER_USEC;
}

/* Wait for fd to become ready for events before deadline. */
static int wait_fd(int fd, short events, uint64_t deadline) {
        for (;;) {
                uint64_t now = now_usec();
                struct pollfd p = { .fd = fd, .events = events };
                int k;

                if (now >= deadline)
                        return -ETIMEDOUT;
                k = poll(&p, 1, (int) ((deadline - now + 999) / 1000));
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return -errno;
                if (k > 0)
                        return 0;
        }
}

int control_call(const char *path, const char *command, json_t *args, uint64_t timeout_usec, json_t **ret_result,
                 char **ret_error) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *req_text = NULL, *in = NULL;
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        uint64_t deadline = now_usec() + timeout_usec;
        size_t len, done = 0, in_len = 0;
        json_t *req, *answer, *ok;
        json_error_t jerr;
        int r;

        *ret_error = NULL;
        if (strlen(path) >= sizeof sa.sun_path)
                return -ENAMETOOLONG;
        strscpy(sa.sun_path, sizeof sa.sun_path, path);

        req = json_pack("{s:s,s:O?}", "command", command, "args", args);
        if (!req)
                return -ENOMEM;
        req_text = mem_json_dumps(req, JSON_COMPACT);
        json_decref(req);
        if (!req_text)
                return -ENOMEM;
        len = strlen(req_text);

        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (connect(fd, (struct sockaddr *) &sa, sizeof sa) < 0)
                return -errno;

        while (done < len + 1) {
                const char *p = done < len ? req_text + done : "\n";
                size_t n = done < len ? len - done : 1;
                r = wait_fd(fd, POLLOUT, deadline);
                if (r < 0)
                        return r;
                ssize_t k = send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (k < 0) {
                        if (errno == EAGAIN || errno == EINTR)
                                continue;
                        return -errno;
                }
                done += (size_t) k;
        }

        for (;;) {
                char buf[65536];
                r = wait_fd(fd, POLLIN, deadline);
                if (r < 0)
                        return r;
                ssize_t k = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
                if (k < 0) {
                        if (errno == EAGAIN || errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        break;
                char *n = mem_realloc(in, in_len + (size_t) k + 1);
                if (!n)
                        return -ENOMEM;
                memcpy(n + in_len, buf, (size_t) k);
                in_len += (size_t) k;
                n[in_len] = '\0';
                in = n;
                if (memchr(in, '\n', in_len))
                        break;
        }
        if (!in)
                return -EBADMSG;

        answer = json_loads(in, JSON_DISABLE_EOF_CHECK, &jerr);
        if (!answer || !json_is_object(answer)) {
                json_decref(answer);
                return -EBADMSG;
        }
        ok = json_object_get(answer, "ok");
        if (!json_is_boolean(ok)) {
                json_decref(answer);
                return -EBADMSG;
        }
        if (!json_is_true(ok)) {
                const char *e = json_string_value(json_object_get(answer, "error"));
                *ret_error = mem_strdup(e ? e : "unknown error");
                json_decref(answer);
                return -EREMOTEIO;
        }
        json_t *result = json_object_get(answer, "result");
        *ret_result = json_incref(result ? result : json_null());
        json_decref(answer);
        return 0;
}
