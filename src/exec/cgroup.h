/*
 * cgroup: per-instance resource limits through Linux control groups, the way Lambda bounds an
 * execution environment: a hard memory limit of MemorySize with swap disabled, a cap on the
 * number of processes, and a CPU quota proportional to memory.
 *
 * What it owns: one parent group per hierarchy, <own>/<name>, where <own> is the cgroup the
 * daemon was started in, and one leaf group per instance below it. Nothing else is touched,
 * except on cgroup v2 when the daemon's own cgroup still holds the daemon (see below).
 *
 *   v1 (controllers mounted separately, e.g. /sys/fs/cgroup/memory): for memory, pids and cpu,
 *       <mount>/<own path for that controller>/<name>/<instance>. memory is required; pids and
 *       cpu are used when mounted. v1 has no rule against processes in inner groups, so the
 *       daemon stays where it is.
 *   v2 (unified hierarchy with "memory" in cgroup.controllers): <own>/<name>/<instance>. Limits
 *       can only be set in a group whose parent lists the controller in cgroup.subtree_control,
 *       and a non-root group that enables controllers for its children must hold no processes
 *       ("no internal processes"). So setup enables +memory +pids +cpu in <own> and in
 *       <own>/<name>; when <own> holds processes that refuse, setup moves the daemon (the whole
 *       process) into <own>/<name>-daemon and tries again. If other processes remain in <own>,
 *       setup fails with -EBUSY: run ignis in a cgroup of its own (systemd: Delegate=yes; a
 *       container: ignis as its only process). Teardown undoes the move when it can. A daemon that
 *       starts inside <X>/<name>-daemon (re-exec) takes <X> as <own>.
 *
 * Leftover instance groups of a previous run under the same name (the daemon crashed) are
 * killed and removed at setup, so <name> must be unique per running daemon.
 *
 * Limits (cgroup_create):
 *   memory: v1 memory.limit_in_bytes, memory.memsw.limit_in_bytes (same value: no swap; when
 *           swap accounting is on), memory.swappiness=0; v2 memory.max, memory.swap.max=0 (when
 *           present), memory.oom.group=1 (the OOM killer takes the whole instance).
 *   pids:   pids.max.
 *   cpu:    a CFS quota over a 100 ms period: v1 cpu.cfs_quota_us, v2 cpu.max. See
 *           cgroup_cpu_millicpus() for the rule.
 *
 * Everything runs on the caller's thread (the pool's loop) and costs a few sysfs writes; only
 * cgroup_destroy waits, at most ~2 ms, for killed processes to leave (then it defers removal to
 * later calls), and cgroup_teardown at most ~1 s. Not thread-safe: one thread per root.
 * Measured (v1, 2 vCPUs, medians): create 80 µs, attach 45 µs (in the child), destroy 35 µs
 * empty / 120 µs after a child ran, peak read 1 µs.
 */
#ifndef IGNIS_EXEC_CGROUP_H
#define IGNIS_EXEC_CGROUP_H

#include <stdint.h>

#define CGROUP_DEFAULT_PIDS_MAX 1024
#define CGROUP_MIN_MILLICPUS 100        /* 10% of a CPU, the floor of the derived quota */
#define CGROUP_MB_PER_VCPU 1769         /* Lambda: one full vCPU at 1,769 MB */
#define CGROUP_CPU_UNLIMITED UINT32_MAX /* cpu_millicpus: no quota */

struct cgroup_root;
struct cgroup;

struct cgroup_limits {
    uint64_t memory_bytes;  /* hard limit, swap excluded; 0: none */
    uint32_t pids_max;      /* 0: CGROUP_DEFAULT_PIDS_MAX */
    uint32_t cpu_millicpus; /* 1000 = one CPU; 0: derived from memory_bytes; or CPU_UNLIMITED */
};

/*
 * Detects cgroup v1/v2 and creates the parent group(s) named name (one path component, e.g.
 * "ignis") below the daemon's own cgroup. Returns 0 and *out, or -errno with *out = NULL and
 * the reason logged (warn): -ENOENT no memory controller mounted or delegated, -EACCES/-EPERM
 * not allowed (not root, no delegation), -EROFS read-only cgroupfs, -EBUSY (v2) other
 * processes share the daemon's cgroup. The daemon then runs instances without limits.
 */
