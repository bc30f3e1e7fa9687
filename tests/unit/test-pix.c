/* SPDX-License-Identifier: MIT */
/*
 * test-pix.c — the BR Code ("Pix copia e cola") and its CRC, against the
 * example of the Banco Central do Brasil's "Manual de Padrões para
 * Iniciação do Pix" (static BR Code, section on examples), whose CRC we
 * checked independently.
 */
#include "test-helpers.h"

#include "pix.h"

/* The manual's static example: key 123e4567-e12b-12d1-a456-426655440000,
 * "Fulano de Tal", BRASILIA, no amount, no txid ("***"). */
#define BCB_EXAMPLE                                                                                                    \
        "00020126580014br.gov.bcb.pix0136123e4567-e12b-12d1-a456-4266554400005204000053039865802BR5913Fulano de "      \
        "Tal6008BRASILIA62070503***63041D3D"

static void test_crc16(void **state _unused_) {
        static const struct {
                const char *in;
                uint16_t crc;
        } rows[] = {
                { "123456789", 0x29B1 }, /* the CRC-16/CCITT-FALSE check value */
                { "", 0xFFFF },
                { "A", 0xB915 },
        };
        for (size_t i = 0; i < ELEMENTSOF(rows); i++)
                assert_int_equal(pix_crc16(rows[i].in, strlen(rows[i].in)), rows[i].crc);
        /* The manual's example: its CRC covers everything up to and including "6304". */
        assert_int_equal(pix_crc16(BCB_EXAMPLE, strlen(BCB_EXAMPLE) - 4), 0x1D3D);
}

static void test_bcb_example(void **state _unused_) {
        _cleanup_free_ char *code = NULL;
        const PixRequest p = {
                .key = "123e4567-e12b-12d1-a456-426655440000",
                .merchant_name = "Fulano de Tal",
                .merchant_city = "BRASILIA",
        };

        assert_int_equal(pix_brcode(&p, &code), 0);
        assert_string_equal(code, BCB_EXAMPLE);
}

static void test_order_payload(void **state _unused_) {
        _cleanup_free_ char *code = NULL;
        char crc[5];
        const PixRequest p = {
                .key = "pix@bellanapoli.example",
                .merchant_name = "Pizzaria Bella Napoli Ltda ME",
                .merchant_city = "São Paulo",
                .amount_cents = 6490,
                .txid = "7KQ2XM",
        };

        assert_int_equal(pix_brcode(&p, &code), 0);
        assert_string_equal(code,
                            "000201"
                            "2645"
                            "0014br.gov.bcb.pix"
                            "0123pix@bellanapoli.example"
                            "52040000"
                            "5303986"
                            "540564.90"
                            "5802BR"
                            "5925Pizzaria Bella Napoli Ltd" /* cut to 25 */
                            "6009Sao Paulo" /* folded to ASCII */
                            "62100506"
                            "7KQ2XM"
                            "6304"
                            "C7C8"); /* computed independently */
        /* The CRC is that of everything before it. */
        snprintf(crc, sizeof crc, "%04X", pix_crc16(code, strlen(code) - 4));
        assert_string_equal(code + strlen(code) - 4, crc);
}

static void test_amounts(void **state _unused_) {
        static const struct {
                int64_t cents;
                const char *field;
        } rows[] = {
                { 1, "54040.01" },
                { 100, "54041.00" },
                { 6490, "540564.90" },
                { 123456, "54071234.56" },
        };
        for (size_t i = 0; i < ELEMENTSOF(rows); i++) {
                _cleanup_free_ char *code = NULL;
                const PixRequest p = { .key = "+5511987654321",
                                       .merchant_name = "X",
                                       .merchant_city = "Y",
                                       .amount_cents = rows[i].cents };
                assert_int_equal(pix_brcode(&p, &code), 0);
                assert_non_null(strstr(code, rows[i].field));
        }
}

static void test_fold(void **state _unused_) {
        static const struct {
                const char *in;
                size_t max;
                const char *out;
        } rows[] = {
                { "Açaí & Cia", 25, "Acai & Cia" },
                { "  São   João  ", 25, "Sao Joao" },
                { "Florianópolis do Sul", 15, "Florianopolis d" },
                { "Pão de Açúcar\tLtda", 25, "Pao de Acucar Ltda" },
                { "日本", 25, "" },
        };
        for (size_t i = 0; i < ELEMENTSOF(rows); i++) {
                _cleanup_free_ char *f = pix_fold(rows[i].in, rows[i].max);
                assert_non_null(f);
                assert_string_equal(f, rows[i].out);
        }
}

static void test_invalid(void **state _unused_) {
        char long_key[80];
        const PixRequest good = { .key = "k@x.example", .merchant_name = "N", .merchant_city = "C" };
        PixRequest p;
        char *code = NULL;

        memset(long_key, 'k', 78);
        long_key[78] = '\0';
        const PixRequest rows[] = {
                { .key = NULL, .merchant_name = "N", .merchant_city = "C" },
                { .key = "", .merchant_name = "N", .merchant_city = "C" },
                { .key = "has space", .merchant_name = "N", .merchant_city = "C" },
                { .key = long_key, .merchant_name = "N", .merchant_city = "C" },
                { .key = "k", .merchant_name = "", .merchant_city = "C" },
                { .key = "k", .merchant_name = "日本", .merchant_city = "C" },
                { .key = "k", .merchant_name = "N", .merchant_city = NULL },
                { .key = "k", .merchant_name = "N", .merchant_city = "C", .amount_cents = -1 },
                { .key = "k", .merchant_name = "N", .merchant_city = "C", .txid = "" },
                { .key = "k", .merchant_name = "N", .merchant_city = "C", .txid = "has-dash" },
                { .key = "k", .merchant_name = "N", .merchant_city = "C", .txid = "12345678901234567890123456" },
        };
        for (size_t i = 0; i < ELEMENTSOF(rows); i++) {
                p = rows[i];
                assert_int_equal(pix_brcode(&p, &code), -EINVAL);
                assert_null(code);
        }
        memset(long_key, 'k', 77);
        long_key[77] = '\0';
        p = good;
        p.key = long_key;
        assert_int_equal(pix_brcode(&p, &code), 0);
        assert_non_null(strstr(code, "2699"));
        free(code);
}

static int oom_attempt(void *userdata _unused_) {
        char *code = NULL;
        const PixRequest p = { .key = "k@x.example",
                               .merchant_name = "Açaí",
                               .merchant_city = "São Paulo",
                               .amount_cents = 100,
                               .txid = "ABC" };
        int r = pix_brcode(&p, &code);
        free(code);
        return r;
}

static void test_oom(void **state _unused_) {
        assert_true(oom_loop(oom_attempt, NULL, 0) > 1);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_crc16),         cmocka_unit_test(test_bcb_example),
                cmocka_unit_test(test_order_payload), cmocka_unit_test(test_amounts),
                cmocka_unit_test(test_fold),          cmocka_unit_test(test_invalid),
                cmocka_unit_test(test_oom),
        };
        alloc_init();
        return cmocka_run_group_tests(tests, NULL, NULL);
}
