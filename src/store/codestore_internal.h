/*
 * codestore internals shared with the unit test and the fuzzer: the put with its caps as
 * parameters (so tests can reach the caps without 250 MB of data), and the recursive remover
 * the cleanup path uses (read-only 0555 dirs are made writable before their entries go).
 */
#ifndef IGNIS_STORE_CODESTORE_INTERNAL_H
#define IGNIS_STORE_CODESTORE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "store/codestore.h"

/*
 * codestore_put with explicit caps: the unzipped total (bytes actually written, links' targets
 * included) must stay below max_unzipped, and the archive may hold at most max_entries entries.
 * codestore_put is this with CODESTORE_MAX_UNZIPPED and CODESTORE_MAX_ENTRIES.
 */
int codestore_put_capped(const char *root, const void *zip, size_t len, uint64_t max_unzipped,
                         uint64_t max_entries, struct codestore_package *out, char *msg,
                         size_t msg_size);

/*
 * Removes name (relative to dirfd) and, if it is a directory, everything under it, never
 * following symlinks; directories are chmod'ed 0700 first so read-only trees can go too.
 * A missing name is success. Returns 0 or the first -errno met (removal still goes on).
 */
int codestore_rmtree_at(int dirfd, const char *name);

#endif
