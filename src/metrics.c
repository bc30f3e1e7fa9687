/* SPDX-License-Identifier: MIT */
/*
 * metrics.c — the counter table and its two renderings.
 *
 * Security: none.
 */
#include "metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "macro.h"

static const struct {
        const char *name; /* Prometheus family, also the JSON key (without "deliveryd_") */
        const char *label; /* label name */
        const char *value; /* label value, also the JSON sub-key */
        const char *help;
        const char *outer_label; /* a second label, before the first; NULL: none */
        const char *outer_value; /* also the JSON key between the family and the value */
} metric_table[_METRIC_MAX] = {
        [METRIC_RELOADS_OK] = { "deliveryd_reloads_total", "result", "ok", "Configuration reloads by result." },
        [METRIC_RELOADS_REFUSED] = { "deliveryd_reloads_total", "result", "refused", NULL },
        [METRIC_HTTP_REQUESTS_2XX] = { "deliveryd_http_responses_total", "class", "2xx", "HTTP responses by class." },
        [METRIC_HTTP_REQUESTS_4XX] = { "deliveryd_http_responses_total", "class", "4xx", NULL },
        [METRIC_HTTP_REQUESTS_5XX] = { "deliveryd_http_responses_total", "class", "5xx", NULL },
        [METRIC_HTTP_CLOSED_HEADER_TIMEOUT] = { "deliveryd_http_connections_closed_total", "reason", "header_timeout",
                                                "HTTP connections closed before their request was whole, by reason: "
                                                "head or body not in within http.header_timeout or "
                                                "http.body_timeout; evicted, the longest waiting, to let a new "
                                                "connection in at http.max_connections; or a new connection turned "
                                                "away because all the others were busy with requests." },
        [METRIC_HTTP_CLOSED_BODY_TIMEOUT] = { "deliveryd_http_connections_closed_total", "reason", "body_timeout",
                                              NULL },
        [METRIC_HTTP_CLOSED_EVICTED] = { "deliveryd_http_connections_closed_total", "reason", "evicted", NULL },
        [METRIC_HTTP_CLOSED_FULL] = { "deliveryd_http_connections_closed_total", "reason", "full", NULL },
        [METRIC_CONTROL_REQUESTS] = { "deliveryd_control_requests_total", "result", "ok",
                                      "Control socket requests by result." },
        [METRIC_CONTROL_ERRORS] = { "deliveryd_control_requests_total", "result", "error", NULL },
        [METRIC_INBOUND_ACCEPTED] = { "deliveryd_inbound_total", "outcome", "accepted",
                                      "Inbound messages by outcome: stored, duplicate of one stored, stored as "
                                      "ignored (loops, bounces, unknown payloads), or not stored (storage failed)." },
        [METRIC_INBOUND_DUPLICATE] = { "deliveryd_inbound_total", "outcome", "duplicate", NULL },
        [METRIC_INBOUND_IGNORED] = { "deliveryd_inbound_total", "outcome", "ignored", NULL },
        [METRIC_INBOUND_FAILED] = { "deliveryd_inbound_total", "outcome", "failed", NULL },
        [METRIC_REJECTED_SIGNATURE] = { "deliveryd_inbound_rejected_total", "reason", "signature",
                                        "Inbound requests refused, by reason." },
        [METRIC_REJECTED_CERT_URL] = { "deliveryd_inbound_rejected_total", "reason", "cert_url", NULL },
        [METRIC_REJECTED_TOPIC] = { "deliveryd_inbound_rejected_total", "reason", "topic", NULL },
        [METRIC_REJECTED_TIMESTAMP] = { "deliveryd_inbound_rejected_total", "reason", "timestamp", NULL },
        [METRIC_REJECTED_SIZE] = { "deliveryd_inbound_rejected_total", "reason", "size", NULL },
        [METRIC_REJECTED_PARSE] = { "deliveryd_inbound_rejected_total", "reason", "parse", NULL },
        [METRIC_OUTBOUND_SENT_SMS] = { "deliveryd_outbound_sent_total", "channel", "sms",
                                       "Outbound messages accepted by their transport, by channel." },
        [METRIC_OUTBOUND_SENT_EMAIL] = { "deliveryd_outbound_sent_total", "channel", "email", NULL },
        [METRIC_OUTBOUND_DEFERRED_SMS] = { "deliveryd_outbound_deferred_total", "channel", "sms",
                                           "Outbound send attempts that failed temporarily and will be retried." },
        [METRIC_OUTBOUND_DEFERRED_EMAIL] = { "deliveryd_outbound_deferred_total", "channel", "email", NULL },
        [METRIC_OUTBOUND_FAILED_SMS] = { "deliveryd_outbound_failed_total", "channel", "sms",
                                         "Outbound messages that failed for good (refused, opted out, dropped)." },
        [METRIC_OUTBOUND_FAILED_EMAIL] = { "deliveryd_outbound_failed_total", "channel", "email", NULL },
        [METRIC_OUTBOUND_EXPIRED_SMS] = { "deliveryd_outbound_expired_total", "channel", "sms",
                                          "Outbound messages that failed because their lifetime ran out." },
        [METRIC_OUTBOUND_EXPIRED_EMAIL] = { "deliveryd_outbound_expired_total", "channel", "email", NULL },
        [METRIC_OUTBOUND_POSSIBLE_DUPLICATES_SMS] = { "deliveryd_outbound_possible_duplicates_total", "channel", "sms",
                                                      "Outbound messages found mid-send at start and sent again: the "
                                                      "customer may get them twice." },
        [METRIC_OUTBOUND_POSSIBLE_DUPLICATES_EMAIL] = { "deliveryd_outbound_possible_duplicates_total", "channel",
                                                        "email", NULL },
#define NLU(id, backend, outcome, help)                                                                                \
        [id] = { "deliveryd_nlu_requests_total", "outcome", outcome, help, "backend", backend }
        NLU(METRIC_NLU_RULES_OK, "rules", "ok",
            "Messages understood, by backend and outcome: rules ok (nlu.backend=rules) or fallback (answering "
            "for another backend); bedrock ok, or why its answer was not used."),
        NLU(METRIC_NLU_RULES_FALLBACK, "rules", "fallback", NULL),
        NLU(METRIC_NLU_BEDROCK_OK, "bedrock", "ok", NULL),
        NLU(METRIC_NLU_BEDROCK_INVALID, "bedrock", "invalid", NULL),
        NLU(METRIC_NLU_BEDROCK_NO_TOOL, "bedrock", "no_tool", NULL),
        NLU(METRIC_NLU_BEDROCK_THROTTLED, "bedrock", "throttled", NULL),
        NLU(METRIC_NLU_BEDROCK_HTTP_ERROR, "bedrock", "http_error", NULL),
        NLU(METRIC_NLU_BEDROCK_NETWORK, "bedrock", "network", NULL),
        NLU(METRIC_NLU_BEDROCK_TIMEOUT, "bedrock", "timeout", NULL),
        NLU(METRIC_NLU_BEDROCK_BACKOFF, "bedrock", "backoff", NULL),
        NLU(METRIC_NLU_BEDROCK_BUDGET, "bedrock", "budget", NULL),
        NLU(METRIC_NLU_BEDROCK_CREDENTIALS, "bedrock", "credentials", NULL),
#undef NLU
        [METRIC_CONVERSATION_TURNS_OK] = { "deliveryd_conversation_turns_total", "outcome", "ok",
                                           "Customer messages answered by the conversation, by outcome." },
        [METRIC_CONVERSATION_TURNS_FAILED] = { "deliveryd_conversation_turns_total", "outcome", "failed", NULL },
        [METRIC_CONVERSATION_TURNS_CORRUPT] = { "deliveryd_conversation_turns_total", "outcome", "corrupt", NULL },
};

