/*
 * logstore: buffered append-only log stream files, the in-memory index of
 * groups and streams, and bounded reads (see logstore.h). Owns the open
 * stream writers and their buffers, and the index entries: a group is
 * indexed the first time a reader asks about it (one pass over its files,
 * reading each one's first and last line) and from then on its writers
 * keep the entries current when they flush, so listings and seeks cost no
 * rescans. Writes happen on the loop thread in logstore_flush; a write error
 * is logged and the buffered events are dropped rather than stalling invokes.
 * Reads seek by time with a binary search over a file's lines (timestamps
 * never go down within a file) and then parse forward or backward through
 * a small buffer, charging every event line they look at to the caller's
 * budget; a seek costs O(log size) small reads on top, per stream opened.
 */
#include "store/logstore.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/config.h"
#include "core/log.h"
#include "core/util.h"

#define READ_CHUNK 16384
#define PROBE_CHUNK 4096
#define LINEAR_WINDOW 16384              /* binary search hands over to a scan below this */
#define MAX_LINE_BYTES (8 * 1024 * 1024) /* a longer line is corrupt: give up on the file */
#define CURSOR_CHUNK 4096                /* a merge cursor's first buffer: many may be open */

struct stream_meta {
    char *name;
    uint64_t hash;
    int64_t creation_ms, first_ms, last_ms, ingest_ms;
    uint64_t bytes;
};

struct group_index {
    char *name;
    int64_t creation_ms;
    int retention_days; /* 0: events never expire */
    struct stream_meta **v;
    size_t n, cap;
    struct group_index *next;
};

struct logstream {
    struct logstore *ls;
    char *group, *stream;
    int fd;
    struct buf pending;
    int64_t pending_first;    /* timestamp of the first buffered event */
    int64_t last_ts;          /* of the last event put: the clamp */
    struct stream_meta *meta; /* its index entry, when the group is indexed */
    int unstorable;           /* its name cannot be a file name: events are dropped */
    struct logstream *next;
};

struct logstore {
    char root[PATH_MAX];
    struct logstream *streams;
    struct group_index *groups;
    int64_t day_ms;     /* IGNIS_LOGS_DAY_MS: a retention day (tests shorten it) */
    uint64_t max_bytes; /* IGNIS_LOG_MAX_MB: the whole store's bound */
};

#define RETENTION_FILE ".retention" /* in a group's dir: its retentionInDays */
#define DEFAULT_MAX_MB 4096

/*=== Names ===*/

/* Safe file name: keeps [A-Za-z0-9._-] (not a leading '.'), %XX for the rest.
 * Returns 0, or -ENAMETOOLONG when it would not fit out. */
static int encode_name(const char *in, char *out, size_t size)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t w = 0;
    for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
        if (w + 4 > size)
            return -ENAMETOOLONG;
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            *p == '_' || *p == '-' || (*p == '.' && p != (const unsigned char *)in)) {
            out[w++] = (char)*p;
        } else {
            out[w++] = '%';
            out[w++] = hex[*p >> 4];
            out[w++] = hex[*p & 15];
        }
    }
    out[w] = '\0';
    return 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

static int decode_name(const char *in, char *out, size_t size)
{
    size_t w = 0;
    for (const char *p = in; *p; p++) {
        if (w + 1 >= size)
            return -1;
        if (*p == '%') {
            int hi = hexval(p[1]), lo = hi < 0 ? -1 : hexval(p[2]);
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
                return -1;
            out[w++] = (char)(hi << 4 | lo);
            p += 2;
        } else {
            out[w++] = *p;
        }
    }
    out[w] = '\0';
    return w ? 0 : -1;
}

/* <root>/<encoded group>, or -ENAMETOOLONG. */
static int group_path(struct logstore *ls, const char *group, char *path, size_t size)
{
    char enc[NAME_MAX + 1];
    int rc = encode_name(group, enc, sizeof(enc));
    if (rc < 0)
        return rc;
    if (snprintf(path, size, "%s/%s", ls->root, enc) >= (int)size)
        return -ENAMETOOLONG;
    return 0;
}

uint64_t logstore_name_hash(const char *name)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        h ^= *p;
        h *= 0x100000001b3ULL;
    }
    return h;
}

void logstore_event_id(const struct log_event *ev, char out[57])
{
    snprintf(out, 57, "%016lld%020llu%020llu", (long long)(ev->ts_ms < 0 ? 0 : ev->ts_ms),
             (unsigned long long)ev->stream_hash, (unsigned long long)ev->offset);
}

/*=== Small file helpers ===*/

static int64_t stx_ms(const struct statx_timestamp *t)
{
    return (int64_t)t->tv_sec * 1000 + t->tv_nsec / 1000000;
}

/* Size, modification time and (when the file system keeps it) birth time. */
static int file_times(int dirfd, const char *name, uint64_t *size, int64_t *mtime_ms,
                      int64_t *btime_ms)
{
    struct statx stx;
    int flags = name[0] ? 0 : AT_EMPTY_PATH;
    if (statx(dirfd, name, flags, STATX_SIZE | STATX_MTIME | STATX_BTIME, &stx) < 0)
        return -errno;
    if (size)
        *size = stx.stx_size;
    *mtime_ms = stx_ms(&stx.stx_mtime);
    *btime_ms = (stx.stx_mask & STATX_BTIME) ? stx_ms(&stx.stx_btime) : -1;
    return 0;
}

static int pread_full(int fd, char *buf, size_t len, uint64_t off)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = pread(fd, buf + got, len - got, (off_t)(off + got));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            return -EIO; /* the file shrank under us */
        got += (size_t)n;
    }
    return 0;
}

