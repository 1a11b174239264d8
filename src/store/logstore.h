/*
 * logstore: function log events on disk, one append-only file per log
 * stream under <root>/<group>/<stream> (names percent-encoded to be safe file
 * names). Each line is "<epoch ms>\t<message>". Appends are buffered in
 * memory and written once per loop iteration (logstore_flush), so logging
 * costs the invoke path no syscall. Reading scans the files of a group.
 */
#ifndef IGNIS_STORE_LOGSTORE_H
#define IGNIS_STORE_LOGSTORE_H

#include <stddef.h>
#include <stdint.h>

struct logstore;
struct logstream;

int logstore_open(const char *root, struct logstore **out);
void logstore_close(struct logstore *ls); /* flushes */
void logstore_flush(struct logstore *ls);

/* The stream's writer, created on first use. Owned by the store. */
struct logstream *logstore_stream(struct logstore *ls, const char *group, const char *stream);
void logstream_put(struct logstream *s, int64_t ts_ms, const char *msg, size_t len);
/* Drops the writer (its file stays); call when the instance is gone. */
void logstore_stream_close(struct logstore *ls, struct logstream *s);

struct log_event {
    int64_t ts_ms;
    int64_t ingested_ms;
    const char *stream;
    const char *message;
    size_t len;
};

/* Visits the events of group with start_ms <= ts < end_ms (end 0: no end),
 * in time order across streams (streams filter: NULL = all, else a NULL-ended
 * list). cb returns non-zero to stop. Returns 0, or -ENOENT if no such group. */
typedef int (*log_event_cb)(const struct log_event *ev, void *arg);
int logstore_scan(struct logstore *ls, const char *group, const char *const *streams,
                  int64_t start_ms, int64_t end_ms, log_event_cb cb, void *arg);

/* Removes a group's files (DeleteFunction keeps logs, as Lambda does). */
int logstore_group_exists(struct logstore *ls, const char *group);

#endif
