/*
 * scratch: the disk-backed /tmp of sandboxed instances, Lambda's "ephemeral storage". Each
 * instance gets its own ext4 filesystem of EphemeralStorage size on a loop device, backed by a
 * sparse file on the data disk that is unlinked as soon as the loop device holds it. What a
 * function writes to /tmp is then limited by that size and lives on disk, not in its memory
 * (a tmpfs would be charged to the instance's memory cgroup: a 128 MB function could not
 * write 128 MB to /tmp).
 *
 * A filesystem is handed out as a detached mount (fsmount), attached nowhere on the host: the
 * sandbox moves it to /tmp inside the instance's mount namespace, and it goes away with that
 * namespace (the loop device clears itself, the unlinked file is freed) — also when the
 * daemon is killed. Making one costs about 3 ms (copy the few allocated blocks of a template
 * made once per size with mkfs.ext4, LOOP_CONFIGURE, mount), so a few per size are kept
 * ready, made on the work queue; a cold start takes a ready one, or in a burst makes one on
 * the spot.
 *
 * Everything but the work queue's jobs runs on the loop thread.
 */
#ifndef IGNIS_EXEC_SCRATCH_H
#define IGNIS_EXEC_SCRATCH_H

#include <stddef.h>

#include "core/workq.h"

struct scratch_pool;

/* A pool keeping its files under dir (created). Makes one filesystem of default_mb at once to
 * check the host allows it (root, loop devices, ext4, mkfs.ext4); NULL with the reason in why
 * if not. */
struct scratch_pool *scratch_pool_new(struct workq *wq, const char *dir, unsigned default_mb,
                                      char *why, size_t whylen);
/* Closes the filesystems it holds ready. */
void scratch_pool_free(struct scratch_pool *sp);

/* Filesystems of size_mb will be wanted: keep some ready. */
void scratch_prepare(struct scratch_pool *sp, unsigned size_mb);
/* An empty filesystem of size_mb (root dir mode 1777) as a detached mount fd (O_CLOEXEC),
 * owned by the caller, or -errno. */
int scratch_take(struct scratch_pool *sp, unsigned size_mb);

#endif
