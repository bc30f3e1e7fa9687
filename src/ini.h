/* SPDX-License-Identifier: MIT */
/*
 * ini.h — the INI reader shared by deliveryd.conf, its drop-ins and the
 * store's catalog and zone files: "[section]" headers, "key = value"
 * lines, whole-line comments starting with '#' or ';'.  It knows nothing of
 * what the keys mean; the caller's callback does.
 *
 * Security: reads admin-supplied files.  Lines are bounded (INI_LINE_MAX)
 * and a line that is too long, has no '=', or a malformed header is
 * reported with file:line and skipped; reading goes on so that every
 * problem is reported in one pass.
 */
#pragma once

#include "diag.h"

#define INI_LINE_MAX 4096

/* Called for every section header (key == NULL, value == NULL) and every
 * assignment.  Returns < 0 to abort (only -ENOMEM should). */
typedef int (*IniCallback)(const char *file, unsigned line, const char *section, const char *key, const char *value,
                           void *userdata);

/* Read path, calling cb.  Syntax problems go to diags.  Returns -errno if
 * the file cannot be opened (not recorded in diags: the caller words it),
 * the callback's negative return, or 0. */
int ini_parse_file(const char *path, IniCallback cb, void *userdata, Diags *diags);

typedef enum IniFlags {
        /* Assignments before any "[section]" are allowed, with section "". */
        INI_TOP_LEVEL = 1 << 0,
} IniFlags;

/* ini_parse_file() with flags. */
int ini_parse_file_full(const char *path, IniFlags flags, IniCallback cb, void *userdata, Diags *diags);
