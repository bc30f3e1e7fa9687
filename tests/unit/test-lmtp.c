/* SPDX-License-Identifier: MIT */
/*
 * test-lmtp.c — the LMTP server on a real sd-event loop, against a
 * scripted client on a Unix (and once a TCP) socket: each row of the
 * transcript table says what the client sends and what the server must
 * answer, byte for byte, and what reached the deliver callback.  Then the
 * command parser, one row per line, with an allocation-failure loop, and
 * a whole session under allocation failure.
 */
#include "test-helpers.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <systemd/sd-event.h>

#include "alloc.h"
#include "listen.h"
#include "lmtp.h"

/* ---- the fixture: a loop, a server, one client ------------------------- */

typedef enum StepKind {
        STEP_END,
        STEP_SEND, /* client writes text */
        STEP_EXPECT, /* server's next bytes are exactly text */
        STEP_SILENT, /* server sends nothing for a while */
        STEP_COMPLETE, /* the caller answers every pending delivery */
        STEP_CLOSE, /* client closes; the server must let go of the connection */
        STEP_SHUTDOWN, /* client shuts down its sending side */
        STEP_CLOSED, /* server closes, with nothing more sent */
        STEP_DRAIN, /* lmtp_server_drain() */
} StepKind;

typedef struct Step {
        StepKind kind;
        const char *text;
} Step;

#define SEND(t)                                                                                                        \
        { STEP_SEND, (t) }
#define EXPECT(t)                                                                                                      \
        { STEP_EXPECT, (t) }
#define SILENT                                                                                                         \
        { STEP_SILENT, NULL }
#define COMPLETE                                                                                                       \
        { STEP_COMPLETE, NULL }
#define CLOSE                                                                                                          \
        { STEP_CLOSE, NULL }
#define SHUTDOWN                                                                                                       \
        { STEP_SHUTDOWN, NULL }
#define CLOSED                                                                                                         \
        { STEP_CLOSED, NULL }
#define DRAIN                                                                                                          \
        { STEP_DRAIN, NULL }

#define MAX_DELIVERIES 8

typedef struct Fixture {
        char *dir;
        sd_event *event;
        LmtpServer *server;

        bool later; /* keep deliveries pending until STEP_COMPLETE */
        bool refuse; /* deliver() returns -EIO */
        LmtpDelivery *pending[MAX_DELIVERIES];
        const LmtpEnvelope *pending_env[MAX_DELIVERIES];
        unsigned n_pending;
        char *delivered[MAX_DELIVERIES]; /* "<from> <to>... [8BITMIME]\n" + data */
        unsigned n_delivered;
        unsigned n_cancelled;

        int client;
        char rbuf[65536];
        size_t rlen;
        bool reof;
} Fixture;

static Fixture F;

static uint64_t now_msec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

/* The caller's policy: these are the outcomes a store would report. */
static void result_for(const char *rcpt, LmtpResult *ret, char *buf, size_t size) {
        if (strncmp(rcpt, "tempfail@", 9) == 0)
                *ret = (LmtpResult){ 451, "4.3.0", "Try again later" };
        else if (strncmp(rcpt, "reject@", 7) == 0)
                *ret = (LmtpResult){ 554, "5.6.0", "Message content rejected" };
        else {
                snprintf(buf, size, "<%s> delivered", rcpt);
                *ret = (LmtpResult){ 250, "2.0.0", buf };
        }
}

static void answer(LmtpDelivery *d, const LmtpEnvelope *env) {
        LmtpResult results[8];
        char texts[8][300];

        assert_true(env->n_recipients <= ELEMENTSOF(results));
        for (size_t i = 0; i < env->n_recipients; i++)
                result_for(env->recipients[i], &results[i], texts[i], sizeof texts[i]);
        lmtp_delivery_done(d, results, env->n_recipients);
}

static int on_check_recipient(void *userdata _unused_, const char *address) {
        size_t n = strlen(address);

        if (strncmp(address, "lookupfail@", 11) == 0)
                return -EIO;
        return n > 15 && streq(address + n - 15, "@deliveryd.test");
}

static int on_deliver(void *userdata, LmtpDelivery *d, const LmtpEnvelope *env, const char *data, size_t size) {
        Fixture *f = userdata;
        char head[2048] = "";
        size_t n;

        assert_string_equal(env->lhlo, "client.test");
        assert_true(f->n_delivered < MAX_DELIVERIES);
        n = (size_t) snprintf(head, sizeof head, "<%s>", env->sender);
        for (size_t i = 0; i < env->n_recipients; i++)
                n += (size_t) snprintf(head + n, sizeof head - n, " <%s>", env->recipients[i]);
        if (env->body_8bitmime)
                n += (size_t) snprintf(head + n, sizeof head - n, " 8BITMIME");
        char *text = malloc(n + 1 + size + 1);
        assert_non_null(text);
        memcpy(text, head, n);
        text[n] = '\n';
        memcpy(text + n + 1, data, size);
        text[n + 1 + size] = '\0';
        f->delivered[f->n_delivered++] = text;

        if (f->refuse)
                return -EIO;
        if (f->later) {
                assert_true(f->n_pending < MAX_DELIVERIES);
                f->pending_env[f->n_pending] = env;
                f->pending[f->n_pending++] = d;
                return 0;
        }
        answer(d, env);
        return 0;
}

static void on_cancelled(void *userdata, LmtpDelivery *d) {
        Fixture *f = userdata;

        assert_true(lmtp_delivery_is_cancelled(d));
        f->n_cancelled++;
}

static const LmtpCallbacks callbacks = {
        .check_recipient = on_check_recipient,
        .deliver = on_deliver,
        .cancelled = on_cancelled,
};

static void complete_pending(void) {
        for (unsigned i = 0; i < F.n_pending; i++)
                answer(F.pending[i], F.pending_env[i]);
        F.n_pending = 0;
}

static void client_read(void) {
        if (F.client < 0 || F.reof)
                return;
        for (;;) {
                assert_true(F.rlen < sizeof F.rbuf);
                ssize_t k = recv(F.client, F.rbuf + F.rlen, sizeof F.rbuf - F.rlen, MSG_DONTWAIT);
                if (k < 0) {
                        if (errno == EAGAIN || errno == EINTR)
                                return;
                        F.reof = true; /* ECONNRESET counts as closed */
                        return;
                }
                if (k == 0) {
                        F.reof = true;
                        return;
                }
                F.rlen += (size_t) k;
        }
}

/* Run the loop for at most ms, or until done() holds. */
static void pump(uint64_t ms, bool (*done)(const void *), const void *arg) {
        uint64_t deadline = now_msec() + ms;

        for (;;) {
                client_read();
                if ((done && done(arg)) || now_msec() >= deadline)
                        return;
                assert_true(sd_event_run(F.event, 5 * USEC_PER_MSEC) >= 0);
        }
}

static bool have_bytes(const void *arg) {
        return F.rlen >= *(const size_t *) arg || F.reof;
}

static bool have_eof(const void *arg _unused_) {
        return F.reof;
}

static bool no_connections(const void *arg _unused_) {
        return lmtp_server_n_connections(F.server) == 0;
}

static int client_connect(void) {
        char path[4096];
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd;

        snprintf(path, sizeof path, "%s/lmtp.sock", F.dir);
        assert_true(strlen(path) < sizeof sa.sun_path);
        memcpy(sa.sun_path, path, strlen(path) + 1);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(fd >= 0);
        if (connect(fd, (struct sockaddr *) &sa, sizeof sa) < 0) {
                int r = -errno;
                close(fd);
                return r;
        }
        assert_int_equal(fcntl(fd, F_SETFL, O_NONBLOCK), 0);
        return fd;
}

