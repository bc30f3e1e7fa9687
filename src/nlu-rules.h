/* SPDX-License-Identifier: MIT */
/*
 * nlu-rules.h — the "rules" backend of nlu.h: the intent patterns, the
 * abbreviation table and the word lists of the rules file
 * (etc/nlu/intents.conf, an INI file an admin edits; its format is in
 * deliveryd.conf(5) and in the file's own comments), compiled with PCRE2
 * into an immutable NluRules that belongs to one configuration snapshot,
 * plus the product names and aliases of the catalog and the streets and
 * neighbourhoods of the zones.  No customer sentence lives in C: what the
 * code knows is how to read tokens (quantities, house numbers, the shape
 * of an order id); every word and pattern comes from the files.
 *
 * Security: reads an admin-supplied file (every problem reported as
 * file:line, a bad pattern with PCRE2's message and offset) and untrusted
 * customer text: the text is cut at max_input bytes, every pattern runs
 * under PCRE2 match, depth and heap limits (a pattern that hits one simply
 * does not match), fuzzy matching is bounded per word, and PCRE2's memory
 * comes from alloc.h.
 */
#pragma once

#include <stddef.h>

#include "catalog.h"
#include "diag.h"
#include "macro.h"
#include "nlu.h"

typedef struct NluRules NluRules;

/* Read and compile the rules file at path.  catalog (may be NULL, to check
 * the file alone) gives the product names and aliases, categories, streets
 * and neighbourhoods; the rules keep copies, not pointers.  Problems go to
 * diags as file:line; returns 0 and a new NluRules, -EINVAL when any
 * problem was found, -ENOMEM.  A failing pcre2_jit_compile() (the unit's
 * MemoryDenyWriteExecute=yes refuses executable memory) is not a problem:
 * the interpreter runs the same patterns. */
int nlu_rules_load(const char *path, const Catalog *catalog, NluRules **ret, Diags *diags);

/* Frees r (NULL is fine); returns NULL. */
NluRules *nlu_rules_free(NluRules *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(NluRules *, nlu_rules_free);

/* How many [intent …] sections the rules have. */
size_t nlu_rules_n_intents(const NluRules *r);

/* The text as the intent patterns see it: normalised, abbreviations
 * expanded, [strip] lines dropped, tokens separated by single spaces.
 * For tests and for writing patterns.  Caller frees; -ENOMEM. */
int nlu_rules_normalize(const NluRules *r, const char *text, size_t len, char **ret);

/* Understand the first max_input bytes of text (len bytes, any content;
 * cut back to a character boundary).  Returns 0 and a new NluResult in
 * *ret (the caller frees it), -ENOMEM. */
int nlu_rules_parse(const NluRules *r, const char *text, size_t len, size_t max_input, NluResult **ret);

/* The same, but only the intent sections and the signals: items, address,
 * payment and order id are not looked for, and a message no intent
 * section matches is NLU_INTENT_OTHER (never place_order).  An intent a
 * section gives and the signals are what nlu_rules_parse() finds.  For a
 * decision that has to be made before a message is acknowledged (STOP),
 * at a fraction of a full parse's cost. */
int nlu_rules_parse_intent(const NluRules *r, const char *text, size_t len, size_t max_input, NluResult **ret);
