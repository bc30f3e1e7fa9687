/* SPDX-License-Identifier: MIT */
/*
 * mail.c — from raw RFC 5322 bytes to a MailContent: GMime parses the
 * message and the MIME tree; this file picks the body part, converts its
 * charset, turns HTML into text, strips what the sender quoted or signed
 * (a data table of the patterns mail clients write), decides whether the
 * message comes from a robot, and reads the trusted Authentication-Results.
 * Everything it returns is allocated with mem_*() and owned by the caller.
 *
 * Security: every byte here is untrusted.  The raw size is checked before
 * GMime sees it; the header count, MIME depth and part count are bounded;
 * every scan below is linear in the input (no backtracking, no rescans);
 * output strings are validated UTF-8 with control characters removed, and
 * msg-ids and addresses that contain spaces or controls are dropped.
 * Authentication-Results from authserv-ids the caller does not trust are
 * ignored: anyone can write one.  GMime and GLib allocate with g_malloc(),
 * which aborts on OOM; that is accepted (the daemon restarts), while every
 * allocation of ours fails cleanly with -ENOMEM.
 */
#include "mail.h"

#include <gmime/gmime.h>
#include <iconv.h>
#include <stdint.h>
#include <string.h>

#include "alloc.h"
#include "strutil.h"

/* Longest subject kept (bytes; cut at a UTF-8 boundary). */
#define SUBJECT_MAX 1024
/* Longer msg-ids are dropped: no real one comes close, and they are keys. */
#define MSGID_MAX 512
/* RFC 5321 limits a path to 256 octets; allow some slack for odd senders. */
#define ADDR_MAX 320
/* An attribution ("On … wrote:") may be wrapped over this many lines. */
#define ATTRIBUTION_LINES 3
#define ATTRIBUTION_MAX 400
/* A header block ("From:" … "Subject:") is looked for this far down. */
#define HEADER_BLOCK_LINES 6
/* A mobile footer is one short line. */
#define FOOTER_MAX 80
/* Lines beginning with "--" allowed per MIME part of max_parts (see prescan()). */
#define DELIMITERS_PER_PART 64

static bool initialized;

void mail_init(void) {
        if (initialized)
                return;
        g_mime_init();
        initialized = true;
}

void mail_shutdown(void) {
        if (!initialized)
                return;
        g_mime_shutdown();
        initialized = false;
}

static void gobject_unrefp(void *p) {
        GObject **o = p;
        if (*o)
                g_object_unref(*o);
}
#define _cleanup_gobject_ _cleanup_(gobject_unrefp)

static void parser_options_freep(GMimeParserOptions **o) {
        if (*o)
                g_mime_parser_options_free(*o);
}

static void references_freep(GMimeReferences **r) {
        if (*r)
                g_mime_references_free(*r);
}

/* ---- names ---------------------------------------------------------------- */

static const char *const ignore_table[_MAIL_IGNORE_MAX] = {
        [MAIL_IGNORE_NONE] = "none",     [MAIL_IGNORE_OURSELVES] = "ourselves",
        [MAIL_IGNORE_BOUNCE] = "bounce", [MAIL_IGNORE_AUTO_SUBMITTED] = "auto-submitted",
        [MAIL_IGNORE_LIST] = "list",     [MAIL_IGNORE_BULK] = "bulk",
};

static const char *const auth_result_table[_MAIL_AUTH_RESULT_MAX] = {
        [MAIL_AUTH_RESULT_MISSING] = "missing",     [MAIL_AUTH_RESULT_NONE] = "none",
        [MAIL_AUTH_RESULT_PASS] = "pass",           [MAIL_AUTH_RESULT_FAIL] = "fail",
        [MAIL_AUTH_RESULT_SOFTFAIL] = "softfail",   [MAIL_AUTH_RESULT_NEUTRAL] = "neutral",
        [MAIL_AUTH_RESULT_POLICY] = "policy",       [MAIL_AUTH_RESULT_TEMPERROR] = "temperror",
        [MAIL_AUTH_RESULT_PERMERROR] = "permerror",
};

static const char *const auth_table[_MAIL_AUTH_MAX] = {
        [MAIL_AUTH_UNKNOWN] = "unknown",
        [MAIL_AUTH_AUTHENTICATED] = "authenticated",
        [MAIL_AUTH_UNAUTHENTICATED] = "unauthenticated",
};

static const char *table_name(const char *const *table, size_t n, int i) {
        if (i < 0 || (size_t) i >= n)
                return NULL;
        return table[i];
}

static int table_lookup(const char *const *table, size_t n, const char *s) {
        if (!s)
                return -EINVAL;
        for (size_t i = 0; i < n; i++)
                if (table[i] && g_ascii_strcasecmp(table[i], s) == 0)
                        return (int) i;
        return -EINVAL;
}

const char *mail_ignore_to_string(MailIgnore i) {
        return table_name(ignore_table, _MAIL_IGNORE_MAX, i);
}

MailIgnore mail_ignore_from_string(const char *s) {
        return (MailIgnore) table_lookup(ignore_table, _MAIL_IGNORE_MAX, s);
}

const char *mail_auth_result_to_string(MailAuthResult r) {
        return table_name(auth_result_table, _MAIL_AUTH_RESULT_MAX, r);
}

MailAuthResult mail_auth_result_from_string(const char *s) {
        int r = table_lookup(auth_result_table, _MAIL_AUTH_RESULT_MAX, s);
        /* "missing" is ours, not a result anybody can state. */
        return r == MAIL_AUTH_RESULT_MISSING ? _MAIL_AUTH_RESULT_INVALID : (MailAuthResult) r;
}

const char *mail_auth_to_string(MailAuth a) {
        return table_name(auth_table, _MAIL_AUTH_MAX, a);
}

MailAuth mail_auth_from_string(const char *s) {
        return (MailAuth) table_lookup(auth_table, _MAIL_AUTH_MAX, s);
}

MailAuthResult mail_auth_result_from_ses(const char *status) {
        /* The verdict statuses of SES receipt notifications. */
        static const struct {
                const char *status;
                MailAuthResult result;
        } ses[] = {
                { "PASS", MAIL_AUTH_RESULT_PASS },
                { "FAIL", MAIL_AUTH_RESULT_FAIL },
                /* SES could not tell: no SPF record, no DKIM signature, no DMARC policy */
                { "GRAY", MAIL_AUTH_RESULT_NONE },
                /* a transient problem at SES (DNS), i.e. RFC 8601's temperror */
                { "PROCESSING_FAILED", MAIL_AUTH_RESULT_TEMPERROR },
        };

        if (status)
                for (size_t i = 0; i < ELEMENTSOF(ses); i++)
                        if (streq(status, ses[i].status))
                                return ses[i].result;
        return _MAIL_AUTH_RESULT_INVALID;
}

/* ---- growable buffer ------------------------------------------------------ */

typedef struct Buf {
        char *data; /* always NUL-terminated once allocated */
        size_t len, cap;
} Buf;

static void buf_done(Buf *b) {
        free(b->data);
        *b = (Buf){};
}

static int buf_reserve(Buf *b, size_t extra) {
        size_t need, cap;
        char *p;

        if (extra > SIZE_MAX - b->len - 1)
                return -ENOMEM;
        need = b->len + extra + 1;
        if (need <= b->cap)
                return 0;
        cap = b->cap > SIZE_MAX / 2 ? need : MAX(b->cap * 2, MAX(need, (size_t) 64));
        p = mem_realloc(b->data, cap);
        if (!p)
                return -ENOMEM;
        b->data = p;
        b->cap = cap;
        return 0;
}

static int buf_put(Buf *b, const char *s, size_t n) {
        int r = buf_reserve(b, n);
        if (r < 0)
                return r;
        if (n > 0)
                memcpy(b->data + b->len, s, n);
        b->len += n;
        b->data[b->len] = '\0';
        return 0;
}

static int buf_putc(Buf *b, char c) {
        return buf_put(b, &c, 1);
}

/* cp must be a Unicode scalar value. */
static int buf_put_cp(Buf *b, uint32_t cp) {
        char u[4];
        size_t n;

        if (cp < 0x80) {
                u[0] = (char) cp;
                n = 1;
        } else if (cp < 0x800) {
                u[0] = (char) (0xC0 | (cp >> 6));
                u[1] = (char) (0x80 | (cp & 0x3F));
                n = 2;
        } else if (cp < 0x10000) {
                u[0] = (char) (0xE0 | (cp >> 12));
                u[1] = (char) (0x80 | ((cp >> 6) & 0x3F));
                u[2] = (char) (0x80 | (cp & 0x3F));
                n = 3;
        } else {
                u[0] = (char) (0xF0 | (cp >> 18));
                u[1] = (char) (0x80 | ((cp >> 12) & 0x3F));
                u[2] = (char) (0x80 | ((cp >> 6) & 0x3F));
                u[3] = (char) (0x80 | (cp & 0x3F));
                n = 4;
        }
        return buf_put(b, u, n);
}

