/* SPDX-License-Identifier: MIT */
/*
 * worker-pool.c — threads, a to-do queue (mutex and condition variable)
 * and a done queue the loop drains when the eventfd says so.
 *
 * Security: see worker-pool.h.
 */
#include "worker-pool.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "alloc.h"
#include "strutil.h"

struct WorkerPool {
        sd_event *event;
        sd_event_source *io;
        int efd;
        pthread_mutex_t lock;
        pthread_cond_t cond;
        /* Under lock: */
        WorkItem *todo, **todo_tail;
        WorkItem *done, **done_tail;
        bool stopping;

        pthread_t *threads;
        unsigned n_threads;
        unsigned n_pending; /* the loop's count: submitted, done not called */
};

static void append(WorkItem **head, WorkItem ***tail, WorkItem *item) {
        item->next = NULL;
        if (!*head)
                *tail = head;
        **tail = item;
        *tail = &item->next;
}

static void *worker(void *userdata) {
        WorkerPool *p = userdata;

        for (;;) {
                WorkItem *item;

                pthread_mutex_lock(&p->lock);
                while (!p->todo && !p->stopping)
                        pthread_cond_wait(&p->cond, &p->lock);
                item = p->todo;
                if (!item) { /* stopping, nothing left for us */
                        pthread_mutex_unlock(&p->lock);
                        return NULL;
                }
                p->todo = item->next;
                pthread_mutex_unlock(&p->lock);

                item->work(item->userdata);

                pthread_mutex_lock(&p->lock);
                append(&p->done, &p->done_tail, item);
                pthread_mutex_unlock(&p->lock);
                eventfd_wake(p->efd);
        }
}

/* Call done for every item the threads finished. */
static void drain(WorkerPool *p) {
        WorkItem *list;

        pthread_mutex_lock(&p->lock);
        list = p->done;
        p->done = NULL;
        pthread_mutex_unlock(&p->lock);
        while (list) {
                WorkItem *item = list;
                list = item->next;
                p->n_pending--;
                item->done(item->userdata, false);
        }
}

static int on_io(sd_event_source *s _unused_, int fd, uint32_t revents _unused_, void *userdata) {
        uint64_t n;

        (void) !read(fd, &n, sizeof n);
        drain(userdata);
        return 0;
}

int worker_pool_new(sd_event *e, unsigned n_threads, WorkerPool **ret) {
        WorkerPool *p = mem_new(WorkerPool, 1);
        sigset_t all, old;
        int r = 0;

        if (!p)
                return -ENOMEM;
        p->event = sd_event_ref(e);
        p->efd = -EBADF;
        pthread_mutex_init(&p->lock, NULL);
        pthread_cond_init(&p->cond, NULL);
        p->todo_tail = &p->todo;
        p->done_tail = &p->done;
        if (n_threads == 0) {
                *ret = p;
                return 0;
        }
        p->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (p->efd < 0)
                r = -errno;
        if (r >= 0)
                r = sd_event_add_io(e, &p->io, p->efd, EPOLLIN, on_io, p);
        if (r >= 0 && !(p->threads = mem_new(pthread_t, n_threads)))
                r = -ENOMEM;
        if (r < 0) {
                worker_pool_free(p);
                return r;
        }
        /* The threads take no signal: the loop handles them all. */
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        for (unsigned i = 0; i < n_threads; i++) {
                r = -pthread_create(&p->threads[i], NULL, worker, p);
                if (r < 0)
                        break;
                (void) pthread_setname_np(p->threads[i], "deliveryd-work");
                p->n_threads++;
        }
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (r < 0) {
                worker_pool_free(p);
                return r;
        }
        *ret = p;
        return 0;
}

WorkerPool *worker_pool_free(WorkerPool *p) {
        WorkItem *cancelled;

        if (!p)
                return NULL;
        pthread_mutex_lock(&p->lock);
        p->stopping = true;
        cancelled = p->todo;
        p->todo = NULL;
        pthread_cond_broadcast(&p->cond);
        pthread_mutex_unlock(&p->lock);
        for (unsigned i = 0; i < p->n_threads; i++)
                pthread_join(p->threads[i], NULL);
        drain(p);
        while (cancelled) {
                WorkItem *item = cancelled;
                cancelled = item->next;
                p->n_pending--;
                item->done(item->userdata, true);
        }
        free(p->threads);
        sd_event_source_disable_unref(p->io);
        if (p->efd >= 0)
                close(p->efd);
        pthread_cond_destroy(&p->cond);
        pthread_mutex_destroy(&p->lock);
        sd_event_unref(p->event);
        free(p);
        return NULL;
}

void worker_pool_submit(WorkerPool *p, WorkItem *item, WorkFunction work, WorkDone done, void *userdata) {
        *item = (WorkItem){ .work = work, .done = done, .userdata = userdata };
        if (p->n_threads == 0) {
                work(userdata);
                done(userdata, false);
                return;
        }
        p->n_pending++;
        pthread_mutex_lock(&p->lock);
        append(&p->todo, &p->todo_tail, item);
        pthread_cond_signal(&p->cond);
        pthread_mutex_unlock(&p->lock);
}

unsigned worker_pool_n_pending(const WorkerPool *p) {
        return p ? p->n_pending : 0;
}
