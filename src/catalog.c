/* SPDX-License-Identifier: MIT */
/*
 * catalog.c — catalog.conf and zones.conf readers.
 *
 * Security: see catalog.h.
 */
#include "catalog.h"

#include <ctype.h>
#include <string.h>

#include "alloc.h"
#include "ini.h"
#include "strutil.h"

#define CATALOG_ITEMS_MAX 10000
#define CATALOG_ZONES_MAX 1000

struct Catalog {
        CatalogItem *items;
        size_t n_items;
        Zone *zones;
        size_t n_zones;
};

/* Per-section bookkeeping while reading: where it started and which
 * required keys it has seen. */
typedef struct Reader {
        Catalog *catalog;
        Diags *diags;
        const char *file;
        unsigned section_line;
        bool has_name, has_price, has_fee, has_eta, has_stock;
        bool section_bad;
} Reader;

static bool sku_valid(const char *s) {
        if (!*s || strlen(s) > 64)
                return false;
        for (; *s; s++)
                if (!islower((unsigned char) *s) && !isdigit((unsigned char) *s) && *s != '-')
                        return false;
        return true;
}

static bool digits_only(const char *s) {
        if (!*s || strlen(s) > 8)
                return false;
        for (; *s; s++)
                if (!isdigit((unsigned char) *s))
                        return false;
        return true;
}

static void item_done(CatalogItem *it) {
        free(it->sku);
        free(it->name_pt);
        free(it->name_en);
        free(it->category);
        strv_free(it->aliases);
}

static void zone_done(Zone *z) {
        free(z->id);
        free(z->name);
        strv_free(z->neighbourhoods);
        strv_free(z->cep_prefixes);
        strv_free(z->streets);
}

Catalog *catalog_free(Catalog *c) {
        if (!c)
                return NULL;
        for (size_t i = 0; i < c->n_items; i++)
                item_done(&c->items[i]);
        for (size_t i = 0; i < c->n_zones; i++)
                zone_done(&c->zones[i]);
        free(c->items);
        free(c->zones);
        free(c);
        return NULL;
}

static int set_string(char **p, const char *v) {
        char *s = mem_strdup(v);
        if (!s)
                return -ENOMEM;
        free(*p);
        *p = s;
        return 0;
}

/* Close the section just read: report missing required keys. */
static void item_finish(Reader *rd) {
        CatalogItem *it;

        if (rd->catalog->n_items == 0 || rd->section_bad)
                return;
        it = &rd->catalog->items[rd->catalog->n_items - 1];
        if (!rd->has_name)
                diags_add(rd->diags, rd->file, rd->section_line, "product [%s] has no 'name'", it->sku);
        if (!rd->has_price)
                diags_add(rd->diags, rd->file, rd->section_line, "product [%s] has no 'price'", it->sku);
        if (!rd->has_stock)
                diags_add(rd->diags, rd->file, rd->section_line, "product [%s] has no 'stock'", it->sku);
}

static int item_cb(const char *file, unsigned line, const char *section, const char *key, const char *value,
                   void *userdata) {
        Reader *rd = userdata;
        Catalog *c = rd->catalog;
        CatalogItem *it;

        if (!key) {
                item_finish(rd);
                rd->section_line = line;
                rd->has_name = rd->has_price = rd->has_stock = false;
                rd->section_bad = false;
                if (!sku_valid(section)) {
                        diags_add(rd->diags, file, line,
                                  "invalid SKU [%s]: use lower-case letters, digits and '-', at most 64", section);
                        rd->section_bad = true;
                        return 0;
                }
                if (catalog_find_sku(c, section)) {
                        diags_add(rd->diags, file, line, "duplicate product [%s]", section);
                        rd->section_bad = true;
                        return 0;
                }
                if (c->n_items >= CATALOG_ITEMS_MAX) {
                        diags_add(rd->diags, file, line, "too many products (at most %d)", CATALOG_ITEMS_MAX);
                        rd->section_bad = true;
                        return 0;
                }
                CatalogItem *n = mem_realloc(c->items, sizeof(CatalogItem) * (c->n_items + 1));
                if (!n)
                        return -ENOMEM;
                c->items = n;
                it = &c->items[c->n_items];
                *it = (CatalogItem){};
                it->sku = mem_strdup(section);
                it->aliases = mem_new(char *, 1);
                if (!it->sku || !it->aliases) {
                        item_done(it);
                        return -ENOMEM;
                }
                c->n_items++;
                return 0;
        }
        if (rd->section_bad)
                return 0;
        it = &c->items[c->n_items - 1];

        if (streq(key, "name")) {
                if (isempty(value)) {
                        diags_add(rd->diags, file, line, "'name' must not be empty");
                        return 0;
                }
                rd->has_name = true;
                return set_string(&it->name_pt, value);
        }
        if (streq(key, "name_en"))
                return set_string(&it->name_en, value);
        if (streq(key, "category"))
                return set_string(&it->category, value);
        if (streq(key, "alias")) {
                if (isempty(value)) {
                        diags_add(rd->diags, file, line, "'alias' must not be empty");
                        return 0;
                }
                return strv_extend(&it->aliases, value);
        }
        if (streq(key, "price")) {
                int64_t cents;
                if (parse_cents(value, &cents) < 0 || cents <= 0) {
                        diags_add(rd->diags, file, line, "invalid price '%s' (e.g. 49.90)", value);
                        return 0;
                }
                it->price_cents = cents;
                rd->has_price = true;
                return 0;
        }
        if (streq(key, "stock")) {
                uint64_t v;
                if (parse_uint64(value, &v) < 0 || v > 1000000) {
                        diags_add(rd->diags, file, line, "invalid stock '%s' (0 to 1000000; 0 = sold out)", value);
                        return 0;
                }
                it->stock = (int64_t) v;
                rd->has_stock = true;
                return 0;
        }
        diags_add(rd->diags, file, line, "unknown key '%s' in product [%s]", key, section);
        return 0;
}