/* "<digits>\t<message>": 0, or -1 for a line that is not an event. */
static int parse_line(const char *line, size_t len, int64_t *ts, const char **msg, size_t *mlen)
{
    size_t i = 0;
    int64_t v = 0;
    while (i < len && i < 18 && line[i] >= '0' && line[i] <= '9')
        v = v * 10 + (line[i++] - '0');
    if (i == 0 || i >= len || line[i] != '\t')
        return -1;
    *ts = v;
    *msg = line + i + 1;
    *mlen = len - i - 1;
    return 0;
}

/* The timestamp of the line starting at off. */
static int ts_at(int fd, uint64_t off, uint64_t end, int64_t *ts)
{
    char b[24];
    size_t want = end - off < sizeof(b) ? (size_t)(end - off) : sizeof(b);
    if (want == 0 || pread_full(fd, b, want, off) < 0)
        return -1;
    const char *msg;
    size_t mlen;
    return parse_line(b, want, ts, &msg, &mlen);
}

/*=== Forward and backward line readers ===*/

struct line {
    const char *text; /* without the newline */
    size_t len;
    uint64_t off, next;
};

/* Lines of [pos, end) in file order through a buffer holding [base, base+len). */
struct freader {
    int fd;
    uint64_t end, base;
    char *buf;
    size_t len, cap, at;
    size_t chunk; /* first buffer size (0: READ_CHUNK); doubles for long lines */
};

static void fr_init(struct freader *r, int fd, uint64_t pos, uint64_t end)
{
    memset(r, 0, sizeof(*r));
    r->fd = fd;
    r->base = pos;
    r->end = end;
}

static void fr_release(struct freader *r)
{
    free(r->buf);
    r->buf = NULL;
}

/* 1 with the next line, 0 at the end, -errno. */
static int fr_next(struct freader *r, struct line *out)
{
    for (;;) {
        char *nl = r->len > r->at ? memchr(r->buf + r->at, '\n', r->len - r->at) : NULL;
        if (nl || (r->at < r->len && r->base + r->len >= r->end)) {
            size_t stop = nl ? (size_t)(nl - r->buf) : r->len; /* an unterminated last line */
            out->text = r->buf + r->at;
            out->len = stop - r->at;
            out->off = r->base + r->at;
            r->at = nl ? stop + 1 : stop;
            out->next = r->base + r->at;
            return 1;
        }
        if (r->base + r->len >= r->end)
            return 0;
        if (r->at > 0) {
            memmove(r->buf, r->buf + r->at, r->len - r->at);
            r->base += r->at;
            r->len -= r->at;
            r->at = 0;
        }
        if (r->len == r->cap) {
            size_t cap = r->cap ? r->cap * 2 : r->chunk ? r->chunk : READ_CHUNK;
            if (cap > MAX_LINE_BYTES)
                return -EFBIG;
            char *nb = realloc(r->buf, cap);
            if (!nb)
                return -ENOMEM;
            r->buf = nb;
            r->cap = cap;
        }
        uint64_t left = r->end - (r->base + r->len);
        size_t want = r->cap - r->len < left ? r->cap - r->len : (size_t)left;
        ssize_t n = pread(r->fd, r->buf + r->len, want, (off_t)(r->base + r->len));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            r->end = r->base + r->len; /* shrank: stop here */
        r->len += (size_t)n;
    }
}

/* Lines ending at or before pos, newest first; the buffer holds [base, base+len). */
struct breader {
    int fd;
    uint64_t pos, base;
    char *buf;
    size_t len, cap;
};

static void br_init(struct breader *r, int fd, uint64_t pos)
{
    memset(r, 0, sizeof(*r));
    r->fd = fd;
    r->pos = r->base = pos;
}

static int br_more(struct breader *r)
{
    size_t keep = (size_t)(r->pos - r->base); /* what lies past pos is done with */
    size_t chunk = keep > READ_CHUNK ? keep : READ_CHUNK;
    uint64_t nbase = r->base > chunk ? r->base - chunk : 0;
    size_t add = (size_t)(r->base - nbase), need = keep + add;
    if (need > MAX_LINE_BYTES)
        return -EFBIG;
    if (need > r->cap) {
        char *nb = realloc(r->buf, need);
        if (!nb)
            return -ENOMEM;
        r->buf = nb;
        r->cap = need;
    }
    memmove(r->buf + add, r->buf, keep);
    int rc = pread_full(r->fd, r->buf, add, nbase);
    if (rc < 0)
        return rc;
    r->base = nbase;
    r->len = need;
    return 0;
}

static int br_prev(struct breader *r, struct line *out)
{
    while (r->pos > 0) {
        size_t rel = (size_t)(r->pos - r->base);
        if (rel == 0) {
            int rc = br_more(r);
            if (rc < 0)
                return rc;
            continue;
        }
        size_t cend = r->buf[rel - 1] == '\n' ? rel - 1 : rel;
        char *nl = cend ? memrchr(r->buf, '\n', cend) : NULL;
        if (!nl && r->base > 0) {
            int rc = br_more(r);
            if (rc < 0)
                return rc;
            continue;
        }
        size_t start = nl ? (size_t)(nl - r->buf) + 1 : 0;
        out->text = r->buf + start;
        out->len = cend - start;
        out->off = r->base + start;
        out->next = r->pos;
        r->pos = out->off;
        return 1;
    }
    return 0;
}

/* The first line start at or after off (off itself if it is one), or hi. */
static int line_start_from(int fd, uint64_t off, uint64_t hi, uint64_t *out)
{
    if (off == 0) {
        *out = 0;
        return 0;
    }
    char chunk[PROBE_CHUNK];
    uint64_t p = off - 1;
    while (p < hi) {
        size_t want = hi - p < sizeof(chunk) ? (size_t)(hi - p) : sizeof(chunk);
        int rc = pread_full(fd, chunk, want, p);
        if (rc < 0)
            return rc;
        char *nl = memchr(chunk, '\n', want);
        if (nl) {
            *out = p + (uint64_t)(nl - chunk) + 1;
            return 0;
        }
        p += want;
    }
    *out = hi;
    return 0;
}

