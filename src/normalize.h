/* SPDX-License-Identifier: MIT */
/*
 * normalize.h — turns a customer's message into the form the intent rules
 * and the item matcher read: lower case, accents folded (UTF-8 aware: á→a,
 * ç→c, ß→ss …), runs of three or more equal letters squeezed to one
 * ("simmm" → "sim"), punctuation reduced to three boundary tokens ("," "."
 * "?"), abbreviations expanded through a caller-supplied table, and every
 * token tied to the bytes of the original text it came from, so that an
 * address can be quoted as the customer wrote it.  What is an abbreviation
 * and which lines to drop (quoted replies, signatures) is the caller's
 * data; this module only applies it.  Pure functions; nothing here logs.
 *
 * Security: reads untrusted bytes (SMS and mail text): invalid UTF-8,
 * control characters and NUL bytes become separators, every buffer grows
 * with the input and nothing is read past len.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"

typedef enum NormTokenKind {
        NORM_WORD, /* letters, maybe with digits ("x", "2x", "9xk4mb", "#9xk4mb") */
        NORM_NUMBER, /* digits, maybe with inner ',', '.' or '-' ("800", "100,00", "01310-100") */
        NORM_PUNCT, /* "," (also ':' and ';'), "." (also '!' and a line break) or "?" */
} NormTokenKind;

typedef struct NormToken {
        const char *text; /* NUL-terminated, owned by the NormText */
        size_t len;
        NormTokenKind kind;
        size_t start, end; /* the bytes of the original text it stands for */
        size_t offset; /* where it starts in NormText.joined */
} NormToken;

typedef struct NormText {
        NormToken *tokens;
        size_t n_tokens;
        char *joined; /* the tokens separated by single spaces */
        size_t joined_len;
        char *storage; /* behind NormToken.text */
} NormText;

typedef enum NormLine {
        NORM_LINE_KEEP,
        NORM_LINE_DROP, /* this line only */
        NORM_LINE_CUT, /* this line and every later one */
} NormLine;

typedef struct NormOptions {
        /* The expansion of word (folded, squeezed; it may end in '.' or '/'
         * when the text has one there), as words separated by single
         * spaces, or NULL when it is not an abbreviation. */
        const char *(*expand)(const char *word, void *userdata);
        /* Decides about one line of the folded text (lower case, no
         * accents, punctuation still in place; not NUL-terminated).
         * Returns a NormLine, or < 0 to abort (-ENOMEM). */
        int (*line_filter)(const char *line, size_t len, void *userdata);
        void *userdata;
} NormOptions;

/* Normalise len bytes of s (any bytes; o and its callbacks may be NULL).
 * Leading and trailing punctuation tokens are dropped and runs of them
 * merged.  Returns 0 and a new NormText in *ret (free with
 * normalize_text_free()), -ENOMEM, or a callback's error. */
int normalize_text(const char *s, size_t len, const NormOptions *o, NormText **ret);

/* Frees t (NULL is fine); returns NULL. */
NormText *normalize_text_free(NormText *t);
DEFINE_TRIVIAL_CLEANUP_FUNC(NormText *, normalize_text_free);

/* Lower case and fold the accents of one NUL-terminated string, keeping
 * every other character ("Nº" → "nº", "End." → "end.").  NULL on OOM. */
char *normalize_fold(const char *s);

/* Fold the accented letters of a regular expression to ASCII, leaving
 * everything else (case, escapes, metacharacters) as written, so that a
 * rule "endereço" matches the folded text "endereco".  NULL on OOM. */
char *normalize_fold_pattern(const char *re);

/* A copy of s with every run of two or more equal letters reduced to one
 * ("siim" → "sim", "pizza" → "piza"): the tolerant second reading of a
 * message.  NULL on OOM. */
char *normalize_squeeze(const char *s);

/* The optimal-string-alignment distance between a and b (insertions,
 * deletions, substitutions and swaps of neighbours each cost 1), or
 * max + 1 when it is larger than max.  Bounded work: O(len(a) * len(b)). */
unsigned normalize_distance(const char *a, size_t a_len, const char *b, size_t b_len, unsigned max);

/* A copy of len bytes of s as valid UTF-8 on one line: invalid sequences
 * and control characters become spaces, runs of white space one space,
 * no leading or trailing space.  NULL on OOM. */
char *normalize_clean_span(const char *s, size_t len);

/* Whether len bytes of s are valid UTF-8 (no overlong forms, surrogates or
 * code points beyond U+10FFFF). */
bool normalize_utf8_valid(const char *s, size_t len);

#define NORMALIZE_CP_INVALID UINT32_MAX

/* Decode one code point from s (len > 0) into *ret_cp.  Returns the bytes
 * it takes; an invalid sequence (overlong, surrogate, beyond U+10FFFF,
 * truncated) takes one byte and gives NORMALIZE_CP_INVALID. */
size_t normalize_utf8_next(const char *s, size_t len, uint32_t *ret_cp);
