/* SPDX-License-Identifier: MIT */
/*
 * template.h — the texts of every reply the daemon sends, one file per
 * template id and language (DIR/pt-BR/ID.txt, DIR/en/ID.txt), read into an
 * immutable Templates that belongs to one configuration snapshot, and
 * rendered with named placeholders: "{name}" is replaced by the value the
 * caller gives, "{{" and "}}" are literal braces.  A table in template.c
 * declares every id and the placeholders it may use; a file that uses any
 * other is a load error, so a typo is found by --check-config rather than
 * by a customer.  Also here: money as customers read it (R$ 64,90).
 *
 * Security: reads admin-supplied files (bounded to 4 KiB each, valid UTF-8
 * only, every problem reported as file:line); placeholder values are
 * untrusted (a customer's address or words) and are inserted as they are,
 * never parsed again; the rendered text is bounded (TEMPLATE_OUTPUT_MAX).
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "diag.h"
#include "macro.h"
#include "nlu.h"

typedef struct Templates Templates;

/* Largest template file, in bytes. */
#define TEMPLATE_FILE_MAX 4096
/* Largest rendered text, in bytes; a larger one is -E2BIG. */
#define TEMPLATE_OUTPUT_MAX (64 * 1024)

typedef struct TemplateVar {
        const char *name; /* without braces: "items" */
        const char *value; /* UTF-8; NULL renders as empty */
} TemplateVar;

/* The directory of a language under the templates directory: "pt-BR",
 * "en"; NULL for a value out of range. */
const char *template_lang_dir(NluLang lang);

/* Read DIR/pt-BR/ID.txt and DIR/en/ID.txt for every declared id.  A line
 * whose first character is '#' is a comment ("##" at the start of a line
 * stands for a literal '#'), "\r\n" is read as "\n", and the file's last
 * line break is dropped.  Every problem goes to diags as "file:line:
 * message" (missing file or directory, unknown id, undeclared or malformed
 * placeholder, unterminated '{', stray '}', invalid UTF-8, NUL byte, empty
 * text, file over TEMPLATE_FILE_MAX).  Returns 0 and a new Templates in
 * *ret, -EINVAL when any problem was found, -ENOMEM. */
int templates_load(const char *dir, Templates **ret, Diags *diags);

/* Frees t (NULL is fine); returns NULL. */
Templates *templates_free(Templates *t);
DEFINE_TRIVIAL_CLEANUP_FUNC(Templates *, templates_free);

/* The value of {store} when a render is not given one (the snapshot sets
 * store.name here).  -ENOMEM. */
int templates_set_store(Templates *t, const char *store);

/* Render template id in lang with n vars.  A declared placeholder without
 * a var (or with a NULL value) renders as empty; {store} defaults to
 * templates_set_store()'s value; vars the template does not use are
 * ignored; when a name is given twice, the first wins.  Returns 0 and a
 * new string in *ret (the caller frees it), -ENOENT for an unknown id,
 * -EINVAL for a language out of range, -E2BIG when the text would exceed
 * TEMPLATE_OUTPUT_MAX, -ENOMEM. */
int template_render(const Templates *t, NluLang lang, const char *id, const TemplateVar *vars, size_t n, char **ret);

/* The declared table, for tests and tools: how many ids, the i-th id (NULL
 * past the end), and whether id may use placeholder name ({store} is
 * allowed in every template). */
size_t template_n_ids(void);
const char *template_id(size_t i);
bool template_id_allows(const char *id, const char *name);

/* Money as customers read it: pt "R$ 1.234,50", en "R$1,234.50"; a
 * negative amount gets a leading '-' ("-R$ 5,00").  Returns 0 and a new
 * string in *ret, -EINVAL for a language out of range, -ENOMEM. */
int format_money(int64_t cents, NluLang lang, char **ret);
