/* SPDX-License-Identifier: MIT */
/*
 * test-conf.c — the configuration parser: one row per input, with the
 * exact diagnostics it must produce.
 */
#include "test-helpers.h"

#include <errno.h>

#include "alloc.h"
#include "conf.h"
#include "strutil.h"
#include <syslog.h>

/* Load text as deliveryd.conf; return r and the diagnostics joined by '|',
 * with the directory replaced by "D". */
static int load(const char *text, char *const *overrides, Config **ret, char **ret_diags) {
        char path[4096];
        Diags d = {};
        int r;

        write_file(dir, "deliveryd.conf", text);
        snprintf(path, sizeof path, "%s/deliveryd.conf", dir);
        r = conf_load(path, overrides, 0, ret, &d);

        char buf[8192] = "";
        for (size_t i = 0; i < d.n; i++) {
                const char *l = d.lines[i];
                if (strncmp(l, dir, strlen(dir)) == 0) {
                        strncat(buf, "D", sizeof buf - strlen(buf) - 1);
                        l += strlen(dir);
                }
                strncat(buf, l, sizeof buf - strlen(buf) - 1);
                if (i + 1 < d.n)
                        strncat(buf, "|", sizeof buf - strlen(buf) - 1);
        }
        diags_clear(&d);
        *ret_diags = strdup(buf);
        return r;
}

