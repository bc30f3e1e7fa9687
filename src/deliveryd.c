/* SPDX-License-Identifier: MIT */
/*
 * deliveryd.c — the daemon's entry point: options, --check-config,
 * --dump-config, then the manager's loop.
 *
 * Security: command-line options are trusted (root or the service user).
 */
#include <curl/curl.h>
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "alloc.h"
#include "fault.h"
#include "listen.h"
#include "log.h"
#include "mail-parser.h"
#include "engine-local.h"
#include "manager.h"
#include "snapshot.h"
#include "strutil.h"

static void help(void) {
        printf("Usage: deliveryd [OPTIONS]\n"
               "\n"
               "Order and delivery conversations by SMS and e-mail.\n"
               "\n"
               "  -c, --config=FILE        configuration file (default %s)\n"
               "  -o, --option=SECTION.KEY=VALUE\n"
               "                           override one configuration key (repeatable)\n"
               "      --check-config       report every problem in the configuration and exit\n"
               "      --dump-config        print the effective configuration and exit\n"
               "  -v, --verbose            log at debug level\n"
               "  -h, --help               show this help\n"
               "      --version            show the version\n"
               "\n"
               "See deliveryd(8) and deliveryd.conf(5).\n",
               DELIVERYD_DEFAULT_CONFIG);
}

/* Print every key as "section.key = value" with where it came from. */
static void dump_config(const Config *c) {
        size_t n;
        const ConfKey *t = conf_table(&n);
        const char *section = NULL;

        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *v = conf_format_value(c, &t[i]);
                if (!section || !streq(section, t[i].section)) {
                        printf("%s[%s]\n", section ? "\n" : "", t[i].section);
                        section = t[i].section;
                }
                if (c->sources[i].file && c->sources[i].line > 0)
                        printf("# %s:%u\n", c->sources[i].file, c->sources[i].line);
                else if (c->sources[i].file)
                        printf("# %s\n", c->sources[i].file);
                printf("%s = %s\n", t[i].key, v ? v : "");
        }
}

int main(int argc, char *argv[]) {
        enum { ARG_CHECK_CONFIG = 0x100, ARG_DUMP_CONFIG, ARG_VERSION };
        static const struct option options[] = {
                { "config", required_argument, NULL, 'c' },
                { "option", required_argument, NULL, 'o' },
                { "check-config", no_argument, NULL, ARG_CHECK_CONFIG },
                { "dump-config", no_argument, NULL, ARG_DUMP_CONFIG },
                { "verbose", no_argument, NULL, 'v' },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                {},
        };
        _cleanup_strv_free_ char **overrides = NULL;
        _cleanup_(snapshot_unrefp) Snapshot *snapshot = NULL;
        _cleanup_(manager_freep) Manager *m = NULL;
        const char *config_path = DELIVERYD_DEFAULT_CONFIG;
        bool check = false, dump = false, verbose = false;
        Diags diags = {};
        int c, r;

        /* The same program parses mail in a process of its own
         * (mail-parser.h); that process needs none of what follows. */
        if (argc >= 2 && streq(argv[1], MAIL_PARSER_OPTION))
                return mail_parser_process_main(argc, argv);

        /* Block the signals sd-event handles before anything can start a
         * thread: a thread created by a library inherits the mask and so
         * never takes a SIGTERM meant for the loop. */
        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGHUP);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigprocmask(SIG_BLOCK, &mask, NULL);

        alloc_init();
        /* glibc gives the top of the heap back to the kernel whenever more
         * than 128 KiB of it is free, and every SQLite transaction frees
         * and takes back about that much (statement journals, page cache):
         * a brk() and fresh page faults per message at full load.  Keep up
         * to 8 MiB; the idle footprint does not change. */
        (void) mallopt(M_TRIM_THRESHOLD, 8 * 1024 * 1024);
        (void) mallopt(M_TOP_PAD, 1024 * 1024);
        log_open();
        /* Before any thread exists (libcurl's resolver starts some). */
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
                return log_error("Failed to initialise libcurl."), EXIT_FAILURE;
        fault_init();

        overrides = mem_new(char *, 1);
        if (!overrides)
                return log_oom(), EXIT_FAILURE;

        while ((c = getopt_long(argc, argv, "c:o:vh", options, NULL)) >= 0)
                switch (c) {
                case 'c':
                        config_path = optarg;
                        break;
                case 'o':
                        if (strv_extend(&overrides, optarg) < 0)
                                return log_oom(), EXIT_FAILURE;
                        break;
                case 'v':
                        verbose = true;
                        log_set_max_level(LOG_DEBUG);
                        break;
                case 'h':
                        help();
                        return EXIT_SUCCESS;
                case ARG_VERSION:
                        printf("deliveryd %s\n", PACKAGE_VERSION);
                        return EXIT_SUCCESS;
                case ARG_CHECK_CONFIG:
                        check = true;
                        break;
                case ARG_DUMP_CONFIG:
                        dump = true;
                        break;
                default:
                        return 2;
                }
        if (optind < argc) {
                fprintf(stderr, "deliveryd: unexpected argument '%s' (see --help)\n", argv[optind]);
                return 2;
        }

        /* Before anything opens a file, so that fd numbers match what systemd passed. */
        r = listen_collect_activated();
        if (r < 0)
                log_warning_errno(r, "Failed to receive sockets from systemd: %m");

        r = snapshot_load(config_path, overrides, &snapshot, &diags);
        if (r == -ENOMEM)
                return log_oom(), EXIT_FAILURE;
        if (check || dump) {
                for (size_t i = 0; i < diags.n; i++)
                        fprintf(stderr, "%s\n", diags.lines[i]);
                diags_clear(&diags);
                if (r >= 0 && check && snapshot->config->engine_backend == ENGINE_LOCAL) {
                        _cleanup_free_ char *why = NULL;
                        int k = engine_local_check_definition(snapshot->config->engine_definition, &why);
                        if (k == -ENOMEM)
                                return log_oom(), EXIT_FAILURE;
                        if (k < 0) {
                                fprintf(stderr, "%s\n", strempty(why));
                                r = k;
                        }
                }
                if (r < 0) {
                        fprintf(stderr, "%s: configuration has problems; see above\n", config_path);
                        return EXIT_FAILURE;
                }
                if (dump)
                        dump_config(snapshot->config);
                else
                        printf("%s: configuration OK (%zu products, %zu zones)\n", config_path,
                               catalog_n_items(snapshot->catalog), catalog_n_zones(snapshot->catalog));
                return EXIT_SUCCESS;
        }
        if (r < 0) {
                log_error("Not starting: the configuration has problems:");
                for (size_t i = 0; i < diags.n; i++)
                        log_error("%s", diags.lines[i]);
                diags_clear(&diags);
                return EXIT_FAILURE;
        }

        r = manager_new(config_path, overrides, TAKE_PTR(snapshot), verbose, &m);
        if (r < 0)
                return log_error_errno(r, "Failed to set up: %m"), EXIT_FAILURE;
        r = manager_start(m);
        if (r < 0)
                return EXIT_FAILURE;
        return manager_run(m);
}
