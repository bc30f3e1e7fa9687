/* SPDX-License-Identifier: MIT */
/*
 * test-mail-parser.c — the daemon's side of the mail parser process, on a
 * real sd-event loop against the real process (the built src/deliveryd
 * run with --mail-parser): answers come in order and say what
 * mail_parse() says in this process; cancelled requests are never
 * answered, also the one the process has; a process killed while idle is
 * replaced at the next request; a program that cannot be started fails
 * each request in turn, with growing pauses, and starts nothing while no
 * request waits; freeing answers what is left with -ECANCELED.  It also
 * prints what a round trip costs over parsing in this process.
 */
#include "test-helpers.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>

#include "alloc.h"
#include "mail-parser.h"
#include "mail.h"
#include "strutil.h"

#define PROGRAM TEST_BUILDDIR "/src/deliveryd"
#define WAIT_USEC (30 * USEC_PER_SEC)

typedef struct Answer {
        bool called;
        int r;
        MailContent *m;
        unsigned order;
} Answer;

static unsigned answered;

static void on_done(void *userdata, int r, MailContent *m) {
        Answer *a = userdata;

        assert_false(a->called);
        a->called = true;
        a->r = r;
        a->m = m;
        a->order = ++answered;
}

static uint64_t now_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / 1000;
}

/* Run the loop until every answer of a[0..n) is in. */
static void run_until(sd_event *e, Answer *a, size_t n) {
        uint64_t deadline = now_usec() + WAIT_USEC;

        for (;;) {
                bool all = true;
                for (size_t i = 0; i < n; i++)
                        all = all && a[i].called;
                if (all)
                        return;
                assert_true(now_usec() < deadline);
                assert_true(sd_event_run(e, 50 * USEC_PER_MSEC) >= 0);
        }
}

static json_int_t status_int(MailParser *p, const char *key) {
        json_t *s = mail_parser_status_json(p);
        json_int_t v;

        assert_non_null(s);
        v = json_integer_value(json_object_get(s, key));
        json_decref(s);
        return v;
}

static void answers_free(Answer *a, size_t n) {
        for (size_t i = 0; i < n; i++)
                mail_content_free(a[i].m);
}

/* A loop and a parser running program on it. */
static MailParser *parser_new(sd_event **ret_e, const char *program) {
        MailParser *p = NULL;

        assert_int_equal(sd_event_new(ret_e), 0);
        assert_int_equal(mail_parser_new(*ret_e, &(MailParserOptions){ .executable = program }, &p), 0);
        return p;
}

static void submit(MailParser *p, const char *mail, const MailParseOptions *o, Answer *a, MailParserRequest **ret) {
        assert_int_equal(
                mail_parser_submit(p, mail, strlen(mail), o ?: &(MailParseOptions){}, WAIT_USEC, on_done, a, ret), 0);
}

static const char *const mails[] = {
        "From: Ana <ana@example.com>\r\nTo: pedidos@pizzaria.example\r\nMessage-ID: <a1@example.com>\r\n\r\n"
        "quero 2 calabresa\r\n",
        "From: bob@example.com\r\nSubject: =?UTF-8?Q?Card=C3=A1pio?=\r\n\r\n<html><p>oi</p></html>\r\n",
        "From: MAILER-DAEMON@example.com\r\nTo: pedidos@pizzaria.example\r\n\r\nundeliverable\r\n",
        "not a mail at all",
        "From: carla@example.com\r\nAuto-Submitted: auto-replied\r\n\r\nfora do escritorio\r\n",
};

