/* SPDX-License-Identifier: MIT */
/*
 * mail-parser.c — the daemon's side of the mail parser process: starting
 * it, feeding it requests in order from the loop, deadlines, deaths and
 * restarts, and its stderr into the log.  The process's own side is
 * mail-parser-process.c.
 *
 * Why a new program image (this same binary, executed again) and not a
 * fork of the daemon kept from the start: the daemon has threads (libcurl's
 * resolver, the SMTP sender), after which a forked child may only make
 * async-signal-safe calls; exec gives the parser a fresh address space
 * without a byte of the daemon's memory (the store's pages, AWS keys, the
 * API token, the SMTP password) and with its own address layout; and it
 * can be started again at any time, from the loop, after a death.  It is
 * started with posix_spawn(), which runs no fork handlers and copies no
 * page tables.
 *
 * Security: see mail-parser.h.
 */
#include "mail-parser.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "log.h"
#include "mail-wire.h"
#include "strutil.h"

/* The process's socket; its stdin and stdout are /dev/null, its stderr a
 * pipe to us. */
#define MAIL_PARSER_FD 3
/* After a process that died before answering anything, the next one
 * waits this long, doubled for every further such death, up to the max. */
#define RESTART_DELAY_FIRST_USEC (100 * USEC_PER_MSEC)
#define RESTART_DELAY_MAX_USEC (10 * USEC_PER_SEC)
/* A process that is dying is looked at after this long, then twice as
 * long each time, up to the max, until it is gone and reaped. */
#define REAP_WAIT_FIRST_USEC (5 * USEC_PER_MSEC)
#define REAP_WAIT_MAX_USEC (1 * USEC_PER_SEC)
/* A stopping process that has nothing to do gets this long to exit by
 * itself (and run its leak checks, in test builds) before SIGKILL. */
#define STOP_GRACE_USEC (1 * USEC_PER_SEC)
/* Its stderr reaches the log a line at a time, each cut at this length,
 * and at most so many lines a process: a crash report fits, a flood not. */
#define STDERR_LINE_MAX 512
#define STDERR_LINES_MAX 200

/* The environment of the process: how this program runs (the loader's
 * variables, sanitizers, libfiu's failure points in tests) and nothing of
 * what it serves — no AWS keys, no NOTIFY_SOCKET, no LISTEN_FDS. */
static const char *const environment_kept[] = {
        "LD_PRELOAD",    "LD_LIBRARY_PATH", "TZ",         "ASAN_OPTIONS",
        "UBSAN_OPTIONS", "LSAN_OPTIONS",    "FIU_ENABLE", "FIU_CTRL_FIFO",
};

typedef enum ParserState {
        PARSER_STOPPED, /* no process (maybe waiting out the restart delay) */
        PARSER_RUNNING, /* a process, and its socket open */
        PARSER_DYING, /* its socket closed, the process killed or exiting: not reaped yet */
} ParserState;

struct MailParserRequest {
        MailParser *parser;
        MailParserRequest *next, *prev;
        char *frame; /* freed once sent */
        size_t frame_len;
        uint64_t timeout_usec;
        MailParserDone done; /* NULL: cancelled while the process has it */
        void *userdata;
};

struct MailParser {
        sd_event *event;
        char *executable;
        uint64_t memory_limit;
        char **environment;
        bool freeing;

        ParserState state;
        pid_t pid;
        int fd;
        sd_event_source *io, *reap, *deadline, *restart, *kick;
        uint64_t reap_wait; /* until the next look at whether it is gone */
        int err_fd;
        sd_event_source *err_io;
        pid_t err_pid;
        char err_line[STDERR_LINE_MAX];
        size_t err_len;
        unsigned err_lines;

        bool answered; /* the running process has answered a request */
        bool killed; /* we killed it, and said why */
        bool lost_request; /* it died with a request */
        unsigned failures; /* processes in a row that died before answering */
        uint64_t not_before; /* CLOCK_MONOTONIC: no start before this */

