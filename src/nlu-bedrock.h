/* SPDX-License-Identifier: MIT */
/*
 * nlu-bedrock.h — nlu.backend = bedrock: what a customer's message means,
 * asked of a model on Amazon Bedrock through the Converse API
 * (POST /model/{modelId}/converse, SigV4 service "bedrock") with one tool
 * whose input schema is the parse contract of "deliveryctl parse", forced
 * by toolChoice.  The model only proposes: its tool input is checked
 * against the schema and the snapshot's catalog, and anything else — an
 * invalid or text-only answer, a timeout, a 429/5xx, a customer over
 * nlu.max_calls_per_hour, the backoff window after throttling — is
 * reported as an outcome so that the caller answers with the rules.
 *
 * Two parts.  Pure functions build the request (path, body) and read the
 * answer; NluBedrock sends queries on the daemon's loop through
 * curl-event with credentials from an AwsCredentialsProvider, keeps the
 * backoff window and the per-customer budgets, and counts every outcome
 * in deliveryd_nlu_requests_total{backend="bedrock"}.  Nothing here logs.
 *
 * Security: the customer's text is untrusted; it is cut at nlu.max_input,
 * made valid one-line UTF-8 and sent as the only user message — never
 * another customer's data, never prices (the system prompt names SKUs,
 * names and aliases only).  The answer is untrusted too: its size is
 * capped (NLU_BEDROCK_MAX_RESPONSE), it is parsed strictly, every field is
 * checked (intent and payment enums, SKUs of the catalog, qty 1–50, the
 * order id pattern, an address of bounded, valid UTF-8), and nothing else
 * of it is used.  Prices always come from the catalog.
 */
#pragma once

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "aws-credentials.h"
#include "catalog.h"
#include "curl-event.h"
#include "metrics.h"
#include "nlu.h"

#define NLU_BEDROCK_TOOL_NAME "parse_customer_message"
#define NLU_BEDROCK_QTY_MAX 50u
#define NLU_BEDROCK_ITEMS_MAX 20u
#define NLU_BEDROCK_ADDRESS_MAX 200u
#define NLU_BEDROCK_MAX_RESPONSE ((size_t) 64 * 1024)
/* After a 429/5xx: the first backoff window and the longest one. */
#define NLU_BEDROCK_BACKOFF_BASE_USEC (1 * USEC_PER_SEC)
#define NLU_BEDROCK_BACKOFF_MAX_USEC (60 * USEC_PER_SEC)
/* Customers whose hourly budget is tracked at once; beyond, expired ones
 * are forgotten first, then the oldest window. */
#define NLU_BEDROCK_BUDGET_CUSTOMERS_MAX 4096u

typedef enum NluBedrockOutcome {
        NLU_BEDROCK_OK, /* a valid tool call: its result is used */
        NLU_BEDROCK_INVALID, /* not JSON, or a tool input the schema or catalog refuses */
        NLU_BEDROCK_NO_TOOL, /* text only, or a stopReason other than tool_use */
        NLU_BEDROCK_THROTTLED, /* HTTP 429 or 5xx: a backoff window starts */
        NLU_BEDROCK_HTTP_ERROR, /* another HTTP status (403 signature, 400 validation, …) */
        NLU_BEDROCK_NETWORK, /* no answer: connection refused, reset, TLS … */
        NLU_BEDROCK_TIMEOUT, /* nlu.timeout_ms passed */
        NLU_BEDROCK_BACKOFF, /* not called: inside the backoff window */
        NLU_BEDROCK_BUDGET, /* not called: the customer is over nlu.max_calls_per_hour */
        NLU_BEDROCK_CREDENTIALS, /* not called: no AWS credentials */
        _NLU_BEDROCK_OUTCOME_MAX,
        _NLU_BEDROCK_OUTCOME_INVALID = -EINVAL,
} NluBedrockOutcome;

/* "ok", "invalid", "no_tool", "throttled", "http_error", "network",
 * "timeout", "backoff", "budget", "credentials" (the metrics' labels). */
const char *nlu_bedrock_outcome_to_string(NluBedrockOutcome o);
NluBedrockOutcome nlu_bedrock_outcome_from_string(const char *s);

/* ---- the pure part ---------------------------------------------------- */

/* The request path for model_id: "/model/" + model_id URI-encoded (':' as
 * %3A, '/' of an ARN as %2F) + "/converse", as sent; sigv4.c encodes it
 * again for the canonical request.  New string in *ret.  -EINVAL (empty
 * id), -ENOMEM. */
