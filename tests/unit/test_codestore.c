/*
 * test_codestore: the content-addressed code store (src/store/codestore.c). Test zips are
 * built here with libzip (modes and symlinks through external attributes), a few are fixed
 * byte arrays with digests computed by hand (sha256sum / base64), and hostile ones are byte
 * patched where libzip itself would refuse to write them. Every failing put is followed by a
 * check that blobs/ and code/ are empty and nothing appeared next to the store.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <zip.h>

#include "store/codestore.h"
#include "store/codestore_internal.h"

#define NOT_ZIP_MSG                                                                                \
    "Could not unzip uploaded file. Please check your file, then try to upload again."

/* A stored zip holding hello.txt = "hello\n" (0644, 2024-01-01), made with Python's zipfile. */
static const unsigned char hello_zip[] = {
    0x50, 0x4b, 0x03, 0x04, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x21, 0x58, 0x20, 0x30,
    0x3a, 0x36, 0x06, 0x00, 0x00, 0x00, 0x06, 0x00, 0x00, 0x00, 0x09, 0x00, 0x00, 0x00, 0x68, 0x65,
    0x6c, 0x6c, 0x6f, 0x2e, 0x74, 0x78, 0x74, 0x68, 0x65, 0x6c, 0x6c, 0x6f, 0x0a, 0x50, 0x4b, 0x01,
    0x02, 0x14, 0x03, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x21, 0x58, 0x20, 0x30, 0x3a,
    0x36, 0x06, 0x00, 0x00, 0x00, 0x06, 0x00, 0x00, 0x00, 0x09, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0xa4, 0x81, 0x00, 0x00, 0x00, 0x00, 0x68, 0x65, 0x6c, 0x6c, 0x6f,
    0x2e, 0x74, 0x78, 0x74, 0x50, 0x4b, 0x05, 0x06, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00,
    0x37, 0x00, 0x00, 0x00, 0x2d, 0x00, 0x00, 0x00, 0x00, 0x00};
#define HELLO_HEX "556955a53fcb019af84f30b298701eba8bacc6e0232d21ced887f5c7b65e51f1"
#define HELLO_B64 "VWlVpT/LAZr4TzCymHAeuousxuAjLSHO2If1x7ZeUfE="
#define HELLO_DATA_OFFSET 39 /* where "hello\n" sits in hello_zip */

/* The empty archive: just an end-of-central-directory record. */
static const unsigned char empty_zip[22] = {0x50, 0x4b, 0x05, 0x06};
#define EMPTY_HEX "8739c76e681f900923b900c9df0ef75cf421d39cabb54650c4b9ad19b6a76d85"
#define EMPTY_B64 "hznHbmgfkAkjuQDJ3w73XPQh05yrtUZQxLmtGbanbYU="

/* ---- fixture ---- */

struct fx {
    char base[64]; /* mkdtemp dir; holds only store/ */
    char root[96]; /* base/store */
    char msg[512];
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    strcpy(f->base, "/tmp/test_codestore.XXXXXX");
    assert_non_null(mkdtemp(f->base));
    snprintf(f->root, sizeof(f->root), "%s/store", f->base);
    assert_int_equal(codestore_init(f->root), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    assert_int_equal(codestore_rmtree_at(AT_FDCWD, f->base), 0);
    free(f);
    return 0;
}

/* ---- building zips ---- */

enum kind { K_FILE, K_DIR, K_LINK };
enum attrs { A_DEFAULT, A_UNIX, A_DOS };

struct zent {
    const char *name;
    enum kind kind;
    const char *data; /* file contents or link target */
    size_t len;       /* 0: strlen(data) */
    enum attrs attrs;
    unsigned mode; /* permission bits for A_UNIX */
};

static unsigned char *build_zip(const struct zent *e, size_t n, size_t *len)
{
    char path[] = "/tmp/test_codestore_zip.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    int err = 0;
    zip_t *za = zip_open(path, ZIP_CREATE | ZIP_TRUNCATE, &err);
    assert_non_null(za);
    for (size_t i = 0; i < n; i++) {
        zip_int64_t idx;
        if (e[i].kind == K_DIR) {
            idx = zip_dir_add(za, e[i].name, ZIP_FL_ENC_RAW);
        } else {
            size_t dlen = e[i].len ? e[i].len : strlen(e[i].data);
            zip_source_t *src = zip_source_buffer(za, e[i].data, dlen, 0);
            assert_non_null(src);
            idx = zip_file_add(za, e[i].name, src, ZIP_FL_ENC_RAW);
            if (idx < 0)
                zip_source_free(src);
        }
        if (idx < 0)
            fail_msg("libzip refused entry %s: %s", e[i].name, zip_strerror(za));
        unsigned type = e[i].kind == K_DIR ? S_IFDIR : e[i].kind == K_LINK ? S_IFLNK : S_IFREG;
        if (e[i].kind == K_LINK) {
            assert_int_equal(zip_file_set_external_attributes(za, (zip_uint64_t)idx, 0,
                                                              ZIP_OPSYS_UNIX,
                                                              (zip_uint32_t)(S_IFLNK | 0777) << 16),
                             0);
        } else if (e[i].attrs == A_UNIX) {
            zip_uint32_t a = (zip_uint32_t)(type | e[i].mode) << 16;
            assert_int_equal(
                zip_file_set_external_attributes(za, (zip_uint64_t)idx, 0, ZIP_OPSYS_UNIX, a), 0);
        } else if (e[i].attrs == A_DOS) {
            zip_uint32_t a =
                e[i].kind == K_DIR ? 0x10 : 0x20; /* FILE_ATTRIBUTE_{DIRECTORY,ARCHIVE} */
            assert_int_equal(
                zip_file_set_external_attributes(za, (zip_uint64_t)idx, 0, ZIP_OPSYS_DOS, a), 0);
        }
    }
    if (zip_close(za) < 0)
        fail_msg("zip_close: %s", zip_strerror(za));
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    fseek(fp, 0, SEEK_END);
    long size = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    assert_true(size > 0);
    unsigned char *bytes = malloc((size_t)size);
    assert_non_null(bytes);
    assert_int_equal(fread(bytes, 1, (size_t)size, fp), (size_t)size);
    fclose(fp);
    unlink(path);
    *len = (size_t)size;
    return bytes;
}

/* Replaces every occurrence of from by to (same length); returns how many. */
static int patch(unsigned char *buf, size_t len, const char *from, const char *to, size_t n)
{
    int count = 0;
    for (size_t i = 0; i + n <= len; i++) {
        if (memcmp(buf + i, from, n) == 0) {
            memcpy(buf + i, to, n);
            count++;
        }
    }
    return count;
}

/* ---- inspecting the store ---- */

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
            n++;
    closedir(d);
    return n;
}

