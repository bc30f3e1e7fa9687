/* SPDX-License-Identifier: MIT */
/*
 * normalize.c — folding, tokenising and the small string measures the
 * intent rules need.  Three passes over the message: fold (UTF-8 decode,
 * lower case, accents, odd spaces and quotes; a map from every folded byte
 * back to the original), filter lines (the caller's rules), tokenise
 * (words, numbers, boundary punctuation, abbreviations).
 *
 * Security: see normalize.h.  The folded text is at most 3 bytes per input
 * byte; every buffer is grown with overflow-checked sizes.
 */
#include "normalize.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "alloc.h"

#define CP_INVALID UINT32_MAX

/* One code point from s (len > 0).  Returns the bytes it takes; an invalid
 * sequence takes one byte and gives CP_INVALID. */
static size_t utf8_decode(const unsigned char *s, size_t len, uint32_t *ret_cp) {
        uint32_t cp;
        size_t n;

        if (s[0] < 0x80) {
                *ret_cp = s[0];
                return 1;
        }
        if (s[0] >= 0xC2 && s[0] <= 0xDF) {
                n = 2;
                cp = s[0] & 0x1F;
        } else if (s[0] >= 0xE0 && s[0] <= 0xEF) {
                n = 3;
                cp = s[0] & 0x0F;
        } else if (s[0] >= 0xF0 && s[0] <= 0xF4) {
                n = 4;
                cp = s[0] & 0x07;
        } else {
                *ret_cp = CP_INVALID;
                return 1;
        }
        if (len < n) {
                *ret_cp = CP_INVALID;
                return 1;
        }
        for (size_t i = 1; i < n; i++) {
                if ((s[i] & 0xC0) != 0x80) {
                        *ret_cp = CP_INVALID;
                        return 1;
                }
                cp = (cp << 6) | (s[i] & 0x3F);
        }
        if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) || (cp >= 0xD800 && cp <= 0xDFFF)) {
                *ret_cp = CP_INVALID;
                return 1;
        }
        *ret_cp = cp;
        return n;
}

size_t normalize_utf8_next(const char *s, size_t len, uint32_t *ret_cp) {
        return utf8_decode((const unsigned char *) s, len, ret_cp); /* CP_INVALID == NORMALIZE_CP_INVALID */
}

bool normalize_utf8_valid(const char *s, size_t len) {
        const unsigned char *p = (const unsigned char *) s;

        for (size_t i = 0; i < len;) {
                uint32_t cp;
                i += utf8_decode(p + i, len - i, &cp);
                if (cp == CP_INVALID)
                        return false;
        }
        return true;
}

/* U+00C0 … U+00FF, lower case, accents removed ("" = a separator). */
static const char *const latin1[64] = {
        "a", "a", "a", "a", "a", "a", "ae", "c", "e", "e", "e", "e", "i", "i", "i",  "i",
        "d", "n", "o", "o", "o", "o", "o",  "x", "o", "u", "u", "u", "u", "y", "th", "ss",
        "a", "a", "a", "a", "a", "a", "ae", "c", "e", "e", "e", "e", "i", "i", "i",  "i",
        "d", "n", "o", "o", "o", "o", "o",  "",  "o", "u", "u", "u", "u", "y", "th", "y",
};

/* U+0100 … U+017F (Latin Extended-A); U+0132/3 and U+0152/3 are two letters. */
static const char latin_ext_a[] = "aaaaaaccccccccdd"
                                  "ddeeeeeeeeeegggg"
                                  "gggghhhhiiiiiiii"
                                  "iiiijjkkklllllll"
                                  "lllnnnnnnnnnoooo"
                                  "oooorrrrrrssssss"
                                  "ssttttttuuuuuuuu"
                                  "uuuuwwyyyzzzzzzs";

#define ORDINAL_O "\xC2\xBA" /* º, also for ° */
#define ORDINAL_A "\xC2\xAA" /* ª */

/* What code point cp becomes in folded text: writes it to out and returns
 * its length (0: dropped, a combining accent), or -1 when it has no
 * folding (the caller decides).  ASCII is lower-cased only when lower. */
