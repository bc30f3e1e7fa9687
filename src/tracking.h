/* SPDX-License-Identifier: MIT */
/*
 * tracking.h — the tracking page (GET /t/TOKEN): a small HTML page, in
 * the order's language, with the order's status in words, the timeline
 * of its statuses with their times, the ETA, the items and the total.
 * It shows nothing personal: no phone, e-mail or street, only the
 * delivery zone's name.  It reloads itself every minute.  A pure
 * function of the order JSON (orders.h); nothing here logs.
 *
 * Times are shown in the process's local time zone (the daemon sets TZ
 * from store.timezone once at start).
 *
 * Security: the order holds customer text (item names from the catalog,
 * reasons); every string is HTML-escaped, and the page has no script,
 * no external resource and no form, so that it can be served with
 * "Content-Security-Policy: default-src 'none'; style-src 'unsafe-inline'".
 */
#pragma once

#include <jansson.h>

/* The headers the page must be served with: name, value, …, NULL (static). */
extern const char *const tracking_page_headers[];

/* Render the page for order (order JSON) of the store store_name.
 * 0 and a new string in *ret (caller frees), -EINVAL when order lacks
 * its id or status, -ENOMEM. */
int tracking_page_html(const json_t *order, const char *store_name, char **ret);

/* s with & < > " ' as entities.  NULL on OOM. */
char *tracking_html_escape(const char *s);
