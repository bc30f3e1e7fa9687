/* SPDX-License-Identifier: MIT */
/*
 * template.c — the declared template table, the template reader and the
 * renderer, and format_money().
 *
 * A template is kept as the text of its file without comments; it was
 * checked entirely when it was read, so rendering only copies text and
 * values.  Adding a template is one row in template_decls[] and one file
 * per language (and one line each in Makefile.am).
 *
 * Security: see template.h.  Files are read with a bound (one byte past
 * TEMPLATE_FILE_MAX tells a file that is too large); output grows with
 * overflow-checked sizes up to TEMPLATE_OUTPUT_MAX.
 */
#include "template.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <sys/stat.h>

#include "alloc.h"
#include "normalize.h"
#include "strutil.h"

typedef struct TemplateDecl {
        const char *id;
        const char *placeholders; /* space-separated, without braces; {store} is always allowed */
} TemplateDecl;

/* Every reply the daemon can send, and what each may say.  The conversation
 * relies on these ids and names: add, do not rename. */
static const TemplateDecl template_decls[] = {
        { "ask_items", "" },
        { "ask_address", "items" },
        { "ask_neighbourhood", "address" },
        { "outside_zone", "address zones" },
        { "ask_payment", "total" },
        { "sold_out", "item alternatives" },
        { "item_unknown", "" },
        { "summary", "lines subtotal fee total eta_minutes address zone payment" },
        { "summary_line", "qty name price" },
        { "order_placed", "order_id total eta_time eta_minutes" },
        { "ask_change", "" },
        { "cart_updated", "lines total" },
        { "cart_expired", "" },
        { "cart_cleared", "" },
        { "mail_unauthenticated", "" },
        { "menu", "lines" },
        { "menu_line", "name price" },
        { "menu_line_sold_out", "name price" },
        { "help", "" },
        { "opted_out", "" },
        { "opted_in", "" },
        { "handoff", "" },
        { "handoff_alert", "customer text" },
        { "handoff_alert_subject", "customer" },
        { "handoff_resumed", "" },
        { "fallback", "" },
        { "no_order", "" },
        { "unknown_order", "order_id" },
        { "status", "order_id status eta_time" },
        { "eta", "order_id eta_time eta_minutes" },
        { "status_name_created", "" },
        { "status_name_confirmed", "" },
        { "status_name_preparing", "" },
        { "status_name_ready", "" },
        { "status_name_in_delivery", "" },
        { "status_name_delivered", "" },
        { "status_name_cancelled", "" },
        { "payment_name_pix", "" },
        { "payment_name_card", "" },
        { "payment_name_cash", "" },
        { "payment_name_cash_change", "change" },
        { "cancel_ask", "order_id" },
        { "cancel_kept", "order_id" },
        { "change_address_ask", "order_id" },
        { "request_forwarded", "order_id" },
        { "email_subject", "" },
        { "notify_confirmed", "order_id eta_time tracking_url" },
        { "notify_preparing", "order_id" },
        { "notify_ready", "order_id" },
        { "notify_in_delivery", "order_id eta_time" },
        { "notify_delivered", "order_id" },
        { "notify_cancelled", "order_id reason" },
        { "notify_delay", "order_id eta_time" },
        { "pix_code", "order_id total code" },
        { "reason_unavailable", "" },
        { "reason_payment", "" },
        { "reason_customer", "" },
        { "reason_timeout", "" },
        { "reason_address", "" },
        { "reason_error", "" },
        { "notify_address_changed", "order_id address fee total eta_time" },
        { "notify_address_refused", "order_id address" },
        { "cancel_refused", "order_id status" },
        { "change_address_refused", "order_id status" },
};

#define N_TEMPLATES ELEMENTSOF(template_decls)
#define PLACEHOLDER_NAME_MAX 64

static const char *const lang_dirs[_NLU_LANG_MAX] = {
        [NLU_LANG_PT] = "pt-BR",
        [NLU_LANG_EN] = "en",
};

struct Templates {
        char *texts[_NLU_LANG_MAX][N_TEMPLATES];
        char *store;
};

const char *template_lang_dir(NluLang lang) {
        if ((unsigned) lang >= _NLU_LANG_MAX)
                return NULL;
        return lang_dirs[lang];
}

size_t template_n_ids(void) {
        return N_TEMPLATES;
}

const char *template_id(size_t i) {
        return i < N_TEMPLATES ? template_decls[i].id : NULL;
}

static ssize_t decl_index(const char *id) {
        for (size_t i = 0; i < N_TEMPLATES; i++)
                if (streq(template_decls[i].id, id))
                        return (ssize_t) i;
        return -ENOENT;
}