/* The contents as a string of its own (possibly ""), leaving b empty. */
static char *buf_steal(Buf *b) {
        if (buf_reserve(b, 0) < 0)
                return NULL;
        b->data[b->len] = '\0';
        char *s = b->data;
        *b = (Buf){};
        return s;
}

/* ---- lines ------------------------------------------------------------------ */

typedef struct Span {
        const char *p;
        size_t n;
} Span;

static bool is_blank(char c) {
        return c == ' ' || c == '\t';
}

/* The line that starts at *pos, without its '\n'; false at the end. */
static bool next_line(const char *s, size_t len, size_t *pos, Span *ret) {
        const char *nl;

        if (*pos >= len)
                return false;
        nl = memchr(s + *pos, '\n', len - *pos);
        ret->p = s + *pos;
        ret->n = nl ? (size_t) (nl - ret->p) : len - *pos;
        *pos += ret->n + (nl ? 1 : 0);
        return true;
}

static Span span_trim(Span l) {
        while (l.n > 0 && is_blank(l.p[0])) {
                l.p++;
                l.n--;
        }
        while (l.n > 0 && is_blank(l.p[l.n - 1]))
                l.n--;
        return l;
}

static Span span_rstrip(Span l) {
        while (l.n > 0 && is_blank(l.p[l.n - 1]))
                l.n--;
        return l;
}

static bool span_starts_with(Span l, const char *prefix) {
        size_t k = strlen(prefix);
        return l.n >= k && g_ascii_strncasecmp(l.p, prefix, k) == 0;
}

static bool span_ends_with(Span l, const char *suffix) {
        size_t k = strlen(suffix);
        return l.n >= k && g_ascii_strncasecmp(l.p + l.n - k, suffix, k) == 0;
}

static bool span_equal(Span l, const char *s) {
        return l.n == strlen(s) && g_ascii_strncasecmp(l.p, s, l.n) == 0;
}

static bool span_has_digit(Span l) {
        for (size_t i = 0; i < l.n; i++)
                if (g_ascii_isdigit(l.p[i]))
                        return true;
        return false;
}

/* ---- UTF-8 and charsets -------------------------------------------------- */

/* Length of the well-formed UTF-8 sequence at s (at most n bytes) with its
 * code point in *ret, or 0 when there is none there (RFC 3629: no overlong
 * forms, no surrogates, nothing above U+10FFFF). */
static size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *ret) {
        uint32_t c = s[0], min;
        size_t len;

        if (c < 0x80) {
                *ret = c;
                return 1;
        }
        if (c < 0xC2)
                return 0;
        if (c < 0xE0) {
                len = 2;
                c &= 0x1F;
                min = 0x80;
        } else if (c < 0xF0) {
                len = 3;
                c &= 0x0F;
                min = 0x800;
        } else if (c < 0xF5) {
                len = 4;
                c &= 0x07;
                min = 0x10000;
        } else
                return 0;
        if (n < len)
                return 0;
        for (size_t i = 1; i < len; i++) {
                if ((s[i] & 0xC0) != 0x80)
                        return 0;
                c = (c << 6) | (s[i] & 0x3F);
        }
        if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
                return 0;
        *ret = c;
        return len;
}

static bool utf8_valid(const char *s, size_t n) {
        const unsigned char *p = (const unsigned char *) s;
        uint32_t cp;

        for (size_t i = 0, k; i < n; i += k) {
                k = utf8_decode(p + i, n - i, &cp);
                if (k == 0)
                        return false;
        }
        return true;
}

/* Windows-1252 0x80–0x9F; the rest of it is ISO-8859-1.  The five holes
 * become U+FFFD. */
static const uint16_t cp1252_high[32] = {
        0x20AC, 0xFFFD, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
        0x2039, 0x0152, 0xFFFD, 0x017D, 0xFFFD, 0xFFFD, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
        0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0xFFFD, 0x017E, 0x0178,
};

static uint32_t cp1252_decode(unsigned char c) {
        return c >= 0x80 && c < 0xA0 ? cp1252_high[c - 0x80] : c;
}

/* Append cp unless it is a control character (tab and newline excepted, or
 * turned into a space on one line), a C1 control or a byte-order mark; a
 * no-break space becomes a plain space. */
static int put_text_cp(Buf *b, uint32_t cp, bool one_line) {
        if (cp == '\n' || cp == '\t')
                return buf_putc(b, one_line ? ' ' : (char) cp);
        if (cp == 0xA0)
                return buf_putc(b, ' ');
        if (cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp < 0xA0) || cp == 0xFEFF)
                return 0;
        return buf_put_cp(b, cp);
}

typedef enum Decode {
        DECODE_UTF8, /* UTF-8, a byte that is not part of a valid sequence read as Windows-1252 */
        DECODE_CP1252, /* every byte Windows-1252 */
} Decode;

/* Append s as filtered UTF-8 with "\r\n" and lone '\r' made '\n'. */
static int decode_text(Buf *out, const char *s, size_t n, Decode mode, bool one_line) {
        const unsigned char *p = (const unsigned char *) s;
        int r;

        r = buf_reserve(out, n);
        if (r < 0)
                return r;
        for (size_t i = 0, k; i < n; i += k) {
                uint32_t cp;

                if (p[i] == '\r') {
                        cp = '\n';
                        k = i + 1 < n && p[i + 1] == '\n' ? 2 : 1;
                } else if (mode != DECODE_UTF8 || (k = utf8_decode(p + i, n - i, &cp)) == 0) {
                        cp = cp1252_decode(p[i]);
                        k = 1;
                }
                r = put_text_cp(out, cp, one_line);
                if (r < 0)
                        return r;
        }
        return 0;
}

static bool charset_in(const char *charset, const char *const *names) {
        for (size_t i = 0; names[i]; i++)
                if (g_ascii_strcasecmp(charset, names[i]) == 0)
                        return true;
        return false;
}

/* Labels that promise ASCII or UTF-8, or say nothing useful. */
static const char *const charsets_utf8[] = {
        "utf-8", "utf8", "us-ascii", "ascii", "ansi_x3.4-1968", "unknown-8bit", "x-unknown", "default", NULL,
};

/* Western labels: Windows-1252 is a superset of ISO-8859-1 in all but the
 * C1 controls nobody writes, and is what "ISO-8859-1" mail usually is. */
static const char *const charsets_western[] = {
        "iso-8859-1", "iso8859-1", "iso_8859-1", "latin1", "l1", "windows-1252", "cp1252", "x-cp1252", NULL,
};

/* Convert with iconv (through GMime's charset aliases).  -EINVAL for a
 * charset iconv does not know, -EILSEQ when the text is not in it. */
static int iconv_to_utf8(const char *s, size_t n, const char *charset, Buf *out) {
        iconv_t cd = g_mime_iconv_open("UTF-8", charset);
        char *in = (char *) s;
        size_t inleft = n;
        bool flushing = false;
        int r = 0;

        if (cd == (iconv_t) -1)
                return -EINVAL;
        r = buf_reserve(out, n + 16);
        while (r >= 0) {
                char *o = out->data + out->len;
                size_t oleft = out->cap - out->len - 1, k;

                k = flushing ? iconv(cd, NULL, NULL, &o, &oleft) : iconv(cd, &in, &inleft, &o, &oleft);
                out->len = (size_t) (o - out->data);
                out->data[out->len] = '\0';
                if (k != (size_t) -1) {
                        if (flushing)
                                break;
                        flushing = true;
                } else if (errno == E2BIG)
                        r = buf_reserve(out, MAX(inleft, (size_t) 16) * 2);
                else
                        r = -EILSEQ;
        }
        g_mime_iconv_close(cd);
        return r;
}

/* Body bytes in the given charset to filtered UTF-8.  A missing or wrong
 * label falls back to UTF-8, then Windows-1252: invalid UTF-8 never comes
 * out. */
static int to_utf8(const char *s, size_t n, const char *charset, Buf *out) {
        _cleanup_(buf_done) Buf tmp = {};
        int r;

        if (isempty(charset) || charset_in(charset, charsets_utf8))
                return decode_text(out, s, n, DECODE_UTF8, false);
        if (charset_in(charset, charsets_western))
                /* text that is valid UTF-8 was mislabelled: Latin-1 prose never is */
                return decode_text(out, s, n, utf8_valid(s, n) ? DECODE_UTF8 : DECODE_CP1252, false);

        r = iconv_to_utf8(s, n, charset, &tmp);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return decode_text(out, s, n, DECODE_UTF8, false);
        return decode_text(out, tmp.data, tmp.len, DECODE_UTF8, false);
}

