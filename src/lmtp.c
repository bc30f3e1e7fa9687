/* SPDX-License-Identifier: MIT */
/*
 * lmtp.c — LMTP server on the sd-event loop: per-connection state (input
 * buffer, output queue, transaction, pending delivery), the command parser,
 * and the reference-counted delivery handles.  Owns the listening socket
 * and the connections; owns no message once it is handed to deliver().
 *
 * Flow per connection: read into a fixed buffer of max_pending_input
 * bytes; cut complete lines (LF, with an optional CR before it); answer
 * each command or add each message line; after the final "." hand the
 * message over and stop cutting lines until lmtp_delivery_done().  All
 * replies go through one output queue, so they leave in command order.
 * The socket is read only while the buffer has room and written only when
 * the queue is not empty, which bounds the memory a client can make us
 * hold whatever it sends and whether or not it reads.
 *
 * Security: see lmtp.h.  No line is held beyond its bound (the rest of an
 * over-long line is dropped as it arrives), no message beyond
 * max_message_size (the rest is counted, not kept), and addresses are
 * checked by lmtp_parse_command() before any callback sees them.
 */
#include "lmtp.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>

#include "alloc.h"

/* Stop answering commands while this much output waits for a client that
 * does not read; reading resumes as it drains. */
#define OUTPUT_HIGH_WATER ((size_t) 64 * 1024)
/* Longest reply text taken from the caller. */
#define RESULT_TEXT_MAX 400
/* RFC 5321 4.5.3.1.3: a path is at most 256 octets with its brackets. */
#define ADDRESS_MAX 254

typedef struct LmtpConnection LmtpConnection;

struct LmtpServer {
        sd_event *event;
        sd_event_source *accept_source;
        int fd;
        LmtpOptions opts; /* with the defaults filled in */
        char *hostname;
        LmtpCallbacks cb;
        void *userdata;
        LmtpConnection *connections;
        unsigned n_connections;
        bool draining;
};

struct LmtpConnection {
        LmtpServer *server;
        LmtpConnection *next, *prev;
        int fd;
        sd_event_source *io;
        sd_event_source *timer;
        sd_event_source *resume; /* continue after lmtp_delivery_done() */

        char *in; /* opts.max_pending_input bytes */
        size_t in_len;
        bool overlong; /* dropping the rest of a line that is too long */
        bool eof; /* the client sends no more */

        char *out;
        size_t out_len, out_done, out_alloc;
        bool closing; /* close once out is sent */
        bool failed; /* out of memory in lmtp_delivery_done(): close, say nothing */

        char *lhlo; /* set once LHLO was accepted */

        /* The transaction: MAIL (sender set), RCPT, DATA (in_data). */
        char *sender;
        bool body_8bitmime;
        char **recipients;
        size_t n_recipients;
        bool in_data;
        char *msg;
        size_t msg_len, msg_alloc;
        bool msg_too_big, msg_line_too_long;

        LmtpDelivery *delivery; /* waiting for lmtp_delivery_done() */
};

struct LmtpDelivery {
        unsigned n_ref; /* the connection's (while attached) and the caller's */
        LmtpConnection *connection; /* NULL once answered or cancelled */
        LmtpEnvelope envelope;
        char *lhlo, *sender;
        char **recipients;
        char *data;
        size_t size;
};

/* ---- command parser ----------------------------------------------------- */

static const char *const verb_table[_LMTP_VERB_MAX] = {
        [LMTP_LHLO] = "LHLO", [LMTP_MAIL] = "MAIL", [LMTP_RCPT] = "RCPT", [LMTP_DATA] = "DATA",
        [LMTP_RSET] = "RSET", [LMTP_NOOP] = "NOOP", [LMTP_QUIT] = "QUIT", [LMTP_VRFY] = "VRFY",
        [LMTP_HELP] = "HELP", [LMTP_EHLO] = "EHLO", [LMTP_HELO] = "HELO",
};

const char *lmtp_verb_to_string(LmtpVerb v) {
        if (v < 0 || v >= _LMTP_VERB_MAX)
                return NULL;
        return verb_table[v];
}

