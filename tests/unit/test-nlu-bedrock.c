/* SPDX-License-Identifier: MIT */
/*
 * test-nlu-bedrock.c — nlu.backend = bedrock without the network: the
 * request path and body built for the demo catalog (tool schema with the
 * catalog's SKUs, toolChoice, temperature 0, no prices), a table of
 * Converse answers and what each one gives, the backoff windows, the
 * client's budget and its fallback to the rules through nlu-client, and
 * allocation failure in building and reading.
 */
#include "test-helpers.h"

#include <jansson.h>
#include <systemd/sd-event.h>

#include "catalog.h"
#include "curl-event.h"
#include "metrics.h"
#include "nlu-bedrock.h"
#include "nlu-client.h"
#include "nlu.h"
#include "snapshot.h"

#define DEMO_CONF TEST_SRCDIR "/etc/deliveryd.conf"
#define DEMO_CATALOG TEST_SRCDIR "/etc/catalog.conf"
#define DEMO_ZONES TEST_SRCDIR "/etc/zones.conf"
#define MODEL "anthropic.claude-3-haiku-20240307-v1:0"

static Catalog *catalog;

static int setup(void **state _unused_) {
        Diags d = {};

        alloc_init();
        if (catalog_load(DEMO_CATALOG, DEMO_ZONES, &catalog, &d) < 0) {
                diags_clear(&d);
                return -1;
        }
        return 0;
}

static int teardown(void **state _unused_) {
        catalog = catalog_free(catalog);
        return 0;
}

static void test_outcome_names(void **state _unused_) {
        for (int i = 0; i < _NLU_BEDROCK_OUTCOME_MAX; i++) {
                const char *s = nlu_bedrock_outcome_to_string((NluBedrockOutcome) i);
                assert_non_null(s);
                assert_int_equal(nlu_bedrock_outcome_from_string(s), i);
        }
        assert_null(nlu_bedrock_outcome_to_string(_NLU_BEDROCK_OUTCOME_MAX));
        assert_int_equal(nlu_bedrock_outcome_from_string("fine"), -EINVAL);
        assert_string_equal(nlu_bedrock_outcome_to_string(NLU_BEDROCK_TIMEOUT), "timeout");
}

static void test_path(void **state _unused_) {
        static const struct {
                const char *model, *path;
                int r;
        } rows[] = {
                /* as in the vectors' constructed-converse-request.http */
                { MODEL, "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse", 0 },
                { "us.anthropic.claude-3-5-haiku-20241022-v1:0",
                  "/model/us.anthropic.claude-3-5-haiku-20241022-v1%3A0/converse", 0 },
                { "arn:aws:bedrock:us-east-1:123456789012:inference-profile/x.y-v1:0",
                  "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2Fx.y-v1%3A0/converse",
                  0 },
                { "", NULL, -EINVAL },
        };

        for (size_t i = 0; i < ELEMENTSOF(rows); i++) {
                _cleanup_free_ char *p = NULL;

                assert_int_equal(nlu_bedrock_path(rows[i].model, &p), rows[i].r);
                if (rows[i].path)
                        assert_string_equal(p, rows[i].path);
                else
                        assert_null(p);
        }
}

static json_t *body_of(const char *text, size_t len, size_t max_input, unsigned max_tokens) {
        _cleanup_free_ char *body = NULL;
        json_error_t e;
        json_t *j;

        assert_int_equal(nlu_bedrock_request_body(catalog, text, len, max_input, max_tokens, &body), 0);
        assert_null(strchr(body, '\n')); /* compact: one line */
        j = json_loads(body, JSON_REJECT_DUPLICATES, &e);
        assert_non_null(j);
        return j;
}