/* A header value on one line, filtered, trimmed, at most max bytes (cut at a
 * UTF-8 boundary).  *ret = NULL when nothing is left. */
static int copy_line(const char *s, size_t max, char **ret) {
        _cleanup_(buf_done) Buf b = {};
        Span t;
        int r;

        *ret = NULL;
        if (!s)
                return 0;
        r = decode_text(&b, s, strlen(s), DECODE_UTF8, true);
        if (r < 0)
                return r;
        if (b.len == 0)
                return 0;
        t = span_trim((Span){ b.data, b.len });
        if (t.n > max) {
                t.n = max;
                while (t.n > 0 && ((unsigned char) t.p[t.n] & 0xC0) == 0x80)
                        t.n--;
                t = span_trim(t);
        }
        if (t.n == 0)
                return 0;
        *ret = mem_strndup(t.p, t.n);
        return *ret ? 0 : -ENOMEM;
}

/* ---- HTML to text ----------------------------------------------------------- */

/* Named character references worth knowing in Portuguese and English mail;
 * an unknown one stays as written. */
static const struct {
        const char *name;
        uint16_t cp;
} html_entities[] = {
        { "nbsp", 0xA0 },     { "amp", '&' },      { "lt", '<' },        { "gt", '>' },       { "quot", '"' },
        { "apos", '\'' },     { "aacute", 0xE1 },  { "Aacute", 0xC1 },   { "agrave", 0xE0 },  { "Agrave", 0xC0 },
        { "acirc", 0xE2 },    { "Acirc", 0xC2 },   { "atilde", 0xE3 },   { "Atilde", 0xC3 },  { "auml", 0xE4 },
        { "eacute", 0xE9 },   { "Eacute", 0xC9 },  { "egrave", 0xE8 },   { "ecirc", 0xEA },   { "Ecirc", 0xCA },
        { "iacute", 0xED },   { "Iacute", 0xCD },  { "oacute", 0xF3 },   { "Oacute", 0xD3 },  { "ocirc", 0xF4 },
        { "Ocirc", 0xD4 },    { "otilde", 0xF5 },  { "Otilde", 0xD5 },   { "ouml", 0xF6 },    { "uacute", 0xFA },
        { "Uacute", 0xDA },   { "uuml", 0xFC },    { "Uuml", 0xDC },     { "ccedil", 0xE7 },  { "Ccedil", 0xC7 },
        { "ntilde", 0xF1 },   { "Ntilde", 0xD1 },  { "ordf", 0xAA },     { "ordm", 0xBA },    { "deg", 0xB0 },
        { "copy", 0xA9 },     { "reg", 0xAE },     { "trade", 0x2122 },  { "euro", 0x20AC },  { "cent", 0xA2 },
        { "pound", 0xA3 },    { "sect", 0xA7 },    { "para", 0xB6 },     { "middot", 0xB7 },  { "times", 0xD7 },
        { "divide", 0xF7 },   { "laquo", 0xAB },   { "raquo", 0xBB },    { "iexcl", 0xA1 },   { "iquest", 0xBF },
        { "hellip", 0x2026 }, { "mdash", 0x2014 }, { "ndash", 0x2013 },  { "lsquo", 0x2018 }, { "rsquo", 0x2019 },
        { "sbquo", 0x201A },  { "ldquo", 0x201C }, { "rdquo", 0x201D },  { "bdquo", 0x201E }, { "bull", 0x2022 },
        { "ensp", 0x2002 },   { "emsp", 0x2003 },  { "thinsp", 0x2009 }, { "shy", 0xAD },     { "zwnj", 0x200C },
        { "zwj", 0x200D },    { "lrm", 0x200E },   { "rlm", 0x200F },
};

typedef enum HtmlBreak {
        BREAK_LINE, /* <br>: a new line, even an empty one */
        BREAK_BLOCK, /* a block: starts and ends on a line of its own */
        BREAK_QUOTE, /* <blockquote>: a block whose lines get "> " */
        BREAK_PRE, /* <pre>: a block whose white space is kept */
        BREAK_CELL, /* <td>, <th>: cells of a row are separated by a space */
} HtmlBreak;

static const struct {
        const char *name;
        HtmlBreak kind;
} html_breaks[] = {
        { "br", BREAK_LINE },          { "p", BREAK_BLOCK },       { "div", BREAK_BLOCK },
        { "li", BREAK_BLOCK },         { "tr", BREAK_BLOCK },      { "table", BREAK_BLOCK },
        { "ul", BREAK_BLOCK },         { "ol", BREAK_BLOCK },      { "dl", BREAK_BLOCK },
        { "dt", BREAK_BLOCK },         { "dd", BREAK_BLOCK },      { "h1", BREAK_BLOCK },
        { "h2", BREAK_BLOCK },         { "h3", BREAK_BLOCK },      { "h4", BREAK_BLOCK },
        { "h5", BREAK_BLOCK },         { "h6", BREAK_BLOCK },      { "hr", BREAK_BLOCK },
        { "center", BREAK_BLOCK },     { "address", BREAK_BLOCK }, { "section", BREAK_BLOCK },
        { "article", BREAK_BLOCK },    { "header", BREAK_BLOCK },  { "footer", BREAK_BLOCK },
        { "blockquote", BREAK_QUOTE }, { "pre", BREAK_PRE },       { "td", BREAK_CELL },
        { "th", BREAK_CELL },
};

/* Elements whose content is not text for the reader. */
static const char *const html_dropped[] = { "head", "style", "script", "title", "template", NULL };

typedef struct Html {
        Buf *out;
        unsigned quote; /* <blockquote> depth */
        bool space; /* white space since the last text */
        bool pre;
        bool no_head_end; /* there is no "</head" further on: stop looking */
} Html;

static bool html_at_line_start(const Html *h) {
        return h->out->len == 0 || h->out->data[h->out->len - 1] == '\n';
}

static int html_newline(Html *h) {
        h->space = false;
        return html_at_line_start(h) ? 0 : buf_putc(h->out, '\n');
}

static int html_text(Html *h, const char *s, size_t n) {
        int r = 0;

        if (html_at_line_start(h)) {
                for (unsigned i = 0; r >= 0 && i < h->quote; i++)
                        r = buf_putc(h->out, '>');
                if (r >= 0 && h->quote > 0)
                        r = buf_putc(h->out, ' ');
        } else if (h->space)
                r = buf_putc(h->out, ' ');
        h->space = false;
        return r < 0 ? r : buf_put(h->out, s, n);
}

static int html_cp(Html *h, uint32_t cp) {
        _cleanup_(buf_done) Buf u = {};
        int r;

        if (cp == ' ' || cp == '\t' || cp == '\n' || cp == '\r') {
                h->space = true;
                return 0;
        }
        if (cp == 0xA0 || cp == 0x2002 || cp == 0x2003 || cp == 0x2009)
                return html_text(h, " ", 1); /* a space that does not collapse */
        if (cp == 0xAD || (cp >= 0x200B && cp <= 0x200F))
                return 0; /* soft hyphen, zero-width and direction marks */
        r = put_text_cp(&u, cp, false);
        if (r < 0 || u.len == 0)
                return r;
        return html_text(h, u.data, u.len);
}

/* Position of the first case-insensitive needle in s[from, n), or n. */
static size_t find_ci(const char *s, size_t n, size_t from, const char *needle) {
        size_t k = strlen(needle);

        for (size_t i = from; i + k <= n; i++)
                if (g_ascii_strncasecmp(s + i, needle, k) == 0)
                        return i;
        return n;
}

/* Index just past the '>' that ends the tag whose name ends at i; quoted
 * attribute values may contain '>'.  n when there is none. */
static size_t html_tag_end(const char *s, size_t n, size_t i) {
        char q = 0;

        for (; i < n; i++) {
                if (q) {
                        if (s[i] == q)
                                q = 0;
                } else if (s[i] == '"' || s[i] == '\'')
                        q = s[i];
                else if (s[i] == '>')
                        return i + 1;
        }
        return n;
}

/* A character reference at s[i] == '&'; returns its length, 0 if there is
 * none (then '&' is text). */
