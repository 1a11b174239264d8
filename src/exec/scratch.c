/*
 * scratch: disk-backed /tmp filesystems for instances (see scratch.h). Layout under the
 * pool's dir: templates/ (one mkfs'd sparse image per size, kept across restarts) and images/
 * (backing files, unlinked once attached: normally empty).
 */
#include "exec/scratch.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/loop.h>
#include <linux/mount.h>
#include <pthread.h>
#include <sched.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/config.h"
#include "core/log.h"
#include "core/util.h"

#define READY_PER_SIZE 2
#define MAX_SIZES 16
/* Bump when the template's mkfs options change: old templates are then ignored. */
#define TEMPLATE_TAG "ext4v1"

struct size_slot {
    unsigned size_mb;
    int ready[READY_PER_SIZE]; /* mounts (fsmount fds) */
    unsigned nready, nmaking;
    int64_t last_used_us;
};

struct scratch_pool {
    struct workq *wq;
    char dir[PATH_MAX - 64];
    pthread_mutex_t template_lock; /* one mkfs at a time */
    atomic_ulong seq;
    struct size_slot slots[MAX_SIZES];
    unsigned nslots;
    int warned; /* a background make failed and was logged */
};

/*=== Making one (any thread) ===*/

static int run_mkfs(const char *image)
{
    static const char *const candidates[] = {"/usr/sbin/mkfs.ext4", "/sbin/mkfs.ext4",
                                             "/usr/sbin/mke2fs", "/sbin/mke2fs"};
    const char *mkfs = NULL;
    for (size_t i = 0; i < sizeof(candidates) / sizeof(candidates[0]) && !mkfs; i++)
        if (access(candidates[i], X_OK) == 0)
            mkfs = candidates[i];
    if (!mkfs)
        return -ENOENT;
    /* No journal (nothing here must survive a crash), no reserved blocks, inode tables left
     * for the kernel to treat as unused (the image is sparse: they read as zeros). */
    char *const argv[] = {(char *)mkfs,
                          "-q",
                          "-F",
                          "-t",
                          "ext4",
                          "-O",
                          "^has_journal,^resize_inode",
                          "-E",
                          "lazy_itable_init=1,nodiscard",
                          "-m",
                          "0",
                          "-i",
                          "16384",
                          "-L",
                          "tmp",
                          (char *)image,
                          NULL};
    char *const envp[] = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C", NULL};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    for (int fd = 0; fd <= 2; fd++)
        posix_spawn_file_actions_addopen(&fa, fd, "/dev/null", fd ? O_WRONLY : O_RDONLY, 0);
    pid_t pid;
    int rc = posix_spawn(&pid, mkfs, &fa, NULL, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0)
        return -rc;
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -errno;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EIO;
}

/* The template image for size_mb, made on first use. */
static int ensure_template(struct scratch_pool *sp, unsigned size_mb, char *out, size_t size)
{
    snprintf(out, size, "%s/templates/%s-%umb.img", sp->dir, TEMPLATE_TAG, size_mb);
    if (access(out, R_OK) == 0)
        return 0;
    pthread_mutex_lock(&sp->template_lock);
    int rc = 0;
    if (access(out, R_OK) != 0) {
        char tmp[PATH_MAX];
        snprintf(tmp, sizeof(tmp), "%s.tmp", out);
        unlink(tmp);
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0 || ftruncate(fd, (off_t)size_mb << 20) < 0)
            rc = -errno;
        if (fd >= 0)
            close(fd);
        if (rc == 0)
            rc = run_mkfs(tmp);
        if (rc == 0 && rename(tmp, out) < 0)
            rc = -errno;
        if (rc < 0)
            unlink(tmp);
    }
    pthread_mutex_unlock(&sp->template_lock);
    return rc;
}

/* Copies the allocated extents of src into dst (same size, sparse elsewhere). */
static int copy_sparse(int src, int dst)
{
    struct stat st;
    if (fstat(src, &st) < 0 || ftruncate(dst, st.st_size) < 0)
        return -errno;
    off_t off = 0;
    for (;;) {
        off_t data = lseek(src, off, SEEK_DATA);
        if (data < 0)
            return errno == ENXIO ? 0 : -errno; /* ENXIO: no data after off */
        off_t hole = lseek(src, data, SEEK_HOLE);
        if (hole < 0)
            return -errno;
        loff_t in = data, out = data;
        while (in < hole) {
            ssize_t n = copy_file_range(src, &in, dst, &out, (size_t)(hole - in), 0);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                return n < 0 ? -errno : -EIO;
        }
        off = hole;
    }
}

/* Attaches backing to a free loop device that clears itself on last close; returns the open
 * device fd with its path in dev. */