/* The first line start in [lo, hi] whose timestamp is >= t (hi if none);
 * lo must be a line start. Binary search, then a scan of at most
 * LINEAR_WINDOW plus a line: O(log size) reads, not charged to budgets. */
static int lower_bound(int fd, uint64_t lo, uint64_t hi, int64_t t, uint64_t *out)
{
    while (hi - lo > LINEAR_WINDOW) {
        uint64_t mid = lo + (hi - lo) / 2, s;
        int rc = line_start_from(fd, mid, hi, &s);
        if (rc < 0)
            return rc;
        if (s >= hi)
            break; /* one long line spans [mid, hi): scan from lo */
        int64_t ts;
        if (ts_at(fd, s, hi, &ts) == 0 && ts >= t)
            hi = s;
        else
            lo = s; /* earlier (or not an event): everything up to s is before t */
    }
    struct freader r;
    fr_init(&r, fd, lo, hi);
    struct line ln;
    int rc;
    *out = hi;
    while ((rc = fr_next(&r, &ln)) > 0) {
        int64_t ts;
        const char *msg;
        size_t mlen;
        if (parse_line(ln.text, ln.len, &ts, &msg, &mlen) == 0 && ts >= t) {
            *out = ln.off;
            break;
        }
    }
    fr_release(&r);
    return rc < 0 ? rc : 0;
}

/*=== Index ===*/

static void meta_free(struct stream_meta *m)
{
    if (!m)
        return;
    free(m->name);
    free(m);
}

static void group_index_free(struct group_index *g)
{
    for (size_t i = 0; i < g->n; i++)
        meta_free(g->v[i]);
    free(g->v);
    free(g->name);
    free(g);
}

static struct group_index *index_find(struct logstore *ls, const char *group)
{
    for (struct group_index *g = ls->groups; g; g = g->next)
        if (strcmp(g->name, group) == 0)
            return g;
    return NULL;
}

static struct stream_meta *index_stream(struct group_index *g, const char *stream)
{
    for (size_t i = 0; i < g->n; i++)
        if (strcmp(g->v[i]->name, stream) == 0)
            return g->v[i];
    return NULL;
}

/* Takes m into g. */
static int index_add(struct group_index *g, struct stream_meta *m)
{
    if (g->n == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 16;
        struct stream_meta **nv = realloc(g->v, cap * sizeof(*nv));
        if (!nv)
            return -ENOMEM;
        g->v = nv;
        g->cap = cap;
    }
    g->v[g->n++] = m;
    if (m->creation_ms >= 0 && (g->creation_ms < 0 || m->creation_ms < g->creation_ms))
        g->creation_ms = m->creation_ms;
    return 0;
}

static struct stream_meta *meta_new(const char *name)
{
    struct stream_meta *m = calloc(1, sizeof(*m));
    if (!m || !(m->name = strdup(name))) {
        free(m);
        return NULL;
    }
    m->hash = logstore_name_hash(name);
    m->creation_ms = m->first_ms = m->last_ms = m->ingest_ms = -1;
    return m;
}

/* An index entry for a stream file: its size and times, and the timestamps
 * of its first and last events. */
static struct stream_meta *meta_from_file(int dirfd, const char *file, const char *name)
{
    struct stream_meta *m = meta_new(name);
    if (!m)
        return NULL;
    int fd = openat(dirfd, file, O_RDONLY | O_CLOEXEC);
    int64_t mtime, btime;
    if (fd < 0 || file_times(fd, "", &m->bytes, &mtime, &btime) < 0) {
        if (fd >= 0)
            close(fd);
        meta_free(m);
        return NULL;
    }
    m->ingest_ms = mtime;
    m->creation_ms = btime >= 0 ? btime : mtime;
    if (m->bytes > 0) {
        int64_t ts;
        if (ts_at(fd, 0, m->bytes, &ts) == 0)
            m->first_ms = ts;
        struct breader r;
        br_init(&r, fd, m->bytes);
        struct line ln;
        while (br_prev(&r, &ln) > 0) {
            const char *msg;
            size_t mlen;
            if (parse_line(ln.text, ln.len, &ts, &msg, &mlen) == 0) {
                m->last_ms = ts;
                break;
            }
        }
        free(r.buf);
        if (m->first_ms < 0)
            m->first_ms = m->last_ms;
        if (m->last_ms < 0)
            m->last_ms = m->first_ms;
    }
    close(fd);
    if (m->first_ms >= 0 && m->first_ms < m->creation_ms)
        m->creation_ms = m->first_ms;
    return m;
}

/* The group's index, loading it from disk on first use; NULL (errno set) if
 * there is no such group. */
static int read_retention(int dirfd)
{
    char text[32] = "";
    int fd = openat(dirfd, RETENTION_FILE, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, text, sizeof(text) - 1);
    close(fd);
    int days = n > 0 ? atoi(text) : 0;
    return days > 0 ? days : 0;
}

/* Events of g before this are expired: never shown, deleted by logstore_expire. */
static int64_t retention_cutoff(const struct logstore *ls, const struct group_index *g)
{
    return g->retention_days ? now_ms() - (int64_t)g->retention_days * ls->day_ms : INT64_MIN;
}

