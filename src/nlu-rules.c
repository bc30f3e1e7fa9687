/* SPDX-License-Identifier: MIT */
/*
 * nlu-rules.c — the rules file reader and the rule-based reading of a
 * message: normalise (normalize.c, with the file's abbreviations and line
 * filters), pick the first [intent …] section, in file order, that has a
 * pattern matching the text and no "unless" pattern matching it, then find
 * the address, the items with their quantities, the payment method and
 * the order id in the tokens, and the language from the file's word lists
 * and the language of the patterns that matched.
 *
 * Security: see nlu-rules.h.
 */
#include "nlu-rules.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <string.h>

#include "alloc.h"
#include "ini.h"
#include "normalize.h"
#include "strutil.h"

#define PHRASE_WORDS_MAX 8 /* longest product name or number phrase used */
#define NAME_WORDS_MAX 6 /* longest street name after "rua" */
#define NAME_WORDS_BEFORE_MAX 4 /* … before "street" */
#define FILLER_MAX 3 /* words between a quantity and its product ("2 pizzas grandes de …") */
#define HOUSE_NUMBER_DIGITS 6
#define FUZZY_MIN 7 /* shortest catalog word matched with one typo ("frias" is not "fritas") */
#define FUZZY_TWO 10 /* shortest matched with two */
#define ORDER_ID_GAP 2 /* words between a context word and the id ("order number is 123456") */
#define MATCH_LIMIT 200000 /* PCRE2 backtracking steps per pattern and text */
#define DEPTH_LIMIT 10000
#define HEAP_LIMIT_KIB 4096
#define LANG_PATTERN_WEIGHT 2 /* a matching intent pattern counts as two words of its language */

typedef struct Regex {
        pcre2_code *code;
        int lang; /* NluLang, or -1: any language */
} Regex;

typedef struct RegexList {
        Regex *v;
        size_t n;
} RegexList;

typedef struct IntentRule {
        NluIntent intent;
        RegexList match, unless;
} IntentRule;

typedef struct Phrase {
        char **words;
        size_t n_words;
        size_t target; /* index into skus; or the value of a number phrase */
} Phrase;

typedef struct PhraseList {
        Phrase *v;
        size_t n;
} PhraseList;

typedef struct Abbrev {
        char *word; /* folded; may end in '.' or '/' */
        char *expansion; /* normalised words, single spaces */
} Abbrev;

struct NluRules {
        pcre2_general_context *gctx;
        pcre2_compile_context *cctx;
        pcre2_match_context *mctx;
        uint32_t max_groups;

        int default_lang; /* the first [language …] section, else pt */
        char **lang_words[_NLU_LANG_MAX];
        Abbrev *abbrevs; /* sorted by word */
        size_t n_abbrevs;
        RegexList strip_line, strip_cut;
        IntentRule *intents; /* in file order: the first that matches wins */
        size_t n_intents;
        RegexList pay[_NLU_PAYMENT_MAX], change[_NLU_PAYMENT_MAX];
        RegexList signals[_NLU_SIGNAL_MAX];
        char **filler; /* the file's, plus the catalog's categories */
        PhraseList numbers;
        char **street_before, **street_after, **complements, **connectors, **number_words, **name_stop;
        char **order_context, **order_gap;

        char **skus;
        PhraseList products, streets, neighbourhoods;
};

/* ---- memory ------------------------------------------------------------- */

static void *pcre_malloc(PCRE2_SIZE size, void *data _unused_) {
        return mem_malloc(size);
}

static void pcre_free(void *p, void *data _unused_) {
        free(p);
}

static void regex_list_done(RegexList *l) {
        for (size_t i = 0; i < l->n; i++)
                pcre2_code_free(l->v[i].code);
        free(l->v);
        *l = (RegexList){};
}

static void phrase_list_done(PhraseList *l) {
        for (size_t i = 0; i < l->n; i++)
                strv_free(l->v[i].words);
        free(l->v);
        *l = (PhraseList){};
}

NluRules *nlu_rules_free(NluRules *r) {
        if (!r)
                return NULL;
        for (size_t i = 0; i < _NLU_LANG_MAX; i++)
                strv_free(r->lang_words[i]);
        for (size_t i = 0; i < r->n_abbrevs; i++) {
                free(r->abbrevs[i].word);
                free(r->abbrevs[i].expansion);
        }
        free(r->abbrevs);
        regex_list_done(&r->strip_line);
        regex_list_done(&r->strip_cut);
        for (size_t i = 0; i < r->n_intents; i++) {
                regex_list_done(&r->intents[i].match);
                regex_list_done(&r->intents[i].unless);
        }
        free(r->intents);
        for (size_t i = 0; i < _NLU_PAYMENT_MAX; i++) {
                regex_list_done(&r->pay[i]);
                regex_list_done(&r->change[i]);
        }
        for (size_t i = 0; i < _NLU_SIGNAL_MAX; i++)
                regex_list_done(&r->signals[i]);
        strv_free(r->filler);
        phrase_list_done(&r->numbers);
        strv_free(r->street_before);
        strv_free(r->street_after);
        strv_free(r->complements);
        strv_free(r->connectors);
        strv_free(r->number_words);
        strv_free(r->name_stop);
        strv_free(r->order_context);
        strv_free(r->order_gap);
        strv_free(r->skus);
        phrase_list_done(&r->products);
        phrase_list_done(&r->streets);
        phrase_list_done(&r->neighbourhoods);
        pcre2_match_context_free(r->mctx);
        pcre2_compile_context_free(r->cctx);
        pcre2_general_context_free(r->gctx);
        free(r);
        return NULL;
}

size_t nlu_rules_n_intents(const NluRules *r) {
        return r ? r->n_intents : 0;
}

/* ---- text helpers used by loading and parsing ------------------------------- */

static const char *expand_cb(const char *word, void *userdata) {
        const NluRules *r = userdata;
        size_t lo = 0, hi = r->n_abbrevs;

        while (lo < hi) {
                size_t mid = (lo + hi) / 2;
                int c = strcmp(word, r->abbrevs[mid].word);
                if (c == 0)
                        return r->abbrevs[mid].expansion;
                if (c < 0)
                        hi = mid;
                else
                        lo = mid + 1;
        }
        return NULL;
}

/* The words of s as the text reader would see them (no punctuation);
 * with_abbrevs applies the abbreviation table.  Returns a strv (maybe
 * empty), NULL on OOM. */
static char **words_of(const NluRules *r, const char *s, bool with_abbrevs) {
        _cleanup_(normalize_text_freep) NormText *nt = NULL;
        NormOptions o = { .expand = expand_cb, .userdata = (void *) r };
        _cleanup_strv_free_ char **l = mem_new(char *, 1);

        if (!l || normalize_text(s, strlen(s), with_abbrevs ? &o : NULL, &nt) < 0)
                return NULL;
        for (size_t i = 0; i < nt->n_tokens; i++)
                if (nt->tokens[i].kind != NORM_PUNCT && strv_extend(&l, nt->tokens[i].text) < 0)
                        return NULL;
        return TAKE_PTR(l);
}