int cgroup_setup(struct cgroup_root **out, const char *name);
/* Destroy every cgroup first. Kills and removes any group still there (leftovers), removes
 * the parent group(s), frees root. NULL is ok. */
void cgroup_teardown(struct cgroup_root *root);
/* "cgroup v1 (memory, pids, cpu) at /sys/fs/cgroup/memory/.../ignis"; "none" for NULL. */
const char *cgroup_describe(const struct cgroup_root *root);

/*
 * Creates the group of one instance (id: one path component, unique among live instances,
 * e.g. "i42") with the given limits, and pre-opens what the child needs to enter it. Returns 0
 * and *out, or -errno (logged): -EEXIST id in use, -EINVAL bad id.
 */
int cgroup_create(struct cgroup_root *root, const char *id, const struct cgroup_limits *lim,
                  struct cgroup **out);

/*
 * In the child, between fork and exec: moves the calling process into cg by writing "0" to
 * fds opened by cgroup_create (v1: each hierarchy's "tasks", which moves the child's one thread
 * without the global lock whose grace-period wait costs 10-15 ms; v2: cgroup.procs, which may
 * pay that wait). Async-signal-safe: only write(). The child must still be single-threaded.
 * Returns 0 or -errno of the failed write; the child should then report the error and _exit
 * rather than run without limits.
 */
/* For groups made ahead: cgroup_create's group without its memory limit, made without
 * touching what cgroup_create and cgroup_destroy share, so it may run on a worker thread
 * while they run on another; cgroup_set_memory gives it the limit when it is taken. */
int cgroup_prepare(struct cgroup_root *root, const char *id, struct cgroup **out);
int cgroup_set_memory(struct cgroup *cg, uint64_t bytes);
int cgroup_attach_self(const struct cgroup *cg);
/* The open fds cgroup_attach_self writes to (at most 3: one per v1 hierarchy), for a process
 * that enters the group without this code (a sandbox child): writing "0" to each moves the
 * writer. Valid until cgroup_attach_done. */
int cgroup_attach_fds(const struct cgroup *cg, int fds[3]);
/* In the parent, after fork: closes the fds the child used to attach (saves fds; optional). */
void cgroup_attach_done(struct cgroup *cg);

/* Changes the group's CPU quota (millicpus as in cgroup_limits; CGROUP_CPU_UNLIMITED lifts it):
 * one write. -ENOTSUP without the cpu controller. */
int cgroup_set_cpu(struct cgroup *cg, uint32_t millicpus);

/* Peak memory of the group in bytes (v1 memory.max_usage_in_bytes; v2 memory.peak, or
 * memory.current before Linux 5.19); one pread, 0 on error. Page cache counts. */
uint64_t cgroup_peak_memory(const struct cgroup *cg);
/* How many times the OOM killer fired in the group (v1 memory.oom_control oom_kill, or 1 if
 * memory.failcnt > 0 on kernels before 4.13; v2 memory.events oom_kill); -errno on error. */
int cgroup_oom_killed(const struct cgroup *cg);
/* The group's directory in the memory hierarchy, for logs. */
const char *cgroup_path(const struct cgroup *cg);

/* SIGKILLs every process in cg now, including those that left the instance's process group
 * (v2 cgroup.kill; v1: each pid in cgroup.procs, one pass). The group stays. */
void cgroup_kill(struct cgroup *cg);

/*
 * SIGKILLs whatever still runs in cg (v2 cgroup.kill, else each pid in cgroup.procs), removes
 * the group and frees cg. Call it after the instance's main process was reaped; processes it
 * left behind are killed here. If they take longer than ~2 ms to exit, removal is retried by
 * later cgroup_create/cgroup_destroy calls and by cgroup_teardown. NULL is ok.
 */
void cgroup_destroy(struct cgroup *cg);

/*
 * The CPU share for a memory size, in thousandths of a CPU: memory_mb * 1000 / 1769 (Lambda's
 * one vCPU at 1,769 MB), at least CGROUP_MIN_MILLICPUS so that a 128 MB function still starts
 * in reasonable time (Lambda's own 128 MB share is ~7%). 0 bytes (no memory limit) gives
 * CGROUP_CPU_UNLIMITED. The quota is this share of each 100 ms period.
 */
uint32_t cgroup_cpu_millicpus(uint64_t memory_bytes);

#endif