static void fixture_start(const LmtpOptions *opts, bool tcp, unsigned *ret_port) {
        char address[4200];
        ListenAddress a;
        const char *reason;
        int fd;

        memset(&F, 0, sizeof F);
        F.client = -EBADF;
        F.dir = make_tmpdir();
        assert_int_equal(sd_event_new(&F.event), 0);
        if (tcp)
                snprintf(address, sizeof address, "127.0.0.1:0");
        else
                snprintf(address, sizeof address, "unix:%s/lmtp.sock", F.dir);
        assert_int_equal(listen_address_parse(address, &a, &reason), 0);
        fd = listen_bind(&a, 16, 0600);
        assert_true(fd >= 0);
        if (ret_port) {
                char buf[128];
                assert_int_equal(listen_socket_describe(fd, buf, sizeof buf, ret_port), 0);
        }

        LmtpOptions o = opts ? *opts : (LmtpOptions){};
        o.hostname = "mx.test";
        assert_int_equal(lmtp_server_new(F.event, fd, &o, &callbacks, &F, &F.server), 0);
}

static void fixture_stop(void) {
        if (F.client >= 0)
                close(F.client);
        F.server = lmtp_server_free(F.server);
        /* Deliveries still held by the caller: answering them is safe. */
        complete_pending();
        F.event = sd_event_unref(F.event);
        for (unsigned i = 0; i < F.n_delivered; i++)
                free(F.delivered[i]);
        rm_rf(F.dir);
        free(F.dir);
}

/* Expect text as the server's next bytes.  Strict: fail the test on a
 * mismatch.  Lenient (allocation failure runs): return false instead. */
static bool expect(const char *text, bool strict, uint64_t ms) {
        size_t n = strlen(text);

        pump(ms, have_bytes, &n);
        if (F.rlen < n || memcmp(F.rbuf, text, n) != 0) {
                if (!strict)
                        return false;
                char *got = strndup(F.rbuf, MIN(F.rlen, n + 200));
                assert_non_null(got);
                assert_string_equal(got, text);
                free(got);
        }
        memmove(F.rbuf, F.rbuf + n, F.rlen - n);
        F.rlen -= n;
        return true;
}

/* Write all of text, running the loop while the socket is full.
 * Returns false when the server has closed the connection. */