static int loop_attach(int backing, char *dev, size_t size)
{
    int ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
    if (ctl < 0)
        return -errno;
    int rc = -EBUSY;
    for (int attempt = 0; attempt < 16 && rc == -EBUSY; attempt++) {
        int n = ioctl(ctl, LOOP_CTL_GET_FREE);
        if (n < 0) {
            rc = -errno;
            break;
        }
        snprintf(dev, size, "/dev/loop%d", n);
        int fd = open(dev, O_RDWR | O_CLOEXEC);
        if (fd < 0) {
            rc = -errno;
            break;
        }
        struct loop_config lc;
        memset(&lc, 0, sizeof(lc));
        lc.fd = (unsigned)backing;
        /* Direct I/O: the file's pages are not cached twice (the filesystem's own cache is
         * charged to the instance, as a Lambda's is; the loop's would be ours). */
        lc.info.lo_flags = LO_FLAGS_AUTOCLEAR | LO_FLAGS_DIRECT_IO;
        if (ioctl(fd, LOOP_CONFIGURE, &lc) == 0)
            rc = fd;
        else if (errno == EINVAL) {
            lc.info.lo_flags = LO_FLAGS_AUTOCLEAR;
            rc = ioctl(fd, LOOP_CONFIGURE, &lc) == 0 ? fd : -errno;
        } else
            rc = -errno; /* EBUSY: another process took it first */
        if (rc < 0)
            close(fd);
    }
    close(ctl);
    return rc;
}

/* A mounted filesystem of size_mb, as a detached mount (fsmount): attached nowhere until the
 * instance's sandbox moves it to /tmp inside its own mount namespace. */