        MailParserRequest *head, *tail; /* in order; the process has head when current */
        MailParserRequest *current;
        size_t sent;
        uint8_t len_buf[MAIL_WIRE_LENGTH_SIZE];
        size_t len_have;
        char *answer;
        size_t answer_len, answer_have;
        unsigned n_queued;

        uint64_t n_started, n_died, n_timed_out, n_parsed;
};

#if defined(__SANITIZE_ADDRESS__)
#define ADDRESS_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ADDRESS_SANITIZER 1
#endif
#endif

static uint64_t now_usec(MailParser *p) {
        uint64_t now = 0;

        (void) sd_event_now(p->event, CLOCK_MONOTONIC, &now);
        return now;
}

bool mail_parser_error_is_temporary(int r) {
        return r == -ENOMEM || r == -ETIMEDOUT || r == -ECONNRESET || r == -ECANCELED;
}

/* ---- requests ------------------------------------------------------------ */

static void request_unlink(MailParserRequest *req) {
        MailParser *p = req->parser;

        if (req->prev)
                req->prev->next = req->next;
        else
                p->head = req->next;
        if (req->next)
                req->next->prev = req->prev;
        else
                p->tail = req->prev;
        req->next = req->prev = NULL;
        p->n_queued--;
        if (p->current == req)
                p->current = NULL;
}

/* Take req out, free it, then tell its owner (m taken over). */
static void request_finish(MailParserRequest *req, int r, MailContent *m) {
        MailParserDone done = req->done;
        void *userdata = req->userdata;

        request_unlink(req);
        free(req->frame);
        free(req);
        if (done)
                done(userdata, r, m);
        else
                mail_content_free(m);
}

int mail_parser_submit(MailParser *p, const void *raw, size_t len, const MailParseOptions *opts, uint64_t timeout_usec,
                       MailParserDone done, void *userdata, MailParserRequest **ret) {
        _cleanup_free_ MailParserRequest *req = NULL;
        int r;

        if (!p || !opts || !done || (!raw && len > 0))
                return -EINVAL;
        if (p->freeing)
                return -ECANCELED;
        req = mem_new(MailParserRequest, 1);
        if (!req)
                return -ENOMEM;
        r = mail_wire_request_encode(opts, raw, len, &req->frame, &req->frame_len);
        if (r < 0)
                return r;
        req->parser = p;
        req->timeout_usec = timeout_usec;
        req->done = done;
        req->userdata = userdata;
        req->prev = p->tail;
        if (p->tail)
                p->tail->next = req;
        else
                p->head = req;
        p->tail = req;
        p->n_queued++;
        /* From the loop: done() must never run inside this call. */
        (void) sd_event_source_set_enabled(p->kick, SD_EVENT_ONESHOT);
        if (ret)
                *ret = req;
        TAKE_PTR(req);
        return 0;
}

void mail_parser_cancel(MailParserRequest *req) {
        if (!req)
                return;
        if (req->parser->current == req) {
                /* The process has it: its answer is read and dropped, to keep
                 * the stream in step. */
                req->done = NULL;
                return;
        }
        request_unlink(req);
        free(req->frame);
        free(req);
}

/* ---- the process's stderr ----------------------------------------------- */

static void err_flush_line(MailParser *p) {
        if (p->err_len == 0)
                return;
        if (p->err_lines < STDERR_LINES_MAX)
                log_warning("mail parser[%d]: %.*s", (int) p->err_pid, (int) p->err_len, p->err_line);
        else if (p->err_lines == STDERR_LINES_MAX)
                log_warning("mail parser[%d]: (more output dropped)", (int) p->err_pid);
        p->err_lines++;
        p->err_len = 0;
}

/* Read what is there; at EOF (or with final set, once the process is gone)
 * close the pipe.  Each line goes to the log, made printable ASCII. */
