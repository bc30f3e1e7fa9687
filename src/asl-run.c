/* SPDX-License-Identifier: MIT */
/*
 * asl-run.c — the offline driver of the ASL interpreter: scripted tasks
 * and virtual time.  Each scripted answer becomes a pending completion at
 * a virtual time; the driver repeatedly moves time to whichever comes
 * first, the next completion or the execution's next deadline (on a tie
 * the deadline fires first: a result that comes exactly at the timeout is
 * too late), so waits, retry delays and timeouts pass instantly but in
 * their order.
 *
 * Security: the script is the admin's file, checked whole before the run;
 * the run is bounded by the execution's transitions and by a cap on
 * driver iterations.
 */
#include <errno.h>
#include <string.h>

#include "alloc.h"
#include "asl-run.h"

#define DRIVER_ITERATIONS_MAX 1000000U

_printf_(2, 3) static int script_fail(char **ret_error, const char *fmt, ...) {
        va_list ap;
        char *m = NULL;

        va_start(ap, fmt);
        if (vasprintf(&m, fmt, ap) < 0)
                m = NULL;
        va_end(ap);
        if (!m)
                return -ENOMEM;
        if (ret_error) {
                *ret_error = mem_strdup(m);
                free(m);
                return *ret_error ? -EINVAL : -ENOMEM;
        }
        free(m);
        return -EINVAL;
}

static int check_entry(const char *fn, size_t i, json_t *entry, char **ret_error) {
        json_t *v;
        const char *k;
        unsigned what = 0;

        if (!json_is_object(entry))
                return script_fail(ret_error, "tasks: %s[%zu] must be an object", fn, i);
        json_object_foreach (entry, k, v) {
                if (streq(k, "return"))
                        what++;
                else if (streq(k, "throw")) {
                        json_t *err = json_object_get(v, "error"), *cause = json_object_get(v, "cause");
                        const char *tk;
                        json_t *tv;
                        what++;
                        if (!json_is_object(v) || !json_is_string(err) || isempty(json_string_value(err)))
                                return script_fail(ret_error, "tasks: %s[%zu]: throw needs an \"error\" name", fn, i);
                        if (cause && !json_is_string(cause))
                                return script_fail(ret_error, "tasks: %s[%zu]: throw's \"cause\" must be a string", fn,
                                                   i);
                        json_object_foreach (v, tk, tv)
                                if (!streq(tk, "error") && !streq(tk, "cause"))
                                        return script_fail(ret_error, "tasks: %s[%zu]: throw: unknown field '%s'", fn,
                                                           i, tk);
                } else if (streq(k, "no_callback")) {
                        if (!json_is_true(v))
                                return script_fail(ret_error, "tasks: %s[%zu]: no_callback must be true", fn, i);
                        what++;
                } else if (streq(k, "delay_ms")) {
                        if (!json_is_integer(v) || json_integer_value(v) < 0 ||
                            json_integer_value(v) > (json_int_t) 99999999000LL)
                                return script_fail(ret_error, "tasks: %s[%zu]: delay_ms must be a non-negative integer",
                                                   fn, i);
                } else
                        return script_fail(ret_error, "tasks: %s[%zu]: unknown field '%s'", fn, i, k);
        }
        if (what != 1)
                return script_fail(ret_error, "tasks: %s[%zu] needs exactly one of return, throw, no_callback", fn, i);
        return 0;
}

