/* SPDX-License-Identifier: MIT */
/*
 * log.h — logging to stderr with sd-daemon "<N>" priority prefixes, so that
 * journald files each line at the right level when we run under systemd.
 * On a terminal the prefix is left out and the level is spelled instead.
 * State changes of messages and orders are logged as one line of key=value
 * pairs (log_event()), which an operator can grep and a test can parse.
 *
 * Security: log lines may carry customer text; callers quote it with %s of
 * already bounded strings.
 */
#pragma once

#include <syslog.h>

#include "macro.h"

/* Set the most verbose level that is printed (LOG_ERR … LOG_DEBUG). */
void log_set_max_level(int level);
int log_get_max_level(void);

/* Decide once whether stderr wants "<N>" prefixes (journal, pipe, file) or
 * readable level names (terminal).  DELIVERYD_LOG_PREFIX=0|1 forces it. */
void log_open(void);

/* Parse "err", "warning", "notice", "info", "debug" (and syslog names). */
int log_level_from_string(const char *s);
const char *log_level_to_string(int level);

/* Print one line; returns -abs(error) (or 0 for error == 0) so that callers
 * can "return log_error_errno(r, …);".  %m prints strerror(error). */
int log_internal(int level, int error, const char *file, int line, const char *fmt, ...) _printf_(5, 6);

#define log_full_errno(level, error, ...) log_internal((level), (error), __FILE__, __LINE__, __VA_ARGS__)
#define log_full(level, ...) (void) log_full_errno((level), 0, __VA_ARGS__)

#define log_debug(...) log_full(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_full(LOG_INFO, __VA_ARGS__)
#define log_notice(...) log_full(LOG_NOTICE, __VA_ARGS__)
#define log_warning(...) log_full(LOG_WARNING, __VA_ARGS__)
#define log_error(...) log_full(LOG_ERR, __VA_ARGS__)

#define log_debug_errno(error, ...) log_full_errno(LOG_DEBUG, (error), __VA_ARGS__)
#define log_info_errno(error, ...) log_full_errno(LOG_INFO, (error), __VA_ARGS__)
#define log_notice_errno(error, ...) log_full_errno(LOG_NOTICE, (error), __VA_ARGS__)
#define log_warning_errno(error, ...) log_full_errno(LOG_WARNING, (error), __VA_ARGS__)
#define log_error_errno(error, ...) log_full_errno(LOG_ERR, (error), __VA_ARGS__)

/* A state change: "event=NAME key=value …" at info level. */
#define log_event(...) log_info("event=" __VA_ARGS__)

/* An untrusted value made safe for a key=value line: at most size-1 bytes,
 * anything but printable ASCII other than space, '"', '=' and '\\' replaced
 * by '?', so that it cannot fake another pair or another line.  Returns buf. */
const char *log_safe(const char *s, char *buf, size_t size);

/* "-ENOMEM" logged uniformly. */
#define log_oom() log_error_errno(ENOMEM, "Out of memory.")