/* Whether the space-separated list has the word name[0..len). */
static bool list_has(const char *list, const char *name, size_t len) {
        const char *p = list;

        while (*p) {
                size_t l = strcspn(p, " ");
                if (l == len && strncmp(p, name, len) == 0)
                        return true;
                p += l;
                p += strspn(p, " ");
        }
        return false;
}

static bool decl_allows(const TemplateDecl *d, const char *name, size_t len) {
        return (len == 5 && strncmp(name, "store", 5) == 0) || list_has(d->placeholders, name, len);
}

bool template_id_allows(const char *id, const char *name) {
        ssize_t i = decl_index(id);
        return i >= 0 && decl_allows(&template_decls[i], name, strlen(name));
}

Templates *templates_free(Templates *t) {
        if (!t)
                return NULL;
        for (size_t l = 0; l < _NLU_LANG_MAX; l++)
                for (size_t i = 0; i < N_TEMPLATES; i++)
                        free(t->texts[l][i]);
        free(t->store);
        free(t);
        return NULL;
}

int templates_set_store(Templates *t, const char *store) {
        char *s = mem_strdup(strempty(store));
        if (!s)
                return -ENOMEM;
        free(t->store);
        t->store = s;
        return 0;
}

static bool name_char(char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

/* "{a}, {b} and {store}": what template d may use, for a message. */
static void format_allowed(const TemplateDecl *d, char *buf, size_t size) {
        size_t o = 0;

        buf[0] = '\0';
        for (const char *p = d->placeholders; *p && o < size;) {
                size_t l = strcspn(p, " ");
                o += (size_t) snprintf(buf + o, size - o, "{%.*s}, ", (int) l, p);
                p += l;
                p += strspn(p, " ");
        }
        if (o >= 2 && o < size)
                buf[o - 2] = '\0'; /* the last ", " */
        o = strlen(buf);
        snprintf(buf + o, size - o, "%s{store}", o > 0 ? " and " : "");
}

/* Check the placeholders and braces of one line (len bytes, no line
 * break) of template d; report at file:line.  Returns whether it is good. */
static bool check_line(const TemplateDecl *d, const char *file, unsigned line, const char *s, size_t len,
                       Diags *diags) {
        bool ok = true;

        for (size_t i = 0; i < len; i++) {
                if (s[i] == '}') {
                        if (i + 1 < len && s[i + 1] == '}') {
                                i++;
                                continue;
                        }
                        diags_add(diags, file, line, "'}' without '{' (write '}}' for a literal brace)");
                        ok = false;
                        continue;
                }
                if (s[i] != '{')
                        continue;
                if (i + 1 < len && s[i + 1] == '{') {
                        i++;
                        continue;
                }
                const char *end = memchr(s + i + 1, '}', len - i - 1);
                if (!end) {
                        diags_add(diags, file, line, "unterminated '{' (write '{{' for a literal brace)");
                        return false;
                }
                const char *name = s + i + 1;
                size_t nlen = (size_t) (end - name);
                bool valid = nlen > 0 && nlen <= PLACEHOLDER_NAME_MAX;
                for (size_t k = 0; valid && k < nlen; k++)
                        valid = name_char(name[k]);
                if (!valid) {
                        diags_add(diags, file, line,
                                  "invalid placeholder '{%.*s}' (lower-case letters, digits and '_'; write '{{' for a "
                                  "literal brace)",
                                  (int) MIN(nlen, (size_t) 80), name);
                        ok = false;
                } else if (!decl_allows(d, name, nlen)) {
                        char allowed[512];
                        format_allowed(d, allowed, sizeof allowed);
                        diags_add(diags, file, line,
                                  "placeholder {%.*s} is not declared for template %s (it may use: %s)", (int) nlen,
                                  name, d->id, allowed);
                        ok = false;
                }
                i = (size_t) (end - s);
        }
        return ok;
}

/* Read at most TEMPLATE_FILE_MAX bytes of path into a new NUL-terminated
 * buffer.  -errno of the open or read, -EFBIG for a larger file, -EISDIR
 * for anything but a regular file, -ENOMEM. */
static int read_bounded(const char *path, char **ret, size_t *ret_len) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *buf = NULL;
        struct stat st;
        size_t len = 0;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EISDIR;
        buf = mem_malloc(TEMPLATE_FILE_MAX + 2);
        if (!buf)
                return -ENOMEM;
        while (len < TEMPLATE_FILE_MAX + 1) {
                ssize_t k = read(fd, buf + len, TEMPLATE_FILE_MAX + 1 - len);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        break;
                len += (size_t) k;
        }
        if (len > TEMPLATE_FILE_MAX)
                return -EFBIG;
        buf[len] = '\0';
        *ret = TAKE_PTR(buf);
        *ret_len = len;
        return 0;
}

