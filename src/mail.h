/* SPDX-License-Identifier: MIT */
/*
 * mail.h — one raw RFC 5322 message (as received over LMTP, or inside an
 * SES notification) turned into what a conversation needs: who wrote, the
 * threading ids, the customer's own new words as bounded UTF-8 without
 * quoted replies or signatures, whether the message must be ignored
 * (auto-replies, bounces, lists, our own mail) and what the trusted
 * Authentication-Results say about the sender.  Built on GMime 3; holds no
 * daemon state and does not log.  See doc/internals/mail.md.
 *
 * Security: parses untrusted input — the whole message, headers and MIME
 * structure.  Size, header count, MIME depth and part count are bounded;
 * the text that comes out is always valid UTF-8 without control characters
 * other than '\n' and '\t'.  Authentication-Results headers are believed
 * only from the authserv-ids the caller trusts.
 */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"

/* Defaults used for a limit left at 0 in MailParseOptions. */
#define MAIL_MAX_SIZE_DEFAULT ((size_t) 4 * 1024 * 1024)
#define MAIL_MAX_TEXT_DEFAULT ((size_t) 8 * 1024)
#define MAIL_MAX_DEPTH_DEFAULT 8U
#define MAIL_MAX_PARTS_DEFAULT 64U
#define MAIL_MAX_HEADERS_DEFAULT 500U

/* Most entries of MailContent.to; References keeps its first (the thread's
 * root) and its most recent ids, MAIL_REFERENCES_MAX in all. */
#define MAIL_TO_MAX 64
#define MAIL_REFERENCES_MAX 32

/* Why a message must not be answered, so that two robots never talk to
 * each other.  When several apply, the first in this order is reported. */
typedef enum MailIgnore {
        MAIL_IGNORE_NONE,
        MAIL_IGNORE_OURSELVES, /* From (or the envelope sender) is one of our own addresses */
        MAIL_IGNORE_BOUNCE, /* null envelope sender, or MAILER-DAEMON / postmaster */
        MAIL_IGNORE_AUTO_SUBMITTED, /* Auto-Submitted other than "no" (RFC 3834), X-Autoreply */
        MAIL_IGNORE_LIST, /* List-Id (RFC 2919), Precedence: list */
        MAIL_IGNORE_BULK, /* Precedence: bulk or junk */
        _MAIL_IGNORE_MAX,
        _MAIL_IGNORE_INVALID = -EINVAL,
} MailIgnore;

/* One method's result (RFC 8601 section 2.7 names).  MISSING: no trusted
 * statement about that method at all. */
typedef enum MailAuthResult {
        MAIL_AUTH_RESULT_MISSING,
        MAIL_AUTH_RESULT_NONE,
        MAIL_AUTH_RESULT_PASS,
        MAIL_AUTH_RESULT_FAIL,
        MAIL_AUTH_RESULT_SOFTFAIL,
        MAIL_AUTH_RESULT_NEUTRAL,
        MAIL_AUTH_RESULT_POLICY,
        MAIL_AUTH_RESULT_TEMPERROR,
        MAIL_AUTH_RESULT_PERMERROR,
        _MAIL_AUTH_RESULT_MAX,
        _MAIL_AUTH_RESULT_INVALID = -EINVAL,
} MailAuthResult;

/* The decision drawn from SPF, DKIM and DMARC (mail_authenticated()). */
typedef enum MailAuth {
        MAIL_AUTH_UNKNOWN, /* no trusted result at all: the caller decides */
        MAIL_AUTH_AUTHENTICATED,
        MAIL_AUTH_UNAUTHENTICATED,
        _MAIL_AUTH_MAX,
        _MAIL_AUTH_INVALID = -EINVAL,
} MailAuth;

/* What the caller knows and allows.  All fields may be left 0/NULL; a limit
 * of 0 means its MAIL_*_DEFAULT.  Nothing here is kept after mail_parse(). */
typedef struct MailParseOptions {
        size_t max_size; /* bytes of raw message; bigger is refused with -EFBIG */
        size_t max_text; /* bytes of MailContent.text; longer is cut at a UTF-8 boundary */
        unsigned max_depth; /* MIME nesting looked into (the body itself is depth 0) */
        unsigned max_parts; /* MIME parts looked at (and see mail_parse()'s -E2BIG) */
        unsigned max_headers; /* header fields of the message; more is refused with -E2BIG */
        /* SMTP MAIL FROM / LMTP / SES "source", with or without <>; "" or "<>"
         * is the null sender.  NULL when unknown: the Return-Path header, if
         * any, is used instead. */
        const char *envelope_sender;
        char *const *own_addresses; /* our own addresses (any case); NULL = none */
        char *const *trusted_authserv_ids; /* e.g. the local MTA's hostname; NULL = none */
} MailParseOptions;