static void sub_path(const struct fx *f, const char *sub, char *out, size_t size)
{
    snprintf(out, size, "%s/%s", f->root, sub);
}

/* Nothing in blobs/ or code/ (no temp files or dirs), nothing next to the store. */
static void assert_clean(const struct fx *f)
{
    char p[PATH_MAX];
    sub_path(f, "blobs", p, sizeof(p));
    assert_int_equal(count_entries(p), 0);
    sub_path(f, "code", p, sizeof(p));
    assert_int_equal(count_entries(p), 0);
    assert_int_equal(count_entries(f->base), 1);
    assert_int_equal(count_entries(f->root), 2);
}

static void pkg_path(const struct fx *f, const struct codestore_package *p, const char *rel,
                     char *out, size_t size)
{
    char dir[PATH_MAX];
    assert_int_equal(codestore_dir_path(f->root, p->sha256_hex, dir, sizeof(dir)), 0);
    snprintf(out, size, "%s/%s", dir, rel);
}

static unsigned mode_at(const char *path)
{
    struct stat st;
    if (lstat(path, &st) < 0)
        fail_msg("lstat %s: %s", path, strerror(errno));
    return st.st_mode & 07777;
}

static void assert_pkg_mode(const struct fx *f, const struct codestore_package *p, const char *rel,
                            unsigned mode, bool dir)
{
    char path[PATH_MAX];
    pkg_path(f, p, rel, path, sizeof(path));
    struct stat st;
    if (lstat(path, &st) < 0)
        fail_msg("lstat %s: %s", path, strerror(errno));
    if (dir)
        assert_true(S_ISDIR(st.st_mode));
    else
        assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 07777, mode);
}

static void assert_pkg_file(const struct fx *f, const struct codestore_package *p, const char *rel,
                            const void *data, size_t len)
{
    char path[PATH_MAX];
    pkg_path(f, p, rel, path, sizeof(path));
    FILE *fp = fopen(path, "rb");
    if (!fp)
        fail_msg("open %s: %s", path, strerror(errno));
    unsigned char *got = malloc(len + 1);
    assert_non_null(got);
    size_t n = fread(got, 1, len + 1, fp);
    fclose(fp);
    assert_int_equal(n, len);
    assert_memory_equal(got, data, len);
    free(got);
}

static bool pkg_exists(const struct fx *f, const struct codestore_package *p, const char *rel)
{
    char path[PATH_MAX];
    struct stat st;
    pkg_path(f, p, rel, path, sizeof(path));
    return lstat(path, &st) == 0;
}

static void assert_link(const struct fx *f, const struct codestore_package *p, const char *rel,
                        const char *target)
{
    char path[PATH_MAX], got[PATH_MAX];
    pkg_path(f, p, rel, path, sizeof(path));
    ssize_t n = readlink(path, got, sizeof(got) - 1);
    if (n < 0)
        fail_msg("readlink %s: %s", path, strerror(errno));
    got[n] = '\0';
    assert_string_equal(got, target);
}

static int put(struct fx *f, const void *zip, size_t len, struct codestore_package *p)
{
    memset(f->msg, 'x', sizeof(f->msg)); /* must come back NUL-terminated */
    return codestore_put(f->root, zip, len, p, f->msg, sizeof(f->msg));
}

static int put_zents(struct fx *f, const struct zent *e, size_t n, struct codestore_package *p)
{
    size_t len;
    unsigned char *zip = build_zip(e, n, &len);
    int rc = put(f, zip, len, p);
    free(zip);
    return rc;
}

/* A put that must fail with rc, a message containing want, and leave nothing behind. */
static void expect_reject(struct fx *f, const struct zent *e, size_t n, int rc, const char *want)
{
    struct codestore_package p;
    int got = put_zents(f, e, n, &p);
    if (got != rc)
        fail_msg("want %d, got %d (%s)", rc, got, got ? f->msg : "success");
    if (!strstr(f->msg, want))
        fail_msg("message \"%s\" lacks \"%s\"", f->msg, want);
    assert_clean(f);
}

#define N(a) (sizeof(a) / sizeof((a)[0]))

static void digest(const void *data, size_t len, char hex[65], char b64[45])
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    assert_int_equal(EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL), 1);
    assert_int_equal(mdlen, 32);
    for (int i = 0; i < 32; i++)
        sprintf(hex + 2 * i, "%02x", md[i]);
    assert_int_equal(EVP_EncodeBlock((unsigned char *)b64, md, 32), 44);
}

/* ---- packages that must go in ---- */