static void test_request_body(void **state _unused_) {
        json_t *j = body_of("quero 2 calabresa\npago no pix", strlen("quero 2 calabresa\npago no pix"), 4096, 300), *v,
               *schema, *skus;
        const char *prompt;
        size_t i;

        /* only the customer's message, cleaned to one line */
        v = json_object_get(j, "messages");
        assert_int_equal(json_array_size(v), 1);
        assert_string_equal(json_string_value(json_object_get(json_array_get(v, 0), "role")), "user");
        v = json_object_get(json_array_get(v, 0), "content");
        assert_int_equal(json_array_size(v), 1);
        assert_string_equal(json_string_value(json_object_get(json_array_get(v, 0), "text")),
                            "quero 2 calabresa pago no pix");

        v = json_object_get(j, "inferenceConfig");
        assert_true(json_is_number(json_object_get(v, "temperature")));
        assert_true(json_number_value(json_object_get(v, "temperature")) == 0.0);
        assert_int_equal(json_integer_value(json_object_get(v, "maxTokens")), 300);

        /* one tool, forced */
        v = json_object_get(j, "toolConfig");
        assert_string_equal(
                json_string_value(json_object_get(json_object_get(json_object_get(v, "toolChoice"), "tool"), "name")),
                NLU_BEDROCK_TOOL_NAME);
        assert_int_equal(json_object_size(json_object_get(v, "toolChoice")), 1);
        assert_int_equal(json_array_size(json_object_get(v, "tools")), 1);
        v = json_object_get(json_array_get(json_object_get(v, "tools"), 0), "toolSpec");
        assert_string_equal(json_string_value(json_object_get(v, "name")), NLU_BEDROCK_TOOL_NAME);
        assert_non_null(json_string_value(json_object_get(v, "description")));
        schema = json_object_get(json_object_get(v, "inputSchema"), "json");
        assert_string_equal(json_string_value(json_object_get(schema, "type")), "object");
        assert_int_equal(json_array_size(json_object_get(schema, "required")), 6);
        assert_true(json_is_false(json_object_get(schema, "additionalProperties")));

        /* items: the catalog's SKUs, exactly, and qty 1 … 50 */
        v = json_object_get(json_object_get(json_object_get(schema, "properties"), "items"), "items");
        skus = json_object_get(json_object_get(json_object_get(v, "properties"), "sku"), "enum");
        assert_int_equal(json_array_size(skus), catalog_n_items(catalog));
        assert_int_equal(catalog_n_items(catalog), 13);
        for (i = 0; i < catalog_n_items(catalog); i++)
                assert_string_equal(json_string_value(json_array_get(skus, i)), catalog_item(catalog, i)->sku);
        assert_string_equal(json_string_value(json_array_get(skus, 1)), "pz-calabresa");
        v = json_object_get(json_object_get(v, "properties"), "qty");
        assert_string_equal(json_string_value(json_object_get(v, "type")), "integer");
        assert_int_equal(json_integer_value(json_object_get(v, "minimum")), 1);
        assert_int_equal(json_integer_value(json_object_get(v, "maximum")), 50);

        v = json_object_get(schema, "properties");
        assert_int_equal(json_array_size(json_object_get(json_object_get(v, "intent"), "enum")), _NLU_INTENT_MAX);
        assert_string_equal(json_string_value(json_object_get(json_object_get(v, "order_id"), "pattern")),
                            "^[0-9A-HJKMNP-TV-Z]{6}$");
        assert_true(json_is_null(json_array_get(json_object_get(json_object_get(v, "payment"), "enum"), 3)));
        assert_string_equal(json_string_value(json_array_get(json_object_get(json_object_get(v, "lang"), "enum"), 1)),
                            "en");

        /* the system prompt names every product, never a price */
        prompt = json_string_value(json_object_get(json_array_get(json_object_get(j, "system"), 0), "text"));
        assert_non_null(prompt);
        for (i = 0; i < catalog_n_items(catalog); i++)
                assert_non_null(strstr(prompt, catalog_item(catalog, i)->sku));
        assert_non_null(strstr(prompt, "Calabresa (pepperoni) pizza"));
        assert_null(strstr(prompt, "52.90"));
        assert_null(strstr(prompt, "52,90"));
        assert_null(strstr(prompt, "5290"));
        assert_null(strstr(prompt, "R$"));
        json_decref(j);
}

