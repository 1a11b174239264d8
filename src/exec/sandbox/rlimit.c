/*
 * rlimit: resource limits set on the sandboxed program, soft = hard so it cannot raise them:
 * RLIMIT_NOFILE SBX_NOFILE and no core dumps. Memory, processes and CPU are the cgroup's job
 * (src/exec/cgroup.c): RLIMIT_NPROC counts per uid across sandboxes and is not used.
 */
#include "exec/sandbox/sandbox_internal.h"

#include <errno.h>
#include <sys/resource.h>

int sbx_rlimits_apply(void)
{
    struct rlimit nofile = {SBX_NOFILE, SBX_NOFILE}, core = {0, 0};
    if (setrlimit(RLIMIT_NOFILE, &nofile) < 0 || setrlimit(RLIMIT_CORE, &core) < 0)
        return -errno;
    return 0;
}
