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
 * made once per size with mkfs.ext4, LOOP_CONFIGURE, mount), so the pool keeps some ready
 * (src/exec/prepared).
 */
#ifndef IGNIS_EXEC_SCRATCH_H
#define IGNIS_EXEC_SCRATCH_H

#include <stddef.h>

struct scratch;
struct prepared;

/* Keeps its files under dir (created) and makes one filesystem of probe_mb to check the host
 * allows it (root, loop devices, ext4, mkfs.ext4); NULL with the reason in why if not. */
struct scratch *scratch_new(const char *dir, unsigned probe_mb, char *why, size_t whylen);
void scratch_free(struct scratch *sp);

/* A prepared_kind make(): an empty filesystem of size_mb (root dir mode 1777) as a detached
 * mount in out->fd[0] (O_CLOEXEC). Any thread. Returns 0 or -errno. */
int scratch_make(void *scratch, unsigned size_mb, struct prepared *out);

#endif