static void test_request_bounds(void **state _unused_) {
        _cleanup_free_ char *body = NULL;
        json_t *j;

        /* cut at max_input; invalid UTF-8 becomes a space */
        j = body_of("oi \xff\xfe tudo bem? e mais coisas", 31, 14, 64);
        assert_string_equal(
                json_string_value(json_object_get(
                        json_array_get(json_object_get(json_array_get(json_object_get(j, "messages"), 0), "content"),
                                       0),
                        "text")),
                "oi tudo bem");
        json_decref(j);
        /* nothing to send */
        assert_int_equal(nlu_bedrock_request_body(catalog, " \n\t", 3, 4096, 64, &body), -EINVAL);
        assert_int_equal(nlu_bedrock_request_body(catalog, "", 0, 4096, 64, &body), -EINVAL);
        assert_null(body);
}

/* A Converse response with stopReason and one content block. */
static char *response(const char *stop, const char *block) {
        char *s = NULL;

        assert_true(asprintf(&s,
                             "{\"output\": {\"message\": {\"role\": \"assistant\", \"content\": [%s]}}, "
                             "\"stopReason\": \"%s\", \"usage\": {\"inputTokens\": 1, \"outputTokens\": 1}}",
                             block, stop) > 0);
        return s;
}

static char *tool_use_stop(const char *stop, const char *name, const char *input) {
        char *block = NULL, *s;

        assert_true(asprintf(&block, "{\"toolUse\": {\"toolUseId\": \"tooluse_1\", \"name\": \"%s\", \"input\": %s}}",
                             name, input) > 0);
        s = response(stop, block);
        free(block);
        return s;
}

static char *tool_use(const char *name, const char *input) {
        return tool_use_stop("tool_use", name, input);
}

#define TOOL NLU_BEDROCK_TOOL_NAME
#define ORDER                                                                                                          \
        "{\"intent\": \"place_order\", \"lang\": \"pt\", \"items\": [{\"sku\": \"pz-calabresa\", \"qty\": 2}, "        \
        "{\"sku\": \"bebida-coca-2l\", \"qty\": 1}], \"payment\": \"pix\", \"address\": \"Rua Augusta 1500\", "        \
        "\"order_id\": null}"