static int fold_cp(uint32_t cp, bool lower, char out[static 4]) {
        const char *s = NULL;

        if (cp < 0x80) {
                out[0] = (char) (lower && cp >= 'A' && cp <= 'Z' ? cp + ('a' - 'A') : cp);
                return 1;
        }
        if (cp >= 0xC0 && cp <= 0xFF)
                s = *latin1[cp - 0xC0] ? latin1[cp - 0xC0] : " ";
        else if (cp == 0x132 || cp == 0x133)
                s = "ij";
        else if (cp == 0x152 || cp == 0x153)
                s = "oe";
        else if (cp >= 0x100 && cp <= 0x17F) {
                out[0] = latin_ext_a[cp - 0x100];
                return 1;
        } else if (cp >= 0x300 && cp <= 0x36F)
                return 0; /* combining accents of decomposed text */
        else
                switch (cp) {
                case 0xBA:
                case 0xB0:
                        s = ORDINAL_O;
                        break;
                case 0xAA:
                        s = ORDINAL_A;
                        break;
                case 0xA0:
                case 0x2000 ... 0x200A:
                case 0x202F:
                case 0x205F:
                case 0x3000:
                        s = " ";
                        break;
                case 0x2018:
                case 0x2019:
                case 0x201B:
                case 0x02BC:
                case 0xB4:
                case 0x60:
                        s = "'";
                        break;
                case 0x201C:
                case 0x201D:
                        s = "\"";
                        break;
                case 0x2010 ... 0x2015:
                case 0x2212:
                        s = "-";
                        break;
                case 0x2026:
                        s = ".";
                        break;
                case 0xA1:
                case 0xBF:
                        s = " ";
                        break;
                default:
                        return -1;
                }
        size_t n = strlen(s);
        memcpy(out, s, n);
        return (int) n;
}

/* ---- growable buffers ---------------------------------------------------- */

typedef struct Buf {
        char *p;
        size_t len, size;
} Buf;

static int buf_reserve(Buf *b, size_t extra) {
        if (b->len + extra + 1 <= b->size)
                return 0;
        size_t want = MAX(b->size * 2, b->len + extra + 1);
        if (want < b->len)
                return -ENOMEM;
        char *n = mem_realloc(b->p, want);
        if (!n)
                return -ENOMEM;
        b->p = n;
        b->size = want;
        return 0;
}

static int buf_put(Buf *b, const char *s, size_t n) {
        if (buf_reserve(b, n) < 0)
                return -ENOMEM;
        memcpy(b->p + b->len, s, n);
        b->len += n;
        b->p[b->len] = '\0';
        return 0;
}

char *normalize_fold(const char *s) {
        const unsigned char *p = (const unsigned char *) s;
        size_t len = strlen(s);
        Buf b = {};

        if (buf_reserve(&b, len) < 0)
                return NULL;
        b.p[0] = '\0';
        for (size_t i = 0; i < len;) {
                char out[4];
                uint32_t cp;
                size_t n = utf8_decode(p + i, len - i, &cp);
                int k = cp == CP_INVALID ? -1 : fold_cp(cp, true, out);

                if (buf_put(&b, k >= 0 ? out : s + i, k >= 0 ? (size_t) k : n) < 0) {
                        free(b.p);
                        return NULL;
                }
                i += n;
        }
        return b.p;
}

char *normalize_fold_pattern(const char *re) {
        const unsigned char *p = (const unsigned char *) re;
        size_t len = strlen(re);
        Buf b = {};

        if (buf_reserve(&b, len) < 0)
                return NULL;
        b.p[0] = '\0';
        for (size_t i = 0; i < len;) {
                char out[4];
                uint32_t cp;
                size_t n = utf8_decode(p + i, len - i, &cp);
                /* Only accented letters and combining accents change:
                 * ASCII (escapes, metacharacters), punctuation look-alikes
                 * (’ “ –) and × ÷ keep what the admin wrote. */
                bool letter = (cp >= 0xC0 && cp <= 0x17F && cp != 0xD7 && cp != 0xF7) || (cp >= 0x300 && cp <= 0x36F);
                int k = cp != CP_INVALID && letter ? fold_cp(cp, false, out) : -1;

                if (buf_put(&b, k >= 0 ? out : re + i, k >= 0 ? (size_t) k : n) < 0) {
                        free(b.p);
                        return NULL;
                }
                i += n;
        }
        return b.p;
}

char *normalize_squeeze(const char *s) {
        size_t len = strlen(s), j = 0;
        char *d = mem_malloc(len + 1);

        if (!d)
                return NULL;
        for (size_t i = 0; i < len; i++) {
                char c = s[i];
                if (c >= 'a' && c <= 'z' && j > 0 && d[j - 1] == c)
                        continue;
                d[j++] = c;
        }
        d[j] = '\0';
        return d;
}

