/* SPDX-License-Identifier: MIT */
/*
 * hashmap.c — open addressing with linear probing; deletion shifts the
 * following entries back (no tombstones), so a map that is filled and
 * drained over and over does not slow down.  The table doubles at 3/4
 * full and never shrinks below its largest size.
 *
 * Security: see hashmap.h.
 */
#include "hashmap.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "alloc.h"

#define HASHMAP_MIN_BUCKETS 16u

typedef struct Entry {
        const void *key; /* NULL: empty */
        void *value;
        uint64_t hash;
} Entry;

struct Hashmap {
        const HashOps *ops;
        Entry *buckets;
        size_t n_buckets; /* a power of two */
        size_t n;
        size_t cursor; /* where hashmap_steal_first() looks first */
        uint64_t seed;
};

/* SipHash would do as well; this is FNV-1a with a random start, mixed at
 * the end (the murmur3 finaliser) so that the low bits used for the
 * bucket depend on every byte. */
static uint64_t mix(uint64_t h) {
        h ^= h >> 33;
        h *= 0xff51afd7ed558ccdULL;
        h ^= h >> 33;
        h *= 0xc4ceb9fe1a85ec53ULL;
        h ^= h >> 33;
        return h;
}

static uint64_t string_hash(const void *key, uint64_t seed) {
        uint64_t h = 14695981039346656037ULL ^ seed;

        for (const unsigned char *p = key; *p; p++)
                h = (h ^ *p) * 1099511628211ULL;
        return mix(h);
}

static bool string_equal(const void *a, const void *b) {
        return streq((const char *) a, (const char *) b);
}

static uint64_t int64_hash(const void *key, uint64_t seed) {
        return mix(*(const uint64_t *) key ^ seed);
}

static bool int64_equal(const void *a, const void *b) {
        return *(const int64_t *) a == *(const int64_t *) b;
}

const HashOps string_hash_ops = { .hash = string_hash, .equal = string_equal };
const HashOps int64_hash_ops = { .hash = int64_hash, .equal = int64_equal };

Hashmap *hashmap_new(const HashOps *ops) {
        Hashmap *h = mem_new(Hashmap, 1);

        if (!h)
                return NULL;
        h->ops = ops;
        if (getrandom(&h->seed, sizeof h->seed, GRND_NONBLOCK) != sizeof h->seed)
                h->seed = (uint64_t) time(NULL) ^ (uint64_t) (uintptr_t) h;
        return h;
}

Hashmap *hashmap_free(Hashmap *h) {
        if (!h)
                return NULL;
        free(h->buckets);
        free(h);
        return NULL;
}

size_t hashmap_size(const Hashmap *h) {
        return h ? h->n : 0;
}

/* The bucket holding key, or the empty one where it would go. */
static size_t find(const Hashmap *h, const void *key, uint64_t hash) {
        size_t mask = h->n_buckets - 1;

        for (size_t i = hash & mask;; i = (i + 1) & mask) {
                const Entry *e = &h->buckets[i];
                if (!e->key || (e->hash == hash && h->ops->equal(e->key, key)))
                        return i;
        }
}

static int resize(Hashmap *h, size_t n_buckets) {
        Entry *old = h->buckets;
        size_t n_old = h->n_buckets;

        h->buckets = mem_new(Entry, n_buckets);
        if (!h->buckets) {
                h->buckets = old;
                return -ENOMEM;
        }
        h->n_buckets = n_buckets;
        for (size_t i = 0; i < n_old; i++)
                if (old[i].key)
                        h->buckets[find(h, old[i].key, old[i].hash)] = old[i];
        free(old);
        return 0;
}

int hashmap_put(Hashmap *h, const void *key, void *value) {
        uint64_t hash = h->ops->hash(key, h->seed);
        size_t i;
        int r;

        if ((h->n + 1) * 4 > h->n_buckets * 3) {
                r = resize(h, MAX(h->n_buckets * 2, (size_t) HASHMAP_MIN_BUCKETS));
                if (r < 0)
                        return r;
        }
        i = find(h, key, hash);
        if (h->buckets[i].key)
                return -EEXIST;
        h->buckets[i] = (Entry){ .key = key, .value = value, .hash = hash };
        h->n++;
        return 0;
}

void *hashmap_get(const Hashmap *h, const void *key) {
        size_t i;

        if (!h || h->n == 0)
                return NULL;
        i = find(h, key, h->ops->hash(key, h->seed));
        return h->buckets[i].key ? h->buckets[i].value : NULL;
}

/* Empty bucket i, moving back each later entry of the run whose home
 * bucket lies at or before the hole, so that every lookup still finds it. */
static void remove_at(Hashmap *h, size_t i) {
        size_t mask = h->n_buckets - 1;

        h->buckets[i] = (Entry){};
        h->n--;
        for (size_t j = (i + 1) & mask; h->buckets[j].key; j = (j + 1) & mask) {
                size_t home = h->buckets[j].hash & mask;
                /* j's distance from home, and the hole's: move if the hole is
                 * between home and j (cyclically). */
                if (((j - home) & mask) >= ((j - i) & mask)) {
                        h->buckets[i] = h->buckets[j];
                        h->buckets[j] = (Entry){};
                        i = j;
                }
        }
}

void *hashmap_remove(Hashmap *h, const void *key) {
        size_t i;
        void *v;

        if (!h || h->n == 0)
                return NULL;
        i = find(h, key, h->ops->hash(key, h->seed));
        if (!h->buckets[i].key)
                return NULL;
        v = h->buckets[i].value;
        remove_at(h, i);
        return v;
}

void *hashmap_steal_first(Hashmap *h) {
        if (!h || h->n == 0)
                return NULL;
        /* Going on from where the last one was found: draining the map
         * costs one pass over the buckets, not one pass an entry. */
        for (size_t k = 0; k < h->n_buckets; k++) {
                size_t i = (h->cursor + k) & (h->n_buckets - 1);
                if (h->buckets[i].key) {
                        void *v = h->buckets[i].value;
                        h->cursor = i;
                        remove_at(h, i);
                        return v;
                }
        }
        return NULL;
}