static struct group_index *group_get(struct logstore *ls, const char *group)
{
    struct group_index *g = index_find(ls, group);
    if (g)
        return g;
    char path[PATH_MAX];
    int rc = group_path(ls, group, path, sizeof(path));
    if (rc < 0) {
        errno = ENOENT; /* a name we could not have stored */
        return NULL;
    }
    DIR *d = opendir(path);
    if (!d)
        return NULL;
    g = calloc(1, sizeof(*g));
    if (!g || !(g->name = strdup(group))) {
        free(g);
        closedir(d);
        errno = ENOMEM;
        return NULL;
    }
    g->creation_ms = -1;
    g->retention_days = read_retention(dirfd(d));
    struct dirent *de;
    while ((de = readdir(d))) {
        char name[NAME_MAX + 1];
        if (de->d_name[0] == '.' || decode_name(de->d_name, name, sizeof(name)) < 0)
            continue;
        if (de->d_type != DT_REG && de->d_type != DT_UNKNOWN)
            continue;
        struct stream_meta *m = meta_from_file(dirfd(d), de->d_name, name);
        if (m && index_add(g, m) < 0)
            meta_free(m);
    }
    int64_t mtime, btime;
    if (file_times(dirfd(d), "", NULL, &mtime, &btime) == 0) {
        int64_t dir_ms = btime >= 0 ? btime : mtime;
        if (g->creation_ms < 0 || (btime >= 0 && dir_ms < g->creation_ms))
            g->creation_ms = dir_ms;
    }
    closedir(d);
    g->next = ls->groups;
    ls->groups = g;
    /* writers with an open file keep their entries current from now on */
    for (struct logstream *s = ls->streams; s; s = s->next)
        if (s->fd >= 0 && strcmp(s->group, group) == 0)
            s->meta = index_stream(g, s->stream);
    return g;
}

/*=== Writing ===*/

int logstore_open(const char *root, struct logstore **out)
{
    struct logstore *ls = calloc(1, sizeof(*ls));
    if (!ls)
        return -ENOMEM;
    snprintf(ls->root, sizeof(ls->root), "%s", root);
    const char *v = getenv("IGNIS_LOGS_DAY_MS");
    ls->day_ms = v && atoll(v) > 0 ? atoll(v) : 86400000LL;
    v = getenv("IGNIS_LOG_MAX_MB");
    ls->max_bytes = (uint64_t)(v && atoll(v) > 0 ? atoll(v) : DEFAULT_MAX_MB) << 20;
    int rc = mkdir_p(root, 0700);
    if (rc < 0) {
        free(ls);
        return rc;
    }
    *out = ls;
    return 0;
}

static int stream_open(struct logstream *s)
{
    char dir[PATH_MAX], enc[NAME_MAX + 1], path[PATH_MAX];
    int rc = group_path(s->ls, s->group, dir, sizeof(dir));
    if (rc == 0)
        rc = encode_name(s->stream, enc, sizeof(enc));
    if (rc == 0 && snprintf(path, sizeof(path), "%s/%s", dir, enc) >= (int)sizeof(path))
        rc = -ENAMETOOLONG;
    if (rc < 0) {
        log_error("log stream %s / %s: %s (its events are dropped)", s->group, s->stream,
                  strerror(-rc));
        s->unstorable = 1;
        return rc;
    }
    mkdir_p(dir, 0700);
    s->fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (s->fd < 0) {
        rc = -errno;
        log_error("open %s: %s", path, strerror(errno));
        return rc;
    }
    struct group_index *g = index_find(s->ls, s->group);
    if (g) {
        s->meta = index_stream(g, s->stream);
        if (!s->meta && (s->meta = meta_new(s->stream))) {
            s->meta->creation_ms = now_ms();
            if (index_add(g, s->meta) < 0) {
                meta_free(s->meta);
                s->meta = NULL;
            }
        }
    }
    return 0;
}

static void stream_flush(struct logstream *s)
{
    if (s->pending.len == 0)
        return;
    if (s->fd < 0 && stream_open(s) < 0) {
        buf_reset(&s->pending);
        return;
    }
    size_t off = 0;
    while (off < s->pending.len) {
        ssize_t w = write(s->fd, s->pending.data + off, s->pending.len - off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            log_error("write log stream %s: %s", s->stream, strerror(errno));
            break;
        }
        off += (size_t)w;
    }
    struct stream_meta *m = s->meta;
    if (m && off > 0) {
        m->bytes += off;
        if (m->first_ms < 0)
            m->first_ms = s->pending_first;
        if (m->creation_ms < 0 || m->first_ms < m->creation_ms)
            m->creation_ms = m->first_ms;
        m->last_ms = s->last_ts;
        m->ingest_ms = now_ms();
    }
    buf_reset(&s->pending);
}

void logstore_flush(struct logstore *ls)
{
    for (struct logstream *s = ls->streams; s; s = s->next)
        stream_flush(s);
}

struct logstream *logstore_stream(struct logstore *ls, const char *group, const char *stream)
{
    for (struct logstream *s = ls->streams; s; s = s->next)
        if (strcmp(s->group, group) == 0 && strcmp(s->stream, stream) == 0)
            return s;
    struct logstream *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->ls = ls;
    s->fd = -1;
    s->group = strdup(group);
    s->stream = strdup(stream);
    if (!s->group || !s->stream) {
        free(s->group);
        free(s->stream);
        free(s);
        return NULL;
    }
    buf_init(&s->pending, 0);
    s->next = ls->streams;
    ls->streams = s;
    return s;
}

void logstream_put(struct logstream *s, int64_t ts_ms, const char *msg, size_t len)
{
    if (!s || s->unstorable)
        return;
    if (ts_ms < s->last_ts)
        ts_ms = s->last_ts; /* the wall clock stepped back: keep the file sorted */
    s->last_ts = ts_ms;
    if (s->pending.len == 0)
        s->pending_first = ts_ms;
    buf_printf(&s->pending, "%lld\t", (long long)ts_ms);
    /* One event per line: a stray newline inside a message would split it. */
    size_t start = s->pending.len;
    buf_append(&s->pending, msg, len);
    char *p = s->pending.data + start, *end = s->pending.data + s->pending.len;
    while ((p = memchr(p, '\n', (size_t)(end - p))))
        *p++ = '\r';
    buf_putc(&s->pending, '\n');
}

