/* SPDX-License-Identifier: MIT */
/*
 * deliveryctl.c — the operator's command line: talks to the running daemon
 * over the control socket (see control.h).  Each verb is one row in
 * verbs[]; the daemon's side is one row in manager.c's control_commands[].
 * A verb with run_local instead works on the files alone, without the
 * daemon: it loads and checks the whole snapshot itself ("parse").
 *
 * Exit status: 0 success, 1 the command failed, 2 usage error, 3 the
 * daemon is not running (as "systemctl status" does).
 *
 * Security: runs as the admin; the daemon's answers are only printed.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <curl/curl.h>
#include <systemd/sd-event.h>

#include "alloc.h"
#include "asl-run.h"
#include "asl.h"
#include "aws-credentials.h"
#include "base64.h"
#include "conf.h"
#include "control.h"
#include "log.h"
#include "nlu.h"
#include "nlu-client.h"
#include "snapshot.h"
#include "strutil.h"

#define EXIT_USAGE 2
#define EXIT_NOT_RUNNING 3

static bool arg_json;
static uint64_t arg_timeout_usec = 30 * USEC_PER_SEC;

typedef struct Verb {
        const char *name;
        unsigned min_args, max_args; /* after the verb */
        int (*run)(const Config *c, char **args); /* returns an exit status */
        const char *usage;
        int (*run_local)(Snapshot *s, char **args); /* instead of run: no daemon needed */
        int (*run_alone)(char **args); /* instead of run: no daemon, no configuration, own options */
} Verb;

/* Call the daemon; returns an exit status, printing why when it is not 0. */
static int call(const Config *c, const char *command, json_t *args, json_t **ret) {
        _cleanup_free_ char *error = NULL;
        int r;

        r = control_call(c->control_socket, command, args, arg_timeout_usec, ret, &error);
        switch (r) {
        case 0:
                return EXIT_SUCCESS;
        case -ENOENT:
        case -ECONNREFUSED:
                fprintf(stderr,
                        "deliveryctl: deliveryd is not running (nothing listens on %s).\n"
                        "Start it with 'systemctl start deliveryd', or check control.socket in %s.\n",
                        c->control_socket, c->path);
                return EXIT_NOT_RUNNING;
        case -EACCES:
                fprintf(stderr,
                        "deliveryctl: permission denied on %s: run as root or as a member of the deliveryd group.\n",
                        c->control_socket);
                return EXIT_FAILURE;
        case -EREMOTEIO:
                fprintf(stderr, "deliveryctl: %s: %s\n", command, error);
                return EXIT_FAILURE;
        case -ETIMEDOUT:
                fprintf(stderr, "deliveryctl: deliveryd did not answer '%s' in time.\n", command);
                return EXIT_FAILURE;
        default:
                fprintf(stderr, "deliveryctl: %s: %s\n", command, strerror(-r));
                return EXIT_FAILURE;
        }
}

static void print_json(json_t *j) {
        _cleanup_free_ char *s = mem_json_dumps(j, JSON_INDENT(2) | JSON_ENCODE_ANY);
        if (s)
                printf("%s\n", s);
}

static const char *str(json_t *o, const char *path) {
        /* "a.b" → o["a"]["b"] as a string, "" when absent. */
        char key[64];
        const char *dot;

        while ((dot = strchr(path, '.'))) {
                snprintf(key, sizeof key, "%.*s", (int) (dot - path), path);
                o = json_object_get(o, key);
                path = dot + 1;
        }
        o = json_object_get(o, path);
        return json_is_string(o) ? json_string_value(o) : "";
}

static long long num(json_t *o, const char *a, const char *b) {
        json_t *v = json_object_get(o, a);
        if (b)
                v = json_object_get(v, b);
        return json_is_integer(v) ? (long long) json_integer_value(v) : 0;
}

static void print_listener(const char *label, json_t *l) {
        if (!json_is_true(json_object_get(l, "enabled")))
                printf("%-9s off\n", label);
        else
                printf("%-9s %s%s\n", label, str(l, "listen"),
                       json_is_true(json_object_get(l, "socket_activated")) ? " (socket activation)" : "");
}

/* Send command, then print the answer as JSON (--json) or through show(). */
static int run_command(const Config *c, const char *command, json_t *args, void (*show)(json_t *result)) {
        json_t *result = NULL;
        int r = call(c, command, args, &result);

        if (r != 0)
                return r;
        if (arg_json)
                print_json(result);
        else
                show(result);
        json_decref(result);
        return EXIT_SUCCESS;
}