static void test_fixed_zip_digest(void **state)
{
    struct fx *f = *state;
    struct codestore_package p;
    assert_int_equal(put(f, hello_zip, sizeof(hello_zip), &p), 0);
    assert_string_equal(f->msg, "");
    assert_string_equal(p.sha256_hex, HELLO_HEX);
    assert_string_equal(p.sha256_b64, HELLO_B64);
    assert_int_equal(p.size, sizeof(hello_zip));
    assert_pkg_file(f, &p, "hello.txt", "hello\n", 6);
    assert_pkg_mode(f, &p, "hello.txt", 0444, false);
    assert_pkg_mode(f, &p, "", 0555, true);

    char path[PATH_MAX], want[PATH_MAX];
    assert_int_equal(codestore_zip_path(f->root, p.sha256_hex, path, sizeof(path)), 0);
    snprintf(want, sizeof(want), "%s/blobs/%s.zip", f->root, HELLO_HEX);
    assert_string_equal(path, want);
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    unsigned char blob[256];
    assert_int_equal(fread(blob, 1, sizeof(blob), fp), sizeof(hello_zip));
    fclose(fp);
    assert_memory_equal(blob, hello_zip, sizeof(hello_zip));
    assert_int_equal(mode_at(path), 0444);

    sub_path(f, "blobs", path, sizeof(path));
    assert_int_equal(count_entries(path), 1);
    sub_path(f, "code", path, sizeof(path));
    assert_int_equal(count_entries(path), 1);
}

static void test_empty_archive(void **state)
{
    struct fx *f = *state;
    struct codestore_package p;
    assert_int_equal(put(f, empty_zip, sizeof(empty_zip), &p), 0);
    assert_string_equal(p.sha256_hex, EMPTY_HEX);
    assert_string_equal(p.sha256_b64, EMPTY_B64);
    assert_int_equal(p.size, 22);
    char dir[PATH_MAX];
    pkg_path(f, &p, "", dir, sizeof(dir));
    assert_int_equal(count_entries(dir), 0);
    assert_pkg_mode(f, &p, "", 0555, true);
}

static void test_simple_package(void **state)
{
    struct fx *f = *state;
    const struct zent e[] = {
        {"index.js", K_FILE, "exports.handler = async () => 42;\n", 0, A_UNIX, 0644},
        {"bin/", K_DIR, NULL, 0, A_UNIX, 0755},
        {"bin/run.sh", K_FILE, "#!/bin/sh\necho hi\n", 0, A_UNIX, 0755},
        {"lib/", K_DIR, NULL, 0, A_DOS, 0},
        {"lib/util.js", K_FILE, "module.exports = {};\n", 0, A_DOS, 0},
    };
    size_t len;
    unsigned char *zip = build_zip(e, N(e), &len);
    struct codestore_package p;
    assert_int_equal(put(f, zip, len, &p), 0);

    char hex[65], b64[45];
    digest(zip, len, hex, b64);
    assert_string_equal(p.sha256_hex, hex);
    assert_string_equal(p.sha256_b64, b64);
    assert_int_equal(p.size, len);

    assert_pkg_file(f, &p, "index.js", e[0].data, strlen(e[0].data));
    assert_pkg_file(f, &p, "bin/run.sh", e[2].data, strlen(e[2].data));
    assert_pkg_file(f, &p, "lib/util.js", e[4].data, strlen(e[4].data));
    assert_pkg_mode(f, &p, "index.js", 0444, false);
    assert_pkg_mode(f, &p, "bin/run.sh", 0555, false);
    assert_pkg_mode(f, &p, "lib/util.js", 0444, false);
    assert_pkg_mode(f, &p, "", 0555, true);
    assert_pkg_mode(f, &p, "bin", 0555, true);
    assert_pkg_mode(f, &p, "lib", 0555, true);

    char dir[PATH_MAX];
    pkg_path(f, &p, "", dir, sizeof(dir));
    assert_int_equal(count_entries(dir), 3);
    free(zip);
}

static void test_idempotent(void **state)
{
    struct fx *f = *state;
    const struct zent e[] = {{"a.txt", K_FILE, "same bytes", 0, A_UNIX, 0644}};
    size_t len;
    unsigned char *zip = build_zip(e, N(e), &len);
    struct codestore_package p1, p2;
    assert_int_equal(put(f, zip, len, &p1), 0);
    char dir[PATH_MAX];
    pkg_path(f, &p1, "", dir, sizeof(dir));
    char blob[PATH_MAX];
    assert_int_equal(codestore_zip_path(f->root, p1.sha256_hex, blob, sizeof(blob)), 0);
    struct stat st1, st2, b1, b2;
    assert_int_equal(stat(dir, &st1), 0);
    assert_int_equal(stat(blob, &b1), 0);

    assert_int_equal(put(f, zip, len, &p2), 0);
    assert_memory_equal(&p1, &p2, sizeof(p1));
    assert_int_equal(stat(dir, &st2), 0);
    assert_int_equal(stat(blob, &b2), 0);
    assert_int_equal(st1.st_ino, st2.st_ino); /* not unpacked again */
    assert_int_equal(b1.st_ino, b2.st_ino);   /* nor the zip rewritten */

    char sub[PATH_MAX];
    sub_path(f, "code", sub, sizeof(sub));
    assert_int_equal(count_entries(sub), 1);
    sub_path(f, "blobs", sub, sizeof(sub));
    assert_int_equal(count_entries(sub), 1);
    free(zip);
}

static void test_nested_dirs(void **state)
{
    struct fx *f = *state;
    const struct zent e[] = {
        {"a/b/c/d.txt", K_FILE, "deep", 0, A_UNIX, 0644},
        {"a/b/e.txt", K_FILE, "less deep", 0, A_UNIX, 0644},
        {"x/./y//z.txt", K_FILE, "odd name", 0, A_UNIX, 0644},
        {"empty/dir/", K_DIR, NULL, 0, A_UNIX, 0755},
        {"a/b/", K_DIR, NULL, 0, A_UNIX, 0755}, /* after its contents: fine */
    };
    struct codestore_package p;
    assert_int_equal(put_zents(f, e, N(e), &p), 0);
    assert_pkg_file(f, &p, "a/b/c/d.txt", "deep", 4);
    assert_pkg_file(f, &p, "a/b/e.txt", "less deep", 9);
    assert_pkg_file(f, &p, "x/y/z.txt", "odd name", 8);
    const char *dirs[] = {"", "a", "a/b", "a/b/c", "x", "x/y", "empty", "empty/dir"};
    for (size_t i = 0; i < N(dirs); i++)
        assert_pkg_mode(f, &p, dirs[i], 0555, true);
    char dir[PATH_MAX];
    pkg_path(f, &p, "empty/dir", dir, sizeof(dir));
    assert_int_equal(count_entries(dir), 0);
}

