/*
 * files: where object bytes live. Every object and part is one file
 * <data>/s3/objects/<2 hex>/<32 hex id>, the id random (never derived from
 * the key, so no key can name a path); bytes are first written to
 * <data>/s3/tmp/, fsync'd, then renamed into place, so an object file is
 * always complete. Rows point at files; a file is removed after the row that
 * replaced it is committed, so a crash can leave unreferenced files (and
 * temp files) but never a row without its bytes: s3_files_recover removes
 * both at start. The blocking part (fsync, copying parts together for
 * CompleteMultipartUpload and CopyObject) runs on the work queue.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "core/workq.h"
#include "services/s3/s3_internal.h"

void s3_file_id(char id[33])
{
    unsigned char raw[16];
    random_bytes(raw, sizeof(raw));
    hex_encode(raw, sizeof(raw), id);
}

void s3_file_path(struct s3 *s3, const char *id, char *out, size_t size)
{
    snprintf(out, size, "%s/objects/%.2s/%s", s3->root, id, id);
}

int s3_temp_open(struct s3 *s3, char *path, size_t size)
{
    char id[33];
    s3_file_id(id);
    snprintf(path, size, "%s/tmp/%s", s3->root, id);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        int e = errno;
        log_error("s3: open %s: %s", path, strerror(e));
        return -e;
    }
    return fd;
}

void s3_file_remove(struct s3 *s3, const char *id)
{
    if (!id || !id[0])
        return;
    char path[PATH_MAX];
    s3_file_path(s3, id, path, sizeof(path));
    if (unlink(path) < 0 && errno != ENOENT)
        log_warn("s3: unlink %s: %s", path, strerror(errno));
}

static int is_file_id(const char *name)
{
    if (strlen(name) != 32)
        return 0;
    for (int i = 0; i < 32; i++)
        if (hex_digit_value((unsigned char)name[i]) < 0)
            return 0;
    return 1;
}

void s3_files_recover(struct s3 *s3)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/tmp", s3->root);
    DIR *d = opendir(path);
    int removed = 0;
    struct dirent *e;
    if (d) {
        while ((e = readdir(d)))
            if (e->d_name[0] != '.' && unlinkat(dirfd(d), e->d_name, 0) == 0)
                removed++;
        closedir(d);
    }
    snprintf(path, sizeof(path), "%s/objects", s3->root);
    DIR *top = opendir(path);
    while (top && (e = readdir(top))) {
        if (e->d_name[0] == '.')
            continue;
        char sub[PATH_MAX];
        snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
        DIR *s = opendir(sub);
        struct dirent *f;
        while (s && (f = readdir(s))) {
            if (f->d_name[0] == '.')
                continue;
            if (!is_file_id(f->d_name) || s3_file_in_use(s3, f->d_name) == 0) {
                if (unlinkat(dirfd(s), f->d_name, 0) == 0)
                    removed++;
            }
        }
        if (s)
            closedir(s);
    }
    if (top)
        closedir(top);
    if (removed)
        log_info("s3: removed %d unfinished or unreferenced file(s)", removed);
}

/*=== Jobs on the work queue ===*/

/* Copies len bytes of in from offset to out's end, hashing them into md
 * when md is not NULL. */
static int copy_range(int in, uint64_t offset, uint64_t len, int out, EVP_MD_CTX *md)
{
    if (!md) {
        loff_t off = (loff_t)offset;
        while (len > 0) {
            ssize_t n =
                copy_file_range(in, &off, out, NULL, len > (1u << 30) ? (1u << 30) : len, 0);
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                if (errno == EXDEV || errno == ENOSYS || errno == EOPNOTSUPP || errno == EINVAL)
                    break; /* fall back to read/write from where it stopped */
                return -errno;
            }
            if (n == 0)
                return -EIO; /* the file is shorter than its row says */
            len -= (uint64_t)n;
        }
        offset = (uint64_t)off;
        if (len == 0)
            return 0;
    }
    size_t bufsize = 1u << 20;
    char *buf = malloc(bufsize);
    if (!buf)
        return -ENOMEM;
    int rc = 0;
    while (len > 0 && !rc) {
        size_t want = len < bufsize ? (size_t)len : bufsize;
        ssize_t n = pread(in, buf, want, (off_t)offset);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            rc = -errno;
            break;
        }
        if (n == 0) {
            rc = -EIO;
            break;
        }
        if (md && EVP_DigestUpdate(md, buf, (size_t)n) != 1)
            rc = -EIO;
        if (!rc)
            rc = write_all(out, buf, (size_t)n);
        offset += (uint64_t)n;
        len -= (uint64_t)n;
    }
    free(buf);
    return rc;
}

/* fsync fd, rename tmp to the id's path, fsync the directory. */
static int publish(struct s3 *s3, int fd, const char *tmp, const char *id)
{
    if (fsync(fd) < 0)
        return -errno;
    char path[PATH_MAX], dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s/objects/%.2s", s3->root, id);
    if (mkdir(dir, 0700) < 0 && errno != EEXIST)
        return -errno;
    s3_file_path(s3, id, path, sizeof(path));
    if (rename(tmp, path) < 0)
        return -errno;
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return 0;
}

static void job_work(void *arg)
{
    struct s3_file_job *j = arg;
    struct s3 *s3 = j->s3;
    int rc = 0;
    EVP_MD_CTX *md = NULL;
    if (j->fd < 0) {
        j->fd = s3_temp_open(s3, j->tmp, sizeof(j->tmp));
        if (j->fd < 0) {
            j->err = j->fd;
            return;
        }
        if (j->want_md5) {
            md = EVP_MD_CTX_new();
            if (!md || EVP_DigestInit_ex(md, EVP_md5(), NULL) != 1)
                rc = -ENOMEM;
        }
        j->size = 0;
        for (size_t i = 0; i < j->nsrcs && !rc; i++) {
            char path[PATH_MAX];
            s3_file_path(s3, j->srcs[i].file, path, sizeof(path));
            int in = open(path, O_RDONLY | O_CLOEXEC);
            if (in < 0) {
                rc = -errno;
                break;
            }
            rc = copy_range(in, j->srcs[i].offset, j->srcs[i].len, j->fd, md);
            close(in);
            j->size += j->srcs[i].len;
        }
        if (md) {
            unsigned int n = 0;
            if (!rc && EVP_DigestFinal_ex(md, j->md5, &n) != 1)
                rc = -EIO;
            EVP_MD_CTX_free(md);
        }
    }
    s3_file_id(j->file);
    if (!rc)
        rc = publish(s3, j->fd, j->tmp, j->file);
    if (rc) {
        unlink(j->tmp);
        j->file[0] = '\0';
    }
    close(j->fd);
    j->fd = -1;
    j->err = rc;
}

static void job_done(void *arg)
{
    struct s3_file_job *j = arg;
    j->s3->jobs--;
    if (j->err)
        log_error("s3: storing an object file: %s", strerror(-j->err));
    j->done(j, j->arg);
    free(j->srcs);
    free(j);
}

int s3_file_job_submit(struct s3 *s3, struct s3_file_job *j)
{
    j->s3 = s3;
    int rc = workq_submit(s3->wq, job_work, job_done, j);
    if (rc == 0)
        s3->jobs++;
    return rc;
}
