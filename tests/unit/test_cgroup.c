/*
 * test_cgroup: per-instance cgroups (src/exec/cgroup.c) against the real kernel. Needs root and
 * a memory controller (cgroup v1, or v2 with the test in a delegated cgroup of its own, e.g.
 * `systemd-run --scope -p Delegate=yes`); otherwise every test but the pure ones is skipped
 * with the reason. Children fork from the test, attach the way the pool's children do
 * (cgroup_attach_self between fork and exit), and are judged by how they die: a child over its
 * memory limit must die of SIGKILL with the OOM kill counted, one under it must live and show
 * in the peak; forking past pids.max must fail with EAGAIN; destroy must leave no directory.
 */
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/util.h"
#include "exec/cgroup.h"

#define MB (1024ull * 1024)

static struct cgroup_root *root;
static int setup_rc;
static char name[64];
static char parent[4096]; /* the parent group in the memory hierarchy, from the first path */

static int group_setup(void **state)
{
    (void)state;
    snprintf(name, sizeof(name), "ignis-test-%d", (int)getpid());
    setup_rc = cgroup_setup(&root, name);
    if (setup_rc == 0)
        print_message("cgroup: %s\n", cgroup_describe(root));
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    cgroup_teardown(root);
    if (parent[0]) {
        struct stat st;
        if (stat(parent, &st) == 0) {
            print_message("parent group %s still exists after teardown\n", parent);
            return -1;
        }
    }
    return 0;
}

static void need_cgroups(void)
{
    if (root)
        return;
    print_message("cgroups not usable here: %s (needs root and a memory controller: cgroup v1, "
                  "or v2 run in a delegated cgroup of its own); skipping\n",
                  strerror(-setup_rc));
    skip();
}

static struct cgroup *create(const char *id, uint64_t memory, uint32_t pids)
{
    struct cgroup_limits lim = {.memory_bytes = memory, .pids_max = pids};
    struct cgroup *cg = NULL;
    int rc = cgroup_create(root, id, &lim, &cg);
    if (rc < 0)
        fail_msg("cgroup_create(%s): %s", id, strerror(-rc));
    if (!parent[0]) {
        snprintf(parent, sizeof(parent), "%s", cgroup_path(cg));
        *strrchr(parent, '/') = '\0';
    }
    return cg;
}

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* Destroys cg and checks its directory is gone. */
static void destroy_gone(struct cgroup *cg)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s", cgroup_path(cg));
    assert_true(exists(path));
    cgroup_destroy(cg);
    assert_false(exists(path));
}

/* Touches n bytes of fresh anonymous memory, page by page. */
static void touch(size_t n)
{
    char *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        _exit(4);
    for (size_t i = 0; i < n; i += 4096)
        p[i] = 1;
}

/* Whether the root limits controller ctrl ("cgroup v1 (memory, pids, cpu) at ..."). */
static int uses(const char *ctrl)
{
    const char *d = cgroup_describe(root), *end = strchr(d, ')');
    for (const char *p = strstr(d, ctrl); p && p < end; p = strstr(p + 1, ctrl))
        if ((p[-1] == '(' || p[-1] == ' ') && (p[strlen(ctrl)] == ',' || p[strlen(ctrl)] == ')'))
            return 1;
    return 0;
}

/* Whether /proc/self/cgroup puts us in /<name>/<id> for memory, pids and cpu (v1: each line
 * naming one of them; v2: the "0::" line). */
static int in_group(const char *id)
{
    char want[128], line[1024];
    snprintf(want, sizeof(want), "/%s/%s", name, id);
    int v1 = strstr(cgroup_describe(root), "v1") != NULL, seen = 0, ok = 1;
    FILE *f = fopen("/proc/self/cgroup", "re");
    if (!f)
        return 0;
    while (fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\n")] = '\0';
        char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2)
            continue;
        *c2 = '\0';
        int ours = !v1 && strcmp(line, "0:") == 0 && c1[1] == '\0';
        char *save = NULL;
        for (char *t = strtok_r(c1 + 1, ",", &save); v1 && t; t = strtok_r(NULL, ",", &save))
            ours |= strcmp(t, "memory") == 0 || (strcmp(t, "pids") == 0 && uses("pids")) ||
                    (strcmp(t, "cpu") == 0 && uses("cpu"));
        if (!ours)
            continue;
        size_t n = strlen(c2 + 1), w = strlen(want);
        seen++;
        ok &= n >= w && strcmp(c2 + 1 + n - w, want) == 0;
    }
    fclose(f);
    return seen > 0 && ok;
}