static void test_exec_bits(void **state)
{
    struct fx *f = *state;
    const struct zent e[] = {
        {"rwxr-xr-x", K_FILE, "1", 0, A_UNIX, 0755}, {"rwx------", K_FILE, "2", 0, A_UNIX, 0700},
        {"--------x", K_FILE, "3", 0, A_UNIX, 0001}, {"rw-r--r--", K_FILE, "4", 0, A_UNIX, 0644},
        {"rw-------", K_FILE, "5", 0, A_UNIX, 0600}, {"setuid", K_FILE, "6", 0, A_UNIX, 04755},
        {"dos", K_FILE, "7", 0, A_DOS, 0},
    };
    struct codestore_package p;
    assert_int_equal(put_zents(f, e, N(e), &p), 0);
    assert_pkg_mode(f, &p, "rwxr-xr-x", 0555, false);
    assert_pkg_mode(f, &p, "rwx------", 0555, false);
    assert_pkg_mode(f, &p, "--------x", 0555, false);
    assert_pkg_mode(f, &p, "rw-r--r--", 0444, false);
    assert_pkg_mode(f, &p, "rw-------", 0444, false);
    assert_pkg_mode(f, &p, "setuid", 0555, false); /* never setuid */
    assert_pkg_mode(f, &p, "dos", 0444, false);
}

static void test_bootstrap_without_attributes(void **state)
{
    struct fx *f = *state;
    const struct zent e[] = {
        {"bootstrap", K_FILE, "#!/bin/sh\n", 0, A_DOS, 0},
        {"sub/bootstrap", K_FILE, "#!/bin/sh\n", 0, A_DOS, 0},
        {"bootstrap.sh", K_FILE, "#!/bin/sh\n", 0, A_DOS, 0},
    };
    struct codestore_package p;
    assert_int_equal(put_zents(f, e, N(e), &p), 0);
    assert_pkg_mode(f, &p, "bootstrap", 0555, false);
    assert_pkg_mode(f, &p, "sub/bootstrap", 0444, false);
    assert_pkg_mode(f, &p, "bootstrap.sh", 0444, false);

    /* "./bootstrap" is top level too */
    const struct zent dot[] = {{"./bootstrap", K_FILE, "#!/bin/sh\n", 0, A_DOS, 0}};
    assert_int_equal(put_zents(f, dot, N(dot), &p), 0);
    assert_pkg_mode(f, &p, "bootstrap", 0555, false);

    /* a top-level directory named bootstrap is no exception */
    const struct zent dir[] = {{"bootstrap/run", K_FILE, "#!/bin/sh\n", 0, A_DOS, 0}};
    assert_int_equal(put_zents(f, dir, N(dir), &p), 0);
    assert_pkg_mode(f, &p, "bootstrap/run", 0444, false);

    /* a Unix mode is believed, even one without x */
    const struct zent unix_mode[] = {{"bootstrap", K_FILE, "#!/bin/bash\n", 0, A_UNIX, 0644}};
    assert_int_equal(put_zents(f, unix_mode, N(unix_mode), &p), 0);
    assert_pkg_mode(f, &p, "bootstrap", 0444, false);
}

static void test_allowed_symlinks(void **state)
{
    struct fx *f = *state;
    const struct zent e[] = {
        {"lib/real.so", K_FILE, "ELF", 0, A_UNIX, 0755},
        {"lib/link.so", K_LINK, "real.so", 0, A_UNIX, 0},
        {"bin/tool", K_LINK, "../lib/real.so", 0, A_UNIX, 0},
        {"a/b/up", K_LINK, "../../lib/./real.so", 0, A_UNIX, 0},
        {"top", K_LINK, "lib", 0, A_UNIX, 0},
        {"here", K_LINK, ".", 0, A_UNIX, 0},
        {"a/root", K_LINK, "..", 0, A_UNIX, 0},
        {"dangling", K_LINK, "not/there", 0, A_UNIX, 0},
    };
    struct codestore_package p;
    assert_int_equal(put_zents(f, e, N(e), &p), 0);
    assert_link(f, &p, "lib/link.so", "real.so");
    assert_link(f, &p, "bin/tool", "../lib/real.so");
    assert_link(f, &p, "a/b/up", "../../lib/./real.so");
    assert_link(f, &p, "top", "lib");
    assert_link(f, &p, "here", ".");
    assert_link(f, &p, "a/root", "..");
    assert_link(f, &p, "dangling", "not/there");
    /* following them lands on the file */
    assert_pkg_file(f, &p, "bin/tool", "ELF", 3);
    assert_pkg_file(f, &p, "a/b/up", "ELF", 3);
    assert_pkg_file(f, &p, "top/link.so", "ELF", 3);
    assert_pkg_file(f, &p, "a/root/lib/real.so", "ELF", 3);
}

static void test_large_file_streams(void **state)
{
    struct fx *f = *state;
    size_t big = 3 * 1024 * 1024 + 17; /* many decompression chunks, odd tail */
    char *data = malloc(big);
    assert_non_null(data);
    uint32_t x = 12345;
    for (size_t i = 0; i < big; i++) {
        x = x * 1103515245 + 12345;
        data[i] = (char)(x >> 16);
    }
    const struct zent e[] = {{"blob.bin", K_FILE, data, big, A_UNIX, 0644}};
    struct codestore_package p;
    assert_int_equal(put_zents(f, e, N(e), &p), 0);
    assert_pkg_file(f, &p, "blob.bin", data, big);
    free(data);
}

