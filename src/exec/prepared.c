/*
 * prepared: ready sets of resources made ahead on the work queue (see prepared.h). A set keeps
 * at most MAX_KEYS keys and forgets the least recently used one beyond that.
 */
#include "exec/prepared.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"

#define MAX_KEYS 16
#define MAX_PER_KEY 8

struct key_slot {
    unsigned key;
    struct prepared ready[MAX_PER_KEY];
    unsigned nready, nmaking;
    int64_t last_used_us;
};

struct prepared_set {
    struct workq *wq;
    struct prepared_kind kind;
    struct key_slot slots[MAX_KEYS];
    unsigned nslots;
    int warned; /* a failure was logged */
};

struct make_job {
    struct prepared_set *ps;
    unsigned key;
    int rc;
    struct prepared made;
};

void prepared_close(struct prepared *p)
{
    for (int i = 0; i < 2; i++)
        if (p->fd[i] >= 0) {
            close(p->fd[i]);
            p->fd[i] = -1;
        }
}

/* Drops a ready resource of the set's own. */
static void discard(struct prepared_set *ps, struct prepared *p)
{
    if (p->ptr && ps->kind.release)
        ps->kind.release(ps->kind.arg, p);
    p->ptr = NULL;
    prepared_close(p);
}

static struct key_slot *slot_for(struct prepared_set *ps, unsigned key, int create)
{
    for (unsigned i = 0; i < ps->nslots; i++)
        if (ps->slots[i].key == key)
            return &ps->slots[i];
    if (!create)
        return NULL;
    if (ps->nslots == MAX_KEYS) {
        struct key_slot *old = NULL;
        for (unsigned i = 0; i < ps->nslots; i++)
            if (!ps->slots[i].nmaking && (!old || ps->slots[i].last_used_us < old->last_used_us))
                old = &ps->slots[i];
        if (!old)
            return NULL;
        while (old->nready > 0)
            discard(ps, &old->ready[--old->nready]);
        *old = ps->slots[--ps->nslots];
    }
    struct key_slot *slot = &ps->slots[ps->nslots++];
    *slot = (struct key_slot){.key = key};
    return slot;
}

static int make_one(struct prepared_set *ps, unsigned key, struct prepared *out)
{
    *out = (struct prepared){.fd = {-1, -1}};
    int rc = ps->kind.make(ps->kind.arg, key, out);
    if (rc < 0)
        prepared_close(out);
    return rc;
}

static void make_work(void *arg)
{
    struct make_job *job = arg;
    job->rc = make_one(job->ps, job->key, &job->made);
}

static void make_done(void *arg)
{
    struct make_job *job = arg;
    struct prepared_set *ps = job->ps;
    struct key_slot *slot = slot_for(ps, job->key, 0);
    if (slot)
        slot->nmaking--;
    if (job->rc < 0 && !ps->warned) {
        log_warn("cannot prepare a %s ahead (%u): %s", ps->kind.what, job->key, strerror(-job->rc));
        ps->warned = 1;
    }
    if (job->rc == 0) {
        if (slot && slot->nready < ps->kind.per_key)
            slot->ready[slot->nready++] = job->made;
        else
            discard(ps, &job->made);
    }
    free(job);
}

static void refill(struct prepared_set *ps, struct key_slot *slot)
{
    slot->last_used_us = mono_us();
    while (slot->nready + slot->nmaking < ps->kind.per_key) {
        struct make_job *job = calloc(1, sizeof(*job));
        if (!job)
            return;
        job->ps = ps;
        job->key = slot->key;
        if (workq_submit(ps->wq, make_work, make_done, job) < 0) {
            free(job);
            return;
        }
        slot->nmaking++;
    }
}

struct prepared_set *prepared_new(struct workq *wq, const struct prepared_kind *kind)
{
    struct prepared_set *ps = calloc(1, sizeof(*ps));
    if (!ps)
        return NULL;
    ps->wq = wq;
    ps->kind = *kind;
    if (ps->kind.per_key > MAX_PER_KEY)
        ps->kind.per_key = MAX_PER_KEY;
    return ps;
}

void prepared_free(struct prepared_set *ps)
{
    if (!ps)
        return;
    for (unsigned i = 0; i < ps->nslots; i++)
        while (ps->slots[i].nready > 0)
            discard(ps, &ps->slots[i].ready[--ps->slots[i].nready]);
    free(ps);
}

void prepared_want(struct prepared_set *ps, unsigned key)
{
    struct key_slot *slot = slot_for(ps, key, 1);
    if (slot)
        refill(ps, slot);
}

int prepared_take(struct prepared_set *ps, unsigned key, struct prepared *out)
{
    struct key_slot *slot = slot_for(ps, key, 1);
    int rc = 0;
    if (slot && slot->nready > 0)
        *out = slot->ready[--slot->nready];
    else
        rc = make_one(ps, key, out); /* a burst outran the ready ones */
    return rc;
}