static size_t html_entity(const char *s, size_t n, size_t i, uint32_t *ret) {
        size_t j = i + 1;

        if (j < n && s[j] == '#') {
                bool hex = j + 1 < n && (s[j + 1] == 'x' || s[j + 1] == 'X');
                uint32_t v = 0;
                size_t digits = 0;

                for (j += hex ? 2 : 1; j < n && digits < 8; j++, digits++) {
                        int d = hex ? g_ascii_xdigit_value(s[j]) : g_ascii_digit_value(s[j]);
                        if (d < 0)
                                break;
                        v = v * (hex ? 16 : 10) + (uint32_t) d;
                }
                if (digits == 0 || j >= n || s[j] != ';')
                        return 0;
                /* HTML reads 0x80–0x9F as Windows-1252; the rest must be a scalar value */
                if (v >= 0x80 && v < 0xA0)
                        v = cp1252_high[v - 0x80];
                else if (v == 0 || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
                        v = 0xFFFD;
                *ret = v;
                return j + 1 - i;
        }

        while (j < n && j - i <= 32 && g_ascii_isalnum(s[j]))
                j++;
        if (j >= n || s[j] != ';' || j == i + 1)
                return 0;
        for (size_t e = 0; e < ELEMENTSOF(html_entities); e++)
                if (strlen(html_entities[e].name) == j - i - 1 &&
                    memcmp(html_entities[e].name, s + i + 1, j - i - 1) == 0) {
                        *ret = html_entities[e].cp;
                        return j + 1 - i;
                }
        return 0;
}

/* Handle the markup at s[i] == '<'; returns the index after it.  *ret_text
 * is set when the '<' is not markup at all. */
static int html_markup(Html *h, const char *s, size_t n, size_t i, size_t *ret_next, bool *ret_text) {
        char name[16];
        size_t j = i + 1, k = 0, end;
        bool closing = false;
        int r;

        *ret_text = false;
        if (j + 2 < n && memcmp(s + j, "!--", 3) == 0) {
                end = find_ci(s, n, j + 3, "-->");
                *ret_next = end < n ? end + 3 : n;
                return 0;
        }
        if (j < n && (s[j] == '!' || s[j] == '?')) {
                *ret_next = html_tag_end(s, n, j);
                return 0;
        }
        if (j < n && s[j] == '/') {
                closing = true;
                j++;
        }
        while (j < n && (g_ascii_isalpha(s[j]) || (k > 0 && g_ascii_isdigit(s[j])))) {
                if (k + 1 < sizeof name)
                        name[k++] = g_ascii_tolower(s[j]);
                else
                        k = sizeof name; /* too long to be one we know */
                j++;
        }
        if (k == 0) {
                *ret_text = true; /* "a < b", "<3": a tag name starts with a letter */
                *ret_next = i + 1;
                return 0;
        }
        if (k >= sizeof name)
                k = 0;
        name[k] = '\0';
        end = html_tag_end(s, n, j);
        *ret_next = end;

        if (!closing)
                for (size_t d = 0; html_dropped[d]; d++) {
                        char end_tag[20];
                        size_t c;

                        if (!streq(name, html_dropped[d]))
                                continue;
                        if (streq(name, "head") && h->no_head_end)
                                break;
                        snprintf(end_tag, sizeof end_tag, "</%s", name);
                        c = find_ci(s, n, end, end_tag);
                        if (c < n)
                                *ret_next = html_tag_end(s, n, c + 2);
                        else if (streq(name, "head"))
                                h->no_head_end = true; /* unclosed <head>: read on, it may hold the body */
                        else
                                *ret_next = n; /* an unclosed <script> hides the rest */
                        return 0;
                }

        for (size_t b = 0; b < ELEMENTSOF(html_breaks); b++) {
                if (!streq(name, html_breaks[b].name))
                        continue;
                switch (html_breaks[b].kind) {
                case BREAK_LINE:
                        h->space = false;
                        return buf_putc(h->out, '\n');
                case BREAK_CELL:
                        h->space = true;
                        return 0;
                case BREAK_QUOTE:
                        r = html_newline(h);
                        if (closing && h->quote > 0)
                                h->quote--;
                        else if (!closing && h->quote < 16)
                                h->quote++;
                        return r;
                case BREAK_PRE:
                        h->pre = !closing;
                        return html_newline(h);
                case BREAK_BLOCK:
                        return html_newline(h);
                }
        }
        return 0; /* inline markup: <span>, <a>, <b>, <img> … */
}

/* HTML (already UTF-8) to text: markup dropped, entities decoded, white
 * space collapsed except in <pre>, lines broken where blocks and <br> are,
 * <blockquote> lines prefixed with "> " so that quote stripping sees them. */
static int html_to_text(const char *s, size_t n, Buf *out) {
        Html h = { .out = out };
        int r = 0;

        for (size_t i = 0; r >= 0 && i < n;) {
                uint32_t cp;
                size_t k;
                bool text;

                if (s[i] == '<') {
                        r = html_markup(&h, s, n, i, &i, &text);
                        if (r >= 0 && text)
                                r = html_text(&h, "<", 1);
                } else if (s[i] == '&') {
                        k = html_entity(s, n, i, &cp);
                        r = k > 0 ? html_cp(&h, cp) : html_text(&h, "&", 1);
                        i += k ?: 1;
                } else if (s[i] == ' ' || s[i] == '\t' || s[i] == '\n') {
                        if (!h.pre)
                                h.space = true;
                        else
                                r = s[i] == '\n' ? buf_putc(out, '\n') : html_text(&h, s + i, 1);
                        i++;
                } else {
                        for (k = i + 1; k < n && !strchr("<& \t\n", s[k]); k++)
                                ;
                        r = html_text(&h, s + i, k - i);
                        i = k;
                }
        }
        return r;
}

/* ---- format=flowed (RFC 3676) ------------------------------------------- */

/* Join the soft-broken lines of a format=flowed text. */
static int unflow(const char *s, size_t n, bool delsp, Buf *out) {
        size_t pos = 0, open_depth = 0;
        bool open = false;
        Span l;
        int r = 0;

        while (r >= 0 && next_line(s, n, &pos, &l)) {
                size_t depth = 0;
                bool sig, flowed;

                while (depth < l.n && l.p[depth] == '>')
                        depth++;
                l.p += depth;
                l.n -= depth;
                if (l.n > 0 && l.p[0] == ' ') { /* space-stuffing */
                        l.p++;
                        l.n--;
                }
                sig = l.n == 3 && memcmp(l.p, "-- ", 3) == 0;
                flowed = !sig && l.n > 0 && l.p[l.n - 1] == ' ';

                /* a change of quote depth ends a paragraph */
                if (open && depth != open_depth) {
                        r = buf_putc(out, '\n');
                        open = false;
                }
                if (!open) {
                        for (size_t q = 0; r >= 0 && q < depth; q++)
                                r = buf_putc(out, '>');
                        if (r >= 0 && depth > 0)
                                r = buf_putc(out, ' ');
                        open = true;
                        open_depth = depth;
                }
                if (r >= 0)
                        r = buf_put(out, l.p, flowed && delsp ? l.n - 1 : l.n);
                if (r >= 0 && !flowed) {
                        r = buf_putc(out, '\n');
                        open = false;
                }
        }
        if (r >= 0 && open)
                r = buf_putc(out, '\n');
        return r;
}

/* ---- quoted replies and signatures ------------------------------------- */

typedef enum QuoteMatch {
        MATCH_QUOTED, /* the line starts with a (after blanks) */
        MATCH_ATTRIBUTION, /* starts with a, has a digit, ends with b, maybe a few lines later */
        MATCH_DASHED, /* the line is a between runs of dashes */
        MATCH_LINE, /* the line is a, ignoring case and surrounding blanks */
        MATCH_EXACT, /* the line is a, byte for byte */
        MATCH_HEADERS, /* starts with a, and lines starting b and c follow closely */
        MATCH_FOOTER, /* a short line starting with a */
} QuoteMatch;

typedef enum QuoteAction {
        ACTION_DROP, /* drop the matched lines and go on */
        ACTION_CUT, /* drop everything from here on */
        ACTION_DROP_OR_CUT, /* drop if '>' lines follow (the reply may be below them), else cut */
} QuoteAction;

typedef struct QuotePattern {
        QuoteMatch match;
        QuoteAction action;
        const char *a, *b, *c;
} QuotePattern;

/* Tried in order on each line, top to bottom; the first match applies.
 * Comparisons ignore ASCII case. */
static const QuotePattern quote_patterns[] = {
        /* "> text": a line of the message being answered */
        { .match = MATCH_QUOTED, .action = ACTION_DROP, .a = ">" },
        /* Gmail, Apple Mail, Thunderbird: "On Wed, Dec 3, 2025 at 10:00 AM Fulano <x@y> wrote:" */
        { .match = MATCH_ATTRIBUTION, .action = ACTION_DROP_OR_CUT, .a = "On ", .b = "wrote:" },
        /* The same in Brazilian Portuguese: "Em qua., 3 de dez. de 2025 às 10:00, Fulano <x@y> escreveu:" */
        { .match = MATCH_ATTRIBUTION, .action = ACTION_DROP_OR_CUT, .a = "Em ", .b = "escreveu:" },
        /* Outlook: "-----Original Message-----" */
        { .match = MATCH_DASHED, .action = ACTION_CUT, .a = "Original Message" },
        /* Outlook in Portuguese: "-----Mensagem original-----" */
        { .match = MATCH_DASHED, .action = ACTION_CUT, .a = "Mensagem original" },
        /* Gmail "---------- Forwarded message ---------", Thunderbird "-------- Forwarded Message --------" */
        { .match = MATCH_DASHED, .action = ACTION_CUT, .a = "Forwarded message" },
        /* Gmail and Thunderbird in Portuguese: "---------- Mensagem encaminhada ---------" */
        { .match = MATCH_DASHED, .action = ACTION_CUT, .a = "Mensagem encaminhada" },
        /* Apple Mail forwards */
        { .match = MATCH_LINE, .action = ACTION_CUT, .a = "Begin forwarded message:" },
        { .match = MATCH_LINE, .action = ACTION_CUT, .a = "Início da mensagem encaminhada:" },
        /* Outlook's header block of the message answered: "From: …" "Sent: …" "To: …" "Subject: …" */
        { .match = MATCH_HEADERS, .action = ACTION_CUT, .a = "From:", .b = "Sent:", .c = "Subject:" },
        /* The same in Portuguese: "De: …" "Enviado: …" "Para: …" "Assunto: …" */
        { .match = MATCH_HEADERS, .action = ACTION_CUT, .a = "De:", .b = "Enviado:", .c = "Assunto:" },
        /* Outlook for Mac, Apple Mail, Thunderbird: "From:" "Date:" "Subject:" and "De:" "Data:" "Assunto:" */
        { .match = MATCH_HEADERS, .action = ACTION_CUT, .a = "From:", .b = "Date:", .c = "Subject:" },
        { .match = MATCH_HEADERS, .action = ACTION_CUT, .a = "De:", .b = "Data:", .c = "Assunto:" },
        /* The signature delimiter (RFC 3676 4.3): dash, dash, space, alone on its line */
        { .match = MATCH_EXACT, .action = ACTION_CUT, .a = "-- " },
        /* iOS and Android mail apps in Portuguese: "Enviado do meu iPhone", "… do meu Android" */
        { .match = MATCH_FOOTER, .action = ACTION_CUT, .a = "Enviado do meu " },
        /* older iOS in Portuguese: "Enviado de meu iPhone" */
        { .match = MATCH_FOOTER, .action = ACTION_CUT, .a = "Enviado de meu " },
        /* the same in English: "Sent from my iPhone", "Sent from my Galaxy" */
        { .match = MATCH_FOOTER, .action = ACTION_CUT, .a = "Sent from my " },
        /* Outlook mobile: "Get Outlook for Android", "Get Outlook for iOS" */
        { .match = MATCH_FOOTER, .action = ACTION_CUT, .a = "Get Outlook for " },
        /* Outlook mobile in Portuguese: "Obter o Outlook para Android" */
        { .match = MATCH_FOOTER, .action = ACTION_CUT, .a = "Obter o Outlook para " },
};

/* A line as a header-block line is compared: blanks and Gmail's "*bold*"
 * marks at its start removed. */
static Span header_key(Span l) {
        l = span_trim(l);
        while (l.n > 0 && l.p[0] == '*') {
                l.p++;
                l.n--;
        }
        return l;
}

static bool line_is_quoted(Span l) {
        l = span_trim(l);
        return l.n > 0 && l.p[0] == '>';
}

/* How many lines from the line at pos (l) the pattern matches; 0 if none. */
static size_t quote_match(const QuotePattern *q, Span l, const char *s, size_t len, size_t pos) {
        Span t = span_trim(l), next;
        size_t total = 0;
        bool digit = false, have_b = false, have_c = false;

        switch (q->match) {
        case MATCH_QUOTED:
                return span_starts_with(t, q->a) ? 1 : 0;

        case MATCH_ATTRIBUTION:
                if (!span_starts_with(t, q->a))
                        return 0;
                for (size_t k = 1; k <= ATTRIBUTION_LINES; k++) {
                        if (t.n == 0 || (total += t.n) > ATTRIBUTION_MAX)
                                return 0;
                        digit = digit || span_has_digit(t);
                        if (span_ends_with(t, q->b))
                                return digit ? k : 0;
                        if (!next_line(s, len, &pos, &next))
                                return 0;
                        t = span_trim(next);
                }
                return 0;

        case MATCH_DASHED: {
                size_t dashes = 0;
                while (t.n > 0 && t.p[0] == '-') {
                        t.p++;
                        t.n--;
                        dashes++;
                }
                while (t.n > 0 && t.p[t.n - 1] == '-')
                        t.n--;
                return dashes >= 2 && span_equal(span_trim(t), q->a) ? 1 : 0;
        }

        case MATCH_LINE:
                return span_equal(t, q->a) ? 1 : 0;

        case MATCH_EXACT:
                return l.n == strlen(q->a) && memcmp(l.p, q->a, l.n) == 0 ? 1 : 0;

        case MATCH_HEADERS:
                if (!span_starts_with(header_key(l), q->a))
                        return 0;
                for (size_t k = 0; k < HEADER_BLOCK_LINES && next_line(s, len, &pos, &next); k++) {
                        Span h = header_key(next);
                        have_b = have_b || span_starts_with(h, q->b);
                        have_c = have_c || span_starts_with(h, q->c);
                }
                return have_b && have_c ? 1 : 0;

        case MATCH_FOOTER:
                return t.n <= FOOTER_MAX && span_starts_with(t, q->a) ? 1 : 0;
        }
        return 0;
}

/* Copy the lines of s that are the sender's own into out. */
static int strip_quotes(const char *s, size_t len, Buf *out) {
        size_t pos = 0;
        Span l;
        int r;

        while (next_line(s, len, &pos, &l)) {
                const QuotePattern *q = NULL;
                size_t k = 0;

                for (size_t p = 0; p < ELEMENTSOF(quote_patterns) && k == 0; p++) {
                        q = &quote_patterns[p];
                        k = quote_match(q, l, s, len, pos);
                }
                if (k == 0) {
                        r = buf_put(out, l.p, l.n);
                        if (r >= 0)
                                r = buf_putc(out, '\n');
                        if (r < 0)
                                return r;
                        continue;
                }

                if (q->action == ACTION_CUT)
                        return 0;
                /* skip the rest of the match */
                for (size_t i = 1; i < k; i++)
                        next_line(s, len, &pos, &l);
                if (q->action == ACTION_DROP_OR_CUT) {
                        size_t ahead = pos;
                        bool quoted = false;

                        while (next_line(s, len, &ahead, &l)) {
                                if (span_trim(l).n == 0)
                                        continue;
                                quoted = line_is_quoted(l);
                                break;
                        }
                        if (!quoted)
                                return 0;
                }
        }
        return 0;
}

/* A line such as Outlook's "________________________________". */
static bool line_is_separator(Span l) {
        if (l.n < 8)
                return false;
        for (size_t i = 0; i < l.n; i++)
                if (l.p[i] != '_')
                        return false;
        return true;
}

/* Trailing blanks off every line, leading and trailing empty lines off the
 * text, runs of empty lines made one, trailing separators dropped. */
static int tidy(const char *s, size_t len, Buf *out) {
        size_t pos = 0;
        bool blank = false;
        Span l;
        int r;

        while (next_line(s, len, &pos, &l)) {
                l = span_rstrip(l);
                if (l.n == 0) {
                        blank = out->len > 0;
                        continue;
                }
                r = buf_put(out, "\n\n", out->len == 0 ? 0 : blank ? 2 : 1);
                if (r >= 0)
                        r = buf_put(out, l.p, l.n);
                if (r < 0)
                        return r;
                blank = false;
        }

        for (;;) {
                char *nl = out->len > 0 ? memrchr(out->data, '\n', out->len) : NULL;
                size_t start = nl ? (size_t) (nl - out->data) + 1 : 0;

                if (out->len == 0 || !line_is_separator((Span){ out->data + start, out->len - start }))
                        break;
                out->len = start;
                while (out->len > 0 && out->data[out->len - 1] == '\n')
                        out->len--;
                out->data[out->len] = '\0';
        }
        return 0;
}

/* ---- the body --------------------------------------------------------------- */

typedef struct Walk {
        unsigned max_depth, max_parts, parts;
        bool limited;
        GMimePart *plain, *html;
} Walk;

/* A part that is a file, not the message: a Content-Disposition of
 * "attachment", or a file name (inline images, attached .txt files). */
static bool part_is_file(GMimePart *p) {
        return g_mime_part_is_attachment(p) || g_mime_part_get_filename(p);
}

/* Find the body: in multipart/alternative the text/plain and the text/html
 * alternatives, elsewhere (mixed, related, signed, report) the first child
 * that has any.  Attachments and attached messages are not the sender's
 * words. */
static void walk(GMimeObject *o, unsigned depth, Walk *w) {
        GMimeContentType *ct;

        if (!o)
                return;
        if (depth > w->max_depth || w->parts >= w->max_parts) {
                w->limited = true;
                return;
        }
        w->parts++;
        ct = g_mime_object_get_content_type(o);

        if (GMIME_IS_MULTIPART(o)) {
                GMimeMultipart *mp = GMIME_MULTIPART(o);
                const char *sub = ct ? g_mime_content_type_get_media_subtype(ct) : NULL;
                bool alternative = sub && g_ascii_strcasecmp(sub, "alternative") == 0;
                int n = g_mime_multipart_get_count(mp);

                for (int i = 0; i < n; i++) {
                        Walk c = { .max_depth = w->max_depth, .max_parts = w->max_parts, .parts = w->parts };

                        walk(g_mime_multipart_get_part(mp, i), depth + 1, &c);
                        w->parts = c.parts;
                        w->limited = w->limited || c.limited;
                        if (alternative) {
                                w->plain = w->plain ?: c.plain;
                                w->html = w->html ?: c.html;
                        } else if (c.plain || c.html) {
                                w->plain = c.plain;
                                w->html = c.html;
                                return;
                        }
                }
                return;
        }

        if (!GMIME_IS_PART(o) || part_is_file(GMIME_PART(o)) || !ct)
                return;
        if (g_mime_content_type_is_type(ct, "text", "plain"))
                w->plain = GMIME_PART(o);
        else if (g_mime_content_type_is_type(ct, "text", "html"))
                w->html = GMIME_PART(o);
}

/* The part's content, transfer encoding and charset undone. */
static int part_to_utf8(GMimePart *p, Buf *out) {
        GMimeDataWrapper *dw = g_mime_part_get_content(p);
        _cleanup_gobject_ GMimeStream *mem = NULL;
        GByteArray *bytes;

        if (!dw)
                return 0;
        mem = g_mime_stream_mem_new();
        if (g_mime_data_wrapper_write_to_stream(dw, mem) < 0)
                return 0; /* unreadable content: no text */
        bytes = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem));
        if (!bytes)
                return 0;
        return to_utf8((const char *) bytes->data, bytes->len,
                       g_mime_object_get_content_type_parameter(GMIME_OBJECT(p), "charset"), out);
}

