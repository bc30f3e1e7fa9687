/* SPDX-License-Identifier: MIT */
/*
 * catalog-locate.c — placing a customer's address in a delivery zone.
 * Addresses arrive as free text in any order and spelling, so matching is
 * done on a folded copy (lower case, no accents, punctuation as spaces,
 * street-type abbreviations expanded) and on whole words only.  Streets are
 * checked before neighbourhoods, because many streets are named after
 * places ("Rua Bela Cintra" is not in Bela Vista's list, "Rua Pinheiros"
 * might be in another zone than Pinheiros).
 *
 * Security: the address is untrusted customer text; it is bounded by the
 * caller (nlu.max_input) and only read.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "catalog.h"
#include "normalize.h"
#include "strutil.h"

/* Street types as customers abbreviate them, folded. */
static const struct {
        const char *abbrev, *full;
} street_types[] = {
        { "r", "rua" },       { "av", "avenida" },  { "al", "alameda" },    { "pc", "praca" },
        { "pca", "praca" },   { "tv", "travessa" }, { "trav", "travessa" }, { "est", "estrada" },
        { "rod", "rodovia" }, { "st", "street" },   { "ave", "avenue" },
};

/* Folded, every non-alphanumeric byte (below 0x80) a space, single spaces,
 * abbreviations expanded, with a space at each end so that " word " finds
 * whole words. */
static char *fold_words(const char *s) {
        _cleanup_free_ char *f = normalize_fold(s);
        char *out, *o;

        if (!f)
                return NULL;
        out = mem_malloc(strlen(f) * 3 + 3);
        if (!out)
                return NULL;
        o = out;
        *o++ = ' ';
        for (const char *p = f; *p;) {
                if ((unsigned char) *p < 0x80 && !isalnum((unsigned char) *p)) {
                        if (o[-1] != ' ')
                                *o++ = ' ';
                        p++;
                        continue;
                }
                const char *w = p;
                while (*p && ((unsigned char) *p >= 0x80 || isalnum((unsigned char) *p)))
                        p++;
                size_t n = (size_t) (p - w);
                const char *word = w;
                for (size_t i = 0; i < ELEMENTSOF(street_types); i++)
                        if (strlen(street_types[i].abbrev) == n && strncmp(w, street_types[i].abbrev, n) == 0 &&
                            *p == '.') {
                                word = street_types[i].full;
                                n = strlen(word);
                                break;
                        }
                memcpy(o, word, n);
                o += n;
                *o++ = ' ';
        }
        if (o[-1] != ' ')
                *o++ = ' ';
        *o = 0;
        return out;
}

static bool is_street_type(const char *w, size_t n) {
        for (size_t i = 0; i < ELEMENTSOF(street_types); i++)
                if (strlen(street_types[i].full) == n && strncmp(w, street_types[i].full, n) == 0)
                        return true;
        return false;
}

/* Whether folded text t contains the folded words of name; a street also
 * without its type ("Augusta 1500" for Rua Augusta). */
static int contains_words(const char *t, const char *name, bool street) {
        _cleanup_free_ char *n = fold_words(name);

        if (!n)
                return -ENOMEM;
        if (strlen(n) <= 2)
                return 0;
        if (strstr(t, n))
                return 1;
        if (street) {
                const char *rest = strchr(n + 1, ' ');
                if (rest && is_street_type(n + 1, (size_t) (rest - n - 1)) && strlen(rest) > 5)
                        return strstr(t, rest) != NULL;
        }
        return 0;
}

/* The CEP in s (8 digits, "01310-100" or "01310100"), as digits in cep[9]. */
static bool find_cep(const char *s, char cep[9]) {
        for (const char *p = s; *p; p++) {
                if (!isdigit((unsigned char) *p) || (p > s && isdigit((unsigned char) p[-1])))
                        continue;
                size_t n = 0;
                const char *q = p;
                while (n < 8 && *q) {
                        if (isdigit((unsigned char) *q))
                                cep[n++] = *q++;
                        else if (*q == '-' && n == 5)
                                q++;
                        else
                                break;
                }
                if (n == 8 && !isdigit((unsigned char) *q)) {
                        cep[8] = 0;
                        return true;
                }
        }
        return false;
}