static void err_read(MailParser *p, bool final) {
        char buf[4096];

        while (p->err_fd >= 0) {
                ssize_t n = read(p->err_fd, buf, sizeof buf);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN && !final)
                        return;
                if (n <= 0) {
                        err_flush_line(p);
                        p->err_io = sd_event_source_disable_unref(p->err_io);
                        close(p->err_fd);
                        p->err_fd = -EBADF;
                        return;
                }
                for (ssize_t i = 0; i < n; i++) {
                        unsigned char c = (unsigned char) buf[i];
                        if (c == '\n') {
                                err_flush_line(p);
                                continue;
                        }
                        if (p->err_len < sizeof p->err_line)
                                p->err_line[p->err_len++] = c >= ' ' && c < 0x7F ? (char) c : '?';
                }
        }
}

static int on_err_io(sd_event_source *s _unused_, int fd _unused_, uint32_t revents _unused_, void *userdata) {
        err_read(userdata, false);
        return 0;
}

/* ---- the process --------------------------------------------------------- */

static void parser_pump(MailParser *p);

static uint64_t restart_delay(unsigned failures) {
        if (failures == 0)
                return 0;
        if (failures > 20)
                return RESTART_DELAY_MAX_USEC;
        return MIN(RESTART_DELAY_FIRST_USEC << (failures - 1), RESTART_DELAY_MAX_USEC);
}

static void parser_reap_later(MailParser *p) {
        (void) sd_event_source_set_time(p->reap, now_usec(p) + p->reap_wait);
        (void) sd_event_source_set_enabled(p->reap, SD_EVENT_ONESHOT);
        p->reap_wait = MIN(p->reap_wait * 2, REAP_WAIT_MAX_USEC);
}

/* The running process is no good any more (its socket closed, which is
 * how its death shows, or it broke the protocol, or ran out of time): the
 * request it has fails with r, the socket closes, and the process is
 * killed; its death is handled once it is reaped (parser_reap()). */
static void parser_lose(MailParser *p, int r) {
        if (p->state != PARSER_RUNNING)
                return;
        p->state = PARSER_DYING;
        p->io = sd_event_source_disable_unref(p->io);
        if (p->fd >= 0)
                close(p->fd);
        p->fd = -EBADF;
        (void) sd_event_source_set_enabled(p->deadline, SD_EVENT_OFF);
        p->answer = mfree(p->answer);
        p->len_have = p->answer_have = 0;
        /* Not reaped yet, so the pid is still this process's. */
        (void) kill(p->pid, SIGKILL);
        p->reap_wait = REAP_WAIT_FIRST_USEC;
        parser_reap_later(p);
        if (p->current) {
                p->lost_request = true;
                request_finish(p->current, r, NULL);
        }
}

/* Reap the dying process if it is gone; else look again later.  (Not
 * SIGCHLD, which a thread that does not block it — libfiu's, in the
 * tests — takes and drops, nor sd-event's child source, whose
 * pidfd_open() valgrind does not know.) */
static void parser_reap(MailParser *p) {
        siginfo_t si = {};
        pid_t pid = p->pid;
        char how[64];
        uint64_t delay;

        if (p->state != PARSER_DYING)
                return;
        if (waitid(P_PID, (id_t) pid, &si, WEXITED | WNOHANG) < 0) {
                if (errno != ECHILD)
                        return parser_reap_later(p);
                snprintf(how, sizeof how, "is gone");
        } else if (si.si_pid != pid)
                return parser_reap_later(p);
        else if (si.si_code == CLD_EXITED)
                snprintf(how, sizeof how, "exited with status %d", si.si_status);
        else
                snprintf(how, sizeof how, "died of signal %s%s", strsignal(si.si_status),
                         si.si_code == CLD_DUMPED ? " (core dumped)" : "");
        p->pid = 0;
        p->state = PARSER_STOPPED;
        p->n_died++;
        p->failures = p->answered ? 0 : p->failures + 1;
        delay = restart_delay(p->failures);
        p->not_before = now_usec(p) + delay;
        if (!p->killed)
                log_warning("Mail parser process %d %s%s; the next one starts %s.", (int) pid, how,
                            p->lost_request ? " while parsing a message, which is answered \"try again later\"" : "",
                            delay > 0 ? "after a pause, since it died before parsing anything" : "when needed");
        else
                log_debug("Mail parser process %d %s.", (int) pid, how);
        parser_pump(p);
}