static void test_backslash_is_a_name(void **state)
{
    struct fx *f = *state;
    /* On Linux a backslash is an ordinary byte: this is one file inside the package. */
    const struct zent e[] = {{"..\\evil", K_FILE, "x", 0, A_DOS, 0}};
    struct codestore_package p;
    assert_int_equal(put_zents(f, e, N(e), &p), 0);
    assert_pkg_file(f, &p, "..\\evil", "x", 1);
    assert_int_equal(count_entries(f->base), 1);
}

static void test_nul_in_name(void **state)
{
    struct fx *f = *state;
    /* libzip turns a NUL inside a stored name into a space; it can never truncate a name. */
    const struct zent e[] = {{"aXb", K_FILE, "x", 0, A_UNIX, 0644}};
    size_t len;
    unsigned char *zip = build_zip(e, N(e), &len);
    assert_int_equal(patch(zip, len, "aXb", "a\0b", 3), 2);
    struct codestore_package p;
    assert_int_equal(put(f, zip, len, &p), 0);
    assert_true(pkg_exists(f, &p, "a b"));
    assert_false(pkg_exists(f, &p, "a"));
    free(zip);

    /* and "evil\0/../../x" keeps its ".." */
    const struct zent e2[] = {{"evilX/../../x", K_FILE, "x", 0, A_UNIX, 0644}};
    zip = build_zip(e2, N(e2), &len);
    assert_int_equal(patch(zip, len, "evilX", "evil\0", 5), 2);
    char code[PATH_MAX];
    sub_path(f, "code", code, sizeof(code));
    int before = count_entries(code);
    assert_int_equal(put(f, zip, len, &p), CODESTORE_HOSTILE);
    assert_int_equal(count_entries(code), before);
    free(zip);
}

/* ---- hostile packages ---- */

static void test_dotdot_name(void **state)
{
    const struct zent e[] = {{"ok.txt", K_FILE, "fine", 0, A_UNIX, 0644},
                             {"../evil", K_FILE, "pwned", 0, A_UNIX, 0644}};
    expect_reject(*state, e, N(e), CODESTORE_HOSTILE,
                  "Could not unzip uploaded file: entry \"../evil\" escapes the package");
}

static void test_deep_dotdot_name(void **state)
{
    const struct zent e[] = {{"../../../../../../../../tmp/evil", K_FILE, "x", 0, A_UNIX, 0644}};
    expect_reject(*state, e, N(e), CODESTORE_HOSTILE, "escapes the package");
}

static void test_absolute_name(void **state)
{
    const struct zent e[] = {{"/abs", K_FILE, "pwned", 0, A_UNIX, 0644}};
    expect_reject(*state, e, N(e), CODESTORE_HOSTILE, "entry \"/abs\" escapes the package");
}

static void test_inner_dotdot_name(void **state)
{
    const struct zent e[] = {{"a/../../x", K_FILE, "pwned", 0, A_UNIX, 0644}};
    expect_reject(*state, e, N(e), CODESTORE_HOSTILE, "escapes the package");
    /* even a ".." that would stay inside is refused */
    const struct zent e2[] = {{"a/../b", K_FILE, "x", 0, A_UNIX, 0644}};
    expect_reject(*state, e2, N(e2), CODESTORE_HOSTILE, "escapes the package");
    const struct zent e3[] = {{"a/../", K_DIR, NULL, 0, A_UNIX, 0755}};
    expect_reject(*state, e3, N(e3), CODESTORE_HOSTILE, "escapes the package");
}

static void test_symlink_absolute(void **state)
{
    const struct zent e[] = {{"passwd", K_LINK, "/etc/passwd", 0, A_UNIX, 0}};
    expect_reject(*state, e, N(e), CODESTORE_HOSTILE, "entry \"passwd\" escapes the package");
}

static void test_symlink_up_then_write(void **state)
{
    /* link -> .. already escapes; the file after it must never be written */
    const struct zent e[] = {{"link", K_LINK, "..", 0, A_UNIX, 0},
                             {"link/x", K_FILE, "pwned", 0, A_UNIX, 0644}};
    expect_reject(*state, e, N(e), CODESTORE_HOSTILE, "entry \"link\" escapes the package");
}

static void test_write_through_inner_symlink(void **state)
{
    struct fx *f = *state;
    /* sub/link -> .. is the package root (allowed), but nothing is written through it */
    const struct zent e[] = {{"sub/link", K_LINK, "..", 0, A_UNIX, 0},
                             {"sub/link/x", K_FILE, "pwned", 0, A_UNIX, 0644}};
    expect_reject(f, e, N(e), CODESTORE_HOSTILE, "entry \"sub/link/x\" would be written through");
    /* nor a directory entry, nor through a link to a real dir */
    const struct zent e2[] = {{"real/", K_DIR, NULL, 0, A_UNIX, 0755},
                              {"l", K_LINK, "real", 0, A_UNIX, 0},
                              {"l/x", K_FILE, "pwned", 0, A_UNIX, 0644}};
    expect_reject(f, e2, N(e2), CODESTORE_HOSTILE, "entry \"l/x\"");
    const struct zent e3[] = {{"l", K_LINK, "real", 0, A_UNIX, 0},
                              {"l/sub/", K_DIR, NULL, 0, A_UNIX, 0755}};
    expect_reject(f, e3, N(e3), CODESTORE_HOSTILE, "entry \"l/sub/\"");
}

static void test_symlink_escapes(void **state)
{
    struct fx *f = *state;
    const struct zent up2[] = {{"a/up", K_LINK, "../../x", 0, A_UNIX, 0}};
    expect_reject(f, up2, N(up2), CODESTORE_HOSTILE, "escapes the package");
    const struct zent up1[] = {{"up", K_LINK, "../store", 0, A_UNIX, 0}};
    expect_reject(f, up1, N(up1), CODESTORE_HOSTILE, "escapes the package");
    /* a -> . is fine, but b -> a/.. would really be the parent: ".." after a name is refused */
    const struct zent chain[] = {{"a", K_LINK, ".", 0, A_UNIX, 0},
                                 {"b", K_LINK, "a/..", 0, A_UNIX, 0}};
    expect_reject(f, chain, N(chain), CODESTORE_HOSTILE, "entry \"b\" has a link target");
    const struct zent empty[] = {{"e", K_LINK, "", 0, A_UNIX, 0}};
    expect_reject(f, empty, N(empty), CODESTORE_HOSTILE, "invalid link target");
    const struct zent nul[] = {{"n", K_LINK, "ok\0/../../../etc", 16, A_UNIX, 0}};
    expect_reject(f, nul, N(nul), CODESTORE_HOSTILE, "invalid link target");
}