static void show_status(json_t *s) {
        long long up = num(s, "uptime_seconds", NULL);
        printf("deliveryd %s: %s (pid %lld), up %lldh %02lldm %02llds\n", str(s, "version"), str(s, "state"),
               num(s, "pid", NULL), up / 3600, up / 60 % 60, up % 60);
        printf("%-9s %s (generation %lld, loaded %s)\n", "config:", str(s, "config.path"),
               num(s, "config", "generation"), str(s, "config.loaded_at"));
        print_listener("http:", json_object_get(s, "http"));
        print_listener("lmtp:", json_object_get(s, "lmtp"));
        printf("%-9s %s\n", "control:", str(s, "control.socket"));
        printf("%-9s %s (schema %lld, %lld KiB)\n", "store:", str(s, "store.path"), num(s, "store", "schema_version"),
               num(s, "store", "bytes") / 1024);
        printf("%-9s %s: %lld products, %lld zones\n", "catalog:", str(s, "catalog.store_name"),
               num(s, "catalog", "products"), num(s, "catalog", "zones"));
        printf("%-9s nlu %s, engine %s, sms %s, mail %s\n", "backends:", str(s, "backends.nlu"),
               str(s, "backends.engine"), str(s, "backends.sms"), str(s, "backends.mail"));
        printf("%-9s %lld queued, %lld sending, %lld deferred, %lld failed, %lld sent\n",
               "outbox:", num(s, "outbox", "queued"), num(s, "outbox", "sending"), num(s, "outbox", "deferred"),
               num(s, "outbox", "failed"), num(s, "outbox", "sent"));
}

static int verb_status(const Config *c, char **args _unused_) {
        return run_command(c, "stats", NULL, show_status);
}

/* Flat "a.b.c value" lines for the shell. */
static void print_flat(const char *prefix, json_t *j) {
        const char *key;
        json_t *v;

        if (!json_is_object(j)) {
                _cleanup_free_ char *s = mem_json_dumps(j, JSON_ENCODE_ANY | JSON_COMPACT);
                if (json_is_string(j))
                        printf("%s %s\n", prefix, json_string_value(j));
                else
                        printf("%s %s\n", prefix, s ? s : "");
                return;
        }
        json_object_foreach (j, key, v) {
                _cleanup_free_ char *p = *prefix ? mem_printf("%s.%s", prefix, key) : mem_strdup(key);
                if (p)
                        print_flat(p, v);
        }
}

static void show_stats(json_t *s) {
        print_flat("", s);
}

static int verb_stats(const Config *c, char **args _unused_) {
        return run_command(c, "stats", NULL, show_stats);
}

static int verb_reload(const Config *c, char **args _unused_) {
        json_t *s = NULL, *p;
        size_t i;
        int r = call(c, "reload", NULL, &s);

        if (r != 0)
                return r;
        if (arg_json)
                print_json(s);
        else {
                bool ok = streq(str(s, "result"), "reloaded");
                json_t *problems = json_object_get(s, "problems");
                json_array_foreach (problems, i, p)
                        fprintf(stderr, "%s\n", json_string_value(p));
                if (ok)
                        printf("reloaded: generation %lld\n", num(s, "generation", NULL));
                else
                        fprintf(stderr, "reload refused: still running generation %lld\n", num(s, "generation", NULL));
        }
        r = streq(str(s, "result"), "reloaded") ? EXIT_SUCCESS : EXIT_FAILURE;
        json_decref(s);
        return r;
}

/* Read a whole file ("-": standard input), at most max bytes. */
static int read_all(const char *path, size_t max, char **ret, size_t *ret_len) {
        _cleanup_fclose_ FILE *owned = NULL;
        FILE *f = stdin;
        char *buf = NULL;
        size_t len = 0, size = 0;

        if (!streq(path, "-")) {
                f = owned = fopen(path, "rbe");
                if (!f)
                        return -errno;
        }
        for (;;) {
                if (len == size) {
                        if (size > max)
                                break;
                        size = size ? size * 2 : 65536;
                        char *n = mem_realloc(buf, size + 1);
                        if (!n) {
                                free(buf);
                                return -ENOMEM;
                        }
                        buf = n;
                }
                size_t k = fread(buf + len, 1, size - len, f);
                len += k;
                if (k == 0)
                        break;
        }
        if (ferror(f) || len > max) {
                free(buf);
                return ferror(f) ? -EIO : -EFBIG;
        }
        *ret = buf;
        *ret_len = len;
        return 0;
}

static void show_injected(json_t *s) {
        printf("%s: inbox message %lld\n", str(s, "outcome"), num(s, "id", NULL));
}