/* Forks a child that attaches to cg and runs body; returns its wait status. */
static int run_child(struct cgroup *cg, const char *id, void (*body)(void))
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (cgroup_attach_self(cg) < 0)
            _exit(2);
        if (!in_group(id))
            _exit(3);
        body();
        _exit(0);
    }
    cgroup_attach_done(cg);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return status;
}

/*=== Tests ===*/

static void test_cpu_rule(void **state)
{
    (void)state;
    assert_int_equal(cgroup_cpu_millicpus(0), CGROUP_CPU_UNLIMITED);
    assert_int_equal(cgroup_cpu_millicpus(128 * MB), CGROUP_MIN_MILLICPUS); /* 72 → floor */
    assert_int_equal(cgroup_cpu_millicpus(176 * MB), 100);
    assert_int_equal(cgroup_cpu_millicpus(512 * MB), 289);
    assert_int_equal(cgroup_cpu_millicpus(1769 * MB), 1000);
    assert_int_equal(cgroup_cpu_millicpus(3538 * MB), 2000);
    assert_int_equal(cgroup_cpu_millicpus(10240 * MB), 5788);
    assert_int_equal(cgroup_cpu_millicpus(UINT64_MAX), CGROUP_CPU_UNLIMITED - 1);
}

static void body_200mb(void)
{
    touch(200 * MB);
}

static void test_oom_killed(void **state)
{
    (void)state;
    need_cgroups();
    struct cgroup *cg = create("oom", 64 * MB, 0);
    assert_int_equal(cgroup_oom_killed(cg), 0);
    int status = run_child(cg, "oom", body_200mb);
    if (!WIFSIGNALED(status))
        fail_msg("child over its limit was not killed: exit %d", WEXITSTATUS(status));
    assert_int_equal(WTERMSIG(status), SIGKILL);
    assert_true(cgroup_oom_killed(cg) >= 1);
    uint64_t peak = cgroup_peak_memory(cg);
    assert_true(peak <= 64 * MB);
    assert_true(peak >= 60 * MB);
    destroy_gone(cg);
}

static void body_20mb(void)
{
    touch(20 * MB);
}

static void test_under_limit_survives(void **state)
{
    (void)state;
    need_cgroups();
    struct cgroup *cg = create("small", 64 * MB, 0);
    int status = run_child(cg, "small", body_20mb);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0); /* 3: not in the group */
    uint64_t peak = cgroup_peak_memory(cg);
    if (peak < 20 * MB || peak > 64 * MB)
        fail_msg("peak %llu bytes", (unsigned long long)peak);
    assert_int_equal(cgroup_oom_killed(cg), 0);
    destroy_gone(cg);
}

/* The limits are in the files: memory, swap, pids, cpu. */
/* Reads dir/file (first line) into text; 0, or -1 when it cannot be opened. */
static int read_line(const char *dir, const char *file, char *text, size_t n)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/%s", dir, file);
    FILE *f = fopen(path, "re");
    if (!f)
        return -1;
    if (!fgets(text, (int)n, f))
        text[0] = '\0';
    fclose(f);
    return 0;
}

/* v1: the group's directory in the hierarchy of ctrl, if mounted the usual way
 * (/sys/fs/cgroup/<ctrl> + our own group for ctrl); "" otherwise. */
static void v1_dir(const char *ctrl, const char *id, char *out, size_t n)
{
    char line[1024];
    out[0] = '\0';
    FILE *f = fopen("/proc/self/cgroup", "re");
    if (!f)
        return;
    while (fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\n")] = '\0';
        char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2)
            continue;
        *c2 = '\0';
        if (strcmp(c1 + 1, ctrl) == 0)
            snprintf(out, n, "/sys/fs/cgroup/%s%s/%s/%s", ctrl, strcmp(c2 + 1, "/") ? c2 + 1 : "",
                     name, id);
    }
    fclose(f);
    if (!exists(out))
        out[0] = '\0';
}

