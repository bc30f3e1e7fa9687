/* SPDX-License-Identifier: MIT */
/*
 * test-catalog.c — catalog.conf and zones.conf: the shipped demo store
 * loads as DESIGN.md describes it, and every malformed row is reported.
 */
#include "test-helpers.h"

#include <errno.h>

#include "alloc.h"
#include "catalog.h"
#include "strutil.h"

static void test_demo_store(void **state _unused_) {
        _cleanup_(catalog_freep) Catalog *c = NULL;
        Diags d = {};
        const CatalogItem *it;

        assert_int_equal(catalog_load(TEST_SRCDIR "/etc/catalog.conf", TEST_SRCDIR "/etc/zones.conf", &c, &d), 0);
        assert_int_equal(d.n, 0);
        assert_int_equal(catalog_n_items(c), 13);
        assert_int_equal(catalog_n_zones(c), 4);

        it = catalog_find_sku(c, "pz-calabresa");
        assert_non_null(it);
        assert_int_equal(it->price_cents, 5290);
        assert_int_equal(it->stock, 20);
        assert_string_equal(it->name_en, "Calabresa (pepperoni) pizza");
        it = catalog_find_sku(c, "pz-frango-catupiry");
        assert_int_equal(it->stock, 0); /* sold out */
        it = catalog_find_sku(c, "sobremesa-brownie");
        assert_string_equal(it->name_pt, "Brownie");
        assert_int_equal(it->price_cents, 1290);
        assert_null(catalog_find_sku(c, "pz-hawaii"));

        /* fee and time per zone, as DESIGN.md lists them */
        static const struct {
                const char *neighbourhood;
                int64_t fee;
                unsigned minutes;
        } zones[] = {
                { "Consolação", 500, 25 },   { "Bela Vista", 500, 25 },      { "Centro", 700, 30 },
                { "República", 700, 30 },    { "Jardim Paulista", 700, 30 }, { "Pinheiros", 900, 35 },
                { "Vila Mariana", 900, 35 }, { "Moema", 1100, 40 },          { "Itaim Bibi", 1100, 40 },
        };
        for (size_t i = 0; i < ELEMENTSOF(zones); i++) {
                bool found = false;
                for (size_t z = 0; z < catalog_n_zones(c); z++) {
                        const Zone *zone = catalog_zone(c, z);
                        if (strv_contains(zone->neighbourhoods, zones[i].neighbourhood)) {
                                assert_int_equal(zone->fee_cents, zones[i].fee);
                                assert_int_equal(zone->eta_usec, zones[i].minutes * 60 * USEC_PER_SEC);
                                found = true;
                        }
                }
                if (!found)
                        fail_msg("neighbourhood %s is in no zone", zones[i].neighbourhood);
        }
}

static char *load(const char *catalog, const char *zones, int *ret_r) {
        char cp[4096], zp[4096], buf[8192] = "";
        Catalog *c = NULL;
        Diags d = {};

        write_file(test_dir, "catalog.conf", catalog);
        write_file(test_dir, "zones.conf", zones);
        snprintf(cp, sizeof cp, "%s/catalog.conf", test_dir);
        snprintf(zp, sizeof zp, "%s/zones.conf", test_dir);
        *ret_r = catalog_load(cp, zp, &c, &d);
        for (size_t i = 0; i < d.n; i++) {
                const char *l = d.lines[i];
                if (strncmp(l, test_dir, strlen(test_dir)) == 0)
                        l += strlen(test_dir) + 1;
                strncat(buf, l, sizeof buf - strlen(buf) - 1);
                if (i + 1 < d.n)
                        strncat(buf, "|", sizeof buf - strlen(buf) - 1);
        }
        diags_clear(&d);
        if (*ret_r == 0)
                assert_non_null(c);
        else
                assert_null(c);
        catalog_free(c);
        return strdup(buf);
}

#define ITEM "[pz-a]\nname = A\nprice = 10.00\nstock = 1\n"
#define ZONE "[z]\nfee = 5.00\neta = 25min\nneighbourhood = Centro\n"