static int verb_inject(const Config *c, char **args) {
        json_t *req;
        int r;

        if (streq(args[0], "mail")) {
                _cleanup_free_ char *raw = NULL, *b64 = NULL;
                size_t len = 0;

                if (!args[1] || args[2]) {
                        fprintf(stderr, "deliveryctl: usage: deliveryctl inject mail FILE|-\n");
                        return EXIT_USAGE;
                }
                r = read_all(args[1], c->mail_max_size, &raw, &len);
                if (r < 0) {
                        fprintf(stderr, "deliveryctl: inject: %s: %s\n", args[1],
                                r == -EFBIG ? "larger than mail.max_size" : strerror(-r));
                        return EXIT_FAILURE;
                }
                /* The mail need not be UTF-8; the control protocol is JSON. */
                b64 = base64_encode(raw, len);
                req = b64 ? json_pack("{s:s,s:s}", "channel", "email", "raw_base64", b64) : NULL;
                if (!req)
                        return EXIT_FAILURE;
                r = run_command(c, "inject", req, show_injected);
                json_decref(req);
                return r;
        }
        if (!streq(args[0], "sms")) {
                fprintf(stderr, "deliveryctl: inject: unknown channel '%s' (sms or mail)\n", args[0]);
                return EXIT_USAGE;
        }
        if (!args[1] || !args[2] || args[3]) {
                fprintf(stderr, "deliveryctl: usage: deliveryctl inject sms FROM TEXT\n");
                return EXIT_USAGE;
        }
        req = json_pack("{s:s,s:s,s:s}", "channel", args[0], "from", args[1], "text", args[2]);
        if (!req) {
                fprintf(stderr, "deliveryctl: inject: the text is not valid UTF-8\n");
                return EXIT_FAILURE;
        }
        r = run_command(c, "inject", req, show_injected);
        json_decref(req);
        return r;
}

/* A message's text on one line of a listing: line breaks shown as " / ". */
static void print_oneline(const char *text) {
        for (const char *p = text; *p; p++) {
                if (*p == '\r')
                        continue;
                if (*p == '\n')
                        fputs(" / ", stdout);
                else
                        putchar(*p);
        }
        putchar('\n');
}

static void show_inbox(json_t *s) {
        json_t *row;
        size_t i;

        json_array_foreach (s, i, row) {
                printf("%6lld %-8s %-5s %-6s %-24s ", num(row, "id", NULL), str(row, "status"), str(row, "channel"),
                       str(row, "source"), str(row, "customer"));
                print_oneline(str(row, "body"));
        }
}

static int verb_inbox(const Config *c, char **args _unused_) {
        return run_command(c, "inbox", NULL, show_inbox);
}

static void show_outbox(json_t *s) {
        json_t *row;
        size_t i;

        json_array_foreach (s, i, row) {
                printf("%6lld %-8s %-5s %2lld %-24s ", num(row, "id", NULL), str(row, "status"), str(row, "channel"),
                       num(row, "attempts", NULL), str(row, "to"));
                print_oneline(str(row, "body"));
        }
}

static void show_outbox_changed(json_t *s) {
        printf("outbound message %lld: %s\n", num(s, "id", NULL), str(s, "status"));
}

/* outbox | outbox retry ID | outbox drop ID */
static int verb_outbox(const Config *c, char **args) {
        uint64_t id;
        json_t *req;
        int r;

        if (!args[0])
                return run_command(c, "outbox", NULL, show_outbox);
        if ((!streq(args[0], "retry") && !streq(args[0], "drop")) || !args[1]) {
                fprintf(stderr, "deliveryctl: usage: deliveryctl outbox [retry ID | drop ID]\n");
                return EXIT_USAGE;
        }
        if (parse_uint64(args[1], &id) < 0 || id == 0 || id > INT64_MAX) {
                fprintf(stderr, "deliveryctl: outbox %s: '%s' is not a message id\n", args[0], args[1]);
                return EXIT_USAGE;
        }
        req = json_pack("{s:I}", "id", (json_int_t) id);
        if (!req)
                return EXIT_FAILURE;
        r = run_command(c, streq(args[0], "retry") ? "outbox-retry" : "outbox-drop", req, show_outbox_changed);
        json_decref(req);
        return r;
}

static void money(long long cents) {
        printf("R$%lld.%02lld", cents / 100, cents % 100);
}