int nlu_bedrock_path(const char *model_id, char **ret);

/* The Converse request body (JSON, one line): the tool and toolChoice
 * forcing it, a system prompt naming the catalog's SKUs, names and
 * aliases, inferenceConfig {maxTokens: max_tokens, temperature: 0}, and one
 * user message: the first max_input bytes of text, made valid one-line
 * UTF-8.  New string in *ret.  -EINVAL (empty catalog, empty text),
 * -ENOMEM. */
int nlu_bedrock_request_body(const Catalog *c, const char *text, size_t len, size_t max_input, unsigned max_tokens,
                             char **ret);

/* The tool's inputSchema.json for catalog c (a new reference), NULL on OOM.
 * Exposed for tests and the body above. */
json_t *nlu_bedrock_tool_schema(const Catalog *c);

/* Read a Converse response body: a stopReason of "tool_use" and a toolUse
 * of our tool whose input is valid against the schema and c.  Returns
 * NLU_BEDROCK_OK with a new NluResult in *ret (the caller frees it),
 * NLU_BEDROCK_NO_TOOL, NLU_BEDROCK_INVALID, or -ENOMEM.  *ret is written
 * only on NLU_BEDROCK_OK. */
int nlu_bedrock_parse_response(const Catalog *c, const char *body, size_t len, NluResult **ret);

/* The backoff window after the n-th throttled answer in a row (n >= 1):
 * NLU_BEDROCK_BACKOFF_BASE_USEC * 2^(n-1), bounded by
 * NLU_BEDROCK_BACKOFF_MAX_USEC, then a random point of its upper half
 * chosen by random (full jitter over [w/2, w]). */
uint64_t nlu_bedrock_backoff_usec(unsigned n, uint64_t random);

/* ---- the client on the loop ------------------------------------------- */

typedef struct NluBedrock NluBedrock;
typedef struct NluBedrockQuery NluBedrockQuery;

typedef struct NluBedrockOptions {
        CurlEvent *curl; /* must outlive the client */
        AwsCredentialsProvider *credentials; /* must outlive it; NULL: every query ends CREDENTIALS */
        Metrics *metrics; /* outcomes are counted here; NULL: not counted */
} NluBedrockOptions;

/* Called once per query that was not cancelled, from the loop.  result is
 * non-NULL only with NLU_BEDROCK_OK and then belongs to the callee. */
typedef void (*NluBedrockDone)(void *userdata, NluBedrockOutcome outcome, NluResult *result);

/* A client on loop e.  Returns 0, -ENOMEM. */
int nlu_bedrock_new(sd_event *e, const NluBedrockOptions *o, NluBedrock **ret);
/* Cancels queries in flight without calling their handlers (queries the
 * caller holds stay valid until freed).  Accepts NULL; returns NULL. */
NluBedrock *nlu_bedrock_free(NluBedrock *b);
DEFINE_TRIVIAL_CLEANUP_FUNC(NluBedrock *, nlu_bedrock_free);

/* Ask Bedrock what customer's text means, with s's configuration (model,
 * region, endpoint, timeout, tokens, budget) and catalog (s is referenced
 * until the query ends).  Returns 0 when a query started: done is called
 * later, exactly once unless the query is freed first, also when the
 * deadline passes.  Otherwise nothing started and done is never called:
 * -EBUSY inside the backoff window, -EDQUOT when the customer is over the
 * budget, -EINVAL (empty text, no customer), -ENOMEM; the first two are
 * counted as outcomes.  With ret == NULL the query belongs to the client;
 * otherwise the caller frees it with nlu_bedrock_query_free() (before done:
 * cancelled, after: just freed). */
int nlu_bedrock_query(NluBedrock *b, Snapshot *s, const char *customer, const char *text, size_t len,
                      NluBedrockDone done, void *userdata, NluBedrockQuery **ret);

/* Accepts NULL; returns NULL. */
NluBedrockQuery *nlu_bedrock_query_free(NluBedrockQuery *q);
DEFINE_TRIVIAL_CLEANUP_FUNC(NluBedrockQuery *, nlu_bedrock_query_free);

/* Calls left this hour for customer (for tests and "deliveryctl"). */
unsigned nlu_bedrock_budget_left(NluBedrock *b, const Snapshot *s, const char *customer);
