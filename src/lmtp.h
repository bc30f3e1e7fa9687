/* SPDX-License-Identifier: MIT */
/*
 * lmtp.h — the LMTP server (RFC 2033 over RFC 5321 command syntax) by
 * which the local MTA (Postfix "lmtp:unix:" transport) hands mail to
 * deliveryd, driven by the daemon's sd-event loop.
 *
 * The module speaks the protocol and nothing else: whether a recipient is
 * ours and where a message goes are the caller's callbacks.  A message is
 * never acknowledged before the caller says it is committed: after the
 * final "." the server calls deliver() with a handle and sends the
 * per-recipient replies (one per accepted RCPT, in order) only when the
 * caller hands the results to lmtp_delivery_done(), on that loop iteration
 * or any later one.  Until then the connection reads no further command, so
 * pipelined replies stay in order.
 *
 * A handle outlives its connection: when the client goes away (closes, or
 * shuts down its sending side) or the idle timeout passes while a delivery
 * is pending, nothing is sent, the connection is closed, the cancelled()
 * callback tells the caller, and the caller's lmtp_delivery_done() on that
 * handle is still required and becomes a no-op that only frees it.  The
 * handle is reference counted, so neither order of events uses freed
 * memory, and it does not point at the server: handles may even outlive
 * lmtp_server_free().
 *
 * The server never logs and never calls back into the caller from inside
 * lmtp_delivery_done().
 *
 * Security: everything read from a connection is untrusted, even on a
 * local socket.  Command lines, message lines, the message, the number of
 * recipients, the unprocessed input held per connection, the number of
 * connections and the idle time are all bounded (LmtpOptions); addresses
 * are validated (printable ASCII, RFC 5321 path syntax) before the caller
 * sees them.  Reply text from the caller is sanitised to one printable
 * line.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "macro.h"

typedef struct LmtpServer LmtpServer;
typedef struct LmtpDelivery LmtpDelivery;

/* Limits.  A field left 0 takes the default named beside it.  Line
 * lengths count the line end as two bytes (CRLF), as RFC 5321 does; the
 * message size is that of the message as deliver() gets it.
 * max_pending_input must hold the longer of the two lines, and a command
 * line at least 64 bytes (else lmtp_server_new() says -EINVAL). */
typedef struct LmtpOptions {
        const char *hostname; /* greeting, LHLO and 221; NULL: gethostname() */
        uint64_t max_message_size; /* LMTP_DEFAULT_MAX_MESSAGE_SIZE; advertised as SIZE */
        size_t max_line_length; /* message lines, LMTP_DEFAULT_MAX_LINE_LENGTH */
        size_t max_command_length; /* command lines, LMTP_DEFAULT_MAX_COMMAND_LENGTH */
        unsigned max_recipients; /* per transaction, LMTP_DEFAULT_MAX_RECIPIENTS */
        unsigned max_connections; /* LMTP_DEFAULT_MAX_CONNECTIONS */
        uint64_t idle_timeout_usec; /* since the last complete line, also while a delivery is pending;
                                       LMTP_DEFAULT_IDLE_TIMEOUT_USEC */
        size_t max_pending_input; /* read but unprocessed bytes per connection, LMTP_DEFAULT_MAX_PENDING_INPUT */
} LmtpOptions;

#define LMTP_DEFAULT_MAX_MESSAGE_SIZE ((uint64_t) 10 * 1024 * 1024)
#define LMTP_DEFAULT_MAX_LINE_LENGTH ((size_t) 1024) /* RFC 5321: 1000, and a little slack */
#define LMTP_DEFAULT_MAX_COMMAND_LENGTH ((size_t) 512) /* RFC 5321 4.5.3.1.4 */
#define LMTP_DEFAULT_MAX_RECIPIENTS 100U /* RFC 5321 4.5.3.1.8: at least 100 */
#define LMTP_DEFAULT_MAX_CONNECTIONS 32U
#define LMTP_DEFAULT_IDLE_TIMEOUT_USEC (300 * USEC_PER_SEC) /* RFC 5321 4.5.3.2.7 */
#define LMTP_DEFAULT_MAX_PENDING_INPUT ((size_t) 64 * 1024)

/* What a message came with.  Owned by the delivery handle: valid until
 * lmtp_delivery_done(). */
typedef struct LmtpEnvelope {
        const char *lhlo; /* the client's LHLO argument */
        const char *sender; /* reverse path without <>, "" for the null sender */
        const char *const *recipients; /* forward paths without <>, as accepted, in order */
        size_t n_recipients;
        bool body_8bitmime; /* MAIL ... BODY=8BITMIME */
} LmtpEnvelope;

/* One recipient's outcome: code 250 (committed), 4xx (try again later:
 * 451 4.3.0, 452 4.3.1) or 5xx (bounce: 554 5.6.0).  enhanced ("2.0.0")
 * and text may be NULL; both are checked and sanitised before they are
 * sent, an invalid code becomes 451 4.3.0. */
typedef struct LmtpResult {
        unsigned code;
        const char *enhanced;
        const char *text;
} LmtpResult;