static void show_orders(json_t *s) {
        json_t *row;
        size_t i;

        json_array_foreach (s, i, row) {
                printf("#%s %-11s %s ", str(row, "id"), str(row, "status"), str(row, "created_at"));
                money(num(row, "total_cents", NULL));
                printf(" %-5s %s\n", str(row, "payment"), str(row, "customer"));
        }
}

static int verb_orders(const Config *c, char **args _unused_) {
        return run_command(c, "orders", NULL, show_orders);
}

static void show_order(json_t *o) {
        json_t *v;
        size_t i;

        printf("order #%s: %s\n", str(o, "id"), str(o, "status"));
        printf("%-10s %s (%s, %s)\n", "customer:", str(o, "customer"), str(o, "channel"), str(o, "lang"));
        printf("%-10s %s (zone %s)\n", "address:", str(o, "address"), *str(o, "zone") ? str(o, "zone") : "none");
        json_array_foreach (json_object_get(o, "items"), i, v) {
                printf("%-10s %lld x %s at ", i == 0 ? "items:" : "", num(v, "qty", NULL), str(v, "sku"));
                money(num(v, "unit_price_cents", NULL));
                printf("\n");
        }
        printf("%-10s ", "fee:");
        money(num(o, "delivery_fee_cents", NULL));
        printf("\n%-10s ", "total:");
        money(num(o, "total_cents", NULL));
        printf(" by %s%s%s\n", str(o, "payment"), *str(o, "payment_status") ? ", " : "", str(o, "payment_status"));
        printf("%-10s %s\n", "eta:", *str(o, "eta") ? str(o, "eta") : "not known");
        if (*str(o, "tracking_url"))
                printf("%-10s %s\n", "tracking:", str(o, "tracking_url"));
        json_array_foreach (json_object_get(o, "history"), i, v)
                printf("%-10s %s %s%s%s\n", i == 0 ? "history:" : "", str(v, "at"), str(v, "status"),
                       *str(v, "reason") ? ": " : "", str(v, "reason"));
}

/* order ID | order ID set-status STATUS | order ID paid */
/* An execution's history, one event a line, as GetExecutionHistory names them. */
static void show_execution(json_t *e) {
        json_t *ev;
        size_t i;

        printf("execution %s: %s, in state %s, next deadline %s\n", str(e, "name"), str(e, "status"),
               json_is_string(json_object_get(e, "state")) ? str(e, "state") : "-",
               json_is_string(json_object_get(e, "next_deadline")) ? str(e, "next_deadline") : "-");
        json_array_foreach (json_object_get(e, "history"), i, ev) {
                const char *name = NULL, *key;
                json_t *v;
                json_object_foreach (ev, key, v)
                        if (json_is_object(v) && json_is_string(json_object_get(v, "name")))
                                name = json_string_value(json_object_get(v, "name"));
                printf("%4lld %s %-28s %s\n", num(ev, "id", NULL), str(ev, "timestamp"), str(ev, "type"),
                       strempty(name));
        }
}

static int verb_order(const Config *c, char **args) {
        const char *command = "order";
        json_t *req;
        int r;

        if (args[1] && streq(args[1], "set-status") && args[2]) {
                command = "order-set-status";
                req = json_pack("{s:s,s:s}", "id", args[0], "status", args[2]);
        } else if (args[1] && streq(args[1], "paid") && !args[2]) {
                command = "order-paid";
                req = json_pack("{s:s}", "id", args[0]);
        } else if (args[1] && streq(args[1], "execution") && !args[2]) {
                req = json_pack("{s:s}", "id", args[0]);
                r = req ? run_command(c, "order-execution", req, show_execution) : EXIT_FAILURE;
                json_decref(req);
                return r;
        } else if (!args[1])
                req = json_pack("{s:s}", "id", args[0]);
        else {
                fprintf(stderr,
                        "deliveryctl: usage: deliveryctl order ID [--json] | order ID set-status STATUS | "
                        "order ID paid | order ID execution [--json]\n");
                return EXIT_USAGE;
        }
        if (!req)
                return EXIT_FAILURE;
        r = run_command(c, command, req, show_order);
        json_decref(req);
        return r;
}

static void show_conversation(json_t *s) {
        json_t *items = json_object_get(s, "items"), *it;
        size_t i;

        printf("customer: %s\nphase:    %s\nlanguage: %s\n", str(s, "customer"), str(s, "phase"), str(s, "lang"));
        json_array_foreach (items, i, it)
                printf("item:     %lldx %s\n", num(it, "qty", NULL), str(it, "sku"));
        if (json_is_string(json_object_get(s, "address")))
                printf("address:  %s\n", str(s, "address"));
        if (json_is_string(json_object_get(s, "payment")))
                printf("payment:  %s\n", str(s, "payment"));
}