static int on_reap(sd_event_source *s _unused_, uint64_t usec _unused_, void *userdata) {
        parser_reap(userdata);
        return 0;
}

static int on_deadline(sd_event_source *s _unused_, uint64_t usec _unused_, void *userdata) {
        MailParser *p = userdata;

        log_warning("Mail parser process %d took longer than mail.parser_timeout over one message; stopping it. The "
                    "message is answered \"try again later\".",
                    (int) p->pid);
        p->killed = true;
        p->n_timed_out++;
        parser_lose(p, -ETIMEDOUT);
        return 0;
}

/* One answer is complete in p->answer. */
static void parser_answered(MailParser *p) {
        _cleanup_free_ char *body = TAKE_PTR(p->answer);
        MailContent *m = NULL;
        int r;

        r = mail_wire_answer_decode(body, p->answer_len, &m);
        p->len_have = p->answer_have = 0;
        if (r == -EPROTO) {
                log_warning("Mail parser process %d sent a malformed answer; stopping it.", (int) p->pid);
                p->killed = true;
                return parser_lose(p, -ECONNRESET);
        }
        (void) sd_event_source_set_enabled(p->deadline, SD_EVENT_OFF);
        p->answered = true;
        p->failures = 0;
        p->n_parsed++;
        request_finish(p->current, r, m);
        parser_pump(p);
}

static void parser_read(MailParser *p) {
        for (;;) {
                bool in_len = p->len_have < MAIL_WIRE_LENGTH_SIZE;
                void *into = in_len ? (void *) (p->len_buf + p->len_have) : (void *) (p->answer + p->answer_have);
                size_t want = in_len ? MAIL_WIRE_LENGTH_SIZE - p->len_have : p->answer_len - p->answer_have;
                ssize_t n = want > 0 ? recv(p->fd, into, want, MSG_DONTWAIT) : 0;

                if (want > 0 && n < 0 && (errno == EAGAIN || errno == EINTR))
                        return;
                if (want > 0 && n <= 0)
                        /* closed, or broken: it is dying */
                        return parser_lose(p, -ECONNRESET);
                if (want > 0 && (!p->current || p->sent < p->current->frame_len)) {
                        /* an answer to nothing, or before the whole question */
                        log_warning("Mail parser process %d spoke out of turn; stopping it.", (int) p->pid);
                        p->killed = true;
                        return parser_lose(p, -ECONNRESET);
                }
                if (in_len) {
                        p->len_have += (size_t) n;
                        if (p->len_have < MAIL_WIRE_LENGTH_SIZE)
                                continue;
                        p->answer_len = mail_wire_length_get(p->len_buf);
                        if (p->answer_len > MAIL_WIRE_ANSWER_MAX) {
                                log_warning("Mail parser process %d sent an answer of %zu bytes; stopping it.",
                                            (int) p->pid, p->answer_len);
                                p->killed = true;
                                return parser_lose(p, -ECONNRESET);
                        }
                        p->answer = mem_malloc(p->answer_len ?: 1);
                        if (!p->answer) {
                                /* The stream cannot be resynchronised: start afresh. */
                                p->killed = true;
                                return parser_lose(p, -ENOMEM);
                        }
                        p->answer_have = 0;
                } else
                        p->answer_have += (size_t) n;
                if (p->answer_have == p->answer_len) {
                        parser_answered(p);
                        return; /* the next request, if any, is on its way */
                }
        }
}

static void parser_write(MailParser *p) {
        MailParserRequest *req = p->current;

        while (req && req->frame && p->sent < req->frame_len) {
                ssize_t n = send(p->fd, req->frame + p->sent, req->frame_len - p->sent, MSG_DONTWAIT | MSG_NOSIGNAL);
                if (n < 0 && (errno == EAGAIN || errno == EINTR))
                        return;
                if (n < 0)
                        return parser_lose(p, -ECONNRESET);
                p->sent += (size_t) n;
        }
        if (req && req->frame) {
                /* All sent: a large mail need not be held twice. */
                req->frame = mfree(req->frame);
                (void) sd_event_source_set_io_events(p->io, EPOLLIN);
        }
}