static bool param_is(GMimePart *p, const char *name, const char *value) {
        const char *v = g_mime_object_get_content_type_parameter(GMIME_OBJECT(p), name);
        return v && g_ascii_strcasecmp(v, value) == 0;
}

static bool has_text(const Buf *b) {
        for (size_t i = 0; i < b->len; i++)
                if (!g_ascii_isspace(b->data[i]))
                        return true;
        return false;
}

static int extract_text(GMimeMessage *msg, const MailParseOptions *opts, MailContent *m) {
        _cleanup_(buf_done) Buf raw = {}, body = {}, own = {}, text = {};
        Walk w = {
                .max_depth = opts->max_depth ?: MAIL_MAX_DEPTH_DEFAULT,
                .max_parts = opts->max_parts ?: MAIL_MAX_PARTS_DEFAULT,
        };
        size_t max = opts->max_text ?: MAIL_MAX_TEXT_DEFAULT;
        int r;

        walk(g_mime_message_get_mime_part(msg), 0, &w);
        m->mime_limited = w.limited;

        if (w.plain) {
                r = part_to_utf8(w.plain, &raw);
                if (r >= 0 && param_is(w.plain, "format", "flowed"))
                        r = unflow(raw.data, raw.len, param_is(w.plain, "delsp", "yes"), &body);
                else if (r >= 0) {
                        body = raw;
                        raw = (Buf){};
                }
                if (r < 0)
                        return r;
        }
        if (!has_text(&body) && w.html) {
                buf_done(&raw);
                buf_done(&body);
                r = part_to_utf8(w.html, &raw);
                if (r >= 0)
                        r = html_to_text(raw.data, raw.len, &body);
                if (r < 0)
                        return r;
                m->text_from_html = true;
        }

        r = strip_quotes(body.data, body.len, &own);
        if (r >= 0)
                r = tidy(own.data, own.len, &text);
        if (r < 0)
                return r;

        if (text.len > max) {
                text.len = max;
                while (text.len > 0 && ((unsigned char) text.data[text.len] & 0xC0) == 0x80)
                        text.len--;
                text.data[text.len] = '\0';
                m->text_truncated = true;
        }
        m->text = buf_steal(&text);
        return m->text ? 0 : -ENOMEM;
}