static int strv_extend_all(char ***l, char *const *add) {
        for (size_t i = 0; add && add[i]; i++)
                if (!strv_contains(*l, add[i]) && strv_extend(l, add[i]) < 0)
                        return -ENOMEM;
        return 0;
}

/* ---- the rules file --------------------------------------------------------- */

typedef enum SectionKind {
        SECTION_NONE, /* before the first header, or after a bad one */
        SECTION_LANGUAGE,
        SECTION_ABBREVIATIONS,
        SECTION_STRIP,
        SECTION_INTENT,
        SECTION_PAYMENT,
        SECTION_ITEMS,
        SECTION_NUMBERS,
        SECTION_ADDRESS,
        SECTION_ORDER_ID,
        SECTION_SIGNAL,
} SectionKind;

static const struct {
        const char *name;
        SectionKind kind;
        bool named; /* "[intent help]" */
} sections[] = {
        { "language", SECTION_LANGUAGE, true },  { "abbreviations", SECTION_ABBREVIATIONS, false },
        { "strip", SECTION_STRIP, false },       { "intent", SECTION_INTENT, true },
        { "payment", SECTION_PAYMENT, true },    { "items", SECTION_ITEMS, false },
        { "numbers", SECTION_NUMBERS, false },   { "address", SECTION_ADDRESS, false },
        { "order_id", SECTION_ORDER_ID, false }, { "signal", SECTION_SIGNAL, true },
};

typedef struct Loader {
        NluRules *rules;
        Diags *diags;
        SectionKind kind;
        int arg; /* language, intent index or payment of the section */
        char **seen; /* section names, for duplicates */
        bool have_language;
} Loader;

static const char *enum_choices(const char *(*to_string)(int), int max, char *buf, size_t size) {
        size_t n = 0;

        buf[0] = '\0';
        for (int i = 0; i < max; i++)
                n += (size_t) snprintf(buf + MIN(n, size - 1), size - MIN(n, size - 1), "%s%s", i ? ", " : "",
                                       to_string(i));
        return buf;
}

static const char *intent_name(int i) {
        return nlu_intent_to_string((NluIntent) i);
}
static const char *lang_name(int i) {
        return nlu_lang_to_string((NluLang) i);
}
static const char *payment_name(int i) {
        return nlu_payment_to_string((NluPayment) i);
}
static const char *signal_name(int i) {
        return nlu_signal_to_string((NluSignal) i);
}

static int section_start(Loader *ld, const char *file, unsigned line, const char *section) {
        NluRules *r = ld->rules;
        size_t n = strcspn(section, " ");
        const char *arg = section + n + strspn(section + n, " ");
        char choices[256];

        ld->kind = SECTION_NONE;
        for (size_t i = 0; i < ELEMENTSOF(sections); i++) {
                if (strlen(sections[i].name) != n || strncmp(section, sections[i].name, n) != 0)
                        continue;
                if (sections[i].named != !!*arg) {
                        diags_add(ld->diags, file, line,
                                  sections[i].named ? "section [%s] needs a name: [%s NAME]"
                                                    : "section [%s] takes no name",
                                  sections[i].name, sections[i].name);
                        return 0;
                }
                if (strv_contains(ld->seen, section)) {
                        diags_add(ld->diags, file, line, "duplicate section [%s]", section);
                        return 0;
                }
                if (strv_extend(&ld->seen, section) < 0)
                        return -ENOMEM;

                switch (sections[i].kind) {
                case SECTION_LANGUAGE:
                        ld->arg = nlu_lang_from_string(arg);
                        if (ld->arg < 0) {
                                diags_add(ld->diags, file, line, "unknown language '%s' (one of: %s)", arg,
                                          enum_choices(lang_name, _NLU_LANG_MAX, choices, sizeof choices));
                                return 0;
                        }
                        if (!ld->have_language)
                                r->default_lang = ld->arg;
                        ld->have_language = true;
                        break;
                case SECTION_INTENT: {
                        int intent = nlu_intent_from_string(arg);
                        if (intent < 0) {
                                diags_add(ld->diags, file, line, "unknown intent '%s' (one of: %s)", arg,
                                          enum_choices(intent_name, _NLU_INTENT_MAX, choices, sizeof choices));
                                return 0;
                        }
                        IntentRule *v = mem_realloc(r->intents, (r->n_intents + 1) * sizeof(IntentRule));
                        if (!v)
                                return -ENOMEM;
                        r->intents = v;
                        r->intents[r->n_intents] = (IntentRule){ .intent = (NluIntent) intent };
                        ld->arg = (int) r->n_intents++;
                        break;
                }
                case SECTION_SIGNAL:
                        ld->arg = nlu_signal_from_string(arg);
                        if (ld->arg < 0) {
                                diags_add(ld->diags, file, line, "unknown signal '%s' (one of: %s)", arg,
                                          enum_choices(signal_name, _NLU_SIGNAL_MAX, choices, sizeof choices));
                                return 0;
                        }
                        break;
                case SECTION_PAYMENT:
                        ld->arg = nlu_payment_from_string(arg);
                        if (ld->arg < 0) {
                                diags_add(ld->diags, file, line, "unknown payment method '%s' (one of: %s)", arg,
                                          enum_choices(payment_name, _NLU_PAYMENT_MAX, choices, sizeof choices));
                                return 0;
                        }
                        break;
                default:
                        break;
                }
                ld->kind = sections[i].kind;
                return 0;
        }
        diags_add(ld->diags, file, line, "unknown section [%s]", section);
        return 0;
}

/* Compile value into l.  The pattern is first compiled as written, so that
 * an error's offset is the one the admin sees, then with its accents
 * folded as the text is. */
static int regex_add(Loader *ld, const char *file, unsigned line, const char *value, int lang, unsigned min_groups,
                     RegexList *l) {
        NluRules *r = ld->rules;
        _cleanup_free_ char *folded = NULL;
        const uint32_t flags = PCRE2_UTF | PCRE2_CASELESS;
        pcre2_code *code;
        PCRE2_SIZE offset;
        uint32_t groups = 0;
        int err;

        if (!*value) {
                diags_add(ld->diags, file, line, "empty pattern");
                return 0;
        }
        for (int pass = 0; pass < 2; pass++) {
                if (pass == 1) {
                        folded = normalize_fold_pattern(value);
                        if (!folded)
                                return -ENOMEM;
                }
                code = pcre2_compile((PCRE2_SPTR) (pass ? folded : value), PCRE2_ZERO_TERMINATED, flags, &err, &offset,
                                     r->cctx);
                if (!code) {
                        PCRE2_UCHAR msg[256];
                        if (err == PCRE2_ERROR_HEAP_FAILED)
                                return -ENOMEM;
                        if (pcre2_get_error_message(err, msg, sizeof msg) < 0)
                                strscpy((char *) msg, sizeof msg, "unknown error");
                        diags_add(ld->diags, file, line, "bad pattern '%s': %s at offset %zu", value, (char *) msg,
                                  (size_t) offset);
                        return 0;
                }
                if (pass == 0)
                        pcre2_code_free(code);
        }
        /* Under MemoryDenyWriteExecute=yes this fails: the interpreter
         * gives the same answers, a little slower.  Memory checkers cannot
         * follow JIT code (valgrind reports its reads as uninitialised):
         * DELIVERYD_PCRE2_JIT=0 turns it off for them. */
        if (!streq(strempty(getenv("DELIVERYD_PCRE2_JIT")), "0"))
                (void) pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
        (void) pcre2_pattern_info(code, PCRE2_INFO_CAPTURECOUNT, &groups);
        if (groups < min_groups) {
                diags_add(ld->diags, file, line, "pattern '%s' needs a (group) around the amount", value);
                pcre2_code_free(code);
                return 0;
        }
        Regex *v = mem_realloc(l->v, (l->n + 1) * sizeof(Regex));
        if (!v) {
                pcre2_code_free(code);
                return -ENOMEM;
        }
        l->v = v;
        l->v[l->n++] = (Regex){ .code = code, .lang = lang };
        r->max_groups = MAX(r->max_groups, groups);
        return 0;
}