static bool client_send(const char *text, bool strict) {
        size_t n = strlen(text), done = 0;
        uint64_t deadline = now_msec() + 5000;

        while (done < n) {
                ssize_t k = send(F.client, text + done, n - done, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (k < 0) {
                        if (!strict && (errno == EPIPE || errno == ECONNRESET))
                                return false;
                        assert_true(errno == EAGAIN || errno == EINTR);
                        assert_true(now_msec() < deadline);
                        (void) sd_event_run(F.event, 5 * USEC_PER_MSEC);
                        client_read();
                        continue;
                }
                done += (size_t) k;
        }
        return true;
}

#define GREETING "220 mx.test LMTP deliveryd ready\r\n"
#define LHLO_REPLY_SIZE(n)                                                                                             \
        "250-mx.test\r\n250-PIPELINING\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250 SIZE " n "\r\n"
#define LHLO_REPLY LHLO_REPLY_SIZE("10485760")
#define LHLO SEND("LHLO client.test\r\n"), EXPECT(LHLO_REPLY)
#define OK_MAIL "250 2.1.0 Ok\r\n"
#define OK_RCPT "250 2.1.5 Ok\r\n"
#define GO_AHEAD "354 End data with <CR><LF>.<CR><LF>\r\n"
#define BYE "221 2.0.0 mx.test Bye\r\n"
#define DELIVERED(a) "250 2.0.0 <" a "> delivered\r\n"
#define SHUTTING_DOWN "421 4.3.2 Service shutting down\r\n"

/* Run steps against the fixture.  Returns false (lenient only) at the
 * first difference. */
static bool run_steps(const Step *steps, bool strict) {
        for (const Step *s = steps; s->kind != STEP_END; s++) {
                switch (s->kind) {
                case STEP_SEND:
                        if (!client_send(s->text, strict))
                                return false;
                        break;
                case STEP_EXPECT:
                        if (!expect(s->text, strict, 5000))
                                return false;
                        break;
                case STEP_SILENT:
                        pump(150, NULL, NULL);
                        if (F.rlen != 0 || F.reof) {
                                if (!strict)
                                        return false;
                                assert_int_equal(F.rlen, 0);
                                assert_false(F.reof);
                        }
                        break;
                case STEP_COMPLETE:
                        complete_pending();
                        break;
                case STEP_CLOSE:
                        close(F.client);
                        F.client = -EBADF;
                        pump(5000, no_connections, NULL);
                        assert_int_equal(lmtp_server_n_connections(F.server), 0);
                        break;
                case STEP_SHUTDOWN:
                        assert_int_equal(shutdown(F.client, SHUT_WR), 0);
                        break;
                case STEP_CLOSED:
                        pump(5000, have_eof, NULL);
                        if (!strict && (!F.reof || F.rlen != 0))
                                return false;
                        assert_int_equal(F.rlen, 0);
                        assert_true(F.reof);
                        pump(5000, no_connections, NULL);
                        assert_int_equal(lmtp_server_n_connections(F.server), 0);
                        break;
                case STEP_DRAIN:
                        lmtp_server_drain(F.server);
                        break;
                default:
                        fail();
                }
        }
        return true;
}

/* The greeting, then steps. */
static bool run_session(const Step *steps, bool strict) {
        return expect(GREETING, strict, 5000) && run_steps(steps, strict);
}

/* ---- the transcripts ------------------------------------------------- */

typedef struct Transcript {
        const char *name;
        LmtpOptions opts;
        bool later, refuse;
        Step steps[64];
        const char *delivered[4]; /* what deliver() received, in order */
        unsigned n_cancelled;
} Transcript;

#define ORDER "Subject: pedido\r\n\r\nquero 2 calabresa\r\n"
#define X10(x) x x x x x x x x x x
#define X300(x) X10(X10(x)) X10(X10(x)) X10(X10(x))
#define X1000 X10(X10(X10("x")))

static const Transcript transcripts[] = {
        { .name = "single recipient",
          .steps = { LHLO, SEND("MAIL FROM:<alice@example.org>\r\n"), EXPECT(OK_MAIL),
                     SEND("RCPT TO:<orders@deliveryd.test>\r\n"), EXPECT(OK_RCPT), SEND("DATA\r\n"), EXPECT(GO_AHEAD),
                     SEND(ORDER ".\r\n"), EXPECT(DELIVERED("orders@deliveryd.test")), SEND("QUIT\r\n"), EXPECT(BYE),
                     CLOSED },
          .delivered = { "<alice@example.org> <orders@deliveryd.test>\n" ORDER } },

        { .name = "two recipients, two replies in order",
          .steps = { LHLO, SEND("MAIL FROM:<alice@example.org>\r\n"), EXPECT(OK_MAIL),
                     SEND("RCPT TO:<orders@deliveryd.test>\r\n"), EXPECT(OK_RCPT),
                     SEND("RCPT TO:<Pizza.Store@deliveryd.test>\r\n"), EXPECT(OK_RCPT), SEND("DATA\r\n"),
                     EXPECT(GO_AHEAD), SEND(ORDER ".\r\n"),
                     EXPECT(DELIVERED("orders@deliveryd.test") DELIVERED("Pizza.Store@deliveryd.test")),
                     SEND("QUIT\r\n"), EXPECT(BYE), CLOSED },
          .delivered = { "<alice@example.org> <orders@deliveryd.test> <Pizza.Store@deliveryd.test>\n" ORDER } },

        { .name = "one unknown recipient among two",
          .steps = { LHLO, SEND("MAIL FROM:<alice@example.org>\r\n"), EXPECT(OK_MAIL),
                     SEND("RCPT TO:<nobody@example.org>\r\n"),
                     EXPECT("550 5.1.1 <nobody@example.org>: Recipient address rejected: User unknown\r\n"),
                     SEND("RCPT TO:<orders@deliveryd.test>\r\n"), EXPECT(OK_RCPT), SEND("DATA\r\n"), EXPECT(GO_AHEAD),
                     SEND(ORDER ".\r\n"), EXPECT(DELIVERED("orders@deliveryd.test")), SEND("QUIT\r\n"), EXPECT(BYE),
                     CLOSED },
          .delivered = { "<alice@example.org> <orders@deliveryd.test>\n" ORDER } },

        { .name = "dot-stuffing; a lone dot ends the message",
          .steps = { LHLO, SEND("MAIL FROM:<alice@example.org>\r\n"), EXPECT(OK_MAIL),
                     SEND("RCPT TO:<orders@deliveryd.test>\r\n"), EXPECT(OK_RCPT), SEND("DATA\r\n"), EXPECT(GO_AHEAD),
                     SEND("a\r\n..\r\n..b\r\n.c\r\n . \r\n\r\n.\r\nNOOP\r\n"),
                     EXPECT(DELIVERED("orders@deliveryd.test") "250 2.0.0 Ok\r\n"), SEND("QUIT\r\n"), EXPECT(BYE),
                     CLOSED },
          .delivered = { "<alice@example.org> <orders@deliveryd.test>\na\r\n.\r\n.b\r\nc\r\n . \r\n\r\n" } },

        { .name = "bare LF client gets CRLF replies, message in CRLF",
          .steps = { SEND("LHLO client.test\n"), EXPECT(LHLO_REPLY), SEND("MAIL FROM:<alice@example.org>\n"),
                     EXPECT(OK_MAIL), SEND("RCPT TO:<orders@deliveryd.test>\n"), EXPECT(OK_RCPT), SEND("DATA\n"),
                     EXPECT(GO_AHEAD), SEND("Subject: x\n\nline\r\n..dot\n.\n"),
                     EXPECT(DELIVERED("orders@deliveryd.test")), SEND("QUIT\n"), EXPECT(BYE), CLOSED },
          .delivered = { "<alice@example.org> <orders@deliveryd.test>\nSubject: x\r\n\r\nline\r\n.dot\r\n" } },

        { .name = "SIZE over the limit at MAIL FROM",
          .opts = { .max_message_size = 1000 },
          .steps = { SEND("LHLO client.test\r\n"), EXPECT(LHLO_REPLY_SIZE("1000")),
                     SEND("MAIL FROM:<alice@example.org> SIZE=1001\r\n"),
                     EXPECT("552 5.3.4 Message size exceeds fixed maximum message size\r\n"),
                     SEND("MAIL FROM:<alice@example.org> SIZE=1000 BODY=7BIT\r\n"), EXPECT(OK_MAIL), SEND("QUIT\r\n"),
                     EXPECT(BYE), CLOSED } },

        { .name = "body over the limit: 552 per recipient, not delivered",
          .opts = { .max_message_size = 100 },
          .steps = { SEND("LHLO client.test\r\n"), EXPECT(LHLO_REPLY_SIZE("100")),
                     SEND("MAIL FROM:<alice@example.org>\r\n"), EXPECT(OK_MAIL),
                     SEND("RCPT TO:<orders@deliveryd.test>\r\n"), EXPECT(OK_RCPT),
                     SEND("RCPT TO:<store@deliveryd.test>\r\n"), EXPECT(OK_RCPT), SEND("DATA\r\n"), EXPECT(GO_AHEAD),
                     SEND("0123456789012345678901234567890123456789\r\n"
                          "0123456789012345678901234567890123456789\r\n"
                          "0123456789012345678901234567890123456789\r\n.\r\n"),
                     EXPECT("552 5.3.4 Message size exceeds fixed maximum message size\r\n"
                            "552 5.3.4 Message size exceeds fixed maximum message size\r\n"),
                     /* the transaction is over; a new one starts clean */
                     SEND("MAIL FROM:<alice@example.org>\r\n"), EXPECT(OK_MAIL), SEND("QUIT\r\n"), EXPECT(BYE),
                     CLOSED } },

        { .name = "message exactly at the limit is delivered",
          .opts = { .max_message_size = 12 },
          .steps = { SEND("LHLO client.test\r\n"), EXPECT(LHLO_REPLY_SIZE("12")),
                     SEND("MAIL FROM:<alice@example.org>\r\n"), EXPECT(OK_MAIL),
                     SEND("RCPT TO:<orders@deliveryd.test>\r\n"), EXPECT(OK_RCPT), SEND("DATA\r\n"), EXPECT(GO_AHEAD),
                     SEND("0123\r\n..567\r\n.\r\n"), EXPECT(DELIVERED("orders@deliveryd.test")), SEND("QUIT\r\n"),
                     EXPECT(BYE), CLOSED },
          .delivered = { "<alice@example.org> <orders@deliveryd.test>\n0123\r\n.567\r\n" } },

        { .name = "too many recipients",
          .opts = { .max_recipients = 2 },
          .steps = { LHLO, SEND("MAIL FROM:<alice@example.org>\r\n"), EXPECT(OK_MAIL),
                     SEND("RCPT TO:<a@deliveryd.test>\r\n"), EXPECT(OK_RCPT), SEND("RCPT TO:<b@deliveryd.test>\r\n"),
                     EXPECT(OK_RCPT), SEND("RCPT TO:<c@deliveryd.test>\r\n"),
                     EXPECT("452 4.5.3 Error: too many recipients\r\n"), SEND("DATA\r\n"), EXPECT(GO_AHEAD),
                     SEND(ORDER ".\r\n"), EXPECT(DELIVERED("a@deliveryd.test") DELIVERED("b@deliveryd.test")),
                     SEND("QUIT\r\n"), EXPECT(BYE), CLOSED },
          .delivered = { "<alice@example.org> <a@deliveryd.test> <b@deliveryd.test>\n" ORDER } },

        { .name = "commands out of sequence",
          .steps = { SEND("MAIL FROM:<alice@example.org>\r\n"), EXPECT("503 5.5.1 Error: send LHLO first\r\n"),
                     SEND("DATA\r\n"), EXPECT("503 5.5.1 Error: need MAIL command\r\n"), LHLO,
                     SEND("RCPT TO:<orders@deliveryd.test>\r\n"), EXPECT("503 5.5.1 Error: need MAIL command\r\n"),
                     SEND("DATA\r\n"), EXPECT("503 5.5.1 Error: need MAIL command\r\n"),
                     SEND("MAIL FROM:<alice@example.org>\r\n"), EXPECT(OK_MAIL),
                     SEND("MAIL FROM:<alice@example.org>\r\n"), EXPECT("503 5.5.1 Error: nested MAIL command\r\n"),
                     SEND("DATA\r\n"), EXPECT("503 5.5.1 Error: need RCPT command\r\n"),
                     SEND("RCPT TO:<nobody@example.org>\r\n"),
                     EXPECT("550 5.1.1 <nobody@example.org>: Recipient address rejected: User unknown\r\n"),
                     SEND("DATA\r\n"), EXPECT("503 5.5.1 Error: need RCPT command\r\n"), SEND("RSET\r\n"),
                     EXPECT("250 2.0.0 Ok\r\n"), SEND("RCPT TO:<orders@deliveryd.test>\r\n"),
                     EXPECT("503 5.5.1 Error: need MAIL command\r\n"),
                     /* LHLO again ends the transaction too */
                     SEND("MAIL FROM:<alice@example.org>\r\n"), EXPECT(OK_MAIL), LHLO,
                     SEND("RCPT TO:<orders@deliveryd.test>\r\n"), EXPECT("503 5.5.1 Error: need MAIL command\r\n"),
                     SEND("QUIT\r\n"), EXPECT(BYE), CLOSED } },

        { .name = "EHLO and HELO are not LMTP",
          .steps = { SEND("EHLO client.test\r\n"), EXPECT("500 5.5.1 Error: this is LMTP, use LHLO\r\n"),
                     SEND("helo client.test\r\n"), EXPECT("500 5.5.1 Error: this is LMTP, use LHLO\r\n"),
                     SEND("MAIL FROM:<alice@example.org>\r\n"), EXPECT("503 5.5.1 Error: send LHLO first\r\n"),
                     SEND("lhlo client.test\r\n"), EXPECT(LHLO_REPLY), SEND("QUIT\r\n"), EXPECT(BYE), CLOSED } },

        { .name = "pipelined MAIL, RCPT, RCPT, DATA in one write",
          .steps = { LHLO,
                     SEND("MAIL FROM:<alice@example.org>\r\nRCPT TO:<orders@deliveryd.test>\r\n"
                          "RCPT TO:<nobody@example.org>\r\nDATA\r\n"),
                     EXPECT(OK_MAIL OK_RCPT
                            "550 5.1.1 <nobody@example.org>: Recipient address rejected: User unknown\r\n" GO_AHEAD),
                     SEND(ORDER ".\r\nMAIL FROM:<>\r\nRCPT TO:<store@deliveryd.test>\r\nDATA\r\nsecond\r\n.\r\n"
                                "QUIT\r\n"),
                     EXPECT(DELIVERED("orders@deliveryd.test")
                                    OK_MAIL OK_RCPT GO_AHEAD DELIVERED("store@deliveryd.test") BYE),
                     CLOSED },
          .delivered = { "<alice@example.org> <orders@deliveryd.test>\n" ORDER,
                         "<> <store@deliveryd.test>\nsecond\r\n" } },

        { .name = "delivery completed on a later iteration: replies only then, later commands wait",
          .later = true,
          .steps = { LHLO, SEND("MAIL FROM:<alice@example.org>\r\n"), EXPECT(OK_MAIL),
                     SEND("RCPT TO:<orders@deliveryd.test>\r\n"), EXPECT(OK_RCPT),
                     SEND("RCPT TO:<store@deliveryd.test>\r\n"), EXPECT(OK_RCPT), SEND("DATA\r\n"), EXPECT(GO_AHEAD),
                     SEND(ORDER ".\r\nNOOP\r\nRSET\r\n"), SILENT, COMPLETE,
                     EXPECT(DELIVERED("orders@deliveryd.test")
                                    DELIVERED("store@deliveryd.test") "250 2.0.0 Ok\r\n250 2.0.0 Ok\r\n"),
                     SEND("QUIT\r\n"), EXPECT(BYE), CLOSED },
          .delivered = { "<alice@example.org> <orders@deliveryd.test> <store@deliveryd.test>\n" ORDER } },

        { .name = "delivery failure results reach the client",
          .later = true,
          .steps = { LHLO, SEND("MAIL FROM:<alice@example.org>\r\n"), EXPECT(OK_MAIL),
                     SEND("RCPT TO:<tempfail@deliveryd.test>\r\n"), EXPECT(OK_RCPT),
                     SEND("RCPT TO:<orders@deliveryd.test>\r\n"), EXPECT(OK_RCPT),
                     SEND("RCPT TO:<reject@deliveryd.test>\r\n"), EXPECT(OK_RCPT), SEND("DATA\r\n"), EXPECT(GO_AHEAD),
                     SEND(ORDER ".\r\n"), SILENT, COMPLETE,
                     EXPECT("451 4.3.0 Try again later\r\n" DELIVERED(
                             "orders@deliveryd.test") "554 5.6.0 Message content rejected\r\n"),
                     SEND("QUIT\r\n"), EXPECT(BYE), CLOSED },
          .delivered = { "<alice@example.org> <tempfail@deliveryd.test> <orders@deliveryd.test> "
                         "<reject@deliveryd.test>\n" ORDER } },

        { .name = "deliver() refuses: 451 for each recipient",
          .refuse = true,
          .steps = { LHLO, SEND("MAIL FROM:<alice@example.org>\r\n"), EXPECT(OK_MAIL),
                     SEND("RCPT TO:<orders@deliveryd.test>\r\n"), EXPECT(OK_RCPT),
                     SEND("RCPT TO:<store@deliveryd.test>\r\n"), EXPECT(OK_RCPT), SEND("DATA\r\n"), EXPECT(GO_AHEAD),
                     SEND(ORDER ".\r\n"),
                     EXPECT("451 4.3.0 Temporary failure, try again later\r\n"
                            "451 4.3.0 Temporary failure, try again later\r\n"),
                     SEND("QUIT\r\n"), EXPECT(BYE), CLOSED },
          .delivered = { "<alice@example.org> <orders@deliveryd.test> <store@deliveryd.test>\n" ORDER } },

        { .name = "client disconnects while a delivery is pending",
          .later = true,
          .steps = { LHLO, SEND("MAIL FROM:<alice@example.org>\r\n"), EXPECT(OK_MAIL),
                     SEND("RCPT TO:<orders@deliveryd.test>\r\n"), EXPECT(OK_RCPT), SEND("DATA\r\n"), EXPECT(GO_AHEAD),
                     SEND(ORDER ".\r\nQUIT\r\n"), SILENT, CLOSE, COMPLETE },
          .delivered = { "<alice@example.org> <orders@deliveryd.test>\n" ORDER },
          .n_cancelled = 1 },

        { .name = "client half-closes after its last command",
          .steps = { SEND("LHLO client.test\r\nNOOP\r\n"), SHUTDOWN, EXPECT(LHLO_REPLY "250 2.0.0 Ok\r\n"), CLOSED } },

        { .name = "idle timeout",
          .opts = { .idle_timeout_usec = 200 * USEC_PER_MSEC },
          .steps = { LHLO, EXPECT("421 4.4.2 Idle timeout, closing connection\r\n"), CLOSED } },

        { .name = "idle timeout during DATA",
          .opts = { .idle_timeout_usec = 200 * USEC_PER_MSEC },
          .steps = { LHLO, SEND("MAIL FROM:<alice@example.org>\r\n"), EXPECT(OK_MAIL),
                     SEND("RCPT TO:<orders@deliveryd.test>\r\n"), EXPECT(OK_RCPT), SEND("DATA\r\n"), EXPECT(GO_AHEAD),
                     SEND("Subject: half a message\r\n"), EXPECT("421 4.4.2 Idle timeout, closing connection\r\n"),
                     CLOSED } },

        { .name = "idle timeout while a delivery is pending: nothing is sent",
          .opts = { .idle_timeout_usec = 200 * USEC_PER_MSEC },
          .later = true,
          .steps = { LHLO, SEND("MAIL FROM:<alice@example.org>\r\n"), EXPECT(OK_MAIL),
                     SEND("RCPT TO:<orders@deliveryd.test>\r\n"), EXPECT(OK_RCPT), SEND("DATA\r\n"), EXPECT(GO_AHEAD),
                     SEND(ORDER ".\r\n"), CLOSED, COMPLETE },
          .delivered = { "<alice@example.org> <orders@deliveryd.test>\n" ORDER },
          .n_cancelled = 1 },

        { .name = "draining: 421 on the next command",
          .steps = { LHLO, SEND("MAIL FROM:<alice@example.org>\r\n"), EXPECT(OK_MAIL), DRAIN,
                     SEND("RCPT TO:<orders@deliveryd.test>\r\nNOOP\r\n"), EXPECT(SHUTTING_DOWN), CLOSED } },

        { .name = "draining: QUIT still gets 221", .steps = { LHLO, DRAIN, SEND("QUIT\r\n"), EXPECT(BYE), CLOSED } },

        { .name = "draining: a message being transferred is delivered",
          .steps = { LHLO, SEND("MAIL FROM:<alice@example.org>\r\n"), EXPECT(OK_MAIL),
                     SEND("RCPT TO:<orders@deliveryd.test>\r\n"), EXPECT(OK_RCPT), SEND("DATA\r\n"), EXPECT(GO_AHEAD),
                     SEND("Subject: pedido\r\n"), DRAIN, SEND("\r\nquero 2 calabresa\r\n.\r\n"),
                     EXPECT(DELIVERED("orders@deliveryd.test")), SEND("MAIL FROM:<alice@example.org>\r\n"),
                     EXPECT(SHUTTING_DOWN), CLOSED },
          .delivered = { "<alice@example.org> <orders@deliveryd.test>\n" ORDER } },

        { .name = "draining: a pending delivery is answered first",
          .later = true,
          .steps = { LHLO, SEND("MAIL FROM:<alice@example.org>\r\n"), EXPECT(OK_MAIL),
                     SEND("RCPT TO:<orders@deliveryd.test>\r\n"), EXPECT(OK_RCPT), SEND("DATA\r\n"), EXPECT(GO_AHEAD),
                     SEND(ORDER ".\r\nMAIL FROM:<alice@example.org>\r\n"), DRAIN, SILENT, COMPLETE,
                     EXPECT(DELIVERED("orders@deliveryd.test") SHUTTING_DOWN), CLOSED },
          .delivered = { "<alice@example.org> <orders@deliveryd.test>\n" ORDER } },

        { .name = "unknown commands, syntax errors, parameters, and the small commands",
          .steps = { SEND("XYZZY\r\n"), EXPECT("500 5.5.1 Error: command not recognized\r\n"), SEND("\r\n"),
                     EXPECT("500 5.5.1 Error: command not recognized\r\n"), SEND("STARTTLS\r\n"),
                     EXPECT("500 5.5.1 Error: command not recognized\r\n"), SEND("LHLO\r\n"),
                     EXPECT("501 5.5.4 Error: syntax error in parameters or arguments\r\n"), LHLO,
                     SEND("MAIL FROM:alice@example.org\r\n"),
                     EXPECT("501 5.5.4 Error: syntax error in parameters or arguments\r\n"),
                     SEND("MAIL FROM:<alice@example.org> SIZE=big\r\n"),
                     EXPECT("501 5.5.4 Error: syntax error in parameters or arguments\r\n"),
                     SEND("MAIL FROM:<alice@example.org> RET=HDRS\r\n"),
                     EXPECT("555 5.5.4 Error: unsupported parameter\r\n"),
                     SEND("MAIL FROM: <alice@example.org> BODY=8BITMIME\r\n"), EXPECT(OK_MAIL),
                     SEND("RCPT TO:<orders@deliveryd.test> NOTIFY=NEVER\r\n"),
                     EXPECT("555 5.5.4 Error: unsupported parameter\r\n"),
                     SEND("RCPT TO:<lookupfail@deliveryd.test>\r\n"),
                     EXPECT("451 4.3.0 <lookupfail@deliveryd.test>: Temporary lookup failure, try again later\r\n"),
                     SEND("RCPT TO:<orders@deliveryd.test>\r\n"), EXPECT(OK_RCPT), SEND("DATA now\r\n"),
                     EXPECT("501 5.5.4 Error: syntax error in parameters or arguments\r\n"), SEND("NOOP anything\r\n"),
                     EXPECT("250 2.0.0 Ok\r\n"), SEND("VRFY orders\r\n"),
                     EXPECT("252 2.0.0 Cannot VRFY user, but will accept message and attempt delivery\r\n"),
                     SEND("HELP\r\n"), EXPECT("214 2.0.0 Commands: LHLO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP\r\n"),
                     /* still in the transaction after all that */
                     SEND("DATA\r\n"), EXPECT(GO_AHEAD), SEND("caf\xc3\xa9\r\n.\r\n"),
                     EXPECT(DELIVERED("orders@deliveryd.test")), SEND("QUIT\r\n"), EXPECT(BYE), CLOSED },
          .delivered = { "<alice@example.org> <orders@deliveryd.test> 8BITMIME\ncaf\xc3\xa9\r\n" } },

        { .name = "command line too long",
          .opts = { .max_command_length = 64 },
          .steps = { LHLO, SEND("NOOP 0123456789012345678901234567890123456789012345678901234567\r\n"),
                     EXPECT("500 5.5.2 Error: line too long\r\n"),
                     SEND("NOOP 012345678901234567890123456789012345678901234567890123456\r\nNOOP\r\n"),
                     EXPECT("250 2.0.0 Ok\r\n250 2.0.0 Ok\r\n"), SEND("QUIT\r\n"), EXPECT(BYE), CLOSED } },

        { .name = "message line too long: 554 per recipient, not delivered",
          .opts = { .max_line_length = 16 },
          .steps = { LHLO, SEND("MAIL FROM:<alice@example.org>\r\n"), EXPECT(OK_MAIL),
                     SEND("RCPT TO:<orders@deliveryd.test>\r\n"), EXPECT(OK_RCPT), SEND("DATA\r\n"), EXPECT(GO_AHEAD),
                     SEND("fourteen bytes\r\n0123456789abcdefghij\r\n.\r\n"),
                     EXPECT("554 5.6.0 Message line too long\r\n"), SEND("QUIT\r\n"), EXPECT(BYE), CLOSED } },

        { .name = "over-long lines are dropped as they arrive, longer than the input buffer",
          .opts = { .max_pending_input = 1024 },
          .steps = { LHLO, SEND("NOOP " X1000 X1000 X1000), SEND(X1000 "\r\nNOOP\r\n"),
                     EXPECT("500 5.5.2 Error: line too long\r\n250 2.0.0 Ok\r\n"),
                     SEND("MAIL FROM:<alice@example.org>\r\n"), EXPECT(OK_MAIL),
                     SEND("RCPT TO:<orders@deliveryd.test>\r\n"), EXPECT(OK_RCPT), SEND("DATA\r\n"), EXPECT(GO_AHEAD),
                     SEND("ok\r\n" X1000 X1000 X1000 X1000 X1000 "\r\n.\r\n"),
                     EXPECT("554 5.6.0 Message line too long\r\n"), SEND("QUIT\r\n"), EXPECT(BYE), CLOSED } },

        { .name = "commands pipelined behind a pending delivery: bounded buffer, answered in order",
          .opts = { .max_pending_input = 1024 },
          .later = true,
          .steps = { LHLO, SEND("MAIL FROM:<alice@example.org>\r\n"), EXPECT(OK_MAIL),
                     SEND("RCPT TO:<orders@deliveryd.test>\r\n"), EXPECT(OK_RCPT), SEND("DATA\r\n"), EXPECT(GO_AHEAD),
                     SEND(ORDER ".\r\n" X300("NOOP\r\n") "QUIT\r\n"), SILENT, COMPLETE,
                     EXPECT(DELIVERED("orders@deliveryd.test") X300("250 2.0.0 Ok\r\n") BYE), CLOSED },
          .delivered = { "<alice@example.org> <orders@deliveryd.test>\n" ORDER } },
};

static void run_transcript(const Transcript *t) {
        fixture_start(&t->opts, false, NULL);
        F.later = t->later;
        F.refuse = t->refuse;
        F.client = client_connect();
        assert_true(F.client >= 0);
        run_session(t->steps, true);

        unsigned n = 0;
        while (n < ELEMENTSOF(t->delivered) && t->delivered[n])
                n++;
        assert_int_equal(F.n_delivered, n);
        for (unsigned i = 0; i < n; i++)
                assert_string_equal(F.delivered[i], t->delivered[i]);
        assert_int_equal(F.n_cancelled, t->n_cancelled);
        fixture_stop();
}

static void test_transcripts(void **state _unused_) {
        for (size_t i = 0; i < ELEMENTSOF(transcripts); i++) {
                print_message("transcript: %s\n", transcripts[i].name);
                run_transcript(&transcripts[i]);
        }
}

/* The same session over TCP. */
static void test_tcp(void **state _unused_) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        unsigned port;

        fixture_start(NULL, true, &port);
        sa.sin_port = htons((uint16_t) port);
        F.client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(F.client >= 0);
        assert_int_equal(connect(F.client, (struct sockaddr *) &sa, sizeof sa), 0);
        assert_int_equal(fcntl(F.client, F_SETFL, O_NONBLOCK), 0);
        run_session(transcripts[0].steps, true);
        assert_int_equal(F.n_delivered, 1);
        assert_string_equal(F.delivered[0], transcripts[0].delivered[0]);
        fixture_stop();
}

