/*
 * logstore: buffered append-only log stream files and a merged scan over a
 * group (see logstore.h). Owns the open stream writers and their buffers.
 * Writes happen on the loop thread in logstore_flush; a write error is
 * logged and the buffered events are dropped rather than stalling invokes.
 */
#include "store/logstore.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/config.h"
#include "core/log.h"

struct logstream {
    struct logstore *ls;
    char *group, *stream;
    int fd;
    struct buf pending;
    struct logstream *next;
};

struct logstore {
    char root[PATH_MAX];
    struct logstream *streams;
};

/* Safe file name: keeps [A-Za-z0-9._-], %XX for the rest. */
static void encode_name(const char *in, char *out, size_t size)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t w = 0;
    for (const unsigned char *p = (const unsigned char *)in; *p && w + 4 < size; p++) {
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
}

static int decode_name(const char *in, char *out, size_t size)
{
    size_t w = 0;
    for (const char *p = in; *p; p++) {
        if (w + 1 >= size)
            return -1;
        if (*p == '%' && p[1] && p[2]) {
            unsigned v;
            if (sscanf(p + 1, "%2x", &v) != 1)
                return -1;
            out[w++] = (char)v;
            p += 2;
        } else {
            out[w++] = *p;
        }
    }
    out[w] = '\0';
    return 0;
}

int logstore_open(const char *root, struct logstore **out)
{
    struct logstore *ls = calloc(1, sizeof(*ls));
    if (!ls)
        return -ENOMEM;
    snprintf(ls->root, sizeof(ls->root), "%s", root);
    int rc = mkdir_p(root, 0700);
    if (rc < 0) {
        free(ls);
        return rc;
    }
    *out = ls;
    return 0;
}

static void stream_flush(struct logstream *s)
{
    if (s->pending.len == 0)
        return;
    if (s->fd < 0) {
        char group[NAME_MAX + 1], stream[NAME_MAX + 1], path[PATH_MAX];
        encode_name(s->group, group, sizeof(group));
        encode_name(s->stream, stream, sizeof(stream));
        snprintf(path, sizeof(path), "%.2000s/%s", s->ls->root, group);
        mkdir_p(path, 0700);
        snprintf(path, sizeof(path), "%.2000s/%s/%s", s->ls->root, group, stream);
        s->fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (s->fd < 0) {
            log_error("open %s: %s", path, strerror(errno));
            buf_reset(&s->pending);
            return;
        }
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
    buf_init(&s->pending, 0);
    s->next = ls->streams;
    ls->streams = s;
    return s;
}

void logstream_put(struct logstream *s, int64_t ts_ms, const char *msg, size_t len)
{
    if (!s)
        return;
    buf_printf(&s->pending, "%lld\t", (long long)ts_ms);
    /* One event per line: a stray newline inside a message would split it. */
    size_t start = s->pending.len;
    buf_append(&s->pending, msg, len);
    for (size_t i = start; i < s->pending.len; i++)
        if (s->pending.data[i] == '\n')
            s->pending.data[i] = '\r';
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
    free(ls);
}

/*=== Reading ===*/

struct cursor {
    char name[NAME_MAX + 1];
    FILE *f;
    char *line;
    size_t cap;
    int64_t ts;
    const char *msg;
    size_t len;
};

static int cursor_next(struct cursor *c)
{
    for (;;) {
        ssize_t n = getline(&c->line, &c->cap, c->f);
        if (n <= 0)
            return 0;
        if (c->line[n - 1] == '\n')
            c->line[--n] = '\0';
        char *tab = strchr(c->line, '\t');
        if (!tab)
            continue;
        c->ts = strtoll(c->line, NULL, 10);
        c->msg = tab + 1;
        c->len = (size_t)(n - (tab + 1 - c->line));
        return 1;
    }
}

int logstore_group_exists(struct logstore *ls, const char *group)
{
    char enc[NAME_MAX + 1], path[PATH_MAX];
    encode_name(group, enc, sizeof(enc));
    snprintf(path, sizeof(path), "%.2000s/%s", ls->root, enc);
    return access(path, F_OK) == 0;
}

int logstore_scan(struct logstore *ls, const char *group, const char *const *streams,
                  int64_t start_ms, int64_t end_ms, log_event_cb cb, void *arg)
{
    logstore_flush(ls);
    char enc[NAME_MAX + 1], path[PATH_MAX];
    encode_name(group, enc, sizeof(enc));
    snprintf(path, sizeof(path), "%.2000s/%s", ls->root, enc);
    DIR *d = opendir(path);
    if (!d)
        return -ENOENT;
    struct cursor *cur = NULL;
    size_t ncur = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char name[NAME_MAX + 1];
        if (decode_name(de->d_name, name, sizeof(name)) < 0)
            continue;
        if (streams) {
            int wanted = 0;
            for (const char *const *s = streams; *s; s++)
                wanted |= strcmp(*s, name) == 0;
            if (!wanted)
                continue;
        }
        char file[PATH_MAX];
        snprintf(file, sizeof(file), "%.2000s/%s", path, de->d_name);
        FILE *f = fopen(file, "re");
        if (!f)
            continue;
        struct cursor *nc = realloc(cur, (ncur + 1) * sizeof(*cur));
        if (!nc) {
            fclose(f);
            break;
        }
        cur = nc;
        memset(&cur[ncur], 0, sizeof(cur[ncur]));
        snprintf(cur[ncur].name, sizeof(cur[ncur].name), "%s", name);
        cur[ncur].f = f;
        if (cursor_next(&cur[ncur]))
            ncur++;
        else
            fclose(f);
    }
    closedir(d);
    /* k-way merge by timestamp; streams are few, so a linear pick is fine */
    int stop = 0;
    while (ncur > 0 && !stop) {
        size_t best = 0;
        for (size_t i = 1; i < ncur; i++)
            if (cur[i].ts < cur[best].ts)
                best = i;
        struct cursor *c = &cur[best];
        if (c->ts >= start_ms && (end_ms == 0 || c->ts < end_ms)) {
            struct log_event ev = {c->ts, c->ts, c->name, c->msg, c->len};
            stop = cb(&ev, arg);
        }
        if (!cursor_next(c)) {
            fclose(c->f);
            free(c->line);
            cur[best] = cur[--ncur];
        }
    }
    for (size_t i = 0; i < ncur; i++) {
        fclose(cur[i].f);
        free(cur[i].line);
    }
    free(cur);
    return 0;
}