static int words_add(Loader *ld, char ***l, const char *value) {
        _cleanup_strv_free_ char **w = words_of(ld->rules, value, false);

        if (!w)
                return -ENOMEM;
        if (!*l) {
                *l = mem_new(char *, 1);
                if (!*l)
                        return -ENOMEM;
        }
        return strv_extend_all(l, w);
}

static int abbrev_add(Loader *ld, const char *file, unsigned line, const char *key, const char *value) {
        NluRules *r = ld->rules;
        _cleanup_free_ char *word = normalize_fold(key), *expansion = NULL;
        _cleanup_strv_free_ char **w = NULL;
        size_t n;

        if (!word)
                return -ENOMEM;
        n = strlen(word);
        /* one word as the reader cuts them, maybe with the '.' or '/' that ends an abbreviation */
        _cleanup_strv_free_ char **k = words_of(r, word, false);
        if (!k)
                return -ENOMEM;
        bool ok = strv_length(k) == 1 && n > 0;
        if (ok) {
                size_t kl = strlen(k[0]);
                ok = kl == n || (kl + 1 == n && (word[n - 1] == '.' || word[n - 1] == '/'));
                ok = ok && strncmp(k[0], word, kl) == 0;
        }
        if (!ok) {
                diags_add(ld->diags, file, line, "abbreviation '%s' is not one word", key);
                return 0;
        }
        w = words_of(r, value, false);
        if (!w)
                return -ENOMEM;
        if (!w[0]) {
                diags_add(ld->diags, file, line, "abbreviation '%s' has an empty expansion", key);
                return 0;
        }
        expansion = strv_join(w, " ");
        if (!expansion)
                return -ENOMEM;
        for (size_t i = 0; i < r->n_abbrevs; i++)
                if (streq(r->abbrevs[i].word, word)) {
                        diags_add(ld->diags, file, line, "duplicate abbreviation '%s'", key);
                        return 0;
                }
        Abbrev *v = mem_realloc(r->abbrevs, (r->n_abbrevs + 1) * sizeof(Abbrev));
        if (!v)
                return -ENOMEM;
        r->abbrevs = v;
        /* kept sorted: the reader looks words up by bisection */
        size_t at = 0;
        while (at < r->n_abbrevs && strcmp(r->abbrevs[at].word, word) < 0)
                at++;
        memmove(r->abbrevs + at + 1, r->abbrevs + at, (r->n_abbrevs - at) * sizeof(Abbrev));
        r->abbrevs[at] = (Abbrev){ .word = TAKE_PTR(word), .expansion = TAKE_PTR(expansion) };
        r->n_abbrevs++;
        return 0;
}

static int phrase_add(PhraseList *l, char **words, size_t target) {
        size_t n = strv_length(words);

        if (n == 0 || n > PHRASE_WORDS_MAX) {
                strv_free(words);
                return 0;
        }
        for (size_t i = 0; i < l->n; i++)
                if (strv_equal(l->v[i].words, words)) { /* the first product to claim a name keeps it */
                        strv_free(words);
                        return 0;
                }
        Phrase *v = mem_realloc(l->v, (l->n + 1) * sizeof(Phrase));
        if (!v) {
                strv_free(words);
                return -ENOMEM;
        }
        l->v = v;
        l->v[l->n++] = (Phrase){ .words = words, .n_words = n, .target = target };
        return 0;
}

static int number_add(Loader *ld, const char *file, unsigned line, const char *key, const char *value) {
        char **w = words_of(ld->rules, key, false);
        uint64_t v;

        if (!w)
                return -ENOMEM;
        if (parse_uint64(value, &v) < 0 || v < 1 || v > NLU_QTY_MAX) {
                diags_add(ld->diags, file, line, "number '%s': invalid value '%s' (1 to %u)", key, value, NLU_QTY_MAX);
                strv_free(w);
                return 0;
        }
        if (!w[0] || strv_length(w) > PHRASE_WORDS_MAX) {
                diags_add(ld->diags, file, line, "number '%s' must be 1 to %d words", key, PHRASE_WORDS_MAX);
                strv_free(w);
                return 0;
        }
        return phrase_add(&ld->rules->numbers, w, (size_t) v);
}

static int key_cb(const char *file, unsigned line, const char *section, const char *key, const char *value,
                  void *userdata) {
        Loader *ld = userdata;
        NluRules *r = ld->rules;
        int lang;

        if (!key)
                return section_start(ld, file, line, section);

        switch (ld->kind) {
        case SECTION_NONE:
                return 0; /* reported at the header */
        case SECTION_LANGUAGE:
                if (streq(key, "words"))
                        return words_add(ld, &r->lang_words[ld->arg], value);
                break;
        case SECTION_ABBREVIATIONS:
                return abbrev_add(ld, file, line, key, value);
        case SECTION_STRIP:
                if (streq(key, "line"))
                        return regex_add(ld, file, line, value, -1, 0, &r->strip_line);
                if (streq(key, "cut"))
                        return regex_add(ld, file, line, value, -1, 0, &r->strip_cut);
                break;
        case SECTION_INTENT: {
                IntentRule *ir = &r->intents[ld->arg];
                if (streq(key, "unless"))
                        return regex_add(ld, file, line, value, -1, 0, &ir->unless);
                if (streq(key, "any"))
                        return regex_add(ld, file, line, value, -1, 0, &ir->match);
                lang = nlu_lang_from_string(key);
                if (lang >= 0)
                        return regex_add(ld, file, line, value, lang, 0, &ir->match);
                break;
        }
        case SECTION_PAYMENT:
                if (streq(key, "pattern"))
                        return regex_add(ld, file, line, value, -1, 0, &r->pay[ld->arg]);
                if (streq(key, "change"))
                        return regex_add(ld, file, line, value, -1, 1, &r->change[ld->arg]);
                break;
        case SECTION_ITEMS:
                if (streq(key, "filler"))
                        return words_add(ld, &r->filler, value);
                break;
        case SECTION_NUMBERS:
                return number_add(ld, file, line, key, value);
        case SECTION_ADDRESS: {
                static const struct {
                        const char *key;
                        size_t offset;
                } lists[] = {
                        { "before", offsetof(NluRules, street_before) },
                        { "after", offsetof(NluRules, street_after) },
                        { "complement", offsetof(NluRules, complements) },
                        { "connector", offsetof(NluRules, connectors) },
                        { "number", offsetof(NluRules, number_words) },
                        { "stop", offsetof(NluRules, name_stop) },
                };
                for (size_t i = 0; i < ELEMENTSOF(lists); i++)
                        if (streq(key, lists[i].key))
                                return words_add(ld, (char ***) ((uint8_t *) r + lists[i].offset), value);
                break;
        }
        case SECTION_SIGNAL:
                if (streq(key, "any"))
                        return regex_add(ld, file, line, value, -1, 0, &r->signals[ld->arg]);
                lang = nlu_lang_from_string(key);
                if (lang >= 0)
                        return regex_add(ld, file, line, value, lang, 0, &r->signals[ld->arg]);
                break;
        case SECTION_ORDER_ID:
                if (streq(key, "context"))
                        return words_add(ld, &r->order_context, value);
                if (streq(key, "gap"))
                        return words_add(ld, &r->order_gap, value);
                break;
        }
        diags_add(ld->diags, file, line, "unknown key '%s' in section [%s]", key, section);
        return 0;
}

