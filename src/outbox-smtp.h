/* SPDX-License-Identifier: MIT */
/*
 * outbox-smtp.h — the "smtp" transport of the outbox, for e-mail: each
 * message goes to an SMTP relay with libESMTP.  libESMTP blocks for a
 * whole session, so sessions run on one worker thread fed through a
 * queue; the worker answers through an eventfd watched by the loop.  The
 * worker gets a self-contained copy of the message and returns a result;
 * it never touches the store or the loop's objects.
 *
 * Also the pure parts, for tests: quoted-printable (RFC 2045 §6.7), the
 * RFC 2047 Subject and the whole message text.
 *
 * Security: bodies and subjects are customer data (quoted-printable and
 * encoded-words keep them from forming headers or SMTP commands); the
 * relay's replies are untrusted text, stored as last_error.
 */
#pragma once

#include <stdint.h>
#include <systemd/sd-event.h>

#include "outbox.h"

typedef enum SmtpStarttls {
        SMTP_STARTTLS_REQUIRED,
        SMTP_STARTTLS_OPTIONAL,
        SMTP_STARTTLS_OFF,
        _SMTP_STARTTLS_MAX,
        _SMTP_STARTTLS_INVALID = -EINVAL,
} SmtpStarttls;

typedef struct SmtpOptions {
        const char *host; /* copied */
        unsigned port;
        SmtpStarttls starttls;
        uint64_t timeout_usec;
        const char *from; /* envelope sender and From:, copied; must have a domain */
        const char *username, *password; /* AUTH (PLAIN or LOGIN) when both are set; copied */
} SmtpOptions;

/* Read "username = …" and "password = …" from path (smtp.credentials_file).
 * 0 with new strings in *ret_username and *ret_password (caller frees,
 * wiping the password); -ENOKEY when either is missing or empty, -EINVAL
 * for control characters, -errno when the file cannot be read. */
int smtp_credentials_read(const char *path, char **ret_username, char **ret_password);

typedef struct SmtpSender SmtpSender;

/* Start the worker thread and watch its eventfd on e.  -EINVAL when
 * o->from has no '@domain'; -ENOMEM; -errno. */
int smtp_sender_new(sd_event *e, const SmtpOptions *o, SmtpSender **ret);

/* Waits for the session in progress, then answers every send not done
 * yet with TEMPFAIL (free the outbox first: its answers are dropped). */
SmtpSender *smtp_sender_free(SmtpSender *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(SmtpSender *, smtp_sender_free);

/* The transport; its userdata is an SmtpSender. */
extern const OutboxTransport outbox_transport_smtp;

/* ---- pure parts ---------------------------------------------------------- */

/* The body as quoted-printable with CRLF line ends (LF or CRLF in s) and
 * soft breaks so that no line is longer than 76.  New string, NULL on OOM. */
char *smtp_qp_encode(const char *s);

/* The reply's Subject text: "Re: " + subject when answering (in_reply_to
 * set), unless it already starts with "Re:".  New string, NULL on OOM. */
char *smtp_reply_subject(const char *subject, bool answering);

/* s as a header value: itself when ASCII, else RFC 2047 encoded-words
 * (=?UTF-8?B?…?=, whole characters each, folded).  New string or NULL. */
char *smtp_encode_header_text(const char *s);

typedef struct SmtpMessageFields {
        const char *from, *to, *subject, *in_reply_to, *references, *message_id, *body;
        uint64_t date_usec; /* realtime */
} SmtpMessageFields;

/* The complete message (headers and quoted-printable body, CRLF).  The
 * subject is used as given (see smtp_reply_subject()); message_id with
 * its angle brackets.  New string, NULL on OOM. */
char *smtp_format_message(const SmtpMessageFields *f);

/* "<random@domain>" for from = "local@domain".  New string; NULL on OOM or
 * when from has no domain. */
char *smtp_new_message_id(const char *from);
