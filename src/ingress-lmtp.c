/* SPDX-License-Identifier: MIT */
/*
 * ingress-lmtp.c — mail from the local MTA: the LMTP server (lmtp.c) hands
 * over each message; every recipient of ours becomes an inbox message, and
 * each recipient's reply (250 after the commit, 4xx when it failed) goes
 * back to the MTA only once the inbox has committed it.
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

struct LmtpJob {
        LmtpIngress *ingress;
        LmtpDelivery *delivery;
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

static void job_finish(LmtpJob *j) {
        lmtp_delivery_done(j->delivery, j->results, j->n);
        j->ingress->n_jobs--;
        free(j->results);
        free(j->texts);
        free(j->slots);
        free(j);
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

static int deliver(void *userdata, LmtpDelivery *d, const LmtpEnvelope *env, const char *data, size_t size) {
        LmtpIngress *li = userdata;
        _cleanup_free_ const char **rcpts = NULL;
        InboxMessage **msgs = NULL;
        LmtpJob *j;
        int r;

        /* The LMTP envelope counts its recipients; ours is NULL-terminated. */
        rcpts = mem_new(const char *, env->n_recipients + 1);
        if (!rcpts) {
                answer_all(d, 451, "4.3.0", "out of memory, try again later");
                return 0;
        }
        for (size_t i = 0; i < env->n_recipients; i++)
                rcpts[i] = env->recipients[i];
        const MailEnvelope menv = {
                .source = INBOX_SOURCE_LMTP,
                .sender = env->sender,
                .recipients = (char *const *) rcpts,
        };
        r = ingress_mail_messages(config(li), data, size, &menv, &msgs);
        if (r == -EFBIG) {
                metrics_inc(li->ctx.metrics, METRIC_REJECTED_SIZE);
                answer_all(d, 552, "5.3.4", "message too large (mail.max_size)");
                return 0;
        }
        if (r == -ENOMEM) {
                answer_all(d, 451, "4.3.0", "out of memory, try again later");
                return 0;
        }
        if (r < 0) {
                metrics_inc(li->ctx.metrics, METRIC_REJECTED_PARSE);
                answer_all(d, 554, "5.6.0", "message cannot be parsed");
                return 0;
        }

        j = mem_new(LmtpJob, 1);
        if (j) {
                j->ingress = li;
                j->delivery = d;
                j->n = env->n_recipients;
                j->results = mem_new(LmtpResult, j->n);
                j->texts = mem_calloc(j->n, sizeof j->texts[0]);
                j->slots = mem_new(LmtpSlot, j->n);
        }
        if (!j || !j->results || !j->texts || !j->slots) {
                if (j) {
                        free(j->results);
                        free(j->texts);
                        free(j->slots);
                        free(j);
                }
                inbox_messages_free(msgs);
                answer_all(d, 451, "4.3.0", "out of memory, try again later");
                return 0;
        }
        li->n_jobs++;
        /* Hold the job open while submitting, so that it cannot finish early. */
        j->waiting = 1;
        for (size_t i = 0; i < j->n; i++) {
                j->slots[i] = (LmtpSlot){ j, i };
                j->results[i] = (LmtpResult){ 451, "4.3.0", "storage failed, try again later" };
                if (!msgs[i])
                        continue;
                r = inbox_submit(li->ctx.inbox, TAKE_PTR(msgs[i]), on_committed, &j->slots[i], NULL);
                if (r >= 0)
                        j->waiting++;
        }
        inbox_messages_free(msgs);
        if (--j->waiting == 0)
                job_finish(j);
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
        lmtp_server_free(li->server);
        free(li);
        return NULL;
}
