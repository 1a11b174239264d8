/*
 * workq: a few worker threads for blocking work (disk-heavy code package
 * unpacking), so the event loop never waits on disk. A job's work() runs on a
 * worker; its done() runs afterwards on the loop thread (through loop_post).
 * Jobs must not touch loop-owned state in work().
 */
#ifndef IGNIS_CORE_WORKQ_H
#define IGNIS_CORE_WORKQ_H

#include "core/loop.h"

struct workq;

typedef void (*workq_fn)(void *arg);

struct workq *workq_new(struct loop *loop, int threads);
/* Finishes every queued job and joins the workers. Their done callbacks are
 * queued on the loop: run them with loop_run_posted before freeing what
 * they touch. */
void workq_free(struct workq *wq);
int workq_submit(struct workq *wq, workq_fn work, workq_fn done, void *arg);

#endif