/* ---- headers ---------------------------------------------------------------- */

/* A copy of a msg-id, or *ret = NULL when it is unusable: empty, too long,
 * with blanks, controls or brackets, not UTF-8. */
static int copy_msgid(const char *id, char **ret) {
        size_t n;

        *ret = NULL;
        if (!id)
                return 0;
        n = strlen(id);
        if (n == 0 || n > MSGID_MAX || !utf8_valid(id, n))
                return 0;
        for (size_t i = 0; i < n; i++)
                if ((unsigned char) id[i] <= ' ' || id[i] == 0x7F || id[i] == '<' || id[i] == '>')
                        return 0;
        *ret = mem_strdup(id);
        return *ret ? 0 : -ENOMEM;
}

/* A lower-cased copy of an addr-spec, or *ret = NULL when it is not one. */
static int copy_addr(const char *addr, char **ret) {
        const char *at;
        size_t n;

        *ret = NULL;
        if (!addr)
                return 0;
        n = strlen(addr);
        at = strrchr(addr, '@');
        if (n == 0 || n > ADDR_MAX || !at || at == addr || !at[1] || !utf8_valid(addr, n))
                return 0;
        for (size_t i = 0; i < n; i++)
                if ((unsigned char) addr[i] <= ' ' || addr[i] == 0x7F || strchr("<>,;", addr[i]))
                        return 0;
        *ret = mem_strdup(addr);
        if (!*ret)
                return -ENOMEM;
        for (char *p = *ret; *p; p++)
                *p = g_ascii_tolower(*p);
        return 0;
}

/* Append the mailboxes of l (groups flattened) to *strv, up to max. */
static int collect_addrs(InternetAddressList *l, char ***strv, size_t max, unsigned depth) {
        int n = l ? internet_address_list_length(l) : 0;
        int r;

        for (int i = 0; i < n && strv_length(*strv) < max; i++) {
                InternetAddress *a = internet_address_list_get_address(l, i);
                _cleanup_free_ char *c = NULL;

                if (INTERNET_ADDRESS_IS_GROUP(a)) {
                        if (depth < 2) {
                                r = collect_addrs(internet_address_group_get_members(INTERNET_ADDRESS_GROUP(a)), strv,
                                                  max, depth + 1);
                                if (r < 0)
                                        return r;
                        }
                        continue;
                }
                if (!INTERNET_ADDRESS_IS_MAILBOX(a))
                        continue;
                r = copy_addr(internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(a)), &c);
                if (r < 0)
                        return r;
                if (c && strv_extend(strv, c) < 0)
                        return -ENOMEM;
        }
        return 0;
}

static int parse_addresses(GMimeMessage *msg, MailContent *m) {
        _cleanup_strv_free_ char **from = mem_new(char *, 1);
        int r;

        if (!from)
                return -ENOMEM;
        r = collect_addrs(g_mime_message_get_from(msg), &from, 1, 0);
        if (r >= 0)
                r = collect_addrs(g_mime_message_get_to(msg), &m->to, MAIL_TO_MAX, 0);
        if (r < 0)
                return r;
        if (from[0])
                m->from = TAKE_PTR(from[0]);
        return 0;
}

static int parse_ids(GMimeMessage *msg, GMimeParserOptions *po, MailContent *m) {
        _cleanup_(references_freep) GMimeReferences *irt = NULL, *refs = NULL;
        const char *v;
        int r, n;

        r = copy_msgid(g_mime_message_get_message_id(msg), &m->message_id);
        if (r < 0)
                return r;

        v = g_mime_object_get_header(GMIME_OBJECT(msg), "In-Reply-To");
        if (v) {
                irt = g_mime_references_parse(po, v);
                if (irt && g_mime_references_length(irt) > 0)
                        r = copy_msgid(g_mime_references_get_message_id(irt, 0), &m->in_reply_to);
                else {
                        /* some clients leave out the brackets */
                        _cleanup_free_ char *t = mem_strdup(v);
                        if (!t)
                                return -ENOMEM;
                        r = copy_msgid(strstrip(t), &m->in_reply_to);
                }
                if (r < 0)
                        return r;
        }

        v = g_mime_object_get_header(GMIME_OBJECT(msg), "References");
        refs = v ? g_mime_references_parse(po, v) : NULL;
        n = refs ? g_mime_references_length(refs) : 0;
        for (int i = 0; i < n; i++) {
                _cleanup_free_ char *id = NULL;

                /* keep the root and the most recent: the middle is the least useful (RFC 5322 3.6.4) */
                if (n > MAIL_REFERENCES_MAX && i > 0 && i < n - (MAIL_REFERENCES_MAX - 1))
                        continue;
                r = copy_msgid(g_mime_references_get_message_id(refs, i), &id);
                if (r < 0)
                        return r;
                if (id && strv_extend(&m->references, id) < 0)
                        return -ENOMEM;
        }
        return 0;
}