static bool is_alpha(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(char c) {
        return c >= '0' && c <= '9';
}

/* RFC 5322 atext. */
static bool is_atext(char c) {
        return is_alpha(c) || is_digit(c) || (c && strchr("!#$%&'*+-/=?^_`{|}~", c));
}

/* Visible ASCII, no space. */
static bool is_graph(char c) {
        return c > 0x20 && c < 0x7f;
}

/* Case-insensitive "does [p, end) start with word". */
static bool has_prefix_nocase(const char *p, const char *end, const char *word) {
        size_t n = strlen(word);
        return (size_t) (end - p) >= n && strncasecmp(p, word, n) == 0;
}

/* Parse "<path>" at *p.  On success *p points after '>' and the mailbox
 * (source route dropped) is [*ret_start, *ret_start + *ret_len). */
static int parse_path(const char **p, const char *end, bool is_sender, const char **ret_start, size_t *ret_len) {
        const char *s = *p, *mbox, *at = NULL;

        if (s >= end || *s != '<')
                return -EINVAL;
        s++;
        if (s < end && *s == '>') { /* <> */
                if (!is_sender)
                        return -EINVAL;
                *ret_start = s;
                *ret_len = 0;
                *p = s + 1;
                return 0;
        }
        if (s < end && *s == '@') { /* obsolete source route "@a,@b:" */
                while (s < end && *s != ':') {
                        if (!is_graph(*s) || *s == '<' || *s == '>')
                                return -EINVAL;
                        s++;
                }
                if (s >= end)
                        return -EINVAL;
                s++;
        }
        mbox = s;

        /* local part: quoted string or dot-atom */
        if (s < end && *s == '"') {
                s++;
                for (;;) {
                        if (s >= end)
                                return -EINVAL;
                        if (*s == '"')
                                break;
                        if (*s == '\\') {
                                s++;
                                if (s >= end || *s < 0x20 || *s > 0x7e)
                                        return -EINVAL;
                        } else if (*s < 0x20 || *s > 0x7e)
                                return -EINVAL;
                        s++;
                }
                s++;
        } else {
                const char *l = s;
                while (s < end && (is_atext(*s) || *s == '.'))
                        s++;
                if (s == l)
                        return -EINVAL;
        }

        if (s < end && *s == '@') {
                at = s++;
                if (s < end && *s == '[') { /* address literal */
                        s++;
                        while (s < end && *s != ']') {
                                if (!is_graph(*s) || *s == '[' || *s == '\\')
                                        return -EINVAL;
                                s++;
                        }
                        if (s >= end || s == at + 2)
                                return -EINVAL;
                        s++;
                } else {
                        const char *d = s;
                        while (s < end && (is_alpha(*s) || is_digit(*s) || *s == '-' || *s == '.' || *s == '_'))
                                s++;
                        if (s == d)
                                return -EINVAL;
                }
        }
        if (s >= end || *s != '>')
                return -EINVAL;
        /* RFC 5321 4.5.1: "Postmaster" without a domain must be accepted. */
        if (!at &&
            (is_sender || (size_t) (s - mbox) != strlen("postmaster") ||
             strncasecmp(mbox, "postmaster", strlen("postmaster")) != 0))
                return -EINVAL;
        if ((size_t) (s - mbox) > ADDRESS_MAX)
                return -EINVAL;
        *ret_start = mbox;
        *ret_len = (size_t) (s - mbox);
        *p = s + 1;
        return 0;
}

/* ESMTP parameters after the path: " KEY[=VALUE]"... */
static int parse_params(const char *p, const char *end, bool is_sender, LmtpCommand *c) {
        bool unknown = false, seen_size = false, seen_body = false;

        if (p == end)
                return 0;
        if (*p != ' ')
                return -EINVAL;
        while (p < end) {
                const char *key, *value = NULL;
                size_t key_len, value_len = 0;

                while (p < end && *p == ' ')
                        p++;
                if (p == end)
                        break;
                key = p;
                if (!is_alpha(*p) && !is_digit(*p))
                        return -EINVAL;
                while (p < end && (is_alpha(*p) || is_digit(*p) || *p == '-'))
                        p++;
                key_len = (size_t) (p - key);
                if (p < end && *p == '=') {
                        value = ++p;
                        while (p < end && is_graph(*p) && *p != '=')
                                p++;
                        value_len = (size_t) (p - value);
                        if (value_len == 0)
                                return -EINVAL;
                }
                if (p < end && *p != ' ')
                        return -EINVAL;

                if (is_sender && key_len == 4 && strncasecmp(key, "SIZE", 4) == 0) {
                        uint64_t n = 0;
                        if (seen_size || !value || value_len > 20)
                                return -EINVAL;
                        for (size_t i = 0; i < value_len; i++) {
                                uint64_t digit = (uint64_t) (value[i] - '0');
                                if (!is_digit(value[i]) || n > (UINT64_MAX - digit) / 10)
                                        return -EINVAL;
                                n = n * 10 + digit;
                        }
                        seen_size = true;
                        c->has_size = true;
                        c->size = n;
                } else if (is_sender && key_len == 4 && strncasecmp(key, "BODY", 4) == 0) {
                        if (seen_body || !value)
                                return -EINVAL;
                        if (value_len == 8 && strncasecmp(value, "8BITMIME", 8) == 0)
                                c->body_8bitmime = true;
                        else if (!(value_len == 4 && strncasecmp(value, "7BIT", 4) == 0))
                                return -EINVAL;
                        seen_body = true;
                } else
                        unknown = true;
        }
        return unknown ? -EOPNOTSUPP : 0;
}

int lmtp_parse_command(const char *line, size_t len, LmtpCommand *ret) {
        const char *p = line, *end = line + len, *arg_start = NULL;
        LmtpCommand c = { .verb = _LMTP_VERB_INVALID };
        size_t arg_len = 0;
        int r;

        if (memchr(line, '\0', len) || memchr(line, '\r', len) || memchr(line, '\n', len))
                return -EINVAL;
        while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
                end--;

        while (p < end && *p != ' ')
                p++;
        if (p - line == 4)
                for (LmtpVerb v = 0; v < _LMTP_VERB_MAX; v++)
                        if (strncasecmp(line, verb_table[v], 4) == 0) {
                                c.verb = v;
                                break;
                        }
        if (c.verb < 0)
                return -EBADMSG;
        while (p < end && *p == ' ')
                p++;

        switch (c.verb) {
        case LMTP_LHLO:
                if (p == end)
                        return -EINVAL;
                arg_start = p;
                while (p < end && is_graph(*p))
                        p++;
                if (p != end)
                        return -EINVAL;
                arg_len = (size_t) (end - arg_start);
                break;

        case LMTP_MAIL:
        case LMTP_RCPT: {
                bool is_sender = c.verb == LMTP_MAIL;
                const char *kw = is_sender ? "FROM:" : "TO:";

                if (!has_prefix_nocase(p, end, kw))
                        return -EINVAL;
                p += strlen(kw);
                while (p < end && *p == ' ') /* not RFC 5321, but common */
                        p++;
                r = parse_path(&p, end, is_sender, &arg_start, &arg_len);
                if (r < 0)
                        return r;
                r = parse_params(p, end, is_sender, &c);
                if (r < 0)
                        return r;
                break;
        }

        case LMTP_DATA:
        case LMTP_RSET:
        case LMTP_QUIT:
                if (p != end)
                        return -EINVAL;
                break;

        case LMTP_VRFY:
                if (p == end)
                        return -EINVAL;
                break;

        default: /* NOOP, HELP take an argument and ignore it; EHLO, HELO are refused anyway */
                break;
        }

        if (arg_start) {
                c.arg = mem_strndup(arg_start, arg_len);
                if (!c.arg)
                        return -ENOMEM;
        }
        *ret = c;
        return 0;
}

void lmtp_command_done(LmtpCommand *c) {
        if (!c)
                return;
        free(c->arg);
        *c = (LmtpCommand){ .verb = _LMTP_VERB_INVALID };
}

/* ---- deliveries ------------------------------------------------------- */

static void delivery_unref(LmtpDelivery *d) {
        if (!d || --d->n_ref > 0)
                return;
        free(d->lhlo);
        free(d->sender);
        for (size_t i = 0; i < d->envelope.n_recipients; i++)
                free(d->recipients[i]);
        free(d->recipients);
        free(d->data);
        free(d);
}

bool lmtp_delivery_is_cancelled(const LmtpDelivery *d) {
        return !d || !d->connection;
}

/* ---- output ------------------------------------------------------------ */

static int out_append(LmtpConnection *c, const char *s, size_t n) {
        /* Reuse what was sent already before growing. */
        if (c->out_done > 0 && c->out_len + n > c->out_alloc) {
                memmove(c->out, c->out + c->out_done, c->out_len - c->out_done);
                c->out_len -= c->out_done;
                c->out_done = 0;
        }
        if (c->out_len + n > c->out_alloc) {
                size_t a = MAX(c->out_alloc * 2, c->out_len + n);
                a = MAX(a, (size_t) 1024);
                char *b = mem_realloc(c->out, a);
                if (!b)
                        return -ENOMEM;
                c->out = b;
                c->out_alloc = a;
        }
        memcpy(c->out + c->out_len, s, n);
        c->out_len += n;
        return 0;
}

/* Queue one reply line; CRLF is added. */
static _printf_(2, 3) int reply(LmtpConnection *c, const char *fmt, ...) {
        char buf[1024];
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(buf, sizeof buf - 2, fmt, ap);
        va_end(ap);
        if (n < 0)
                return -EINVAL;
        if ((size_t) n > sizeof buf - 3)
                n = (int) (sizeof buf - 3);
        buf[n++] = '\r';
        buf[n++] = '\n';
        return out_append(c, buf, (size_t) n);
}

/* Queue the caller's result for one recipient, made safe to send. */
static int reply_result(LmtpConnection *c, const LmtpResult *res) {
        char enhanced[16], text[RESULT_TEXT_MAX + 1];
        unsigned code = res ? res->code : 0;
        const char *e = res ? res->enhanced : NULL, *t = res ? res->text : NULL;
        size_t n = 0;

        if (code < 200 || code > 599 || code / 100 == 3) {
                code = 451;
                e = "4.3.0";
                t = "Temporary failure, try again later";
        }
        /* class.subject.detail, the class matching the code (RFC 3463) */
        bool ok = e && e[0] == (char) ('0' + code / 100) && e[1] == '.';
        if (ok) {
                const char *q = e + 2;
                for (int part = 0; part < 2 && ok; part++) {
                        size_t digits = 0;
                        while (is_digit(*q) && digits < 4)
                                q++, digits++;
                        ok = digits >= 1 && digits <= 3 && (part == 0 ? *q == '.' : *q == '\0');
                        q++;
                }
        }
        if (ok)
                snprintf(enhanced, sizeof enhanced, "%s", e);
        else
                snprintf(enhanced, sizeof enhanced, "%u.0.0", code / 100);

        for (; t && t[n] && n < RESULT_TEXT_MAX; n++)
                text[n] = t[n] >= 0x20 && t[n] < 0x7f ? t[n] : '?';
        text[n] = '\0';
        if (n == 0)
                snprintf(text, sizeof text, "%s",
                         code < 300           ? "Ok"
                                 : code < 500 ? "Temporary failure, try again later"
                                              : "Delivery failed");
        return reply(c, "%u %s %s", code, enhanced, text);
}

/* Send what can be sent now.  0, or -errno when the connection is dead. */
static int flush_output(LmtpConnection *c) {
        while (c->out_done < c->out_len) {
                ssize_t k = send(c->fd, c->out + c->out_done, c->out_len - c->out_done, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (k < 0) {
                        if (errno == EAGAIN || errno == EINTR)
                                return 0;
                        return -errno;
                }
                c->out_done += (size_t) k;
        }
        c->out_done = c->out_len = 0;
        return 0;
}

/* ---- connections ------------------------------------------------------ */

static void reset_transaction(LmtpConnection *c) {
        c->sender = mfree(c->sender);
        for (size_t i = 0; i < c->n_recipients; i++)
                free(c->recipients[i]);
        c->recipients = mfree(c->recipients);
        c->n_recipients = 0;
        c->body_8bitmime = false;
        c->in_data = false;
        c->msg = mfree(c->msg);
        c->msg_len = c->msg_alloc = 0;
        c->msg_too_big = c->msg_line_too_long = false;
}

static void connection_free(LmtpConnection *c) {
        LmtpServer *s = c->server;
        LmtpDelivery *d = TAKE_PTR(c->delivery);

        if (c->prev)
                c->prev->next = c->next;
        else
                s->connections = c->next;
        if (c->next)
                c->next->prev = c->prev;
        s->n_connections--;

        sd_event_source_disable_unref(c->io);
        sd_event_source_disable_unref(c->timer);
        sd_event_source_disable_unref(c->resume);
        if (c->fd >= 0)
                close(c->fd);

        /* Nothing was acknowledged: the MTA keeps the message and retries. */
        if (d) {
                d->connection = NULL;
                if (s->cb.cancelled)
                        s->cb.cancelled(s->userdata, d);
                delivery_unref(d);
        }

        reset_transaction(c);
        free(c->lhlo);
        free(c->in);
        free(c->out);
        free(c);
}

/* Said without allocating anything, when memory ran out. */
static void say_out_of_memory(int fd) {
        static const char oom[] = "421 4.3.0 Out of memory, closing connection\r\n";

        (void) send(fd, oom, sizeof oom - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
}

/* Give up on c after error r: say so when it is ours and nothing is
 * pending, then close. */
static void connection_abort(LmtpConnection *c, int r) {
        if (r == -ENOMEM && !c->delivery && !c->failed) {
                (void) flush_output(c);
                if (c->out_done == c->out_len)
                        say_out_of_memory(c->fd);
        }
        connection_free(c);
}

static int reset_timer(LmtpConnection *c) {
        uint64_t now;
        int r;

        r = sd_event_now(c->server->event, CLOCK_MONOTONIC, &now);
        if (r < 0)
                return r;
        r = sd_event_source_set_time(c->timer, now + c->server->opts.idle_timeout_usec);
        if (r < 0)
                return r;
        return sd_event_source_set_enabled(c->timer, SD_EVENT_ONESHOT);
}

static int start_data(LmtpConnection *c) {
        c->in_data = true;
        c->msg_len = 0;
        c->msg_too_big = c->msg_line_too_long = false;
        return reply(c, "354 End data with <CR><LF>.<CR><LF>");
}

static int end_data(LmtpConnection *c) {
        LmtpServer *s = c->server;
        LmtpDelivery *d;
        int r;

        c->in_data = false;
        if (c->msg_too_big || c->msg_line_too_long) {
                if (s->cb.refused)
                        s->cb.refused(s->userdata, c->msg_too_big);
                for (size_t i = 0; i < c->n_recipients; i++) {
                        r = c->msg_too_big ? reply(c, "552 5.3.4 Message size exceeds fixed maximum message size")
                                           : reply(c, "554 5.6.0 Message line too long");
                        if (r < 0)
                                return r;
                }
                reset_transaction(c);
                return 0;
        }

        d = mem_new(LmtpDelivery, 1);
        if (!d)
                return -ENOMEM;
        d->lhlo = mem_strdup(strempty(c->lhlo));
        if (!d->lhlo) {
                free(d);
                return -ENOMEM;
        }
        d->sender = TAKE_PTR(c->sender);
        d->recipients = TAKE_PTR(c->recipients);
        d->data = TAKE_PTR(c->msg);
        d->size = c->msg_len;
        d->envelope = (LmtpEnvelope){
                .lhlo = d->lhlo,
                .sender = d->sender,
                .recipients = (const char *const *) d->recipients,
                .n_recipients = c->n_recipients,
                .body_8bitmime = c->body_8bitmime,
        };
        c->n_recipients = 0;
        reset_transaction(c);

        /* One reference for the connection, one for the caller, and one
         * for us across the call: deliver() may answer at once. */
        d->n_ref = 3;
        d->connection = c;
        c->delivery = d;
        r = s->cb.deliver(s->userdata, d, &d->envelope, d->data ?: "", d->size);
        /* Refused (and not answered by the caller before it returned). */
        if (r < 0 && d->connection)
                lmtp_delivery_done_all(d, &(LmtpResult){ 451, "4.3.0", "Temporary failure, try again later" });
        delivery_unref(d);
        return 0;
}

static int data_line(LmtpConnection *c, const char *line, size_t n, bool overlong) {
        LmtpServer *s = c->server;

        if (!overlong && n == 1 && line[0] == '.')
                return end_data(c);
        if (overlong) {
                c->msg_line_too_long = true;
                c->msg = mfree(c->msg);
                c->msg_alloc = 0;
                return 0;
        }
        if (n > 0 && line[0] == '.') /* RFC 5321 4.5.2 */
                line++, n--;
        if (c->msg_too_big || c->msg_line_too_long)
                return 0;
        if (c->msg_len + n + 2 > s->opts.max_message_size) {
                c->msg_too_big = true;
                c->msg = mfree(c->msg);
                c->msg_alloc = 0;
                return 0;
        }
        if (c->msg_len + n + 2 > c->msg_alloc) {
                uint64_t a = MAX((uint64_t) c->msg_alloc * 2, (uint64_t) 4096);
                a = MAX(a, (uint64_t) (c->msg_len + n + 2));
                a = MIN(a, s->opts.max_message_size);
                char *m = mem_realloc(c->msg, (size_t) a);
                if (!m)
                        return -ENOMEM;
                c->msg = m;
                c->msg_alloc = (size_t) a;
        }
        memcpy(c->msg + c->msg_len, line, n);
        c->msg[c->msg_len + n] = '\r';
        c->msg[c->msg_len + n + 1] = '\n';
        c->msg_len += n + 2;
        return 0;
}

static int command_rcpt(LmtpConnection *c, LmtpCommand *cmd) {
        LmtpServer *s = c->server;
        int r;

        if (!c->sender)
                return reply(c, "503 5.5.1 Error: need MAIL command");
        if (c->n_recipients >= s->opts.max_recipients)
                return reply(c, "452 4.5.3 Error: too many recipients");

        r = s->cb.check_recipient(s->userdata, cmd->arg);
        if (r == 0)
                return reply(c, "550 5.1.1 <%s>: Recipient address rejected: User unknown", cmd->arg);
        if (r < 0)
                return reply(c, "451 4.3.0 <%s>: Temporary lookup failure, try again later", cmd->arg);

        char **l = mem_realloc(c->recipients, (c->n_recipients + 1) * sizeof(char *));
        if (!l)
                return -ENOMEM;
        c->recipients = l;
        l[c->n_recipients++] = TAKE_PTR(cmd->arg);
        return reply(c, "250 2.1.5 Ok");
}

static int command_line(LmtpConnection *c, const char *line, size_t n, bool overlong) {
        LmtpServer *s = c->server;
        LmtpCommand cmd;
        int r;

        if (overlong && !s->draining)
                return reply(c, "500 5.5.2 Error: line too long");
        r = overlong ? -EINVAL : lmtp_parse_command(line, n, &cmd);
        if (r == -ENOMEM)
                return r;
        if (s->draining && !(r >= 0 && cmd.verb == LMTP_QUIT)) {
                if (r >= 0)
                        lmtp_command_done(&cmd);
                c->closing = true;
                return reply(c, "421 4.3.2 Service shutting down");
        }
        if (r == -EBADMSG)
                return reply(c, "500 5.5.1 Error: command not recognized");
        if (r == -EOPNOTSUPP)
                return reply(c, "555 5.5.4 Error: unsupported parameter");
        if (r < 0)
                return reply(c, "501 5.5.4 Error: syntax error in parameters or arguments");

        switch (cmd.verb) {
        case LMTP_LHLO:
                reset_transaction(c);
                free(c->lhlo);
                c->lhlo = TAKE_PTR(cmd.arg);
                r = reply(c, "250-%s\r\n250-PIPELINING\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250 SIZE %" PRIu64,
                          s->hostname, s->opts.max_message_size);
                break;

        case LMTP_MAIL:
                if (!c->lhlo)
                        r = reply(c, "503 5.5.1 Error: send LHLO first");
                else if (c->sender)
                        r = reply(c, "503 5.5.1 Error: nested MAIL command");
                else if (cmd.has_size && cmd.size > s->opts.max_message_size) {
                        if (s->cb.refused)
                                s->cb.refused(s->userdata, true);
                        r = reply(c, "552 5.3.4 Message size exceeds fixed maximum message size");
                } else {
                        c->sender = TAKE_PTR(cmd.arg);
                        c->body_8bitmime = cmd.body_8bitmime;
                        r = reply(c, "250 2.1.0 Ok");
                }
                break;

        case LMTP_RCPT:
                r = command_rcpt(c, &cmd);
                break;

        case LMTP_DATA:
                if (!c->sender)
                        r = reply(c, "503 5.5.1 Error: need MAIL command");
                else if (c->n_recipients == 0) /* RFC 2033 4.2 */
                        r = reply(c, "503 5.5.1 Error: need RCPT command");
                else
                        r = start_data(c);
                break;

        case LMTP_RSET:
                reset_transaction(c);
                r = reply(c, "250 2.0.0 Ok");
                break;

        case LMTP_NOOP:
                r = reply(c, "250 2.0.0 Ok");
                break;

        case LMTP_QUIT:
                c->closing = true;
                r = reply(c, "221 2.0.0 %s Bye", s->hostname);
                break;

        case LMTP_VRFY:
                r = reply(c, "252 2.0.0 Cannot VRFY user, but will accept message and attempt delivery");
                break;

        case LMTP_HELP:
                r = reply(c, "214 2.0.0 Commands: LHLO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP");
                break;

        default: /* EHLO, HELO */
                r = reply(c, "500 5.5.1 Error: this is LMTP, use LHLO");
                break;
        }
        lmtp_command_done(&cmd);
        return r;
}

/* Answer every complete line in the buffer, in order, until a delivery
 * is pending, the connection is closing, or the client lags behind. */
static int process_input(LmtpConnection *c) {
        const LmtpOptions *o = &c->server->opts;
        size_t pos = 0;
        int r = 0;

        while (!c->delivery && !c->closing && !c->failed && c->out_len - c->out_done < OUTPUT_HIGH_WATER) {
                size_t limit = c->in_data ? o->max_line_length : o->max_command_length;
                char *line = c->in + pos, *lf;
                size_t avail = c->in_len - pos, n;
                bool overlong;

                lf = memchr(line, '\n', avail);
                if (!lf) {
                        /* Even with its line end still to come, this one
                         * is over the limit: drop it as it arrives. */
                        if (avail >= limit) {
                                c->overlong = true;
                                pos = c->in_len;
                        }
                        break;
                }
                n = (size_t) (lf - line);
                pos += n + 1;
                if (n > 0 && line[n - 1] == '\r')
                        n--;
                overlong = c->overlong || n + 2 > limit;
                c->overlong = false;

                r = reset_timer(c);
                if (r < 0)
                        break;
                r = c->in_data ? data_line(c, line, n, overlong) : command_line(c, line, n, overlong);
                if (r < 0)
                        break;
        }
        if (pos > 0) {
                memmove(c->in, c->in + pos, c->in_len - pos);
                c->in_len -= pos;
        }
        return r;
}

static int update_io(LmtpConnection *c) {
        uint32_t events = 0;

        if (!c->eof && !c->closing && c->in_len < c->server->opts.max_pending_input)
                events |= EPOLLIN;
        if (!c->eof)
                events |= EPOLLRDHUP;
        if (c->out_done < c->out_len)
                events |= EPOLLOUT;
        return sd_event_source_set_io_events(c->io, events);
}

/* After any event: answer what can be answered, send, decide whether the
 * connection lives on. */
static void connection_run(LmtpConnection *c) {
        int r = c->failed ? -ENOMEM : 0;

        /* A client that went away while its message is being committed
         * gets nothing: cancel (in connection_free()). */
        if (r >= 0 && c->eof && c->delivery) {
                connection_free(c);
                return;
        }
        while (r >= 0) {
                r = process_input(c);
                if (r >= 0 && c->failed)
                        r = -ENOMEM;
                if (r >= 0)
                        r = flush_output(c);
                /* Stopped for a client that lagged behind, and the output
                 * has gone since: no event would come for the lines
                 * waiting, so go on with them now. */
                if (r < 0 || c->delivery || c->closing || c->out_len - c->out_done >= OUTPUT_HIGH_WATER ||
                    !memchr(c->in, '\n', c->in_len))
                        break;
        }
        if (r >= 0 && c->eof && c->delivery) {
                connection_free(c);
                return;
        }
        if (r < 0) {
                connection_abort(c, r);
                return;
        }
        /* End of input and nothing complete left to answer. */
        if (c->eof && !c->delivery && !memchr(c->in, '\n', c->in_len))
                c->closing = true;
        if (c->closing && c->out_done == c->out_len) {
                connection_free(c);
                return;
        }
        r = update_io(c);
        if (r < 0)
                connection_abort(c, r);
}

static int on_connection_io(sd_event_source *src _unused_, int fd, uint32_t revents, void *userdata) {
        LmtpConnection *c = userdata;
        size_t cap = c->server->opts.max_pending_input;

        if (revents & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP)) {
                if (!c->eof && !c->closing && c->in_len < cap) {
                        ssize_t k = recv(fd, c->in + c->in_len, cap - c->in_len, MSG_DONTWAIT);
                        if (k < 0 && errno != EAGAIN && errno != EINTR) {
                                connection_free(c);
                                return 0;
                        }
                        if (k == 0)
                                c->eof = true;
                        if (k > 0)
                                c->in_len += (size_t) k;
                } else if (revents & (EPOLLHUP | EPOLLERR | EPOLLRDHUP))
                        c->eof = true;
        }
        connection_run(c);
        return 0;
}

static int on_connection_resume(sd_event_source *src _unused_, void *userdata) {
        connection_run(userdata);
        return 0;
}

static int on_connection_timeout(sd_event_source *src _unused_, uint64_t usec _unused_, void *userdata) {
        LmtpConnection *c = userdata;

        /* With a delivery pending, a reply would acknowledge or refuse
         * what is not decided yet: close without a word. */
        if (!c->delivery && !c->closing && !c->failed && reply(c, "421 4.4.2 Idle timeout, closing connection") >= 0)
                (void) flush_output(c);
        connection_free(c);
        return 0;
}

static int connection_new(LmtpServer *s, int fd) {
        LmtpConnection *c;
        uint64_t now;
        int r;

        c = mem_new(LmtpConnection, 1);
        if (!c) {
                say_out_of_memory(fd); /* the MTA tries again later */
                close(fd);
                return -ENOMEM;
        }
        c->server = s;
        c->fd = fd;
        c->next = s->connections;
        if (s->connections)
                s->connections->prev = c;
        s->connections = c;
        s->n_connections++;

        c->in = mem_malloc(s->opts.max_pending_input);
        if (!c->in) {
                r = -ENOMEM;
                goto fail;
        }
        r = sd_event_add_io(s->event, &c->io, fd, EPOLLIN | EPOLLRDHUP, on_connection_io, c);
        if (r < 0)
                goto fail;
        r = sd_event_now(s->event, CLOCK_MONOTONIC, &now);
        if (r < 0)
                goto fail;
        r = sd_event_add_time(s->event, &c->timer, CLOCK_MONOTONIC, now + s->opts.idle_timeout_usec, 0,
                              on_connection_timeout, c);
        if (r < 0)
                goto fail;
        r = sd_event_add_defer(s->event, &c->resume, on_connection_resume, c);
        if (r < 0)
                goto fail;
        r = sd_event_source_set_enabled(c->resume, SD_EVENT_OFF);
        if (r < 0)
                goto fail;
        r = reply(c, "220 %s LMTP deliveryd ready", s->hostname);
        if (r < 0)
                goto fail;
        connection_run(c);
        return 0;

fail:
        connection_abort(c, r);
        return r;
}

static int on_accept(sd_event_source *src _unused_, int fd, uint32_t revents _unused_, void *userdata) {
        LmtpServer *s = userdata;
        int cfd;

        cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd < 0)
                return 0;
        if (s->n_connections >= s->opts.max_connections) {
                char busy[512];
                int n = snprintf(busy, sizeof busy, "421 4.3.2 %s Too many connections, try again later\r\n",
                                 s->hostname);
                if (n > 0 && (size_t) n < sizeof busy)
                        (void) send(cfd, busy, (size_t) n, MSG_NOSIGNAL | MSG_DONTWAIT);
                close(cfd);
                return 0;
        }
        (void) connection_new(s, cfd);
        return 0;
}

/* ---- server ------------------------------------------------------------ */

static bool hostname_valid(const char *h) {
        size_t n = strlen(h);

        if (n == 0 || n > 255)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!is_graph(h[i]))
                        return false;
        return true;
}