static void test_symlink_target_too_long(void **state)
{
    char *t = malloc(PATH_MAX + 10);
    assert_non_null(t);
    memset(t, 'a', PATH_MAX + 9);
    t[PATH_MAX + 9] = '\0';
    const struct zent e[] = {{"long", K_LINK, t, 0, A_UNIX, 0}};
    expect_reject(*state, e, N(e), CODESTORE_HOSTILE, "invalid link target");
    free(t);
}

/* libzip will not write one name twice: write "...-B" and patch it into "...-A". */
static void expect_duplicate_rejected(struct fx *f, const struct zent *e, size_t n,
                                      const char *want)
{
    size_t len;
    unsigned char *zip = build_zip(e, n, &len);
    assert_int_equal(patch(zip, len, "samename-B", "samename-A", 10), 2);
    struct codestore_package p;
    assert_int_equal(put(f, zip, len, &p), CODESTORE_HOSTILE);
    if (!strstr(f->msg, want))
        fail_msg("message \"%s\" lacks \"%s\"", f->msg, want);
    assert_clean(f);
    free(zip);
}

static void test_conflicts(void **state)
{
    struct fx *f = *state;
    /* duplicates are refused, never overwritten */
    const struct zent two_files[] = {{"samename-A", K_FILE, "first", 0, A_UNIX, 0644},
                                     {"samename-B", K_FILE, "second", 0, A_UNIX, 0644}};
    expect_duplicate_rejected(f, two_files, N(two_files),
                              "entry \"samename-A\" conflicts with an earlier entry");
    const struct zent file_link[] = {{"samename-A", K_FILE, "first", 0, A_UNIX, 0644},
                                     {"samename-B", K_LINK, "other", 0, A_UNIX, 0}};
    expect_duplicate_rejected(f, file_link, N(file_link), "conflicts with an earlier entry");
    /* a file over an earlier symlink is not written through it */
    const struct zent link_file[] = {{"samename-A", K_LINK, "target", 0, A_UNIX, 0},
                                     {"samename-B", K_FILE, "pwned", 0, A_UNIX, 0644}};
    expect_duplicate_rejected(f, link_file, N(link_file), "conflicts with an earlier entry");

    const struct zent file_dir[] = {{"d", K_FILE, "x", 0, A_UNIX, 0644},
                                    {"d/", K_DIR, NULL, 0, A_UNIX, 0755}};
    expect_reject(f, file_dir, N(file_dir), CODESTORE_HOSTILE, "entry \"d/\"");
    const struct zent dir_file[] = {{"e/", K_DIR, NULL, 0, A_UNIX, 0755},
                                    {"e", K_FILE, "x", 0, A_UNIX, 0644}};
    expect_reject(f, dir_file, N(dir_file), CODESTORE_HOSTILE,
                  "entry \"e\" conflicts with an earlier entry");
    const struct zent file_under_file[] = {{"f", K_FILE, "x", 0, A_UNIX, 0644},
                                           {"f/g", K_FILE, "y", 0, A_UNIX, 0644}};
    expect_reject(f, file_under_file, N(file_under_file), CODESTORE_HOSTILE, "entry \"f/g\"");
}

static void test_messages_are_safe(void **state)
{
    struct fx *f = *state;
    char name[3000] = "q\"\n\x01";
    while (strlen(name) < sizeof(name) - 20)
        strcat(name, "nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn/");
    strcat(name, "../x");
    const struct zent e[] = {{name, K_FILE, "x", 0, A_UNIX, 0644}};
    expect_reject(f, e, N(e), CODESTORE_HOSTILE,
                  "Could not unzip uploaded file: entry \"q???nnnnnnnn");
    assert_non_null(strstr(f->msg, "...\" escapes the package"));
    assert_null(strchr(f->msg, '\n'));
    assert_true(strlen(f->msg) < 200);

    /* a small buffer gets a truncated, terminated message */
    size_t len;
    unsigned char *zip = build_zip(e, N(e), &len);
    char small[16];
    memset(small, 'x', sizeof(small));
    assert_int_equal(codestore_put(f->root, zip, len, NULL, small, sizeof(small)),
                     CODESTORE_HOSTILE);
    assert_int_equal(strlen(small), sizeof(small) - 1);
    assert_memory_equal(small, "Could not unzip", 15);
    /* and no buffer at all is fine */
    assert_int_equal(codestore_put(f->root, zip, len, NULL, NULL, 0), CODESTORE_HOSTILE);
    assert_clean(f);
    free(zip);
}

static void test_bad_names(void **state)
{
    struct fx *f = *state;
    /* more components than the walk allows */
    char deep[1024] = "";
    for (int i = 0; i < 300; i++)
        strcat(deep, "d/");
    strcat(deep, "f");
    const struct zent e1[] = {{deep, K_FILE, "x", 0, A_UNIX, 0644}};
    expect_reject(f, e1, N(e1), CODESTORE_HOSTILE, "nested too deeply");
    /* a component longer than NAME_MAX */
    char longc[NAME_MAX + 8];
    memset(longc, 'c', sizeof(longc) - 1);
    longc[sizeof(longc) - 1] = '\0';
    const struct zent e2[] = {{longc, K_FILE, "x", 0, A_UNIX, 0644}};
    expect_reject(f, e2, N(e2), CODESTORE_HOSTILE, "invalid name");
    char longdir[NAME_MAX + 16];
    snprintf(longdir, sizeof(longdir), "%s/f", longc);
    const struct zent e2d[] = {{longdir, K_FILE, "x", 0, A_UNIX, 0644}};
    expect_reject(f, e2d, N(e2d), CODESTORE_HOSTILE, "invalid name");
    /* a file whose name is only separators and dots */
    const struct zent e3[] = {{"./.", K_FILE, "x", 0, A_UNIX, 0644}};
    expect_reject(f, e3, N(e3), CODESTORE_HOSTILE, "invalid name");
}