static void test_answers(void **state _unused_) {
        static const struct {
                const char *name, *stop, *tool, *input, *raw;
                int want;
                const char *json; /* the result as "deliveryctl parse" prints it */
        } rows[] = {
                { "valid order", "tool_use", TOOL, ORDER, NULL, NLU_BEDROCK_OK,
                  "{\"intent\": \"place_order\", \"lang\": \"pt\", \"items\": [{\"sku\": \"pz-calabresa\", \"qty\": "
                  "2}, {\"sku\": \"bebida-coca-2l\", \"qty\": 1}], \"payment\": \"pix\", \"address\": \"Rua Augusta "
                  "1500\", \"order_id\": null}" },
                { "status with order id", "tool_use", TOOL,
                  "{\"intent\": \"order_status\", \"lang\": \"en\", \"items\": [], \"payment\": null, \"address\": "
                  "null, \"order_id\": \"9XK4MB\"}",
                  NULL, NLU_BEDROCK_OK,
                  "{\"intent\": \"order_status\", \"lang\": \"en\", \"items\": [], \"payment\": null, \"address\": "
                  "null, \"order_id\": \"9XK4MB\"}" },
                { "address made one line, empty address is none", "tool_use", TOOL,
                  "{\"intent\": \"change_address\", \"lang\": \"pt\", \"items\": [], \"payment\": \"cash\", "
                  "\"address\": \"Av. Paulista, 1000\\n apto 42\", \"order_id\": null}",
                  NULL, NLU_BEDROCK_OK,
                  "{\"intent\": \"change_address\", \"lang\": \"pt\", \"items\": [], \"payment\": \"cash\", "
                  "\"address\": \"Av. Paulista, 1000 apto 42\", \"order_id\": null}" },
                { "blank address", "tool_use", TOOL,
                  "{\"intent\": \"menu\", \"lang\": \"pt\", \"items\": [], \"payment\": null, \"address\": \" \", "
                  "\"order_id\": null}",
                  NULL, NLU_BEDROCK_OK,
                  "{\"intent\": \"menu\", \"lang\": \"pt\", \"items\": [], \"payment\": null, \"address\": null, "
                  "\"order_id\": null}" },
                { "unknown SKU", "tool_use", TOOL,
                  "{\"intent\": \"place_order\", \"lang\": \"pt\", \"items\": [{\"sku\": \"pz-abacaxi\", \"qty\": "
                  "1}], \"payment\": null, \"address\": null, \"order_id\": null}",
                  NULL, NLU_BEDROCK_INVALID, NULL },
                { "qty 0", "tool_use", TOOL,
                  "{\"intent\": \"place_order\", \"lang\": \"pt\", \"items\": [{\"sku\": \"pz-calabresa\", \"qty\": "
                  "0}], \"payment\": null, \"address\": null, \"order_id\": null}",
                  NULL, NLU_BEDROCK_INVALID, NULL },
                { "qty 51", "tool_use", TOOL,
                  "{\"intent\": \"place_order\", \"lang\": \"pt\", \"items\": [{\"sku\": \"pz-calabresa\", \"qty\": "
                  "51}], \"payment\": null, \"address\": null, \"order_id\": null}",
                  NULL, NLU_BEDROCK_INVALID, NULL },
                { "qty 50 is the most", "tool_use", TOOL,
                  "{\"intent\": \"place_order\", \"lang\": \"en\", \"items\": [{\"sku\": \"sobremesa-brownie\", "
                  "\"qty\": 50}], \"payment\": \"card\", \"address\": null, \"order_id\": null}",
                  NULL, NLU_BEDROCK_OK,
                  "{\"intent\": \"place_order\", \"lang\": \"en\", \"items\": [{\"sku\": \"sobremesa-brownie\", "
                  "\"qty\": 50}], \"payment\": \"card\", \"address\": null, \"order_id\": null}" },
                { "qty as a real", "tool_use", TOOL,
                  "{\"intent\": \"place_order\", \"lang\": \"pt\", \"items\": [{\"sku\": \"pz-calabresa\", \"qty\": "
                  "2.0}], \"payment\": null, \"address\": null, \"order_id\": null}",
                  NULL, NLU_BEDROCK_INVALID, NULL },
                { "qty as a string", "tool_use", TOOL,
                  "{\"intent\": \"place_order\", \"lang\": \"pt\", \"items\": [{\"sku\": \"pz-calabresa\", \"qty\": "
                  "\"2\"}], \"payment\": null, \"address\": null, \"order_id\": null}",
                  NULL, NLU_BEDROCK_INVALID, NULL },
                { "item with a price", "tool_use", TOOL,
                  "{\"intent\": \"place_order\", \"lang\": \"pt\", \"items\": [{\"sku\": \"pz-calabresa\", \"qty\": "
                  "1, \"unit_price_cents\": 1}], \"payment\": null, \"address\": null, \"order_id\": null}",
                  NULL, NLU_BEDROCK_INVALID, NULL },
                { "bad intent", "tool_use", TOOL,
                  "{\"intent\": \"buy\", \"lang\": \"pt\", \"items\": [], \"payment\": null, \"address\": null, "
                  "\"order_id\": null}",
                  NULL, NLU_BEDROCK_INVALID, NULL },
                { "intent not a string", "tool_use", TOOL,
                  "{\"intent\": 1, \"lang\": \"pt\", \"items\": [], \"payment\": null, \"address\": null, "
                  "\"order_id\": null}",
                  NULL, NLU_BEDROCK_INVALID, NULL },
                { "bad lang", "tool_use", TOOL,
                  "{\"intent\": \"menu\", \"lang\": \"es\", \"items\": [], \"payment\": null, \"address\": null, "
                  "\"order_id\": null}",
                  NULL, NLU_BEDROCK_INVALID, NULL },
                { "bad payment", "tool_use", TOOL,
                  "{\"intent\": \"menu\", \"lang\": \"pt\", \"items\": [], \"payment\": \"bitcoin\", \"address\": "
                  "null, \"order_id\": null}",
                  NULL, NLU_BEDROCK_INVALID, NULL },
                { "order id with an I", "tool_use", TOOL,
                  "{\"intent\": \"order_status\", \"lang\": \"pt\", \"items\": [], \"payment\": null, \"address\": "
                  "null, \"order_id\": \"9XI4MB\"}",
                  NULL, NLU_BEDROCK_INVALID, NULL },
                { "order id too long", "tool_use", TOOL,
                  "{\"intent\": \"order_status\", \"lang\": \"pt\", \"items\": [], \"payment\": null, \"address\": "
                  "null, \"order_id\": \"9XK4MB7\"}",
                  NULL, NLU_BEDROCK_INVALID, NULL },
                { "missing order_id", "tool_use", TOOL,
                  "{\"intent\": \"menu\", \"lang\": \"pt\", \"items\": [], \"payment\": null, \"address\": null}", NULL,
                  NLU_BEDROCK_INVALID, NULL },
                { "missing items", "tool_use", TOOL,
                  "{\"intent\": \"menu\", \"lang\": \"pt\", \"payment\": null, \"address\": null, \"order_id\": "
                  "null}",
                  NULL, NLU_BEDROCK_INVALID, NULL },
                { "an extra field", "tool_use", TOOL,
                  "{\"intent\": \"menu\", \"lang\": \"pt\", \"items\": [], \"payment\": null, \"address\": null, "
                  "\"order_id\": null, \"total_cents\": 100}",
                  NULL, NLU_BEDROCK_INVALID, NULL },
                { "input not an object", "tool_use", TOOL, "[]", NULL, NLU_BEDROCK_INVALID, NULL },
                { "another tool", "tool_use", "top_song", "{\"sign\": \"WZPZ\"}", NULL, NLU_BEDROCK_NO_TOOL, NULL },
                { "text only", NULL, NULL, NULL,
                  "{\"output\": {\"message\": {\"role\": \"assistant\", \"content\": [{\"text\": \"Claro! Duas "
                  "calabresas.\"}]}}, \"stopReason\": \"end_turn\"}",
                  NLU_BEDROCK_NO_TOOL, NULL },
                { "tool input but max_tokens", "max_tokens", TOOL, ORDER, NULL, NLU_BEDROCK_NO_TOOL, NULL },
                { "invalid JSON", NULL, NULL, NULL, "{\"output\": {\"message\": ", NLU_BEDROCK_INVALID, NULL },
                { "not an object", NULL, NULL, NULL, "[1, 2]", NLU_BEDROCK_INVALID, NULL },
                { "empty", NULL, NULL, NULL, "", NLU_BEDROCK_INVALID, NULL },
                { "a duplicate key", NULL, NULL, NULL, "{\"stopReason\": \"tool_use\", \"stopReason\": \"end_turn\"}",
                  NLU_BEDROCK_INVALID, NULL },
        };

        for (size_t i = 0; i < ELEMENTSOF(rows); i++) {
                _cleanup_(nlu_result_freep) NluResult *res = NULL;
                _cleanup_free_ char *body = NULL, *json = NULL;

                body = rows[i].raw ? strdup(rows[i].raw) : tool_use_stop(rows[i].stop, rows[i].tool, rows[i].input);
                assert_non_null(body);
                int r = nlu_bedrock_parse_response(catalog, body, strlen(body), &res);
                if (r != rows[i].want)
                        print_error("row %zu (%s): %d, want %d\n", i, rows[i].name, r, rows[i].want);
                assert_int_equal(r, rows[i].want);
                if (!rows[i].json) {
                        assert_null(res);
                        continue;
                }
                json = nlu_result_to_json(res);
                assert_non_null(json);
                assert_string_equal(json, rows[i].json);
        }
}

