/* SPDX-License-Identifier: MIT */
/*
 * sms-text.c — GSM 03.38 tables, segment counting, accent folding and
 * cutting to a number of segments.
 *
 * The text is decoded once into code points with their byte spans; every
 * decision (encoding, units, where to cut) is made on those, so a cut is
 * always between two whole characters of the original UTF-8.
 *
 * Security: see sms-text.h.  Sizes are bounded by the input: no fold is
 * longer than the UTF-8 it replaces ("…" is three bytes, so is "...").
 */
#include "sms-text.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "alloc.h"
#include "normalize.h"
#include "strutil.h"

#define GSM_SINGLE 160u
#define GSM_PART 153u
#define UCS2_SINGLE 70u
#define UCS2_PART 67u

static const char *const encoding_table[_SMS_ENCODING_MAX] = {
        [SMS_ENCODING_GSM7] = "gsm7",
        [SMS_ENCODING_UCS2] = "ucs2",
};

const char *sms_encoding_to_string(SmsEncoding e) {
        if ((unsigned) e >= _SMS_ENCODING_MAX)
                return NULL;
        return encoding_table[e];
}

SmsEncoding sms_encoding_from_string(const char *s) {
        for (size_t i = 0; s && i < _SMS_ENCODING_MAX; i++)
                if (streq(encoding_table[i], s))
                        return (SmsEncoding) i;
        return _SMS_ENCODING_INVALID;
}

/* The non-ASCII characters of the GSM 03.38 basic table. */
static const uint32_t gsm_basic_non_ascii[] = {
        0x00A3, 0x00A5, 0x00E8, 0x00E9, 0x00F9, 0x00EC, 0x00F2, 0x00C7, /* £ ¥ è é ù ì ò Ç */
        0x00D8, 0x00F8, 0x00C5, 0x00E5, 0x0394, 0x03A6, 0x0393, 0x039B, /* Ø ø Å å Δ Φ Γ Λ */
        0x03A9, 0x03A0, 0x03A8, 0x03A3, 0x0398, 0x039E, 0x00C6, 0x00E6, /* Ω Π Ψ Σ Θ Ξ Æ æ */
        0x00DF, 0x00C9, 0x00A4, 0x00A1, 0x00C4, 0x00D6, 0x00D1, 0x00DC, /* ß É ¤ ¡ Ä Ö Ñ Ü */
        0x00A7, 0x00BF, 0x00E4, 0x00F6, 0x00F1, 0x00FC, 0x00E0, /* § ¿ ä ö ñ ü à */
};

/* Septets a character takes in GSM 7-bit: 1 (basic table), 2 (escape and
 * extension table), 0 (not representable). */
static unsigned gsm_septets(uint32_t cp) {
        if (cp == '\n' || cp == '\r')
                return 1;
        if (cp < 0x20 || cp == 0x7F || cp == '`')
                return 0;
        if (cp < 0x7F)
                switch (cp) {
                case '^':
                case '{':
                case '}':
                case '\\':
                case '[':
                case '~':
                case ']':
                case '|':
                        return 2;
                default:
                        return 1;
                }
        if (cp == 0x20AC) /* € */
                return 2;
        for (size_t i = 0; i < ELEMENTSOF(gsm_basic_non_ascii); i++)
                if (gsm_basic_non_ascii[i] == cp)
                        return 1;
        return 0;
}

static unsigned ucs2_units(uint32_t cp) {
        return cp > 0xFFFF ? 2 : 1;
}

/* What a character GSM lacks becomes when folding; NULL: no fold. */
static const char *fold_char(uint32_t cp) {
        static const struct {
                uint32_t cp;
                const char *to;
        } table[] = {
                { 0x0009, " " },  { 0x0060, "'" }, { 0x00A0, " " },   { 0x00AA, "a" },  { 0x00AB, "\"" },
                { 0x00AD, "" },   { 0x00B0, "o" }, { 0x00B4, "'" },   { 0x00BA, "o" },  { 0x00BB, "\"" },
                { 0x00C0, "A" },  { 0x00C1, "A" }, { 0x00C2, "A" },   { 0x00C3, "A" },  { 0x00C8, "E" },
                { 0x00CA, "E" },  { 0x00CB, "E" }, { 0x00CC, "I" },   { 0x00CD, "I" },  { 0x00CE, "I" },
                { 0x00CF, "I" },  { 0x00D0, "D" }, { 0x00D2, "O" },   { 0x00D3, "O" },  { 0x00D4, "O" },
                { 0x00D5, "O" },  { 0x00D7, "x" }, { 0x00D9, "U" },   { 0x00DA, "U" },  { 0x00DB, "U" },
                { 0x00DD, "Y" },  { 0x00E1, "a" }, { 0x00E2, "a" },   { 0x00E3, "a" },  { 0x00E7, "c" },
                { 0x00EA, "e" },  { 0x00EB, "e" }, { 0x00ED, "i" },   { 0x00EE, "i" },  { 0x00EF, "i" },
                { 0x00F0, "d" },  { 0x00F3, "o" }, { 0x00F4, "o" },   { 0x00F5, "o" },  { 0x00FA, "u" },
                { 0x00FB, "u" },  { 0x00FD, "y" }, { 0x00FF, "y" },   { 0x0152, "OE" }, { 0x0153, "oe" },
                { 0x2009, " " },  { 0x2010, "-" }, { 0x2011, "-" },   { 0x2013, "-" },  { 0x2014, "-" },
                { 0x2018, "'" },  { 0x2019, "'" }, { 0x201A, "," },   { 0x201C, "\"" }, { 0x201D, "\"" },
                { 0x201E, "\"" }, { 0x2022, "-" }, { 0x2026, "..." }, { 0x202F, " " },
        };

        for (size_t i = 0; i < ELEMENTSOF(table); i++)
                if (table[i].cp == cp)
                        return table[i].to;
        return NULL;
}