static void test_in_order(void **state _unused_) {
        _cleanup_(mail_parser_freep) MailParser *p = NULL;
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        char *own[] = { "pedidos@pizzaria.example", NULL };
        const MailParseOptions o = { .own_addresses = own };
        Answer a[ELEMENTSOF(mails)] = {};

        p = parser_new(&e, PROGRAM);
        answered = 0;
        for (size_t i = 0; i < ELEMENTSOF(mails); i++)
                submit(p, mails[i], &o, &a[i], NULL);
        /* never from inside submit */
        for (size_t i = 0; i < ELEMENTSOF(mails); i++)
                assert_false(a[i].called);
        assert_int_equal(mail_parser_n_pending(p), ELEMENTSOF(mails));
        run_until(e, a, ELEMENTSOF(mails));
        assert_int_equal(mail_parser_n_pending(p), 0);

        for (size_t i = 0; i < ELEMENTSOF(mails); i++) {
                _cleanup_(mail_content_freep) MailContent *here = NULL;
                int r = mail_parse(mails[i], strlen(mails[i]), &o, &here);

                assert_int_equal(a[i].order, i + 1);
                assert_int_equal(a[i].r, r);
                if (r < 0) {
                        assert_null(a[i].m);
                        continue;
                }
                assert_true(streq_ptr(a[i].m->from, here->from));
                assert_true(streq_ptr(a[i].m->subject, here->subject));
                assert_string_equal(a[i].m->text, here->text);
                assert_int_equal(a[i].m->ignore, here->ignore);
        }
        assert_int_equal(a[3].r, -EBADMSG);
        assert_int_equal(a[2].m->ignore, MAIL_IGNORE_BOUNCE);
        assert_int_equal(status_int(p, "started"), 1);
        assert_int_equal(status_int(p, "parsed"), ELEMENTSOF(mails));
        answers_free(a, ELEMENTSOF(mails));
}

static void test_cancel(void **state _unused_) {
        _cleanup_(mail_parser_freep) MailParser *p = NULL;
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        const MailParseOptions o = {};
        MailParserRequest *req[3];
        Answer a[4] = {};

        p = parser_new(&e, PROGRAM);
        assert_int_equal(mail_parser_start(p), 0);
        for (size_t i = 0; i < 3; i++)
                submit(p, mails[0], &o, &a[i], &req[i]);
        /* the second, still queued */
        mail_parser_cancel(req[1]);
        /* the first, once the process has it */
        assert_true(sd_event_run(e, 0) >= 0);
        mail_parser_cancel(req[0]);
        mail_parser_cancel(NULL);
        submit(p, mails[1], &o, &a[3], NULL);
        run_until(e, &a[2], 2);
        assert_false(a[0].called);
        assert_false(a[1].called);
        assert_int_equal(a[2].r, 0);
        assert_string_equal(a[3].m->from, "bob@example.com");
        /* the cancelled one was read and dropped, in step */
        assert_int_equal(status_int(p, "parsed"), 3);
        answers_free(a, 4);
}

static void test_killed_while_idle(void **state _unused_) {
        _cleanup_(mail_parser_freep) MailParser *p = NULL;
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        const MailParseOptions o = {};
        Answer a[1] = {};
        uint64_t deadline = now_usec() + WAIT_USEC;

        p = parser_new(&e, PROGRAM);
        assert_int_equal(mail_parser_start(p), 0);
        assert_int_equal(kill((pid_t) status_int(p, "pid"), SIGKILL), 0);
        while (status_int(p, "died") == 0) {
                assert_true(now_usec() < deadline);
                assert_true(sd_event_run(e, 50 * USEC_PER_MSEC) >= 0);
        }
        /* nothing waits: nothing is started */
        assert_int_equal(status_int(p, "started"), 1);
        submit(p, mails[0], &o, &a[0], NULL);
        run_until(e, a, 1);
        assert_int_equal(a[0].r, 0);
        assert_int_equal(status_int(p, "started"), 2);
        assert_int_equal(status_int(p, "failures_in_a_row"), 0);
        answers_free(a, 1);
}

static void test_cannot_start(void **state _unused_) {
        _cleanup_(mail_parser_freep) MailParser *p = NULL;
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        const MailParseOptions o = {};
        Answer a[3] = {};

        p = parser_new(&e, "/nonexistent/deliveryd");
        assert_int_equal(mail_parser_start(p), -ENOENT);
        for (size_t i = 0; i < 3; i++)
                submit(p, mails[0], &o, &a[i], NULL);
        run_until(e, a, 3);
        for (size_t i = 0; i < 3; i++) {
                assert_int_equal(a[i].r, -ECONNRESET);
                assert_true(mail_parser_error_is_temporary(a[i].r));
        }
        /* each try waited longer than the one before */
        assert_int_equal(status_int(p, "failures_in_a_row"), 3);
        assert_int_equal(status_int(p, "restart_delay_ms"), 400);
        assert_int_equal(status_int(p, "started"), 0);
}

