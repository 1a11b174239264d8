/*
 * cgroup: per-instance groups with memory, pids and cpu limits on cgroup v1 or v2. See
 * cgroup.h for the layout and the rules.
 *
 * The root keeps an O_PATH fd on each parent group, so creating an instance is mkdirat plus a
 * few openat/write/close relative to it, with no long path walks. An instance keeps open only
 * what is read after every invoke (peak memory) or after a crash (OOM count), plus the
 * cgroup.procs fds the child writes to until cgroup_attach_done.
 */
#include "exec/cgroup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"

enum { CTRL_MEMORY = 1, CTRL_PIDS = 2, CTRL_CPU = 4 };
static const char *const ctrl_names[] = {"memory", "pids", "cpu"};
#define NCTRL 3
#define MAX_HIER NCTRL
#define CPU_PERIOD_US 100000
#define DESTROY_WAIT_US 2000
#define SETUP_WAIT_US 200000
#define TEARDOWN_WAIT_US 1000000

struct hier {
    unsigned ctrls; /* CTRL_* bound to this hierarchy (v2: all used) */
    int dirfd;      /* O_PATH on the parent group <own>/<name> */
    char *mount;    /* v1: the mount point, to spot controllers mounted together */
    char *path;     /* the parent group */
};

struct cgroup_root {
    int version;
    unsigned ctrls; /* what limits hold */
    int nhier;
    struct hier hier[MAX_HIER];
    int has_memsw, has_swappiness, has_oom_kill;         /* v1 */
    int has_swap_max, has_oom_group, has_kill, has_peak; /* v2 */
    char *own;            /* v2: the daemon's own group, where setup may have enabled controllers */
    unsigned own_enabled; /* v2: controllers setup enabled in own/cgroup.subtree_control */
    int own_moved;        /* v2: the daemon sits in own/<name>-daemon */
    char *name;
    struct cgroup *pending; /* destroyed, but processes were still leaving */
    char desc[1024];
};

struct cgroup {
    struct cgroup_root *root;
    struct cgroup *next; /* root->pending */
    int nprocs;
    int procs_fd[MAX_HIER];
    int peak_fd, oom_fd;
    int cpu_fd; /* cpu.cfs_quota_us (v1) or cpu.max (v2), for cgroup_set_cpu; -1: no cpu */
    int version;
    int oom_is_failcnt;
    char *path;
    char name[];
};

/*=== Small helpers ===*/

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

/* Writes val to dirfd/file (a sysfs attribute: one write). Returns 0 or -errno. */
static int write_at(int dirfd, const char *file, const char *val)
{
    int fd = openat(dirfd, file, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = 0;
    if (write(fd, val, strlen(val)) < 0)
        rc = -errno;
    close(fd);
    return rc;
}

/* Reads dirfd/file into buf (NUL-terminated, truncated to n - 1). Returns length or -errno. */
static ssize_t read_at(int dirfd, const char *file, char *buf, size_t n)
{
    int fd = openat(dirfd, file, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    size_t len = 0;
    ssize_t got = 0;
    while (len < n - 1 && (got = read(fd, buf + len, n - 1 - len)) > 0)
        len += (size_t)got;
    int e = errno;
    close(fd);
    buf[len] = '\0';
    return got < 0 ? -e : (ssize_t)len;
}

static int exists_at(int dirfd, const char *file)
{
    return faccessat(dirfd, file, F_OK, 0) == 0;
}

/* The value after "key " at the start of a line of text, or -1. */
static long long keyed_value(const char *text, const char *key)
{
    size_t n = strlen(key);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        if (strncmp(p, key, n) == 0 && p[n] == ' ')
            return strtoll(p + n + 1, NULL, 10);
    }
    return -1;
}

/* Whether word is one of the separated words of list. */
static int has_word(const char *list, const char *word, const char *seps)
{
    size_t n = strlen(word);
    for (const char *p = list; *p;) {
        size_t len = strcspn(p, seps);
        if (len == n && strncmp(p, word, n) == 0)
            return 1;
        p += len;
        p += strspn(p, seps);
    }
    return 0;
}

static unsigned ctrl_mask(const char *list, const char *seps)
{
    unsigned mask = 0;
    for (int i = 0; i < NCTRL; i++)
        if (has_word(list, ctrl_names[i], seps))
            mask |= 1u << i;
    return mask;
}

static int valid_name(const char *s)
{
    size_t n = strlen(s);
    return n > 0 && n <= 200 && !strchr(s, '/') && strcmp(s, ".") != 0 && strcmp(s, "..") != 0;
}

/*=== Finding the daemon's own groups ===*/

struct mnt {
    char *point, *root;
    unsigned ctrls;
};

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static void unescape(char *s)
{
    char *w = s;
    for (char *r = s; *r; r++) {
        if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' &&
            r[3] >= '0' && r[3] <= '7') {
            *w++ = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
            r += 3;
        } else {
            *w++ = *r;
        }
    }
    *w = '\0';
}

static void mnt_free(struct mnt *m)
{
    free(m->point);
    free(m->root);
    m->point = m->root = NULL;
}