static void parse_date(GMimeMessage *msg, MailContent *m) {
        GDateTime *d = g_mime_message_get_date(msg);
        gint64 s = d ? g_date_time_to_unix(d) : 0;

        if (s > 0 && (uint64_t) s < UINT64_MAX / USEC_PER_SEC)
                m->date_usec = (uint64_t) s * USEC_PER_SEC;
}

/* The first word of a header value, in a caller's buffer ("" if none). */
static void first_word(const char *v, char *buf, size_t size) {
        size_t k = 0;

        while (v && g_ascii_isspace(*v))
                v++;
        while (v && *v && !g_ascii_isspace(*v) && *v != ';' && *v != '(' && k + 1 < size)
                buf[k++] = *v++;
        buf[k] = '\0';
}

typedef enum HeaderTest {
        TEST_PRESENT, /* the header is there */
        TEST_NOT, /* its first word is none of values (an empty header says nothing) */
        TEST_IS, /* its first word is one of values */
} HeaderTest;

/* Headers that mark a message from a robot or to many.  Values ignore case. */
static const struct {
        const char *header;
        HeaderTest test;
        const char *values[3];
        MailIgnore reason;
} ignore_rules[] = {
        /* RFC 3834: auto-replied, auto-generated, auto-notified — anything but "no" */
        { .header = "Auto-Submitted", .test = TEST_NOT, .values = { "no" }, .reason = MAIL_IGNORE_AUTO_SUBMITTED },
        /* vacation programs that predate RFC 3834 */
        { .header = "X-Autoreply", .test = TEST_PRESENT, .reason = MAIL_IGNORE_AUTO_SUBMITTED },
        { .header = "X-Autorespond", .test = TEST_PRESENT, .reason = MAIL_IGNORE_AUTO_SUBMITTED },
        /* RFC 2919: sent through a mailing list */
        { .header = "List-Id", .test = TEST_PRESENT, .reason = MAIL_IGNORE_LIST },
        /* the de facto Precedence header, which vacation programs have always honoured */
        { .header = "Precedence", .test = TEST_IS, .values = { "list" }, .reason = MAIL_IGNORE_LIST },
        { .header = "Precedence", .test = TEST_IS, .values = { "bulk", "junk" }, .reason = MAIL_IGNORE_BULK },
};

static bool word_in(const char *w, const char *const *values, size_t n) {
        for (size_t i = 0; i < n && values[i]; i++)
                if (g_ascii_strcasecmp(w, values[i]) == 0)
                        return true;
        return false;
}

static MailIgnore header_ignore(const char *name, const char *value) {
        MailIgnore best = MAIL_IGNORE_NONE;
        char w[32];

        first_word(value, w, sizeof w);
        for (size_t i = 0; i < ELEMENTSOF(ignore_rules); i++) {
                bool hit;

                if (g_ascii_strcasecmp(name, ignore_rules[i].header) != 0)
                        continue;
                switch (ignore_rules[i].test) {
                case TEST_PRESENT:
                        hit = true;
                        break;
                case TEST_NOT:
                        hit = w[0] && !word_in(w, ignore_rules[i].values, ELEMENTSOF(ignore_rules[i].values));
                        break;
                case TEST_IS:
                default:
                        hit = word_in(w, ignore_rules[i].values, ELEMENTSOF(ignore_rules[i].values));
                        break;
                }
                if (hit && (best == MAIL_IGNORE_NONE || ignore_rules[i].reason < best))
                        best = ignore_rules[i].reason;
        }
        return best;
}

/* "<a@b>", " a@b " → "a@b"; "<>" → "". */
static Span envelope_addr(const char *s) {
        Span t = span_trim((Span){ s, strlen(s) });

        while (t.n > 0 && (t.p[t.n - 1] == '\r' || t.p[t.n - 1] == '\n'))
                t = span_trim((Span){ t.p, t.n - 1 });
        if (t.n >= 2 && t.p[0] == '<' && t.p[t.n - 1] == '>')
                t = span_trim((Span){ t.p + 1, t.n - 2 });
        return t;
}

/* The local part is a system mailbox that sends bounces. */
static bool is_bounce_sender(Span addr) {
        static const char *const names[] = { "mailer-daemon", "postmaster", NULL };
        const char *at = g_strrstr_len(addr.p, (gssize) addr.n, "@");
        Span local = { addr.p, at ? (size_t) (at - addr.p) : addr.n };

        for (size_t i = 0; names[i]; i++)
                if (span_equal(local, names[i]))
                        return true;
        return false;
}

static bool is_own(Span addr, char *const *own) {
        for (size_t i = 0; own && own[i]; i++)
                if (span_equal(addr, own[i]))
                        return true;
        return false;
}

static MailIgnore min_reason(MailIgnore a, MailIgnore b) {
        if (a == MAIL_IGNORE_NONE)
                return b;
        if (b == MAIL_IGNORE_NONE)
                return a;
        return MIN(a, b);
}

/* ---- Authentication-Results (RFC 8601) ------------------------------------ */

/* The value without comments (nested, with quoted-pairs), white space
 * unfolded; quoted strings are kept. */
static int strip_comments(const char *v, Buf *out) {
        unsigned depth = 0;
        bool quoted = false;
        int r = 0;

        for (; *v && r >= 0; v++) {
                char c = *v;

                if (quoted) {
                        r = buf_putc(out, c);
                        if (c == '\\' && v[1] && r >= 0)
                                r = buf_putc(out, *++v);
                        else if (c == '"')
                                quoted = false;
                } else if (depth > 0) {
                        if (c == '\\' && v[1])
                                v++;
                        else if (c == '(')
                                depth++;
                        else if (c == ')')
                                depth--;
                } else if (c == '(') {
                        depth = 1;
                        r = buf_putc(out, ' ');
                } else {
                        if (c == '"')
                                quoted = true;
                        r = buf_putc(out, g_ascii_isspace(c) ? ' ' : c);
                }
        }
        return r;
}

/* The next ';'-separated element of s from *pos (';' in quotes does not
 * count), trimmed. */
static bool next_element(const char *s, size_t len, size_t *pos, Span *ret) {
        size_t i = *pos;
        bool quoted = false;

        if (i > len)
                return false;
        for (; i < len; i++) {
                if (s[i] == '\\' && quoted && i + 1 < len)
                        i++;
                else if (s[i] == '"')
                        quoted = !quoted;
                else if (s[i] == ';' && !quoted)
                        break;
        }
        *ret = span_trim((Span){ s + *pos, i - *pos });
        *pos = i + 1;
        return true;
}

static bool authserv_trusted(Span e, char *const *trusted) {
        size_t k = 0;

        if (e.n > 0 && e.p[0] == '"') { /* a quoted-string authserv-id */
                e.p++;
                e.n--;
                while (k < e.n && e.p[k] != '"')
                        k++;
        } else
                while (k < e.n && e.p[k] != ' ')
                        k++;
        e.n = k;
        for (size_t i = 0; trusted && trusted[i]; i++)
                if (e.n > 0 && span_equal(e, trusted[i]))
                        return true;
        return false;
}

/* "method[/version] = result …" → method and result words. */
static void resinfo_split(Span e, char *method, size_t msize, char *result, size_t rsize) {
        size_t i = 0, k = 0;

        method[0] = result[0] = '\0';
        while (i < e.n && (g_ascii_isalnum(e.p[i]) || e.p[i] == '-' || e.p[i] == '_')) {
                if (k + 1 < msize)
                        method[k++] = g_ascii_tolower(e.p[i]);
                i++;
        }
        method[k] = '\0';
        if (i < e.n && e.p[i] == '/') /* method version */
                for (i++; i < e.n && g_ascii_isdigit(e.p[i]); i++)
                        ;
        while (i < e.n && e.p[i] == ' ')
                i++;
        if (i >= e.n || e.p[i] != '=') {
                method[0] = '\0';
                return;
        }
        for (i++; i < e.n && e.p[i] == ' '; i++)
                ;
        for (k = 0; i < e.n && g_ascii_isalpha(e.p[i]) && k + 1 < rsize; i++)
                result[k++] = e.p[i];
        result[k] = '\0';
}

/* Read one Authentication-Results header; when its authserv-id is trusted,
 * each method it states and m has no result for yet is taken.  Several
 * DKIM results in one header (several signatures): any pass is a pass. */