unsigned normalize_distance(const char *a, size_t a_len, const char *b, size_t b_len, unsigned max) {
        enum { L = 64 };
        unsigned rows[3][L + 1], *prev2 = rows[0], *prev = rows[1], *cur = rows[2];

        if (a_len > L || b_len > L)
                return a_len == b_len && memcmp(a, b, a_len) == 0 ? 0 : max + 1;
        if ((a_len > b_len ? a_len - b_len : b_len - a_len) > max)
                return max + 1;
        for (size_t j = 0; j <= b_len; j++)
                prev[j] = (unsigned) j;
        for (size_t i = 1; i <= a_len; i++) {
                unsigned row_min;
                cur[0] = (unsigned) i;
                row_min = cur[0];
                for (size_t j = 1; j <= b_len; j++) {
                        unsigned cost = a[i - 1] == b[j - 1] ? 0 : 1;
                        unsigned v = MIN(MIN(prev[j] + 1, cur[j - 1] + 1), prev[j - 1] + cost);
                        if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                                v = MIN(v, prev2[j - 2] + 1);
                        cur[j] = v;
                        row_min = MIN(row_min, v);
                }
                if (row_min > max)
                        return max + 1;
                unsigned *t = prev2;
                prev2 = prev;
                prev = cur;
                cur = t;
        }
        return MIN(prev[b_len], max + 1);
}

char *normalize_clean_span(const char *s, size_t len) {
        const unsigned char *p = (const unsigned char *) s;
        Buf b = {};
        bool space = false;

        if (buf_reserve(&b, len) < 0)
                return NULL;
        b.p[0] = '\0';
        for (size_t i = 0; i < len;) {
                uint32_t cp;
                size_t n = utf8_decode(p + i, len - i, &cp);

                if (cp == CP_INVALID || cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp < 0xA0) || cp == ' ' ||
                    cp == 0xA0) {
                        space = b.len > 0;
                        i += n;
                        continue;
                }
                if (space && buf_put(&b, " ", 1) < 0)
                        goto oom;
                space = false;
                if (buf_put(&b, s + i, n) < 0)
                        goto oom;
                i += n;
        }
        return b.p;
oom:
        free(b.p);
        return NULL;
}

/* ---- folding with a map back to the original ------------------------------ */

typedef struct Folded {
        char *p;
        size_t *start, *end; /* per folded byte: the original bytes it came from */
        size_t len, size;
} Folded;

static void folded_done(Folded *f) {
        free(f->p);
        free(f->start);
        free(f->end);
}

static int folded_put(Folded *f, const char *s, size_t n, size_t start, size_t end) {
        if (f->len + n + 1 > f->size) {
                size_t want = MAX(f->size * 2, f->len + n + 64);
                char *p = mem_realloc(f->p, want);
                if (!p)
                        return -ENOMEM;
                f->p = p;
                size_t *a = mem_realloc(f->start, want * sizeof(size_t));
                if (!a)
                        return -ENOMEM;
                f->start = a;
                size_t *e = mem_realloc(f->end, want * sizeof(size_t));
                if (!e)
                        return -ENOMEM;
                f->end = e;
                f->size = want;
        }
        for (size_t i = 0; i < n; i++) {
                f->p[f->len] = s[i];
                f->start[f->len] = start;
                f->end[f->len] = end;
                f->len++;
        }
        f->p[f->len] = '\0';
        return 0;
}

static int fold_text(const char *s, size_t len, Folded *f) {
        const unsigned char *p = (const unsigned char *) s;

        for (size_t i = 0; i < len;) {
                char out[4];
                const char *w = out;
                uint32_t cp;
                size_t n = utf8_decode(p + i, len - i, &cp);
                int k;

                if (cp == CP_INVALID || cp == 0 || cp == '\t' || cp == '\v' || cp == '\f' ||
                    (cp < 0x20 && cp != '\n' && cp != '\r') || cp == 0x7F || (cp >= 0x80 && cp < 0xA0))
                        w = " ", k = 1;
                else if (cp == '\r')
                        w = "\n", k = 1;
                else {
                        k = fold_cp(cp, true, out);
                        if (k < 0)
                                w = " ", k = 1; /* emoji, other scripts: a separator */
                }
                if (k == 0 && f->len > 0)
                        f->end[f->len - 1] = i + n; /* a combining accent belongs to its letter */
                if (k > 0 && folded_put(f, w, (size_t) k, i, i + n) < 0)
                        return -ENOMEM;
                i += n;
        }
        if (!f->p && folded_put(f, "", 0, 0, 0) < 0)
                return -ENOMEM;
        return 0;
}