static char *read_vector(const char *name) {
        char path[4096];
        FILE *f;
        char *buf = calloc(1, 65536);
        size_t n;

        snprintf(path, sizeof path, "%s/bedrock/%s", TEST_VECTORS, name);
        f = fopen(path, "re");
        if (!f) {
                free(buf);
                return NULL;
        }
        n = fread(buf, 1, 65535, f);
        buf[n] = 0;
        fclose(f);
        return buf;
}

/* The recorded Converse responses: a toolUse of the docs' tool, and text. */
static void test_vectors(void **state _unused_) {
        static const char *const files[] = { "constructed-converse-response-tool-use.json",
                                             "constructed-converse-response-end-turn.json" };

        for (size_t i = 0; i < ELEMENTSOF(files); i++) {
                _cleanup_free_ char *body = read_vector(files[i]), *ours = NULL;
                NluResult *res = NULL;

                if (!body)
                        skip();
                assert_int_equal(nlu_bedrock_parse_response(catalog, body, strlen(body), &res), NLU_BEDROCK_NO_TOOL);
                assert_null(res);
                /* The same envelope with our tool and a valid input is used. */
                if (i == 0) {
                        const char *name = strstr(body, "\"top_song\""), *in = strstr(body, "\"input\"");
                        const char *open, *close;

                        assert_non_null(name);
                        assert_non_null(in);
                        open = strchr(in, '{');
                        close = strchr(open, '}');
                        assert_true(name < in);
                        assert_true(asprintf(&ours, "%.*s\"%s\"%.*s%s%s", (int) (name - body), body, TOOL,
                                             (int) (open - name - strlen("\"top_song\"")),
                                             name + strlen("\"top_song\""),
                                             "{\"intent\": \"menu\", \"lang\": \"en\", \"items\": [], \"payment\": "
                                             "null, \"address\": null, \"order_id\": null}",
                                             close + 1) > 0);
                        assert_int_equal(nlu_bedrock_parse_response(catalog, ours, strlen(ours), &res), NLU_BEDROCK_OK);
                        assert_int_equal(res->intent, NLU_INTENT_MENU);
                        assert_int_equal(res->lang, NLU_LANG_EN);
                        nlu_result_free(res);
                }
        }
}

