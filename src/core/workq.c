/*
 * workq: fixed worker threads fed from a mutex-protected FIFO (see workq.h).
 * Owns the threads and queued jobs; completion is handed to the loop.
 */
#include "core/workq.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

struct job {
    workq_fn work, done;
    void *arg;
    struct job *next;
};

struct workq {
    struct loop *loop;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct job *head, *tail;
    int stopping;
    int nthreads;
    pthread_t threads[16];
};

static void run_done(struct loop *loop, void *arg)
{
    (void)loop;
    struct job *j = arg;
    j->done(j->arg);
    free(j);
}

static void *worker(void *arg)
{
    struct workq *wq = arg;
    for (;;) {
        pthread_mutex_lock(&wq->lock);
        while (!wq->head && !wq->stopping)
            pthread_cond_wait(&wq->cond, &wq->lock);
        struct job *j = wq->head;
        if (!j) {
            pthread_mutex_unlock(&wq->lock);
            return NULL;
        }
        wq->head = j->next;
        if (!wq->head)
            wq->tail = NULL;
        pthread_mutex_unlock(&wq->lock);
        j->work(j->arg);
        /* Always hand back: done() owns the job's argument. At shutdown the
         * loop runs these with loop_run_posted after workq_free. */
        if (loop_post(wq->loop, run_done, j) < 0)
            free(j);
    }
}

struct workq *workq_new(struct loop *loop, int threads)
{
    struct workq *wq = calloc(1, sizeof(*wq));
    if (!wq)
        return NULL;
    wq->loop = loop;
    pthread_mutex_init(&wq->lock, NULL);
    pthread_cond_init(&wq->cond, NULL);
    if (threads > 16)
        threads = 16;
    for (int i = 0; i < threads; i++)
        if (pthread_create(&wq->threads[wq->nthreads], NULL, worker, wq) == 0)
            wq->nthreads++;
    return wq;
}

void workq_free(struct workq *wq)
{
    if (!wq)
        return;
    pthread_mutex_lock(&wq->lock);
    wq->stopping = 1;
    pthread_cond_broadcast(&wq->cond);
    pthread_mutex_unlock(&wq->lock);
    for (int i = 0; i < wq->nthreads; i++)
        pthread_join(wq->threads[i], NULL);
    pthread_mutex_destroy(&wq->lock);
    pthread_cond_destroy(&wq->cond);
    free(wq);
}

int workq_submit(struct workq *wq, workq_fn work, workq_fn done, void *arg)
{
    struct job *j = malloc(sizeof(*j));
    if (!j)
        return -ENOMEM;
    j->work = work;
    j->done = done;
    j->arg = arg;
    j->next = NULL;
    pthread_mutex_lock(&wq->lock);
    if (wq->tail)
        wq->tail->next = j;
    else
        wq->head = j;
    wq->tail = j;
    pthread_cond_signal(&wq->cond);
    pthread_mutex_unlock(&wq->lock);
    return 0;
}