static void zone_finish(Reader *rd) {
        Zone *z;

        if (rd->catalog->n_zones == 0 || rd->section_bad)
                return;
        z = &rd->catalog->zones[rd->catalog->n_zones - 1];
        if (!rd->has_fee)
                diags_add(rd->diags, rd->file, rd->section_line, "zone [%s] has no 'fee'", z->id);
        if (!rd->has_eta)
                diags_add(rd->diags, rd->file, rd->section_line, "zone [%s] has no 'eta'", z->id);
        if (strv_length(z->neighbourhoods) == 0)
                diags_add(rd->diags, rd->file, rd->section_line, "zone [%s] has no 'neighbourhood'", z->id);
}

/* A neighbourhood, CEP prefix or street may belong to one zone only. */
static const Zone *zone_owning(const Catalog *c, size_t field_offset, const char *value) {
        for (size_t i = 0; i < c->n_zones; i++) {
                char **l = *(char ***) ((uint8_t *) &c->zones[i] + field_offset);
                for (size_t j = 0; l && l[j]; j++)
                        if (strcasecmp(l[j], value) == 0)
                                return &c->zones[i];
        }
        return NULL;
}

static int zone_add_unique(Reader *rd, unsigned line, Zone *z, size_t off, const char *what, const char *value) {
        const Zone *other = zone_owning(rd->catalog, off, value);

        if (other) {
                diags_add(rd->diags, rd->file, line, "%s '%s' is already in zone [%s]", what, value, other->id);
                return 0;
        }
        return strv_extend((char ***) ((uint8_t *) z + off), value);
}

static int zone_cb(const char *file, unsigned line, const char *section, const char *key, const char *value,
                   void *userdata) {
        Reader *rd = userdata;
        Catalog *c = rd->catalog;
        Zone *z;
        int r;

        if (!key) {
                zone_finish(rd);
                rd->section_line = line;
                rd->has_fee = rd->has_eta = false;
                rd->section_bad = false;
                if (!sku_valid(section)) {
                        diags_add(rd->diags, file, line, "invalid zone id [%s]: use lower-case letters, digits and '-'",
                                  section);
                        rd->section_bad = true;
                        return 0;
                }
                for (size_t i = 0; i < c->n_zones; i++)
                        if (streq(c->zones[i].id, section)) {
                                diags_add(rd->diags, file, line, "duplicate zone [%s]", section);
                                rd->section_bad = true;
                                return 0;
                        }
                if (c->n_zones >= CATALOG_ZONES_MAX) {
                        diags_add(rd->diags, file, line, "too many zones (at most %d)", CATALOG_ZONES_MAX);
                        rd->section_bad = true;
                        return 0;
                }
                Zone *n = mem_realloc(c->zones, sizeof(Zone) * (c->n_zones + 1));
                if (!n)
                        return -ENOMEM;
                c->zones = n;
                z = &c->zones[c->n_zones];
                *z = (Zone){};
                z->id = mem_strdup(section);
                z->neighbourhoods = mem_new(char *, 1);
                z->cep_prefixes = mem_new(char *, 1);
                z->streets = mem_new(char *, 1);
                if (!z->id || !z->neighbourhoods || !z->cep_prefixes || !z->streets) {
                        zone_done(z);
                        return -ENOMEM;
                }
                c->n_zones++;
                return 0;
        }
        if (rd->section_bad)
                return 0;
        z = &c->zones[c->n_zones - 1];

        if (streq(key, "name"))
                return set_string(&z->name, value);
        if (streq(key, "fee")) {
                int64_t cents;
                if (parse_cents(value, &cents) < 0) {
                        diags_add(rd->diags, file, line, "invalid fee '%s' (e.g. 7.00)", value);
                        return 0;
                }
                z->fee_cents = cents;
                rd->has_fee = true;
                return 0;
        }
        if (streq(key, "eta")) {
                uint64_t usec;
                if (parse_duration_usec(value, &usec) < 0 || usec == 0 || usec > 24 * 3600 * USEC_PER_SEC) {
                        diags_add(rd->diags, file, line, "invalid eta '%s' (e.g. 30min, at most 24h)", value);
                        return 0;
                }
                z->eta_usec = usec;
                rd->has_eta = true;
                return 0;
        }
        if (streq(key, "neighbourhood") || streq(key, "neighborhood")) {
                if (isempty(value)) {
                        diags_add(rd->diags, file, line, "'%s' must not be empty", key);
                        return 0;
                }
                return zone_add_unique(rd, line, z, offsetof(Zone, neighbourhoods), "neighbourhood", value);
        }
        if (streq(key, "street")) {
                if (isempty(value)) {
                        diags_add(rd->diags, file, line, "'street' must not be empty");
                        return 0;
                }
                return zone_add_unique(rd, line, z, offsetof(Zone, streets), "street", value);
        }
        if (streq(key, "cep")) {
                /* A CEP must land in one zone: a prefix that is a prefix of
                 * another zone's (or the other way round) is ambiguous. */
                _cleanup_strv_free_ char **l = strv_split_ws(value);
                if (!l)
                        return -ENOMEM;
                for (char **p = l; *p; p++) {
                        if (!digits_only(*p)) {
                                diags_add(rd->diags, file, line, "invalid CEP prefix '%s' (1 to 8 digits)", *p);
                                continue;
                        }
                        const Zone *other = NULL;
                        const char *theirs = NULL;
                        for (size_t i = 0; i < c->n_zones && !other; i++) {
                                if (&c->zones[i] == z)
                                        continue;
                                for (char **q = c->zones[i].cep_prefixes; *q; q++)
                                        if (strncmp(*q, *p, MIN(strlen(*q), strlen(*p))) == 0) {
                                                other = &c->zones[i];
                                                theirs = *q;
                                                break;
                                        }
                        }
                        if (other) {
                                diags_add(rd->diags, file, line, "CEP prefix '%s' overlaps '%s' of zone [%s]", *p,
                                          theirs, other->id);
                                continue;
                        }
                        if (strv_contains(z->cep_prefixes, *p))
                                continue;
                        r = strv_extend(&z->cep_prefixes, *p);
                        if (r < 0)
                                return r;
                }
                return 0;
        }
        diags_add(rd->diags, file, line, "unknown key '%s' in zone [%s]", key, section);
        return 0;
}