typedef struct Chars {
        uint32_t *cp;
        size_t *start; /* byte offset of each character; start[n] = the text's length */
        size_t n;
} Chars;

static void chars_done(Chars *c) {
        free(c->cp);
        free(c->start);
        *c = (Chars){};
}

/* Decode len bytes of s.  -EINVAL (invalid UTF-8), -ENOMEM. */
static int chars_decode(const char *s, size_t len, Chars *ret) {
        Chars c = {};

        c.cp = mem_new(uint32_t, len + 1);
        c.start = mem_new(size_t, len + 1);
        if (!c.cp || !c.start) {
                chars_done(&c);
                return -ENOMEM;
        }
        for (size_t i = 0; i < len;) {
                uint32_t cp;
                size_t k = normalize_utf8_next(s + i, len - i, &cp);
                if (cp == NORMALIZE_CP_INVALID) {
                        chars_done(&c);
                        return -EINVAL;
                }
                c.cp[c.n] = cp;
                c.start[c.n++] = i;
                i += k;
        }
        c.start[c.n] = len;
        *ret = c;
        return 0;
}

static bool chars_gsm(const Chars *c) {
        for (size_t i = 0; i < c->n; i++)
                if (gsm_septets(c->cp[i]) == 0)
                        return false;
        return true;
}

static unsigned char_units(SmsEncoding e, uint32_t cp) {
        return e == SMS_ENCODING_GSM7 ? gsm_septets(cp) : ucs2_units(cp);
}

/* Units and segments counted character by character: a concatenated
 * message fills each part to at most `part` units, and a character that
 * does not fit whole starts the next part. */
typedef struct Count {
        SmsEncoding encoding;
        size_t units; /* all */
        unsigned parts; /* parts of a concatenated message */
        size_t in_part; /* units in the last part */
} Count;

static void count_add(Count *c, unsigned units) {
        size_t part = c->encoding == SMS_ENCODING_GSM7 ? GSM_PART : UCS2_PART;

        if (c->parts == 0 || c->in_part + units > part) {
                c->parts++;
                c->in_part = 0;
        }
        c->in_part += units;
        c->units += units;
}

static unsigned count_segments(const Count *c) {
        size_t single = c->encoding == SMS_ENCODING_GSM7 ? GSM_SINGLE : UCS2_SINGLE;

        if (c->units == 0)
                return 0;
        return c->units <= single ? 1 : c->parts;
}

static void measure_chars(const Chars *ch, SmsTextInfo *ret) {
        Count c = { .encoding = chars_gsm(ch) ? SMS_ENCODING_GSM7 : SMS_ENCODING_UCS2 };

        for (size_t i = 0; i < ch->n; i++)
                count_add(&c, char_units(c.encoding, ch->cp[i]));
        *ret = (SmsTextInfo){ .encoding = c.encoding, .segments = count_segments(&c), .units = c.units };
}

int sms_text_measure(const char *utf8, SmsTextInfo *ret_info) {
        Chars ch;
        int r;

        if (!utf8)
                return -EINVAL;
        r = chars_decode(utf8, strlen(utf8), &ch);
        if (r < 0)
                return r;
        measure_chars(&ch, ret_info);
        chars_done(&ch);
        return 0;
}

/* utf8 with every character that GSM lacks folded where the table says
 * how.  New string or NULL on OOM. */
static char *fold_text(const char *utf8, const Chars *ch) {
        size_t len = ch->start[ch->n];
        char *out = mem_malloc(len + 1), *o = out;

        if (!out)
                return NULL;
        for (size_t i = 0; i < ch->n; i++) {
                const char *to = gsm_septets(ch->cp[i]) ? NULL : fold_char(ch->cp[i]);
                if (to) {
                        size_t l = strlen(to);
                        memcpy(o, to, l);
                        o += l;
                } else {
                        memcpy(o, utf8 + ch->start[i], ch->start[i + 1] - ch->start[i]);
                        o += ch->start[i + 1] - ch->start[i];
                }
        }
        *o = '\0';
        return out;
}