static int on_io(sd_event_source *s _unused_, int fd _unused_, uint32_t revents, void *userdata) {
        MailParser *p = userdata;

        if (revents & EPOLLOUT)
                parser_write(p);
        if (p->state == PARSER_RUNNING && (revents & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                parser_read(p);
        return 0;
}

/* Start the process: fork-and-exec as posix_spawn() does it, which runs
 * no fork handlers and copies no page tables, with its descriptors laid
 * out (/dev/null, /dev/null, the stderr pipe, the socket) and every other
 * one closed — the listeners, the store, the journal, whatever a library
 * opened — its signal mask empty and SIGPIPE back to its default. */
static int spawn_process(MailParser *p, int sock, int err, pid_t *ret) {
        posix_spawn_file_actions_t fa;
        posix_spawnattr_t attr;
        sigset_t none, dfl;
        char limit[64];
        char *argv[] = { (char *) "deliveryd", (char *) MAIL_PARSER_OPTION, limit, NULL };
        int r;

#if ADDRESS_SANITIZER
        snprintf(limit, sizeof limit, "--memory-limit=0");
#else
        snprintf(limit, sizeof limit, "--memory-limit=%llu", (unsigned long long) p->memory_limit);
#endif
        sigemptyset(&none);
        sigemptyset(&dfl);
        sigaddset(&dfl, SIGPIPE);
        r = posix_spawn_file_actions_init(&fa);
        if (r != 0)
                return -r;
        r = posix_spawnattr_init(&attr);
        if (r != 0) {
                posix_spawn_file_actions_destroy(&fa);
                return -r;
        }
        /* sock and err are above the low numbers, so that no dup2 below
         * overwrites the other. */
        if ((r = posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDWR, 0)) == 0 &&
            (r = posix_spawn_file_actions_adddup2(&fa, STDIN_FILENO, STDOUT_FILENO)) == 0 &&
            (r = posix_spawn_file_actions_adddup2(&fa, err, STDERR_FILENO)) == 0 &&
            (r = posix_spawn_file_actions_adddup2(&fa, sock, MAIL_PARSER_FD)) == 0 &&
            (r = posix_spawn_file_actions_addclosefrom_np(&fa, MAIL_PARSER_FD + 1)) == 0 &&
            (r = posix_spawnattr_setsigmask(&attr, &none)) == 0 &&
            (r = posix_spawnattr_setsigdefault(&attr, &dfl)) == 0 &&
            (r = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF)) == 0)
                r = posix_spawn(ret, p->executable, &fa, &attr, argv, p->environment);
        posix_spawnattr_destroy(&attr);
        posix_spawn_file_actions_destroy(&fa);
        return -r;
}

static int parser_spawn(MailParser *p) {
        _cleanup_close_ int err_r = -EBADF, err_w = -EBADF, sock = -EBADF, ours = -EBADF;
        int sv[2], ep[2];
        pid_t pid;
        int r;

        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
                return -errno;
        ours = sv[0];
        sock = fcntl(sv[1], F_DUPFD_CLOEXEC, MAIL_PARSER_FD + 1);
        close(sv[1]);
        if (sock < 0 || pipe2(ep, O_CLOEXEC) < 0)
                return -errno;
        err_r = ep[0];
        err_w = fcntl(ep[1], F_DUPFD_CLOEXEC, MAIL_PARSER_FD + 1);
        close(ep[1]);
        if (err_w < 0 || fcntl(ours, F_SETFL, O_NONBLOCK) < 0 || fcntl(err_r, F_SETFL, O_NONBLOCK) < 0)
                return -errno;
        r = spawn_process(p, sock, err_w, &pid);
        if (r < 0)
                return r;

        p->pid = pid;
        p->fd = TAKE_FD(ours);
        p->state = PARSER_RUNNING;
        p->answered = p->killed = p->lost_request = false;
        p->sent = p->len_have = p->answer_have = 0;
        p->n_started++;
        /* Whatever a previous process wrote is all in its pipe by now. */
        err_read(p, true);
        p->err_fd = TAKE_FD(err_r);
        p->err_pid = pid;
        p->err_lines = 0;
        p->err_len = 0;
        r = sd_event_add_io(p->event, &p->err_io, p->err_fd, EPOLLIN, on_err_io, p);
        if (r >= 0)
                r = sd_event_add_io(p->event, &p->io, p->fd, EPOLLIN, on_io, p);
        if (r < 0) {
                p->killed = true;
                parser_lose(p, -ECONNRESET);
                return r;
        }
        log_debug("Mail parser process %d started.", (int) pid);
        return 0;
}

