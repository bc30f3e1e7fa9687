/* SPDX-License-Identifier: MIT */
/*
 * fuzz-mail.c — libFuzzer harness for mail_parse(): any bytes as a raw
 * message, and the promises of mail.h checked on what comes out (valid
 * UTF-8 without control characters, bounded text, lower-case addresses).
 * The committed corpus is tests/fuzz/corpus/mail/.
 *
 * Not built by "make"; after ./configure, from the top of the tree:
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -include config.h -Isrc \
 *         tests/fuzz/fuzz-mail.c src/mail.c src/alloc.c src/strutil.c \
 *         $(pkg-config --cflags --libs gmime-3.0 jansson) -o fuzz-mail
 *   ./fuzz-mail -runs=0 tests/fuzz/corpus/mail              # replay the corpus, as CI does
 *   mkdir -p new && ./fuzz-mail -max_len=65536 new tests/fuzz/corpus/mail   # fuzz; finds go to new/
 *
 * Security: feeds untrusted bytes to the parser; that is the point.
 */
#include "mail.h"

#include <glib.h> /* after macro.h: GLib replaces its MIN and MAX */
#include <stdint.h>
#include <stdlib.h>

#define MAX_TEXT 512

static void check_text(const char *s, bool one_line) {
        if (!s)
                return;
        if (!g_utf8_validate(s, -1, NULL))
                abort();
        for (const unsigned char *p = (const unsigned char *) s; *p; p++)
                if ((*p < 0x20 && !(!one_line && (*p == '\n' || *p == '\t'))) || *p == 0x7F)
                        abort();
}

static void check_addr(const char *s) {
        check_text(s, true);
        for (; s && *s; s++)
                if (*s >= 'A' && *s <= 'Z')
                        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *own[] = { "pedidos@pizzaria.example", NULL }, *trusted[] = { "mx.pizzaria.example", NULL };
        MailParseOptions o = {
                .max_text = MAX_TEXT,
                .own_addresses = own,
                .trusted_authserv_ids = trusted,
        };
        MailContent *m = NULL;

        mail_init();
        if (mail_parse(data, size, &o, &m) < 0)
                return 0;

        check_text(m->text, false);
        if (strlen(m->text) > MAX_TEXT)
                abort();
        check_text(m->subject, true);
        check_text(m->message_id, true);
        check_text(m->in_reply_to, true);
        check_addr(m->from);
        for (char **t = m->to; *t; t++)
                check_addr(*t);
        for (char **t = m->references; *t; t++)
                check_text(*t, true);
        if (!mail_ignore_to_string(m->ignore) || !mail_auth_to_string(mail_authenticated(m)))
                abort();

        mail_content_free(m);
        return 0;
}
