/* SPDX-License-Identifier: MIT */
/*
 * hashmap.h — a small hash table from keys to pointers, for the places
 * where a list scan grows with the load (the inbox's customers at work and
 * waiting).  Keys are borrowed: each stays valid, and unchanged, while it
 * is in the map (normally it points into the value).  Neither keys nor
 * values are freed by the map.
 *
 * Written here rather than taken from GLib (which the daemon links through
 * GMime): g_hash_table aborts the process when an allocation fails, and
 * every structure on the ingest path must answer -ENOMEM instead, so that
 * the sender hears "try again".
 *
 * Security: keys may be customer addresses (untrusted); the hash is
 * seeded per map from the kernel's random source so that chosen keys
 * cannot be made to collide.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"

typedef struct HashOps {
        uint64_t (*hash)(const void *key, uint64_t seed);
        bool (*equal)(const void *a, const void *b);
} HashOps;

/* NUL-terminated strings, and int64_t values pointed to. */
extern const HashOps string_hash_ops;
extern const HashOps int64_hash_ops;

typedef struct Hashmap Hashmap;

/* A new empty map; NULL when out of memory. */
Hashmap *hashmap_new(const HashOps *ops);
Hashmap *hashmap_free(Hashmap *h);
DEFINE_TRIVIAL_CLEANUP_FUNC(Hashmap *, hashmap_free);

/* Add key → value.  0, -EEXIST when key is there already (nothing
 * changes), -ENOMEM. */
int hashmap_put(Hashmap *h, const void *key, void *value);

/* The value of key, or NULL. */
void *hashmap_get(const Hashmap *h, const void *key);

/* Take key out; returns its value, or NULL when it was not there. */
void *hashmap_remove(Hashmap *h, const void *key);

/* Take out some entry and return its value (NULL when empty): for
 * draining a map. */
void *hashmap_steal_first(Hashmap *h);

size_t hashmap_size(const Hashmap *h);
