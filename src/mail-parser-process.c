/* SPDX-License-Identifier: MIT */
/*
 * mail-parser-process.c — the mail parser process ("deliveryd
 * --mail-parser", started by mail-parser.c): read a request on fd 3,
 * mail_parse() it, write the answer, and again, until the socket closes.
 * Blocking and single-threaded: it does one thing at a time, and the
 * daemon's deadline stops it if that thing takes too long.
 *
 * Security: this process holds untrusted mail while GMime parses it; it
 * is started with nothing else to lose (see mail-parser.c), limits its own
 * address space here, and trusts nothing but the daemon's requests.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "alloc.h"
#include "fault.h"
#include "mail-parser.h"
#include "mail-wire.h"
#include "strutil.h"

#define MAIL_PARSER_FD 3
#define MEMORY_LIMIT_PREFIX "--memory-limit="

/* Read exactly n bytes.  0; 1 when the stream ended before the first
 * byte and at_start allows that; -EPIPE when it ended inside; -errno. */
static int read_full(int fd, void *buf, size_t n, bool at_start) {
        size_t done = 0;

        while (done < n) {
                ssize_t k = read(fd, (char *) buf + done, n - done);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return -errno;
                if (k == 0)
                        return done == 0 && at_start ? 1 : -EPIPE;
                done += (size_t) k;
        }
        return 0;
}

/* Read and drop n bytes: a request we have no memory for, to stay in step. */
static int skip(int fd, size_t n) {
        char buf[4096];
        int r;

        while (n > 0) {
                size_t k = MIN(n, sizeof buf);
                r = read_full(fd, buf, k, false);
                if (r != 0)
                        return r < 0 ? r : -EPIPE;
                n -= k;
        }
        return 0;
}

static int write_full(int fd, const void *buf, size_t n) {
        size_t done = 0;

        while (done < n) {
                ssize_t k = send(fd, (const char *) buf + done, n - done, MSG_NOSIGNAL);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return -errno;
                done += (size_t) k;
        }
        return 0;
}

/* Answer r (and m when r == 0).  An answer that cannot be said as it is
 * becomes the error closest to it. */
static int answer(int fd, int r, const MailContent *m) {
        _cleanup_free_ char *frame = NULL;
        size_t len = 0;
        int k;

        k = mail_wire_answer_encode(r, m, &frame, &len);
        if (k == -EFBIG) /* more than the protocol carries: too much of something */
                k = mail_wire_answer_encode(-E2BIG, NULL, &frame, &len);
        else if (k == -EINVAL)
                k = mail_wire_answer_encode(-EINVAL, NULL, &frame, &len);
        else if (k == -ENOMEM)
                k = mail_wire_answer_encode(-ENOMEM, NULL, &frame, &len);
        if (k < 0)
                return k;
        return write_full(fd, frame, len);
}

/* One request and its answer.  0; 1 at the end of the stream; -errno when
 * the stream cannot go on. */
static int serve_one(int fd) {
        _cleanup_(mail_wire_request_done) MailWireRequest req = {};
        _cleanup_(mail_content_freep) MailContent *m = NULL;
        _cleanup_free_ char *body = NULL;
        uint8_t prefix[MAIL_WIRE_LENGTH_SIZE];
        size_t n;
        int r;

        r = read_full(fd, prefix, sizeof prefix, true);
        if (r != 0)
                return r;
        n = mail_wire_length_get(prefix);
        if (n > MAIL_WIRE_REQUEST_MAX)
                return -EBADMSG; /* not the daemon speaking */
        body = mem_malloc(n ?: 1);
        if (!body) {
                r = skip(fd, n);
                return r < 0 ? r : answer(fd, -ENOMEM, NULL);
        }
        r = read_full(fd, body, n, false);
        if (r != 0)
                return r < 0 ? r : -EPIPE;
        r = mail_wire_request_decode(body, n, &req);
        if (r == -EBADMSG)
                return r;
        if (r >= 0) {
                FAULT_HANG("deliveryd/mail-parser/hang");
                r = mail_parse(req.raw, req.raw_len, &req.options, &m);
        }
        return answer(fd, r, m);
}

/* What ps shows: the whole argument area, overwritten (its length cannot
 * grow), so that the parser is told apart from the daemon at a glance. */
static void set_title(int argc, char *argv[], const char *title) {
        char *start = argv[0], *end = argv[0] + strlen(argv[0]);

        for (int i = 1; i < argc; i++)
                if (argv[i] == end + 1)
                        end = argv[i] + strlen(argv[i]);
        memset(start, 0, (size_t) (end - start));
        memcpy(start, title, MIN(strlen(title), (size_t) (end - start)));
}

/* Lower RLIMIT_AS to limit: a parse that needs more than that fails in
 * here (GLib aborts) instead of eating the machine. */
static void limit_memory(uint64_t limit) {
        struct rlimit rl;

        if (limit == 0 || getrlimit(RLIMIT_AS, &rl) < 0)
                return;
        rl.rlim_cur = rl.rlim_max = MIN((rlim_t) limit, rl.rlim_max);
        if (setrlimit(RLIMIT_AS, &rl) < 0)
                fprintf(stderr, "cannot limit its address space to %llu bytes (mail.parser_memory_limit): %s\n",
                        (unsigned long long) limit, strerror(errno));
}

int mail_parser_process_main(int argc, char *argv[]) {
        uint64_t limit = 0;
        int r;

        for (int i = 2; i < argc; i++)
                if (strncmp(argv[i], MEMORY_LIMIT_PREFIX, strlen(MEMORY_LIMIT_PREFIX)) != 0 ||
                    parse_uint64(argv[i] + strlen(MEMORY_LIMIT_PREFIX), &limit) < 0) {
                        fprintf(stderr, "%s: unexpected argument '%s'\n", MAIL_PARSER_OPTION, argv[i]);
                        return 2;
                }
        /* Nothing this process runs may gain privileges (set-uid programs,
         * file capabilities), and it dies with the daemon, even by SIGKILL;
         * were the daemon gone already, the socket's end of file ends it. */
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || prctl(PR_SET_PDEATHSIG, SIGKILL) < 0) {
                fprintf(stderr, "cannot drop privileges: %s\n", strerror(errno));
                return 1;
        }
        (void) prctl(PR_SET_NAME, "mail-parser");
        set_title(argc, argv, "deliveryd: mail parser");
        limit_memory(limit);

        alloc_init();
        fault_init();
        FAULT_EXIT("deliveryd/mail-parser/start", 70);
        mail_init();

        do
                r = serve_one(MAIL_PARSER_FD);
        while (r == 0);
        if (r < 0 && r != -EPIPE && r != -ECONNRESET)
                fprintf(stderr, "stopping: %s\n", strerror(-r));
        mail_shutdown();
        return r < 0 ? 1 : 0;
}