static int make_scratch(struct scratch_pool *sp, unsigned size_mb, int *out)
{
    char template[PATH_MAX], image[PATH_MAX], dev[32];
    int rc = ensure_template(sp, size_mb, template, sizeof(template));
    if (rc < 0)
        return rc;
    unsigned long id = atomic_fetch_add(&sp->seq, 1);
    snprintf(image, sizeof(image), "%s/images/%lu.img", sp->dir, id);
    int src = -1, dst = -1, loop = -1, fs = -1, mnt = -1, root = -1;
    src = open(template, O_RDONLY | O_CLOEXEC);
    dst = open(image, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (src < 0 || dst < 0) {
        rc = -errno;
        goto out;
    }
    rc = copy_sparse(src, dst);
    if (rc == 0)
        rc = loop = loop_attach(dst, dev, sizeof(dev));
    unlink(image); /* the loop device holds it now, or nothing does */
    if (rc < 0)
        goto out;
    if ((fs = fsopen("ext4", FSOPEN_CLOEXEC)) < 0 ||
        fsconfig(fs, FSCONFIG_SET_STRING, "source", dev, 0) < 0 ||
        fsconfig(fs, FSCONFIG_SET_FLAG, "noinit_itable", NULL, 0) < 0 ||
        fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0 ||
        (mnt = fsmount(fs, FSMOUNT_CLOEXEC,
                       MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOATIME)) < 0) {
        rc = -errno;
        goto out;
    }
    /* /tmp as Lambda has it: empty, writable by the function's user. */
    root = openat(mnt, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (root < 0 || fchmod(root, 01777) < 0) {
        rc = -errno;
        goto out;
    }
    unlinkat(root, "lost+found", AT_REMOVEDIR);
    *out = mnt;
    mnt = -1;
    rc = 0;
out:
    for (int *fd = (int[]){src, dst, loop, fs, mnt, root}, i = 0; i < 6; i++)
        if (fd[i] >= 0)
            close(fd[i]); /* the mount holds the device; without one it clears itself */
    return rc;
}

/*=== The ready sets (loop thread) ===*/

static struct size_slot *slot_for(struct scratch_pool *sp, unsigned size_mb, int create)
{
    for (unsigned i = 0; i < sp->nslots; i++)
        if (sp->slots[i].size_mb == size_mb)
            return &sp->slots[i];
    if (!create)
        return NULL;
    if (sp->nslots == MAX_SIZES) { /* forget the size least recently used */
        struct size_slot *old = NULL;
        for (unsigned i = 0; i < sp->nslots; i++)
            if (!sp->slots[i].nmaking && (!old || sp->slots[i].last_used_us < old->last_used_us))
                old = &sp->slots[i];
        if (!old)
            return NULL;
        while (old->nready > 0)
            close(old->ready[--old->nready]);
        *old = sp->slots[--sp->nslots];
    }
    struct size_slot *slot = &sp->slots[sp->nslots++];
    *slot = (struct size_slot){.size_mb = size_mb};
    return slot;
}

struct make_job {
    struct scratch_pool *sp;
    unsigned size_mb;
    int fd; /* the mount, or -errno */
};

static void make_work(void *arg)
{
    struct make_job *job = arg;
    int rc = make_scratch(job->sp, job->size_mb, &job->fd);
    if (rc < 0)
        job->fd = rc;
}

static void make_done(void *arg)
{
    struct make_job *job = arg;
    struct scratch_pool *sp = job->sp;
    struct size_slot *slot = slot_for(sp, job->size_mb, 0);
    if (slot)
        slot->nmaking--;
    if (job->fd < 0 && !sp->warned) {
        log_warn("cannot prepare a %u MB /tmp for instances: %s", job->size_mb, strerror(-job->fd));
        sp->warned = 1;
    }
    if (job->fd >= 0) {
        if (slot && slot->nready < READY_PER_SIZE)
            slot->ready[slot->nready++] = job->fd;
        else
            close(job->fd);
    }
    free(job);
}

static void refill(struct scratch_pool *sp, struct size_slot *slot)
{
    while (slot->nready + slot->nmaking < READY_PER_SIZE) {
        struct make_job *job = calloc(1, sizeof(*job));
        if (!job)
            return;
        job->sp = sp;
        job->size_mb = slot->size_mb;
        if (workq_submit(sp->wq, make_work, make_done, job) < 0) {
            free(job);
            return;
        }
        slot->nmaking++;
    }
}

void scratch_prepare(struct scratch_pool *sp, unsigned size_mb)
{
    struct size_slot *slot = slot_for(sp, size_mb, 1);
    if (slot) {
        slot->last_used_us = mono_us();
        refill(sp, slot);
    }
}

int scratch_take(struct scratch_pool *sp, unsigned size_mb)
{
    struct size_slot *slot = slot_for(sp, size_mb, 1);
    int fd, rc;
    if (slot && slot->nready > 0)
        fd = slot->ready[--slot->nready];
    else if ((rc = make_scratch(sp, size_mb, &fd)) < 0) /* a burst outran the ready ones */
        fd = rc;
    if (slot) {
        slot->last_used_us = mono_us();
        refill(sp, slot);
    }
    return fd;
}

/*=== Lifecycle ===*/

struct scratch_pool *scratch_pool_new(struct workq *wq, const char *dir, unsigned default_mb,
                                      char *why, size_t whylen)
{
    struct scratch_pool *sp = calloc(1, sizeof(*sp));
    if (!sp) {
        snprintf(why, whylen, "%s", strerror(ENOMEM));
        return NULL;
    }
    sp->wq = wq;
    pthread_mutex_init(&sp->template_lock, NULL);
    char sub[PATH_MAX];
    static const char *const subdirs[] = {"templates", "images"};
    int rc = mkdir_p(dir, 0700);
    char *real = rc == 0 ? realpath(dir, NULL) : NULL;
    if (!real || strlen(real) >= sizeof(sp->dir)) {
        snprintf(why, whylen, "%s: %s", dir, strerror(rc < 0 ? -rc : real ? ENAMETOOLONG : errno));
        free(real);
        goto fail;
    }
    snprintf(sp->dir, sizeof(sp->dir), "%s", real);
    free(real);
    for (size_t i = 0; i < sizeof(subdirs) / sizeof(subdirs[0]); i++) {
        snprintf(sub, sizeof(sub), "%s/%s", sp->dir, subdirs[i]);
        if ((rc = mkdir_p(sub, 0700)) < 0) {
            snprintf(why, whylen, "%s: %s", sub, strerror(-rc));
            goto fail;
        }
    }
    /* Backing files a killed daemon left between creating and attaching them. */
    snprintf(sub, sizeof(sub), "%s/images", sp->dir);
    DIR *d = opendir(sub);
    for (struct dirent *e; d && (e = readdir(d));)
        if (e->d_name[0] != '.')
            unlinkat(dirfd(d), e->d_name, 0);
    if (d)
        closedir(d);

    int first;
    rc = make_scratch(sp, default_mb, &first);
    if (rc < 0) {
        if (rc == -ENOENT && access("/dev/loop-control", F_OK) == 0)
            snprintf(why, whylen, "mkfs.ext4 not found (Debian package e2fsprogs)");
        else
            snprintf(why, whylen, "a loop-mounted ext4 filesystem: %s", strerror(-rc));
        goto fail;
    }
    struct size_slot *slot = slot_for(sp, default_mb, 1);
    slot->ready[slot->nready++] = first;
    refill(sp, slot);
    return sp;
fail:
    pthread_mutex_destroy(&sp->template_lock);
    free(sp);
    return NULL;
}

void scratch_pool_free(struct scratch_pool *sp)
{
    if (!sp)
        return;
    for (unsigned i = 0; i < sp->nslots; i++)
        while (sp->slots[i].nready > 0)
            close(sp->slots[i].ready[--sp->slots[i].nready]);
    pthread_mutex_destroy(&sp->template_lock);
    free(sp);
}
