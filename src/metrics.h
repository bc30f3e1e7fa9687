/* SPDX-License-Identifier: MIT */
/*
 * metrics.h — the daemon's counters, declared in one table (name, labels,
 * help) and rendered both as Prometheus text for GET /metrics and as JSON
 * for "deliveryctl stats --json".  Adding a counter is one enum value and
 * one row in metrics.c.
 *
 * Security: none (no input).
 */
#pragma once

#include <jansson.h>
#include <stdint.h>

typedef enum MetricId {
        METRIC_RELOADS_OK,
        METRIC_RELOADS_REFUSED,
        METRIC_HTTP_REQUESTS_2XX,
        METRIC_HTTP_REQUESTS_4XX,
        METRIC_HTTP_REQUESTS_5XX,
        METRIC_HTTP_CLOSED_HEADER_TIMEOUT, /* connections closed by us before their request was whole */
        METRIC_HTTP_CLOSED_BODY_TIMEOUT,
        METRIC_HTTP_CLOSED_EVICTED,
        METRIC_HTTP_CLOSED_FULL,
        METRIC_CONTROL_REQUESTS,
        METRIC_CONTROL_ERRORS,
        METRIC_INBOUND_ACCEPTED,
        METRIC_INBOUND_DUPLICATE,
        METRIC_INBOUND_IGNORED,
        METRIC_INBOUND_FAILED,
        METRIC_REJECTED_SIGNATURE,
        METRIC_REJECTED_CERT_URL,
        METRIC_REJECTED_TOPIC,
        METRIC_REJECTED_TIMESTAMP,
        METRIC_REJECTED_SIZE,
        METRIC_REJECTED_PARSE,
        METRIC_OUTBOUND_SENT_SMS, /* the outbox: one pair per outcome, sms then email */
        METRIC_OUTBOUND_SENT_EMAIL,
        METRIC_OUTBOUND_DEFERRED_SMS,
        METRIC_OUTBOUND_DEFERRED_EMAIL,
        METRIC_OUTBOUND_FAILED_SMS,
        METRIC_OUTBOUND_FAILED_EMAIL,
        METRIC_OUTBOUND_EXPIRED_SMS,
        METRIC_OUTBOUND_EXPIRED_EMAIL,
        METRIC_OUTBOUND_POSSIBLE_DUPLICATES_SMS,
        METRIC_OUTBOUND_POSSIBLE_DUPLICATES_EMAIL,
        METRIC_NLU_RULES_OK, /* nlu: backend=rules, chosen by nlu.backend */
        METRIC_NLU_RULES_FALLBACK, /* backend=rules, answering for another backend */
        METRIC_NLU_BEDROCK_OK, /* backend=bedrock, one per NluBedrockOutcome, in its order */
        METRIC_NLU_BEDROCK_INVALID,
        METRIC_NLU_BEDROCK_NO_TOOL,
        METRIC_NLU_BEDROCK_THROTTLED,
        METRIC_NLU_BEDROCK_HTTP_ERROR,
        METRIC_NLU_BEDROCK_NETWORK,
        METRIC_NLU_BEDROCK_TIMEOUT,
        METRIC_NLU_BEDROCK_BACKOFF,
        METRIC_NLU_BEDROCK_BUDGET,
        METRIC_NLU_BEDROCK_CREDENTIALS,
        METRIC_CONVERSATION_TURNS_OK, /* the conversation: one per outcome */
        METRIC_CONVERSATION_TURNS_FAILED,
        METRIC_CONVERSATION_TURNS_CORRUPT,
        _METRIC_MAX,
} MetricId;

typedef struct Metrics {
        uint64_t value[_METRIC_MAX];
} Metrics;

static inline void metrics_inc(Metrics *m, MetricId id) {
        m->value[id]++;
}

/* Extra gauges the caller knows at render time (uptime, sizes …). */
typedef struct MetricGauge {
        const char *name;
        const char *help;
        double value;
} MetricGauge;

/* Prometheus text exposition format 0.0.4.  Caller frees; NULL on OOM. */
char *metrics_render_prometheus(const Metrics *m, const MetricGauge *gauges, size_t n_gauges);

/* {"reloads_total": {"ok": 1, "refused": 0}, …}.  New reference; NULL on OOM. */
json_t *metrics_to_json(const Metrics *m);
