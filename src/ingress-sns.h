/* SPDX-License-Identifier: MIT */
/*
 * ingress-sns.h — POST /webhooks/sns: Amazon SNS HTTP(S) deliveries.  A
 * message is parsed, checked (topic allow-list, signing-certificate URL,
 * timestamp window, signature with a cached or downloaded certificate),
 * then, by type: a Notification's payload (two-way SMS, SES mail, which
 * the mail parser process reads first) goes to the inbox and is
 * acknowledged once committed; a SubscriptionConfirmation
 * for an allowed topic is confirmed by fetching its SubscribeURL; an
 * UnsubscribeConfirmation is recorded.  Storage failures answer 5xx (SNS
 * retries them); forged, stale or malformed messages 4xx (SNS does not).
 *
 * Security: the HTTP body is untrusted until its signature verified; see
 * sns.h for what is checked and why a certificate is trusted.
 */
#pragma once

#include <systemd/sd-event.h>

#include "curl-event.h"
#include "http.h"
#include "inbox.h"
#include "mail-parser.h"
#include "metrics.h"
#include "snapshot.h"
#include "store.h"

typedef struct SnsIngress SnsIngress;

typedef struct SnsIngressContext {
        sd_event *event;
        /* Threads that parse and check messages off the loop; 0: on the loop. */
        unsigned verify_threads;
        Store *store;
        Inbox *inbox;
        MailParser *parser; /* reads the mail of SES notifications */
        CurlEvent *curl;
        Metrics *metrics;
        /* The configuration to use for a new request (referenced by it until it ends). */
        Snapshot *(*snapshot)(void *userdata);
        void *userdata;
        const char *state_directory; /* for the default certificate cache */
        /* Clock for the timestamp window and certificate validity; NULL: the real time. */
        uint64_t (*now_usec)(void);
} SnsIngressContext;

int sns_ingress_new(const SnsIngressContext *ctx, SnsIngress **ret);

/* The HTTP handler (an HttpHandler with the SnsIngress as userdata). */
void sns_ingress_handle(void *userdata, const HttpRequest *req, HttpResponse *resp);

/* Requests being worked on (waiting for a download, the mail parser or a
 * commit). */
unsigned sns_ingress_n_pending(SnsIngress *ing);

/* Answer every pending request 503 (SNS will retry) and free. */
SnsIngress *sns_ingress_free(SnsIngress *ing);
DEFINE_TRIVIAL_CLEANUP_FUNC(SnsIngress *, sns_ingress_free);