int asl_script_check(json_t *tasks, char **ret_error) {
        json_t *list, *entry;
        const char *fn;
        size_t i;
        int r;

        if (!json_is_object(tasks))
                return script_fail(ret_error, "tasks: must be an object mapping function names to lists");
        json_object_foreach (tasks, fn, list) {
                if (!json_is_array(list) || json_array_size(list) == 0)
                        return script_fail(ret_error, "tasks: %s must be a non-empty list", fn);
                json_array_foreach (list, i, entry) {
                        r = check_entry(fn, i, entry, ret_error);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

typedef struct Completion {
        uint64_t at, seq;
        char *token;
        json_t *entry; /* borrowed from the script; NULL: function not in the script */
        char *function;
} Completion;

typedef struct Driver {
        AslExecution *e;
        json_t *tasks, *calls; /* calls: function -> count so far */
        Completion *pending;
        size_t n_pending;
        uint64_t now, seq;
} Driver;

static void driver_done(Driver *d) {
        for (size_t i = 0; i < d->n_pending; i++) {
                free(d->pending[i].token);
                free(d->pending[i].function);
        }
        free(d->pending);
        json_decref(d->calls);
}

static int schedule(Driver *d, const AslTask *t) {
        json_t *list = json_object_get(d->tasks, t->function), *entry = NULL, *delay;
        json_int_t n = json_integer_value(json_object_get(d->calls, t->function));
        Completion *a;

        if (list) {
                entry = json_array_get(list, MIN((size_t) n, json_array_size(list) - 1));
                if (json_object_get(entry, "no_callback"))
                        goto count;
        }
        a = mem_realloc(d->pending, (d->n_pending + 1) * sizeof(Completion));
        if (!a)
                return -ENOMEM;
        d->pending = a;
        delay = json_object_get(entry, "delay_ms");
        a[d->n_pending] = (Completion){
                .at = d->now + (delay ? (uint64_t) json_integer_value(delay) * USEC_PER_MSEC : 0),
                .seq = ++d->seq,
                .token = mem_strdup(t->token),
                .entry = entry,
                .function = mem_strdup(t->function),
        };
        d->n_pending++;
        if (!a[d->n_pending - 1].token || !a[d->n_pending - 1].function)
                return -ENOMEM;
count:
        return json_object_set_new(d->calls, t->function, json_integer(n + 1)) < 0 ? -ENOMEM : 0;
}

static int deliver(Driver *d, Completion *c) {
        json_t *thr;
        int r;

        if (!c->entry) {
                _cleanup_free_ char *cause =
                        mem_printf("Function not found: %s (the tasks file does not name it)", c->function);
                if (!cause)
                        return -ENOMEM;
                r = asl_execution_task_failed(d->e, c->token, "Lambda.ResourceNotFoundException", cause, d->now);
        } else if ((thr = json_object_get(c->entry, "throw")))
                r = asl_execution_task_failed(d->e, c->token, json_string_value(json_object_get(thr, "error")),
                                              json_string_value(json_object_get(thr, "cause")), d->now);
        else
                r = asl_execution_task_succeeded(d->e, c->token, json_object_get(c->entry, "return"), d->now);
        return r == -ENOENT ? 0 : r; /* timed out or cancelled meanwhile: too late */
}

static int step(Driver *d) {
        AslTask *tasks = NULL;
        size_t n = 0;
        int r;

        r = asl_execution_step(d->e, &tasks, &n);
        for (size_t i = 0; r >= 0 && i < n; i++)
                r = schedule(d, &tasks[i]);
        asl_tasks_free(tasks, n);
        return r;
}

int asl_run_scripted(AslDefinition *def, json_t *input, json_t *tasks, const AslOptions *opts, json_t **ret,
                     char **ret_error) {
        _cleanup_(asl_execution_freep) AslExecution *e = NULL;
        _cleanup_(json_decrefp) json_t *empty = NULL, *res = NULL;
        Driver d = {};
        unsigned iterations = 0;
        int r;

        if (!tasks) {
                empty = json_object();
                if (!empty)
                        return -ENOMEM;
                tasks = empty;
        }
        r = asl_script_check(tasks, ret_error);
        if (r < 0)
                return r;
        r = asl_execution_new(def, "local-run", input, ASL_RUN_START_USEC, opts, &e);
        if (r < 0)
                return r;
        d.e = e;
        d.tasks = tasks;
        d.now = ASL_RUN_START_USEC;
        d.calls = json_object();
        if (!d.calls)
                return -ENOMEM;

        r = step(&d);
        while (r >= 0 && asl_execution_status(e) == ASL_RUNNING) {
                uint64_t deadline = asl_execution_next_deadline(e);
                size_t best = SIZE_MAX;

                if (++iterations > DRIVER_ITERATIONS_MAX) {
                        r = script_fail(ret_error, "the run did not end after %u scripted events",
                                        DRIVER_ITERATIONS_MAX);
                        break;
                }
                for (size_t i = 0; i < d.n_pending; i++)
                        if (best == SIZE_MAX || d.pending[i].at < d.pending[best].at ||
                            (d.pending[i].at == d.pending[best].at && d.pending[i].seq < d.pending[best].seq))
                                best = i;
                if (best == SIZE_MAX && deadline == UINT64_MAX) {
                        r = script_fail(ret_error, "the execution waits for nothing that can happen");
                        break;
                }
                if (best != SIZE_MAX && d.pending[best].at < deadline) {
                        Completion c = d.pending[best];
                        d.pending[best] = d.pending[--d.n_pending];
                        d.now = MAX(d.now, c.at);
                        r = asl_execution_advance_time(e, d.now);
                        if (r >= 0)
                                r = deliver(&d, &c);
                        free(c.token);
                        free(c.function);
                } else {
                        d.now = MAX(d.now, deadline);
                        r = asl_execution_advance_time(e, d.now);
                }
                if (r >= 0)
                        r = step(&d);
        }
        driver_done(&d);
        if (r < 0)
                return r;

        if (asl_execution_status(e) == ASL_SUCCEEDED)
                res = json_pack("{s:s,s:O}", "status", "SUCCEEDED", "output", asl_execution_output(e));
        else {
                const char *cause = asl_execution_cause(e);
                res = json_pack("{s:s,s:s,s:o}", "status", asl_status_to_string(asl_execution_status(e)), "error",
                                asl_execution_error(e), "cause", cause ? json_string(cause) : json_null());
        }
        if (!res)
                return -ENOMEM;
        *ret = TAKE_PTR(res);
        return 0;
}