static int read_one(const char *path, const char *what, IniCallback cb, void (*finish)(Reader *), Reader *rd) {
        int r;

        rd->file = path;
        rd->section_bad = false;
        r = ini_parse_file(path, cb, rd, rd->diags);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                diags_add(rd->diags, path, 0, "cannot read %s: %s", what, strerror(-r));
                return 0;
        }
        finish(rd);
        return 0;
}

int catalog_load(const char *catalog_path, const char *zones_path, Catalog **ret, Diags *diags) {
        _cleanup_(catalog_freep) Catalog *c = NULL;
        Diags local = {};
        Reader rd;
        int r;

        c = mem_new(Catalog, 1);
        if (!c)
                return -ENOMEM;
        rd = (Reader){ .catalog = c, .diags = &local };

        r = read_one(catalog_path, "catalog", item_cb, item_finish, &rd);
        if (r < 0)
                goto finish;
        r = read_one(zones_path, "zones", zone_cb, zone_finish, &rd);
        if (r < 0)
                goto finish;

        if (c->n_items == 0 && local.n == 0)
                diags_add(&local, catalog_path, 0, "the catalog lists no products");
        for (size_t i = 0; i < c->n_items; i++)
                if (!c->items[i].name_en && c->items[i].name_pt) {
                        c->items[i].name_en = mem_strdup(c->items[i].name_pt);
                        if (!c->items[i].name_en) {
                                r = -ENOMEM;
                                goto finish;
                        }
                }
        for (size_t i = 0; i < c->n_zones; i++)
                if (!c->zones[i].name && c->zones[i].neighbourhoods[0]) {
                        c->zones[i].name = mem_strdup(c->zones[i].neighbourhoods[0]);
                        if (!c->zones[i].name) {
                                r = -ENOMEM;
                                goto finish;
                        }
                }

        r = diags_to_errno(&local);
        if (r >= 0)
                *ret = TAKE_PTR(c);
finish:
        diags_merge(diags, &local);
        diags_clear(&local);
        return r;
}

size_t catalog_n_items(const Catalog *c) {
        return c->n_items;
}

const CatalogItem *catalog_item(const Catalog *c, size_t i) {
        return i < c->n_items ? &c->items[i] : NULL;
}

const CatalogItem *catalog_find_sku(const Catalog *c, const char *sku) {
        for (size_t i = 0; i < c->n_items; i++)
                if (streq(c->items[i].sku, sku))
                        return &c->items[i];
        return NULL;
}

size_t catalog_n_zones(const Catalog *c) {
        return c->n_zones;
}

const Zone *catalog_zone(const Catalog *c, size_t i) {
        return i < c->n_zones ? &c->zones[i] : NULL;
}
