/* SPDX-License-Identifier: MIT */
/*
 * outbox-smtp.c — the "smtp" transport: message formatting, and the libESMTP
 * sessions, run one at a time on a worker thread (worker-pool.h) that
 * hands the results back to the loop.
 *
 * Security: see outbox-smtp.h.
 */
#include "outbox-smtp.h"

#include <errno.h>
#include <auth-client.h>
#include <libesmtp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "base64.h"
#include "ini.h"
#include "strutil.h"
#include "worker-pool.h"

/* ---- a growing string ---------------------------------------------------- */

typedef struct Buf {
        char *p;
        size_t len, size;
        bool oom;
} Buf;

static void buf_add(Buf *b, const char *s, size_t n) {
        if (b->oom)
                return;
        if (b->len + n + 1 > b->size) {
                size_t size = MAX(b->size * 2, b->len + n + 64);
                char *p = mem_realloc(b->p, size);
                if (!p) {
                        b->oom = true;
                        return;
                }
                b->p = p;
                b->size = size;
        }
        memcpy(b->p + b->len, s, n);
        b->len += n;
        b->p[b->len] = 0;
}

static void buf_puts(Buf *b, const char *s) {
        buf_add(b, s, strlen(s));
}

static char *buf_steal(Buf *b) {
        if (b->oom || !b->p) {
                free(b->p);
                return b->oom ? NULL : mem_strdup("");
        }
        return b->p;
}

/* ---- pure parts ---------------------------------------------------------- */

char *smtp_qp_encode(const char *s) {
        static const char hex[] = "0123456789ABCDEF";
        Buf b = {};
        size_t col = 0;

        for (const char *p = s; *p;) {
                const char *eol = strchr(p, '\n');
                size_t n = eol ? (size_t) (eol - p) : strlen(p);

                if (n > 0 && p[n - 1] == '\r')
                        n--;
                for (size_t i = 0; i < n; i++) {
                        unsigned char c = (unsigned char) p[i];
                        bool last = i + 1 == n;
                        char tok[3];
                        size_t t;

                        if ((c >= 33 && c <= 126 && c != '=') || ((c == ' ' || c == '\t') && !last)) {
                                tok[0] = (char) c;
                                t = 1;
                        } else {
                                tok[0] = '=';
                                tok[1] = hex[c >> 4];
                                tok[2] = hex[c & 15];
                                t = 3;
                        }
                        /* A line is at most 76 characters, the soft break's '=' included. */
                        if (col + t > (last ? 76u : 75u)) {
                                buf_puts(&b, "=\r\n");
                                col = 0;
                        }
                        buf_add(&b, tok, t);
                        col += t;
                }
                if (!eol)
                        break;
                buf_puts(&b, "\r\n");
                col = 0;
                p = eol + 1;
        }
        return buf_steal(&b);
}

char *smtp_reply_subject(const char *subject, bool answering) {
        subject = strempty(subject);
        if (!answering || strncasecmp(subject, "Re:", 3) == 0)
                return mem_strdup(subject);
        return mem_printf("Re: %s", subject);
}

char *smtp_encode_header_text(const char *s) {
        Buf b = {};
        bool ascii = true;

        for (const char *p = s; *p; p++)
                if ((unsigned char) *p >= 0x80 || *p == '\r' || *p == '\n')
                        ascii = false;
        if (ascii)
                return mem_strdup(s);
        /* 45 bytes make 60 base64 characters: each word stays under 75. */
        for (const char *p = s; *p;) {
                size_t n = 0, len = strlen(p);
                _cleanup_free_ char *enc = NULL;

                while (n < len) {
                        size_t c = 1;
                        while (n + c < len && ((unsigned char) p[n + c] & 0xC0) == 0x80)
                                c++;
                        if (n + c > 45 && n > 0)
                                break;
                        n += c;
                }
                enc = base64_encode(p, n);
                if (!enc) {
                        free(b.p);
                        return NULL;
                }
                if (p != s)
                        buf_puts(&b, "\r\n ");
                buf_puts(&b, "=?UTF-8?B?");
                buf_puts(&b, enc);
                buf_puts(&b, "?=");
                p += n;
        }
        return buf_steal(&b);
}

