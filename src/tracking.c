/* SPDX-License-Identifier: MIT */
/*
 * tracking.c — the tracking page's HTML.
 *
 * Security: see tracking.h.
 */
#include "tracking.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "macro.h"
#include "sns.h"

const char *const tracking_page_headers[] = {
        "Content-Security-Policy",
        "default-src 'none'; style-src 'unsafe-inline'",
        "Referrer-Policy",
        "no-referrer",
        "X-Frame-Options",
        "DENY",
        NULL,
};

typedef struct Buf {
        char *s;
        size_t n, size;
        bool oom;
} Buf;

static void put(Buf *b, const char *s, size_t len) {
        if (b->oom)
                return;
        if (b->n + len + 1 > b->size) {
                size_t size = MAX(b->size * 2, b->n + len + 1024);
                char *p = mem_realloc(b->s, size);
                if (!p) {
                        b->oom = true;
                        return;
                }
                b->s = p;
                b->size = size;
        }
        memcpy(b->s + b->n, s, len);
        b->n += len;
        b->s[b->n] = '\0';
}

static void puts_raw(Buf *b, const char *s) {
        put(b, s, strlen(s));
}

_printf_(2, 3) static void putf(Buf *b, const char *fmt, ...) {
        char tmp[256];
        va_list ap;
        int k;

        va_start(ap, fmt);
        k = vsnprintf(tmp, sizeof tmp, fmt, ap);
        va_end(ap);
        if (k > 0)
                put(b, tmp, MIN((size_t) k, sizeof tmp - 1));
}

/* Append s escaped. */
static void puts_html(Buf *b, const char *s) {
        for (; s && *s; s++)
                switch (*s) {
                case '&':
                        puts_raw(b, "&amp;");
                        break;
                case '<':
                        puts_raw(b, "&lt;");
                        break;
                case '>':
                        puts_raw(b, "&gt;");
                        break;
                case '"':
                        puts_raw(b, "&quot;");
                        break;
                case '\'':
                        puts_raw(b, "&#39;");
                        break;
                default:
                        put(b, s, 1);
                }
}

char *tracking_html_escape(const char *s) {
        Buf b = {};

        puts_raw(&b, "");
        puts_html(&b, s);
        if (b.oom) {
                free(b.s);
                return NULL;
        }
        return b.s;
}

typedef struct Words {
        const char *html_lang, *order, *status[7], *eta, *items, *total, *zone, *history, *refresh, *cancelled_reason;
        char decimal;
} Words;

static const Words words_pt = {
        .html_lang = "pt-BR",
        .order = "Pedido",
        .status = { "Recebido", "Confirmado", "Em preparo", "Pronto", "Saiu para entrega", "Entregue", "Cancelado" },
        .eta = "Previsão de entrega",
        .items = "Itens",
        .total = "Total",
        .zone = "Entrega em",
        .history = "Andamento",
        .refresh = "Esta página se atualiza a cada minuto.",
        .cancelled_reason = "motivo",
        .decimal = ',',
};

static const Words words_en = {
        .html_lang = "en",
        .order = "Order",
        .status = { "Received", "Confirmed", "Being prepared", "Ready", "Out for delivery", "Delivered", "Cancelled" },
        .eta = "Expected delivery",
        .items = "Items",
        .total = "Total",
        .zone = "Delivery to",
        .history = "Progress",
        .refresh = "This page refreshes itself every minute.",
        .cancelled_reason = "reason",
        .decimal = '.',
};

static const char *const statuses[7] = { "CREATED",     "CONFIRMED", "PREPARING", "READY",
                                         "IN_DELIVERY", "DELIVERED", "CANCELLED" };

static const char *status_words(const Words *w, const char *status) {
        for (size_t i = 0; i < ELEMENTSOF(statuses); i++)
                if (streq_ptr(statuses[i], status))
                        return w->status[i];
        return status;
}

/* "2026-12-04T18:15:00Z" in local time, in w's format; "" when it does not parse. */
static void local_time(const Words *w, const char *rfc3339, char *buf, size_t size) {
        uint64_t usec;
        struct tm tm;
        time_t t;

        buf[0] = '\0';
        if (sns_parse_timestamp(rfc3339, &usec) < 0)
                return;
        t = (time_t) (usec / USEC_PER_SEC);
        if (!localtime_r(&t, &tm) ||
            (w->decimal == ',' ? strftime(buf, size, "%d/%m %H:%M", &tm) : strftime(buf, size, "%b %d, %H:%M", &tm)) ==
                    0)
                buf[0] = '\0';
}

