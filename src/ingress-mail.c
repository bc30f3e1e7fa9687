/* SPDX-License-Identifier: MIT */
/*
 * ingress-mail.c — received mail into inbox messages.
 *
 * Security: see ingress-mail.h.
 */
#include "ingress-mail.h"

#include <errno.h>
#include <openssl/evp.h>
#include <string.h>

#include "alloc.h"
#include "customer.h"
#include "mail.h"
#include "strutil.h"

void inbox_messages_free(InboxMessage **l) {
        for (size_t i = 0; l && l[i]; i++)
                inbox_message_free(l[i]);
        free(l);
}

/* Without a Message-ID, the delivery is recognised by its bytes. */
static int content_hash(const void *raw, size_t len, char ret[65]) {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned n = 0;

        unsigned long before = alloc_failures();
        if (EVP_Digest(raw, len, md, &n, EVP_sha256(), NULL) != 1)
                return alloc_errno_since(before, -EIO);
        for (unsigned i = 0; i < n && i < 32; i++)
                snprintf(ret + 2 * i, 3, "%02x", md[i]);
        return 0;
}

static char *join_references(char *const *refs) {
        return strv_length(refs) > 0 ? strv_join(refs, " ") : NULL;
}

/* What mail_parse() needs to know for env under c; trusted is storage for
 * the trusted authserv-ids the options point to. */
static MailParseOptions parse_options(const Config *c, const MailEnvelope *env, char *trusted[static 2]) {
        trusted[0] = trusted[1] = NULL;
        /* Over LMTP the local MTA's verdicts count; SES gives its own. */
        if (!isempty(c->mail_trust_local_mta) && env->source == INBOX_SOURCE_LMTP)
                trusted[0] = c->mail_trust_local_mta;
        return (MailParseOptions){
                .max_size = c->mail_max_size,
                .max_text = MAIL_MAX_TEXT_DEFAULT,
                .max_depth = MAIL_MAX_DEPTH_DEFAULT,
                .max_parts = MAIL_MAX_PARTS_DEFAULT,
                .max_headers = MAIL_MAX_HEADERS_DEFAULT,
                .envelope_sender = env->sender,
                .own_addresses = c->mail_addresses,
                .trusted_authserv_ids = trusted[0] ? trusted : NULL,
        };
}

int ingress_mail_parse(MailParser *p, const Config *c, const void *raw, size_t len, const MailEnvelope *env,
                       MailParserDone done, void *userdata, MailParserRequest **ret) {
        char *trusted[2];
        const MailParseOptions o = parse_options(c, env, trusted);

        if (len > c->mail_max_size)
                return -EFBIG;
        return mail_parser_submit(p, raw, len, &o, c->mail_parser_timeout_usec, done, userdata, ret);
}

int ingress_mail_messages(const Config *c, const void *raw, size_t len, const MailEnvelope *env, InboxMessage ***ret) {
        _cleanup_(mail_content_freep) MailContent *mc = NULL;
        char *trusted[2];
        const MailParseOptions o = parse_options(c, env, trusted);
        int r;

        if (len > c->mail_max_size)
                return -EFBIG;
        r = mail_parse(raw, len, &o, &mc);
        if (r < 0)
                return r;
        return ingress_mail_messages_from(c, mc, raw, len, env, ret);
}

int ingress_mail_messages_from(const Config *c, MailContent *mc, const void *raw, size_t len, const MailEnvelope *env,
                               InboxMessage ***ret) {
        InboxMessage **out = NULL;
        char *chosen[2] = { NULL, NULL };
        char *const *recipients = env->recipients;
        size_t n, k = 0;
        char hash[65] = "";
        int r;

        if (!recipients) {
                for (size_t i = 0; mc->to[i] && !chosen[0]; i++)
                        if (strv_contains(c->mail_addresses, mc->to[i]))
                                chosen[0] = mc->to[i];
                if (!chosen[0] && strv_length(c->mail_addresses) == 0)
                        return -EDESTADDRREQ;
                if (!chosen[0])
                        chosen[0] = c->mail_addresses[0];
                recipients = chosen;
        }
        n = strv_length(recipients);
        if (env->ses_spf || env->ses_dkim || env->ses_dmarc) {
                r = mail_content_set_ses_verdicts(mc, env->ses_spf, env->ses_dkim, env->ses_dmarc);
                if (r < 0)
                        return r;
        }
        if (!mc->message_id) {
                r = content_hash(raw, len, hash);
                if (r < 0)
                        return r;
        }

        out = mem_new(InboxMessage *, n + 1);
        if (!out)
                return -ENOMEM;
        for (k = 0; k < n; k++) {
                InboxMessage *m = inbox_message_new(INBOX_EMAIL, env->source);
                _cleanup_free_ char *rcpt = NULL, *key = NULL, *tkey = NULL;
                MailAuth auth = mail_authenticated(mc);

                if (!m)
                        goto oom;
                out[k] = m;
                r = customer_email_normalize(recipients[k], &rcpt);
                if (r == -ENOMEM)
                        goto oom;
                if (r < 0)
                        rcpt = mem_strdup(recipients[k]);
                if (!rcpt)
                        goto oom;
                /* The same mail to two of our addresses is two messages; the
                 * same mail delivered twice to one address is one. */
                key = mc->message_id ? mem_printf("mail:%s %s", mc->message_id, rcpt)
                                     : mem_printf("mail-sha256:%s %s", hash, rcpt);
                if (!key || inbox_message_add_key(m, key) < 0)
                        goto oom;
                if (env->transport_key) {
                        tkey = mem_printf("%s %s", env->transport_key, rcpt);
                        if (!tkey || inbox_message_add_key(m, tkey) < 0)
                                goto oom;
                }
                m->recipient = TAKE_PTR(rcpt);
                m->customer = mem_strdup(mc->from ? mc->from : "<>");
                m->body = mem_strdup(mc->text);
                if (!m->customer || !m->body)
                        goto oom;
                if (mc->subject && !(m->subject = mem_strdup(mc->subject)))
                        goto oom;
                if (mc->message_id && !(m->message_id = mem_strdup(mc->message_id)))
                        goto oom;
                if (mc->in_reply_to && !(m->in_reply_to = mem_strdup(mc->in_reply_to)))
                        goto oom;
                m->references = join_references(mc->references);
                if (strv_length(mc->references) > 0 && !m->references)
                        goto oom;
                m->authenticated = auth == MAIL_AUTH_AUTHENTICATED ? 1 : auth == MAIL_AUTH_UNAUTHENTICATED ? 0 : -1;
                if (mc->ignore != MAIL_IGNORE_NONE)
                        m->ignore_reason = mem_strdup(mail_ignore_to_string(mc->ignore));
                else if (!mc->from)
                        m->ignore_reason = mem_strdup("no-sender");
                if ((mc->ignore != MAIL_IGNORE_NONE || !mc->from) && !m->ignore_reason)
                        goto oom;
        }
        *ret = out;
        return 0;
oom:
        inbox_messages_free(out);
        return -ENOMEM;
}
