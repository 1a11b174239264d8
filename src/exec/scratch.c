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
#include "exec/prepared.h"

/* Bump when the template's mkfs options change: old templates are then ignored. */
#define TEMPLATE_TAG "ext4v1"

struct scratch {
    char dir[PATH_MAX - 64];
    pthread_mutex_t template_lock; /* one mkfs at a time */
    atomic_ulong seq;
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
static int ensure_template(struct scratch *sp, unsigned size_mb, char *out, size_t size)
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
static int make_scratch(struct scratch *sp, unsigned size_mb, int *out)
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

/*=== Lifecycle ===*/

int scratch_make(void *arg, unsigned size_mb, struct prepared *out)
{
    return make_scratch(arg, size_mb, &out->fd[0]);
}

struct scratch *scratch_new(const char *dir, unsigned probe_mb, char *why, size_t whylen)
{
    struct scratch *sp = calloc(1, sizeof(*sp));
    if (!sp) {
        snprintf(why, whylen, "%s", strerror(ENOMEM));
        return NULL;
    }
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

    int probe;
    rc = make_scratch(sp, probe_mb, &probe);
    if (rc < 0) {
        if (rc == -ENOENT && access("/dev/loop-control", F_OK) == 0)
            snprintf(why, whylen, "mkfs.ext4 not found (Debian package e2fsprogs)");
        else
            snprintf(why, whylen, "a loop-mounted ext4 filesystem: %s", strerror(-rc));
        goto fail;
    }
    close(probe);
    return sp;
fail:
    pthread_mutex_destroy(&sp->template_lock);
    free(sp);
    return NULL;
}

void scratch_free(struct scratch *sp)
{
    if (!sp)
        return;
    pthread_mutex_destroy(&sp->template_lock);
    free(sp);
}
