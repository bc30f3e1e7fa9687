/* SPDX-License-Identifier: MIT */
/*
 * ingress-lmtp.h — LMTP delivery from the local MTA into the inbox: the
 * recipients accepted are mail.addresses; each one's reply is sent only
 * after its inbox message is committed (250), or failed (451, the MTA
 * keeps the mail and retries).  The mail parser process reads the message
 * first; if it dies over it or runs out of time, every recipient gets 451.
 *
 * Security: the LMTP client is the local MTA, but the mail it carries is
 * from anyone: see lmtp.h and ingress-mail.h.
 */
#pragma once

#include <systemd/sd-event.h>

#include "inbox.h"
#include "mail-parser.h"
#include "metrics.h"
#include "snapshot.h"

typedef struct LmtpIngress LmtpIngress;

typedef struct LmtpIngressContext {
        Inbox *inbox;
        MailParser *parser;
        Metrics *metrics;
        Snapshot *(*snapshot)(void *userdata);
        void *userdata;
} LmtpIngressContext;

/* Serve LMTP on listen_fd (taken over, closed on failure). */
int lmtp_ingress_new(sd_event *e, int listen_fd, const LmtpIngressContext *ctx, LmtpIngress **ret);

/* Close the listener; sessions answer 421 to their next command. */
void lmtp_ingress_stop_accepting(LmtpIngress *li);

/* LMTP sessions open. */
unsigned lmtp_ingress_n_connections(LmtpIngress *li);

/* Sessions open plus deliveries waiting for the parser or their commit. */
unsigned lmtp_ingress_n_pending(LmtpIngress *li);

/* Free the server.  Free the mail parser and the inbox first: deliveries
 * waiting for them are then answered (451) while the server can still
 * take the answers. */
LmtpIngress *lmtp_ingress_free(LmtpIngress *li);
DEFINE_TRIVIAL_CLEANUP_FUNC(LmtpIngress *, lmtp_ingress_free);
