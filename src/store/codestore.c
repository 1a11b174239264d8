/*
 * codestore: owns the two directories under a store root, <root>/blobs (uploaded zips, named
 * by SHA-256) and <root>/code (each zip unpacked once, read-only), and the only code that
 * writes into them. A put unpacks into <root>/code/.tmp-<random> with libzip, walking every
 * entry name component by component with openat/mkdirat and O_NOFOLLOW, so nothing is ever
 * written through a symlink, whatever the archive holds; sizes are counted as bytes come out
 * of the decompressor, never taken from headers. Only when the whole tree is written, sealed
 * (0555 dirs) and synced is the zip written to blobs/ (temp + fsync + rename) and the tree
 * renamed to code/<hex>. Any failure removes the temp tree and temp blob, so hostile or broken
 * uploads never leave anything behind.
 */
#include "store/codestore.h"
#include "store/codestore_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zip.h>

#include "core/buf.h"
#include "core/util.h"

/* Lambda's wording for an upload that is not a zip (InvalidParameterValueException). */
#define MSG_NOT_ZIP                                                                                \
    "Could not unzip uploaded file. Please check your file, then try to upload again."

#define CHUNK_SIZE (64 * 1024) /* decompression buffer: memory use does not grow with the zip */
#define MAX_NAME_LEN (PATH_MAX - 1) /* an entry name must be usable as a path */
#define MAX_DEPTH 256               /* components per entry name; bounds the fds a walk holds */
#define MAX_LINK_LEN (PATH_MAX - 1) /* symlink target bytes */
#define RMTREE_MAX_DEPTH 1024       /* recursion guard for the remover and the sealer */
#define TMP_NAME_SIZE 24            /* ".tmp-" + 16 hex + NUL */

struct comp {
    const char *p;
    size_t n;
};

/* State of one unpack; heap-allocated (the component table and the chunk are large). */
struct unpack {
    zip_t *za;
    int top;        /* the temp package dir */
    uint64_t total; /* unzipped bytes written so far */
    uint64_t max_unzipped;
    char *msg;
    size_t msg_size;
    size_t ncomp;
    struct comp comps[MAX_DEPTH];
    char last[NAME_MAX + 1];       /* the entry's last component, NUL-terminated */
    char target[MAX_LINK_LEN + 1]; /* a symlink entry's target */
    char chunk[CHUNK_SIZE];
};