int lmtp_server_new(sd_event *e, int listen_fd, const LmtpOptions *opts, const LmtpCallbacks *cb, void *userdata,
                    LmtpServer **ret) {
        _cleanup_close_ int fd = listen_fd;
        _cleanup_(lmtp_server_freep) LmtpServer *s = NULL;
        char host[HOST_NAME_MAX + 1];
        const char *hostname;
        LmtpOptions o = opts ? *opts : (LmtpOptions){};
        int r;

        if (!e || fd < 0 || !cb || !cb->check_recipient || !cb->deliver || !ret)
                return -EINVAL;

        if (o.max_message_size == 0)
                o.max_message_size = LMTP_DEFAULT_MAX_MESSAGE_SIZE;
        if (o.max_line_length == 0)
                o.max_line_length = LMTP_DEFAULT_MAX_LINE_LENGTH;
        if (o.max_command_length == 0)
                o.max_command_length = LMTP_DEFAULT_MAX_COMMAND_LENGTH;
        if (o.max_recipients == 0)
                o.max_recipients = LMTP_DEFAULT_MAX_RECIPIENTS;
        if (o.max_connections == 0)
                o.max_connections = LMTP_DEFAULT_MAX_CONNECTIONS;
        if (o.idle_timeout_usec == 0)
                o.idle_timeout_usec = LMTP_DEFAULT_IDLE_TIMEOUT_USEC;
        if (o.max_pending_input == 0)
                o.max_pending_input = MAX(LMTP_DEFAULT_MAX_PENDING_INPUT, MAX(o.max_line_length, o.max_command_length));
        /* A line must fit in the buffer to be seen whole; a command line
         * must hold "MAIL FROM:<...> SIZE=... BODY=8BITMIME". */
        if (o.max_command_length < 64 || o.max_line_length < 8 || o.max_message_size > SIZE_MAX / 2 ||
            o.max_pending_input < MAX(o.max_line_length, o.max_command_length))
                return -EINVAL;

        hostname = o.hostname;
        if (!hostname) {
                if (gethostname(host, sizeof host) < 0)
                        return -errno;
                host[sizeof host - 1] = '\0';
                hostname = host;
        }
        if (!hostname_valid(hostname))
                return -EINVAL;

        s = mem_new(LmtpServer, 1);
        if (!s)
                return -ENOMEM;
        s->fd = -EBADF;
        s->event = sd_event_ref(e);
        s->cb = *cb;
        s->userdata = userdata;
        s->hostname = mem_strdup(hostname);
        if (!s->hostname)
                return -ENOMEM;
        s->opts = o;
        s->opts.hostname = s->hostname;

        r = sd_event_add_io(e, &s->accept_source, fd, EPOLLIN, on_accept, s);
        if (r < 0)
                return r;
        s->fd = TAKE_FD(fd);
        *ret = TAKE_PTR(s);
        return 0;
}