/* Product names, categories, streets and neighbourhoods, read as a
 * customer's words are. */
static int add_catalog(NluRules *r, const Catalog *c) {
        int k;

        for (size_t i = 0; c && i < catalog_n_items(c); i++) {
                const CatalogItem *it = catalog_item(c, i);
                const char *names[] = { it->name_pt, it->name_en };

                if (strv_extend(&r->skus, it->sku) < 0)
                        return -ENOMEM;
                for (size_t j = 0; j < ELEMENTSOF(names) + strv_length(it->aliases); j++) {
                        const char *name = j < ELEMENTSOF(names) ? names[j] : it->aliases[j - ELEMENTSOF(names)];
                        /* "Batata Frita (porção)" is also "Batata Frita" */
                        _cleanup_free_ char *bare = mem_strdup(name);
                        char *open;

                        if (!bare)
                                return -ENOMEM;
                        while ((open = strchr(bare, '('))) {
                                char *close = strchr(open, ')');
                                memmove(open, close ? close + 1 : open + strlen(open),
                                        strlen(close ? close + 1 : open + strlen(open)) + 1);
                        }
                        for (int v = 0; v < 2; v++) {
                                char **w = words_of(r, v ? bare : name, true);
                                if (!w || phrase_add(&r->products, w, i) < 0)
                                        return -ENOMEM;
                        }
                }
                if (it->category) {
                        _cleanup_strv_free_ char **w = words_of(r, it->category, true);
                        if (!w || strv_extend_all(&r->filler, w) < 0)
                                return -ENOMEM;
                }
        }
        for (size_t i = 0; c && i < catalog_n_zones(c); i++) {
                const Zone *z = catalog_zone(c, i);
                for (char **s = z->streets; s && *s; s++) {
                        char **w = words_of(r, *s, true);
                        if (!w)
                                return -ENOMEM;
                        /* "Rua Augusta" is found as "augusta" when the customer leaves out "rua" */
                        if (w[0] && w[1] && strv_contains(r->street_before, w[0])) {
                                free(w[0]);
                                memmove(w, w + 1, strv_length(w) * sizeof(char *));
                        }
                        if ((k = phrase_add(&r->streets, w, 0)) < 0)
                                return k;
                }
                for (char **s = z->neighbourhoods; s && *s; s++) {
                        char **w = words_of(r, *s, true);
                        if (!w || phrase_add(&r->neighbourhoods, w, 0) < 0)
                                return -ENOMEM;
                }
        }
        return 0;
}

int nlu_rules_load(const char *path, const Catalog *catalog, NluRules **ret, Diags *diags) {
        _cleanup_(nlu_rules_freep) NluRules *r = NULL;
        _cleanup_strv_free_ char **seen = NULL;
        Diags local = {};
        Loader ld;
        int k;

        r = mem_new(NluRules, 1);
        if (!r)
                return -ENOMEM;
        r->default_lang = NLU_LANG_PT;
        r->gctx = pcre2_general_context_create(pcre_malloc, pcre_free, NULL);
        r->cctx = r->gctx ? pcre2_compile_context_create(r->gctx) : NULL;
        r->mctx = r->gctx ? pcre2_match_context_create(r->gctx) : NULL;
        seen = mem_new(char *, 1);
        r->skus = mem_new(char *, 1);
        r->filler = mem_new(char *, 1);
        if (!r->cctx || !r->mctx || !seen || !r->skus || !r->filler)
                return -ENOMEM;
        pcre2_set_match_limit(r->mctx, MATCH_LIMIT);
        pcre2_set_depth_limit(r->mctx, DEPTH_LIMIT);
        pcre2_set_heap_limit(r->mctx, HEAP_LIMIT_KIB);

        ld = (Loader){ .rules = r, .diags = &local, .seen = seen };
        k = ini_parse_file(path, key_cb, &ld, &local);
        seen = ld.seen;
        if (k == -ENOMEM)
                goto finish;
        if (k < 0)
                diags_add(&local, path, 0, "cannot read rules: %s", strerror(-k));
        k = add_catalog(r, catalog);
        if (k < 0)
                goto finish;

        k = diags_to_errno(&local);
        if (k == 0)
                *ret = TAKE_PTR(r);
finish:
        diags_merge(diags, &local);
        diags_clear(&local);
        return k;
}

/* ---- reading a message ------------------------------------------------------ */

typedef struct Parse {
        const NluRules *rules;
        const char *text; /* the original, cut to max_input */
        NormText *nt;
        pcre2_match_data *md;
        bool *used; /* per token: already part of an address, item or quantity */
        NluResult *res;
} Parse;

/* 1 and where it starts when re matches s, 0 when not (a pattern that
 * hits a PCRE2 limit does not match), -ENOMEM. */
static int regex_find(const Parse *p, const pcre2_code *re, const char *s, size_t len, size_t *ret_start) {
        int rc = pcre2_match(re, (PCRE2_SPTR) s, len, 0, 0, p->md, p->rules->mctx);

        if (rc == PCRE2_ERROR_NOMEMORY)
                return -ENOMEM;
        if (rc < 0)
                return 0;
        if (ret_start)
                *ret_start = pcre2_get_ovector_pointer(p->md)[0];
        return 1;
}

