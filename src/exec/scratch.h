/*
 * scratch: the disk-backed /tmp of sandboxed instances, Lambda's "ephemeral storage". Each
 * instance gets its own ext4 filesystem of EphemeralStorage size on a loop device, backed by a
 * sparse file on the data disk that is unlinked as soon as the loop device holds it. What a
 * function writes to /tmp is then limited by that size and lives on disk, not in its memory
 * (a tmpfs would be charged to the instance's memory cgroup: a 128 MB function could not
 * write 128 MB to /tmp).
 *
 * Making one costs about 3 ms (copy the few allocated blocks of a template made once per size
 * with mkfs.ext4, LOOP_CONFIGURE, mount), so a few per size are kept ready, made on the work
 * queue; a cold start takes a ready one, or in a burst makes one on the spot. The mounts live
 * in the daemon's own mount namespace (scratch_isolate_mounts): nothing shows on the host, and
 * a killed daemon leaves nothing behind (its namespace goes, the loop devices clear themselves,
 * the unlinked files are freed).
 *
 * Everything but the work queue's jobs runs on the loop thread.
 */
#ifndef IGNIS_EXEC_SCRATCH_H
#define IGNIS_EXEC_SCRATCH_H

#include <stddef.h>

#include "core/workq.h"

struct scratch_pool;
struct scratch;

/* Moves the calling process into a mount namespace of its own (mounts propagate in from the
 * host, not out). Call before any thread starts. Returns 0 or -errno. */
int scratch_isolate_mounts(void);

/* A pool keeping its files under dir (created). Makes one scratch of default_mb at once to
 * check the host allows it (loop devices, ext4, mkfs.ext4); NULL with the reason in why if
 * not. */
struct scratch_pool *scratch_pool_new(struct workq *wq, const char *dir, unsigned default_mb,
                                      char *why, size_t whylen);
/* Unmounts what it holds. Every scratch must have been released. */
void scratch_pool_free(struct scratch_pool *sp);

/* Scratch of size_mb will be wanted: keep some ready. */
void scratch_prepare(struct scratch_pool *sp, unsigned size_mb);
/* A mounted, empty filesystem of size_mb (mode 1777), or NULL with -errno in *err. */
struct scratch *scratch_take(struct scratch_pool *sp, unsigned size_mb, int *err);
/* Where it is mounted, on the host (in the daemon's mount namespace). */
const char *scratch_path(const struct scratch *s);
/* Unmounts and frees s: on the work queue, or now if now is set (shutdown). */
void scratch_release(struct scratch_pool *sp, struct scratch *s, int now);

#endif
