/*
 * fuzz_codestore: libFuzzer target for codestore_put. Each input goes into a fresh store
 * (under /dev/shm when there is one, so the syncs are cheap) and the store's promises are
 * checked after every put: a failure leaves blobs/ and code/ empty, a success leaves exactly
 * code/<hex> and blobs/<hex>.zip, the message is always terminated, and nothing appears next
 * to the store root. The store is removed after each input.
 * Seeds: tests/fuzz/corpus/codestore/ (a normal package, links inside and outside, "..",
 * a zip without Unix attributes).
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/codestore.h"
#include "store/codestore_internal.h"

static char base[64];
static char root[96];

static void remove_base(void)
{
    if (base[0])
        codestore_rmtree_at(AT_FDCWD, base);
}

static void die(const char *what)
{
    fprintf(stderr, "fuzz_codestore: %s (store left in %s)\n", what, base);
    abort();
}

/* Number of entries in dir; *only is set to the name when there is exactly one. */
static int count_entries(const char *dir, char *only, size_t size)
{
    DIR *d = opendir(dir);
    if (!d)
        die("opendir");
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        if (only && n == 0)
            snprintf(only, size, "%s", de->d_name);
        n++;
    }
    closedir(d);
    return n;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(base, sizeof(base), "%s/fuzz_codestore.XXXXXX", tmp);
    if (!mkdtemp(base))
        die("mkdtemp");
    snprintf(root, sizeof(root), "%s/store", base);
    atexit(remove_base);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (codestore_init(root) != 0)
        die("codestore_init");

    struct codestore_package p;
    char msg[256];
    memset(msg, 'x', sizeof(msg));
    int rc = codestore_put(root, data, size, &p, msg, sizeof(msg));
    if (rc > 0 || rc < CODESTORE_IO)
        die("return code out of range");
    if (!memchr(msg, '\0', sizeof(msg)))
        die("message not terminated");
    if (rc == CODESTORE_IO)
        die(msg); /* a disk error on tmpfs means a bug in the cleanup or the walk */

    char dir[PATH_MAX], name[256];
    int want = rc == 0 ? 1 : 0;
    snprintf(dir, sizeof(dir), "%s/code", root);
    if (count_entries(dir, name, sizeof(name)) != want)
        die("code/ holds the wrong number of entries");
    if (rc == 0 && strcmp(name, p.sha256_hex) != 0)
        die("code/ holds something other than the package");
    snprintf(dir, sizeof(dir), "%s/blobs", root);
    if (count_entries(dir, name, sizeof(name)) != want)
        die("blobs/ holds the wrong number of entries");
    if (rc == 0 && (strncmp(name, p.sha256_hex, 64) != 0 || strcmp(name + 64, ".zip") != 0))
        die("blobs/ holds something other than the zip");
    if (count_entries(base, NULL, 0) != 1 || count_entries(root, NULL, 0) != 2)
        die("something escaped the store");

    if (codestore_rmtree_at(AT_FDCWD, root) != 0)
        die("could not remove the store");
    return 0;
}
