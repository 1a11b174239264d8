/*
 * logstore: function log events on disk, one append-only file per log
 * stream under <root>/<group>/<stream> (names percent-encoded to be safe file
 * names). Each line is "<epoch ms>\t<message>" (a newline inside a message is
 * stored as '\r'). Appends are buffered in memory and written once per loop
 * iteration (logstore_flush), so logging costs the invoke path no syscall.
 * Within a file timestamps never go down (the writer clamps them), which is
 * what lets readers seek by time with a binary search.
 *
 * Reading is bounded: every read takes a scan budget and reports where to
 * resume. Positions are byte offsets of event lines in their stream file,
 * stable for as long as the file lives, so they make good pagination tokens
 * and event ids. The store keeps an in-memory index of each group it has
 * been asked about (streams, first/last timestamps, sizes), loaded from disk
 * on first use and kept current by the writers at flush time.
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

/*=== Groups and streams ===*/

struct loggroup_info {
    int64_t creation_ms;
    int retention_days; /* 0: never expire */
    uint64_t bytes;     /* sum of its stream files */
    size_t nstreams;
};

struct logstream_info {
    const char *name; /* borrowed from the index: valid until the store is next changed */
    uint64_t hash;    /* logstore_name_hash(name) */
    int64_t creation_ms;
    int64_t first_ms, last_ms; /* -1 when the stream holds no event */
    int64_t last_ingest_ms;
    uint64_t bytes;
};

/* Every group name, sorted bytewise; free with logstore_free_names. */
int logstore_groups(struct logstore *ls, char ***names, size_t *n);
void logstore_free_names(char **names, size_t n);
int logstore_group_info(struct logstore *ls, const char *group, struct loggroup_info *out);
int logstore_group_exists(struct logstore *ls, const char *group);
/* 0, -EEXIST, -ENAMETOOLONG (encoded name too long for a file name), -errno. */
int logstore_create_group(struct logstore *ls, const char *group);
/* Removes the group's files (writers of it start a new file on their next
 * event, as Lambda recreates a deleted group). 0 or -ENOENT. */
int logstore_delete_group(struct logstore *ls, const char *group);

/* The group's streams in no particular order (malloc'd array; the caller frees
 * it, not the names). -ENOENT when there is no such group. */
int logstore_streams(struct logstore *ls, const char *group, struct logstream_info **out,
                     size_t *n);
/* One stream: 0, -ENOENT (no group) or -ESRCH (no stream in it). */
int logstore_stream_info(struct logstore *ls, const char *group, const char *stream,
                         struct logstream_info *out);

/* The group's retention (retentionInDays; 0 removes it), kept in the group's dir. From then
 * on its events older than that are never read, and logstore_expire deletes them.
 * 0 or -ENOENT (no group) or -errno. */
int logstore_set_retention(struct logstore *ls, const char *group, int days);
/* Deletes stream files whose every event is past their group's retention, then, while the
 * store is over its bound (IGNIS_LOG_MAX_MB, default 4096), the least recently written
 * streams: a whole stream at a time, never one a writer has open. Run it from a timer.
 * Returns how many streams went, or -errno. */
int logstore_expire(struct logstore *ls);
/* The length of a retention day in ms (IGNIS_LOGS_DAY_MS, for tests; default a day). */
int64_t logstore_day_ms(const struct logstore *ls);

/*=== Events ===*/

struct log_event {
    int64_t ts_ms;
    int64_t ingested_ms;
    const char *stream;
    uint64_t stream_hash;
    const char *message; /* not NUL-terminated; valid during the callback */
    size_t len;
    uint64_t offset; /* where its line starts in the stream file */
    uint64_t next;   /* where the following line starts */
};

/* What a visitor answers for each event it is shown. */
enum log_visit {
    LOG_NEXT,   /* taken, go on */
    LOG_STOP,   /* taken, stop here */
    LOG_REJECT, /* not taken (the page is full): stop before it */
};
typedef enum log_visit (*log_event_cb)(const struct log_event *ev, void *arg);

/* "%016lld%020llu%020llu" of timestamp, stream hash and offset: 56 digits like
 * AWS's, unique within a group and stable across calls. */
void logstore_event_id(const struct log_event *ev, char out[57]);
uint64_t logstore_name_hash(const char *name); /* FNV-1a 64 */

/* One stream, forward from pos or backward from pos (events that end at or
 * before pos, newest first; LOG_POS_END: the end of the stream), visiting
 * events with start_ms <= ts < end_ms (end_ms 0: no end). scan_budget bounds
 * the bytes of event lines examined (0: none; the time seek comes on top,
 * O(log size) small reads). Sets began to where reading started (pos, or
 * where seeking by time led), and resume to where a next read in the same
 * direction continues: after the last event taken (forward) or at its start
 * (backward), or where the scan stopped. Returns 0, -ENOENT (no group),
 * -ESRCH (no stream), -EINVAL (pos is not an event boundary of the stream),
 * -errno. */
#define LOG_POS_END UINT64_MAX
struct log_read {
    uint64_t pos;
    int backward;
    int64_t start_ms, end_ms;
    size_t scan_budget;
    uint64_t began, resume; /* out */
};
int logstore_read(struct logstore *ls, const char *group, const char *stream, struct log_read *rd,
                  log_event_cb cb, void *arg);

/* The total order of a group's events: by timestamp, then stream hash, then
 * offset in the stream. */
struct log_key {
    int64_t ts_ms;
    uint64_t hash;
    uint64_t offset;
};

/* Events of a group in log_key order, merged across its streams: those of
 * the streams named (NULL: all; names not in the group are ignored) or
 * starting with prefix (NULL: any), with start_ms <= ts < end_ms (end_ms 0:
 * no end) and, when after is set, a key greater than *after. Stops when cb
 * says so or scan_budget bytes of event lines (0: no limit) have been
 * examined (opening and seeking the streams whose times overlap the range
 * comes on top); then *more
 * is 1 and *resume is the key of the last event examined and taken (resume
 * with after = resume). Returns 0, -ENOENT (no such group), -errno. */
struct log_scan {
    const char *const *streams;
    size_t nstreams;
    const char *prefix;
    int64_t start_ms, end_ms;
    const struct log_key *after;
    size_t scan_budget;
};
int logstore_scan(struct logstore *ls, const char *group, const struct log_scan *sc,
                  log_event_cb cb, void *arg, struct log_key *resume, int *more);

#endif