/* The result of mail_parse().  Every string is valid UTF-8 and owned by the
 * MailContent; free it with mail_content_free(). */
typedef struct MailContent {
        char *from; /* addr-spec of the first From mailbox, lower-cased; NULL if none */
        char **to; /* addr-specs of To, lower-cased, in order; never NULL */
        char *subject; /* RFC 2047 decoded, on one line; NULL if none */
        char *message_id; /* without angle brackets; NULL if none or unusable */
        char *in_reply_to; /* first msg-id of In-Reply-To, without brackets; NULL if none */
        char **references; /* References msg-ids, without brackets, in order; never NULL */
        uint64_t date_usec; /* Date as µs since the epoch; 0 if missing or unreadable */

        char *text; /* the sender's own new words; never NULL ("" if none) */
        bool text_truncated; /* text was cut at max_text */
        bool text_from_html; /* text came from a text/html part */
        bool mime_limited; /* parts beyond max_depth/max_parts were not looked at */

        MailIgnore ignore;
        MailAuthResult spf, dkim, dmarc;
} MailContent;

/* Initialise GMime (g_mime_init()).  Idempotent; mail_parse() calls it when
 * needed, but the daemon calls it once at start. */
void mail_init(void);

/* Undo mail_init() (g_mime_shutdown()), so that leak checkers see GMime's
 * global tables freed.  No MailContent depends on GMime. */
void mail_shutdown(void);

/* Parse the size bytes at data.  Returns 0 and a new MailContent in *ret;
 * -EFBIG when size > max_size (nothing parsed); -E2BIG when the message has
 * more than max_headers header fields, or more than 64 × max_parts lines
 * beginning with "--" (a flood of tiny MIME parts, refused before GMime
 * builds them); -EBADMSG when it is not a message at all (no header);
 * -EINVAL, -ENOMEM.  A message that is merely broken
 * (bad MIME, wrong charset) still parses: what can be read is returned.
 * GMime's own allocations abort on OOM (GLib's g_malloc); only ours fail
 * with -ENOMEM.  That, and the untrusted MIME, is why the daemon calls
 * this only in its mail parser process (mail-parser.h). */
int mail_parse(const void *data, size_t size, const MailParseOptions *opts, MailContent **ret);

/* Free m and everything in it.  Accepts NULL; returns NULL. */
MailContent *mail_content_free(MailContent *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(MailContent *, mail_content_free);

/* Replace the spf/dkim/dmarc results with the verdicts of an SES receipt
 * notification (receipt.spfVerdict.status etc.: "PASS", "FAIL", "GRAY",
 * "PROCESSING_FAILED"); NULL means that verdict was absent.  SES is the
 * receiving MTA on that path, so its verdicts are the trusted ones.
 * Returns 0, or -EINVAL (m unchanged) for a status SES does not define. */
int mail_content_set_ses_verdicts(MailContent *m, const char *spf, const char *dkim, const char *dmarc);

/* The decision: UNKNOWN when no method has a trusted result; else
 * UNAUTHENTICATED when DMARC failed, or SPF and DKIM both failed;
 * AUTHENTICATED otherwise. */
MailAuth mail_authenticated(const MailContent *m);

/* Names: "none", "ourselves", "bounce", "auto-submitted", "list", "bulk". */
const char *mail_ignore_to_string(MailIgnore i);
MailIgnore mail_ignore_from_string(const char *s);

/* RFC 8601 result names ("pass", "fail", ...; "missing" for MISSING);
 * from_string is case-insensitive and refuses "missing". */
const char *mail_auth_result_to_string(MailAuthResult r);
MailAuthResult mail_auth_result_from_string(const char *s);

/* An SES verdict status: PASS, FAIL, GRAY (→ NONE), PROCESSING_FAILED
 * (→ TEMPERROR); anything else → _MAIL_AUTH_RESULT_INVALID. */
MailAuthResult mail_auth_result_from_ses(const char *status);

/* "unknown", "authenticated", "unauthenticated". */
const char *mail_auth_to_string(MailAuth a);
MailAuth mail_auth_from_string(const char *s);