static void show_resumed(json_t *s) {
        printf("conversation with %s: the assistant answers again\n", str(s, "customer"));
}

/* conversation CUSTOMER | conversation CUSTOMER resume */
static int verb_conversation(const Config *c, char **args) {
        json_t *req;
        int r;

        if (args[1] && !streq(args[1], "resume")) {
                fprintf(stderr, "deliveryctl: usage: deliveryctl conversation CUSTOMER [resume]\n");
                return EXIT_USAGE;
        }
        req = json_pack("{s:s}", "customer", args[0]);
        if (!req) {
                fprintf(stderr, "deliveryctl: conversation: '%s' is not valid UTF-8\n", args[0]);
                return EXIT_USAGE;
        }
        r = run_command(c, args[1] ? "conversation-resume" : "conversation", req,
                        args[1] ? show_resumed : show_conversation);
        json_decref(req);
        return r;
}

typedef struct ParseAnswer {
        bool done;
        NluResult *result;
        char *fallback; /* why the rules answered, or NULL */
        NluClient *client;
} ParseAnswer;

static void on_parsed(void *userdata, NluResult *result) {
        ParseAnswer *a = userdata;
        const char *why = nlu_client_fallback_reason(a->client);

        a->done = true;
        a->result = result;
        a->fallback = why ? mem_strdup(why) : NULL;
}

/* nlu.backend = bedrock: the daemon's own client on a local loop, with
 * the same credentials chain, so that the admin sees what Bedrock makes
 * of TEXT (or why the rules answered instead). */
static int parse_with_client(Snapshot *s, const char *text, NluResult **ret, char **ret_fallback) {
        _cleanup_(aws_credentials_provider_freep) AwsCredentialsProvider *creds = NULL;
        _cleanup_(nlu_client_freep) NluClient *client = NULL;
        _cleanup_(curl_event_freep) CurlEvent *curl = NULL;
        ParseAnswer a = {};
        sd_event *e = NULL;
        int r;

        if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
                return -EIO;
        r = sd_event_new(&e);
        if (r < 0)
                goto finish;
        if ((r = curl_event_new(e, &curl)) < 0 || (r = aws_credentials_provider_new(e, curl, NULL, &creds)) < 0)
                goto finish;
        const NluClientOptions o = { .curl = curl, .credentials = creds };
        r = nlu_client_new_with(e, &o, &client);
        if (r < 0)
                goto finish;
        a.client = client;
        r = nlu_client_parse(client, s, "deliveryctl", text, strlen(text), on_parsed, &a, NULL);
        while (r >= 0 && !a.done)
                r = sd_event_run(e, UINT64_MAX);
        if (r >= 0 && !a.result)
                r = -ENOMEM;
        if (r >= 0) {
                *ret = TAKE_PTR(a.result);
                *ret_fallback = TAKE_PTR(a.fallback);
                r = 0;
        }
finish:
        nlu_result_free(a.result);
        free(a.fallback);
        client = nlu_client_free(client);
        creds = aws_credentials_provider_free(creds);
        curl = curl_event_free(curl);
        sd_event_unref(e);
        curl_global_cleanup();
        return r;
}

/* What the backend (or its fallback, the rules) makes of TEXT, as one JSON
 * object (DESIGN.md's contract). */
static int verb_parse(Snapshot *s, char **args) {
        _cleanup_(nlu_result_freep) NluResult *res = NULL;
        _cleanup_free_ char *json = NULL, *fallback = NULL;
        int r;

        if (s->config->nlu_backend == NLU_BEDROCK)
                r = parse_with_client(s, args[0], &res, &fallback);
        else
                r = nlu_parse(s, args[0], strlen(args[0]), &res);
        if (r < 0) {
                fprintf(stderr, "deliveryctl: parse: %s\n", strerror(-r));
                return EXIT_FAILURE;
        }
        json = nlu_result_to_json(res);
        if (!json) {
                fprintf(stderr, "deliveryctl: parse: %s\n", strerror(ENOMEM));
                return EXIT_FAILURE;
        }
        if (fallback)
                fprintf(stderr, "deliveryctl: parse: bedrock not used (%s); the rules answered.\n", fallback);
        printf("%s\n", json);
        return EXIT_SUCCESS;
}

#define ASL_FILE_MAX (16U << 20)