/* The text of one template file: comments out, "\r\n" as "\n", the last
 * line break dropped, every line checked.  Returns 0 and the text, -EINVAL
 * (reported), -ENOMEM. */
static int load_one(const TemplateDecl *d, const char *path, char **ret, Diags *diags) {
        _cleanup_free_ char *raw = NULL, *out = NULL;
        size_t len = 0, o = 0;
        unsigned line = 0;
        bool ok = true;
        int r;

        r = read_bounded(path, &raw, &len);
        if (r == -ENOMEM)
                return r;
        if (r == -EFBIG) {
                diags_add(diags, path, 0, "template is larger than %d bytes", TEMPLATE_FILE_MAX);
                return -EINVAL;
        }
        if (r == -EISDIR) {
                diags_add(diags, path, 0, "cannot read template: not a regular file");
                return -EINVAL;
        }
        if (r < 0) {
                diags_add(diags, path, 0, "cannot read template: %s", strerror(-r));
                return -EINVAL;
        }

        out = mem_malloc(len + 1);
        if (!out)
                return -ENOMEM;

        for (size_t p = 0; p < len;) {
                const char *s = raw + p;
                const char *nl = memchr(s, '\n', len - p);
                size_t l = nl ? (size_t) (nl - s) : len - p;
                size_t next = p + l + (nl ? 1 : 0);

                line++;
                if (l > 0 && s[l - 1] == '\r')
                        l--;
                if (memchr(s, '\0', l)) {
                        diags_add(diags, path, line, "NUL byte in template");
                        ok = false;
                } else if (!normalize_utf8_valid(s, l)) {
                        diags_add(diags, path, line, "invalid UTF-8");
                        ok = false;
                } else if (l > 0 && s[0] == '#' && !(l > 1 && s[1] == '#')) {
                        p = next; /* a comment */
                        continue;
                } else {
                        if (l > 1 && s[0] == '#') { /* "##": a line that starts with '#' */
                                s++;
                                l--;
                        }
                        ok = check_line(d, path, line, s, l, diags) && ok;
                }
                memcpy(out + o, s, l);
                o += l;
                if (nl)
                        out[o++] = '\n';
                p = next;
        }
        if (o > 0 && out[o - 1] == '\n')
                o--; /* the file's last line break */
        out[o] = '\0';
        if (ok && o == 0) {
                diags_add(diags, path, 0, "template is empty");
                ok = false;
        }
        if (!ok)
                return -EINVAL;
        *ret = TAKE_PTR(out);
        return 0;
}

/* A file DIR/LANG/X.txt whose X is no declared id is likely a typo of one
 * that the admin meant to change: report it. */
static int check_unknown_files(const char *dir, Diags *diags) {
        DIR *d = opendir(dir);
        struct dirent *de;

        if (!d)
                return 0; /* reported by the caller */
        while ((de = readdir(d))) {
                size_t l = strlen(de->d_name);
                if (de->d_name[0] == '.' || l <= 4 || !streq(de->d_name + l - 4, ".txt"))
                        continue;
                _cleanup_free_ char *id = mem_strndup(de->d_name, l - 4);
                if (!id) {
                        closedir(d);
                        return -ENOMEM;
                }
                if (decl_index(id) < 0)
                        diags_add(diags, dir, 0, "%s: unknown template id '%s' (see deliveryd.conf(5))", de->d_name,
                                  id);
        }
        closedir(d);
        return 0;
}

