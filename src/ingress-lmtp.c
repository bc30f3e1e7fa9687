/* SPDX-License-Identifier: MIT */
/*
 * ingress-lmtp.c — mail from the local MTA: the LMTP server (lmtp.c) hands
 * over each message; the mail parser process reads it (mail-parser.h),
 * every recipient of ours becomes an inbox message, and each recipient's
 * reply (250 after the commit, 4xx when it failed) goes back to the MTA
 * only once the inbox has committed it.  A message the parser could not
 * read in time, or died over, is answered 451 for every recipient.
 *
 * Security: see lmtp.h (the protocol) and ingress-mail.h (the content).
 */
#include "ingress-lmtp.h"

#include <errno.h>
#include <strings.h>

#include "alloc.h"
#include "ingress-mail.h"
#include "lmtp.h"
#include "log.h"
#include "strutil.h"

typedef struct LmtpJob LmtpJob;

typedef struct LmtpSlot {
        LmtpJob *job;
        size_t index;
} LmtpSlot;

/* One delivery: while the parser reads it (parse set, in the ingress's
 * list), then while the inbox commits each recipient's message. */
struct LmtpJob {
        LmtpIngress *ingress;
        LmtpJob *next, *prev;
        LmtpDelivery *delivery;
        const LmtpEnvelope *envelope; /* the delivery's */
        const char *data; /* the delivery's */
        size_t size;
        const char **recipients; /* the envelope's, NULL-terminated */
        MailParserRequest *parse;
        LmtpResult *results;
        char (*texts)[64];
        LmtpSlot *slots;
        size_t n;
        size_t waiting;
};

struct LmtpIngress {
        LmtpIngressContext ctx;
        LmtpServer *server;
        unsigned n_jobs;
        LmtpJob *parsing;
};

static const Config *config(LmtpIngress *li) {
        return li->ctx.snapshot(li->ctx.userdata)->config;
}

static int check_recipient(void *userdata, const char *address) {
        LmtpIngress *li = userdata;
        char *const *ours = config(li)->mail_addresses;

        for (size_t i = 0; ours && ours[i]; i++)
                if (strcasecmp(ours[i], address) == 0)
                        return 1;
        return 0;
}

static void job_unlink(LmtpJob *j) {
        LmtpIngress *li = j->ingress;

        if (!j->parse)
                return;
        j->parse = NULL;
        if (j->prev)
                j->prev->next = j->next;
        else
                li->parsing = j->next;
        if (j->next)
                j->next->prev = j->prev;
        j->next = j->prev = NULL;
}

static void job_free(LmtpJob *j) {
        j->ingress->n_jobs--;
        free(j->recipients);
        free(j->results);
        free(j->texts);
        free(j->slots);
        free(j);
}

static void job_finish(LmtpJob *j) {
        lmtp_delivery_done(j->delivery, j->results, j->n);
        job_free(j);
}

/* Every recipient gets the same answer, and the job ends. */
static void job_answer_all(LmtpJob *j, unsigned code, const char *enhanced, const char *text) {
        const LmtpResult r = { code, enhanced, text };

        lmtp_delivery_done_all(j->delivery, &r);
        job_free(j);
}

static void on_committed(void *userdata, InboxOutcome outcome, int64_t id) {
        LmtpSlot *slot = userdata;
        LmtpJob *j = slot->job;
        LmtpResult *res = &j->results[slot->index];

        inbox_outcome_count(outcome, j->ingress->ctx.metrics);
        if (outcome == INBOX_FAILED)
                *res = (LmtpResult){ 451, "4.3.0", "storage failed, try again later" };
        else {
                snprintf(j->texts[slot->index], sizeof j->texts[0], "%s as inbox message %lld",
                         outcome == INBOX_DUPLICATE ? "already delivered" : "delivered", (long long) id);
                *res = (LmtpResult){ 250, "2.0.0", j->texts[slot->index] };
        }
        log_event("inbound id=%lld source=lmtp outcome=%s", (long long) id, inbox_outcome_to_string(outcome));
        if (--j->waiting == 0)
                job_finish(j);
}

static void answer_all(LmtpDelivery *d, unsigned code, const char *enhanced, const char *text) {
        const LmtpResult r = { code, enhanced, text };
        lmtp_delivery_done_all(d, &r);
}

static MailEnvelope job_envelope(LmtpJob *j) {
        return (MailEnvelope){
                .source = INBOX_SOURCE_LMTP,
                .sender = j->envelope->sender,
                .recipients = (char *const *) j->recipients,
        };
}

/* Hand each recipient's message (msgs, taken over) to the inbox; the job
 * is answered when the last is committed. */
static void job_submit(LmtpJob *j, InboxMessage **msgs) {
        int r;

        /* Hold the job open while submitting, so that it cannot finish early. */
        j->waiting = 1;
        for (size_t i = 0; i < j->n; i++) {
                j->slots[i] = (LmtpSlot){ j, i };
                j->results[i] = (LmtpResult){ 451, "4.3.0", "storage failed, try again later" };
                if (!msgs[i])
                        continue;
                r = inbox_submit(j->ingress->ctx.inbox, TAKE_PTR(msgs[i]), on_committed, &j->slots[i], NULL);
                if (r >= 0)
                        j->waiting++;
        }
        inbox_messages_free(msgs);
        if (--j->waiting == 0)
                job_finish(j);
}

/* The parser's answer: the messages go to the inbox, or the MTA is told
 * to bounce the mail (5xx) or to try again later (4xx). */
