/* SPDX-License-Identifier: MIT */
/*
 * nlu-client.h — understanding a customer's message from the daemon's
 * loop.  The conversation asks; the answer comes back through a callback,
 * always from the loop and never from inside the call, because some
 * backends (Bedrock) answer over the network.  Whatever the backend, an
 * answer always comes: when the backend fails, the rules answer instead.
 *
 * Security: the text is untrusted customer input, bounded by nlu.max_input.
 */
#pragma once

#include <stddef.h>
#include <systemd/sd-event.h>

#include "curl-event.h"
#include "macro.h"
#include "nlu.h"
#include "snapshot.h"

typedef struct NluClient NluClient;
typedef struct NluQuery NluQuery;

/* result: the answer, owned by the callee of done (free it with
 * nlu_result_free()); NULL only when memory ran out. */
typedef void (*NluDone)(void *userdata, NluResult *result);

/* curl may be NULL when no backend needs the network.  -ENOMEM. */
int nlu_client_new(sd_event *e, CurlEvent *curl, NluClient **ret);
/* Queries still pending are cancelled: their callbacks are not called. */
NluClient *nlu_client_free(NluClient *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(NluClient *, nlu_client_free);

/* Understand len bytes of text from customer with the backend s names
 * (s is referenced until the answer).  done is called once, later, from
 * the loop.  *ret_query (may be NULL) lets the caller cancel.  -ENOMEM. */
int nlu_client_parse(NluClient *c, Snapshot *s, const char *customer, const char *text, size_t len, NluDone done,
                     void *userdata, NluQuery **ret_query);

/* done will not be called. */
void nlu_query_cancel(NluQuery *q);

/* Queries not yet answered. */
unsigned nlu_client_n_pending(const NluClient *c);