static void set_msg(char *msg, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_msg(char *msg, size_t size, const char *fmt, ...)
{
    if (!msg || size == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, size, fmt, ap); /* truncates, always NUL-terminates */
    va_end(ap);
}

static int fail_io(char *msg, size_t size, const char *what, int err)
{
    char ebuf[128];
    set_msg(msg, size, "Could not store code package: %s: %s", what,
            strerror_r(err, ebuf, sizeof(ebuf)));
    return CODESTORE_IO;
}

static int fail_not_zip(char *msg, size_t size)
{
    set_msg(msg, size, "%s", MSG_NOT_ZIP);
    return CODESTORE_NOT_ZIP;
}

/*
 * Entry names are client bytes: quote them for a message as printable ASCII only (anything
 * else, and quotes and backslashes, become '?'), at most 96 bytes, "..." if cut.
 */
static void printable_name(const char *name, char *out, size_t size)
{
    size_t i = 0, limit = size - 4 < 96 ? size - 4 : 96;
    for (; name[i] && i < limit; i++) {
        unsigned char c = (unsigned char)name[i];
        out[i] = (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') ? '?' : (char)c;
    }
    out[i] = '\0';
    if (name[i])
        memcpy(out + i, "...", 4);
}

static int fail_hostile(struct unpack *u, const char *name, const char *why)
{
    char shown[104];
    printable_name(name, shown, sizeof(shown));
    set_msg(u->msg, u->msg_size, "Could not unzip uploaded file: entry \"%s\" %s", shown, why);
    return CODESTORE_HOSTILE;
}

static int fail_too_big(struct unpack *u)
{
    set_msg(u->msg, u->msg_size, "Unzipped size must be smaller than %llu bytes",
            (unsigned long long)u->max_unzipped);
    return CODESTORE_TOO_BIG;
}

/* errno from creating an entry's path: for these the archive, not the disk, is at fault. */
static int fail_entry(struct unpack *u, const char *name, int err)
{
    switch (err) {
    case EEXIST:
        return fail_hostile(u, name, "conflicts with an earlier entry");
    case ENOTDIR:
    case ELOOP:
    case EISDIR:
        return fail_hostile(u, name, "would be written through a symbolic link or file");
    case ENAMETOOLONG:
        return fail_hostile(u, name, "has an invalid name");
    default:
        return fail_io(u->msg, u->msg_size, "unpacking", err);
    }
}

/*
 * Next component of *s, skipping empty and "." ones; 0 at the end. "a//./b/" is a, b.
 */
static size_t next_comp(const char **s, const char **comp)
{
    const char *p = *s;
    for (;;) {
        while (*p == '/')
            p++;
        if (!*p) {
            *s = p;
            return 0;
        }
        const char *e = strchrnul(p, '/');
        if (e - p == 1 && p[0] == '.') {
            p = e;
            continue;
        }
        *comp = p;
        *s = e;
        return (size_t)(e - p);
    }
}

/*
 * Splits an entry name into u->comps. Refuses absolute names and any ".." (even one that
 * would stay inside: nothing legitimate needs it, and refusing it keeps the walk trivial).
 * An embedded NUL never reaches us: libzip hands names out as C strings and replaces NULs
 * inside a stored name with spaces, so "evil\0/../x" arrives as "evil /../x" and is refused
 * for its "..", while "a\0b" becomes the harmless "a b" (never a truncated "a").
 */
static int split_name(struct unpack *u, const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || len > MAX_NAME_LEN)
        return fail_hostile(u, name, "has an invalid name");
    if (name[0] == '/')
        return fail_hostile(u, name, "escapes the package");
    u->ncomp = 0;
    const char *s = name, *c = NULL;
    size_t n;
    while ((n = next_comp(&s, &c)) > 0) {
        if (n == 2 && c[0] == '.' && c[1] == '.')
            return fail_hostile(u, name, "escapes the package");
        if (n > NAME_MAX)
            return fail_hostile(u, name, "has an invalid name");
        if (u->ncomp == MAX_DEPTH)
            return fail_hostile(u, name, "is nested too deeply");
        u->comps[u->ncomp].p = c;
        u->comps[u->ncomp].n = n;
        u->ncomp++;
    }
    return 0;
}

static void comp_copy(const struct comp *c, char out[NAME_MAX + 1])
{
    memcpy(out, c->p, c->n);
    out[c->n] = '\0';
}

/* Opens directory comp under parent, creating it (0755 until sealed) if missing. */
static int open_or_make_dir(int parent, const char *comp)
{
    int flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
    int fd = openat(parent, comp, flags);
    if (fd >= 0)
        return fd;
    if (errno != ENOENT)
        return -errno;
    if (mkdirat(parent, comp, 0755) < 0 && errno != EEXIST)
        return -errno;
    fd = openat(parent, comp, flags);
    return fd >= 0 ? fd : -errno;
}

/*
 * Opens (creating as needed) the directory made of the first count components, starting at
 * u->top. O_NOFOLLOW on every step: a component that is a symlink fails (ELOOP/ENOTDIR),
 * whatever it points to. Returns an fd the caller closes, or -errno.
 */
static int open_dirs(struct unpack *u, size_t count)
{
    int fd = fcntl(u->top, F_DUPFD_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    for (size_t i = 0; i < count; i++) {
        char comp[NAME_MAX + 1];
        comp_copy(&u->comps[i], comp);
        int next = open_or_make_dir(fd, comp);
        close(fd);
        if (next < 0)
            return next;
        fd = next;
    }
    return fd;
}

/*
 * Streams entry i into fd (fd >= 0) or into u->target (fd < 0, at most MAX_LINK_LEN bytes;
 * *got gets the length). Every byte counts against the unzipped cap as it comes out of the
 * decompressor: header sizes are not trusted, so a bomb stops at the cap.
 */
static int copy_entry(struct unpack *u, zip_uint64_t i, const char *name, int fd, size_t *got)
{
    zip_file_t *zf = zip_fopen_index(u->za, i, 0);
    if (!zf)
        return fail_not_zip(u->msg, u->msg_size); /* encrypted, unknown method, bad header */
    int rc = 0;
    size_t have = 0;
    for (;;) {
        zip_int64_t n;
        if (fd >= 0) {
            n = zip_fread(zf, u->chunk, sizeof(u->chunk));
        } else {
            /* ask for one byte more than fits, to notice an over-long target */
            n = zip_fread(zf, u->target + have, sizeof(u->target) - have);
        }
        if (n < 0) {
            rc = fail_not_zip(u->msg, u->msg_size); /* corrupt data, CRC or size mismatch */
            goto out;
        }
        if (n == 0)
            break;
        u->total += (uint64_t)n;
        if (u->total >= u->max_unzipped) {
            rc = fail_too_big(u);
            goto out;
        }
        if (fd >= 0) {
            int err = write_all(fd, u->chunk, (size_t)n);
            if (err) {
                rc = fail_io(u->msg, u->msg_size, "writing a file", -err);
                goto out;
            }
        } else {
            have += (size_t)n;
            if (have > MAX_LINK_LEN) {
                rc = fail_hostile(u, name, "has an invalid link target");
                goto out;
            }
        }
    }
    if (got)
        *got = have;
out:
    if (zip_fclose(zf) != 0 && rc == 0)
        rc = fail_not_zip(u->msg, u->msg_size);
    return rc;
}

static int unpack_file(struct unpack *u, zip_uint64_t i, const char *name, mode_t mode)
{
    int parent = open_dirs(u, u->ncomp - 1);
    if (parent < 0)
        return fail_entry(u, name, -parent);
    comp_copy(&u->comps[u->ncomp - 1], u->last);
    /*
     * O_EXCL refuses whatever is already there: an earlier symlink (never followed), a
     * directory, or a duplicate name. Duplicates are refused rather than overwritten: it is
     * the simplest safe rule, and no tool that builds deployment packages emits them.
     */
    int fd = openat(parent, u->last, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    int err = errno;
    close(parent);
    if (fd < 0)
        return fail_entry(u, name, err);
    int rc = copy_entry(u, i, name, fd, NULL);
    if (rc == 0 && fchmod(fd, mode) < 0)
        rc = fail_io(u->msg, u->msg_size, "chmod", errno);
    if (close(fd) < 0 && rc == 0)
        rc = fail_io(u->msg, u->msg_size, "writing a file", errno);
    return rc;
}

/*
 * A symlink's target must be relative and, read lexically from the link's directory, stay
 * inside the package. Lexical reading is only sound if no ".." follows a name (with a link
 * "a -> .", "a/.." lexically is the package root but really its parent), so ".." is allowed
 * only as leading components: "../../lib/x.so" is fine, "lib/../x" is refused. Every link's
 * own directory is a real directory (we never write through links), so by induction no chain
 * of accepted links leads outside.
 */
static int check_link_target(struct unpack *u, const char *name, const char *target)
{
    if (target[0] == '\0')
        return fail_hostile(u, name, "has an invalid link target");
    if (target[0] == '/')
        return fail_hostile(u, name, "escapes the package");
    size_t depth = u->ncomp - 1; /* directories above the link */
    bool named = false;
    const char *s = target, *c = NULL;
    size_t n;
    while ((n = next_comp(&s, &c)) > 0) {
        if (n == 2 && c[0] == '.' && c[1] == '.') {
            if (named)
                return fail_hostile(u, name, "has a link target with '..' after a name");
            if (depth == 0)
                return fail_hostile(u, name, "escapes the package");
            depth--;
        } else {
            named = true;
        }
    }
    return 0;
}

static int unpack_link(struct unpack *u, zip_uint64_t i, const char *name)
{
    size_t len = 0;
    int rc = copy_entry(u, i, name, -1, &len);
    if (rc)
        return rc;
    if (memchr(u->target, '\0', len))
        return fail_hostile(u, name, "has an invalid link target");
    u->target[len] = '\0';
    rc = check_link_target(u, name, u->target);
    if (rc)
        return rc;
    int parent = open_dirs(u, u->ncomp - 1);
    if (parent < 0)
        return fail_entry(u, name, -parent);
    comp_copy(&u->comps[u->ncomp - 1], u->last);
    rc = symlinkat(u->target, parent, u->last) < 0 ? fail_entry(u, name, errno) : 0;
    close(parent);
    return rc;
}

static int unpack_entry(struct unpack *u, zip_uint64_t i)
{
    /* Raw bytes, as Info-ZIP's unzip would create them on Linux; no CP437 guessing. */
    const char *name = zip_get_name(u->za, i, ZIP_FL_ENC_RAW);
    zip_uint8_t opsys;
    zip_uint32_t attr;
    if (!name || zip_file_get_external_attributes(u->za, i, 0, &opsys, &attr) < 0)
        return fail_not_zip(u->msg, u->msg_size);
    /* Only zips made on Unix carry a mode, in the high 16 bits; DOS/NTFS attributes are not. */
    mode_t umode = opsys == ZIP_OPSYS_UNIX ? (mode_t)(attr >> 16) : 0;
    int rc = split_name(u, name);
    if (rc)
        return rc;

    if (name[strlen(name) - 1] == '/') { /* directory entry, whatever its mode says */
        int fd = open_dirs(u, u->ncomp);
        if (fd < 0)
            return fail_entry(u, name, -fd);
        close(fd);
        return 0;
    }
    if (u->ncomp == 0)
        return fail_hostile(u, name, "has an invalid name");
    if (S_ISLNK(umode))
        return unpack_link(u, i, name);

    /*
     * Anything else becomes a regular file (no devices, FIFOs or sockets). 0555 if the mode
     * has any exec bit. Zips without a Unix mode (Windows tools, Java's zip) cannot say; a
     * custom runtime's top-level bootstrap must be executable, so it gets 0555 anyway. AWS
     * documents that bootstrap needs 755, yet such zips work there in practice.
     */
    mode_t mode = 0444;
    if (umode != 0) {
        if (umode & 0111)
            mode = 0555;
    } else if (u->ncomp == 1 && u->comps[0].n == 9 && memcmp(u->comps[0].p, "bootstrap", 9) == 0) {
        mode = 0555;
    }
    return unpack_file(u, i, name, mode);
}

static bool entry_is_dir(int dirfd, const struct dirent *de)
{
    if (de->d_type != DT_UNKNOWN)
        return de->d_type == DT_DIR;
    struct stat st;
    return fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
}

/* chmod 0555 every directory at and under fd, children first. Returns 0 or -errno. */
static int seal_tree(int fd, int depth)
{
    if (depth > RMTREE_MAX_DEPTH)
        return -ELOOP;
    int dfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (dfd < 0)
        return -errno;
    DIR *d = fdopendir(dfd);
    if (!d) {
        int err = errno;
        close(dfd);
        return -err;
    }
    int rc = 0;
    for (;;) {
        errno = 0;
        struct dirent *de = readdir(d);
        if (!de) {
            if (errno)
                rc = -errno;
            break;
        }
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") || !entry_is_dir(fd, de))
            continue;
        int child = openat(fd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (child < 0) {
            rc = -errno;
            break;
        }
        rc = seal_tree(child, depth + 1);
        close(child);
        if (rc)
            break;
    }
    closedir(d);
    if (rc == 0 && fchmod(fd, 0555) < 0)
        rc = -errno;
    return rc;
}

static int rmtree_at(int dirfd, const char *name, int depth)
{
    if (unlinkat(dirfd, name, 0) == 0)
        return 0;
    if (errno == ENOENT)
        return 0;
    if (errno != EISDIR && errno != EPERM) /* Linux says EISDIR; POSIX allows EPERM */
        return -errno;
    if (depth > RMTREE_MAX_DEPTH)
        return -ELOOP;
    int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : -errno;
    (void)fchmod(fd, 0700); /* sealed dirs are 0555: entries cannot go without w (non-root) */
    DIR *d = fdopendir(fd);
    if (!d) {
        int err = errno;
        close(fd);
        return -err;
    }
    int rc = 0, removed;
    /* Removing while reading may hide entries from readdir: rescan until a pass finds none. */
    do {
        removed = 0;
        rewinddir(d);
        struct dirent *de;
        while ((de = readdir(d))) {
            if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                continue;
            int r = rmtree_at(fd, de->d_name, depth + 1);
            if (r == 0)
                removed++;
            else if (rc == 0)
                rc = r;
        }
    } while (removed > 0);
    closedir(d);
    if (unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT && rc == 0)
        rc = -errno;
    return rc;
}

int codestore_rmtree_at(int dirfd, const char *name)
{
    return rmtree_at(dirfd, name, 0);
}

static void tmp_name(char out[TMP_NAME_SIZE])
{
    unsigned char r[8];
    random_bytes(r, sizeof(r));
    memcpy(out, ".tmp-", 5);
    hex_encode(r, sizeof(r), out + 5);
}

static int open_store_dir(const char *root, const char *sub)
{
    char path[PATH_MAX];
    int n = snprintf(path, sizeof(path), "%s/%s", root, sub);
    if (n < 0 || (size_t)n >= sizeof(path))
        return -ENAMETOOLONG;
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    return fd >= 0 ? fd : -errno;
}

static bool dir_exists_at(int dirfd, const char *name)
{
    struct stat st;
    return fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
}

/*
 * Writes the zip as blobs/<hex>.zip: temp file, fsync, rename, fsync of the directory. The
 * temp name goes to tmp so the caller's cleanup can remove it; it is cleared once renamed.
 */
static int write_blob(int blobs, const char *hex, const void *zip, size_t len,
                      char tmp[TMP_NAME_SIZE], char *msg, size_t msg_size)
{
    int fd = -1, rc = 0;
    for (int tries = 0; fd < 0; tries++) {
        tmp_name(tmp);
        fd = openat(blobs, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0 && (errno != EEXIST || tries == 8)) {
            int err = errno;
            tmp[0] = '\0';
            return fail_io(msg, msg_size, "creating the zip file", err);
        }
    }
    int err = write_all(fd, zip, len);
    if (err == 0 && fchmod(fd, 0444) < 0)
        err = -errno;
    if (err == 0 && fsync(fd) < 0)
        err = -errno;
    if (close(fd) < 0 && err == 0)
        err = -errno;
    if (err) {
        rc = fail_io(msg, msg_size, "writing the zip file", -err);
        goto out;
    }
    char final[80];
    snprintf(final, sizeof(final), "%s.zip", hex);
    if (renameat(blobs, tmp, blobs, final) < 0) {
        rc = fail_io(msg, msg_size, "renaming the zip file", errno);
        goto out;
    }
    tmp[0] = '\0';
    if (fsync(blobs) < 0)
        rc = fail_io(msg, msg_size, "syncing blobs/", errno);
out:
    return rc;
}

int codestore_put_capped(const char *root, const void *zip, size_t len, uint64_t max_unzipped,
                         uint64_t max_entries, struct codestore_package *out, char *msg,
                         size_t msg_size)
{
    struct codestore_package pkg;
    struct unpack *u = NULL;
    struct buf b64 = BUF_INIT;
    zip_source_t *src = NULL;
    zip_t *za = NULL;
    int blobs = -1, code = -1, top = -1, rc;
    char tmpdir[TMP_NAME_SIZE] = "", tmpblob[TMP_NAME_SIZE] = "", blob_name[80] = "";
    unsigned char md[32];

    memset(&pkg, 0, sizeof(pkg));
    if (out)
        memset(out, 0, sizeof(*out));
    set_msg(msg, msg_size, "%s", "");
    if (!zip || len == 0) {
        /* libzip would take zero bytes for an empty archive */
        rc = fail_not_zip(msg, msg_size);
        goto out;
    }

    sha256(zip, len, md);
    hex_encode(md, sizeof(md), pkg.sha256_hex);
    if (base64_encode(&b64, md, sizeof(md)) < 0 || b64.len != sizeof(pkg.sha256_b64) - 1) {
        rc = fail_io(msg, msg_size, "encoding the digest", ENOMEM);
        goto out;
    }
    memcpy(pkg.sha256_b64, b64.data, b64.len + 1);
    pkg.size = len;
    snprintf(blob_name, sizeof(blob_name), "%s.zip", pkg.sha256_hex);

    if ((code = open_store_dir(root, "code")) < 0) {
        rc = fail_io(msg, msg_size, "opening code/", -code);
        goto out;
    }
    if ((blobs = open_store_dir(root, "blobs")) < 0) {
        rc = fail_io(msg, msg_size, "opening blobs/", -blobs);
        goto out;
    }
    if (dir_exists_at(code, pkg.sha256_hex)) {
        rc = 0; /* the same bytes were stored before */
        goto out;
    }

    zip_error_t zerr;
    zip_error_init(&zerr);
    src = zip_source_buffer_create(zip, len, 0, &zerr); /* no copy: zip outlives the archive */
    if (src)
        za = zip_open_from_source(src, ZIP_RDONLY, &zerr); /* on success za owns src */
    zip_error_fini(&zerr);
    if (!za) {
        rc = fail_not_zip(msg, msg_size);
        goto out;
    }
    zip_int64_t n = zip_get_num_entries(za, 0);
    if (n < 0) {
        rc = fail_not_zip(msg, msg_size);
        goto out;
    }
    if ((uint64_t)n > max_entries) {
        set_msg(msg, msg_size, "Could not unzip uploaded file: more than %llu entries",
                (unsigned long long)max_entries);
        rc = CODESTORE_TOO_BIG;
        goto out;
    }

    for (int tries = 0;; tries++) {
        tmp_name(tmpdir);
        if (mkdirat(code, tmpdir, 0755) == 0)
            break;
        if (errno != EEXIST || tries == 8) {
            rc = fail_io(msg, msg_size, "creating a temp dir", errno);
            tmpdir[0] = '\0';
            goto out;
        }
    }
    if ((top = openat(code, tmpdir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
        rc = fail_io(msg, msg_size, "opening a temp dir", errno);
        goto out;
    }

    if (!(u = malloc(sizeof(*u)))) {
        rc = fail_io(msg, msg_size, "unpacking", ENOMEM);
        goto out;
    }
    u->za = za;
    u->top = top;
    u->total = 0;
    u->max_unzipped = max_unzipped;
    u->msg = msg;
    u->msg_size = msg_size;
    for (zip_int64_t i = 0; i < n; i++) {
        if ((rc = unpack_entry(u, (zip_uint64_t)i)) != 0)
            goto out;
    }

    /*
     * Dirs were 0755 while being filled; seal them now. One syncfs makes every file and
     * directory of the tree durable before the rename publishes it (an fsync per file would
     * cost seconds for a node_modules-sized package).
     */
    int err = seal_tree(top, 0);
    if (err) {
        rc = fail_io(msg, msg_size, "sealing the package", -err);
        goto out;
    }
    if (syncfs(top) < 0) {
        rc = fail_io(msg, msg_size, "syncing the package", errno);
        goto out;
    }

    if ((rc = write_blob(blobs, pkg.sha256_hex, zip, len, tmpblob, msg, msg_size)) != 0)
        goto out;

    if (renameat(code, tmpdir, code, pkg.sha256_hex) < 0) {
        if (errno == EEXIST || errno == ENOTEMPTY) {
            rc = 0; /* another put of the same bytes won the race; ours goes in cleanup */
            goto out;
        }
        rc = fail_io(msg, msg_size, "publishing the package", errno);
        /*
         * Take our blob back unless a concurrent put of the same bytes published the package
         * meanwhile (it may still be between its blob and its rename: a tiny window in which
         * it would fail to find the blob it already wrote; such a rename failure is EIO-rare).
         */
        if (!dir_exists_at(code, pkg.sha256_hex))
            unlinkat(blobs, blob_name, 0);
        goto out;
    }
    tmpdir[0] = '\0';
    (void)fsync(code); /* published either way; the directory sync is best effort */
    rc = 0;

out:
    if (za)
        zip_discard(za);
    else if (src)
        zip_source_free(src);
    if (top >= 0)
        close(top);
    if (tmpdir[0])
        codestore_rmtree_at(code, tmpdir);
    if (tmpblob[0])
        unlinkat(blobs, tmpblob, 0);
    if (code >= 0)
        close(code);
    if (blobs >= 0)
        close(blobs);
    free(u);
    buf_release(&b64);
    if (rc == 0 && out)
        *out = pkg;
    return rc;
}

int codestore_put(const char *root, const void *zip, size_t len, struct codestore_package *out,
                  char *msg, size_t msg_size)
{
    return codestore_put_capped(root, zip, len, (uint64_t)CODESTORE_MAX_UNZIPPED,
                                CODESTORE_MAX_ENTRIES, out, msg, msg_size);
}

int codestore_init(const char *root)
{
    static const char *const subs[] = {"", "/blobs", "/code"};
    for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
        char path[PATH_MAX];
        int n = snprintf(path, sizeof(path), "%s%s", root, subs[i]);
        if (n < 0 || (size_t)n >= sizeof(path))
            return -ENAMETOOLONG;
        if (mkdir(path, 0755) < 0 && errno != EEXIST)
            return -errno;
        struct stat st;
        if (stat(path, &st) < 0)
            return -errno;
        if (!S_ISDIR(st.st_mode))
            return -ENOTDIR;
    }
    return 0;
}

/*
 * The hex comes from our own database, but a path helper is the last place to stop a
 * traversal: anything but 64 lowercase hex digits is -EINVAL.
 */
static bool valid_hex(const char *hex)
{
    size_t i = 0;
    for (; hex[i]; i++) {
        if (!((hex[i] >= '0' && hex[i] <= '9') || (hex[i] >= 'a' && hex[i] <= 'f')))
            return false;
    }
    return i == 64;
}

static int store_path(char *out, size_t size, const char *root, const char *sub, const char *hex,
                      const char *suffix)
{
    if (!valid_hex(hex))
        return -EINVAL;
    int n = snprintf(out, size, "%s/%s/%s%s", root, sub, hex, suffix);
    if (n < 0 || (size_t)n >= size) {
        if (size)
            out[0] = '\0';
        return -ENAMETOOLONG;
    }
    return 0;
}

int codestore_zip_path(const char *root, const char *sha256_hex, char *out, size_t size)
{
    return store_path(out, size, root, "blobs", sha256_hex, ".zip");
}

int codestore_dir_path(const char *root, const char *sha256_hex, char *out, size_t size)
{
    return store_path(out, size, root, "code", sha256_hex, "");
}