/* A JSON file (or "-": stdin) for asl run; an exit status, printing why when it is not 0. */
static int asl_read_json(const char *what, const char *path, json_t **ret) {
        _cleanup_free_ char *text = NULL;
        json_error_t jerr;
        size_t len;
        int r;

        r = read_all(path, ASL_FILE_MAX, &text, &len);
        if (r < 0) {
                fprintf(stderr, "deliveryctl: asl run: cannot read the %s '%s': %s\n", what, path,
                        r == -EFBIG ? "larger than 16 MiB" : strerror(-r));
                return EXIT_USAGE;
        }
        *ret = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
        if (!*ret) {
                fprintf(stderr, "deliveryctl: asl run: %s '%s' is not JSON: line %d: %s\n", what, path, jerr.line,
                        jerr.text);
                return EXIT_USAGE;
        }
        return EXIT_SUCCESS;
}

/* asl run DEFINITION [--input FILE] [--tasks FILE] [--max-transitions N] [--repeat N]:
 * the definition run offline with scripted tasks in virtual time; with
 * --repeat, N executions one after another (each from the start of the
 * tasks' lists), the last one's outcome printed and the time they took on
 * stderr, so that the interpreter can be timed without a process each. */
static int verb_asl(char **args) {
        _cleanup_(json_decrefp) json_t *def_json = NULL, *input = NULL, *tasks = NULL, *res = NULL;
        _cleanup_(asl_definition_unrefp) AslDefinition *def = NULL;
        _cleanup_free_ char *error = NULL, *out = NULL, *name = NULL;
        const char *def_path = NULL, *input_path = NULL, *tasks_path = NULL, *base;
        AslOptions opts = {};
        uint64_t max = 0, repeat = 1;
        struct timespec t0, t1;
        int r;

        if (!args[0] || !streq(args[0], "run")) {
                fprintf(stderr,
                        "deliveryctl: usage: deliveryctl asl run DEFINITION [--input FILE] [--tasks FILE] "
                        "[--max-transitions N] [--repeat N]\n");
                return EXIT_USAGE;
        }
        for (size_t i = 1; args[i]; i++) {
                const char **target = NULL;
                if (streq(args[i], "--input"))
                        target = &input_path;
                else if (streq(args[i], "--tasks"))
                        target = &tasks_path;
                else if (streq(args[i], "--max-transitions")) {
                        if (!args[i + 1] || parse_uint64(args[i + 1], &max) < 0 || max == 0 || max > 10000000) {
                                fprintf(stderr,
                                        "deliveryctl: asl run: --max-transitions needs a number from 1 to "
                                        "10000000\n");
                                return EXIT_USAGE;
                        }
                        i++;
                        continue;
                } else if (streq(args[i], "--repeat")) {
                        if (!args[i + 1] || parse_uint64(args[i + 1], &repeat) < 0 || repeat == 0 ||
                            repeat > 10000000) {
                                fprintf(stderr, "deliveryctl: asl run: --repeat needs a number from 1 to 10000000\n");
                                return EXIT_USAGE;
                        }
                        i++;
                        continue;
                } else if (args[i][0] == '-' && !streq(args[i], "-")) {
                        fprintf(stderr, "deliveryctl: asl run: unknown option '%s'\n", args[i]);
                        return EXIT_USAGE;
                } else if (!def_path) {
                        def_path = args[i];
                        continue;
                } else {
                        fprintf(stderr, "deliveryctl: asl run: one DEFINITION only ('%s' is extra)\n", args[i]);
                        return EXIT_USAGE;
                }
                if (!args[i + 1]) {
                        fprintf(stderr, "deliveryctl: asl run: %s needs a FILE\n", args[i]);
                        return EXIT_USAGE;
                }
                *target = args[++i];
        }
        if (!def_path) {
                fprintf(stderr,
                        "deliveryctl: usage: deliveryctl asl run DEFINITION [--input FILE] [--tasks FILE] "
                        "[--max-transitions N] [--repeat N]\n");
                return EXIT_USAGE;
        }

        r = asl_read_json("definition", def_path, &def_json);
        if (r == EXIT_SUCCESS && input_path)
                r = asl_read_json("input", input_path, &input);
        if (r == EXIT_SUCCESS && tasks_path)
                r = asl_read_json("tasks file", tasks_path, &tasks);
        if (r != EXIT_SUCCESS)
                return r;
        r = asl_definition_load_json(def_json, &def, &error);
        if (r < 0) {
                fprintf(stderr, "deliveryctl: asl run: %s: %s\n", def_path, r == -EINVAL ? error : strerror(-r));
                return EXIT_USAGE;
        }

        /* The state machine's name: the file's, without its directory and ".asl.json"/".json". */
        base = strrchr(def_path, '/') ? strrchr(def_path, '/') + 1 : def_path;
        name = mem_strdup(streq(def_path, "-") ? "stdin" : base);
        if (!name)
                return EXIT_FAILURE;
        for (size_t i = 0; i < 2; i++) {
                const char *suffix = i == 0 ? ".asl.json" : ".json";
                size_t n = strlen(name), k = strlen(suffix);
                if (n > k && streq(name + n - k, suffix)) {
                        name[n - k] = 0;
                        break;
                }
        }
        opts.state_machine_name = name;
        opts.max_transitions = (unsigned) max;
        opts.seed = 0x5eed;
        (void) clock_gettime(CLOCK_MONOTONIC, &t0);
        for (uint64_t k = 0; k < repeat; k++) {
                json_decref(res);
                res = NULL;
                error = mfree(error);
                r = asl_run_scripted(def, input, tasks, &opts, &res, &error);
                if (r < 0) {
                        fprintf(stderr, "deliveryctl: asl run: %s\n", r == -EINVAL ? error : strerror(-r));
                        return EXIT_USAGE;
                }
        }
        (void) clock_gettime(CLOCK_MONOTONIC, &t1);
        if (repeat > 1) {
                double sec = (double) (t1.tv_sec - t0.tv_sec) + (double) (t1.tv_nsec - t0.tv_nsec) / 1e9;
                fprintf(stderr, "deliveryctl: asl run: %" PRIu64 " executions in %.6f s\n", repeat, sec);
        }
        out = mem_json_dumps(res, JSON_COMPACT | JSON_ENCODE_ANY);
        if (!out) {
                fprintf(stderr, "deliveryctl: asl run: %s\n", strerror(ENOMEM));
                return EXIT_FAILURE;
        }
        printf("%s\n", out);
        return streq(json_string_value(json_object_get(res, "status")), "SUCCEEDED") ? EXIT_SUCCESS : EXIT_FAILURE;
}

