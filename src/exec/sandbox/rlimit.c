/*
 * rlimit: resource limits set on the sandboxed program, soft = hard so it cannot raise them:
 * RLIMIT_NOFILE SBX_NOFILE and no core dumps. Memory, processes and CPU are the cgroup's job
 * (src/exec/cgroup.c); without one the caller may ask for RLIMIT_DATA (private writable memory,
 * per process: Python raises MemoryError, Node aborts) and RLIMIT_NPROC (counted per uid in the
 * sandbox's own user namespace when it has one, else across sandboxes of the same uid).
 */
#include "exec/sandbox/sandbox_internal.h"

#include <errno.h>
#include <sys/resource.h>

int sbx_rlimits_apply(uint64_t data_bytes, unsigned nproc)
{
    struct rlimit nofile = {SBX_NOFILE, SBX_NOFILE}, core = {0, 0};
    struct rlimit data = {data_bytes, data_bytes}, procs = {nproc, nproc};
    if (setrlimit(RLIMIT_NOFILE, &nofile) < 0 || setrlimit(RLIMIT_CORE, &core) < 0 ||
        (data_bytes && setrlimit(RLIMIT_DATA, &data) < 0) ||
        (nproc && setrlimit(RLIMIT_NPROC, &procs) < 0))
        return -errno;
    return 0;
}