static int line_filter_cb(const char *line, size_t len, void *userdata) {
        const Parse *p = userdata;
        int k;

        for (size_t i = 0; i < p->rules->strip_cut.n; i++)
                if ((k = regex_find(p, p->rules->strip_cut.v[i].code, line, len, NULL)) != 0)
                        return k < 0 ? k : NORM_LINE_CUT;
        for (size_t i = 0; i < p->rules->strip_line.n; i++)
                if ((k = regex_find(p, p->rules->strip_line.v[i].code, line, len, NULL)) != 0)
                        return k < 0 ? k : NORM_LINE_DROP;
        return NORM_LINE_KEEP;
}

static int any_match(const Parse *p, const RegexList *l, const char *s, size_t len) {
        for (size_t i = 0; i < l->n; i++) {
                int k = regex_find(p, l->v[i].code, s, len, NULL);
                if (k != 0)
                        return k;
        }
        return 0;
}

/* The first intent section that matches s: its index, or -1; the
 * languages of its matching patterns go to lang_hits. -ENOMEM. */
static int find_intent(const Parse *p, const char *s, size_t len, bool lang_hits[static _NLU_LANG_MAX], ssize_t *ret) {
        const NluRules *r = p->rules;

        for (size_t i = 0; i < r->n_intents; i++) {
                const IntentRule *ir = &r->intents[i];
                bool hit = false;
                int k = any_match(p, &ir->unless, s, len);

                if (k < 0)
                        return k;
                if (k > 0)
                        continue;
                for (size_t j = 0; j < ir->match.n; j++) {
                        k = regex_find(p, ir->match.v[j].code, s, len, NULL);
                        if (k < 0)
                                return k;
                        if (k > 0) {
                                hit = true;
                                if (ir->match.v[j].lang >= 0)
                                        lang_hits[ir->match.v[j].lang] = true;
                        }
                }
                if (hit) {
                        *ret = (ssize_t) i;
                        return 0;
                }
        }
        *ret = -1;
        return 0;
}

static const NormToken *tok(const Parse *p, size_t i) {
        return i < p->nt->n_tokens ? &p->nt->tokens[i] : NULL;
}

static bool tok_in(const Parse *p, size_t i, char *const *list) {
        const NormToken *t = tok(p, i);
        return t && t->kind != NORM_PUNCT && strv_contains(list, t->text);
}

static bool tok_punct(const Parse *p, size_t i, char c) {
        const NormToken *t = tok(p, i);
        return t && t->kind == NORM_PUNCT && t->text[0] == c;
}

static bool all_digits(const char *s, size_t n) {
        if (n == 0)
                return false;
        for (size_t i = 0; i < n; i++)
                if (s[i] < '0' || s[i] > '9')
                        return false;
        return true;
}

/* "800", "1500a": the number of a building. */
static bool tok_house_number(const Parse *p, size_t i) {
        const NormToken *t = tok(p, i);
        size_t d;

        if (!t || p->used[i] || t->text[0] == '#')
                return false;
        d = strspn(t->text, "0123456789");
        return d >= 1 && d <= HOUSE_NUMBER_DIGITS && t->text[d] != '0' &&
                (t->len == d || (t->len == d + 1 && t->text[d] >= 'a' && t->text[d] <= 'z' && t->text[d] != 'x'));
}

/* A CEP: 01310-100 or 01310100. */
static bool tok_cep(const Parse *p, size_t i) {
        const NormToken *t = tok(p, i);
        return t && t->kind == NORM_NUMBER &&
                ((t->len == 9 && t->text[5] == '-' && all_digits(t->text, 5) && all_digits(t->text + 6, 3)) ||
                 (t->len == 8 && all_digits(t->text, 8)));
}

static bool word_is_stop(const Parse *p, size_t i) {
        const NluRules *r = p->rules;

        if (tok_in(p, i, r->connectors))
                return false;
        for (size_t l = 0; l < _NLU_LANG_MAX; l++)
                if (tok_in(p, i, r->lang_words[l]))
                        return true;
        return tok_in(p, i, r->name_stop) || tok_in(p, i, r->street_before) || tok_in(p, i, r->street_after) ||
                tok_in(p, i, r->complements) || tok_in(p, i, r->number_words);
}

/* A word that may be part of a street's name. */
static bool tok_name_word(const Parse *p, size_t i) {
        const NormToken *t = tok(p, i);
        return t && !p->used[i] && t->kind == NORM_WORD && t->text[0] != '#' && !word_is_stop(p, i);
}

/* Length of phrase ph at token i (exact words), or 0. */
static size_t phrase_at(const Parse *p, size_t i, const Phrase *ph) {
        for (size_t k = 0; k < ph->n_words; k++) {
                const NormToken *t = tok(p, i + k);
                if (!t || p->used[i + k] || !streq(t->text, ph->words[k]))
                        return 0;
        }
        return ph->n_words;
}

static size_t longest_phrase_at(const Parse *p, size_t i, const PhraseList *l, const Phrase **ret) {
        size_t best = 0;

        for (size_t k = 0; k < l->n; k++) {
                size_t n = phrase_at(p, i, &l->v[k]);
                if (n > best) {
                        best = n;
                        if (ret)
                                *ret = &l->v[k];
                }
        }
        return best;
}

/* After the house number: complements ("apto 32", "bloco b"), the
 * neighbourhood and the CEP, each maybe after a comma. */
static size_t address_tail(const Parse *p, size_t e) {
        const NluRules *r = p->rules;

        for (unsigned round = 0; round < 4; round++) {
                size_t k = e + (tok_punct(p, e, ',') ? 1 : 0), n;
                const NormToken *next;

                if (tok_in(p, k, r->complements) && !p->used[k]) {
                        e = k + 1;
                        next = tok(p, e);
                        if (next && !p->used[e] && next->kind != NORM_PUNCT &&
                            (next->kind == NORM_NUMBER || next->len <= 3) && !word_is_stop(p, e))
                                e++;
                        continue;
                }
                if ((n = longest_phrase_at(p, k, &r->neighbourhoods, NULL)) > 0) {
                        e = k + n;
                        continue;
                }
                if (tok_cep(p, k)) {
                        e = k + 1;
                        continue;
                }
                break;
        }
        return e;
}

typedef struct Span {
        size_t start, end; /* tokens [start, end) */
        bool has_number;
} Span;

/* The number after a street name: "Augusta 1500", "Augusta, 1500", "Augusta nº 1500". */
static bool number_after(const Parse *p, size_t *k) {
        size_t j = *k;

        if (tok_punct(p, j, ','))
                j++;
        if (tok_in(p, j, p->rules->number_words))
                j++;
        if (!tok_house_number(p, j))
                return false;
        *k = j;
        return true;
}

/* "Rua Augusta 1500 apto 3", "12 Rua Harmonia", "Rua da Consolação". */
static bool address_type_before(const Parse *p, size_t i, Span *ret) {
        const NluRules *r = p->rules;
        size_t j = i + 1, name;

        if (!tok_in(p, i, r->street_before) || p->used[i])
                return false;
        /* "Rua 25 de Março" */
        if (tok_house_number(p, j) && tok_in(p, j + 1, r->connectors) && tok_name_word(p, j + 2))
                j++;
        name = j;
        while (j - name < NAME_WORDS_MAX && tok_name_word(p, j))
                j++;
        while (j > name && tok_in(p, j - 1, r->connectors))
                j--;
        if (j == name)
                return false;
        size_t k = j;
        if (number_after(p, &k))
                *ret = (Span){ i, address_tail(p, k + 1), true };
        else if (i > 0 && tok_house_number(p, i - 1))
                *ret = (Span){ i - 1, address_tail(p, j), true };
        else
                *ret = (Span){ i, address_tail(p, j), false };
        return true;
}