/* The first v1 mount of each controller, and the cgroup2 mount (preferring /sys/fs/cgroup). */
static int find_mounts(struct mnt v1[NCTRL], struct mnt *v2)
{
    FILE *f = fopen("/proc/self/mountinfo", "re");
    if (!f) {
        int e = -errno;
        log_warn("cgroup: open /proc/self/mountinfo: %s", strerror(-e));
        return e;
    }
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        /* id parent dev root point opts [optional...] - fstype source superopts */
        char *field[6], *save = NULL, *tok;
        int nf = 0;
        for (tok = strtok_r(line, " \n", &save); tok && nf < 6; tok = strtok_r(NULL, " \n", &save))
            field[nf++] = tok;
        while (tok && strcmp(tok, "-") != 0)
            tok = strtok_r(NULL, " \n", &save);
        char *fstype = tok ? strtok_r(NULL, " \n", &save) : NULL;
        char *source = fstype ? strtok_r(NULL, " \n", &save) : NULL;
        char *super = source ? strtok_r(NULL, " \n", &save) : NULL;
        if (nf < 5 || !super)
            continue;
        int is_v2 = strcmp(fstype, "cgroup2") == 0;
        unsigned mask = strcmp(fstype, "cgroup") == 0 ? ctrl_mask(super, ",") : 0;
        struct mnt *slot = NULL;
        if (is_v2 && (!v2->point || strcmp(field[4], "/sys/fs/cgroup") == 0)) {
            mnt_free(v2);
            slot = v2;
        }
        for (int i = 0; i < NCTRL; i++)
            if ((mask & (1u << i)) && !v1[i].point)
                slot = &v1[i];
        if (!slot)
            continue;
        unescape(field[3]);
        unescape(field[4]);
        slot->root = strdup(field[3]);
        slot->point = strdup(field[4]);
        slot->ctrls = mask;
        if (!slot->root || !slot->point) {
            free(line);
            fclose(f);
            return -ENOMEM;
        }
    }
    free(line);
    fclose(f);
    return 0;
}

/* The daemon's group for each v1 controller and its v2 group, from /proc/self/cgroup. */
static int find_own(char *v1[NCTRL], char **v2)
{
    FILE *f = fopen("/proc/self/cgroup", "re");
    if (!f) {
        int e = -errno;
        log_warn("cgroup: open /proc/self/cgroup: %s", strerror(-e));
        return e;
    }
    char *line = NULL;
    size_t cap = 0;
    int rc = 0;
    while (rc == 0 && getline(&line, &cap, f) > 0) {
        line[strcspn(line, "\n")] = '\0';
        char *c1 = strchr(line, ':');
        char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2)
            continue;
        *c2 = '\0';
        const char *ctrls = c1 + 1, *path = c2 + 1;
        if (strncmp(line, "0:", 2) == 0 && *ctrls == '\0' && !*v2) {
            if (!(*v2 = strdup(path)))
                rc = -ENOMEM;
            continue;
        }
        unsigned mask = ctrl_mask(ctrls, ",");
        for (int i = 0; i < NCTRL; i++)
            if ((mask & (1u << i)) && !v1[i] && !(v1[i] = strdup(path)))
                rc = -ENOMEM;
    }
    free(line);
    fclose(f);
    return rc;
}

/* Where group own (a path in the hierarchy) appears in the file system through mount m. */
static int group_dir(const struct mnt *m, const char *own, char **out)
{
    const char *rel = own;
    size_t n = strlen(m->root);
    if (strcmp(m->root, "/") != 0) {
        if (strncmp(own, m->root, n) != 0 || (own[n] != '\0' && own[n] != '/'))
            return -ENOENT; /* our group is outside what is mounted */
        rel = own + n;
    }
    if (strcmp(rel, "/") == 0)
        rel = "";
    return asprintf(out, "%s%s", strcmp(m->point, "/") == 0 ? "" : m->point, rel) < 0 ? -ENOMEM : 0;
}

/*=== Killing and removing groups ===*/

/* SIGKILLs every process in group name. Returns how many it signalled (0: looks empty; v2
 * cgroup.kill also returns 0, it is race-free against fork). */
