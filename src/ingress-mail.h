/* SPDX-License-Identifier: MIT */
/*
 * ingress-mail.h — one received e-mail (raw bytes from LMTP or from an SES
 * notification) into inbox messages, one per recipient of ours: the text
 * the customer wrote, threading headers, whether it is authenticated, and
 * whether it must be ignored (loops, bounces, lists).  Shared by the LMTP
 * and the SNS paths so that both decide the same way.
 *
 * Security: the mail is untrusted; mail.c bounds and parses it.
 */
#pragma once

#include "conf.h"
#include "inbox.h"
#include "mail-parser.h"

typedef struct MailEnvelope {
        InboxSource source;
        const char *sender; /* MAIL FROM / SES source; "" for the null sender; NULL unknown */
        /* ours, as the MTA or SES gave them; NULL: the first To address that
         * is one of mail.addresses, else the first of mail.addresses (an
         * injected mail) */
        char *const *recipients;
        const char *transport_key; /* a dedupe key of the delivery itself (SES messageId), or NULL */
        /* SES verdicts (PASS, FAIL, GRAY, PROCESSING_FAILED) or NULL when the
         * mail came over LMTP and the Authentication-Results header decides. */
        const char *ses_spf, *ses_dkim, *ses_dmarc;
} MailEnvelope;

/* Hand the len bytes at raw to the mail parser process with what c and
 * env say about how to read them (limits, our addresses, the trusted
 * authserv-id), allowing it mail.parser_timeout.  done() is called later
 * with the parse (see MailParserDone); raw and env may go at once.
 * Returns 0 and the request in *ret, -EFBIG (over mail.max_size: nothing
 * is sent), -ENOMEM. */
int ingress_mail_parse(MailParser *p, const Config *c, const void *raw, size_t len, const MailEnvelope *env,
                       MailParserDone done, void *userdata, MailParserRequest **ret);

/* Build one InboxMessage per recipient into *ret (a NULL-terminated array
 * the caller frees with inbox_messages_free()) from mc, what the parser made
 * of the len bytes at raw (mc is changed: the SES verdicts go in).  A
 * message without a usable From gets customer "<>" and is stored as
 * ignored.  Returns 0, -EDESTADDRREQ (no recipients given and
 * mail.addresses is empty), -EINVAL (an SES verdict SES does not define),
 * -ENOMEM. */
int ingress_mail_messages_from(const Config *c, MailContent *mc, const void *raw, size_t len, const MailEnvelope *env,
                               InboxMessage ***ret);

/* Both in one: parse here (GMime in this process: for tests and fuzzers,
 * never the daemon) and build.  Returns what either returns, and -EFBIG
 * (over mail.max_size), -EBADMSG (not a mail at all). */
int ingress_mail_messages(const Config *c, const void *raw, size_t len, const MailEnvelope *env, InboxMessage ***ret);

void inbox_messages_free(InboxMessage **l);