static void test_errors(void **state _unused_) {
        static const struct {
                const char *text;
                const char *diags;
        } cases[] = {
                { "[bogus]\nx = 1\ny = 2\n", "D/deliveryd.conf:1: unknown section [bogus]" },
                { "[http]\nlisten_addr = x\n", "D/deliveryd.conf:2: unknown key 'listen_addr' in section [http]" },
                { "[nlu]\nbackend = gpt\n",
                  "D/deliveryd.conf:2: nlu.backend: invalid value 'gpt' (one of: rules, bedrock)" },
                { "[engine]\nbackend = Local\n",
                  "D/deliveryd.conf:2: engine.backend: invalid value 'Local' (one of: local, stepfunctions)" },
                { "[http]\nmax_body = 10\n",
                  "D/deliveryd.conf:2: http.max_body: value '10' out of range (1024 to 67108864)" },
                { "[http]\nmax_body = lots\n",
                  "D/deliveryd.conf:2: http.max_body: invalid size (e.g. 256K, 1M) 'lots'" },
                { "[daemon]\ndrain_timeout = soon\n",
                  "D/deliveryd.conf:2: daemon.drain_timeout: invalid duration (e.g. 500ms, 10s, 15min) 'soon'" },
                { "[daemon]\ndrain_timeout = 1h\n",
                  "D/deliveryd.conf:2: daemon.drain_timeout: value '1h' out of range (0s to 600s)" },
                { "[http]\nmax_connections = 0\n",
                  "D/deliveryd.conf:2: http.max_connections: value '0' out of range (1 to 65536)" },
                { "[http]\nmax_connections = -3\n", "D/deliveryd.conf:2: http.max_connections: invalid number '-3'" },
                { "[http]\nlisten = 127.0.0.1\n",
                  "D/deliveryd.conf:2: http.listen: invalid address '127.0.0.1': expected host:port" },
                { "[http]\nlisten = 127.0.0.1:70000\n",
                  "D/deliveryd.conf:2: http.listen: invalid address '127.0.0.1:70000': port must be a number from 0 "
                  "to 65535" },
                { "[http]\nlisten = example.com:80\n",
                  "D/deliveryd.conf:2: http.listen: invalid address 'example.com:80': host must be a numeric IP "
                  "address, 'localhost' or '*'" },
                { "[daemon]\nlog_level = loud\n",
                  "D/deliveryd.conf:2: daemon.log_level: invalid value 'loud' (one of: emerg, alert, crit, err, "
                  "warning, notice, info, debug)" },
                { "log_level = info\n", "D/deliveryd.conf:1: assignment 'log_level' outside of any [section]" },
                { "[http\nlisten = 1.2.3.4:5\n", "D/deliveryd.conf:1: malformed section header '[http'" },
                { "[http]\njunk\n", "D/deliveryd.conf:2: expected 'key = value', got 'junk'" },
                { "[http]\n = 5\n", "D/deliveryd.conf:2: missing key before '='" },
                { "[control]\nsocket =\n",
                  "D/deliveryd.conf:2: control.socket: '' is not a usable Unix socket path (absolute, at most 107 "
                  "bytes)" },
                { "[daemon]\nstate_directory =\n", "D/deliveryd.conf:2: daemon.state_directory: must not be empty" },
                /* every problem is reported, in file order */
                { "[daemon]\nlog_level = loud\n# comment\n; comment\n\n[nope]\n[http]\nmax_body = 1\nwhat = 2\n",
                  "D/deliveryd.conf:2: daemon.log_level: invalid value 'loud' (one of: emerg, alert, crit, err, "
                  "warning, notice, info, debug)|D/deliveryd.conf:6: unknown section [nope]|D/deliveryd.conf:8: "
                  "http.max_body: value '1' out of range (1024 to 67108864)|D/deliveryd.conf:9: unknown key 'what' "
                  "in section [http]" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                Config *c = NULL;
                _cleanup_free_ char *d = NULL;
                int r = load(cases[i].text, NULL, &c, &d);

                if (!streq(d, cases[i].diags))
                        fail_msg("case %zu: got '%s', want '%s'", i, d, cases[i].diags);
                assert_int_equal(r, -EINVAL);
                assert_null(c);
        }
}

static void test_long_line(void **state _unused_) {
        char text[6000];
        Config *c = NULL;
        _cleanup_free_ char *d = NULL;

        memset(text, 'x', sizeof text);
        memcpy(text, "[store]\nname = ", 15);
        text[sizeof text - 2] = '\n';
        text[sizeof text - 1] = '\0';
        assert_int_equal(load(text, NULL, &c, &d), -EINVAL);
        assert_string_equal(d, "D/deliveryd.conf:2: line too long (5991 bytes, at most 4096)");
}

static void test_missing_file(void **state _unused_) {
        Diags d = {};
        Config *c = NULL;

        assert_int_equal(conf_load("/nonexistent/deliveryd.conf", NULL, 0, &c, &d), -EINVAL);
        assert_int_equal(d.n, 1);
        assert_string_equal(d.lines[0],
                            "/nonexistent/deliveryd.conf: cannot read configuration: No such file or directory");
        diags_clear(&d);

        /* deliveryctl's lenient mode still gets the defaults */
        assert_int_equal(conf_load("/nonexistent/deliveryd.conf", NULL, CONF_LOAD_KEEP_GOING, &c, &d), 0);
        assert_non_null(c);
        assert_int_equal(d.n, 1);
        diags_clear(&d);
        conf_unref(c);
}

static void test_defaults_and_paths(void **state _unused_) {
        _cleanup_(conf_unrefp) Config *c = NULL;
        _cleanup_free_ char *d = NULL, *want = NULL, *real = realpath(dir, NULL);

        unsetenv("STATE_DIRECTORY");
        setenv("RUNTIME_DIRECTORY", "/run/deliveryd:/run/other", 1);
        assert_int_equal(load("[store]\ncatalog = cat.conf\nzones = /abs/zones.conf\n", NULL, &c, &d), 0);
        assert_string_equal(d, "");
        want = mem_printf("%s/cat.conf", real);
        assert_string_equal(c->store_catalog, want);
        assert_string_equal(c->store_zones, "/abs/zones.conf");
        assert_string_equal(c->state_directory, LOCALSTATEDIR "/lib/deliveryd");
        assert_string_equal(c->control_socket, "/run/deliveryd/control.sock");
        assert_string_equal(c->http_listen, "127.0.0.1:8080");
        assert_int_equal(c->http_max_body, 256 * 1024);
        assert_int_equal(c->drain_timeout_usec, 10 * USEC_PER_SEC);
        assert_int_equal(c->nlu_backend, NLU_RULES);
        assert_int_equal(c->engine_backend, ENGINE_LOCAL);
        assert_int_equal(c->sms_transport, SMS_TRANSPORT_LOG);
        assert_int_equal(c->mail_transport, MAIL_TRANSPORT_LOG);
        assert_int_equal(c->log_level, LOG_INFO);
        unsetenv("RUNTIME_DIRECTORY");

        conf_unref(TAKE_PTR(c));
        free(TAKE_PTR(d));
        setenv("STATE_DIRECTORY", "/var/lib/deliveryd", 1);
        assert_int_equal(load("", NULL, &c, &d), 0);
        assert_string_equal(c->state_directory, "/var/lib/deliveryd");
        unsetenv("STATE_DIRECTORY");
}

static void test_lmtp_unix_relative(void **state _unused_) {
        _cleanup_(conf_unrefp) Config *c = NULL;
        _cleanup_free_ char *d = NULL, *want = NULL, *real = realpath(dir, NULL);

        assert_int_equal(load("[lmtp]\nlisten = unix:lmtp.sock\n", NULL, &c, &d), 0);
        want = mem_printf("unix:%s/lmtp.sock", real);
        assert_string_equal(c->lmtp_listen, want);
}

static void test_dropins(void **state _unused_) {
        _cleanup_(conf_unrefp) Config *c = NULL;
        _cleanup_free_ char *d = NULL, *ddir = mem_printf("%s/deliveryd.conf.d", dir);
        size_t n;
        const ConfKey *t = conf_table(&n);

        assert_int_equal(mkdir(ddir, 0755), 0);
        write_file(ddir, "20-b.conf", "[daemon]\nlog_level = debug\n");
        write_file(ddir, "10-a.conf", "[http]\nlisten = 127.0.0.1:9\n");
        write_file(ddir, "README", "[not read]\n");
        write_file(ddir, ".hidden.conf", "[not read]\n");
        assert_int_equal(load("[http]\nlisten = 10.0.0.1:1\n[daemon]\nlog_level = err\n", NULL, &c, &d), 0);
        assert_string_equal(d, "");
        assert_string_equal(c->http_listen, "127.0.0.1:9");
        assert_int_equal(c->log_level, LOG_DEBUG);
        for (size_t i = 0; i < n; i++)
                if (streq(t[i].section, "http") && streq(t[i].key, "listen")) {
                        assert_non_null(strstr(c->sources[i].file, "10-a.conf"));
                        assert_int_equal(c->sources[i].line, 2);
                }

        /* a problem in a drop-in names the drop-in */
        conf_unref(TAKE_PTR(c));
        free(TAKE_PTR(d));
        write_file(ddir, "30-c.conf", "[http]\nmax_body = 1G\n");
        assert_int_equal(load("", NULL, &c, &d), -EINVAL);
        assert_string_equal(d,
                            "D/deliveryd.conf.d/30-c.conf:2: http.max_body: value '1G' out of range (1024 to "
                            "67108864)");
        rm_rf(ddir);
}

static void test_overrides(void **state _unused_) {
        _cleanup_(conf_unrefp) Config *c = NULL;
        _cleanup_free_ char *d = NULL;
        char *good[] = { "http.listen=127.0.0.1:0", "nlu.backend=bedrock", "store.name=A = B", NULL };
        char *bad[] = { "nlu.backend=gpt", "foo", "a.b=c", "http=1", NULL };

        assert_int_equal(load("[http]\nlisten = 10.0.0.1:1\n", good, &c, &d), 0);
        assert_string_equal(c->http_listen, "127.0.0.1:0");
        assert_int_equal(c->nlu_backend, NLU_BEDROCK);
        assert_string_equal(c->store_name, "A = B");

        conf_unref(TAKE_PTR(c));
        free(TAKE_PTR(d));
        assert_int_equal(load("", bad, &c, &d), -EINVAL);
        assert_string_equal(d,
                            "-o nlu.backend=gpt: nlu.backend: invalid value 'gpt' (one of: rules, bedrock)|"
                            "-o foo: expected section.key=value|-o a.b=c: unknown key 'a.b'|"
                            "-o http=1: expected section.key=value");
}

static void test_carry_over(void **state _unused_) {
        _cleanup_(conf_unrefp) Config *old = NULL, *new = NULL;
        _cleanup_free_ char *d1 = NULL, *d2 = NULL;
        Diags w = {};

        assert_int_equal(load("[http]\nlisten = 127.0.0.1:1\nmax_body = 1M\n", NULL, &old, &d1), 0);
        assert_int_equal(load("[http]\nlisten = 127.0.0.1:2\nmax_body = 2M\n", NULL, &new, &d2), 0);
        assert_int_equal(conf_carry_over(new, old, &w), 0);
        assert_int_equal(w.n, 1);
        assert_non_null(strstr(w.lines[0],
                               "deliveryd.conf:2: http.listen changed, but it can only change with a "
                               "restart; keeping the running value"));
        assert_string_equal(new->http_listen, "127.0.0.1:1"); /* kept */
        assert_int_equal(new->http_max_body, 2 * 1024 * 1024); /* reloadable: taken */
        diags_clear(&w);
}

static void test_format_roundtrip(void **state _unused_) {
        _cleanup_(conf_unrefp) Config *c = NULL;
        _cleanup_free_ char *d = NULL;
        size_t n;
        const ConfKey *t = conf_table(&n);

        assert_int_equal(load("", NULL, &c, &d), 0);
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *v = conf_format_value(c, &t[i]);
                assert_non_null(v);
                assert_non_null(t[i].help);
                if (t[i].type == CONF_DURATION && t[i].default_value)
                        assert_string_equal(v, t[i].default_value);
        }
}