static const Verb verbs[] = {
        { "status", 0, 0, verb_status, "status [--json]       show what the daemon is doing", NULL, NULL },
        { "stats", 0, 0, verb_stats, "stats [--json]        counters and state", NULL, NULL },
        { "reload", 0, 0, verb_reload, "reload [--json]       re-read the configuration (like SIGHUP) and wait", NULL,
          NULL },
        { "inject", 2, 3, verb_inject,
          "inject sms FROM TEXT | inject mail FILE|-   hand the daemon an SMS or e-mail as if verified", NULL, NULL },
        { "inbox", 0, 0, verb_inbox, "inbox [--json]        inbound messages, oldest first", NULL, NULL },
        { "outbox", 0, 2, verb_outbox,
          "outbox [--json] | outbox retry ID | outbox drop ID   outbound messages, oldest first; send one "
          "again or give it up",
          NULL, NULL },
        { "orders", 0, 0, verb_orders, "orders [--json]       orders, oldest first", NULL, NULL },
        { "order", 1, 3, verb_order,
          "order ID [--json] | order ID set-status STATUS | order ID paid | order ID execution [--json]   one "
          "order with its items and history; report the store's or courier's step (PREPARING, READY, IN_DELIVERY, "
          "DELIVERED); confirm its Pix payment; its workflow's history",
          NULL, NULL },
        { "conversation", 1, 2, verb_conversation,
          "conversation CUSTOMER [--json] | conversation CUSTOMER resume   a customer's conversation; end a "
          "handoff to a person",
          NULL, NULL },
        { "parse", 1, 1, NULL,
          "parse TEXT            what nlu.backend (or the rules) understands in a customer's TEXT, as JSON", verb_parse,
          NULL },
        { "asl", 1, 1, NULL,
          "asl run DEFINITION [--input FILE] [--tasks FILE] [--max-transitions N] [--repeat N]   run a state "
          "machine offline with scripted tasks",
          NULL, verb_asl },
};

/* Where the command is in argv (after the global options), or argc. */
static int find_command(int argc, char *argv[]) {
        for (int i = 1; i < argc; i++) {
                const char *a = argv[i];
                if (streq(a, "--"))
                        return i + 1;
                if (a[0] != '-' || streq(a, "-"))
                        return i;
                if (streq(a, "-c") || streq(a, "-o") || streq(a, "-t") || streq(a, "--config") ||
                    streq(a, "--option") || streq(a, "--timeout"))
                        i++;
        }
        return argc;
}