void lmtp_server_stop_accepting(LmtpServer *s) {
        if (!s || s->fd < 0)
                return;
        s->accept_source = sd_event_source_disable_unref(s->accept_source);
        close(s->fd);
        s->fd = -EBADF;
}

void lmtp_server_drain(LmtpServer *s) {
        if (s)
                s->draining = true;
}

unsigned lmtp_server_n_connections(LmtpServer *s) {
        return s ? s->n_connections : 0;
}

LmtpServer *lmtp_server_free(LmtpServer *s) {
        if (!s)
                return NULL;
        while (s->connections)
                connection_free(s->connections);
        lmtp_server_stop_accepting(s);
        sd_event_unref(s->event);
        free(s->hostname);
        free(s);
        return NULL;
}

/* ---- results ------------------------------------------------------------ */

/* Queue the replies for d (results[i], or one for all), wake the
 * connection up from the loop, and drop the caller's reference. */
static void delivery_finish(LmtpDelivery *d, const LmtpResult *results, size_t n_results, const LmtpResult *all) {
        static const LmtpResult missing = { 451, "4.3.0", "Temporary failure, try again later" };
        LmtpConnection *c;

        if (!d)
                return;
        c = d->connection;
        if (c) {
                for (size_t i = 0; i < d->envelope.n_recipients && !c->failed; i++) {
                        const LmtpResult *res = all ?: (i < n_results ? &results[i] : &missing);
                        if (reply_result(c, res) < 0)
                                c->failed = true; /* closed unanswered, in connection_run() */
                }
                c->delivery = NULL;
                d->connection = NULL;
                delivery_unref(d); /* the connection's reference */
                (void) sd_event_source_set_enabled(c->resume, SD_EVENT_ONESHOT);
        }
        delivery_unref(d); /* the caller's */
}

void lmtp_delivery_done(LmtpDelivery *d, const LmtpResult *results, size_t n_results) {
        delivery_finish(d, results, n_results, NULL);
}

void lmtp_delivery_done_all(LmtpDelivery *d, const LmtpResult *result) {
        static const LmtpResult none = { 0, NULL, NULL }; /* becomes 451 4.3.0 */
        delivery_finish(d, NULL, 0, result ?: &none);
}
