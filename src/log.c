/* SPDX-License-Identifier: MIT */
/*
 * log.c — stderr logger with sd-daemon priority prefixes.
 *
 * Security: none beyond log.h.
 */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int max_level = LOG_INFO;
static int use_prefix = 1;

static const char *const level_names[] = {
        [LOG_EMERG] = "emerg",     [LOG_ALERT] = "alert",   [LOG_CRIT] = "crit", [LOG_ERR] = "err",
        [LOG_WARNING] = "warning", [LOG_NOTICE] = "notice", [LOG_INFO] = "info", [LOG_DEBUG] = "debug",
};

void log_set_max_level(int level) {
        max_level = level;
}

int log_get_max_level(void) {
        return max_level;
}

void log_open(void) {
        const char *e = getenv("DELIVERYD_LOG_PREFIX");

        if (e && (streq(e, "0") || streq(e, "1")))
                use_prefix = streq(e, "1");
        else
                use_prefix = !isatty(STDERR_FILENO);
}

int log_level_from_string(const char *s) {
        for (size_t i = 0; i < ELEMENTSOF(level_names); i++)
                if (strcasecmp(s, level_names[i]) == 0)
                        return (int) i;
        if (strcasecmp(s, "error") == 0)
                return LOG_ERR;
        if (strcasecmp(s, "warn") == 0)
                return LOG_WARNING;
        return -EINVAL;
}

const char *log_level_to_string(int level) {
        if (level < 0 || (size_t) level >= ELEMENTSOF(level_names))
                return NULL;
        return level_names[level];
}

const char *log_safe(const char *s, char *buf, size_t size) {
        size_t i = 0;

        if (size == 0)
                return "";
        for (; s && s[i] && i + 1 < size; i++) {
                unsigned char c = (unsigned char) s[i];
                buf[i] = c > ' ' && c < 0x7f && c != '"' && c != '=' && c != '\\' ? (char) c : '?';
        }
        buf[i] = '\0';
        return buf;
}

int log_internal(int level, int error, const char *file, int line, const char *fmt, ...) {
        int saved = errno;
        char buf[4096];
        va_list ap;

        if (error < 0)
                error = -error;

        if (level <= max_level) {
                errno = error;
                va_start(ap, fmt);
                vsnprintf(buf, sizeof buf, fmt, ap);
                va_end(ap);

                /* One line per record: a newline inside a value would let one record
                 * pass for two, so fold it. */
                for (char *p = buf; *p; p++)
                        if (*p == '\n' || *p == '\r')
                                *p = ' ';

                if (use_prefix)
                        fprintf(stderr, "<%d>%s\n", level, buf);
                else if (max_level >= LOG_DEBUG)
                        fprintf(stderr, "%s: %s (%s:%d)\n", level_names[level], buf, file, line);
                else
                        fprintf(stderr, "%s%s%s\n", level <= LOG_WARNING ? level_names[level] : "",
                                level <= LOG_WARNING ? ": " : "", buf);
        }
        errno = saved;
        return error ? -error : 0;
}