static void test_errors(void **state _unused_) {
        static const struct {
                const char *catalog, *zones, *diags;
        } cases[] = {
                { ITEM, ZONE, "" },
                { "[Pizza A]\nname = A\n", ZONE,
                  "catalog.conf:1: invalid SKU [Pizza A]: use lower-case letters, digits and '-', at most 64" },
                { ITEM "[pz-a]\nname = B\nprice = 1\nstock = 1\n", ZONE, "catalog.conf:5: duplicate product [pz-a]" },
                { "[pz-a]\nname = A\n", ZONE,
                  "catalog.conf:1: product [pz-a] has no 'price'|catalog.conf:1: product [pz-a] has no 'stock'" },
                { "[pz-a]\nname = A\nprice = 10.999\nstock = 1\n", ZONE,
                  "catalog.conf:3: invalid price '10.999' (e.g. 49.90)|catalog.conf:1: product [pz-a] has no "
                  "'price'" },
                { "[pz-a]\nname = A\nprice = 0\nstock = 1\n", ZONE,
                  "catalog.conf:3: invalid price '0' (e.g. 49.90)|catalog.conf:1: product [pz-a] has no 'price'" },
                { "[pz-a]\nname = A\nprice = 1\nstock = -1\n", ZONE,
                  "catalog.conf:4: invalid stock '-1' (0 to 1000000; 0 = sold out)|catalog.conf:1: product [pz-a] "
                  "has no 'stock'" },
                { ITEM "colour = red\n", ZONE, "catalog.conf:5: unknown key 'colour' in product [pz-a]" },
                { ITEM "alias =\n", ZONE, "catalog.conf:5: 'alias' must not be empty" },
                { "# nothing\n", ZONE, "catalog.conf: the catalog lists no products" },
                { ITEM, "[z]\nfee = 5\n",
                  "zones.conf:1: zone [z] has no 'eta'|zones.conf:1: zone [z] has no "
                  "'neighbourhood'" },
                { ITEM, ZONE "eta = soon\n", "zones.conf:5: invalid eta 'soon' (e.g. 30min, at most 24h)" },
                { ITEM, ZONE "cep = 01301 0130A\n", "zones.conf:5: invalid CEP prefix '0130A' (1 to 8 digits)" },
                { ITEM, ZONE "[y]\nfee = 1\neta = 1h\nneighbourhood = centro\n",
                  "zones.conf:8: neighbourhood 'centro' is already in zone [z]|zones.conf:5: zone [y] has no "
                  "'neighbourhood'" },
                { ITEM, ZONE "street = Rua A\n[y]\nfee = 1\neta = 1h\nneighbourhood = B\nstreet = Rua A\n",
                  "zones.conf:10: street 'Rua A' is already in zone [z]" },
                { ITEM, ZONE "[z]\nfee = 1\neta = 1h\nneighbourhood = B\n", "zones.conf:5: duplicate zone [z]" },
                { ITEM, ZONE "radius = 5km\n", "zones.conf:5: unknown key 'radius' in zone [z]" },
                { ITEM, ZONE "cep = 014\n[y]\nfee = 1\neta = 1h\nneighbourhood = B\ncep = 0141 015\n",
                  "zones.conf:10: CEP prefix '0141' overlaps '014' of zone [z]" },
                { ITEM, ZONE "cep = 01401\n[y]\nfee = 1\neta = 1h\nneighbourhood = B\ncep = 014\n",
                  "zones.conf:10: CEP prefix '014' overlaps '01401' of zone [z]" },
                { ITEM, ZONE "cep = 014 0141 014\n", "" }, /* overlapping within one zone is harmless */
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                int r;
                _cleanup_free_ char *d = load(cases[i].catalog, cases[i].zones, &r);
                if (!streq(d, cases[i].diags))
                        fail_msg("case %zu: got '%s', want '%s'", i, d, cases[i].diags);
                assert_int_equal(r, *cases[i].diags ? -EINVAL : 0);
        }
}

static void test_missing_files(void **state _unused_) {
        Catalog *c = NULL;
        Diags d = {};

        assert_int_equal(catalog_load("/nonexistent/c.conf", "/nonexistent/z.conf", &c, &d), -EINVAL);
        assert_int_equal(d.n, 2);
        assert_string_equal(d.lines[0], "/nonexistent/c.conf: cannot read catalog: No such file or directory");
        assert_string_equal(d.lines[1], "/nonexistent/z.conf: cannot read zones: No such file or directory");
        diags_clear(&d);
}

static int load_demo(void *userdata _unused_) {
        Catalog *c = NULL;
        Diags d = {};
        int r = catalog_load(TEST_SRCDIR "/etc/catalog.conf", TEST_SRCDIR "/etc/zones.conf", &c, &d);

        diags_clear(&d);
        catalog_free(c);
        return r;
}

