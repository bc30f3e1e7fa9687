/* SPDX-License-Identifier: MIT */
/*
 * test-worker-pool.c — work runs on another thread and its done function
 * on the loop, in any order but each exactly once; with no threads both
 * run at once; freeing the pool waits for the running work and cancels
 * what is queued.
 */
#include "test-helpers.h"

#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include "worker-pool.h"

#define N_ITEMS 200

typedef struct Job {
        WorkItem item;
        pthread_t worked_on;
        atomic_bool worked;
        int done_calls;
        bool cancelled;
        unsigned spin_ms;
} Job;

static pthread_t loop_thread;
static atomic_int n_done;

static void work(void *userdata) {
        Job *j = userdata;

        if (j->spin_ms)
                usleep(j->spin_ms * 1000);
        j->worked_on = pthread_self();
        atomic_store(&j->worked, true);
}

static void done(void *userdata, bool cancelled) {
        Job *j = userdata;

        assert_true(pthread_equal(pthread_self(), loop_thread));
        j->done_calls++;
        j->cancelled = cancelled;
        atomic_fetch_add(&n_done, 1);
}

static void test_threads(void **state _unused_) {
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        static Job jobs[N_ITEMS];
        WorkerPool *p = NULL;

        loop_thread = pthread_self();
        atomic_store(&n_done, 0);
        assert_int_equal(sd_event_new(&e), 0);
        assert_int_equal(worker_pool_new(e, 3, &p), 0);
        for (int i = 0; i < N_ITEMS; i++)
                worker_pool_submit(p, &jobs[i].item, work, done, &jobs[i]);
        assert_true(worker_pool_n_pending(p) > 0);
        for (int i = 0; i < 10000 && atomic_load(&n_done) < N_ITEMS; i++)
                assert_true(sd_event_run(e, 100 * 1000) >= 0);
        assert_int_equal(atomic_load(&n_done), N_ITEMS);
        assert_int_equal(worker_pool_n_pending(p), 0);
        for (int i = 0; i < N_ITEMS; i++) {
                assert_true(atomic_load(&jobs[i].worked));
                assert_false(pthread_equal(jobs[i].worked_on, loop_thread));
                assert_int_equal(jobs[i].done_calls, 1);
                assert_false(jobs[i].cancelled);
        }
        worker_pool_free(p);
}

static void test_inline(void **state _unused_) {
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        Job j = {};
        WorkerPool *p = NULL;

        loop_thread = pthread_self();
        assert_int_equal(sd_event_new(&e), 0);
        assert_int_equal(worker_pool_new(e, 0, &p), 0);
        worker_pool_submit(p, &j.item, work, done, &j);
        /* ran at once, here */
        assert_int_equal(j.done_calls, 1);
        assert_true(pthread_equal(j.worked_on, loop_thread));
        assert_int_equal(worker_pool_n_pending(p), 0);
        worker_pool_free(p);
}

static void test_free_cancels_queued(void **state _unused_) {
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        static Job jobs[20];
        WorkerPool *p = NULL;
        int cancelled = 0, worked = 0;

        loop_thread = pthread_self();
        assert_int_equal(sd_event_new(&e), 0);
        assert_int_equal(worker_pool_new(e, 1, &p), 0);
        for (int i = 0; i < 20; i++) {
                jobs[i] = (Job){ .spin_ms = 20 };
                worker_pool_submit(p, &jobs[i].item, work, done, &jobs[i]);
        }
        /* One thread, 20 ms each: freeing now finds most still queued. */
        worker_pool_free(p);
        for (int i = 0; i < 20; i++) {
                assert_int_equal(jobs[i].done_calls, 1);
                assert_int_equal(jobs[i].cancelled, !atomic_load(&jobs[i].worked));
                cancelled += jobs[i].cancelled;
                worked += atomic_load(&jobs[i].worked);
        }
        assert_int_equal(cancelled + worked, 20);
        assert_true(cancelled > 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_threads),
                cmocka_unit_test(test_inline),
                cmocka_unit_test(test_free_cancels_queued),
        };

        alloc_init();
        return cmocka_run_group_tests(tests, NULL, NULL);
}