/* Words that start a complement, not a place: "apto 12", "bloco B". */
static bool is_complement(const char *folded_words) {
        static const char *const words[] = { " apto ",     " ap ",     " apartamento ", " bloco ", " bl ",
                                             " casa ",     " fundos ", " sala ",        " andar ", " cj ",
                                             " conjunto ", " apt ",    " apartment ",   " floor ", " suite ",
                                             " unit ",     " lote ",   " loja " };
        for (size_t i = 0; i < ELEMENTSOF(words); i++)
                if (strncmp(folded_words, words[i], strlen(words[i])) == 0)
                        return true;
        return false;
}

/* The place named after the house number: the last part after a comma or
 * " - " that follows a digit and is not a complement or a CEP. */
static char *place_after_number(const char *address) {
        const char *best = NULL;
        bool seen_digit = false;

        for (const char *p = address; *p; p++) {
                if (isdigit((unsigned char) *p))
                        seen_digit = true;
                if (!seen_digit)
                        continue;
                if (*p == ',' || (*p == '-' && p > address && p[-1] == ' ' && p[1] == ' '))
                        best = p + 1;
        }
        if (!best)
                return NULL;
        _cleanup_free_ char *part = mem_strdup(best);
        if (!part)
                return NULL;
        char *s = strstrip(part);
        _cleanup_free_ char *w = fold_words(s);
        if (!w || strlen(w) <= 2 || is_complement(w))
                return NULL;
        for (const char *q = s; *q; q++)
                if (isdigit((unsigned char) *q))
                        return NULL; /* "apto 12", "04077-000": not a name */
        return mem_strdup(s);
}

int catalog_locate(const Catalog *c, const char *address, bool bare, const Zone **ret_zone, char **ret_place) {
        _cleanup_free_ char *t = fold_words(address);
        char cep[9];
        int r;

        if (!t)
                return -ENOMEM;
        if (find_cep(address, cep)) {
                for (size_t i = 0; i < catalog_n_zones(c); i++) {
                        const Zone *z = catalog_zone(c, i);
                        for (char **p = z->cep_prefixes; p && *p; p++)
                                if (strncmp(cep, *p, strlen(*p)) == 0) {
                                        *ret_zone = z;
                                        return ZONE_PLACE_FOUND;
                                }
                }
                if (ret_place) {
                        *ret_place = mem_strdup(cep);
                        if (!*ret_place)
                                return -ENOMEM;
                }
                return ZONE_PLACE_OUTSIDE;
        }
        /* Streets first: "Rua Bela Cintra" names a street, not Bela Vista. */
        for (unsigned pass = 0; pass < 2; pass++)
                for (size_t i = 0; i < catalog_n_zones(c); i++) {
                        const Zone *z = catalog_zone(c, i);
                        for (char **p = pass == 0 ? z->streets : z->neighbourhoods; p && *p; p++) {
                                r = contains_words(t, *p, pass == 0);
                                if (r < 0)
                                        return r;
                                if (r > 0) {
                                        *ret_zone = z;
                                        return ZONE_PLACE_FOUND;
                                }
                        }
                }
        _cleanup_free_ char *place = NULL;
        if (bare) {
                _cleanup_free_ char *copy = mem_strdup(address);
                if (!copy)
                        return -ENOMEM;
                if (strlen(t) > 2)
                        place = mem_strdup(strstrip(copy));
        } else
                place = place_after_number(address);
        if (!place)
                return ZONE_PLACE_UNKNOWN;
        if (ret_place)
                *ret_place = TAKE_PTR(place);
        return ZONE_PLACE_OUTSIDE;
}

char *catalog_neighbourhoods_text(const Catalog *c, bool lang_en) {
        _cleanup_(strv_freep) char **l = NULL;

        for (size_t i = 0; i < catalog_n_zones(c); i++)
                for (char **p = catalog_zone(c, i)->neighbourhoods; p && *p; p++)
                        if (strv_extend(&l, *p) < 0)
                                return NULL;
        size_t n = strv_length(l);
        if (n == 0)
                return mem_strdup("");
        if (n == 1)
                return mem_strdup(l[0]);
        char *last = l[n - 1];
        l[n - 1] = NULL;
        _cleanup_free_ char *head = strv_join(l, ", ");
        l[n - 1] = last;
        if (!head)
                return NULL;
        return mem_printf("%s %s %s", head, lang_en ? "and" : "e", last);
}