typedef struct LmtpCallbacks {
        /* Is address (without <>, validated) one of ours?  Return > 0 to
         * accept (250 2.1.5), 0 for 550 5.1.1, < 0 for 451 4.3.0.
         * Required. */
        int (*check_recipient)(void *userdata, const char *address);

        /* A complete message arrived for the recipients in env; data is the
         * message with dots unstuffed and every line ending in CRLF
         * whatever the client sent.  env and data belong to d and stay
         * valid until lmtp_delivery_done(d, ...).  Return 0 to take the
         * delivery on: the caller must then call lmtp_delivery_done(d, ...)
         * exactly once, now or on a later loop iteration.  Return < 0 to
         * refuse it: every recipient gets 451 4.3.0 and d must not be used.
         * Required. */
        int (*deliver)(void *userdata, LmtpDelivery *d, const LmtpEnvelope *env, const char *data, size_t size);

        /* The connection of d closed (client gone, idle timeout, server
         * freed) before lmtp_delivery_done(): no reply can be sent any more.
         * d stays valid; the caller still calls lmtp_delivery_done(d, ...)
         * (which then only frees it) and may skip the commit.  Optional. */
        void (*cancelled)(void *userdata, LmtpDelivery *d);

        /* A message was refused by the protocol layer itself, before any
         * delivery: too_big (552 at MAIL FROM SIZE= or after DATA) or else a
         * line too long (554).  For counting.  Optional. */
        void (*refused)(void *userdata, bool too_big);
} LmtpCallbacks;

/* Serve LMTP on listen_fd, a listening stream socket (Unix or TCP; see
 * listen.h), from loop e.  listen_fd is taken over, also on failure.
 * opts may be NULL (all defaults); cb is copied; userdata goes to every
 * callback.  Returns 0 and the server in *ret, -EINVAL for a bad option
 * or a missing callback, or another -errno. */
int lmtp_server_new(sd_event *e, int listen_fd, const LmtpOptions *opts, const LmtpCallbacks *cb, void *userdata,
                    LmtpServer **ret);

/* Close the listening socket; sessions already open go on.  Idempotent. */
void lmtp_server_stop_accepting(LmtpServer *s);

/* Enter draining mode for good: from now on every command but QUIT gets
 * "421 4.3.2 Service shutting down" and its connection is closed.  A
 * message being transferred (after 354) is received and delivered, and a
 * pending delivery is answered, before that.  Connections idle between
 * commands are not closed here: they end with their next command, their
 * QUIT or their idle timeout.  Does not close the listener (see
 * lmtp_server_stop_accepting()). */
void lmtp_server_drain(LmtpServer *s);

/* Open connections, including those waiting for a delivery. */
unsigned lmtp_server_n_connections(LmtpServer *s);

/* Close every connection (pending deliveries are cancelled, see
 * LmtpCallbacks.cancelled) and the listener.  Must not be called from
 * inside a callback.  Accepts NULL; returns NULL. */
LmtpServer *lmtp_server_free(LmtpServer *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(LmtpServer *, lmtp_server_free);

/* The caller's answer for d: results[i] is the outcome for recipient i of
 * the envelope; recipients past n_results get 451 4.3.0.  The replies are
 * sent (and the connection's next commands read) from the loop, never from
 * inside this call.  If the connection is gone, nothing is sent.  Either
 * way d is released: call exactly once per delivery taken on. */
void lmtp_delivery_done(LmtpDelivery *d, const LmtpResult *results, size_t n_results);

/* The same result for every recipient of d (a whole batch committed or
 * failed). */
void lmtp_delivery_done_all(LmtpDelivery *d, const LmtpResult *result);

/* Whether the connection of d has gone away (nothing will be sent). */
bool lmtp_delivery_is_cancelled(const LmtpDelivery *d);

/* ---- the command parser, a pure function (also for the fuzzer) -------- */

typedef enum LmtpVerb {
        LMTP_LHLO,
        LMTP_MAIL,
        LMTP_RCPT,
        LMTP_DATA,
        LMTP_RSET,
        LMTP_NOOP,
        LMTP_QUIT,
        LMTP_VRFY,
        LMTP_HELP,
        LMTP_EHLO, /* recognised only to be refused: this is not SMTP */
        LMTP_HELO,
        _LMTP_VERB_MAX,
        _LMTP_VERB_INVALID = -EINVAL,
} LmtpVerb;

typedef struct LmtpCommand {
        LmtpVerb verb;
        char *arg; /* LHLO domain, MAIL/RCPT address without <> ("" for MAIL FROM:<>); else NULL */
        uint64_t size; /* MAIL SIZE=, when has_size */
        bool has_size;
        bool body_8bitmime; /* MAIL BODY=8BITMIME (BODY=7BIT leaves it false) */
} LmtpCommand;

/* Parse one command line of len bytes (without its line end; need not be
 * NUL-terminated).  Verbs and keywords are case-insensitive; one or more
 * spaces separate words, and "MAIL FROM: <a>" is accepted too.  Returns 0
 * and *ret (arg owned by the caller: lmtp_command_done()), -EBADMSG for an
 * unknown command (500), -EINVAL for bad syntax (501), -EOPNOTSUPP for an
 * unknown MAIL/RCPT parameter (555), -ENOMEM.  *ret is written only on
 * success. */
int lmtp_parse_command(const char *line, size_t len, LmtpCommand *ret);

/* Free what lmtp_parse_command() allocated in c and clear it. */
void lmtp_command_done(LmtpCommand *c);

/* "LHLO", "MAIL", ...; NULL when out of range. */
const char *lmtp_verb_to_string(LmtpVerb v);