/* Fail every allocation in turn: conf_load must return -ENOMEM (never
 * crash, never leak — ASan/LSan runs check the latter) until it has
 * enough memory to succeed. */
static void test_oom(void **state _unused_) {
        char *ov[] = { "nlu.backend=bedrock", NULL };
        unsigned long n;

        write_file(dir, "deliveryd.conf", "[http]\nlisten = 127.0.0.1:0\n[store]\nname = X\n[nope]\n");
        write_file(dir, "ok.conf", "[http]\nlisten = 127.0.0.1:0\n[store]\nname = X\n");
        for (int variant = 0; variant < 2; variant++) {
                char path[4096];
                snprintf(path, sizeof path, "%s/%s", dir, variant ? "ok.conf" : "deliveryd.conf");
                for (n = 1;; n++) {
                        Config *c = NULL;
                        Diags d = {};
                        alloc_fail_after(n);
                        int r = conf_load(path, ov, 0, &c, &d);
                        alloc_fail_after(0);
                        diags_clear(&d);
                        conf_unref(c);
                        if (r != -ENOMEM) {
                                assert_int_equal(r, variant ? 0 : -EINVAL);
                                break;
                        }
                        assert_null(c);
                }
                assert_true(n > 10);
        }
}

int main(void) {
        alloc_init();
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_errors),
                cmocka_unit_test(test_long_line),
                cmocka_unit_test(test_missing_file),
                cmocka_unit_test(test_defaults_and_paths),
                cmocka_unit_test(test_lmtp_unix_relative),
                cmocka_unit_test(test_dropins),
                cmocka_unit_test(test_overrides),
                cmocka_unit_test(test_carry_over),
                cmocka_unit_test(test_format_roundtrip),
                cmocka_unit_test(test_oom),
        };
        return cmocka_run_group_tests(tests, tmpdir_setup, tmpdir_teardown);
}
