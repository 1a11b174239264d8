/*
 * prepared: resources made ahead for cold starts. What costs a millisecond or more to make
 * (an instance's /tmp filesystem, its network namespace) is made on the work queue and kept in
 * small ready sets, one per key (a size; 0 when there is only one kind); a cold start takes a
 * ready one, and a burst that outruns them makes one on the spot. A resource is up to two file
 * descriptors and an object (an instance's cgroup). Everything but kind->make runs on the loop
 * thread.
 */
#ifndef IGNIS_EXEC_PREPARED_H
#define IGNIS_EXEC_PREPARED_H

#include "core/workq.h"

struct prepared {
    int fd[2]; /* -1 where unused */
    void *ptr; /* or NULL; released by kind->release */
};

struct prepared_kind {
    const char *what; /* for logs: "/tmp filesystem", "network namespace" */
    /* Makes one resource for key; any thread, concurrently. Returns 0 or -errno. */
    int (*make)(void *arg, unsigned key, struct prepared *out);
    /* Releases out->ptr of one the set drops (loop thread); NULL when ptr is never used. A
     * failing make releases its own. */
    void (*release)(void *arg, struct prepared *p);
    void *arg;
    unsigned per_key; /* how many to keep ready per key */
};

struct prepared_set;

struct prepared_set *prepared_new(struct workq *wq, const struct prepared_kind *kind);
/* Closes what is ready. Jobs still queued must have finished (workq_free, loop_run_posted). */
void prepared_free(struct prepared_set *ps);
/* Resources for key will be wanted: start making some. */
void prepared_want(struct prepared_set *ps, unsigned key);
/* A resource for key, owned by the caller (prepared_close, and its ptr), or -errno. Call
 * prepared_want afterwards to replace it: not at once, so that making the next one does not compete
 * with the cold start that took this one. */
int prepared_take(struct prepared_set *ps, unsigned key, struct prepared *out);
void prepared_close(struct prepared *p);

#endif