static void test_limits_written(void **state)
{
    (void)state;
    need_cgroups();
    struct cgroup *cg = create("files", 128 * MB, 33);
    char text[64], dir[4096];
    int v2 = strstr(cgroup_describe(root), "v2") != NULL;
    const char *mem = cgroup_path(cg);
    assert_int_equal(read_line(mem, v2 ? "memory.max" : "memory.limit_in_bytes", text, 64), 0);
    assert_int_equal(strtoull(text, NULL, 10), 128 * MB);
    /* swap off where the kernel accounts it */
    if (read_line(mem, v2 ? "memory.swap.max" : "memory.memsw.limit_in_bytes", text, 64) == 0)
        assert_int_equal(strtoull(text, NULL, 10), v2 ? 0 : 128 * MB);
    if (!v2 && read_line(mem, "memory.swappiness", text, 64) == 0)
        assert_string_equal(text, "0\n");
    /* 33 pids; 128 MB gets the 10% floor: 10 ms of every 100 ms */
    const char *files[][3] = {
        {"pids", "pids.max", "33\n"},
        {"cpu", v2 ? "cpu.max" : "cpu.cfs_quota_us", v2 ? "10000 100000\n" : "10000\n"}};
    for (size_t i = 0; i < 2; i++) {
        if (!uses(files[i][0]))
            continue;
        if (v2)
            snprintf(dir, sizeof(dir), "%s", mem);
        else
            v1_dir(files[i][0], "files", dir, sizeof(dir));
        if (!dir[0] || read_line(dir, files[i][1], text, 64) < 0) {
            print_message("cannot find %s of the %s hierarchy; not checked\n", files[i][1],
                          files[i][0]);
            continue;
        }
        assert_string_equal(text, files[i][2]);
    }
    destroy_gone(cg);
}

/* A group made ahead (on another thread) gets its memory limit when taken, and then holds
 * like any other: the limit is in the file and a child over it is OOM-killed. */
static void *prepare_on_thread(void *arg)
{
    struct cgroup **out = arg;
    return (void *)(intptr_t)cgroup_prepare(root, "ahead", out);
}

static void test_prepared_then_limited(void **state)
{
    (void)state;
    need_cgroups();
    struct cgroup *cg = NULL;
    pthread_t t;
    void *ret;
    assert_int_equal(pthread_create(&t, NULL, prepare_on_thread, &cg), 0);
    pthread_join(t, &ret);
    assert_int_equal((intptr_t)ret, 0);
    int v2 = strstr(cgroup_describe(root), "v2") != NULL;
    char text[64];
    const char *mem = cgroup_path(cg);
    assert_int_equal(read_line(mem, v2 ? "memory.max" : "memory.limit_in_bytes", text, 64), 0);
    assert_true(v2 ? strcmp(text, "max\n") == 0 : strtoull(text, NULL, 10) > 1024 * MB);
    if (!v2 && read_line(mem, "memory.swappiness", text, 64) == 0)
        assert_string_equal(text, "0\n");
    assert_int_equal(cgroup_set_memory(cg, 64 * MB), 0);
    assert_int_equal(read_line(mem, v2 ? "memory.max" : "memory.limit_in_bytes", text, 64), 0);
    assert_int_equal(strtoull(text, NULL, 10), 64 * MB);
    int status = run_child(cg, "ahead", body_200mb);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    assert_true(cgroup_oom_killed(cg) >= 1);
    destroy_gone(cg);
}