void logstore_stream_close(struct logstore *ls, struct logstream *s)
{
    if (!s)
        return;
    stream_flush(s);
    for (struct logstream **pp = &ls->streams; *pp; pp = &(*pp)->next) {
        if (*pp == s) {
            *pp = s->next;
            break;
        }
    }
    if (s->fd >= 0)
        close(s->fd);
    buf_release(&s->pending);
    free(s->group);
    free(s->stream);
    free(s);
}

void logstore_close(struct logstore *ls)
{
    if (!ls)
        return;
    while (ls->streams)
        logstore_stream_close(ls, ls->streams);
    while (ls->groups) {
        struct group_index *g = ls->groups;
        ls->groups = g->next;
        group_index_free(g);
    }
    free(ls);
}

/*=== Groups and streams ===*/

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void logstore_free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

int logstore_groups(struct logstore *ls, char ***names, size_t *n)
{
    *names = NULL;
    *n = 0;
    DIR *d = opendir(ls->root);
    if (!d)
        return -errno;
    char **v = NULL;
    size_t cnt = 0, cap = 0;
    struct dirent *de;
    int rc = 0;
    while ((de = readdir(d))) {
        char name[NAME_MAX + 1];
        if (de->d_name[0] == '.' || decode_name(de->d_name, name, sizeof(name)) < 0)
            continue;
        if (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN)
            continue;
        if (cnt == cap) {
            cap = cap ? cap * 2 : 32;
            char **nv = realloc(v, cap * sizeof(*nv));
            if (!nv) {
                rc = -ENOMEM;
                break;
            }
            v = nv;
        }
        if (!(v[cnt] = strdup(name))) {
            rc = -ENOMEM;
            break;
        }
        cnt++;
    }
    closedir(d);
    if (rc < 0) {
        logstore_free_names(v, cnt);
        return rc;
    }
    if (cnt)
        qsort(v, cnt, sizeof(*v), cmp_str);
    *names = v;
    *n = cnt;
    return 0;
}

int logstore_group_exists(struct logstore *ls, const char *group)
{
    if (index_find(ls, group))
        return 1;
    char path[PATH_MAX];
    if (group_path(ls, group, path, sizeof(path)) < 0)
        return 0;
    return access(path, F_OK) == 0;
}

int logstore_group_info(struct logstore *ls, const char *group, struct loggroup_info *out)
{
    logstore_flush(ls);
    struct group_index *g = group_get(ls, group);
    if (!g)
        return -ENOENT;
    memset(out, 0, sizeof(*out));
    out->creation_ms = g->creation_ms < 0 ? 0 : g->creation_ms;
    out->retention_days = g->retention_days;
    out->nstreams = g->n;
    for (size_t i = 0; i < g->n; i++)
        out->bytes += g->v[i]->bytes;
    return 0;
}

int logstore_create_group(struct logstore *ls, const char *group)
{
    char path[PATH_MAX];
    int rc = group_path(ls, group, path, sizeof(path));
    if (rc < 0)
        return rc;
    if (mkdir(path, 0700) < 0)
        return -errno;
    return 0;
}

int logstore_delete_group(struct logstore *ls, const char *group)
{
    logstore_flush(ls);
    char path[PATH_MAX];
    if (group_path(ls, group, path, sizeof(path)) < 0)
        return -ENOENT;
    DIR *d = opendir(path);
    if (!d)
        return -errno;
    struct dirent *de;
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0 &&
            unlinkat(dirfd(d), de->d_name, 0) < 0)
            log_warn("delete log group %s: unlink %s: %s", group, de->d_name, strerror(errno));
    closedir(d);
    int rc = rmdir(path) < 0 ? -errno : 0;
    for (struct logstream *s = ls->streams; s; s = s->next) {
        if (strcmp(s->group, group) != 0)
            continue;
        if (s->fd >= 0)
            close(s->fd);
        s->fd = -1; /* the next event starts a new file */
        s->meta = NULL;
    }
    for (struct group_index **pp = &ls->groups; *pp; pp = &(*pp)->next) {
        if (strcmp((*pp)->name, group) == 0) {
            struct group_index *g = *pp;
            *pp = g->next;
            group_index_free(g);
            break;
        }
    }
    return rc;
}

static void meta_info(const struct stream_meta *m, struct logstream_info *out)
{
    out->name = m->name;
    out->hash = m->hash;
    out->creation_ms = m->creation_ms < 0 ? 0 : m->creation_ms;
    out->first_ms = m->first_ms;
    out->last_ms = m->last_ms;
    out->last_ingest_ms = m->ingest_ms;
    out->bytes = m->bytes;
}

int logstore_streams(struct logstore *ls, const char *group, struct logstream_info **out, size_t *n)
{
    logstore_flush(ls);
    *out = NULL;
    *n = 0;
    struct group_index *g = group_get(ls, group);
    if (!g)
        return -ENOENT;
    if (g->n == 0)
        return 0;
    struct logstream_info *v = calloc(g->n, sizeof(*v));
    if (!v)
        return -ENOMEM;
    for (size_t i = 0; i < g->n; i++)
        meta_info(g->v[i], &v[i]);
    *out = v;
    *n = g->n;
    return 0;
}

int logstore_stream_info(struct logstore *ls, const char *group, const char *stream,
                         struct logstream_info *out)
{
    logstore_flush(ls);
    struct group_index *g = group_get(ls, group);
    if (!g)
        return -ENOENT;
    struct stream_meta *m = index_stream(g, stream);
    if (!m)
        return -ESRCH;
    meta_info(m, out);
    return 0;
}

/*=== Reading one stream ===*/

static int open_stream(struct logstore *ls, struct group_index *g, const struct stream_meta *m,
                       uint64_t *size)
{
    char dir[PATH_MAX], enc[NAME_MAX + 1], path[PATH_MAX];
    if (group_path(ls, g->name, dir, sizeof(dir)) < 0 ||
        encode_name(m->name, enc, sizeof(enc)) < 0 ||
        snprintf(path, sizeof(path), "%s/%s", dir, enc) >= (int)sizeof(path))
        return -ENAMETOOLONG;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    *size = (uint64_t)st.st_size;
    return fd;
}