static void test_free_answers(void **state _unused_) {
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        const MailParseOptions o = {};
        MailParser *p = NULL;
        Answer a[3] = {};

        p = parser_new(&e, PROGRAM);
        for (size_t i = 0; i < 3; i++)
                submit(p, mails[0], &o, &a[i], NULL);
        assert_true(sd_event_run(e, 0) >= 0); /* the first is with the process */
        mail_parser_free(p);
        for (size_t i = 0; i < 3; i++) {
                assert_true(a[i].called);
                assert_int_equal(a[i].r, -ECANCELED);
        }
        /* and the process was reaped */
        assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
        assert_int_equal(errno, ECHILD);
}

static void test_too_large(void **state _unused_) {
        _cleanup_(mail_parser_freep) MailParser *p = NULL;
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        Answer a = {};

        p = parser_new(&e, PROGRAM);
        /* refused before a byte is read */
        assert_int_equal(mail_parser_submit(p, mails[0], (size_t) 128 * 1024 * 1024, &(MailParseOptions){}, WAIT_USEC,
                                            on_done, &a, NULL),
                         -EFBIG);
        assert_int_equal(mail_parser_n_pending(p), 0);
}

static double cpu_seconds(int who) {
        struct rusage ru;

        assert_int_equal(getrusage(who, &ru), 0);
        return (double) ru.ru_utime.tv_sec + (double) ru.ru_stime.tv_sec +
                ((double) ru.ru_utime.tv_usec + (double) ru.ru_stime.tv_usec) / 1e6;
}

/* Not a check: what one mail costs here and there, for the record. */
static void test_cost(void **state _unused_) {
        enum { N = 500 };
        _cleanup_free_ char *data = NULL;
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        const MailParseOptions o = {};
        MailParser *p = NULL;
        double t0, here_wall, there_wall, here_cpu, there_cpu;
        size_t size;

        data = read_mail_corpus("gmail-reply-pt.eml", &size);

        t0 = (double) now_usec();
        here_cpu = cpu_seconds(RUSAGE_SELF);
        for (int i = 0; i < N; i++) {
                MailContent *m = NULL;
                assert_int_equal(mail_parse(data, size, &o, &m), 0);
                mail_content_free(m);
        }
        here_cpu = cpu_seconds(RUSAGE_SELF) - here_cpu;
        here_wall = (double) now_usec() - t0;

        p = parser_new(&e, PROGRAM);
        assert_int_equal(mail_parser_start(p), 0);
        double self0 = cpu_seconds(RUSAGE_SELF), children0 = cpu_seconds(RUSAGE_CHILDREN);
        t0 = (double) now_usec();
        for (int i = 0; i < N; i++) {
                Answer a = {};
                assert_int_equal(mail_parser_submit(p, data, size, &o, WAIT_USEC, on_done, &a, NULL), 0);
                run_until(e, &a, 1);
                assert_int_equal(a.r, 0);
                mail_content_free(a.m);
        }
        there_wall = (double) now_usec() - t0;
        mail_parser_free(p); /* reaped: its CPU time is counted now */
        double self_cpu = cpu_seconds(RUSAGE_SELF) - self0;
        there_cpu = self_cpu + cpu_seconds(RUSAGE_CHILDREN) - children0;
        fprintf(stderr,
                "# %zu-byte mail, %d times: in this process %.0f us wall, %.0f us CPU each; through the parser "
                "process %.0f us wall, %.0f us CPU each (%.0f us of it on the loop's side)\n",
                size, N, here_wall / N, here_cpu * 1e6 / N, there_wall / N, there_cpu * 1e6 / N, self_cpu * 1e6 / N);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_in_order),
                cmocka_unit_test(test_cancel),
                cmocka_unit_test(test_killed_while_idle),
                cmocka_unit_test(test_cannot_start),
                cmocka_unit_test(test_free_answers),
                cmocka_unit_test(test_too_large),
                cmocka_unit_test(test_cost),
        };
        alloc_init();
        mail_init();
        int r = cmocka_run_group_tests(tests, NULL, NULL);
        mail_shutdown();
        return r;
}