/* "1500 Augusta Street", "Baker Street 221". */
static bool address_type_after(const Parse *p, size_t k, Span *ret) {
        const NluRules *r = p->rules;
        size_t b = k;

        if (!tok_in(p, k, r->street_after) || p->used[k])
                return false;
        while (b > 0 && k - b < NAME_WORDS_BEFORE_MAX && tok_name_word(p, b - 1))
                b--;
        while (b < k && tok_in(p, b, r->connectors))
                b++;
        if (b == k)
                return false;
        size_t e = k + 1;
        if (b > 0 && tok_house_number(p, b - 1))
                *ret = (Span){ b - 1, address_tail(p, k + 1), true };
        else if (number_after(p, &e))
                *ret = (Span){ b, address_tail(p, e + 1), true };
        else
                *ret = (Span){ b, k + 1, false };
        return true;
}

/* A street of the zones without its type: "na Augusta 1500". */
static bool address_known_street(const Parse *p, size_t i, Span *ret) {
        size_t n = longest_phrase_at(p, i, &p->rules->streets, NULL), k = i + n;

        if (n == 0 || !number_after(p, &k))
                return false;
        *ret = (Span){ i, address_tail(p, k + 1), true };
        return true;
}

static int find_address(Parse *p) {
        Span best = {}, s;
        bool found = false;

        for (size_t i = 0; i < p->nt->n_tokens; i++) {
                bool ok =
                        address_type_before(p, i, &s) || address_type_after(p, i, &s) || address_known_street(p, i, &s);
                if (!ok)
                        continue;
                /* one with a house number beats one without; then the first */
                if (!found || (s.has_number && !best.has_number)) {
                        best = s;
                        found = true;
                }
                if (best.has_number)
                        break;
        }
        if (!found)
                return 0;
        const NormToken *a = tok(p, best.start), *z = tok(p, best.end - 1);
        p->res->address = normalize_clean_span(p->text + a->start, z->end - a->start);
        if (!p->res->address)
                return -ENOMEM;
        for (size_t i = best.start; i < best.end; i++)
                p->used[i] = true;
        return 0;
}

/* ---- items ---------------------------------------------------------------------- */

static bool is_alpha_word(const char *s, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (s[i] < 'a' || s[i] > 'z')
                        return false;
        return n > 0;
}

/* a is a plural of b: +s, +es, ão→ões/ães, l→is. */
static bool plural_of(const char *a, size_t al, const char *b, size_t bl) {
        if (al == bl + 1 && a[bl] == 's' && strncmp(a, b, bl) == 0)
                return true;
        if (al == bl + 2 && strncmp(a + bl, "es", 2) == 0 && strncmp(a, b, bl) == 0)
                return true;
        if (bl >= 3 && al == bl + 1 && strncmp(b + bl - 2, "ao", 2) == 0 && strncmp(a, b, bl - 2) == 0 &&
            (strncmp(a + bl - 2, "oes", 3) == 0 || strncmp(a + bl - 2, "aes", 3) == 0))
                return true;
        if (bl >= 3 && al == bl + 1 && b[bl - 1] == 'l' && strncmp(a, b, bl - 1) == 0 &&
            strncmp(a + bl - 1, "is", 2) == 0)
                return true;
        return false;
}

/* How far the customer's word t is from the catalog's word w: 0 for the
 * same word or a plural, 1 or 2 for a typo in a longer word (the first
 * letter right), -1 for another word. */
static int word_cost(const char *t, size_t tl, const char *w, size_t wl) {
        unsigned max, d;

        if (tl == wl && memcmp(t, w, tl) == 0)
                return 0;
        if (plural_of(t, tl, w, wl) || plural_of(w, wl, t, tl))
                return 0;
        /* Typos are forgiven in longer words only, and not in their first
         * letters: "calabreza", "portugesa", not "frias" for "fries". */
        if (wl < FUZZY_MIN || !is_alpha_word(w, wl) || !is_alpha_word(t, tl) || t[0] != w[0])
                return -1;
        max = wl >= FUZZY_TWO ? 2 : 1;
        if (max == 1 && (tl < 2 || t[1] != w[1]))
                return -1;
        d = normalize_distance(t, tl, w, wl, max);
        if (d > max && tl > 1 && t[tl - 1] == 's')
                d = normalize_distance(t, tl - 1, w, wl, max);
        return d <= max ? (int) d : -1;
}

static bool tok_filler(const Parse *p, size_t i) {
        const NormToken *t = tok(p, i);

        if (!t || p->used[i] || t->kind != NORM_WORD)
                return false;
        for (char **f = p->rules->filler; f && *f; f++)
                if (word_cost(t->text, t->len, *f, strlen(*f)) == 0)
                        return true;
        return false;
}

/* "2x", "x2" → 2. */
static unsigned times_qty(const NormToken *t) {
        const char *d = NULL;

        if (!t || t->len < 2 || t->len > 3)
                return 0;
        if (t->text[t->len - 1] == 'x' && all_digits(t->text, t->len - 1))
                d = t->text;
        else if (t->text[0] == 'x' && all_digits(t->text + 1, t->len - 1))
                d = t->text + 1;
        if (!d)
                return 0;
        unsigned v = (unsigned) strtoul(d, NULL, 10);
        return v >= 1 && v <= NLU_QTY_MAX ? v : 0;
}

static unsigned digits_qty(const NormToken *t) {
        if (!t || t->kind != NORM_NUMBER || t->len > 2 || !all_digits(t->text, t->len))
                return 0;
        unsigned v = (unsigned) strtoul(t->text, NULL, 10);
        return v >= 1 && v <= NLU_QTY_MAX ? v : 0;
}

/* The quantity of the product at tokens [s, e): a number, "2x" or a number
 * phrase before it (past a few filler words: "duas pizzas de calabresa"),
 * or "x2" after it; 1 when none.  The tokens used are marked. */