static bool is_space(uint32_t cp) {
        return cp == ' ' || cp == '\n' || cp == '\r' || cp == '\t' || cp == 0x00A0 || cp == 0x202F || cp == 0x2009;
}

/* Characters that belong to the one before them: combining marks, joiners,
 * variation selectors, emoji modifiers.  A cut never falls before one. */
static bool is_attached(uint32_t cp) {
        return (cp >= 0x0300 && cp <= 0x036F) || cp == 0x200D || (cp >= 0xFE00 && cp <= 0xFE0F) ||
                (cp >= 0x1F3FB && cp <= 0x1F3FF) || (cp >= 0xE0020 && cp <= 0xE007F);
}

/* Punctuation that reads badly just before an ellipsis. */
static bool is_trailing_junk(uint32_t cp) {
        return is_space(cp) || cp == ',' || cp == ';' || cp == ':' || cp == '-' || cp == 0x2013 || cp == 0x2014;
}

/* How many leading characters of ch to keep so that they and the
 * ellipsis fit into max segments of encoding e, cut at a word boundary
 * when there is one in the second half of what fits. */
static size_t cut_point(const Chars *ch, SmsEncoding e, unsigned max, const char *ellipsis) {
        Count c = { .encoding = e };
        size_t keep = 0, word = 0;

        for (size_t i = 0; i < ch->n; i++) {
                Count with = c;
                for (const char *p = ellipsis; *p;) {
                        uint32_t cp;
                        p += normalize_utf8_next(p, strlen(p), &cp);
                        count_add(&with, char_units(e, cp));
                }
                if (count_segments(&with) > max)
                        break;
                keep = i; /* characters [0, i) and the ellipsis fit */
                if (i > 0 && is_space(ch->cp[i]))
                        word = i;
                count_add(&c, char_units(e, ch->cp[i]));
        }
        /* keep < n: the whole text did not fit, or there would be no cut. */
        if (word > 0 && word >= keep / 2)
                keep = word;
        while (keep > 0 && is_attached(ch->cp[keep]))
                keep--;
        while (keep > 0 && is_trailing_junk(ch->cp[keep - 1]))
                keep--;
        return keep;
}

/* The checks and the decoding both entry points begin with. */
static int decode_arguments(const char *utf8, unsigned max_segments, Chars *ret) {
        if (!utf8 || max_segments < 1 || max_segments > SMS_SEGMENTS_MAX)
                return -EINVAL;
        return chars_decode(utf8, strlen(utf8), ret);
}

int sms_text_compose(const char *utf8, unsigned max_segments, bool fold, char **ret_text, SmsTextInfo *ret_info) {
        _cleanup_free_ char *folded = NULL, *out = NULL;
        const char *text = utf8;
        Chars ch = {};
        SmsTextInfo info;
        bool did_fold = false;
        int r;

        r = decode_arguments(utf8, max_segments, &ch);
        if (r < 0)
                return r;

        if (fold && !chars_gsm(&ch)) {
                Chars fch;
                folded = fold_text(utf8, &ch);
                if (!folded) {
                        r = -ENOMEM;
                        goto finish;
                }
                r = chars_decode(folded, strlen(folded), &fch);
                if (r < 0)
                        goto finish;
                if (chars_gsm(&fch)) {
                        chars_done(&ch);
                        ch = fch;
                        text = folded;
                        did_fold = true;
                } else
                        chars_done(&fch); /* UCS-2 anyway: send the accents as written */
        }

        measure_chars(&ch, &info);
        if (info.segments <= max_segments) {
                out = mem_strdup(text);
                if (!out) {
                        r = -ENOMEM;
                        goto finish;
                }
        } else {
                const char *ellipsis = info.encoding == SMS_ENCODING_GSM7 ? "..." : "\xE2\x80\xA6" /* … */;
                size_t keep = cut_point(&ch, info.encoding, max_segments, ellipsis);
                out = mem_printf("%.*s%s", (int) ch.start[keep], text, ellipsis);
                if (!out) {
                        r = -ENOMEM;
                        goto finish;
                }
                chars_done(&ch);
                r = chars_decode(out, strlen(out), &ch);
                if (r < 0)
                        goto finish;
                measure_chars(&ch, &info);
                info.truncated = true;
        }
        info.folded = did_fold;

        *ret_text = TAKE_PTR(out);
        if (ret_info)
                *ret_info = info;
        r = 0;
finish:
        chars_done(&ch);
        return r;
}