/* pos is 0, the end, or just after a newline. */
static int is_boundary(int fd, uint64_t pos, uint64_t size)
{
    if (pos == 0 || pos == size)
        return 1;
    if (pos > size)
        return 0;
    char c;
    return pread_full(fd, &c, 1, pos - 1) == 0 && c == '\n';
}

static int read_forward(int fd, const struct stream_meta *m, struct log_read *rd, uint64_t size,
                        log_event_cb cb, void *arg)
{
    uint64_t *resume = &rd->resume;
    size_t spent = 0;
    uint64_t pos = rd->pos;
    if (rd->start_ms > 0 && m->first_ms < rd->start_ms) {
        uint64_t lb;
        int rc = lower_bound(fd, pos, size, rd->start_ms, &lb);
        if (rc < 0)
            return rc;
        pos = lb;
    }
    rd->began = *resume = pos;
    struct freader r;
    fr_init(&r, fd, pos, size);
    struct line ln;
    int rc;
    while ((rc = fr_next(&r, &ln)) > 0) {
        spent += ln.len + 1;
        struct log_event ev = {
            .stream = m->name, .stream_hash = m->hash, .offset = ln.off, .next = ln.next};
        if (parse_line(ln.text, ln.len, &ev.ts_ms, &ev.message, &ev.len) < 0 ||
            ev.ts_ms < rd->start_ms) {
            *resume = ln.next;
        } else if (rd->end_ms && ev.ts_ms >= rd->end_ms) {
            break; /* sorted: nothing further is in range */
        } else {
            ev.ingested_ms = ev.ts_ms;
            enum log_visit v = cb(&ev, arg);
            if (v == LOG_REJECT)
                break;
            *resume = ln.next;
            if (v == LOG_STOP)
                break;
        }
        if (rd->scan_budget && spent >= rd->scan_budget)
            break;
    }
    fr_release(&r);
    return rc < 0 ? rc : 0;
}

static int read_backward(int fd, const struct stream_meta *m, struct log_read *rd, log_event_cb cb,
                         void *arg)
{
    uint64_t *resume = &rd->resume;
    size_t spent = 0;
    uint64_t pos = rd->pos;
    if (rd->end_ms && m->last_ms >= rd->end_ms) {
        uint64_t ub;
        int rc = lower_bound(fd, 0, pos, rd->end_ms, &ub);
        if (rc < 0)
            return rc;
        pos = ub;
    }
    rd->began = *resume = pos;
    struct breader r;
    br_init(&r, fd, pos);
    struct line ln;
    int rc;
    while ((rc = br_prev(&r, &ln)) > 0) {
        spent += ln.len + 1;
        struct log_event ev = {
            .stream = m->name, .stream_hash = m->hash, .offset = ln.off, .next = ln.next};
        if (parse_line(ln.text, ln.len, &ev.ts_ms, &ev.message, &ev.len) < 0 ||
            (rd->end_ms && ev.ts_ms >= rd->end_ms)) {
            *resume = ln.off;
        } else if (ev.ts_ms < rd->start_ms) {
            break; /* sorted: nothing earlier is in range */
        } else {
            ev.ingested_ms = ev.ts_ms;
            enum log_visit v = cb(&ev, arg);
            if (v == LOG_REJECT)
                break;
            *resume = ln.off;
            if (v == LOG_STOP)
                break;
        }
        if (rd->scan_budget && spent >= rd->scan_budget)
            break;
    }
    free(r.buf);
    return rc < 0 ? rc : 0;
}

int logstore_read(struct logstore *ls, const char *group, const char *stream, struct log_read *rd,
                  log_event_cb cb, void *arg)
{
    logstore_flush(ls);
    struct group_index *g = group_get(ls, group);
    if (!g)
        return -ENOENT;
    struct stream_meta *m = index_stream(g, stream);
    if (!m)
        return -ESRCH;
    uint64_t size;
    int fd = open_stream(ls, g, m, &size);
    if (fd < 0)
        return fd == -ENOENT ? -ESRCH : fd;
    int rc;
    if (rd->pos == LOG_POS_END)
        rd->pos = size;
    struct log_read r = *rd; /* expired events are not there */
    int64_t cutoff = retention_cutoff(ls, g);
    if (cutoff > r.start_ms)
        r.start_ms = cutoff;
    if (!is_boundary(fd, r.pos, size))
        rc = -EINVAL;
    else if (r.backward)
        rc = read_backward(fd, m, &r, cb, arg);
    else
        rc = read_forward(fd, m, &r, size, cb, arg);
    close(fd);
    rd->began = r.began;
    rd->resume = r.resume;
    return rc;
}

/*=== Merged scan over a group ===*/

struct cursor {
    const struct stream_meta *m;
    int fd;
    struct freader r;
    struct log_event ev;
    struct log_key key;
};

static int key_cmp(const struct log_key *a, const struct log_key *b)
{
    if (a->ts_ms != b->ts_ms)
        return a->ts_ms < b->ts_ms ? -1 : 1;
    if (a->hash != b->hash)
        return a->hash < b->hash ? -1 : 1;
    if (a->offset != b->offset)
        return a->offset < b->offset ? -1 : 1;
    return 0;
}

static void cursor_free(struct cursor *c)
{
    if (!c)
        return;
    fr_release(&c->r);
    if (c->fd >= 0)
        close(c->fd);
    free(c);
}

