/* SPDX-License-Identifier: MIT */
/*
 * sms-text.h — a reply composed for SMS: which encoding a text needs (GSM
 * 03.38 7-bit, or UCS-2 as soon as one character is outside the GSM
 * tables), how many units and concatenated segments it takes, optional
 * folding of accents that GSM lacks ("ã" → "a") so that a Portuguese reply
 * stays in the cheaper encoding, and cutting a text that is too long at a
 * word boundary with an ellipsis.  Pure functions; nothing here logs.
 *
 * Units: GSM 7-bit counts septets (a character of the extension table,
 * ^ { } \ [ ~ ] | €, takes two: an escape and the character); UCS-2
 * counts UTF-16 code units (a character outside the BMP, such as an emoji,
 * takes two: a surrogate pair).  A single SMS holds 160 septets or 70
 * units; a concatenated one 153 or 67 per segment, and neither an escape
 * pair nor a surrogate pair is split between segments.
 *
 * Security: the text may hold untrusted words (a customer's address);
 * invalid UTF-8 is refused, every buffer is bounded by the input.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "macro.h"

typedef enum SmsEncoding {
        SMS_ENCODING_GSM7,
        SMS_ENCODING_UCS2,
        _SMS_ENCODING_MAX,
        _SMS_ENCODING_INVALID = -EINVAL,
} SmsEncoding;

#define SMS_SEGMENTS_MAX 10u

typedef struct SmsTextInfo {
        SmsEncoding encoding;
        unsigned segments; /* 0 for the empty text */
        size_t units; /* septets (GSM 7-bit) or UTF-16 code units (UCS-2) */
        bool folded; /* accents were folded to reach GSM 7-bit */
        bool truncated; /* the text was cut to fit max_segments */
} SmsTextInfo;

/* "gsm7", "ucs2"; NULL for a value out of range. */
const char *sms_encoding_to_string(SmsEncoding e);
SmsEncoding sms_encoding_from_string(const char *s);

/* Measure a NUL-terminated UTF-8 text as it is: its encoding, units and
 * segments (folded and truncated false).  0, -EINVAL (invalid UTF-8). */
int sms_text_measure(const char *utf8, SmsTextInfo *ret_info);

/* Compose utf8 for sending as SMS.  With fold, a text that needs UCS-2
 * only because of accents GSM lacks is folded into GSM 7-bit (letters GSM
 * has, such as é, ü, ñ, Ç, à, stay; ç becomes c, typographic quotes and
 * dashes become plain ones); a text that still needs UCS-2 is kept as it
 * was.  A text longer than max_segments is cut after the last whole word
 * that leaves room for an ellipsis ("..." in GSM 7-bit, "…" in UCS-2),
 * never inside a character, an escape or a surrogate pair.  Returns 0 with
 * the text to send in *ret_text (the caller frees it) and its measure in
 * *ret_info (may be NULL); -EINVAL for invalid UTF-8 or max_segments
 * outside 1 … SMS_SEGMENTS_MAX, -ENOMEM. */
int sms_text_compose(const char *utf8, unsigned max_segments, bool fold, char **ret_text, SmsTextInfo *ret_info);

/* Text as SMS bodies (a NULL-terminated list in *ret, strv_free()), each
 * composed as sms_text_compose() does with fold — or, when fold is false
 * and a body would have to be cut, with its accents folded after all,
 * since that keeps it whole.  One body when the text fits max_segments;
 * otherwise it is cut between lines into as few bodies as fit, in order,
 * so that nothing is lost (a menu); a single line too long for one body
 * is cut at a word.  Linear in the text's length.  Returns 0, -EINVAL
 * (invalid UTF-8, max_segments out of range), -ENOMEM. */
int sms_text_split(const char *utf8, unsigned max_segments, bool fold, char ***ret);