/* ---- not zips ---- */

static void test_not_zip(void **state)
{
    struct fx *f = *state;
    struct codestore_package p;
    const char garbage[] = "this is certainly not a zip archive, just some words";
    assert_int_equal(put(f, garbage, sizeof(garbage), &p), CODESTORE_NOT_ZIP);
    assert_string_equal(f->msg, NOT_ZIP_MSG);
    assert_clean(f);

    assert_int_equal(put(f, "", 0, &p), CODESTORE_NOT_ZIP);
    assert_string_equal(f->msg, NOT_ZIP_MSG);
    assert_int_equal(put(f, NULL, 0, &p), CODESTORE_NOT_ZIP);
    assert_clean(f);

    /* a local header and nothing after it */
    assert_int_equal(put(f, hello_zip, 60, &p), CODESTORE_NOT_ZIP);
    assert_string_equal(f->msg, NOT_ZIP_MSG);
    assert_clean(f);
}

static void test_corrupt_data(void **state)
{
    struct fx *f = *state;
    /* the directory is intact, the data fails its CRC while being unpacked */
    unsigned char bad[sizeof(hello_zip)];
    memcpy(bad, hello_zip, sizeof(bad));
    assert_int_equal(bad[HELLO_DATA_OFFSET], 'h');
    bad[HELLO_DATA_OFFSET] = 'j';
    struct codestore_package p;
    assert_int_equal(put(f, bad, sizeof(bad), &p), CODESTORE_NOT_ZIP);
    assert_string_equal(f->msg, NOT_ZIP_MSG);
    assert_clean(f);
}

/* ---- caps ---- */

static int put_capped(struct fx *f, const struct zent *e, size_t n, uint64_t max_unzipped,
                      uint64_t max_entries)
{
    size_t len;
    unsigned char *zip = build_zip(e, n, &len);
    struct codestore_package p;
    int rc = codestore_put_capped(f->root, zip, len, max_unzipped, max_entries, &p, f->msg,
                                  sizeof(f->msg));
    free(zip);
    return rc;
}

static void test_zip_bomb(void **state)
{
    struct fx *f = *state;
    size_t big = 8 * 1024 * 1024;
    char *zeros = calloc(1, big);
    assert_non_null(zeros);
    const struct zent e[] = {{"bomb", K_FILE, zeros, big, A_UNIX, 0644}};
    size_t len;
    unsigned char *zip = build_zip(e, N(e), &len);
    assert_true(len < big / 100); /* it is a bomb */
    struct codestore_package p;
    assert_int_equal(
        codestore_put_capped(f->root, zip, len, 1024 * 1024, 10, &p, f->msg, sizeof(f->msg)),
        CODESTORE_TOO_BIG);
    assert_string_equal(f->msg, "Unzipped size must be smaller than 1048576 bytes");
    assert_clean(f);

    /* headers that lie about the size change nothing: bytes are counted as written */
    int patched = 0;
    for (size_t i = 0; i + 30 < len; i++) {
        if (!memcmp(zip + i, "PK\x03\x04", 4)) {
            memcpy(zip + i + 22, "\x01\x00\x00\x00", 4);
            patched++;
        } else if (!memcmp(zip + i, "PK\x01\x02", 4)) {
            memcpy(zip + i + 24, "\x01\x00\x00\x00", 4);
            patched++;
        }
    }
    assert_int_equal(patched, 2);
    assert_int_equal(
        codestore_put_capped(f->root, zip, len, 1024 * 1024, 10, &p, f->msg, sizeof(f->msg)),
        CODESTORE_TOO_BIG);
    assert_clean(f);
    free(zip);
    free(zeros);
}

static void test_unzipped_cap_boundary(void **state)
{
    struct fx *f = *state;
    char data[1000];
    memset(data, 'z', sizeof(data));
    const struct zent under[] = {{"f", K_FILE, data, 999, A_UNIX, 0644}};
    assert_int_equal(put_capped(f, under, N(under), 1000, 10), 0);
    const struct zent at[] = {{"f", K_FILE, data, 1000, A_UNIX, 0644}};
    assert_int_equal(put_capped(f, at, N(at), 1000, 10), CODESTORE_TOO_BIG);
    assert_string_equal(f->msg, "Unzipped size must be smaller than 1000 bytes");
    /* the total counts across files, and link targets count too */
    const struct zent two[] = {{"a", K_FILE, data, 500, A_UNIX, 0644},
                               {"b", K_FILE, data, 500, A_UNIX, 0644}};
    assert_int_equal(put_capped(f, two, N(two), 1000, 10), CODESTORE_TOO_BIG);
    const struct zent link[] = {{"a", K_FILE, data, 995, A_UNIX, 0644},
                                {"l", K_LINK, "a/b/c/d", 0, A_UNIX, 0}};
    assert_int_equal(put_capped(f, link, N(link), 1000, 10), CODESTORE_TOO_BIG);
    /* only the first package went in */
    char code[PATH_MAX];
    sub_path(f, "code", code, sizeof(code));
    assert_int_equal(count_entries(code), 1);
}