/* Moves c to its next event in range: 1, 0 when it has none left, -errno. */
static int cursor_advance(struct cursor *c, const struct log_scan *sc, size_t *spent)
{
    struct line ln;
    int rc;
    while ((rc = fr_next(&c->r, &ln)) > 0) {
        *spent += ln.len + 1;
        struct log_event *ev = &c->ev;
        if (parse_line(ln.text, ln.len, &ev->ts_ms, &ev->message, &ev->len) < 0 ||
            ev->ts_ms < sc->start_ms)
            continue;
        if (sc->end_ms && ev->ts_ms >= sc->end_ms)
            return 0;
        c->key = (struct log_key){ev->ts_ms, c->m->hash, ln.off};
        if (sc->after && key_cmp(&c->key, sc->after) <= 0)
            continue;
        ev->ingested_ms = ev->ts_ms;
        ev->stream = c->m->name;
        ev->stream_hash = c->m->hash;
        ev->offset = ln.off;
        ev->next = ln.next;
        return 1;
    }
    return rc;
}

/* Opens a stream positioned at its first event in range; NULL if none. */
static struct cursor *cursor_open(struct logstore *ls, struct group_index *g,
                                  const struct stream_meta *m, const struct log_scan *sc,
                                  int64_t from_ms, size_t *spent)
{
    struct cursor *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->m = m;
    uint64_t size, pos = 0;
    c->fd = open_stream(ls, g, m, &size);
    if (c->fd < 0 || (m->first_ms < from_ms && lower_bound(c->fd, 0, size, from_ms, &pos) < 0)) {
        cursor_free(c);
        return NULL;
    }
    fr_init(&c->r, c->fd, pos, size);
    c->r.chunk = CURSOR_CHUNK;
    int rc = cursor_advance(c, sc, spent);
    if (rc <= 0) {
        if (rc < 0)
            log_warn("read log stream %s: %s", m->name, strerror(-rc));
        cursor_free(c);
        return NULL;
    }
    return c;
}

struct heap {
    struct cursor **v;
    size_t n;
};

static void heap_push(struct heap *h, struct cursor *c)
{
    size_t i = h->n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (key_cmp(&h->v[p]->key, &c->key) <= 0)
            break;
        h->v[i] = h->v[p];
        i = p;
    }
    h->v[i] = c;
}

static struct cursor *heap_pop(struct heap *h)
{
    struct cursor *top = h->v[0], *last = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const struct log_key *mk = &last->key;
        if (l < h->n && key_cmp(&h->v[l]->key, mk) < 0) {
            m = l;
            mk = &h->v[l]->key;
        }
        if (r < h->n && key_cmp(&h->v[r]->key, mk) < 0)
            m = r;
        if (m == i)
            break;
        h->v[i] = h->v[m];
        i = m;
    }
    if (h->n)
        h->v[i] = last;
    return top;
}

static int cmp_first(const void *a, const void *b)
{
    const struct stream_meta *x = *(const struct stream_meta *const *)a;
    const struct stream_meta *y = *(const struct stream_meta *const *)b;
    if (x->first_ms != y->first_ms)
        return x->first_ms < y->first_ms ? -1 : 1;
    return x->hash < y->hash ? -1 : x->hash > y->hash;
}

static int wanted(const struct stream_meta *m, const struct log_scan *sc)
{
    if (sc->prefix && !str_has_prefix(m->name, sc->prefix))
        return 0;
    if (!sc->streams)
        return 1;
    for (size_t i = 0; i < sc->nstreams; i++)
        if (strcmp(sc->streams[i], m->name) == 0)
            return 1;
    return 0;
}

int logstore_scan(struct logstore *ls, const char *group, const struct log_scan *sc,
                  log_event_cb cb, void *arg, struct log_key *resume, int *more)
{
    logstore_flush(ls);
    *more = 0;
    if (sc->after)
        *resume = *sc->after;
    else
        memset(resume, 0, sizeof(*resume));
    struct group_index *g = group_get(ls, group);
    if (!g)
        return -ENOENT;
    struct log_scan clamped = *sc; /* expired events are not there */
    int64_t cutoff = retention_cutoff(ls, g);
    if (cutoff > clamped.start_ms)
        clamped.start_ms = cutoff;
    sc = &clamped;
    int64_t from_ms = sc->start_ms;
    if (sc->after && sc->after->ts_ms > from_ms)
        from_ms = sc->after->ts_ms;
    /* the streams that can hold events in range, by their first event */
    struct stream_meta **cand = g->n ? calloc(g->n, sizeof(*cand)) : NULL;
    struct heap h = {g->n ? calloc(g->n, sizeof(*h.v)) : NULL, 0};
    if (g->n && (!cand || !h.v)) {
        free(cand);
        free(h.v);
        return -ENOMEM;
    }
    size_t ncand = 0;
    for (size_t i = 0; i < g->n; i++) {
        struct stream_meta *m = g->v[i];
        if (m->first_ms < 0 || m->last_ms < from_ms || (sc->end_ms && m->first_ms >= sc->end_ms))
            continue;
        if (wanted(m, sc))
            cand[ncand++] = m;
    }
    if (ncand > 1)
        qsort(cand, ncand, sizeof(*cand), cmp_first);
    /* Merge; a stream is opened only once the merge reaches its first event,
     * so the files open at once are those whose times overlap. */
    size_t next = 0, spent = 0;
    for (;;) {
        while (next < ncand && (h.n == 0 || cand[next]->first_ms <= h.v[0]->key.ts_ms)) {
            struct cursor *c = cursor_open(ls, g, cand[next++], sc, from_ms, &spent);
            if (c)
                heap_push(&h, c);
        }
        if (h.n == 0)
            break;
        struct cursor *c = h.v[0];
        enum log_visit v = cb(&c->ev, arg);
        if (v == LOG_REJECT) {
            *more = 1;
            break;
        }
        *resume = c->key;
        heap_pop(&h);
        int rc = cursor_advance(c, sc, &spent);
        if (rc > 0) {
            heap_push(&h, c);
        } else {
            if (rc < 0)
                log_warn("read log stream %s: %s", c->m->name, strerror(-rc));
            cursor_free(c);
        }
        if (v == LOG_STOP || (sc->scan_budget && spent >= sc->scan_budget)) {
            *more = h.n > 0 || next < ncand;
            break;
        }
    }
    for (size_t i = 0; i < h.n; i++)
        cursor_free(h.v[i]);
    free(h.v);
    free(cand);
    return 0;
}