static void test_locate(void **state _unused_) {
        static const struct {
                const char *address;
                bool bare;
                int place;
                const char *zone, *named;
        } rows[] = {
                { "Rua Augusta 1500", false, ZONE_PLACE_FOUND, "centro-sul", NULL },
                { "rua augusta, 1500 apto 12", false, ZONE_PLACE_FOUND, "centro-sul", NULL },
                { "R. Augusta 1500", false, ZONE_PLACE_FOUND, "centro-sul", NULL },
                { "Augusta 1500", false, ZONE_PLACE_FOUND, "centro-sul", NULL },
                { "Av. Paulista, 900", false, ZONE_PLACE_FOUND, "centro-sul", NULL },
                { "AVENIDA PAULISTA 900", false, ZONE_PLACE_FOUND, "centro-sul", NULL },
                { "Rua Qualquer 10 - Moema", false, ZONE_PLACE_FOUND, "sul", NULL },
                { "Rua Qualquer 10, Itaim Bibi", false, ZONE_PLACE_FOUND, "sul", NULL },
                { "Rua Qualquer 10, itaim bibi", false, ZONE_PLACE_FOUND, "sul", NULL },
                { "Rua Teodoro Sampaio 700", false, ZONE_PLACE_FOUND, "oeste", NULL },
                { "Rua Qualquer 10, Consolacao", false, ZONE_PLACE_FOUND, "centro-sul", NULL },
                { "Rua Qualquer 10, Jardins", false, ZONE_PLACE_FOUND, "centro", NULL },
                { "12 Some street, 01310-100", false, ZONE_PLACE_FOUND, "centro-sul", NULL },
                { "Rua X 5 cep 01310100", false, ZONE_PLACE_FOUND, "centro-sul", NULL },
                { "Rua X 5, 08090-000", false, ZONE_PLACE_OUTSIDE, NULL, "08090000" },
                { "Rua das Flores 10, Tatuape", false, ZONE_PLACE_OUTSIDE, NULL, "Tatuape" },
                { "Rua das Flores 10 - Santana", false, ZONE_PLACE_OUTSIDE, NULL, "Santana" },
                { "Rua das Flores 10", false, ZONE_PLACE_UNKNOWN, NULL, NULL },
                { "Rua das Flores 10, apto 3", false, ZONE_PLACE_UNKNOWN, NULL, NULL },
                { "Rua das Flores, 10", false, ZONE_PLACE_UNKNOWN, NULL, NULL },
                { "Moema", true, ZONE_PLACE_FOUND, "sul", NULL },
                { "bela vista", true, ZONE_PLACE_FOUND, "centro-sul", NULL },
                { "Tatuape", true, ZONE_PLACE_OUTSIDE, NULL, "Tatuape" },
                { "", true, ZONE_PLACE_UNKNOWN, NULL, NULL },
        };
        _cleanup_(catalog_freep) Catalog *c = NULL;
        Diags d = {};

        assert_int_equal(catalog_load(TEST_SRCDIR "/etc/catalog.conf", TEST_SRCDIR "/etc/zones.conf", &c, &d), 0);
        for (size_t i = 0; i < ELEMENTSOF(rows); i++) {
                const Zone *z = NULL;
                _cleanup_free_ char *named = NULL;
                int r = catalog_locate(c, rows[i].address, rows[i].bare, &z, &named);
                if (r != rows[i].place)
                        fail_msg("'%s': got %d, want %d", rows[i].address, r, rows[i].place);
                if (rows[i].zone) {
                        assert_non_null(z);
                        assert_string_equal(z->id, rows[i].zone);
                }
                if (rows[i].named) {
                        assert_non_null(named);
                        assert_string_equal(named, rows[i].named);
                } else
                        assert_null(named);
        }
        _cleanup_free_ char *pt = catalog_neighbourhoods_text(c, false);
        _cleanup_free_ char *en = catalog_neighbourhoods_text(c, true);
        assert_string_equal(pt,
                            "Consolação, Bela Vista, Centro, República, Jardim Paulista, Jardins, Pinheiros, "
                            "Vila Mariana, Moema e Itaim Bibi");
        assert_non_null(strstr(en, ", Moema and Itaim Bibi"));
}

static void test_oom(void **state _unused_) {
        assert_true(oom_loop(load_demo, NULL, 0) > 100);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_demo_store), cmocka_unit_test(test_errors), cmocka_unit_test(test_missing_files),
                cmocka_unit_test(test_locate),     cmocka_unit_test(test_oom),
        };
        return cmocka_run_group_tests(tests, tmpdir_setup, tmpdir_teardown);
}
