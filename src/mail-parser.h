/* SPDX-License-Identifier: MIT */
/*
 * mail-parser.h — received mail is parsed (mail_parse(), GMime) in a
 * process of its own, never in the daemon: the parser process is this
 * same program run again as "deliveryd --mail-parser", with nothing of
 * the daemon's but one socket.  GLib aborts the whole process when an
 * allocation fails, and the MIME a sender crafts is the most complex
 * input we read; either way it is the parser process that dies, never the
 * process that holds the store and the listeners.
 *
 * The daemon side (MailParser) queues requests and hands them to the
 * process one at a time, in order, from the sd-event loop (an io source
 * on the socket, whose end of file is how a death shows, and timers for
 * the deadline and for reaping).  A request fails with a temporary error — and only that
 * request — when the process dies or its deadline passes while the
 * process has it; the process is then killed if need be and started
 * again for the requests still queued, after a pause that doubles while
 * processes keep dying before answering anything (so a process that dies
 * at start does not make the daemon spin).  See doc/internals/mail.md.
 *
 * The parser process side (mail_parser_process_main()) reads a request,
 * parses, answers, and again, until its socket closes.
 *
 * Security: the parser process holds untrusted mail and is treated as
 * untrusted in turn: its answers are bounded and checked (mail-wire.h),
 * and its stderr reaches the log only as bounded, sanitised lines.  It
 * starts with every file descriptor closed but its socket (and stderr, a
 * pipe to the daemon), a minimal environment, PR_SET_NO_NEW_PRIVS, an
 * address space limit (RLIMIT_AS), and a title of its own.
 */
#pragma once

#include <jansson.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "macro.h"
#include "mail.h"

/* The hidden option that makes the program the parser process. */
#define MAIL_PARSER_OPTION "--mail-parser"

typedef struct MailParser MailParser;
typedef struct MailParserRequest MailParserRequest;

typedef struct MailParserOptions {
        /* The program to run with MAIL_PARSER_OPTION; NULL: this one
         * (/proc/self/exe, read once by mail_parser_new()). */
        const char *executable;
        /* The parser process's RLIMIT_AS in bytes; 0: none.  Not applied in
         * sanitizer builds, whose shadow memory needs terabytes of address
         * space. */
        uint64_t memory_limit;
} MailParserOptions;

/* A request's outcome: r == 0 and m (the callee owns it), or r < 0:
 * mail_parse()'s own errors (-EFBIG, -E2BIG, -EBADMSG, -EINVAL), which are
 * about the message and final; or a temporary one (see
 * mail_parser_error_is_temporary()): -ENOMEM, -ETIMEDOUT (its deadline
 * passed), -ECONNRESET (the process died, or broke the protocol, while it
 * had the request), -ECANCELED (mail_parser_free()).  Called from the loop,
 * never from inside mail_parser_submit() or mail_parser_cancel(). */
typedef void (*MailParserDone)(void *userdata, int r, MailContent *m);

/* A parser on loop e; no process is started yet.  Returns 0, -ENOMEM, or
 * -errno when this program cannot be found. */
int mail_parser_new(sd_event *e, const MailParserOptions *o, MailParser **ret);

/* Start the parser process now rather than at the first request, so that
 * the first mail does not wait for it.  Returns 0 or -errno. */
int mail_parser_start(MailParser *p);

/* Parse the len bytes at raw with opts (both copied: the caller may free
 * them at once), allowing the process timeout_usec once it has the
 * request.  done(userdata, ...) is called exactly once, later, unless the
 * request is cancelled first.  Returns 0 and, if ret is not NULL, the
 * request in *ret (valid until done() is called or it is cancelled);
 * -EFBIG when the request is larger than the protocol allows; -ENOMEM. */
int mail_parser_submit(MailParser *p, const void *raw, size_t len, const MailParseOptions *opts, uint64_t timeout_usec,
                       MailParserDone done, void *userdata, MailParserRequest **ret);

/* Forget req: done() is not called.  If the process has it already, the
 * answer is read and dropped.  Accepts NULL. */
void mail_parser_cancel(MailParserRequest *req);

/* Whether a request's error is worth trying again later (4xx, 5xx for
 * SNS) rather than final. */
bool mail_parser_error_is_temporary(int r);

/* Requests queued or being parsed. */
unsigned mail_parser_n_pending(MailParser *p);

/* {"pid": N or null, "state": "idle"|"parsing"|"starting"|"stopped",
 * "queued": N, "started": N, "died": N, "timed_out": N, "parsed": N,
 * "failures_in_a_row": N, "restart_delay_ms": N} for `deliveryctl stats`.
 * NULL when out of memory. */
json_t *mail_parser_status_json(MailParser *p);

/* Fail every request left with -ECANCELED (their callbacks run now: free
 * the parser before what they use), stop the process, free.  Accepts
 * NULL; returns NULL. */
MailParser *mail_parser_free(MailParser *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(MailParser *, mail_parser_free);

/* main() of the parser process: argv[1] is MAIL_PARSER_OPTION, the socket
 * is fd 3.  Serves requests until the socket closes; returns the exit
 * status. */
int mail_parser_process_main(int argc, char *argv[]);