static void test_max_connections(void **state _unused_) {
        LmtpOptions o = { .max_connections = 1 };
        int first, second;

        fixture_start(&o, false, NULL);
        F.client = client_connect();
        assert_true(expect(GREETING, true, 5000));
        first = F.client;

        /* The second one is turned away at once. */
        F.client = client_connect();
        assert_true(F.client >= 0);
        assert_true(expect("421 4.3.2 mx.test Too many connections, try again later\r\n", true, 5000));
        pump(5000, have_eof, NULL);
        assert_true(F.reof);
        assert_int_equal(F.rlen, 0);
        second = F.client;
        close(second);

        /* The first one is served on; once it is gone there is room. */
        static const Step steps[] = { SEND("NOOP\r\n"), EXPECT("250 2.0.0 Ok\r\n"), SEND("QUIT\r\n"), EXPECT(BYE),
                                      CLOSED,           { STEP_END, NULL } };
        F.client = first;
        F.reof = false;
        run_steps(steps, true);
        close(first);

        F.client = client_connect();
        F.reof = false;
        assert_true(expect(GREETING, true, 5000));
        fixture_stop();
}

static void test_stop_accepting(void **state _unused_) {
        static const Step steps[] = { SEND("NOOP\r\n"), EXPECT("250 2.0.0 Ok\r\n"), SEND("QUIT\r\n"), EXPECT(BYE),
                                      CLOSED,           { STEP_END, NULL } };

        fixture_start(NULL, false, NULL);
        F.client = client_connect();
        assert_true(expect(GREETING, true, 5000));
        assert_int_equal(lmtp_server_n_connections(F.server), 1);

        lmtp_server_stop_accepting(F.server);
        lmtp_server_stop_accepting(F.server);
        assert_int_equal(client_connect(), -ECONNREFUSED);
        assert_int_equal(lmtp_server_n_connections(F.server), 1);

        run_steps(steps, true);
        fixture_stop();
}