static void money(const Words *w, Buf *b, json_int_t cents) {
        /* "R$ 64,90" (pt), "R$64.90" (en), as DESIGN.md shows money. */
        putf(b, "R$%s%lld%c%02lld", w->decimal == ',' ? "&nbsp;" : "", (long long) (cents / 100), w->decimal,
             (long long) (cents % 100));
}

static const char style[] = "body{font-family:sans-serif;max-width:32em;margin:1em auto;padding:0 1em;color:#222}"
                            "h1{font-size:1.3em}.status{font-size:1.5em;font-weight:bold}"
                            "ol{padding-left:1.2em}li{margin:.3em 0}.muted{color:#666;font-size:.9em}";

int tracking_page_html(const json_t *order, const char *store_name, char **ret) {
        const char *id = json_string_value(json_object_get(order, "id"));
        const char *status = json_string_value(json_object_get(order, "status"));
        const char *lang = json_string_value(json_object_get(order, "lang"));
        const char *zone = json_string_value(json_object_get(order, "zone_name"));
        const Words *w = streq_ptr(lang, "en") ? &words_en : &words_pt;
        const json_t *v;
        char when[64];
        size_t i;
        Buf b = {};

        if (!id || !status)
                return -EINVAL;

        puts_raw(&b, "<!DOCTYPE html>\n<html lang=\"");
        puts_raw(&b, w->html_lang);
        puts_raw(&b,
                 "\">\n<head>\n<meta charset=\"utf-8\">\n<meta http-equiv=\"refresh\" content=\"60\">\n"
                 "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
                 "<meta name=\"robots\" content=\"noindex\">\n<title>");
        puts_html(&b, w->order);
        puts_raw(&b, " #");
        puts_html(&b, id);
        puts_raw(&b, "</title>\n<style>");
        puts_raw(&b, style);
        puts_raw(&b, "</style>\n</head>\n<body>\n<p class=\"muted\">");
        puts_html(&b, store_name);
        puts_raw(&b, "</p>\n<h1>");
        puts_html(&b, w->order);
        puts_raw(&b, " #");
        puts_html(&b, id);
        puts_raw(&b, "</h1>\n<p class=\"status\">");
        puts_html(&b, status_words(w, status));
        puts_raw(&b, "</p>\n");

        local_time(w, json_string_value(json_object_get(order, "eta")), when, sizeof when);
        if (*when && !streq(status, "DELIVERED") && !streq(status, "CANCELLED")) {
                puts_raw(&b, "<p>");
                puts_html(&b, w->eta);
                puts_raw(&b, ": <strong>");
                puts_html(&b, when);
                puts_raw(&b, "</strong></p>\n");
        }
        if (zone) {
                puts_raw(&b, "<p>");
                puts_html(&b, w->zone);
                puts_raw(&b, ": ");
                puts_html(&b, zone);
                puts_raw(&b, "</p>\n");
        }

        puts_raw(&b, "<h2>");
        puts_html(&b, w->history);
        puts_raw(&b, "</h2>\n<ol>\n");
        json_array_foreach (json_object_get(order, "history"), i, v) {
                const char *reason = json_string_value(json_object_get(v, "reason"));
                local_time(w, json_string_value(json_object_get(v, "at")), when, sizeof when);
                puts_raw(&b, "<li><time>");
                puts_html(&b, when);
                puts_raw(&b, "</time> ");
                puts_html(&b, status_words(w, json_string_value(json_object_get(v, "status"))));
                if (reason) {
                        puts_raw(&b, " (");
                        puts_html(&b, w->cancelled_reason);
                        puts_raw(&b, ": ");
                        puts_html(&b, reason);
                        puts_raw(&b, ")");
                }
                puts_raw(&b, "</li>\n");
        }
        puts_raw(&b, "</ol>\n<h2>");
        puts_html(&b, w->items);
        puts_raw(&b, "</h2>\n<ul>\n");
        json_array_foreach (json_object_get(order, "items"), i, v) {
                putf(&b, "<li>%lld \u00d7 ", (long long) json_integer_value(json_object_get(v, "qty")));
                puts_html(&b, json_string_value(json_object_get(v, "name")));
                puts_raw(&b, "</li>\n");
        }
        puts_raw(&b, "</ul>\n<p>");
        puts_html(&b, w->total);
        puts_raw(&b, ": <strong>");
        money(w, &b, json_integer_value(json_object_get(order, "total_cents")));
        puts_raw(&b, "</strong></p>\n<p class=\"muted\">");
        puts_html(&b, w->refresh);
        puts_raw(&b, "</p>\n</body>\n</html>\n");

        if (b.oom) {
                free(b.s);
                return -ENOMEM;
        }
        *ret = b.s;
        return 0;
}
