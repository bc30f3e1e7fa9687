/* SPDX-License-Identifier: MIT */
/*
 * catalog.h — the store's products (catalog.conf) and delivery zones
 * (zones.conf), read into an immutable Catalog that belongs to one
 * configuration snapshot.  Both files are INI, one section per product or
 * zone, so that an admin edits them without reading C; see
 * deliveryd.conf(5) and the commented examples in etc/.
 *
 * Security: reads admin-supplied files; every value is validated and every
 * problem reported as file:line.
 */
#pragma once

#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>

#include "diag.h"
#include "macro.h"

typedef struct Catalog Catalog;

typedef struct CatalogItem {
        char *sku; /* [a-z0-9-], the section name */
        char *name_pt; /* "name" */
        char *name_en; /* "name_en", defaults to name */
        char *category; /* optional */
        int64_t price_cents;
        int64_t stock; /* initial stock; 0 = sold out */
        char **aliases; /* extra names customers use, one "alias =" line each */
} CatalogItem;

typedef struct Zone {
        char *id; /* the section name */
        char *name;
        int64_t fee_cents;
        uint64_t eta_usec;
        char **neighbourhoods;
        char **cep_prefixes; /* digits only */
        char **streets;
} Zone;

/* Read both files.  Problems go to diags (with file:line); returns 0 and a
 * new Catalog, -EINVAL if any problem was found, -ENOMEM. */
int catalog_load(const char *catalog_path, const char *zones_path, Catalog **ret, Diags *diags);

Catalog *catalog_free(Catalog *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(Catalog *, catalog_free);

size_t catalog_n_items(const Catalog *c);
const CatalogItem *catalog_item(const Catalog *c, size_t i);
const CatalogItem *catalog_find_sku(const Catalog *c, const char *sku);
size_t catalog_n_zones(const Catalog *c);
const Zone *catalog_zone(const Catalog *c, size_t i);

/* Where an address is, for delivery. */
typedef enum ZonePlace {
        ZONE_PLACE_FOUND, /* in *ret_zone */
        ZONE_PLACE_OUTSIDE, /* it names a CEP or a neighbourhood no zone serves */
        ZONE_PLACE_UNKNOWN, /* nothing in it says where it is: ask for the neighbourhood */
        _ZONE_PLACE_MAX,
} ZonePlace;

/* Place a free-text address (as a customer writes it: "Rua Augusta 1500
 * apto 12", "Av. Paulista, 900 - Bela Vista", "12 Moema st, 04077-000")
 * in a zone: by its CEP first, then by a neighbourhood it names, then by a
 * street of the zones' street lists; case and accents do not matter, and
 * common abbreviations (R., Av., Al.) are read.  When it places nothing,
 * the part after the number (", Tatuapé", "- Tatuapé") or a CEP that no
 * zone has means the address is outside; that part, or NULL, is returned
 * in *ret_place (caller frees; may be NULL).  bare: the text is only a
 * neighbourhood's name (the answer to "which neighbourhood?"), so any
 * non-empty text not served is outside.  Returns the outcome, -ENOMEM. */
int catalog_locate(const Catalog *c, const char *address, bool bare, const Zone **ret_zone, char **ret_place);

/* The neighbourhoods of every zone, in file order, joined as "A, B e C"
 * (pt) or "A, B and C" (en: lang_en true).  NULL on OOM. */
char *catalog_neighbourhoods_text(const Catalog *c, bool lang_en);