static void test_backoff(void **state _unused_) {
        uint64_t prev_max = 0;

        for (unsigned n = 1; n < 40; n++) {
                uint64_t lo = nlu_bedrock_backoff_usec(n, 0), hi = nlu_bedrock_backoff_usec(n, UINT64_MAX - 1);
                uint64_t w = 2 * lo;

                assert_true(lo <= hi);
                assert_true(hi <= NLU_BEDROCK_BACKOFF_MAX_USEC);
                assert_true(hi >= prev_max); /* never shorter after another failure */
                prev_max = hi;
                for (uint64_t r = 0; r < 1000; r += 37) {
                        uint64_t v = nlu_bedrock_backoff_usec(n, r * 7919);
                        assert_true(v >= lo && v <= w);
                }
        }
        assert_int_equal(nlu_bedrock_backoff_usec(1, 0), NLU_BEDROCK_BACKOFF_BASE_USEC / 2);
        assert_int_equal(nlu_bedrock_backoff_usec(3, 0), 2 * NLU_BEDROCK_BACKOFF_BASE_USEC);
        assert_int_equal(nlu_bedrock_backoff_usec(30, 0), NLU_BEDROCK_BACKOFF_MAX_USEC / 2);
        assert_int_equal(nlu_bedrock_backoff_usec(UINT32_MAX, 0), NLU_BEDROCK_BACKOFF_MAX_USEC / 2);
}

/* ---- the client, without credentials ---------------------------------- */

typedef struct Seen {
        unsigned n;
        NluBedrockOutcome outcome;
        char intent[32];
        char fallback[32];
        NluClient *client;
} Seen;

static void on_bedrock(void *userdata, NluBedrockOutcome o, NluResult *r) {
        Seen *s = userdata;

        s->n++;
        s->outcome = o;
        assert_null(r);
}

static Snapshot *bedrock_snapshot(const char *max_calls) {
        char opt[64];
        char *overrides[] = { (char *) "nlu.backend=bedrock", opt, NULL };
        Snapshot *s = NULL;
        Diags d = {};

        snprintf(opt, sizeof opt, "nlu.max_calls_per_hour=%s", max_calls);
        assert_int_equal(snapshot_load(DEMO_CONF, overrides, &s, &d), 0);
        return s;
}