static void on_parsed(void *userdata, int r, MailContent *mc) {
        _cleanup_(mail_content_freep) MailContent *m = mc;
        LmtpJob *j = userdata;
        LmtpIngress *li = j->ingress;
        InboxMessage **msgs = NULL;

        job_unlink(j);
        if (r >= 0) {
                const MailEnvelope menv = job_envelope(j);
                r = ingress_mail_messages_from(config(li), m, j->data, j->size, &menv, &msgs);
        }
        if (r == -EFBIG) {
                metrics_inc(li->ctx.metrics, METRIC_REJECTED_SIZE);
                return job_answer_all(j, 552, "5.3.4", "message too large (mail.max_size)");
        }
        if (r < 0 && mail_parser_error_is_temporary(r)) {
                log_event("inbound source=lmtp outcome=deferred reason=\"%s\"", strerror(-r));
                return job_answer_all(j, 451, "4.3.0",
                                      r == -ENOMEM ? "out of memory, try again later"
                                                   : "message could not be read now, try again later");
        }
        if (r < 0) {
                metrics_inc(li->ctx.metrics, METRIC_REJECTED_PARSE);
                return job_answer_all(j, 554, "5.6.0", "message cannot be parsed");
        }
        job_submit(j, msgs);
}

static LmtpJob *job_new(LmtpIngress *li, LmtpDelivery *d, const LmtpEnvelope *env, const char *data, size_t size) {
        LmtpJob *j = mem_new(LmtpJob, 1);

        if (!j)
                return NULL;
        *j = (LmtpJob){ .ingress = li, .delivery = d, .envelope = env, .data = data, .size = size };
        j->n = env->n_recipients;
        j->recipients = mem_new(const char *, j->n + 1);
        j->results = mem_new(LmtpResult, j->n);
        j->texts = mem_calloc(j->n, sizeof j->texts[0]);
        j->slots = mem_new(LmtpSlot, j->n);
        li->n_jobs++;
        if (!j->recipients || !j->results || !j->texts || !j->slots) {
                job_free(j);
                return NULL;
        }
        /* The LMTP envelope counts its recipients; ours is NULL-terminated. */
        for (size_t i = 0; i < j->n; i++)
                j->recipients[i] = env->recipients[i];
        return j;
}

static int deliver(void *userdata, LmtpDelivery *d, const LmtpEnvelope *env, const char *data, size_t size) {
        LmtpIngress *li = userdata;
        LmtpJob *j;
        int r;

        j = job_new(li, d, env, data, size);
        if (!j) {
                answer_all(d, 451, "4.3.0", "out of memory, try again later");
                return 0;
        }
        /* The reply waits for the parser, then for the commit; env and data
         * stay valid until lmtp_delivery_done(). */
        const MailEnvelope menv = job_envelope(j);
        r = ingress_mail_parse(li->ctx.parser, config(li), data, size, &menv, on_parsed, j, &j->parse);
        if (r == -EFBIG) {
                metrics_inc(li->ctx.metrics, METRIC_REJECTED_SIZE);
                job_answer_all(j, 552, "5.3.4", "message too large (mail.max_size)");
                return 0;
        }
        if (r < 0) {
                job_answer_all(j, 451, "4.3.0", "out of memory, try again later");
                return 0;
        }
        j->next = li->parsing;
        if (li->parsing)
                li->parsing->prev = j;
        li->parsing = j;
        return 0;
}

static void refused(void *userdata, bool too_big) {
        LmtpIngress *li = userdata;

        metrics_inc(li->ctx.metrics, too_big ? METRIC_REJECTED_SIZE : METRIC_REJECTED_PARSE);
}

static const LmtpCallbacks callbacks = {
        .check_recipient = check_recipient,
        .deliver = deliver,
        /* A cancelled delivery (the MTA went away) is still committed: the
         * MTA delivers it again and the second copy is a duplicate. */
        .cancelled = NULL,
        .refused = refused,
};

int lmtp_ingress_new(sd_event *e, int listen_fd, const LmtpIngressContext *ctx, LmtpIngress **ret) {
        LmtpIngress *li = mem_new(LmtpIngress, 1);
        const Config *c;
        int r;

        if (!li) {
                close(listen_fd);
                return -ENOMEM;
        }
        li->ctx = *ctx;
        c = config(li);
        const LmtpOptions o = {
                .max_message_size = c->mail_max_size,
                .max_recipients = (unsigned) c->lmtp_max_recipients,
                .max_connections = (unsigned) c->lmtp_max_connections,
                .idle_timeout_usec = c->lmtp_timeout_usec,
        };
        r = lmtp_server_new(e, listen_fd, &o, &callbacks, li, &li->server);
        if (r < 0) {
                free(li);
                return r;
        }
        *ret = li;
        return 0;
}

void lmtp_ingress_stop_accepting(LmtpIngress *li) {
        if (!li)
                return;
        lmtp_server_stop_accepting(li->server);
        lmtp_server_drain(li->server);
}

unsigned lmtp_ingress_n_connections(LmtpIngress *li) {
        return li ? lmtp_server_n_connections(li->server) : 0;
}

unsigned lmtp_ingress_n_pending(LmtpIngress *li) {
        return li ? lmtp_server_n_connections(li->server) + li->n_jobs : 0;
}

LmtpIngress *lmtp_ingress_free(LmtpIngress *li) {
        if (!li)
                return NULL;
        while (li->parsing) {
                LmtpJob *j = li->parsing;
                mail_parser_cancel(j->parse);
                job_unlink(j);
                job_answer_all(j, 451, "4.3.0", "shutting down, try again later");
        }
        lmtp_server_free(li->server);
        free(li);
        return NULL;
}
