/* SPDX-License-Identifier: MIT */
/*
 * test-hashmap.c — the hash table against a plain array doing the same
 * random puts, gets, removes and drains (so that deletion's backward
 * shifting is exercised on long probe runs), int64 keys, and allocation
 * failure while growing.
 */
#include "test-helpers.h"

#include "hashmap.h"

#define N_KEYS 600

static void test_random_ops(void **state _unused_) {
        static char keys[N_KEYS][16];
        bool in[N_KEYS] = {};
        size_t n = 0;
        unsigned seed = 11;
        _cleanup_(hashmap_freep) Hashmap *h = hashmap_new(&string_hash_ops);

        assert_non_null(h);
        for (int i = 0; i < N_KEYS; i++)
                snprintf(keys[i], sizeof keys[i], "+5511%06d", i * 7);
        for (int round = 0; round < 20000; round++) {
                int k = (int) (rand_r(&seed) % N_KEYS);
                switch (rand_r(&seed) % 4) {
                case 0:
                case 1:
                        assert_int_equal(hashmap_put(h, keys[k], keys[k]), in[k] ? -EEXIST : 0);
                        n += !in[k];
                        in[k] = true;
                        break;
                case 2:
                        assert_ptr_equal(hashmap_remove(h, keys[k]), in[k] ? keys[k] : NULL);
                        n -= in[k];
                        in[k] = false;
                        break;
                default:
                        /* a copy of the key, not the same pointer */
                        assert_ptr_equal(hashmap_get(h, (char[16]){ 0 }), NULL);
                        char copy[16];
                        memcpy(copy, keys[k], sizeof copy);
                        assert_ptr_equal(hashmap_get(h, copy), in[k] ? keys[k] : NULL);
                }
                assert_int_equal(hashmap_size(h), n);
                if (round % 5000 == 4999) {
                        /* drain: every entry once */
                        char *v;
                        size_t got = 0;
                        while ((v = hashmap_steal_first(h))) {
                                int i = (int) ((v - keys[0]) / (int) sizeof keys[0]);
                                assert_true(in[i]);
                                in[i] = false;
                                got++;
                        }
                        assert_int_equal(got, n);
                        n = 0;
                        assert_int_equal(hashmap_size(h), 0);
                }
        }
        for (int i = 0; i < N_KEYS; i++)
                assert_ptr_equal(hashmap_get(h, keys[i]), in[i] ? keys[i] : NULL);
}

static void test_int64(void **state _unused_) {
        _cleanup_(hashmap_freep) Hashmap *h = hashmap_new(&int64_hash_ops);
        int64_t ids[100];

        assert_non_null(h);
        for (int i = 0; i < 100; i++) {
                ids[i] = (int64_t) i * 1000003 - 50;
                assert_int_equal(hashmap_put(h, &ids[i], &ids[i]), 0);
        }
        int64_t probe = 3 * 1000003 - 50;
        assert_ptr_equal(hashmap_get(h, &probe), &ids[3]);
        assert_ptr_equal(hashmap_remove(h, &probe), &ids[3]);
        assert_null(hashmap_get(h, &probe));
        assert_int_equal(hashmap_size(h), 99);
        assert_null(hashmap_get(NULL, &probe));
        assert_int_equal(hashmap_size(NULL), 0);
}

static int attempt_fill(void *userdata _unused_) {
        static char keys[200][8];
        _cleanup_(hashmap_freep) Hashmap *h = hashmap_new(&string_hash_ops);
        int r;

        if (!h)
                return -ENOMEM;
        for (int i = 0; i < 200; i++) {
                snprintf(keys[i], sizeof keys[i], "k%d", i);
                r = hashmap_put(h, keys[i], keys[i]);
                if (r < 0) {
                        /* what is in stays in and findable */
                        for (int j = 0; j < i; j++)
                                assert_ptr_equal(hashmap_get(h, keys[j]), keys[j]);
                        assert_null(hashmap_get(h, keys[i]));
                        return r;
                }
        }
        return (int) hashmap_size(h);
}

static void test_oom(void **state _unused_) {
        assert_true(oom_loop(attempt_fill, NULL, 200) > 3);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_random_ops),
                cmocka_unit_test(test_int64),
                cmocka_unit_test(test_oom),
        };

        alloc_init();
        return cmocka_run_group_tests(tests, NULL, NULL);
}
