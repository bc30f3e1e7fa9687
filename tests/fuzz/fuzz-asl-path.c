/* SPDX-License-Identifier: MIT */
/*
 * fuzz-asl-path.c — libFuzzer harness for asl-data.h.  An input is one
 * line with an expression (a path, a reference path or an intrinsic
 * call), then a JSON document.  The expression is checked and evaluated
 * against the document (and the document against itself as a template and
 * as a Choice rule, or its "Rule" as one), and the promises of asl-data.h are held to: a check
 * that passes means evaluation fails only with a run-time error name, a
 * success gives a value, an indefinite path gives an array, a failure has
 * an error name, and everything returned is JSON that jansson can print.
 * The committed corpus is tests/fuzz/corpus/asl-path/.
 *
 * Not built by "make"; after ./configure, from the top of the tree:
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -include config.h -Isrc \
 *         tests/fuzz/fuzz-asl-path.c src/asl-path.c src/asl-choice.c src/asl-intrinsics.c src/base64.c \
 *         src/normalize.c src/alloc.c $(pkg-config --cflags --libs jansson libcrypto libpcre2-8) -o fuzz-asl-path
 *   ./fuzz-asl-path -runs=0 tests/fuzz/corpus/asl-path        # replay the corpus, as CI does
 *   mkdir -p new && ./fuzz-asl-path -max_len=4096 new tests/fuzz/corpus/asl-path
 *
 * Security: feeds untrusted bytes as both the definition's expressions and
 * the data; that is the point.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "asl-data.h"

static const char *context_json = "{\"Execution\":{\"Id\":\"arn:x\",\"Name\":\"A1\"},\"State\":{\"Name\":\"S\","
                                  "\"EnteredTime\":\"2026-12-04T16:20:00Z\"},\"Map\":{\"Item\":{\"Index\":0}}}";

static bool runtime_error(const AslFailure *f) {
        return f->error &&
                (streq(f->error, "States.Runtime") || streq(f->error, "States.IntrinsicFailure") ||
                 streq(f->error, "States.ResultPathMatchFailure"));
}

static void printable(json_t *v) {
        char *s = mem_json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
        if (!s)
                abort();
        free(s);
}

/* Evaluation done, r and f and v are as asl-data.h promises. */
static void outcome(int r, AslFailure *f, json_t *v, bool checked) {
        if (r == 0) {
                if (!v)
                        abort();
                printable(v);
                json_decref(v);
        } else if (r == -EINVAL) {
                if (!f->error || (checked && !runtime_error(f)))
                        abort();
        } else
                abort();
        asl_failure_clear(f);
}

static void try_expression(const char *expr, json_t *doc, json_t *ctx) {
        AslFailure f = {};
        json_t *v = NULL;
        char *err = NULL;
        int r;

        if (asl_intrinsic_is_call(expr)) {
                bool ok = asl_intrinsic_check(expr, &err) == 0;
                if (!ok && !err)
                        abort();
                free(err);
                r = asl_intrinsic_eval(expr, doc, ctx, &v, &f);
                if (!ok && r == 0)
                        abort(); /* refused at load time, yet it ran */
                outcome(r, &f, v, ok);
                return;
        }

        bool ok = asl_path_check(expr, false, true, &err) == 0;
        if (!ok && !err)
                abort();
        free(err);
        err = NULL;
        r = asl_path_select(expr, doc, ctx, &v, &f);
        if (!ok && r == 0)
                abort();
        outcome(r, &f, v, ok);

        bool ref = asl_path_check(expr, true, false, &err) == 0;
        free(err);
        v = NULL;
        r = asl_path_apply_result(expr, doc, ctx, &v, &f);
        if (!ref && r == 0)
                abort();
        outcome(r, &f, v, ref);
}

static void try_document(json_t *doc, json_t *ctx) {
        AslFailure f = {};
        json_t *v = NULL;
        char *err = NULL;
        bool m;
        int r;

        bool ok = asl_template_check(doc, &err) == 0;
        free(err);
        err = NULL;
        r = asl_template_eval(doc, doc, ctx, &v, &f);
        outcome(r, &f, v, ok);

        /* The rule is the document, or its "Rule" with the rest as the input. */
        json_t *rule = json_object_get(doc, "Rule") ?: doc;
        if (!json_is_object(rule))
                return;
        ok = asl_choice_check(rule, false, &err) == 0;
        if (!ok && !err)
                abort();
        free(err);
        if (!ok)
                return;
        r = asl_choice_eval(rule, doc, ctx, &m, &f);
        outcome(r, &f, r == 0 ? json_true() : NULL, true);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static json_t *ctx;
        const uint8_t *nl = memchr(data, '\n', size);
        size_t n = nl ? (size_t) (nl - data) : size;
        char *expr;
        json_t *doc;

        if (!ctx) {
                alloc_init();
                ctx = json_loads(context_json, 0, NULL);
                if (!ctx)
                        abort();
        }
        if (memchr(data, '\0', n))
                return 0; /* expressions come from JSON strings: no NUL */
        expr = malloc(n + 1);
        if (!expr)
                return 0;
        memcpy(expr, data, n);
        expr[n] = '\0';
        doc = nl ? json_loadb((const char *) nl + 1, size - n - 1, JSON_DECODE_ANY, NULL) : NULL;
        if (!doc)
                doc = json_object();

        try_expression(expr, doc, ctx);
        try_document(doc, ctx);

        json_decref(doc);
        free(expr);
        return 0;
}
