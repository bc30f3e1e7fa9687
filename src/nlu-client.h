/* SPDX-License-Identifier: MIT */
/*
 * nlu-client.h — understanding a customer's message from the daemon's
 * loop.  The conversation asks; the answer comes back through a callback,
 * always from the loop and never from inside the call, because some
 * backends (Bedrock) answer over the network.  Whatever the backend, an
 * answer always comes: when the backend fails, the rules answer instead.
 *
 * Security: the text is untrusted customer input, bounded by nlu.max_input;
 * with bedrock it leaves the machine (only this customer's message, see
 * nlu-bedrock.h).
 */
#pragma once

#include <stddef.h>
#include <systemd/sd-event.h>

#include "aws-credentials.h"
#include "curl-event.h"
#include "macro.h"
#include "metrics.h"
#include "nlu.h"
#include "snapshot.h"

typedef struct NluClient NluClient;
typedef struct NluQuery NluQuery;

/* result: the answer, owned by the callee of done (free it with
 * nlu_result_free()); NULL only when memory ran out. */
typedef void (*NluDone)(void *userdata, NluResult *result);

typedef struct NluClientOptions {
        CurlEvent *curl; /* NULL: no network backend (bedrock falls back to the rules) */
        AwsCredentialsProvider *credentials; /* for bedrock; NULL: none (every bedrock query falls back) */
        Metrics *metrics; /* deliveryd_nlu_requests_total; NULL: not counted */
} NluClientOptions;

/* A client on loop e; what o points to must outlive it.  -ENOMEM. */
int nlu_client_new_with(sd_event *e, const NluClientOptions *o, NluClient **ret);
/* nlu_client_new_with() with curl only: no credentials, no metrics.
 * curl may be NULL when no backend needs the network.  -ENOMEM. */
int nlu_client_new(sd_event *e, CurlEvent *curl, NluClient **ret);
/* Queries still pending are cancelled: their callbacks are not called. */
NluClient *nlu_client_free(NluClient *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(NluClient *, nlu_client_free);

/* Understand len bytes of text from customer with the backend s names
 * (s is referenced until the answer).  done is called once, later, from
 * the loop.  *ret_query (may be NULL) lets the caller cancel.  With
 * nlu.backend = bedrock, Bedrock is asked (nlu-bedrock.h) and the rules
 * answer whenever it cannot: its answer is invalid, late, throttled, over
 * the customer's budget, or there are no credentials.  -ENOMEM. */
int nlu_client_parse(NluClient *c, Snapshot *s, const char *customer, const char *text, size_t len, NluDone done,
                     void *userdata, NluQuery **ret_query);

/* done will not be called. */
void nlu_query_cancel(NluQuery *q);

/* While a done callback runs: why the rules answered that query instead of
 * the backend nlu.backend names ("timeout", "invalid", … as
 * nlu_bedrock_outcome_to_string()), or NULL when the named backend
 * answered.  Owned by c. */
const char *nlu_client_fallback_reason(const NluClient *c);

/* Queries not yet answered. */
unsigned nlu_client_n_pending(const NluClient *c);