static int group_kill(struct cgroup_root *r, const char *name)
{
    char file[256];
    if (r->version == 2 && r->has_kill) {
        snprintf(file, sizeof(file), "%s/cgroup.kill", name);
        int rc = write_at(r->hier[0].dirfd, file, "1");
        if (rc == 0 || rc == -ENOENT)
            return 0;
        log_debug("cgroup: write %s/%s: %s", r->hier[0].path, file, strerror(-rc));
    }
    int n = 0;
    pid_t self = getpid();
    snprintf(file, sizeof(file), "%s/cgroup.procs", name);
    for (int i = 0; i < r->nhier; i++) {
        int fd = openat(r->hier[i].dirfd, file, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        char buf[4096];
        ssize_t got;
        long pid = 0;
        while ((got = read(fd, buf, sizeof(buf))) > 0) {
            for (ssize_t k = 0; k < got; k++) {
                if (buf[k] >= '0' && buf[k] <= '9') {
                    pid = pid * 10 + (buf[k] - '0');
                    continue;
                }
                if (pid > 0 && pid != self && kill((pid_t)pid, SIGKILL) == 0)
                    n++;
                pid = 0;
            }
        }
        if (pid > 0 && pid != self && kill((pid_t)pid, SIGKILL) == 0)
            n++;
        close(fd);
    }
    return n;
}

/* Removes group name from every hierarchy. 0, or -EBUSY while processes are still leaving. */
static int group_rmdir(struct cgroup_root *r, const char *name)
{
    int rc = 0;
    for (int i = 0; i < r->nhier; i++) {
        if (unlinkat(r->hier[i].dirfd, name, AT_REMOVEDIR) == 0 || errno == ENOENT)
            continue;
        if (errno != EBUSY)
            log_warn("cgroup: rmdir %s/%s: %s", r->hier[i].path, name, strerror(errno));
        rc = -errno;
    }
    return rc;
}

/* Kills and removes group name, waiting at most budget_us for its processes to exit. */
static int group_remove(struct cgroup_root *r, const char *name, int64_t budget_us)
{
    int64_t start = mono_us();
    long nap_ns = 20000;
    for (;;) {
        group_kill(r, name);
        int rc = group_rmdir(r, name);
        if (rc != -EBUSY || mono_us() - start >= budget_us)
            return rc;
        struct timespec ts = {0, nap_ns};
        nanosleep(&ts, NULL);
        if (nap_ns < 1000000)
            nap_ns *= 2;
    }
}

static void cgroup_free(struct cgroup *cg)
{
    for (int i = 0; i < cg->nprocs; i++)
        close_fd(&cg->procs_fd[i]);
    close_fd(&cg->peak_fd);
    close_fd(&cg->oom_fd);
    close_fd(&cg->cpu_fd);
    free(cg->path);
    free(cg);
}

static struct cgroup *cgroup_alloc(struct cgroup_root *r, const char *name)
{
    size_t n = strlen(name) + 1;
    struct cgroup *cg = calloc(1, sizeof(*cg) + n);
    if (!cg)
        return NULL;
    cg->root = r;
    cg->peak_fd = cg->oom_fd = cg->cpu_fd = -1;
    cg->version = r->version;
    for (int i = 0; i < MAX_HIER; i++)
        cg->procs_fd[i] = -1;
    memcpy(cg->name, name, n);
    return cg;
}

static void pending_add(struct cgroup_root *r, struct cgroup *cg)
{
    log_debug("cgroup: %s/%s still busy, removal deferred", r->hier[0].path, cg->name);
    cg->next = r->pending;
    r->pending = cg;
}

/* Retries the removal of busy groups; waits at most budget_us for each. */
static void pending_retry(struct cgroup_root *r, int64_t budget_us)
{
    for (struct cgroup **p = &r->pending; *p;) {
        struct cgroup *cg = *p;
        if (group_remove(r, cg->name, budget_us) == -EBUSY) {
            p = &cg->next;
            continue;
        }
        *p = cg->next;
        cgroup_free(cg);
    }
}

/* Kills and removes every instance group below the parents (leftovers of a crashed run at
 * setup, or of the caller at teardown). */
static void remove_children(struct cgroup_root *r, int64_t budget_us)
{
    for (int i = 0; i < r->nhier; i++) {
        DIR *d = opendir(r->hier[i].path);
        if (!d && errno == ENOENT)
            continue;
        if (!d) {
            log_warn("cgroup: opendir %s: %s", r->hier[i].path, strerror(errno));
            continue;
        }
        int n = 0;
        struct dirent *e;
        while ((e = readdir(d))) {
            if (e->d_type != DT_DIR || strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            n++;
            if (group_remove(r, e->d_name, budget_us) != -EBUSY)
                continue;
            struct cgroup *cg = cgroup_alloc(r, e->d_name);
            if (cg)
                pending_add(r, cg);
        }
        closedir(d);
        if (n)
            log_info("cgroup: removed %d leftover group%s in %s", n, n == 1 ? "" : "s",
                     r->hier[i].path);
    }
}

/*=== Setup ===*/

/* Creates (or reuses) the parent group path and opens it. */
static int open_parent(struct hier *h)
{
    if (mkdir(h->path, 0755) < 0 && errno != EEXIST) {
        int e = -errno;
        log_warn("cgroup: mkdir %s: %s", h->path, strerror(-e));
        return e;
    }
    h->dirfd = open(h->path, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (h->dirfd < 0) {
        int e = -errno;
        log_warn("cgroup: open %s: %s", h->path, strerror(-e));
        return e;
    }
    return 0;
}

static int setup_v1(struct cgroup_root *r, struct mnt mnts[NCTRL], char *own[NCTRL])
{
    for (int i = 0; i < NCTRL; i++) {
        unsigned bit = 1u << i;
        if (!mnts[i].point || !own[i]) {
            if (bit == CTRL_MEMORY) {
                log_warn("cgroup: v1 memory hierarchy mounted but not in /proc/self/cgroup");
                return -ENOENT;
            }
            continue;
        }
        struct hier *h = NULL;
        for (int k = 0; k < r->nhier; k++)
            if (strcmp(r->hier[k].mount, mnts[i].point) == 0)
                h = &r->hier[k];
        if (h) { /* mounted together with an earlier controller, e.g. "cpu,memory" */
            h->ctrls |= bit;
            r->ctrls |= bit;
            continue;
        }
        h = &r->hier[r->nhier];
        char *dir = NULL;
        int rc = group_dir(&mnts[i], own[i], &dir);
        if (rc == 0 && asprintf(&h->path, "%s/%s", dir, r->name) < 0) {
            h->path = NULL;
            rc = -ENOMEM;
        }
        free(dir);
        if (rc == -ENOENT)
            log_warn("cgroup: our %s group %s is not under the mount %s (root %s)", ctrl_names[i],
                     own[i], mnts[i].point, mnts[i].root);
        if (rc == 0 && !(h->mount = strdup(mnts[i].point)))
            rc = -ENOMEM;
        if (rc == 0)
            rc = open_parent(h);
        if (rc < 0) {
            free(h->path);
            free(h->mount);
            h->path = h->mount = NULL;
            close_fd(&h->dirfd);
            if (bit == CTRL_MEMORY || rc == -ENOMEM)
                return rc;
            log_warn("cgroup: no %s limits", ctrl_names[i]);
            continue;
        }
        h->ctrls = bit;
        r->ctrls |= bit;
        r->nhier++;
    }
    int mfd = r->hier[0].dirfd; /* memory came first: hier[0] */
    r->has_memsw = exists_at(mfd, "memory.memsw.limit_in_bytes");
    r->has_swappiness = exists_at(mfd, "memory.swappiness");
    char text[256];
    r->has_oom_kill = read_at(mfd, "memory.oom_control", text, sizeof(text)) > 0 &&
                      keyed_value(text, "oom_kill") >= 0;
    for (int k = 0; k < r->nhier; k++) {
        if ((r->hier[k].ctrls & CTRL_CPU) && !exists_at(r->hier[k].dirfd, "cpu.cfs_quota_us")) {
            log_warn("cgroup: no cpu.cfs_quota_us in %s (no CFS bandwidth control): no cpu "
                     "limits",
                     r->hier[k].path);
            r->hier[k].ctrls &= ~(unsigned)CTRL_CPU;
            r->ctrls &= ~(unsigned)CTRL_CPU;
        }
    }
    return 0;
}

/* v2: enables ctrl for the children of dirfd (path for logs). 0 or -errno. */
static int enable_ctrl(int dirfd, const char *path, int i)
{
    char val[16];
    snprintf(val, sizeof(val), "+%s", ctrl_names[i]);
    int rc = write_at(dirfd, "cgroup.subtree_control", val);
    if (rc < 0 && rc != -EBUSY)
        log_warn("cgroup: write %s to %s/cgroup.subtree_control: %s", val, path, strerror(-rc));
    return rc;
}

/* v2: whether the daemon is the only process in the group at dirfd. */
static int alone_in(int dirfd)
{
    char text[4096];
    if (read_at(dirfd, "cgroup.procs", text, sizeof(text)) < 0)
        return 0;
    pid_t self = getpid();
    for (char *p = text; *p; p += strspn(p, "\n")) {
        if (strtol(p, NULL, 10) != self)
            return 0;
        p += strcspn(p, "\n");
    }
    return 1;
}

/* v2: moves the daemon into own/<name>-daemon so that own can enable controllers. */
static int move_daemon(struct cgroup_root *r, int ownfd)
{
    char sub[300];
    snprintf(sub, sizeof(sub), "%s-daemon", r->name);
    if (mkdirat(ownfd, sub, 0755) < 0 && errno != EEXIST) {
        int e = -errno;
        log_warn("cgroup: mkdir %s/%s: %s", r->own, sub, strerror(-e));
        return e;
    }
    char file[320];
    snprintf(file, sizeof(file), "%s/cgroup.procs", sub);
    int rc = write_at(ownfd, file, "0");
    if (rc < 0) {
        log_warn("cgroup: write 0 to %s/%s: %s", r->own, file, strerror(-rc));
        unlinkat(ownfd, sub, AT_REMOVEDIR);
        return rc;
    }
    r->own_moved = 1;
    log_info("cgroup: moved the daemon to %s/%s (cgroup v2 allows no processes in a group "
             "that enables controllers)",
             r->own, sub);
    return 0;
}

static int setup_v2(struct cgroup_root *r, const struct mnt *m, const char *own_path)
{
    int ownfd = -1, rc = group_dir(m, own_path, &r->own);
    if (rc == -ENOENT)
        log_warn("cgroup: our group %s is not under the cgroup2 mount %s (root %s)", own_path,
                 m->point, m->root);
    if (rc < 0)
        goto out;
    /* already moved by an earlier setup of this process (re-exec): own is the group above */
    char *slash = strrchr(r->own, '/');
    size_t nlen = strlen(r->name);
    if (slash && strncmp(slash + 1, r->name, nlen) == 0 &&
        strcmp(slash + 1 + nlen, "-daemon") == 0) {
        *slash = '\0';
        r->own_moved = 1;
    }
    ownfd = open(r->own, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (ownfd < 0) {
        rc = -errno;
        log_warn("cgroup: open %s: %s", r->own, strerror(-rc));
        goto out;
    }
    char avail[256], enabled[256];
    if ((rc = (int)read_at(ownfd, "cgroup.controllers", avail, sizeof(avail))) < 0 ||
        (rc = (int)read_at(ownfd, "cgroup.subtree_control", enabled, sizeof(enabled))) < 0) {
        log_warn("cgroup: read %s/cgroup.controllers, cgroup.subtree_control: %s", r->own,
                 strerror(-rc));
        goto out;
    }
    unsigned have = ctrl_mask(avail, " \n"), on = ctrl_mask(enabled, " \n");
    if (!(have & CTRL_MEMORY)) {
        avail[strcspn(avail, "\n")] = '\0';
        log_warn("cgroup: the memory controller is not delegated to %s (cgroup.controllers: "
                 "\"%s\")",
                 r->own, avail);
        rc = -ENOENT;
        goto out;
    }
    for (int i = 0; i < NCTRL; i++) {
        unsigned bit = 1u << i;
        if (!(have & bit) || (on & bit))
            continue;
        rc = enable_ctrl(ownfd, r->own, i);
        if (rc == -EBUSY && !r->own_moved) {
            if (!alone_in(ownfd)) {
                log_warn("cgroup: %s holds other processes, so it cannot enable controllers "
                         "(cgroup v2); run ignis in a cgroup of its own (systemd: "
                         "Delegate=yes)",
                         r->own);
                goto out;
            }
            if ((rc = move_daemon(r, ownfd)) < 0)
                goto out;
            rc = enable_ctrl(ownfd, r->own, i);
        }
        if (rc == -EBUSY)
            log_warn("cgroup: write +%s to %s/cgroup.subtree_control: %s", ctrl_names[i], r->own,
                     strerror(-rc));
        if (rc < 0 && bit == CTRL_MEMORY)
            goto out;
        if (rc == 0)
            r->own_enabled |= bit;
        else
            have &= ~bit;
    }
    struct hier *h = &r->hier[0];
    if (asprintf(&h->path, "%s/%s", r->own, r->name) < 0) {
        h->path = NULL;
        rc = -ENOMEM;
        goto out;
    }
    if ((rc = open_parent(h)) < 0)
        goto out;
    r->nhier = 1;
    if ((rc = (int)read_at(h->dirfd, "cgroup.subtree_control", enabled, sizeof(enabled))) < 0) {
        log_warn("cgroup: read %s/cgroup.subtree_control: %s", h->path, strerror(-rc));
        goto out;
    }
    on = ctrl_mask(enabled, " \n");
    for (int i = 0; i < NCTRL; i++) {
        unsigned bit = 1u << i;
        if ((have & bit) && !(on & bit) && (rc = enable_ctrl(h->dirfd, h->path, i)) < 0) {
            if (rc == -EBUSY)
                log_warn("cgroup: write +%s to %s/cgroup.subtree_control: %s", ctrl_names[i],
                         h->path, strerror(-rc));
            if (bit == CTRL_MEMORY)
                goto out;
            have &= ~bit;
        }
    }
    rc = 0;
    h->ctrls = r->ctrls = have;
    r->has_swap_max = exists_at(h->dirfd, "memory.swap.max");
    r->has_oom_group = exists_at(h->dirfd, "memory.oom.group");
    r->has_kill = exists_at(h->dirfd, "cgroup.kill");
    r->has_peak = exists_at(h->dirfd, "memory.peak");
out:
    if (ownfd >= 0)
        close(ownfd);
    return rc;
}

/* v2: puts the daemon back where it was started, if setup moved it and nothing else holds
 * controllers on in its group. Best effort. */
static void restore_daemon(struct cgroup_root *r)
{
    int ownfd = open(r->own, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (ownfd < 0)
        return;
    int rc;
    for (int i = NCTRL - 1; i >= 0; i--) {
        char val[16];
        snprintf(val, sizeof(val), "-%s", ctrl_names[i]);
        if ((r->own_enabled & (1u << i)) &&
            (rc = write_at(ownfd, "cgroup.subtree_control", val)) < 0)
            log_debug("cgroup: write %s to %s/cgroup.subtree_control: %s", val, r->own,
                      strerror(-rc));
    }
    char sub[300];
    snprintf(sub, sizeof(sub), "%s-daemon", r->name);
    rc = write_at(ownfd, "cgroup.procs", "0");
    if (rc == 0)
        unlinkat(ownfd, sub, AT_REMOVEDIR);
    else
        log_debug("cgroup: write 0 to %s/cgroup.procs: %s (the daemon stays in %s/%s)", r->own,
                  strerror(-rc), r->own, sub);
    close(ownfd);
}

/* Appends to the NUL-terminated text in buf (size bytes), truncating. */
static void __attribute__((format(printf, 3, 4)))
appendf(char *buf, size_t size, const char *fmt, ...)
{
    size_t len = strlen(buf);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + len, size - len, fmt, ap);
    va_end(ap);
}

static void describe(struct cgroup_root *r)
{
    snprintf(r->desc, sizeof(r->desc), "cgroup v%d (", r->version);
    const char *sep = "";
    for (int i = 0; i < NCTRL; i++) {
        if (r->ctrls & (1u << i)) {
            appendf(r->desc, sizeof(r->desc), "%s%s", sep, ctrl_names[i]);
            sep = ", ";
        }
    }
    if ((r->version == 1 && !r->has_memsw) || (r->version == 2 && !r->has_swap_max))
        appendf(r->desc, sizeof(r->desc), "; swap not accounted");
    appendf(r->desc, sizeof(r->desc), ") at %s", r->hier[0].path);
    if (r->own_moved)
        appendf(r->desc, sizeof(r->desc), "; daemon moved to %s/%s-daemon", r->own, r->name);
}

int cgroup_setup(struct cgroup_root **out, const char *name)
{
    *out = NULL;
    struct mnt v1[NCTRL] = {{0}}, v2 = {0};
    char *own1[NCTRL] = {0}, *own2 = NULL;
    struct cgroup_root *r = NULL;
    int rc;
    if (!valid_name(name))
        return -EINVAL;
    if ((rc = find_mounts(v1, &v2)) < 0 || (rc = find_own(own1, &own2)) < 0)
        goto out;
    r = calloc(1, sizeof(*r));
    if (!r || !(r->name = strdup(name))) {
        rc = -ENOMEM;
        goto out;
    }
    for (int i = 0; i < MAX_HIER; i++)
        r->hier[i].dirfd = -1;
    if (v1[0].point) {
        r->version = 1;
        rc = setup_v1(r, v1, own1);
    } else if (v2.point && own2) {
        r->version = 2;
        rc = setup_v2(r, &v2, own2);
    } else {
        log_warn("cgroup: no memory controller: neither a cgroup v1 memory hierarchy nor a "
                 "cgroup2 file system is mounted");
        rc = -ENOENT;
    }
    if (rc < 0)
        goto out;
    remove_children(r, SETUP_WAIT_US);
    describe(r);
    *out = r;
    r = NULL;
out:
    if (r) {
        for (int i = 0; i < MAX_HIER; i++) {
            close_fd(&r->hier[i].dirfd);
            if (r->hier[i].path && i < r->nhier)
                rmdir(r->hier[i].path);
            free(r->hier[i].path);
            free(r->hier[i].mount);
        }
        if (r->version == 2 && r->own_moved)
            restore_daemon(r);
        free(r->own);
        free(r->name);
        free(r);
    }
    for (int i = 0; i < NCTRL; i++) {
        mnt_free(&v1[i]);
        free(own1[i]);
    }
    mnt_free(&v2);
    free(own2);
    return rc;
}

void cgroup_teardown(struct cgroup_root *r)
{
    if (!r)
        return;
    pending_retry(r, TEARDOWN_WAIT_US);
    remove_children(r, TEARDOWN_WAIT_US);
    while (r->pending) {
        struct cgroup *cg = r->pending;
        log_warn("cgroup: %s/%s still has processes; left in place", r->hier[0].path, cg->name);
        r->pending = cg->next;
        cgroup_free(cg);
    }
    for (int i = 0; i < r->nhier; i++) {
        close_fd(&r->hier[i].dirfd);
        if (rmdir(r->hier[i].path) < 0 && errno != ENOENT)
            log_warn("cgroup: rmdir %s: %s", r->hier[i].path, strerror(errno));
        free(r->hier[i].path);
        free(r->hier[i].mount);
    }
    if (r->version == 2 && r->own_moved)
        restore_daemon(r);
    free(r->own);
    free(r->name);
    free(r);
}

const char *cgroup_describe(const struct cgroup_root *r)
{
    return r ? r->desc : "none";
}

/*=== Instances ===*/

uint32_t cgroup_cpu_millicpus(uint64_t memory_bytes)
{
    if (memory_bytes == 0)
        return CGROUP_CPU_UNLIMITED;
    uint64_t mb = memory_bytes >> 20;
    uint64_t m = mb > UINT32_MAX ? UINT32_MAX : mb * 1000 / CGROUP_MB_PER_VCPU;
    if (m < CGROUP_MIN_MILLICPUS)
        m = CGROUP_MIN_MILLICPUS;
    return m >= CGROUP_CPU_UNLIMITED ? CGROUP_CPU_UNLIMITED - 1 : (uint32_t)m;
}

/* Sets the limits of one hierarchy's part of the group (gfd: the group's directory). */
static int set_limits(struct cgroup_root *r, struct cgroup *cg, const struct hier *h, int gfd,
                      const struct cgroup_limits *lim)
{
    char val[64];
    const char *file = NULL, *op = "write";
    int rc = 0;
    if ((h->ctrls & CTRL_MEMORY) && lim->memory_bytes) {
        snprintf(val, sizeof(val), "%llu", (unsigned long long)lim->memory_bytes);
        if (r->version == 1) {
            /* memory first: memsw may never be below it */
            if ((rc = write_at(gfd, file = "memory.limit_in_bytes", val)) < 0 ||
                (r->has_memsw && (rc = write_at(gfd, file = "memory.memsw.limit_in_bytes", val))))
                goto fail;
        } else if ((rc = write_at(gfd, file = "memory.max", val)) < 0) {
            goto fail;
        }
    }
    if (h->ctrls & CTRL_MEMORY) { /* no swap, the whole group goes on OOM: with or without a
                                     limit yet (cgroup_prepare) */
        if ((r->version == 1 && r->has_swappiness &&
             (rc = write_at(gfd, file = "memory.swappiness", "0")) < 0) ||
            (r->version == 2 && r->has_swap_max &&
             (rc = write_at(gfd, file = "memory.swap.max", "0")) < 0) ||
            (r->version == 2 && r->has_oom_group &&
             (rc = write_at(gfd, file = "memory.oom.group", "1")) < 0))
            goto fail;
    }
    if (h->ctrls & CTRL_MEMORY) {
        file = r->version == 2 ? (r->has_peak ? "memory.peak" : "memory.current")
                               : "memory.max_usage_in_bytes";
        if ((cg->peak_fd = openat(gfd, file, O_RDONLY | O_CLOEXEC)) < 0)
            goto fail_errno;
        cg->oom_is_failcnt = r->version == 1 && !r->has_oom_kill;
        file = r->version == 2 ? "memory.events"
                               : (r->has_oom_kill ? "memory.oom_control" : "memory.failcnt");
        if ((cg->oom_fd = openat(gfd, file, O_RDONLY | O_CLOEXEC)) < 0)
            goto fail_errno;
    }
    if (h->ctrls & CTRL_PIDS) {
        snprintf(val, sizeof(val), "%u", lim->pids_max ? lim->pids_max : CGROUP_DEFAULT_PIDS_MAX);
        if ((rc = write_at(gfd, file = "pids.max", val)) < 0)
            goto fail;
    }
    uint32_t mcpu =
        lim->cpu_millicpus ? lim->cpu_millicpus : cgroup_cpu_millicpus(lim->memory_bytes);
    if (h->ctrls & CTRL_CPU) {
        file = r->version == 1 ? "cpu.cfs_quota_us" : "cpu.max";
        if ((cg->cpu_fd = openat(gfd, file, O_WRONLY | O_CLOEXEC)) < 0)
            goto fail_errno;
        if (mcpu != CGROUP_CPU_UNLIMITED && (rc = cgroup_set_cpu(cg, mcpu)) < 0)
            goto fail;
    }
    return 0;
fail_errno:
    rc = -errno;
    op = "open";
fail:
    log_error("cgroup: %s %s/%s/%s: %s", op, h->path, cg->name, file, strerror(-rc));
    return rc;
}

/* cgroup_create without the retry of deferred removals: touches nothing of r but the
 * (read-only) hierarchies, so it may run on another thread. */
static int create_group(struct cgroup_root *r, const char *id, const struct cgroup_limits *lim,
                        struct cgroup **out)
{
    *out = NULL;
    if (!valid_name(id))
        return -EINVAL;
    struct cgroup *cg = cgroup_alloc(r, id);
    if (!cg)
        return -ENOMEM;
    int made = 0, gfd = -1, rc = 0;
    for (int i = 0; i < r->nhier; i++) {
        const struct hier *h = &r->hier[i];
        if (mkdirat(h->dirfd, id, 0755) < 0) {
            rc = -errno;
            log_error("cgroup: mkdir %s/%s: %s", h->path, id, strerror(-rc));
            goto fail;
        }
        made = i + 1;
        gfd = openat(h->dirfd, id, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (gfd < 0) {
            rc = -errno;
            log_error("cgroup: open %s/%s: %s", h->path, id, strerror(-rc));
            goto fail;
        }
        if ((rc = set_limits(r, cg, h, gfd, lim)) < 0)
            goto fail;
        /* v1: "tasks" moves one thread, the forked child's only one. Migrating the current
         * thread alone skips the global cgroup_threadgroup_rwsem, whose write side waits for
         * an RCU grace period (10-15 ms measured) when migrations are rare, i.e. on every cold
         * start. v2 has no such file for domain groups: cgroup.procs it is. */
        const char *procs = r->version == 1 ? "tasks" : "cgroup.procs";
        cg->procs_fd[i] = openat(gfd, procs, O_WRONLY | O_CLOEXEC);
        if (cg->procs_fd[i] < 0) {
            rc = -errno;
            log_error("cgroup: open %s/%s/%s: %s", h->path, id, procs, strerror(-rc));
            goto fail;
        }
        cg->nprocs = i + 1;
        close_fd(&gfd);
    }
    if (asprintf(&cg->path, "%s/%s", r->hier[0].path, id) < 0) {
        cg->path = NULL;
        rc = -ENOMEM;
        goto fail;
    }
    *out = cg;
    return 0;
fail:
    close_fd(&gfd);
    for (int i = 0; i < made; i++)
        unlinkat(r->hier[i].dirfd, id, AT_REMOVEDIR);
    cgroup_free(cg);
    return rc;
}

int cgroup_create(struct cgroup_root *r, const char *id, const struct cgroup_limits *lim,
                  struct cgroup **out)
{
    if (r->pending)
        pending_retry(r, 0);
    return create_group(r, id, lim, out);
}

int cgroup_prepare(struct cgroup_root *r, const char *id, struct cgroup **out)
{
    struct cgroup_limits lim = {.cpu_millicpus = CGROUP_CPU_UNLIMITED}; /* no memory limit */
    return create_group(r, id, &lim, out);
}

int cgroup_set_memory(struct cgroup *cg, uint64_t bytes)
{
    struct cgroup_root *r = cg->root;
    char val[32];
    snprintf(val, sizeof(val), "%llu", (unsigned long long)bytes);
    for (int i = 0; i < r->nhier; i++) {
        if (!(r->hier[i].ctrls & CTRL_MEMORY))
            continue;
        int gfd = openat(r->hier[i].dirfd, cg->name, O_PATH | O_DIRECTORY | O_CLOEXEC), rc = 0;
        if (gfd < 0)
            return -errno;
        if (r->version == 1) /* memory first: memsw may never be below it */
            rc = write_at(gfd, "memory.limit_in_bytes", val);
        if (r->version == 1 && rc == 0 && r->has_memsw)
            rc = write_at(gfd, "memory.memsw.limit_in_bytes", val);
        if (r->version == 2)
            rc = write_at(gfd, "memory.max", val);
        close(gfd);
        return rc;
    }
    return -ENOTSUP;
}

int cgroup_attach_self(const struct cgroup *cg)
{
    for (int i = 0; i < cg->nprocs; i++) {
        if (cg->procs_fd[i] >= 0 && write(cg->procs_fd[i], "0", 1) < 0)
            return -errno;
    }
    return 0;
}

int cgroup_attach_fds(const struct cgroup *cg, int fds[3])
{
    int n = 0;
    for (int i = 0; i < cg->nprocs && n < 3; i++)
        if (cg->procs_fd[i] >= 0)
            fds[n++] = cg->procs_fd[i];
    return n;
}

void cgroup_attach_done(struct cgroup *cg)
{
    for (int i = 0; i < cg->nprocs; i++)
        close_fd(&cg->procs_fd[i]);
}

int cgroup_set_cpu(struct cgroup *cg, uint32_t millicpus)
{
    if (!cg || cg->cpu_fd < 0)
        return -ENOTSUP;
    char val[64];
    if (millicpus == CGROUP_CPU_UNLIMITED)
        snprintf(val, sizeof(val), "%s", cg->version == 1 ? "-1" : "max");
    else {
        /* v1's smallest quota is 1 ms */
        unsigned long long quota =
            millicpus < 10 ? 1000 : (unsigned long long)millicpus * CPU_PERIOD_US / 1000;
        if (cg->version == 1)
            snprintf(val, sizeof(val), "%llu", quota);
        else
            snprintf(val, sizeof(val), "%llu %u", quota, CPU_PERIOD_US);
    }
    ssize_t n = pwrite(cg->cpu_fd, val, strlen(val), 0);
    return n < 0 ? -errno : 0;
}

uint64_t cgroup_peak_memory(const struct cgroup *cg)
{
    char text[32];
    ssize_t n = pread(cg->peak_fd, text, sizeof(text) - 1, 0);
    if (n <= 0)
        return 0;
    text[n] = '\0';
    return strtoull(text, NULL, 10);
}

int cgroup_oom_killed(const struct cgroup *cg)
{
    char text[512];
    ssize_t n = pread(cg->oom_fd, text, sizeof(text) - 1, 0);
    if (n < 0)
        return -errno;
    text[n] = '\0';
    long long v =
        cg->oom_is_failcnt ? (strtoll(text, NULL, 10) > 0) : keyed_value(text, "oom_kill");
    if (v < 0)
        return -EIO;
    return v > INT32_MAX ? INT32_MAX : (int)v;
}

const char *cgroup_path(const struct cgroup *cg)
{
    return cg->path;
}

void cgroup_kill(struct cgroup *cg)
{
    group_kill(cg->root, cg->name);
}

void cgroup_destroy(struct cgroup *cg)
{
    if (!cg)
        return;
    struct cgroup_root *r = cg->root;
    for (int i = 0; i < cg->nprocs; i++)
        close_fd(&cg->procs_fd[i]);
    close_fd(&cg->peak_fd);
    close_fd(&cg->oom_fd);
    close_fd(&cg->cpu_fd);
    if (r->pending)
        pending_retry(r, 0);
    if (group_remove(r, cg->name, DESTROY_WAIT_US) == -EBUSY)
        pending_add(r, cg);
    else
        cgroup_free(cg);
}
