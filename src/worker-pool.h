/* SPDX-License-Identifier: MIT */
/*
 * worker-pool.h — CPU-bound work off the loop: a few threads take work
 * items from a queue and run them; what was done comes back to the loop
 * (an eventfd it watches), where each item's done function runs.  For
 * pure work on data the item owns — checking a signature, parsing JSON —
 * never for anything that touches the store, the loop's objects or a
 * library that is not thread-safe.
 *
 * Items are the caller's memory (embedded in its own job), so submitting
 * cannot fail; an item must stay valid until its done function ran.
 *
 * Security: none of its own; the work functions say what they handle.
 */
#pragma once

#include <stdbool.h>
#include <systemd/sd-event.h>

#include "macro.h"

typedef struct WorkerPool WorkerPool;
typedef struct WorkItem WorkItem;

/* Runs on a worker thread (or, with no threads, on the loop). */
typedef void (*WorkFunction)(void *userdata);
/* Runs on the loop once the work is done; cancelled: the pool is going
 * away and the work did not run. */
typedef void (*WorkDone)(void *userdata, bool cancelled);

struct WorkItem {
        WorkItem *next;
        WorkFunction work;
        WorkDone done;
        void *userdata;
};

/* A pool of n_threads threads (0: the work runs on the loop, at once, in
 * worker_pool_submit()).  Threads block every signal.  -errno. */
int worker_pool_new(sd_event *e, unsigned n_threads, WorkerPool **ret);

/* Waits for the items being worked on, calls done for every item (with
 * cancelled for those that never ran), joins the threads. */
WorkerPool *worker_pool_free(WorkerPool *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(WorkerPool *, worker_pool_free);

/* Queue item (the caller's, untouched until done ran) to run work(userdata)
 * on a thread, then done(userdata) on the loop. */
void worker_pool_submit(WorkerPool *p, WorkItem *item, WorkFunction work, WorkDone done, void *userdata);

/* Items queued or running, not yet done. */
unsigned worker_pool_n_pending(const WorkerPool *p);