/* ---- splitting between lines ---------------------------------------------
 *
 * What a text takes, followed character by character in every way
 * sms_text_compose() may send it, so that splitting a long text measures
 * each character a bounded number of times instead of composing every
 * growing candidate again from its start. */

typedef struct Fit {
        bool raw_gsm; /* every character so far is in the GSM tables */
        bool folded_gsm; /* … once folded */
        Count raw7, raw16, folded7;
} Fit;

static Fit fit_new(void) {
        return (Fit){
                .raw_gsm = true,
                .folded_gsm = true,
                .raw7 = { .encoding = SMS_ENCODING_GSM7 },
                .raw16 = { .encoding = SMS_ENCODING_UCS2 },
                .folded7 = { .encoding = SMS_ENCODING_GSM7 },
        };
}

static void fit_add(Fit *f, uint32_t cp) {
        unsigned septets = gsm_septets(cp);

        count_add(&f->raw16, ucs2_units(cp));
        if (septets > 0) {
                count_add(&f->raw7, septets);
                count_add(&f->folded7, septets);
                return;
        }
        f->raw_gsm = false;
        const char *to = fold_char(cp);
        if (!to) {
                f->folded_gsm = false;
                return;
        }
        for (const char *p = to; *p; p++) /* folds are ASCII */
                count_add(&f->folded7, gsm_septets((uint8_t) *p));
}

/* The segments sms_text_compose(…, fold, …) would find before cutting. */
static unsigned fit_segments(const Fit *f, bool fold) {
        if (f->raw_gsm)
                return count_segments(&f->raw7);
        if (fold && f->folded_gsm)
                return count_segments(&f->folded7);
        return count_segments(&f->raw16);
}

/* Whether compose_fitting() sends it whole. */
static bool fit_fits(const Fit *f, unsigned max_segments, bool fold) {
        return fit_segments(f, fold) <= max_segments || (!fold && fit_segments(f, true) <= max_segments);
}

/* sms_text_compose() of len bytes of utf8 with fold, and, when that had
 * to cut and fold was false, folded after all. */
static int compose_fitting(const char *utf8, size_t len, unsigned max_segments, bool fold, char **ret) {
        _cleanup_free_ char *text = mem_strndup(utf8, len);
        SmsTextInfo info;
        int r;

        if (!text)
                return -ENOMEM;
        r = sms_text_compose(text, max_segments, fold, ret, &info);
        if (r >= 0 && info.truncated && !fold) {
                *ret = mfree(*ret);
                r = sms_text_compose(text, max_segments, true, ret, &info);
        }
        return r;
}

static int split_emit(char ***out, const char *utf8, size_t from, size_t to, unsigned max_segments, bool fold) {
        _cleanup_free_ char *body = NULL;
        int r;

        r = compose_fitting(utf8 + from, to - from, max_segments, fold, &body);
        if (r < 0)
                return r;
        return strv_extend(out, body);
}

int sms_text_split(const char *utf8, unsigned max_segments, bool fold, char ***ret) {
        _cleanup_(strv_freep) char **out = NULL;
        Chars ch = {};
        Fit chunk = fit_new(), whole = fit_new();
        size_t chunk_from = 0, chunk_to = 0; /* characters of the chunk being filled */
        bool have_chunk = false;
        int r;

        r = decode_arguments(utf8, max_segments, &ch);
        if (r < 0)
                return r;

        for (size_t i = 0; i < ch.n; i++)
                fit_add(&whole, ch.cp[i]);
        if (fit_fits(&whole, max_segments, fold)) {
                r = split_emit(&out, utf8, 0, ch.start[ch.n], max_segments, fold);
                goto finish;
        }

        for (size_t line = 0; line < ch.n;) {
                size_t end = line;
                while (end < ch.n && ch.cp[end] != '\n')
                        end++;
                Fit grown = have_chunk ? chunk : fit_new();
                if (have_chunk)
                        fit_add(&grown, '\n');
                for (size_t i = line; i < end; i++)
                        fit_add(&grown, ch.cp[i]);
                if (have_chunk && !fit_fits(&grown, max_segments, fold)) {
                        /* the chunk so far goes; this line starts the next */
                        r = split_emit(&out, utf8, ch.start[chunk_from], ch.start[chunk_to], max_segments, fold);
                        if (r < 0)
                                goto finish;
                        grown = fit_new();
                        for (size_t i = line; i < end; i++)
                                fit_add(&grown, ch.cp[i]);
                        chunk_from = line;
                } else if (!have_chunk)
                        chunk_from = line;
                chunk = grown;
                chunk_to = end;
                have_chunk = true;
                line = end < ch.n ? end + 1 : end;
        }
        if (have_chunk)
                r = split_emit(&out, utf8, ch.start[chunk_from], ch.start[chunk_to], max_segments, fold);
finish:
        chars_done(&ch);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(out);
        return 0;
}