static void help(void) {
        printf("Usage: deliveryctl [OPTIONS] COMMAND [ARGS]\n\nCommands:\n");
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                printf("  %s\n", verbs[i].usage);
        printf("\nOptions:\n"
               "  -c, --config=FILE        configuration file (default %s)\n"
               "  -o, --option=SECTION.KEY=VALUE\n"
               "                           override one configuration key (repeatable)\n"
               "      --json               print JSON\n"
               "  -t, --timeout=DURATION   how long to wait for the daemon (default 30s)\n"
               "  -h, --help               show this help\n"
               "      --version            show the version\n"
               "\nSee deliveryctl(1).\n",
               DELIVERYD_DEFAULT_CONFIG);
}

int main(int argc, char *argv[]) {
        enum { ARG_JSON = 0x100, ARG_VERSION };
        static const struct option options[] = {
                { "config", required_argument, NULL, 'c' },
                { "option", required_argument, NULL, 'o' },
                { "json", no_argument, NULL, ARG_JSON },
                { "timeout", required_argument, NULL, 't' },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                {},
        };
        _cleanup_strv_free_ char **overrides = NULL;
        _cleanup_(conf_unrefp) Config *c = NULL;
        const char *config_path = DELIVERYD_DEFAULT_CONFIG;
        const Verb *verb = NULL;
        Diags diags = {};
        unsigned nargs;
        int opt, r;

        alloc_init();
        overrides = mem_new(char *, 1);
        if (!overrides)
                return EXIT_FAILURE;

        /* A command with its own options ("asl run … --input FILE"): the
         * global options are those before it. */
        int cmd = find_command(argc, argv);
        if (cmd < argc && streq(argv[cmd], "asl"))
                argc = cmd + 1;

        while ((opt = getopt_long(argc, argv, "c:o:t:h", options, NULL)) >= 0)
                switch (opt) {
                case 'c':
                        config_path = optarg;
                        break;
                case 'o':
                        if (strv_extend(&overrides, optarg) < 0)
                                return EXIT_FAILURE;
                        break;
                case 't':
                        if (parse_duration_usec(optarg, &arg_timeout_usec) < 0 || arg_timeout_usec == 0) {
                                fprintf(stderr, "deliveryctl: invalid timeout '%s'\n", optarg);
                                return EXIT_USAGE;
                        }
                        break;
                case ARG_JSON:
                        arg_json = true;
                        break;
                case 'h':
                        help();
                        return EXIT_SUCCESS;
                case ARG_VERSION:
                        printf("deliveryctl %s\n", PACKAGE_VERSION);
                        return EXIT_SUCCESS;
                default:
                        return EXIT_USAGE;
                }

        if (optind >= argc) {
                help();
                return EXIT_USAGE;
        }
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                if (streq(verbs[i].name, argv[optind]))
                        verb = &verbs[i];
        if (!verb) {
                fprintf(stderr, "deliveryctl: unknown command '%s' (see --help)\n", argv[optind]);
                return EXIT_USAGE;
        }
        if (verb->run_alone)
                return verb->run_alone(argv + optind + 1);
        nargs = (unsigned) (argc - optind - 1);
        if (nargs < verb->min_args || nargs > verb->max_args) {
                fprintf(stderr, "deliveryctl: usage: deliveryctl %s\n", verb->usage);
                return EXIT_USAGE;
        }

        if (verb->run_local) {
                /* No daemon: the files are all there is, so they must be right. */
                _cleanup_(snapshot_unrefp) Snapshot *s = NULL;
                r = snapshot_load(config_path, overrides, &s, &diags);
                for (size_t i = 0; i < diags.n; i++)
                        fprintf(stderr, "%s\n", diags.lines[i]);
                diags_clear(&diags);
                if (r < 0) {
                        fprintf(stderr, "deliveryctl: %s: %s\n", config_path,
                                r == -EINVAL ? "configuration has problems; see above" : strerror(-r));
                        return EXIT_FAILURE;
                }
                return verb->run_local(s, argv + optind + 1);
        }

        /* The daemon may be running an older, valid configuration while the
         * file on disk is being edited: show the problems but go on, we only
         * need to find the control socket. */
        r = conf_load(config_path, overrides, CONF_LOAD_KEEP_GOING, &c, &diags);
        for (size_t i = 0; i < diags.n; i++)
                fprintf(stderr, "warning: %s\n", diags.lines[i]);
        diags_clear(&diags);
        if (r < 0) {
                fprintf(stderr, "deliveryctl: cannot read the configuration: %s\n", strerror(-r));
                return EXIT_FAILURE;
        }
        return verb->run(c, argv + optind + 1);
}