/* The server goes away with a delivery pending: the caller hears of it,
 * and answering the handle afterwards is safe. */
static void test_free_while_pending(void **state _unused_) {
        static const Step steps[] = { LHLO,
                                      SEND("MAIL FROM:<alice@example.org>\r\n"),
                                      EXPECT(OK_MAIL),
                                      SEND("RCPT TO:<orders@deliveryd.test>\r\n"),
                                      EXPECT(OK_RCPT),
                                      SEND("DATA\r\n"),
                                      EXPECT(GO_AHEAD),
                                      SEND(ORDER ".\r\n"),
                                      SILENT,
                                      { STEP_END, NULL } };

        fixture_start(NULL, false, NULL);
        F.later = true;
        F.client = client_connect();
        run_session(steps, true);
        assert_int_equal(F.n_pending, 1);
        assert_false(lmtp_delivery_is_cancelled(F.pending[0]));

        F.server = lmtp_server_free(F.server);
        assert_int_equal(F.n_cancelled, 1);
        assert_true(lmtp_delivery_is_cancelled(F.pending[0]));
        /* The envelope is still there for a caller that commits anyway. */
        assert_string_equal(F.pending_env[0]->recipients[0], "orders@deliveryd.test");
        complete_pending();
        pump(50, NULL, NULL);
        assert_true(F.reof);
        assert_int_equal(F.rlen, 0);
        fixture_stop();
}