static void test_pids_limit(void **state)
{
    (void)state;
    need_cgroups();
    if (!uses("pids")) {
        print_message("no pids controller: %s\n", cgroup_describe(root));
        skip();
    }
    struct cgroup *cg = create("pids", 64 * MB, 20);
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (cgroup_attach_self(cg) < 0)
            _exit(2);
        int made = 0, err = 0;
        for (int i = 0; i < 100; i++) {
            pid_t c = fork();
            if (c == 0) {
                pause();
                _exit(0);
            }
            if (c < 0) {
                err = errno;
                break;
            }
            made++;
        }
        int msg[2] = {made, err};
        if (write(p[1], msg, sizeof(msg)) != sizeof(msg))
            _exit(5);
        pause();
        _exit(0);
    }
    cgroup_attach_done(cg);
    close(p[1]);
    int msg[2] = {-1, -1};
    assert_int_equal(read(p[0], msg, sizeof(msg)), sizeof(msg));
    close(p[0]);
    print_message("forked %d of 100 before fork failed: %s\n", msg[0], strerror(msg[1]));
    assert_int_equal(msg[1], EAGAIN);
    assert_true(msg[0] <= 19 && msg[0] >= 10);
    /* 21 processes alive: destroy kills them all */
    char path[4096];
    snprintf(path, sizeof(path), "%s", cgroup_path(cg));
    int64_t t0 = mono_us();
    cgroup_destroy(cg);
    int64_t t1 = mono_us();
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGKILL);
    print_message("destroy with 20 live processes: %lld us, directory %s\n", (long long)(t1 - t0),
                  exists(path) ? "deferred" : "gone");
    /* if its processes were slow to go, the next create or destroy removes it */
    for (int i = 0; i < 100 && exists(path); i++) {
        usleep(10000);
        cgroup_destroy(create("nudge", 0, 0));
    }
    assert_false(exists(path));
}

static void test_bad_ids(void **state)
{
    (void)state;
    need_cgroups();
    struct cgroup_limits lim = {.memory_bytes = 64 * MB};
    struct cgroup *cg = NULL, *dup = NULL;
    assert_int_equal(cgroup_create(root, "", &lim, &cg), -EINVAL);
    assert_int_equal(cgroup_create(root, "..", &lim, &cg), -EINVAL);
    assert_int_equal(cgroup_create(root, "a/b", &lim, &cg), -EINVAL);
    assert_null(cg);
    cg = create("twice", 64 * MB, 0);
    assert_int_equal(cgroup_create(root, "twice", &lim, &dup), -EEXIST);
    assert_null(dup);
    destroy_gone(cg);
}

static void body_pause(void)
{
    pause();
}

/* cgroup_kill reaches a process that left the process group and the parent. */
static void test_kill_escapee(void **state)
{
    (void)state;
    need_cgroups();
    struct cgroup *cg = create("escape", 64 * MB, 0);
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        setpgid(0, 0);
        if (cgroup_attach_self(cg) < 0)
            _exit(2);
        pid_t g = fork(); /* the escapee: a new session, then orphaned */
        if (g == 0) {
            setsid();
            pid_t me = getpid();
            if (write(p[1], &me, sizeof(me)) != sizeof(me))
                _exit(5);
            body_pause();
            _exit(0);
        }
        _exit(g > 0 ? 0 : 6);
    }
    cgroup_attach_done(cg);
    close(p[1]);
    pid_t escapee = 0;
    assert_int_equal(read(p[0], &escapee, sizeof(escapee)), sizeof(escapee));
    close(p[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_int_equal(status, 0);
    kill(-pid, SIGKILL); /* what the pool does today: misses the escapee */
    assert_int_equal(kill(escapee, 0), 0);
    cgroup_kill(cg);
    int gone = 0;
    for (int i = 0; i < 1000 && !gone; i++) {
        char path[64], st[256] = "";
        snprintf(path, sizeof(path), "/proc/%d/stat", (int)escapee);
        FILE *f = fopen(path, "re");
        /* gone, or a zombie waiting for whoever reaps orphans here */
        gone = !f || (fgets(st, sizeof(st), f) && strstr(st, ") Z "));
        if (f)
            fclose(f);
        if (!gone)
            usleep(1000);
    }
    assert_true(gone);
    destroy_gone(cg);
}

/* A daemon that crashed left an instance running; the next setup kills and removes it. */
static void test_leftovers_removed(void **state)
{
    (void)state;
    need_cgroups();
    struct cgroup *cg = create("left", 64 * MB, 0);
    char path[4096];
    snprintf(path, sizeof(path), "%s", cgroup_path(cg));
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (cgroup_attach_self(cg) < 0)
            _exit(2);
        body_pause();
        _exit(0);
    }
    cgroup_attach_done(cg);
    /* wait until it is in */
    for (int i = 0; i < 1000; i++) {
        char f[4200], text[64] = "";
        snprintf(f, sizeof(f), "%s/cgroup.procs", path);
        FILE *fp = fopen(f, "re");
        if (fp && fgets(text, sizeof(text), fp) && atoi(text) == pid) {
            fclose(fp);
            break;
        }
        if (fp)
            fclose(fp);
        usleep(1000);
    }
    struct cgroup_root *again = NULL;
    assert_int_equal(cgroup_setup(&again, name), 0);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGKILL);
    assert_false(exists(path));
    cgroup_teardown(again); /* removes the parent too; the first root recreates nothing */
    cgroup_destroy(cg);     /* already gone: fine */
    /* the parent must come back for the next tests: set up again */
    cgroup_teardown(root);
    assert_int_equal(cgroup_setup(&root, name), 0);
}

