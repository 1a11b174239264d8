/*
 * codestore: function code packages, content-addressed by SHA-256.
 *
 * A zip is kept as <root>/blobs/<sha256-hex>.zip and unpacked once into
 * <root>/code/<sha256-hex>/, read-only (dirs 0555, files 0444, or 0555 when
 * the zip marks them executable). Both appear atomically (temp + rename), so
 * a crash never leaves a half-written package, and both are idempotent: the
 * same bytes stored twice are one package. Unpacking refuses hostile input:
 * absolute paths, '..' components, symlinks that point outside the package
 * or are written through, more than CODESTORE_MAX_UNZIPPED bytes or
 * CODESTORE_MAX_ENTRIES entries, and anything that is not a zip.
 *
 * Blocking (disk I/O): call from a worker thread, not the event loop.
 * Thread-safe: no shared mutable state beyond the directory tree.
 */
#ifndef IGNIS_STORE_CODESTORE_H
#define IGNIS_STORE_CODESTORE_H

#include <stddef.h>

#define CODESTORE_MAX_UNZIPPED 262144000L /* Lambda's 250 MB unzipped limit */
#define CODESTORE_MAX_ENTRIES 100000

enum codestore_error {
    CODESTORE_OK = 0,
    CODESTORE_NOT_ZIP = -1, /* not a readable zip archive */
    CODESTORE_HOSTILE = -2, /* a path escapes the package, or a link is abused */
    CODESTORE_TOO_BIG = -3, /* past CODESTORE_MAX_UNZIPPED or _ENTRIES */
    CODESTORE_IO = -4,      /* disk error; errno-style detail in the message */
};

struct codestore_package {
    char sha256_hex[65];
    char sha256_b64[45]; /* what Lambda reports as CodeSha256 */
    size_t size;         /* zip size in bytes: CodeSize */
};

/* Creates <root>/blobs and <root>/code if needed. Returns 0 or -errno. */
int codestore_init(const char *root);

/*
 * Stores zip (len bytes) and unpacks it. On failure returns a negative
 * enum codestore_error and, if msg is not NULL, a short message in msg
 * (msg_size bytes, always NUL-terminated). Nothing is left behind on failure.
 */
int codestore_put(const char *root, const void *zip, size_t len, struct codestore_package *out,
                  char *msg, size_t msg_size);

/* Path helpers: write into out (size bytes). Return 0 or -ENAMETOOLONG. */
int codestore_zip_path(const char *root, const char *sha256_hex, char *out, size_t size);
int codestore_dir_path(const char *root, const char *sha256_hex, char *out, size_t size);

#endif