static void test_entry_cap(void **state)
{
    struct fx *f = *state;
    const struct zent e[] = {
        {"1", K_FILE, "1", 0, A_UNIX, 0644},  {"2", K_FILE, "2", 0, A_UNIX, 0644},
        {"3/", K_DIR, NULL, 0, A_UNIX, 0755}, {"3/4", K_FILE, "4", 0, A_UNIX, 0644},
        {"5", K_LINK, "1", 0, A_UNIX, 0},
    };
    assert_int_equal(put_capped(f, e, N(e), 1 << 20, 4), CODESTORE_TOO_BIG);
    assert_non_null(strstr(f->msg, "more than 4 entries"));
    assert_clean(f);
    assert_int_equal(put_capped(f, e, N(e), 1 << 20, 5), 0);
}

/* ---- the rest of the interface ---- */

struct race {
    const char *root;
    const unsigned char *zip;
    size_t len;
    pthread_barrier_t *barrier;
    int rc;
    struct codestore_package p;
};

static void *race_put(void *arg)
{
    struct race *r = arg;
    char msg[256];
    pthread_barrier_wait(r->barrier);
    r->rc = codestore_put(r->root, r->zip, r->len, &r->p, msg, sizeof(msg));
    return NULL;
}

static void test_concurrent_puts(void **state)
{
    struct fx *f = *state;
    const struct zent e[] = {{"index.js", K_FILE, "racing", 0, A_UNIX, 0644},
                             {"d/e/f", K_FILE, "deeper", 0, A_UNIX, 0755}};
    size_t len;
    unsigned char *zip = build_zip(e, N(e), &len);
    enum { THREADS = 4 };
    pthread_t t[THREADS];
    struct race r[THREADS];
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, THREADS);
    for (int i = 0; i < THREADS; i++) {
        r[i] = (struct race){.root = f->root, .zip = zip, .len = len, .barrier = &barrier};
        assert_int_equal(pthread_create(&t[i], NULL, race_put, &r[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(r[i].rc, 0);
        assert_string_equal(r[i].p.sha256_hex, r[0].p.sha256_hex);
    }
    pthread_barrier_destroy(&barrier);
    char sub[PATH_MAX];
    sub_path(f, "code", sub, sizeof(sub));
    assert_int_equal(count_entries(sub), 1); /* losers removed their temp dirs */
    sub_path(f, "blobs", sub, sizeof(sub));
    assert_int_equal(count_entries(sub), 1);
    assert_pkg_file(f, &r[0].p, "d/e/f", "deeper", 6);
    assert_pkg_mode(f, &r[0].p, "d/e/f", 0555, false);
    free(zip);
}

static void test_init_and_paths(void **state)
{
    struct fx *f = *state;
    assert_int_equal(codestore_init(f->root), 0); /* again: fine */

    char other[128], path[PATH_MAX];
    snprintf(other, sizeof(other), "%s/other", f->base);
    struct codestore_package p;
    /* not initialised */
    assert_int_equal(codestore_put(other, hello_zip, sizeof(hello_zip), &p, f->msg, sizeof(f->msg)),
                     CODESTORE_IO);
    assert_non_null(strstr(f->msg, "Could not store code package"));
    /* blobs is a file */
    assert_int_equal(mkdir(other, 0755), 0);
    snprintf(path, sizeof(path), "%s/blobs", other);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fclose(fp);
    assert_int_equal(codestore_init(other), -ENOTDIR);
    assert_int_equal(codestore_rmtree_at(AT_FDCWD, other), 0);

    assert_int_equal(codestore_zip_path("/srv/x", HELLO_HEX, path, sizeof(path)), 0);
    assert_string_equal(path, "/srv/x/blobs/" HELLO_HEX ".zip");
    assert_int_equal(codestore_dir_path("/srv/x", HELLO_HEX, path, sizeof(path)), 0);
    assert_string_equal(path, "/srv/x/code/" HELLO_HEX);
    char small[20];
    assert_int_equal(codestore_zip_path("/srv/x", HELLO_HEX, small, sizeof(small)), -ENAMETOOLONG);
    assert_int_equal(codestore_dir_path("/srv/x", HELLO_HEX, small, sizeof(small)), -ENAMETOOLONG);
    assert_int_equal(codestore_dir_path("/srv/x", "../../etc", path, sizeof(path)), -EINVAL);
    assert_int_equal(codestore_zip_path("/srv/x", "ABCD", path, sizeof(path)), -EINVAL);
}

static void test_rmtree_sealed_package(void **state)
{
    struct fx *f = *state;
    const struct zent e[] = {{"a/b/c", K_FILE, "x", 0, A_UNIX, 0644},
                             {"a/l", K_LINK, "b", 0, A_UNIX, 0}};
    struct codestore_package p;
    assert_int_equal(put_zents(f, e, N(e), &p), 0);
    char dir[PATH_MAX];
    assert_int_equal(codestore_dir_path(f->root, p.sha256_hex, dir, sizeof(dir)), 0);
    assert_int_equal(codestore_rmtree_at(AT_FDCWD, dir), 0);
    struct stat st;
    assert_int_equal(lstat(dir, &st), -1);
    assert_int_equal(codestore_rmtree_at(AT_FDCWD, dir), 0); /* already gone: fine */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
        T(test_fixed_zip_digest),
        T(test_empty_archive),
        T(test_simple_package),
        T(test_idempotent),
        T(test_nested_dirs),
        T(test_exec_bits),
        T(test_bootstrap_without_attributes),
        T(test_allowed_symlinks),
        T(test_large_file_streams),
        T(test_backslash_is_a_name),
        T(test_nul_in_name),
        T(test_dotdot_name),
        T(test_deep_dotdot_name),
        T(test_absolute_name),
        T(test_inner_dotdot_name),
        T(test_symlink_absolute),
        T(test_symlink_up_then_write),
        T(test_write_through_inner_symlink),
        T(test_symlink_escapes),
        T(test_symlink_target_too_long),
        T(test_conflicts),
        T(test_messages_are_safe),
        T(test_bad_names),
        T(test_not_zip),
        T(test_corrupt_data),
        T(test_zip_bomb),
        T(test_unzipped_cap_boundary),
        T(test_entry_cap),
        T(test_concurrent_puts),
        T(test_init_and_paths),
        T(test_rmtree_sealed_package),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