/* Apply the caller's line filter: dropped lines become blank, a cut ends
 * the text. */
static int filter_lines(Folded *f, const NormOptions *o) {
        if (!o || !o->line_filter)
                return 0;
        for (size_t i = 0; i < f->len;) {
                char *nl = memchr(f->p + i, '\n', f->len - i);
                size_t end = nl ? (size_t) (nl - f->p) : f->len;
                int r = o->line_filter(f->p + i, end - i, o->userdata);

                if (r < 0)
                        return r;
                if (r == NORM_LINE_CUT) {
                        f->len = i;
                        f->p[i] = '\0';
                        return 0;
                }
                if (r == NORM_LINE_DROP)
                        memset(f->p + i, ' ', end - i);
                i = end + 1;
        }
        return 0;
}

/* ---- tokens ------------------------------------------------------------- */

typedef struct Tokens {
        NormToken *v;
        size_t n, size;
        Buf joined;
} Tokens;

static bool is_alnum(char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool is_digit(char c) {
        return c >= '0' && c <= '9';
}

/* Bytes of the word character at f[i], or 0: letters, digits, º and ª. */
static size_t word_char(const Folded *f, size_t i) {
        if (i >= f->len)
                return 0;
        if (is_alnum(f->p[i]))
                return 1;
        if ((unsigned char) f->p[i] == 0xC2 && i + 1 < f->len &&
            ((unsigned char) f->p[i + 1] == 0xBA || (unsigned char) f->p[i + 1] == 0xAA))
                return 2;
        return 0;
}

static int token_add(Tokens *t, const char *s, size_t n, NormTokenKind kind, size_t start, size_t end) {
        if (t->n == t->size) {
                size_t want = t->size ? t->size * 2 : 32;
                NormToken *v = mem_realloc(t->v, want * sizeof(NormToken));
                if (!v)
                        return -ENOMEM;
                t->v = v;
                t->size = want;
        }
        if (t->joined.len > 0 && buf_put(&t->joined, " ", 1) < 0)
                return -ENOMEM;
        t->v[t->n] = (NormToken){ .len = n, .kind = kind, .start = start, .end = end, .offset = t->joined.len };
        if (buf_put(&t->joined, s, n) < 0)
                return -ENOMEM;
        t->n++;
        return 0;
}

static int punct_rank(char c) {
        return c == '?' ? 3 : c == '.' ? 2 : 1;
}

static int punct_add(Tokens *t, char c, size_t start, size_t end) {
        if (t->n == 0)
                return 0; /* nothing before it: leading punctuation says nothing */
        NormToken *last = &t->v[t->n - 1];
        if (last->kind == NORM_PUNCT) {
                char *p = t->joined.p + last->offset;
                if (punct_rank(c) > punct_rank(*p))
                        *p = c;
                last->end = end;
                return 0;
        }
        return token_add(t, &c, 1, NORM_PUNCT, start, end);
}

/* Runs of three or more equal letters are one ("simmm" → "sim"); pairs
 * stay ("pizza", "coffee"). */
static void squeeze_runs(Buf *w) {
        size_t j = 0;

        for (size_t i = 0; i < w->len;) {
                size_t n = 1;
                char c = w->p[i];
                while (i + n < w->len && w->p[i + n] == c)
                        n++;
                if (c >= 'a' && c <= 'z' && n >= 3)
                        w->p[j++] = c;
                else {
                        memmove(w->p + j, w->p + i, n);
                        j += n;
                }
                i += n;
        }
        w->len = j;
        w->p[j] = '\0';
}

static NormTokenKind kind_of(const char *s, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (!is_digit(s[i]) && !(i > 0 && strchr(",.-", s[i])))
                        return NORM_WORD;
        return n > 0 ? NORM_NUMBER : NORM_WORD;
}

/* Add word (or its expansion) as tokens. */
static int word_add(Tokens *t, const char *word, size_t n, const char *expansion, size_t start, size_t end) {
        if (!expansion)
                return token_add(t, word, n, kind_of(word, n), start, end);
        for (const char *p = expansion; *p;) {
                size_t k = strcspn(p, " ");
                if (k > 0) {
                        int r = token_add(t, p, k, kind_of(p, k), start, end);
                        if (r < 0)
                                return r;
                }
                p += k;
                p += strspn(p, " ");
        }
        return 0;
}

static int tokenize(const Folded *f, const NormOptions *o, Tokens *t) {
        Buf w = {};
        int r = 0;

        for (size_t i = 0; i < f->len;) {
                char c = f->p[i];
                size_t k;

                if (c == '\n' || c == '.' || c == '!' || c == ';' || c == ',' || c == ':' || c == '?') {
                        r = punct_add(t,
                                      c == '?'                                     ? '?'
                                              : (c == ',' || c == ':' || c == ';') ? ','
                                                                                   : '.',
                                      f->start[i], f->end[i]);
                        if (r < 0)
                                goto finish;
                        i++;
                        continue;
                }
                bool hash = c == '#' && word_char(f, i + 1);
                if (!hash && !word_char(f, i)) {
                        i++;
                        continue;
                }

                size_t first = i, j = i;
                w.len = 0;
                if (hash) {
                        if ((r = buf_put(&w, "#", 1)) < 0)
                                goto finish;
                        j++;
                }
                for (;;) {
                        if ((k = word_char(f, j)) > 0) {
                                if ((r = buf_put(&w, f->p + j, k)) < 0)
                                        goto finish;
                                j += k;
                                continue;
                        }
                        if (j + 1 < f->len && w.len > 0) {
                                char prev = w.p[w.len - 1], next = f->p[j + 1];
                                if (f->p[j] == '\'' && is_alnum(prev) && word_char(f, j + 1)) {
                                        j++; /* "I'd" → "id", "don't" → "dont" */
                                        continue;
                                }
                                if (strchr("-,.", f->p[j]) && f->p[j] && is_digit(prev) && is_digit(next)) {
                                        if ((r = buf_put(&w, f->p + j, 1)) < 0)
                                                goto finish;
                                        j++;
                                        continue;
                                }
                        }
                        break;
                }
                squeeze_runs(&w);

                const char *expansion = NULL;
                size_t last = j - 1;
                if (o && o->expand) {
                        if (j < f->len && (f->p[j] == '.' || f->p[j] == '/')) {
                                if ((r = buf_put(&w, f->p + j, 1)) < 0)
                                        goto finish;
                                expansion = o->expand(w.p, o->userdata);
                                w.p[--w.len] = '\0';
                                if (expansion)
                                        last = j++;
                        }
                        if (!expansion)
                                expansion = o->expand(w.p, o->userdata);
                }
                r = word_add(t, w.p, w.len, expansion, f->start[first], f->end[last]);
                if (r < 0)
                        goto finish;
                i = j;
        }
        while (t->n > 0 && t->v[t->n - 1].kind == NORM_PUNCT) {
                t->n--;
                t->joined.len = t->n > 0 ? t->v[t->n - 1].offset + t->v[t->n - 1].len : 0;
        }
        r = buf_reserve(&t->joined, 0);
        if (r >= 0)
                t->joined.p[t->joined.len] = '\0';
finish:
        free(w.p);
        return r;
}

int normalize_text(const char *s, size_t len, const NormOptions *o, NormText **ret) {
        _cleanup_(normalize_text_freep) NormText *nt = NULL;
        Folded f = {};
        Tokens t = {};
        int r;

        r = fold_text(s, len, &f);
        if (r >= 0)
                r = filter_lines(&f, o);
        if (r >= 0)
                r = tokenize(&f, o, &t);
        folded_done(&f);
        if (r < 0)
                goto fail;

        nt = mem_new(NormText, 1);
        if (!nt) {
                r = -ENOMEM;
                goto fail;
        }
        nt->tokens = TAKE_PTR(t.v);
        nt->n_tokens = t.n;
        nt->joined = TAKE_PTR(t.joined.p);
        nt->joined_len = t.joined.len;
        nt->storage = mem_malloc(nt->joined_len + 1);
        if (!nt->storage)
                return -ENOMEM;
        memcpy(nt->storage, nt->joined, nt->joined_len + 1);
        for (size_t i = 0; i < nt->n_tokens; i++) {
                NormToken *tk = &nt->tokens[i];
                nt->storage[tk->offset + tk->len] = '\0';
                tk->text = nt->storage + tk->offset;
        }
        *ret = TAKE_PTR(nt);
        return 0;
fail:
        free(t.v);
        free(t.joined.p);
        return r;
}

NormText *normalize_text_free(NormText *t) {
        if (!t)
                return NULL;
        free(t->tokens);
        free(t->joined);
        free(t->storage);
        free(t);
        return NULL;
}