/* Append formatted text to a growing buffer; false on OOM. */
typedef struct Buf {
        char *data;
        size_t len, size;
        bool oom;
} Buf;

static void buf_printf(Buf *b, const char *fmt, ...) _printf_(2, 3);
static void buf_printf(Buf *b, const char *fmt, ...) {
        va_list ap;
        int n;

        if (b->oom)
                return;
        for (;;) {
                va_start(ap, fmt);
                n = vsnprintf(b->data ? b->data + b->len : NULL, b->data ? b->size - b->len : 0, fmt, ap);
                va_end(ap);
                if (n < 0) {
                        b->oom = true;
                        return;
                }
                if (b->data && (size_t) n < b->size - b->len) {
                        b->len += (size_t) n;
                        return;
                }
                size_t ns = MAX(b->size * 2, b->len + (size_t) n + 256);
                char *d = mem_realloc(b->data, ns);
                if (!d) {
                        b->oom = true;
                        return;
                }
                b->data = d;
                b->size = ns;
        }
}

char *metrics_render_prometheus(const Metrics *m, const MetricGauge *gauges, size_t n_gauges) {
        Buf b = {};

        for (size_t i = 0; i < _METRIC_MAX; i++) {
                const char *name = metric_table[i].name;
                if (i == 0 || !streq(metric_table[i - 1].name, name))
                        buf_printf(&b, "# HELP %s %s\n# TYPE %s counter\n", name, metric_table[i].help, name);
                if (metric_table[i].outer_label)
                        buf_printf(&b, "%s{%s=\"%s\",%s=\"%s\"} %llu\n", name, metric_table[i].outer_label,
                                   metric_table[i].outer_value, metric_table[i].label, metric_table[i].value,
                                   (unsigned long long) m->value[i]);
                else if (metric_table[i].label)
                        buf_printf(&b, "%s{%s=\"%s\"} %llu\n", name, metric_table[i].label, metric_table[i].value,
                                   (unsigned long long) m->value[i]);
                else
                        buf_printf(&b, "%s %llu\n", name, (unsigned long long) m->value[i]);
        }
        for (size_t i = 0; i < n_gauges; i++)
                buf_printf(&b, "# HELP %s %s\n# TYPE %s gauge\n%s %.17g\n", gauges[i].name, gauges[i].help,
                           gauges[i].name, gauges[i].name, gauges[i].value);
        if (b.oom) {
                free(b.data);
                return NULL;
        }
        return b.data;
}

/* o[key], created empty when missing; NULL on OOM. */
static json_t *sub_object(json_t *o, const char *key) {
        json_t *sub = json_object_get(o, key);

        if (sub)
                return sub;
        sub = json_object();
        if (!sub || json_object_set_new(o, key, sub) < 0)
                return NULL;
        return sub;
}

json_t *metrics_to_json(const Metrics *m) {
        json_t *o = json_object();

        if (!o)
                return NULL;
        for (size_t i = 0; i < _METRIC_MAX; i++) {
                const char *key = metric_table[i].name + strlen("deliveryd_");
                json_t *v = json_integer((json_int_t) m->value[i]);

                if (!v)
                        goto oom;
                if (metric_table[i].label) {
                        json_t *sub = sub_object(o, key);
                        if (sub && metric_table[i].outer_label)
                                sub = sub_object(sub, metric_table[i].outer_value);
                        if (!sub) {
                                json_decref(v);
                                goto oom;
                        }
                        if (json_object_set_new(sub, metric_table[i].value, v) < 0)
                                goto oom;
                } else if (json_object_set_new(o, key, v) < 0)
                        goto oom;
        }
        return o;
oom:
        json_decref(o);
        return NULL;
}