static void test_client_budget(void **state _unused_) {
        _cleanup_(snapshot_unrefp) Snapshot *s = bedrock_snapshot("2");
        _cleanup_(curl_event_freep) CurlEvent *curl = NULL;
        NluBedrock *b = NULL;
        NluBedrockQuery *q = NULL;
        Metrics m = {};
        sd_event *e = NULL;
        Seen seen = {};

        assert_int_equal(sd_event_new(&e), 0);
        assert_int_equal(curl_event_new(e, &curl), 0);
        const NluBedrockOptions o = { .curl = curl, .metrics = &m };
        assert_int_equal(nlu_bedrock_new(e, &o, &b), 0);

        assert_int_equal(nlu_bedrock_budget_left(b, s, "+5511999990000"), 2);
        assert_int_equal(nlu_bedrock_query(b, s, "+5511999990000", "oi", 2, on_bedrock, &seen, NULL), 0);
        assert_int_equal(nlu_bedrock_query(b, s, "+5511999990000", "oi", 2, on_bedrock, &seen, &q), 0);
        assert_int_equal(nlu_bedrock_budget_left(b, s, "+5511999990000"), 0);
        /* the third call this hour is refused at once; another customer has their own */
        assert_int_equal(nlu_bedrock_query(b, s, "+5511999990000", "oi", 2, on_bedrock, &seen, NULL), -EDQUOT);
        assert_int_equal(m.value[METRIC_NLU_BEDROCK_BUDGET], 1);
        assert_int_equal(nlu_bedrock_budget_left(b, s, "+5511999990001"), 2);
        assert_int_equal(nlu_bedrock_query(b, s, "+5511999990000", "", 0, on_bedrock, &seen, NULL), -EINVAL);
        assert_int_equal(nlu_bedrock_query(b, s, "", "oi", 2, on_bedrock, &seen, NULL), -EINVAL);

        /* never answered from inside the call; a cancelled query is not answered */
        assert_int_equal(seen.n, 0);
        q = nlu_bedrock_query_free(q);
        for (unsigned i = 0; i < 10 && seen.n < 1; i++)
                assert_true(sd_event_run(e, USEC_PER_SEC) >= 0);
        assert_int_equal(seen.n, 1);
        assert_int_equal(seen.outcome, NLU_BEDROCK_CREDENTIALS);
        assert_int_equal(m.value[METRIC_NLU_BEDROCK_CREDENTIALS], 1);

        /* a query the caller holds survives the client, unanswered */
        assert_int_equal(nlu_bedrock_query(b, s, "+5511999990002", "oi", 2, on_bedrock, &seen, &q), 0);
        b = nlu_bedrock_free(b);
        q = nlu_bedrock_query_free(q);
        assert_int_equal(seen.n, 1);
        curl = curl_event_free(curl);
        sd_event_unref(e);
}

static void on_answer(void *userdata, NluResult *r) {
        Seen *s = userdata;
        const char *why = nlu_client_fallback_reason(s->client);

        assert_non_null(r);
        s->n++;
        snprintf(s->intent, sizeof s->intent, "%s", nlu_intent_to_string(r->intent));
        snprintf(s->fallback, sizeof s->fallback, "%s", why ? why : "");
        nlu_result_free(r);
}

