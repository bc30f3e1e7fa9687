/* SPDX-License-Identifier: MIT */
/*
 * ini.c — line-oriented INI reader.
 *
 * Security: see ini.h.  We read with getline() into a heap buffer and
 * reject lines longer than INI_LINE_MAX rather than silently splitting them.
 */
#include "ini.h"

#include <ctype.h>
#include <errno.h>
#include <string.h>

#include "alloc.h"
#include "macro.h"
#include "strutil.h"

static bool section_name_valid(const char *s) {
        if (!*s)
                return false;
        for (; *s; s++)
                if (!isalnum((unsigned char) *s) && !strchr("-_.:", *s) && !(*s & 0x80) && *s != ' ')
                        return false;
        return true;
}

int ini_parse_file(const char *path, IniCallback cb, void *userdata, Diags *diags) {
        return ini_parse_file_full(path, 0, cb, userdata, diags);
}

int ini_parse_file_full(const char *path, IniFlags flags, IniCallback cb, void *userdata, Diags *diags) {
        _cleanup_fclose_ FILE *f = NULL;
        _cleanup_free_ char *buf = NULL, *section = NULL;
        size_t bufsize = 0;
        unsigned lineno = 0;
        bool section_bad = false;
        ssize_t n;
        int r;

        f = fopen(path, "re");
        if (!f)
                return -errno;

        while ((n = getline(&buf, &bufsize, f)) >= 0) {
                char *l, *eq, *key, *value;

                lineno++;
                if ((size_t) n > INI_LINE_MAX) {
                        diags_add(diags, path, lineno, "line too long (%zd bytes, at most %d)", n, INI_LINE_MAX);
                        continue;
                }
                if (memchr(buf, '\0', (size_t) n)) {
                        diags_add(diags, path, lineno, "line contains a NUL byte");
                        continue;
                }
                l = strstrip(buf);
                if (lineno == 1 && strncmp(l, "\xEF\xBB\xBF", 3) == 0) /* UTF-8 byte order mark */
                        l = strstrip(l + 3);
                if (!*l || *l == '#' || *l == ';')
                        continue;

                if (*l == '[') {
                        size_t len = strlen(l);
                        if (len < 3 || l[len - 1] != ']') {
                                diags_add(diags, path, lineno, "malformed section header '%s'", l);
                                section_bad = true;
                                continue;
                        }
                        l[len - 1] = '\0';
                        char *name = strstrip(l + 1);
                        if (!section_name_valid(name)) {
                                diags_add(diags, path, lineno, "invalid section name '%s'", name);
                                section_bad = true;
                                continue;
                        }
                        free(section);
                        section = mem_strdup(name);
                        if (!section)
                                return -ENOMEM;
                        section_bad = false;
                        r = cb(path, lineno, section, NULL, NULL, userdata);
                        if (r < 0)
                                return r;
                        continue;
                }

                eq = strchr(l, '=');
                if (!eq) {
                        diags_add(diags, path, lineno, "expected 'key = value', got '%s'", l);
                        continue;
                }
                *eq = '\0';
                key = strstrip(l);
                value = strstrip(eq + 1);
                if (!*key) {
                        diags_add(diags, path, lineno, "missing key before '='");
                        continue;
                }
                if (section_bad)
                        continue; /* already reported at the header */
                if (!section && !(flags & INI_TOP_LEVEL)) {
                        diags_add(diags, path, lineno, "assignment '%s' outside of any [section]", key);
                        continue;
                }
                r = cb(path, lineno, section ? section : "", key, value, userdata);
                if (r < 0)
                        return r;
        }
        if (ferror(f))
                return -EIO;
        return 0;
}