/*=== Retention and the store's bound ===*/

int logstore_set_retention(struct logstore *ls, const char *group, int days)
{
    char path[PATH_MAX], tmp[PATH_MAX + 16], file[PATH_MAX + 16];
    if (group_path(ls, group, path, sizeof(path)) < 0 || access(path, F_OK) < 0)
        return -ENOENT;
    snprintf(file, sizeof(file), "%s/" RETENTION_FILE, path);
    if (days <= 0) {
        if (unlink(file) < 0 && errno != ENOENT)
            return -errno;
    } else {
        snprintf(tmp, sizeof(tmp), "%s/.retention.tmp", path);
        int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0)
            return -errno;
        char text[16];
        int n = snprintf(text, sizeof(text), "%d\n", days);
        int ok = write(fd, text, (size_t)n) == n && fsync(fd) == 0;
        close(fd);
        if (!ok || rename(tmp, file) < 0) {
            int e = errno ? -errno : -EIO;
            unlink(tmp);
            return e;
        }
    }
    struct group_index *g = index_find(ls, group);
    if (g)
        g->retention_days = days > 0 ? days : 0;
    return 0;
}

/* Whether a writer has group/file (an encoded stream name) open: its file stays. */
static int being_written(struct logstore *ls, const char *group, const char *file)
{
    char name[NAME_MAX + 1];
    if (decode_name(file, name, sizeof(name)) < 0)
        return 0;
    for (struct logstream *s = ls->streams; s; s = s->next)
        if (s->fd >= 0 && strcmp(s->group, group) == 0 && strcmp(s->stream, name) == 0)
            return 1;
    return 0;
}

struct stored_file {
    char *group, *file;
    int64_t mtime_ms;
    uint64_t size;
};

static int by_age(const void *a, const void *b)
{
    const struct stored_file *x = a, *y = b;
    return x->mtime_ms < y->mtime_ms ? -1 : x->mtime_ms > y->mtime_ms;
}

static void forget_group(struct logstore *ls, const char *group)
{
    for (struct group_index **pp = &ls->groups; *pp; pp = &(*pp)->next) {
        if (strcmp((*pp)->name, group) == 0) {
            struct group_index *g = *pp;
            *pp = g->next;
            group_index_free(g);
            for (struct logstream *s = ls->streams; s; s = s->next)
                if (strcmp(s->group, group) == 0)
                    s->meta = NULL; /* re-attached when the group is indexed again */
            return;
        }
    }
}

static int delete_file(struct logstore *ls, const struct stored_file *f)
{
    char path[PATH_MAX];
    if (group_path(ls, f->group, path, sizeof(path)) < 0)
        return -ENOENT;
    char full[PATH_MAX + NAME_MAX + 2];
    snprintf(full, sizeof(full), "%s/%s", path, f->file);
    if (unlink(full) < 0)
        return -errno;
    forget_group(ls, f->group);
    return 0;
}

int logstore_expire(struct logstore *ls)
{
    logstore_flush(ls);
    char **groups;
    size_t ngroups;
    int rc = logstore_groups(ls, &groups, &ngroups);
    if (rc < 0)
        return rc;
    struct stored_file *files = NULL;
    size_t nfiles = 0, cap = 0;
    uint64_t total = 0;
    int deleted = 0;
    for (size_t i = 0; i < ngroups; i++) {
        char path[PATH_MAX];
        if (group_path(ls, groups[i], path, sizeof(path)) < 0)
            continue;
        DIR *d = opendir(path);
        if (!d)
            continue;
        int days = read_retention(dirfd(d));
        int64_t cutoff = days ? now_ms() - (int64_t)days * ls->day_ms : INT64_MIN;
        struct dirent *de;
        while ((de = readdir(d))) {
            if (de->d_name[0] == '.')
                continue;
            uint64_t size;
            int64_t mtime, btime;
            if (file_times(dirfd(d), de->d_name, &size, &mtime, &btime) < 0)
                continue;
            struct stored_file f = {groups[i], de->d_name, mtime, size};
            /* every event of a file last written before the cutoff is older than it */
            if (mtime < cutoff && !being_written(ls, groups[i], de->d_name)) {
                if (unlinkat(dirfd(d), de->d_name, 0) == 0) {
                    forget_group(ls, groups[i]);
                    deleted++;
                }
                continue;
            }
            total += size;
            if (nfiles == cap) {
                cap = cap ? cap * 2 : 64;
                struct stored_file *v = realloc(files, cap * sizeof(*v));
                if (!v)
                    break;
                files = v;
            }
            f.group = groups[i];
            if (!(f.file = strdup(de->d_name)))
                break;
            files[nfiles++] = f;
        }
        closedir(d);
    }
    if (total > ls->max_bytes) { /* oldest first, down to 90% of the bound */
        qsort(files, nfiles, sizeof(*files), by_age);
        uint64_t target = ls->max_bytes / 10 * 9;
        int dropped = 0;
        for (size_t i = 0; i < nfiles && total > target; i++) {
            if (being_written(ls, files[i].group, files[i].file) || delete_file(ls, &files[i]) < 0)
                continue;
            total -= files[i].size;
            dropped++;
        }
        deleted += dropped;
        log_warn("log store over its bound (IGNIS_LOG_MAX_MB): deleted the %d oldest stream(s)",
                 dropped);
    }
    for (size_t i = 0; i < nfiles; i++)
        free(files[i].file);
    free(files);
    logstore_free_names(groups, ngroups);
    return deleted;
}

int64_t logstore_day_ms(const struct logstore *ls)
{
    return ls->day_ms;
}