/* A client that pipelines commands and does not read the replies: the
 * server stops answering once its output backs up, stops reading once its
 * input buffer is full, and so the client's writes block — rather than
 * the server buffering without end.  Once the client reads, every reply
 * arrives, in order. */
static void test_slow_reader(void **state _unused_) {
        static const char reply[] = "250 2.0.0 Ok\r\n";
        LmtpOptions o = { .max_pending_input = 4096 };
        char chunk[600];
        size_t sent = 0, lines, got_len = 0, got_alloc = 0;
        char *got = NULL;
        unsigned stuck = 0;

        for (size_t i = 0; i < sizeof chunk; i += 6)
                memcpy(chunk + i, "NOOP\r\n", 6);
        fixture_start(&o, false, NULL);
        F.client = client_connect();
        assert_true(expect(GREETING, true, 5000));

        while (stuck < 40 && sent < 16 * 1024 * 1024) {
                size_t off = sent % sizeof chunk;
                ssize_t k = send(F.client, chunk + off, sizeof chunk - off, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (k > 0) {
                        sent += (size_t) k;
                        stuck = 0;
                        continue;
                }
                assert_true(k < 0 && errno == EAGAIN);
                stuck++;
                assert_true(sd_event_run(F.event, 5 * USEC_PER_MSEC) >= 0);
        }
        assert_int_equal(stuck, 40);
        assert_int_equal(lmtp_server_n_connections(F.server), 1);

        /* Finish the last line, say QUIT, and read it all. */
        char rest[16];
        size_t pad = (6 - sent % 6) % 6, rest_len = pad + 6, rest_done = 0;
        uint64_t deadline = now_msec() + 30000;
        bool eof = false;

        memcpy(rest, chunk + sent % sizeof chunk, pad);
        memcpy(rest + pad, "QUIT\r\n", 6);
        lines = (sent + pad) / 6;
        while (!eof) {
                assert_true(now_msec() < deadline);
                if (rest_done < rest_len) {
                        ssize_t k = send(F.client, rest + rest_done, rest_len - rest_done, MSG_NOSIGNAL | MSG_DONTWAIT);
                        if (k > 0)
                                rest_done += (size_t) k;
                }
                assert_true(sd_event_run(F.event, USEC_PER_MSEC) >= 0);
                for (;;) {
                        if (got_alloc - got_len < 65536) {
                                got_alloc = got_alloc * 2 + 65536;
                                got = realloc(got, got_alloc);
                                assert_non_null(got);
                        }
                        ssize_t k = recv(F.client, got + got_len, got_alloc - got_len, MSG_DONTWAIT);
                        if (k > 0) {
                                got_len += (size_t) k;
                                continue;
                        }
                        if (k == 0)
                                eof = true;
                        break;
                }
        }
        print_message("%zu commands pipelined before the client blocked\n", lines);
        assert_true(lines > 1000);
        assert_int_equal(got_len, lines * strlen(reply) + strlen(BYE));
        for (size_t i = 0; i < lines; i++)
                assert_memory_equal(got + i * strlen(reply), reply, strlen(reply));
        assert_memory_equal(got + lines * strlen(reply), BYE, strlen(BYE));
        free(got);
        fixture_stop();
}

static void test_bad_options(void **state _unused_) {
        sd_event *e = NULL;
        LmtpServer *s = NULL;
        int fds[2];

        assert_int_equal(sd_event_new(&e), 0);
        const LmtpCallbacks none = {};
        const LmtpOptions tiny_buffer = { .hostname = "mx.test", .max_pending_input = 100 };
        const LmtpOptions bad_host = { .hostname = "mx test" };

        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
        close(fds[1]);
        assert_int_equal(lmtp_server_new(e, fds[0], NULL, &none, NULL, &s), -EINVAL);
        assert_int_equal(fcntl(fds[0], F_GETFD), -1); /* taken over, closed */

        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
        close(fds[1]);
        assert_int_equal(lmtp_server_new(e, fds[0], &tiny_buffer, &callbacks, NULL, &s), -EINVAL);

        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
        close(fds[1]);
        assert_int_equal(lmtp_server_new(e, fds[0], &bad_host, &callbacks, NULL, &s), -EINVAL);
        assert_null(s);
        sd_event_unref(e);
}

/* ---- the parser ------------------------------------------------------ */

static void test_parse(void **state _unused_) {
        static const struct {
                const char *line;
                int r;
                LmtpVerb verb;
                const char *arg;
                int64_t size; /* -1: none */
                bool eight;
        } cases[] = {
                { "LHLO client.test", 0, LMTP_LHLO, "client.test", -1, false },
                { "lhlo [127.0.0.1]", 0, LMTP_LHLO, "[127.0.0.1]", -1, false },
                { "LHLO client.test   ", 0, LMTP_LHLO, "client.test", -1, false },
                { "LHLO", -EINVAL, 0, NULL, -1, false },
                { "LHLO a b", -EINVAL, 0, NULL, -1, false },
                { "EHLO client.test", 0, LMTP_EHLO, NULL, -1, false },
                { "HELO", 0, LMTP_HELO, NULL, -1, false },
                { "MAIL FROM:<alice@example.org>", 0, LMTP_MAIL, "alice@example.org", -1, false },
                { "mail from:<alice@example.org>", 0, LMTP_MAIL, "alice@example.org", -1, false },
                { "MAIL FROM: <alice@example.org>", 0, LMTP_MAIL, "alice@example.org", -1, false },
                { "MAIL FROM:<>", 0, LMTP_MAIL, "", -1, false },
                { "MAIL FROM:<> SIZE=0", 0, LMTP_MAIL, "", 0, false },
                { "MAIL FROM:<a@b.c> SIZE=18446744073709551615", 0, LMTP_MAIL, "a@b.c", -2, false },
                { "MAIL FROM:<a@b.c> SIZE=18446744073709551616", -EINVAL, 0, NULL, -1, false },
                { "MAIL FROM:<a@b.c> SIZE=1000 BODY=8BITMIME", 0, LMTP_MAIL, "a@b.c", 1000, true },
                { "MAIL FROM:<a@b.c>  body=8bitmime  size=7", 0, LMTP_MAIL, "a@b.c", 7, true },
                { "MAIL FROM:<a@b.c> BODY=7BIT", 0, LMTP_MAIL, "a@b.c", -1, false },
                { "MAIL FROM:<a@b.c> BODY=BINARYMIME", -EINVAL, 0, NULL, -1, false },
                { "MAIL FROM:<a@b.c> SIZE=1 SIZE=2", -EINVAL, 0, NULL, -1, false },
                { "MAIL FROM:<a@b.c> SIZE", -EINVAL, 0, NULL, -1, false },
                { "MAIL FROM:<a@b.c> SIZE=", -EINVAL, 0, NULL, -1, false },
                { "MAIL FROM:<a@b.c> SIZE=-1", -EINVAL, 0, NULL, -1, false },
                { "MAIL FROM:<a@b.c> SMTPUTF8", -EOPNOTSUPP, 0, NULL, -1, false },
                { "MAIL FROM:<a@b.c> AUTH=<>", -EOPNOTSUPP, 0, NULL, -1, false },
                { "MAIL FROM:<a@b.c>SIZE=1", -EINVAL, 0, NULL, -1, false },
                { "MAIL FROM:<a@b.c> =1", -EINVAL, 0, NULL, -1, false },
                { "MAIL FROM:<@relay.example,@b.example:a@b.c>", 0, LMTP_MAIL, "a@b.c", -1, false },
                { "MAIL FROM:<\"john doe\"@example.org>", 0, LMTP_MAIL, "\"john doe\"@example.org", -1, false },
                { "MAIL FROM:<\"a\\\"b\"@example.org>", 0, LMTP_MAIL, "\"a\\\"b\"@example.org", -1, false },
                { "MAIL FROM:<\"unterminated@example.org>", -EINVAL, 0, NULL, -1, false },
                { "MAIL FROM:<o'brien+pizza@example.org>", 0, LMTP_MAIL, "o'brien+pizza@example.org", -1, false },
                { "MAIL FROM:<a@[192.0.2.1]>", 0, LMTP_MAIL, "a@[192.0.2.1]", -1, false },
                { "MAIL FROM:<a@[]>", -EINVAL, 0, NULL, -1, false },
                { "MAIL FROM:<alice>", -EINVAL, 0, NULL, -1, false },
                { "MAIL FROM:<postmaster>", -EINVAL, 0, NULL, -1, false },
                { "MAIL FROM:<a b@example.org>", -EINVAL, 0, NULL, -1, false },
                { "MAIL FROM:<a@exa mple.org>", -EINVAL, 0, NULL, -1, false },
                { "MAIL FROM:<a@>", -EINVAL, 0, NULL, -1, false },
                { "MAIL FROM:<@example.org>", -EINVAL, 0, NULL, -1, false },
                { "MAIL FROM:<caf\xc3\xa9@example.org>", -EINVAL, 0, NULL, -1, false },
                { "MAIL FROM:<a@b.c", -EINVAL, 0, NULL, -1, false },
                { "MAIL FROM:a@b.c", -EINVAL, 0, NULL, -1, false },
                { "MAIL FROM:", -EINVAL, 0, NULL, -1, false },
                { "MAIL TO:<a@b.c>", -EINVAL, 0, NULL, -1, false },
                { "MAIL", -EINVAL, 0, NULL, -1, false },
                { "MAIL FROM:<a@b.c> x", -EOPNOTSUPP, 0, NULL, -1, false },
                { "RCPT TO:<orders@deliveryd.test>", 0, LMTP_RCPT, "orders@deliveryd.test", -1, false },
                { "RCPT TO:<Postmaster>", 0, LMTP_RCPT, "Postmaster", -1, false },
                { "RCPT TO:<postmasters>", -EINVAL, 0, NULL, -1, false },
                { "RCPT TO:<>", -EINVAL, 0, NULL, -1, false },
                { "RCPT TO:<a@b.c> SIZE=10", -EOPNOTSUPP, 0, NULL, -1, false },
                { "RCPT TO:<a@b.c> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;a@b.c", -EOPNOTSUPP, 0, NULL, -1, false },
                { "RCPT FROM:<a@b.c>", -EINVAL, 0, NULL, -1, false },
                { "DATA", 0, LMTP_DATA, NULL, -1, false },
                { "data  ", 0, LMTP_DATA, NULL, -1, false },
                { "DATA x", -EINVAL, 0, NULL, -1, false },
                { "RSET", 0, LMTP_RSET, NULL, -1, false },
                { "QUIT now", -EINVAL, 0, NULL, -1, false },
                { "NOOP", 0, LMTP_NOOP, NULL, -1, false },
                { "NOOP whatever you like", 0, LMTP_NOOP, NULL, -1, false },
                { "VRFY orders", 0, LMTP_VRFY, NULL, -1, false },
                { "VRFY", -EINVAL, 0, NULL, -1, false },
                { "HELP", 0, LMTP_HELP, NULL, -1, false },
                { "HELP MAIL", 0, LMTP_HELP, NULL, -1, false },
                { "", -EBADMSG, 0, NULL, -1, false },
                { " NOOP", -EBADMSG, 0, NULL, -1, false },
                { "NOOPS", -EBADMSG, 0, NULL, -1, false },
                { "NOO", -EBADMSG, 0, NULL, -1, false },
                { "BDAT 100 LAST", -EBADMSG, 0, NULL, -1, false },
                { "EXPN staff", -EBADMSG, 0, NULL, -1, false },
                { "MAIL\tFROM:<a@b.c>", -EBADMSG, 0, NULL, -1, false },
                { "NOOP \r", -EINVAL, 0, NULL, -1, false },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                LmtpCommand c = { .verb = _LMTP_VERB_INVALID };
                int r = lmtp_parse_command(cases[i].line, strlen(cases[i].line), &c);

                print_message("parse: %s\n", cases[i].line);
                assert_int_equal(r, cases[i].r);
                if (r < 0) {
                        assert_int_equal(c.verb, _LMTP_VERB_INVALID); /* untouched */
                        continue;
                }
                assert_int_equal(c.verb, cases[i].verb);
                if (cases[i].arg)
                        assert_string_equal(c.arg, cases[i].arg);
                else
                        assert_null(c.arg);
                if (cases[i].size == -1)
                        assert_false(c.has_size);
                else {
                        assert_true(c.has_size);
                        assert_true(c.size == (cases[i].size == -2 ? UINT64_MAX : (uint64_t) cases[i].size));
                }
                assert_int_equal(c.body_8bitmime, cases[i].eight);
                lmtp_command_done(&c);
                assert_null(c.arg);
        }

        /* Not NUL-terminated, and a NUL inside. */
        LmtpCommand c;
        assert_int_equal(lmtp_parse_command("RSETX", 4, &c), 0);
        assert_int_equal(c.verb, LMTP_RSET);
        assert_int_equal(lmtp_parse_command("NOOP \0x", 7, &c), -EINVAL);
        assert_int_equal(lmtp_parse_command("RCPT TO:<a@b.c>>>", 15, &c), 0);
        assert_string_equal(c.arg, "a@b.c");
        lmtp_command_done(&c);

        /* Addresses over 254 bytes are refused. */
        char line[400];
        int n = snprintf(line, sizeof line, "RCPT TO:<%0*d@b.c>", 250, 0);
        assert_int_equal(lmtp_parse_command(line, (size_t) n, &c), 0);
        lmtp_command_done(&c);
        n = snprintf(line, sizeof line, "RCPT TO:<%0*d@b.c>", 251, 0);
        assert_int_equal(lmtp_parse_command(line, (size_t) n, &c), -EINVAL);

        assert_string_equal(lmtp_verb_to_string(LMTP_LHLO), "LHLO");
        assert_string_equal(lmtp_verb_to_string(LMTP_HELO), "HELO");
        assert_null(lmtp_verb_to_string(_LMTP_VERB_MAX));
        assert_null(lmtp_verb_to_string(_LMTP_VERB_INVALID));
}

static void test_parse_oom(void **state _unused_) {
        static const char *const lines[] = {
                "LHLO client.test",
                "MAIL FROM:<alice@example.org> SIZE=100 BODY=8BITMIME",
                "RCPT TO:<orders@deliveryd.test>",
                "MAIL FROM:<>",
                "NOOP",
        };

        for (size_t i = 0; i < ELEMENTSOF(lines); i++) {
                unsigned long n;
                for (n = 1;; n++) {
                        LmtpCommand c = { .verb = _LMTP_VERB_INVALID };
                        alloc_fail_after(n);
                        int r = lmtp_parse_command(lines[i], strlen(lines[i]), &c);
                        alloc_fail_after(0);
                        if (r != -ENOMEM) {
                                assert_int_equal(r, 0);
                                lmtp_command_done(&c);
                                break;
                        }
                        assert_int_equal(c.verb, _LMTP_VERB_INVALID);
                        assert_null(c.arg);
                }
                /* The commands with an argument allocate exactly once. */
                assert_int_equal(n, streq(lines[i], "NOOP") ? 1 : 2);
        }
}

/* A whole session with the Nth allocation failing, for every N until the
 * session passes: the client sees a prefix of the transcript, then
 * possibly "421 4.3.0", then the end of the connection — never a reply
 * that was not earned, never a crash or a leak. */
static void test_session_oom(void **state _unused_) {
        const Transcript *t = &transcripts[1]; /* two recipients */
        unsigned long n;

        for (n = 1;; n++) {
                char got[4096];
                size_t got_len;
                bool passed;

                fixture_start(NULL, false, NULL);
                F.client = client_connect();
                alloc_fail_after(n);
                passed = run_session(t->steps, false);
                /* Whatever came, until the end. */
                pump(5000, have_eof, NULL);
                alloc_fail_after(0);
                assert_true(F.reof || passed);
                got_len = F.rlen;
                memcpy(got, F.rbuf, got_len);
                got[got_len] = '\0';

                if (passed) {
                        assert_int_equal(F.n_delivered, 1);
                        fixture_stop();
                        break;
                }
                /* The bytes run_steps() consumed matched; the rest must be
                 * "421 4.3.0 ..." or nothing. */
                assert_true(got_len == 0 || streq(got, "421 4.3.0 Out of memory, closing connection\r\n"));
                /* Not even the connection could be had: still said. */
                if (n == 1)
                        assert_string_equal(got, "421 4.3.0 Out of memory, closing connection\r\n");
                assert_true(F.n_delivered <= 1);
                fixture_stop();
        }
        print_message("session passed with allocation %lu failing and none after\n", n);
        assert_true(n > 5);
}

int main(void) {
        alloc_init();
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse),
                cmocka_unit_test(test_parse_oom),
                cmocka_unit_test(test_transcripts),
                cmocka_unit_test(test_tcp),
                cmocka_unit_test(test_max_connections),
                cmocka_unit_test(test_stop_accepting),
                cmocka_unit_test(test_free_while_pending),
                cmocka_unit_test(test_slow_reader),
                cmocka_unit_test(test_bad_options),
                cmocka_unit_test(test_session_oom),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