static unsigned find_qty(Parse *p, size_t s, size_t e) {
        const NluRules *r = p->rules;
        size_t k = s, skipped = 0;
        unsigned v;

        while (k > 0 && skipped < FILLER_MAX && tok_filler(p, k - 1)) {
                k--;
                skipped++;
        }
        if (k > 0 && !p->used[k - 1]) {
                const NormToken *t = tok(p, k - 1);
                if ((v = digits_qty(t)) > 0 || (v = times_qty(t)) > 0) {
                        p->used[k - 1] = true;
                        return v;
                }
                const Phrase *best = NULL;
                for (size_t i = 0; i < r->numbers.n; i++) {
                        const Phrase *ph = &r->numbers.v[i];
                        if (ph->n_words <= k && phrase_at(p, k - ph->n_words, ph) &&
                            (!best || ph->n_words > best->n_words))
                                best = ph;
                }
                if (best) {
                        for (size_t i = k - best->n_words; i < k; i++)
                                p->used[i] = true;
                        return (unsigned) best->target;
                }
        }
        if (e < p->nt->n_tokens && !p->used[e] && (v = times_qty(tok(p, e))) > 0) {
                p->used[e] = true;
                return v;
        }
        /* "calabresa x 2" */
        const NormToken *x = tok(p, e);
        if (x && !p->used[e] && streq(x->text, "x") && e + 1 < p->nt->n_tokens && !p->used[e + 1] &&
            (v = digits_qty(tok(p, e + 1))) > 0) {
                p->used[e] = p->used[e + 1] = true;
                return v;
        }
        return 1;
}

/* A name written as one word or two the other way round: "cheese burgers"
 * for "cheeseburger", "cocacola" for "coca cola".  Returns how many tokens
 * at i it takes (1 or 2), or 0. */
static size_t compound_at(const Parse *p, size_t i, const Phrase *ph) {
        const NormToken *a = tok(p, i), *b = tok(p, i + 1);
        char joined[2 * PHRASE_WORDS_MAX * 16];
        size_t n = 0;

        if (!a || p->used[i] || a->kind != NORM_WORD || ph->n_words > 2)
                return 0;
        if (ph->n_words == 1) {
                if (!b || p->used[i + 1] || b->kind != NORM_WORD || a->len + b->len >= sizeof joined)
                        return 0;
                memcpy(joined, a->text, a->len);
                memcpy(joined + a->len, b->text, b->len);
                n = a->len + b->len;
                return word_cost(joined, n, ph->words[0], strlen(ph->words[0])) == 0 ? 2 : 0;
        }
        for (size_t w = 0; w < ph->n_words; w++) {
                size_t l = strlen(ph->words[w]);
                if (n + l >= sizeof joined)
                        return 0;
                memcpy(joined + n, ph->words[w], l);
                n += l;
        }
        return word_cost(a->text, a->len, joined, n) == 0 ? 1 : 0;
}

static int find_items(Parse *p) {
        const PhraseList *l = &p->rules->products;

        for (size_t i = 0; i < p->nt->n_tokens;) {
                const Phrase *best = NULL;
                size_t best_len = 0;
                int best_cost = 0;

                for (size_t k = 0; k < l->n; k++) {
                        const Phrase *ph = &l->v[k];
                        size_t c = compound_at(p, i, ph);
                        if (c > best_len) {
                                best = ph;
                                best_len = c;
                                best_cost = 0;
                        }
                }
                for (size_t k = 0; k < l->n; k++) {
                        const Phrase *ph = &l->v[k];
                        int cost = 0;
                        for (size_t w = 0; w < ph->n_words && cost >= 0; w++) {
                                const NormToken *t = tok(p, i + w);
                                int c;
                                if (!t || p->used[i + w] || t->kind == NORM_PUNCT) {
                                        cost = -1;
                                        break;
                                }
                                c = word_cost(t->text, t->len, ph->words[w], strlen(ph->words[w]));
                                cost = c < 0 ? -1 : cost + c;
                        }
                        if (cost < 0)
                                continue;
                        /* the longest name wins ("cheeseburger with salad"), then the closest */
                        if (!best || ph->n_words > best_len || (ph->n_words == best_len && cost < best_cost)) {
                                best = ph;
                                best_len = ph->n_words;
                                best_cost = cost;
                        }
                }
                if (!best) {
                        i++;
                        continue;
                }
                for (size_t w = 0; w < best_len; w++)
                        p->used[i + w] = true;
                unsigned qty = find_qty(p, i, i + best_len);
                int k = nlu_result_add_item(p->res, p->rules->skus[best->target], qty);
                if (k < 0)
                        return k;
                i += best_len;
        }
        return 0;
}

/* A quantity no product took: "na verdade 3", "make it two" (0: none). */
static unsigned find_bare_qty(Parse *p) {
        const NluRules *r = p->rules;

        for (size_t i = 0; i < p->nt->n_tokens; i++) {
                unsigned v;
                if (p->used[i])
                        continue;
                if ((v = digits_qty(tok(p, i))) > 0 || (v = times_qty(tok(p, i))) > 0)
                        return v;
                /* not "um", "a", "an": without a product they are articles */
                for (size_t k = 0; k < r->numbers.n; k++) {
                        const Phrase *ph = &r->numbers.v[k];
                        if (ph->target >= 2 && i + ph->n_words <= p->nt->n_tokens && phrase_at(p, i, ph))
                                return (unsigned) ph->target;
                }
        }
        return 0;
}

static int find_signals(Parse *p, const char *s, size_t len) {
        for (size_t g = 0; g < _NLU_SIGNAL_MAX; g++) {
                int k = any_match(p, &p->rules->signals[g], s, len);
                if (k < 0)
                        return k;
                if (k > 0)
                        p->res->signals |= 1u << g;
        }
        return 0;
}

/* ---- payment, order id, language -------------------------------------------------- */

/* "100", "100,00", "100.5" → cents; -1 when not money. */
static int64_t parse_money(const char *s, size_t n) {
        int64_t v = 0;
        size_t i = 0;

        for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
                if (i >= 7)
                        return -1;
                v = v * 10 + (s[i] - '0');
        }
        if (i == 0)
                return -1;
        v *= 100;
        if (i < n && (s[i] == ',' || s[i] == '.') && i + 1 < n && s[i + 1] >= '0' && s[i + 1] <= '9') {
                v += (s[i + 1] - '0') * 10;
                if (i + 2 < n && s[i + 2] >= '0' && s[i + 2] <= '9')
                        v += s[i + 2] - '0';
        }
        return v;
}

static int find_payment(Parse *p) {
        const NluRules *r = p->rules;
        const char *s = p->nt->joined;
        size_t len = p->nt->joined_len, best_at = SIZE_MAX, at;
        int k;

        for (int m = 0; m < _NLU_PAYMENT_MAX; m++) {
                for (size_t i = 0; i < r->pay[m].n + r->change[m].n; i++) {
                        bool change = i >= r->pay[m].n;
                        const Regex *re = change ? &r->change[m].v[i - r->pay[m].n] : &r->pay[m].v[i];
                        k = regex_find(p, re->code, s, len, &at);
                        if (k < 0)
                                return k;
                        if (k == 0)
                                continue;
                        if (change && p->res->change_for_cents == 0) {
                                PCRE2_SIZE *ov = pcre2_get_ovector_pointer(p->md);
                                if (ov[2] != PCRE2_UNSET) {
                                        int64_t c = parse_money(s + ov[2], ov[3] - ov[2]);
                                        if (c > 0)
                                                p->res->change_for_cents = c;
                                }
                        }
                        /* the method named first is the one meant */
                        if (at < best_at) {
                                best_at = at;
                                p->res->payment = (NluPayment) m;
                        }
                }
        }
        return 0;
}