/* nlu-client with bedrock and no credentials: the rules answer, saying why. */
static void test_client_fallback(void **state _unused_) {
        _cleanup_(snapshot_unrefp) Snapshot *s = bedrock_snapshot("1");
        _cleanup_(curl_event_freep) CurlEvent *curl = NULL;
        NluClient *c = NULL;
        Metrics m = {};
        sd_event *e = NULL;
        Seen seen = {};

        assert_int_equal(sd_event_new(&e), 0);
        assert_int_equal(curl_event_new(e, &curl), 0);
        const NluClientOptions o = { .curl = curl, .metrics = &m };
        assert_int_equal(nlu_client_new_with(e, &o, &c), 0);
        seen.client = c;

        assert_int_equal(nlu_client_parse(c, s, "+5511999990000", "cardapio", 8, on_answer, &seen, NULL), 0);
        while (nlu_client_n_pending(c) > 0)
                assert_true(sd_event_run(e, USEC_PER_SEC) >= 0);
        assert_int_equal(seen.n, 1);
        assert_string_equal(seen.intent, "menu");
        assert_string_equal(seen.fallback, "credentials");
        /* over the budget of one: not asked at all */
        assert_int_equal(nlu_client_parse(c, s, "+5511999990000", "STOP", 4, on_answer, &seen, NULL), 0);
        while (nlu_client_n_pending(c) > 0)
                assert_true(sd_event_run(e, USEC_PER_SEC) >= 0);
        assert_int_equal(seen.n, 2);
        assert_string_equal(seen.intent, "opt_out");
        assert_string_equal(seen.fallback, "budget");
        assert_null(nlu_client_fallback_reason(c));
        assert_int_equal(m.value[METRIC_NLU_RULES_FALLBACK], 2);
        assert_int_equal(m.value[METRIC_NLU_RULES_OK], 0);
        assert_int_equal(m.value[METRIC_NLU_BEDROCK_CREDENTIALS], 1);
        assert_int_equal(m.value[METRIC_NLU_BEDROCK_BUDGET], 1);

        /* the counters as /metrics shows them */
        _cleanup_free_ char *text = metrics_render_prometheus(&m, NULL, 0);
        assert_non_null(text);
        assert_non_null(strstr(text, "deliveryd_nlu_requests_total{backend=\"rules\",outcome=\"fallback\"} 2\n"));
        assert_non_null(strstr(text, "deliveryd_nlu_requests_total{backend=\"bedrock\",outcome=\"budget\"} 1\n"));
        json_t *j = metrics_to_json(&m);
        assert_int_equal(json_integer_value(json_object_get(
                                 json_object_get(json_object_get(j, "nlu_requests_total"), "bedrock"), "credentials")),
                         1);
        json_decref(j);

        /* pending queries die with the client, unanswered */
        assert_int_equal(nlu_client_parse(c, s, "+5511999990003", "oi", 2, on_answer, &seen, NULL), 0);
        c = nlu_client_free(c);
        assert_int_equal(seen.n, 2);
        curl = curl_event_free(curl);
        sd_event_unref(e);
}

/* ---- allocation failure ------------------------------------------------ */

static int build_body(void *userdata _unused_) {
        _cleanup_free_ char *body = NULL;
        return nlu_bedrock_request_body(catalog, "quero 2 calabresa", 17, 4096, 300, &body);
}

static int read_answer(void *userdata) {
        NluResult *res = NULL;
        int r = nlu_bedrock_parse_response(catalog, userdata, strlen(userdata), &res);

        nlu_result_free(res);
        return r;
}

static int build_path(void *userdata _unused_) {
        _cleanup_free_ char *p = NULL;
        return nlu_bedrock_path(MODEL, &p);
}

static void test_oom(void **state _unused_) {
        _cleanup_free_ char *ok = tool_use(TOOL, ORDER), *text = response("end_turn", "{\"text\": \"oi\"}");

        assert_true(oom_loop(build_body, NULL, 0) > 50);
        assert_true(oom_loop(build_path, NULL, 0) > 1);
        assert_true(oom_loop(read_answer, ok, NLU_BEDROCK_OK) > 10);
        assert_true(oom_loop(read_answer, text, NLU_BEDROCK_NO_TOOL) > 5);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_outcome_names),   cmocka_unit_test(test_path),
                cmocka_unit_test(test_request_body),    cmocka_unit_test(test_request_bounds),
                cmocka_unit_test(test_answers),         cmocka_unit_test(test_vectors),
                cmocka_unit_test(test_backoff),         cmocka_unit_test(test_client_budget),
                cmocka_unit_test(test_client_fallback), cmocka_unit_test(test_oom),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