static void body_nothing(void)
{
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* "median / max" of n samples (sorts them). */
static const char *stats(int64_t *v, int n, char out[48])
{
    qsort(v, (size_t)n, sizeof(*v), cmp_i64);
    snprintf(out, 48, "%lld / %lld", (long long)v[n / 2], (long long)v[n - 1]);
    return out;
}

/* Not a test of correctness: what a cold start pays, in µs. Children are spawned 20 ms apart,
 * like sparse cold starts: that is when a migration through cgroup.procs would wait for an
 * RCU grace period. The machine may be busy: medians matter, maxima show the noise. */
static void test_timing(void **state)
{
    (void)state;
    need_cgroups();
    enum { N = 200, NA = 25 };
    static int64_t create[N], destroy[N], peak[N], attach[NA], destroy_used[NA];
    struct cgroup_limits lim = {.memory_bytes = 128 * MB};
    for (int i = 0; i < N; i++) {
        char id[32];
        snprintf(id, sizeof(id), "t%d", i);
        struct cgroup *cg;
        int64_t t0 = mono_us();
        assert_int_equal(cgroup_create(root, id, &lim, &cg), 0);
        int64_t t1 = mono_us();
        cgroup_peak_memory(cg);
        int64_t t2 = mono_us();
        cgroup_destroy(cg);
        int64_t t3 = mono_us();
        create[i] = t1 - t0;
        peak[i] = t2 - t1;
        destroy[i] = t3 - t2;
    }
    /* attach, timed in the child; and destroy after the child was reaped (the pool's case) */
    for (int i = 0; i < NA; i++) {
        char id[32];
        snprintf(id, sizeof(id), "a%d", i);
        struct cgroup *cg;
        assert_int_equal(cgroup_create(root, id, &lim, &cg), 0);
        int p[2];
        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        usleep(20000);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            int64_t t0 = mono_us();
            int rc = cgroup_attach_self(cg);
            int64_t dt = mono_us() - t0;
            if (rc < 0 || write(p[1], &dt, sizeof(dt)) != sizeof(dt))
                _exit(2);
            body_nothing();
            _exit(0);
        }
        cgroup_attach_done(cg);
        close(p[1]);
        assert_int_equal(read(p[0], &attach[i], sizeof(attach[i])), sizeof(attach[i]));
        close(p[0]);
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_int_equal(status, 0);
        int64_t t0 = mono_us();
        destroy_gone(cg);
        destroy_used[i] = mono_us() - t0;
    }
    char s[5][48];
    print_message("us median / max: create %s, attach %s, destroy %s (empty) / %s (after a "
                  "child ran), peak read %s\n",
                  stats(create, N, s[0]), stats(attach, NA, s[1]), stats(destroy, N, s[2]),
                  stats(destroy_used, NA, s[3]), stats(peak, N, s[4]));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cpu_rule),
        cmocka_unit_test(test_oom_killed),
        cmocka_unit_test(test_under_limit_survives),
        cmocka_unit_test(test_limits_written),
        cmocka_unit_test(test_pids_limit),
        cmocka_unit_test(test_prepared_then_limited),
        cmocka_unit_test(test_bad_ids),
        cmocka_unit_test(test_leftovers_removed),
        cmocka_unit_test(test_kill_escapee),
        cmocka_unit_test(test_timing),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