static int auth_results(const char *value, char *const *trusted, MailContent *m) {
        _cleanup_(buf_done) Buf b = {};
        MailAuthResult spf = MAIL_AUTH_RESULT_MISSING, dkim = MAIL_AUTH_RESULT_MISSING,
                       dmarc = MAIL_AUTH_RESULT_MISSING;
        size_t pos = 0;
        Span e;
        int r;

        r = strip_comments(value, &b);
        if (r < 0)
                return r;
        if (!b.data || !next_element(b.data, b.len, &pos, &e) || !authserv_trusted(e, trusted))
                return 0;

        while (next_element(b.data, b.len, &pos, &e)) {
                char method[16], result[16];
                MailAuthResult res;

                resinfo_split(e, method, sizeof method, result, sizeof result);
                res = mail_auth_result_from_string(result);
                if (!method[0] || res < 0)
                        continue;
                if (streq(method, "spf") && spf == MAIL_AUTH_RESULT_MISSING)
                        spf = res;
                else if (streq(method, "dkim") && (dkim == MAIL_AUTH_RESULT_MISSING || res == MAIL_AUTH_RESULT_PASS))
                        dkim = res;
                else if (streq(method, "dmarc") && dmarc == MAIL_AUTH_RESULT_MISSING)
                        dmarc = res;
        }

        /* The first (topmost, so most recently added) trusted header that
         * speaks of a method decides it: the one the receiving MTA wrote. */
        if (m->spf == MAIL_AUTH_RESULT_MISSING)
                m->spf = spf;
        if (m->dkim == MAIL_AUTH_RESULT_MISSING)
                m->dkim = dkim;
        if (m->dmarc == MAIL_AUTH_RESULT_MISSING)
                m->dmarc = dmarc;
        return 0;
}

static int scan_headers(GMimeHeaderList *hl, const MailParseOptions *opts, MailContent *m) {
        int n = g_mime_header_list_get_count(hl), r;
        const char *envelope = opts->envelope_sender;
        MailIgnore ignore = MAIL_IGNORE_NONE;

        for (int i = 0; i < n; i++) {
                GMimeHeader *h = g_mime_header_list_get_header_at(hl, i);
                const char *name = g_mime_header_get_name(h), *value = g_mime_header_get_raw_value(h);

                if (!name)
                        continue;
                value = strempty(value);
                ignore = min_reason(ignore, header_ignore(name, value));
                if (g_ascii_strcasecmp(name, "Authentication-Results") == 0) {
                        r = auth_results(value, opts->trusted_authserv_ids, m);
                        if (r < 0)
                                return r;
                } else if (!opts->envelope_sender && !envelope && g_ascii_strcasecmp(name, "Return-Path") == 0)
                        envelope = value; /* the first one is the final MTA's */
        }

        if (envelope) {
                Span e = envelope_addr(envelope);

                if (e.n == 0 || is_bounce_sender(e))
                        ignore = min_reason(ignore, MAIL_IGNORE_BOUNCE);
                else if (is_own(e, opts->own_addresses))
                        ignore = min_reason(ignore, MAIL_IGNORE_OURSELVES);
        }
        if (m->from) {
                Span f = { m->from, strlen(m->from) };

                if (is_own(f, opts->own_addresses))
                        ignore = min_reason(ignore, MAIL_IGNORE_OURSELVES);
                else if (is_bounce_sender(f))
                        ignore = min_reason(ignore, MAIL_IGNORE_BOUNCE);
        }
        m->ignore = ignore;
        return 0;
}

/* ---- the whole message ------------------------------------------------------- */

/* Refuse, before GMime builds anything, a header with more fields than
 * allowed, or far more lines that could be MIME delimiters ("--…") than a
 * message within max_parts needs: GMime builds the whole MIME tree before
 * walk() can stop, and a part of a few bytes costs it some 70 times that. */
static int prescan(const char *s, size_t n, size_t max_headers, size_t max_delimiters) {
        size_t pos = 0, fields = 0, delimiters = 0;
        bool header = true;
        Span l;

        while (next_line(s, n, &pos, &l)) {
                if (l.n > 0 && l.p[l.n - 1] == '\r')
                        l.n--;
                if (header) {
                        if (l.n == 0)
                                header = false;
                        else if (!is_blank(l.p[0]) && ++fields > max_headers)
                                return -E2BIG;
                } else if (l.n >= 2 && l.p[0] == '-' && l.p[1] == '-' && ++delimiters > max_delimiters)
                        return -E2BIG;
        }
        return 0;
}

MailContent *mail_content_free(MailContent *m) {
        if (!m)
                return NULL;
        free(m->from);
        strv_free(m->to);
        free(m->subject);
        free(m->message_id);
        free(m->in_reply_to);
        strv_free(m->references);
        free(m->text);
        free(m);
        return NULL;
}

int mail_parse(const void *data, size_t size, const MailParseOptions *opts, MailContent **ret) {
        static const MailParseOptions no_options = {};
        static const char *fallback_charsets[] = { "UTF-8", "windows-1252", NULL };
        _cleanup_(mail_content_freep) MailContent *m = NULL;
        _cleanup_(parser_options_freep) GMimeParserOptions *po = NULL;
        _cleanup_gobject_ GMimeStream *stream = NULL;
        _cleanup_gobject_ GMimeParser *parser = NULL;
        _cleanup_gobject_ GMimeMessage *msg = NULL;
        GMimeHeaderList *hl;
        GMimeObject *body;
        size_t n_headers, max_headers;
        int r;

        if (!ret || (!data && size > 0))
                return -EINVAL;
        if (!opts)
                opts = &no_options;
        if (size > (opts->max_size ?: MAIL_MAX_SIZE_DEFAULT) || size > (size_t) G_MAXSSIZE)
                return -EFBIG;
        max_headers = opts->max_headers ?: MAIL_MAX_HEADERS_DEFAULT;
        r = prescan(data, size, max_headers,
                    (size_t) (opts->max_parts ?: MAIL_MAX_PARTS_DEFAULT) * DELIMITERS_PER_PART);
        if (r < 0)
                return r;
        mail_init();

        m = mem_new(MailContent, 1);
        if (!m)
                return -ENOMEM;
        m->to = mem_new(char *, 1);
        m->references = mem_new(char *, 1);
        if (!m->to || !m->references)
                return -ENOMEM;

        po = g_mime_parser_options_new();
        /* raw 8-bit header text: UTF-8 if it is, else what Brazil writes */
        g_mime_parser_options_set_fallback_charsets(po, fallback_charsets);
        stream = g_mime_stream_mem_new_with_buffer(data ?: "", size);
        parser = g_mime_parser_new_with_stream(stream);
        g_mime_parser_set_format(parser, GMIME_FORMAT_MESSAGE);
        msg = g_mime_parser_construct_message(parser, po);
        if (!msg)
                return -EBADMSG;

        /* GMime moves the Content-* fields of the header to the body part's list */
        hl = g_mime_object_get_header_list(GMIME_OBJECT(msg));
        body = g_mime_message_get_mime_part(msg);
        n_headers = (size_t) g_mime_header_list_get_count(hl) +
                (body ? (size_t) g_mime_header_list_get_count(g_mime_object_get_header_list(body)) : 0);
        if (n_headers > max_headers)
                return -E2BIG;

        r = parse_addresses(msg, m);
        if (r < 0)
                return r;
        r = copy_line(g_mime_message_get_subject(msg), SUBJECT_MAX, &m->subject);
        if (r < 0)
                return r;
        r = parse_ids(msg, po, m);
        if (r < 0)
                return r;
        parse_date(msg, m);
        r = scan_headers(hl, opts, m);
        if (r < 0)
                return r;
        r = extract_text(msg, opts, m);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(m);
        return 0;
}

int mail_content_set_ses_verdicts(MailContent *m, const char *spf, const char *dkim, const char *dmarc) {
        MailAuthResult s = spf ? mail_auth_result_from_ses(spf) : MAIL_AUTH_RESULT_MISSING,
                       k = dkim ? mail_auth_result_from_ses(dkim) : MAIL_AUTH_RESULT_MISSING,
                       d = dmarc ? mail_auth_result_from_ses(dmarc) : MAIL_AUTH_RESULT_MISSING;

        if (!m || s < 0 || k < 0 || d < 0)
                return -EINVAL;
        m->spf = s;
        m->dkim = k;
        m->dmarc = d;
        return 0;
}

MailAuth mail_authenticated(const MailContent *m) {
        if (!m ||
            (m->spf == MAIL_AUTH_RESULT_MISSING && m->dkim == MAIL_AUTH_RESULT_MISSING &&
             m->dmarc == MAIL_AUTH_RESULT_MISSING))
                return MAIL_AUTH_UNKNOWN;
        if (m->dmarc == MAIL_AUTH_RESULT_FAIL || (m->spf == MAIL_AUTH_RESULT_FAIL && m->dkim == MAIL_AUTH_RESULT_FAIL))
                return MAIL_AUTH_UNAUTHENTICATED;
        return MAIL_AUTH_AUTHENTICATED;
}