static int on_restart(sd_event_source *s _unused_, uint64_t usec _unused_, void *userdata) {
        parser_pump(userdata);
        return 0;
}

/* Move on: start a process if there is work and none runs (once the pause
 * after a death is over), hand it the next request if it is free. */
static void parser_pump(MailParser *p) {
        int r;

        if (!p->head || p->freeing)
                return;
        if (p->state == PARSER_STOPPED) {
                uint64_t now = now_usec(p);

                if (now < p->not_before) {
                        (void) sd_event_source_set_time(p->restart, p->not_before);
                        (void) sd_event_source_set_enabled(p->restart, SD_EVENT_ONESHOT);
                        return;
                }
                r = parser_spawn(p);
                if (r < 0) {
                        /* Cannot even start one: the first request fails, the
                         * others wait for the next try. */
                        log_warning_errno(r, "Cannot start the mail parser process: %m");
                        p->failures++;
                        p->not_before = now + MAX(restart_delay(p->failures), RESTART_DELAY_FIRST_USEC);
                        request_finish(p->head, -ECONNRESET, NULL);
                        return parser_pump(p);
                }
        }
        if (p->state != PARSER_RUNNING || p->current)
                return;
        p->current = p->head;
        p->sent = 0;
        (void) sd_event_source_set_time(p->deadline, now_usec(p) + p->current->timeout_usec);
        (void) sd_event_source_set_enabled(p->deadline, SD_EVENT_ONESHOT);
        (void) sd_event_source_set_io_events(p->io, EPOLLIN | EPOLLOUT);
}

static int on_kick(sd_event_source *s _unused_, void *userdata) {
        parser_pump(userdata);
        return 0;
}

/* ---- life cycle --------------------------------------------------------- */

static char **environment_make(void) {
        _cleanup_strv_free_ char **env = mem_new(char *, 1);

        if (!env)
                return NULL;
        for (size_t i = 0; i < ELEMENTSOF(environment_kept); i++) {
                const char *v = getenv(environment_kept[i]);
                _cleanup_free_ char *s = NULL;

                if (!v)
                        continue;
                s = mem_printf("%s=%s", environment_kept[i], v);
                if (!s || strv_extend(&env, s) < 0)
                        return NULL;
        }
        return TAKE_PTR(env);
}