/* Crockford base32, as a customer may type it: I and L are 1, O is 0, U
 * is not used.  Returns the canonical symbol, or 0. */
static char crockford(char c) {
        if (c >= '0' && c <= '9')
                return c;
        if (c == 'i' || c == 'l')
                return '1';
        if (c == 'o')
                return '0';
        if (c >= 'a' && c <= 'z' && c != 'u')
                return (char) (c - 'a' + 'A');
        return 0;
}

/* An order id is six Crockford symbols written as one token, and
 *   - with '#' in front ("#9XK4MB"), always;
 *   - with both a digit and a letter ("9xk4mb"), anywhere: no word or
 *     number of a message looks like that;
 *   - with only digits, or only letters of which at most one is a vowel,
 *     right after a word of [order_id] context, or a "gap" word or two
 *     after it ("pedido 123456", "order number is 123456"): a six-letter
 *     word ("pedido", "placed") always has two vowels. */
static int find_order_id(Parse *p) {
        for (size_t i = 0; i < p->nt->n_tokens; i++) {
                const NormToken *t = tok(p, i);
                const char *s = t->text;
                char id[NLU_ORDER_ID_LEN + 1];
                bool hash = s[0] == '#', digit = false, letter = false;
                unsigned vowels = 0;

                if (hash)
                        s++;
                if (t->kind == NORM_PUNCT || strlen(s) != NLU_ORDER_ID_LEN)
                        continue;
                size_t j = 0;
                for (; j < NLU_ORDER_ID_LEN; j++) {
                        id[j] = crockford(s[j]);
                        if (!id[j])
                                break;
                        if (s[j] >= '0' && s[j] <= '9')
                                digit = true;
                        else {
                                letter = true;
                                vowels += strchr("aeiouy", s[j]) != NULL;
                        }
                }
                if (j < NLU_ORDER_ID_LEN)
                        continue;
                id[j] = '\0';
                bool context = false;
                for (size_t back = 1; back <= ORDER_ID_GAP + 1 && back <= i && !context; back++) {
                        context = tok_in(p, i - back, p->rules->order_context);
                        if (!context && !tok_in(p, i - back, p->rules->order_gap) && !tok_punct(p, i - back, ','))
                                break;
                }
                if (hash || (digit && letter) || (context && (!letter || vowels <= 1))) {
                        memcpy(p->res->order_id, id, sizeof id);
                        return 0;
                }
        }
        return 0;
}

static NluLang find_lang(const Parse *p, const bool lang_hits[static _NLU_LANG_MAX]) {
        const NluRules *r = p->rules;
        int score[_NLU_LANG_MAX] = {}, best = r->default_lang;

        for (size_t i = 0; i < p->nt->n_tokens; i++)
                for (int l = 0; l < _NLU_LANG_MAX; l++)
                        if (tok_in(p, i, r->lang_words[l]))
                                score[l]++;
        for (int l = 0; l < _NLU_LANG_MAX; l++)
                if (lang_hits[l])
                        score[l] += LANG_PATTERN_WEIGHT;
        for (int l = 0; l < _NLU_LANG_MAX; l++)
                if (score[l] > score[best])
                        best = l;
        return (NluLang) best;
}

static const char *parse_expand_cb(const char *word, void *userdata) {
        const Parse *p = userdata;
        return expand_cb(word, (void *) p->rules);
}

int nlu_rules_normalize(const NluRules *r, const char *text, size_t len, char **ret) {
        _cleanup_(normalize_text_freep) NormText *nt = NULL;
        Parse p = { .rules = r, .text = text };
        NormOptions o = { .expand = parse_expand_cb, .line_filter = line_filter_cb, .userdata = &p };
        int k;

        p.md = pcre2_match_data_create(r->max_groups + 1, r->gctx);
        if (!p.md)
                return -ENOMEM;
        k = normalize_text(text, len, &o, &nt);
        pcre2_match_data_free(p.md);
        if (k < 0)
                return k;
        *ret = TAKE_PTR(nt->joined);
        return 0;
}

static int parse(const NluRules *r, const char *text, size_t len, size_t max_input, bool full, NluResult **ret) {
        _cleanup_(nlu_result_freep) NluResult *res = NULL;
        _cleanup_(normalize_text_freep) NormText *nt = NULL;
        _cleanup_free_ bool *used = NULL;
        _cleanup_free_ char *squeezed = NULL;
        bool lang_hits[_NLU_LANG_MAX] = {};
        ssize_t rule = -1;
        Parse p = { .rules = r, .text = text };
        NormOptions o = { .expand = parse_expand_cb, .line_filter = line_filter_cb, .userdata = &p };
        int k;

        /* bounded where it enters, cut at a character boundary */
        if (len > max_input) {
                len = max_input;
                while (len > 0 && ((unsigned char) text[len] & 0xC0) == 0x80)
                        len--;
        }
        res = nlu_result_new((NluLang) r->default_lang);
        p.md = pcre2_match_data_create(r->max_groups + 1, r->gctx);
        if (!res || !p.md) {
                k = -ENOMEM;
                goto finish;
        }
        p.res = res;

        k = normalize_text(text, len, &o, &nt);
        if (k < 0)
                goto finish;
        p.nt = nt;
        used = mem_new(bool, nt->n_tokens + 1);
        if (!used) {
                k = -ENOMEM;
                goto finish;
        }
        p.used = used;

        k = find_intent(&p, nt->joined, nt->joined_len, lang_hits, &rule);
        if (k >= 0 && rule < 0) {
                /* the tolerant second reading: "siim", "noo" */
                squeezed = normalize_squeeze(nt->joined);
                k = squeezed ? find_intent(&p, squeezed, strlen(squeezed), lang_hits, &rule) : -ENOMEM;
        }
        if (k >= 0 && full)
                k = find_address(&p);
        if (k >= 0 && full)
                k = find_items(&p);
        if (k >= 0 && full)
                k = find_payment(&p);
        if (k >= 0 && full)
                k = find_order_id(&p);
        if (k >= 0)
                k = find_signals(&p, nt->joined, nt->joined_len);
        if (k < 0)
                goto finish;
        if (full && res->n_items == 0)
                res->bare_qty = find_bare_qty(&p);

        if (rule >= 0)
                res->intent = r->intents[rule].intent;
        else
                /* no rule says otherwise: naming products is ordering them ("3 brownie") */
                res->intent = res->n_items > 0 ? NLU_INTENT_PLACE_ORDER : NLU_INTENT_OTHER;
        res->lang = find_lang(&p, lang_hits);
        *ret = TAKE_PTR(res);
        k = 0;
finish:
        pcre2_match_data_free(p.md);
        return k;
}

int nlu_rules_parse(const NluRules *r, const char *text, size_t len, size_t max_input, NluResult **ret) {
        return parse(r, text, len, max_input, true, ret);
}

int nlu_rules_parse_intent(const NluRules *r, const char *text, size_t len, size_t max_input, NluResult **ret) {
        return parse(r, text, len, max_input, false, ret);
}