static void format_date(uint64_t usec, char *buf, size_t size) {
        static const char *const days[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
        static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                              "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
        time_t t = (time_t) (usec / USEC_PER_SEC);
        struct tm tm;

        gmtime_r(&t, &tm);
        snprintf(buf, size, "%s, %02d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday], tm.tm_mday, months[tm.tm_mon],
                 tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* A header value from the store must not break the header block. */
static bool header_safe(const char *s) {
        return s && *s && !strpbrk(s, "\r\n");
}

char *smtp_format_message(const SmtpMessageFields *f) {
        _cleanup_free_ char *subject = NULL, *body = NULL;
        char date[64];
        Buf b = {};

        subject = smtp_encode_header_text(strempty(f->subject));
        body = smtp_qp_encode(strempty(f->body));
        if (!subject || !body)
                return NULL;
        format_date(f->date_usec, date, sizeof date);

        buf_puts(&b, "From: ");
        buf_puts(&b, f->from);
        buf_puts(&b, "\r\nTo: ");
        buf_puts(&b, f->to);
        buf_puts(&b, "\r\nSubject: ");
        buf_puts(&b, subject);
        buf_puts(&b, "\r\nDate: ");
        buf_puts(&b, date);
        buf_puts(&b, "\r\nMessage-ID: ");
        buf_puts(&b, f->message_id);
        buf_puts(&b, "\r\n");
        if (header_safe(f->in_reply_to)) {
                buf_puts(&b, "In-Reply-To: ");
                buf_puts(&b, f->in_reply_to);
                buf_puts(&b, "\r\n");
        }
        if (header_safe(f->references)) {
                buf_puts(&b, "References: ");
                buf_puts(&b, f->references);
                buf_puts(&b, "\r\n");
        }
        buf_puts(&b,
                 "Auto-Submitted: auto-replied\r\n"
                 "MIME-Version: 1.0\r\n"
                 "Content-Type: text/plain; charset=UTF-8\r\n"
                 "Content-Transfer-Encoding: quoted-printable\r\n"
                 "\r\n");
        buf_puts(&b, body);
        if (b.len < 2 || b.p[b.len - 1] != '\n')
                buf_puts(&b, "\r\n");
        return buf_steal(&b);
}

char *smtp_new_message_id(const char *from) {
        const char *at = from ? strrchr(from, '@') : NULL;
        uint8_t r[16];
        char hex[33];

        if (!at || !at[1] || strpbrk(at + 1, "<>\r\n \t"))
                return NULL;
        if (getrandom(r, sizeof r, 0) != (ssize_t) sizeof r)
                return NULL;
        for (size_t i = 0; i < sizeof r; i++)
                snprintf(hex + 2 * i, 3, "%02x", r[i]);
        return mem_printf("<%s@%s>", hex, at + 1);
}

/* ---- credentials ---------------------------------------------------------- */

typedef struct CredState {
        char *username, *password;
} CredState;

static int on_credentials(const char *file _unused_, unsigned line _unused_, const char *section _unused_,
                          const char *key, const char *value, void *userdata) {
        CredState *st = userdata;
        char **p;

        if (!key)
                return 0;
        if (streq(key, "username"))
                p = &st->username;
        else if (streq(key, "password"))
                p = &st->password;
        else
                return 0;
        wipe_free(*p);
        *p = mem_strdup(value);
        return *p ? 0 : -ENOMEM;
}

static bool no_controls(const char *s) {
        for (; *s; s++)
                if ((unsigned char) *s < 0x20 || *s == 0x7f)
                        return false;
        return true;
}

int smtp_credentials_read(const char *path, char **ret_username, char **ret_password) {
        CredState st = {};
        Diags diags = {};
        int r;

        r = ini_parse_file_full(path, INI_TOP_LEVEL, on_credentials, &st, &diags);
        /* Dropped unread: a message may quote the password's line. */
        diags_clear(&diags);
        if (r >= 0 && (isempty(st.username) || isempty(st.password)))
                r = -ENOKEY;
        if (r >= 0 && (!no_controls(st.username) || !no_controls(st.password)))
                r = -EINVAL;
        if (r < 0) {
                wipe_free(st.username);
                wipe_free(st.password);
                return r;
        }
        *ret_username = st.username;
        *ret_password = st.password;
        return 0;
}

/* ---- the worker ----------------------------------------------------------- */

/* One send: built on the loop, the session run by the worker, answered
 * on the loop. */
typedef struct SmtpJob {
        WorkItem work;
        const struct SmtpSender *sender;
        char *to, *message, *message_id;
        OutboxSendDone done;
        void *done_data;
        OutboxResult result; /* written by the worker */
        char *error;
} SmtpJob;

struct SmtpSender {
        /* One thread: libESMTP blocks for a whole session, and sessions go
         * one after the other, as a relay likes them. */
        WorkerPool *pool;
        char *host, *from;
        char *username, *password; /* NULL: no AUTH */
        unsigned port;
        SmtpStarttls starttls;
        uint64_t timeout_usec;
};

static SmtpJob *job_free(SmtpJob *j) {
        if (!j)
                return NULL;
        free(j->to);
        free(j->message);
        free(j->message_id);
        free(j->error);
        free(j);
        return NULL;
}

/* The server's reply as "CODE text", trimmed. */
static char *status_text(const smtp_status_t *st) {
        _cleanup_free_ char *t = mem_strdup(st->text ? st->text : "");
        return t ? mem_printf("%d %s", st->code, strstrip(t)) : NULL;
}

/* OK for 2xx, TEMPFAIL for 4xx, PERMFAIL for 5xx; -1 for no answer. */
static int classify(const smtp_status_t *st) {
        if (!st || st->code == 0)
                return -1;
        if (st->code >= 200 && st->code < 300)
                return OUTBOX_RESULT_OK;
        return st->code >= 500 ? OUTBOX_RESULT_PERMFAIL : OUTBOX_RESULT_TEMPFAIL;
}

/* libESMTP asks for the user name and the password of PLAIN or LOGIN. */
static int on_auth_interact(auth_client_request_t request, char **result, int fields, void *arg) {
        const SmtpSender *s = arg;

        for (int i = 0; i < fields; i++) {
                if (request[i].flags & AUTH_USER)
                        result[i] = s->username;
                else if (request[i].flags & AUTH_PASS)
                        result[i] = s->password;
                else
                        return 0;
        }
        return 1;
}

/* libESMTP's events: only "the relay offers no STARTTLS" matters here, so
 * that smtp.starttls = required can say why nothing was sent. */
static void on_session_event(smtp_session_t session _unused_, int event_no, void *arg, ...) {
        bool *no_starttls = arg;

        if (event_no == SMTP_EV_EXTNA_STARTTLS)
                *no_starttls = true;
}

static void run_session(const SmtpSender *s, SmtpJob *j) {
        smtp_session_t session = smtp_create_session();
        smtp_message_t msg;
        smtp_recipient_t rcpt;
        auth_context_t auth = NULL;
        char server[512], err[256];
        long ms = (long) MIN(s->timeout_usec / 1000, (uint64_t) 3600 * 1000);
        const smtp_status_t *st;
        bool no_starttls = false;
        int c;

        j->result = OUTBOX_RESULT_TEMPFAIL;
        if (!session) {
                j->error = mem_strdup("cannot create an SMTP session");
                return;
        }
        snprintf(server, sizeof server, "%s:%u", s->host, s->port);
        msg = smtp_add_message(session);
        rcpt = msg ? smtp_add_recipient(msg, j->to) : NULL;
        if (!smtp_set_server(session, server) || !msg || !rcpt || !smtp_set_reverse_path(msg, s->from) ||
            !smtp_set_message_str(msg, j->message)) {
                j->error = mem_strdup("cannot set up the SMTP session");
                goto finish;
        }
        for (int w = Timeout_GREETING; w <= Timeout_DATA2; w++)
                (void) smtp_set_timeout(session, w | Timeout_OVERRIDE_RFC2822_MINIMUM, MAX(ms, 1L));
        (void) smtp_starttls_enable(session,
                                    s->starttls == SMTP_STARTTLS_REQUIRED           ? Starttls_REQUIRED
                                            : s->starttls == SMTP_STARTTLS_OPTIONAL ? Starttls_ENABLED
                                                                                    : Starttls_DISABLED);
        (void) smtp_set_eventcb(session, on_session_event, &no_starttls);
        if (s->username) {
                auth = auth_create_context();
                if (!auth) {
                        j->error = mem_strdup("cannot set up SMTP authentication");
                        goto finish;
                }
                /* PLAIN and LOGIN are allowed; smtp.starttls says whether the session is encrypted. */
                (void) auth_set_mechanism_flags(auth, AUTH_PLUGIN_PLAIN, 0);
                (void) auth_set_interact_cb(auth, on_auth_interact, (void *) s);
                (void) smtp_auth_set_context(session, auth);
        }
        if (!smtp_start_session(session)) {
                smtp_strerror(smtp_errno(), err, sizeof err);
                j->error = mem_printf("%s: %s", server, err);
                goto finish;
        }
        /* The first definite answer decides: the sender, the recipient, then the data. */
        st = smtp_reverse_path_status(msg);
        c = classify(st);
        if (c < 0 || c == OUTBOX_RESULT_OK) {
                st = smtp_recipient_status(rcpt);
                c = classify(st);
        }
        if (c < 0 || c == OUTBOX_RESULT_OK) {
                st = smtp_message_transfer_status(msg);
                c = classify(st);
        }
        if (c < 0 && no_starttls && s->starttls == SMTP_STARTTLS_REQUIRED) {
                j->error = mem_printf("%s: the relay offers no STARTTLS, and smtp.starttls = required", server);
                goto finish;
        }
        if (c < 0) {
                j->error = mem_printf("%s: the session ended without an answer to the message", server);
                goto finish;
        }
        j->result = (OutboxResult) c;
        if (c != OUTBOX_RESULT_OK)
                j->error = status_text(st);
finish:
        smtp_destroy_session(session);
        if (auth)
                auth_destroy_context(auth);
}

static void job_work(void *userdata) {
        SmtpJob *j = userdata;

        run_session(j->sender, j);
}

static void job_done(void *userdata, bool cancelled) {
        SmtpJob *j = userdata;

        if (cancelled)
                j->done(j->done_data, OUTBOX_RESULT_TEMPFAIL, NULL, "shut down before sending");
        else
                j->done(j->done_data, j->result, j->result == OUTBOX_RESULT_OK ? j->message_id : NULL, j->error);
        job_free(j);
}

int smtp_sender_new(sd_event *e, const SmtpOptions *o, SmtpSender **ret) {
        _cleanup_(smtp_sender_freep) SmtpSender *s = NULL;
        _cleanup_free_ char *probe = NULL;
        int r;

        probe = smtp_new_message_id(o->from);
        if (!probe || !o->host || !*o->host)
                return -EINVAL;
        s = mem_new(SmtpSender, 1);
        if (!s)
                return -ENOMEM;
        s->host = mem_strdup(o->host);
        s->from = mem_strdup(o->from);
        if (!s->host || !s->from)
                return -ENOMEM;
        if (!isempty(o->username) && !isempty(o->password)) {
                s->username = mem_strdup(o->username);
                s->password = mem_strdup(o->password);
                if (!s->username || !s->password)
                        return -ENOMEM;
                auth_client_init();
        }
        s->port = o->port;
        s->starttls = o->starttls;
        s->timeout_usec = o->timeout_usec;
        r = worker_pool_new(e, 1, &s->pool);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(s);
        return 0;
}

SmtpSender *smtp_sender_free(SmtpSender *s) {
        if (!s)
                return NULL;
        /* Waits for the session under way; the queued ones are answered
         * "shut down before sending". */
        worker_pool_free(s->pool);
        free(s->host);
        free(s->from);
        free(s->username);
        wipe_free(s->password);
        free(s);
        return NULL;
}

static int smtp_send(void *userdata, const OutboxDelivery *d, OutboxSendDone done, void *done_data) {
        SmtpSender *s = userdata;
        _cleanup_free_ char *subject = NULL;
        SmtpJob *j;

        if (!s || d->channel != OUTBOX_EMAIL)
                return -EOPNOTSUPP;
        j = mem_new(SmtpJob, 1);
        if (!j)
                return -ENOMEM;
        j->done = done;
        j->done_data = done_data;
        /* A retry keeps the Message-ID the row already has. */
        j->message_id = header_safe(d->message_id) ? mem_strdup(d->message_id) : smtp_new_message_id(s->from);
        j->to = mem_strdup(d->to);
        subject = smtp_reply_subject(d->subject, header_safe(d->in_reply_to));
        if (j->message_id && j->to && subject) {
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                const SmtpMessageFields f = {
                        .from = s->from,
                        .to = d->to,
                        .subject = subject,
                        .in_reply_to = d->in_reply_to,
                        .references = d->references,
                        .message_id = j->message_id,
                        .body = d->body,
                        .date_usec = (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / 1000,
                };
                j->message = smtp_format_message(&f);
        }
        if (!j->message) {
                job_free(j);
                return -ENOMEM;
        }
        j->sender = s;
        worker_pool_submit(s->pool, &j->work, job_work, job_done, j);
        return 0;
}

const OutboxTransport outbox_transport_smtp = {
        .name = "smtp",
        .send = smtp_send,
};