int templates_load(const char *dir, Templates **ret, Diags *diags) {
        _cleanup_(templates_freep) Templates *t = NULL;
        Diags local = {};
        int r = 0;

        t = mem_new(Templates, 1);
        if (!t)
                return -ENOMEM;
        t->store = mem_strdup("");
        if (!t->store)
                return -ENOMEM;

        for (size_t l = 0; l < _NLU_LANG_MAX; l++) {
                _cleanup_free_ char *ldir = path_join_relative(dir, lang_dirs[l]);
                struct stat st;

                if (!ldir) {
                        r = -ENOMEM;
                        goto finish;
                }
                if (stat(ldir, &st) < 0) {
                        diags_add(&local, ldir, 0, "cannot read template directory: %s", strerror(errno));
                        continue;
                }
                if (!S_ISDIR(st.st_mode)) {
                        diags_add(&local, ldir, 0, "cannot read template directory: not a directory");
                        continue;
                }
                for (size_t i = 0; i < N_TEMPLATES; i++) {
                        _cleanup_free_ char *name = mem_printf("%s.txt", template_decls[i].id);
                        _cleanup_free_ char *path = name ? path_join_relative(ldir, name) : NULL;
                        if (!path) {
                                r = -ENOMEM;
                                goto finish;
                        }
                        r = load_one(&template_decls[i], path, &t->texts[l][i], &local);
                        if (r == -ENOMEM)
                                goto finish;
                }
                r = check_unknown_files(ldir, &local);
                if (r < 0)
                        goto finish;
        }

        r = diags_to_errno(&local);
        if (r >= 0)
                *ret = TAKE_PTR(t);
finish:
        diags_merge(diags, &local);
        diags_clear(&local);
        return r;
}

/* A growing output buffer bounded by TEMPLATE_OUTPUT_MAX. */
typedef struct Out {
        char *buf;
        size_t len, size;
} Out;

static int out_put(Out *o, const char *s, size_t len) {
        if (len > TEMPLATE_OUTPUT_MAX || o->len + len > TEMPLATE_OUTPUT_MAX)
                return -E2BIG;
        if (o->len + len + 1 > o->size) {
                size_t size = MAX(o->size * 2, o->len + len + 1);
                size = MIN(size, (size_t) TEMPLATE_OUTPUT_MAX + 1);
                char *b = mem_realloc(o->buf, size);
                if (!b)
                        return -ENOMEM;
                o->buf = b;
                o->size = size;
        }
        memcpy(o->buf + o->len, s, len);
        o->len += len;
        o->buf[o->len] = '\0';
        return 0;
}

static const char *var_value(const Templates *t, const TemplateVar *vars, size_t n, const char *name, size_t len) {
        for (size_t i = 0; i < n; i++)
                if (vars[i].name && strlen(vars[i].name) == len && strncmp(vars[i].name, name, len) == 0)
                        return strempty(vars[i].value);
        if (len == 5 && strncmp(name, "store", 5) == 0)
                return strempty(t->store);
        return "";
}

int template_render(const Templates *t, NluLang lang, const char *id, const TemplateVar *vars, size_t n, char **ret) {
        _cleanup_free_ char *buf = NULL;
        Out o = {};
        ssize_t i;
        int r = 0;

        if ((unsigned) lang >= _NLU_LANG_MAX)
                return -EINVAL;
        i = decl_index(id);
        if (i < 0)
                return -ENOENT;

        /* Checked at load: every '{' not doubled opens a declared name that '}' closes. */
        for (const char *s = t->texts[lang][i]; *s && r >= 0;) {
                size_t lit = strcspn(s, "{}");
                r = out_put(&o, s, lit);
                s += lit;
                if (r < 0 || !*s)
                        break;
                if (s[1] == s[0]) { /* "{{" or "}}" */
                        r = out_put(&o, s, 1);
                        s += 2;
                        continue;
                }
                const char *name = s + 1, *end = strchr(name, '}');
                const char *v = var_value(t, vars, n, name, (size_t) (end - name));
                r = out_put(&o, v, strlen(v));
                s = end + 1;
        }
        buf = o.buf;
        if (r < 0)
                return r;
        if (!buf) {
                buf = mem_strdup("");
                if (!buf)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(buf);
        return 0;
}

int format_money(int64_t cents, NluLang lang, char **ret) {
        /* The magnitude as unsigned, so that INT64_MIN has one too. */
        uint64_t m = cents < 0 ? (uint64_t) 0 - (uint64_t) cents : (uint64_t) cents;
        char digits[32], grouped[48];
        size_t nd, g = 0;
        char sep, dec;
        char *s;

        if ((unsigned) lang >= _NLU_LANG_MAX)
                return -EINVAL;
        sep = lang == NLU_LANG_PT ? '.' : ',';
        dec = lang == NLU_LANG_PT ? ',' : '.';

        nd = (size_t) snprintf(digits, sizeof digits, "%" PRIu64, m / 100);
        for (size_t i = 0; i < nd; i++) {
                if (i > 0 && (nd - i) % 3 == 0)
                        grouped[g++] = sep;
                grouped[g++] = digits[i];
        }
        grouped[g] = '\0';

        s = mem_printf("%sR$%s%s%c%02u", cents < 0 ? "-" : "", lang == NLU_LANG_PT ? " " : "", grouped, dec,
                       (unsigned) (m % 100));
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}