int mail_parser_new(sd_event *e, const MailParserOptions *o, MailParser **ret) {
        _cleanup_(mail_parser_freep) MailParser *p = NULL;
        char path[4096];
        int r;

        p = mem_new(MailParser, 1);
        if (!p)
                return -ENOMEM;
        p->fd = p->err_fd = -EBADF;
        p->event = sd_event_ref(e);
        p->memory_limit = o ? o->memory_limit : 0;
        if (o && o->executable)
                p->executable = mem_strdup(o->executable);
        else {
                /* The same build as the daemon, so that both speak the same
                 * protocol; resolved now, while the path is current. */
                ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
                if (n < 0)
                        return -errno;
                path[n] = '\0';
                p->executable = mem_strdup(path);
        }
        p->environment = environment_make();
        if (!p->executable || !p->environment)
                return -ENOMEM;
        r = sd_event_add_time(e, &p->reap, CLOCK_MONOTONIC, 0, USEC_PER_MSEC, on_reap, p);
        if (r >= 0)
                r = sd_event_source_set_enabled(p->reap, SD_EVENT_OFF);
        if (r >= 0)
                r = sd_event_add_time(e, &p->deadline, CLOCK_MONOTONIC, 0, 10 * USEC_PER_MSEC, on_deadline, p);
        if (r >= 0)
                r = sd_event_source_set_enabled(p->deadline, SD_EVENT_OFF);
        if (r >= 0)
                r = sd_event_add_time(e, &p->restart, CLOCK_MONOTONIC, 0, 10 * USEC_PER_MSEC, on_restart, p);
        if (r >= 0)
                r = sd_event_source_set_enabled(p->restart, SD_EVENT_OFF);
        if (r >= 0)
                r = sd_event_add_defer(e, &p->kick, on_kick, p);
        if (r >= 0)
                r = sd_event_source_set_enabled(p->kick, SD_EVENT_OFF);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(p);
        return 0;
}

int mail_parser_start(MailParser *p) {
        if (p->state != PARSER_STOPPED)
                return 0;
        return parser_spawn(p);
}

unsigned mail_parser_n_pending(MailParser *p) {
        return p ? p->n_queued : 0;
}

json_t *mail_parser_status_json(MailParser *p) {
        const char *state;
        uint64_t now = now_usec(p);

        if (p->state == PARSER_RUNNING)
                state = p->current ? "parsing" : "idle";
        else if (p->state == PARSER_DYING)
                state = "stopping";
        else
                state = now < p->not_before ? "waiting" : "stopped";
        return json_pack("{s:o,s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "pid",
                         p->pid > 0 ? json_integer(p->pid) : json_null(), "state", state, "queued",
                         (json_int_t) p->n_queued, "started", (json_int_t) p->n_started, "died", (json_int_t) p->n_died,
                         "timed_out", (json_int_t) p->n_timed_out, "parsed", (json_int_t) p->n_parsed,
                         "failures_in_a_row", (json_int_t) p->failures, "restart_delay_ms",
                         (json_int_t) (restart_delay(p->failures) / USEC_PER_MSEC));
}

/* Stop the process for good: an idle one is let go (it exits when its
 * socket closes), a busy or stubborn one killed; reaped here, at once. */
static void parser_stop(MailParser *p, bool idle) {
        pid_t pid = p->pid;
        int status;

        p->io = sd_event_source_disable_unref(p->io);
        if (p->fd >= 0)
                close(p->fd);
        p->fd = -EBADF;
        p->reap = sd_event_source_disable_unref(p->reap);
        if (pid > 0) {
                pid_t k = 0;
                for (uint64_t waited = 0; idle && waited < STOP_GRACE_USEC; waited += 10 * USEC_PER_MSEC) {
                        k = waitpid(pid, &status, WNOHANG);
                        if (k != 0)
                                break;
                        (void) nanosleep(&(struct timespec){ .tv_nsec = 10 * 1000 * 1000 }, NULL);
                }
                if (k == 0) {
                        (void) kill(pid, SIGKILL);
                        (void) waitpid(pid, &status, 0);
                }
        }
        p->pid = 0;
        p->state = PARSER_STOPPED;
        err_read(p, true);
}

MailParser *mail_parser_free(MailParser *p) {
        if (!p)
                return NULL;
        bool idle = p->state == PARSER_RUNNING && !p->current;

        p->freeing = true;
        while (p->head)
                request_finish(p->head, -ECANCELED, NULL);
        parser_stop(p, idle);
        sd_event_source_disable_unref(p->deadline);
        sd_event_source_disable_unref(p->restart);
        sd_event_source_disable_unref(p->kick);
        free(p->answer);
        free(p->executable);
        strv_free(p->environment);
        sd_event_unref(p->event);
        free(p);
        return NULL;
}
