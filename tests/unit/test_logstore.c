/*
 * test_logstore: the function log store (src/store/logstore.c): the on-disk
 * encoding of names and lines, the writer's clamp, the group/stream index
 * (loaded from disk, then kept current by writers, and equal to what a fresh
 * load of the same files finds), bounded forward/backward reads with their
 * resume positions and time seeks (checked against a brute-force filter over
 * large files), and the merged scan's order, resumption and budget.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "store/logstore.h"

struct fx {
    char base[64];
    char root[96];
    struct logstore *ls;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    strcpy(f->base, "/tmp/test_logstore.XXXXXX");
    assert_non_null(mkdtemp(f->base));
    snprintf(f->root, sizeof(f->root), "%s/logs", f->base);
    assert_int_equal(logstore_open(f->root, &f->ls), 0);
    *state = f;
    return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int teardown(void **state)
{
    struct fx *f = *state;
    logstore_close(f->ls);
    assert_int_equal(nftw(f->base, rm_one, 16, FTW_DEPTH | FTW_PHYS), 0);
    free(f);
    return 0;
}

static void reopen(struct fx *f)
{
    logstore_close(f->ls);
    assert_int_equal(logstore_open(f->root, &f->ls), 0);
}

static char *slurp(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return NULL;
    char *data = NULL;
    size_t cap = 0;
    FILE *mem = open_memstream(&data, &cap);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
        fwrite(chunk, 1, n, mem);
    fclose(fp);
    fclose(mem);
    *len = cap;
    return data;
}

static void put(struct logstream *s, int64_t ts, const char *msg)
{
    logstream_put(s, ts, msg, strlen(msg));
}

/* ---- collecting events ---- */

struct got {
    size_t n, limit, max_total;
    int reject_after; /* REJECT the event after this many (0: never) */
    struct {
        int64_t ts;
        char msg[64];
        char stream[64];
        uint64_t off, next, hash;
    } ev[4096];
};

static enum log_visit collect(const struct log_event *ev, void *arg)
{
    struct got *g = arg;
    if (g->reject_after && g->n == (size_t)g->reject_after)
        return LOG_REJECT;
    assert_true(g->n < sizeof(g->ev) / sizeof(g->ev[0]));
    g->ev[g->n].ts = ev->ts_ms;
    snprintf(g->ev[g->n].msg, sizeof(g->ev[g->n].msg), "%.*s", (int)(ev->len < 63 ? ev->len : 63),
             ev->message);
    snprintf(g->ev[g->n].stream, sizeof(g->ev[g->n].stream), "%s", ev->stream);
    g->ev[g->n].off = ev->offset;
    g->ev[g->n].next = ev->next;
    g->ev[g->n].hash = ev->stream_hash;
    assert_int_equal(ev->ingested_ms, ev->ts_ms);
    g->n++;
    return g->limit && g->n >= g->limit ? LOG_STOP : LOG_NEXT;
}

/* ---- encoding ---- */

static void test_file_names_and_lines(void **state)
{
    struct fx *f = *state;
    struct logstream *s = logstore_stream(f->ls, "/aws/lambda/fn", "2024/01/02/[$LATEST]abc");
    assert_non_null(s);
    assert_ptr_equal(logstore_stream(f->ls, "/aws/lambda/fn", "2024/01/02/[$LATEST]abc"), s);
    put(s, 1000, "hello");
    logstream_put(s, 1001, "two\nlines", 9);
    put(s, 999, "clock stepped back"); /* clamped to 1001 */
    put(s, 1002, "");
    char path[512];
    snprintf(path, sizeof(path),
             "%s/%%2Faws%%2Flambda%%2Ffn/2024%%2F01%%2F02%%2F%%5B%%24LATEST%%5Dabc", f->root);
    assert_int_equal(access(path, F_OK), -1); /* nothing written before a flush */
    logstore_flush(f->ls);
    size_t len;
    char *data = slurp(path, &len);
    assert_non_null(data);
    const char *want = "1000\thello\n1001\ttwo\rlines\n1001\tclock stepped back\n1002\t\n";
    assert_int_equal(len, strlen(want));
    assert_memory_equal(data, want, len);
    free(data);

    /* a leading dot is encoded, so no stream file is hidden or special */
    struct logstream *dot = logstore_stream(f->ls, "g", "..");
    put(dot, 1, "x");
    logstore_flush(f->ls);
    snprintf(path, sizeof(path), "%s/g/%%2E.", f->root);
    assert_int_equal(access(path, F_OK), 0);

    /* a name too long for a file name is refused, not truncated */
    char longname[300];
    memset(longname, '/', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    struct logstream *big = logstore_stream(f->ls, "g", longname);
    put(big, 1, "lost");
    logstore_flush(f->ls);
    struct logstream_info *v;
    size_t n;
    assert_int_equal(logstore_streams(f->ls, "g", &v, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(v[0].name, "..");
    free(v);

    char **names;
    assert_int_equal(logstore_groups(f->ls, &names, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(names[0], "/aws/lambda/fn");
    assert_string_equal(names[1], "g");
    logstore_free_names(names, n);
}

static void test_event_id(void **state)
{
    (void)state;
    struct log_event ev = {.ts_ms = 1700000000123, .stream_hash = 42, .offset = 7};
    char id[57];
    logstore_event_id(&ev, id);
    assert_int_equal(strlen(id), 56);
    assert_string_equal(id, "00017000000001230000000000000000004200000000000000000007");
    assert_int_equal(logstore_name_hash(""), 0xcbf29ce484222325ULL);
    assert_int_equal(logstore_name_hash("a"), 0xaf63dc4c8601ec8cULL);
}

/* ---- index ---- */

static void check_same_info(const struct logstream_info *a, const struct logstream_info *b)
{
    assert_string_equal(a->name, b->name);
    assert_int_equal(a->hash, b->hash);
    assert_int_equal(a->first_ms, b->first_ms);
    assert_int_equal(a->last_ms, b->last_ms);
    assert_int_equal(a->bytes, b->bytes);
}

static void test_index_follows_writers(void **state)
{
    struct fx *f = *state;
    assert_int_equal(logstore_group_exists(f->ls, "grp"), 0);
    struct logstream_info info;
    assert_int_equal(logstore_stream_info(f->ls, "grp", "a", &info), -ENOENT);
    struct logstream *a = logstore_stream(f->ls, "grp", "a");
    put(a, 100, "a1");
    logstore_flush(f->ls);

    /* loading the index reads the file */
    assert_int_equal(logstore_stream_info(f->ls, "grp", "a", &info), 0);
    assert_int_equal(info.first_ms, 100);
    assert_int_equal(info.last_ms, 100);
    assert_int_equal(info.bytes, strlen("100\ta1\n"));
    assert_true(info.creation_ms <= 100);
    assert_int_equal(logstore_stream_info(f->ls, "grp", "b", &info), -ESRCH);

    /* then writers keep it current, a new stream included */
    put(a, 200, "a2");
    struct logstream *b = logstore_stream(f->ls, "grp", "b");
    put(b, 150, "b1");
    put(b, 250, "b2");
    assert_int_equal(logstore_stream_info(f->ls, "grp", "a", &info), 0); /* flushes */
    assert_int_equal(info.last_ms, 200);
    assert_int_equal(info.bytes, 2 * strlen("100\ta1\n"));
    assert_int_equal(logstore_stream_info(f->ls, "grp", "b", &info), 0);
    assert_int_equal(info.first_ms, 150);
    assert_int_equal(info.last_ms, 250);

    struct loggroup_info gi;
    assert_int_equal(logstore_group_info(f->ls, "grp", &gi), 0);
    assert_int_equal(gi.nstreams, 2);
    assert_int_equal(gi.bytes, 4 * strlen("100\ta1\n"));
    assert_true(gi.creation_ms > 0 && gi.creation_ms <= 100);

    /* a closed writer's stream stays; what the index says is what a fresh load finds */
    logstore_stream_close(f->ls, a);
    struct logstream_info *v1, *v2;
    size_t n1, n2;
    assert_int_equal(logstore_streams(f->ls, "grp", &v1, &n1), 0);
    struct logstream_info copy[2];
    assert_int_equal(n1, 2);
    memcpy(copy, v1, sizeof(copy));
    char names[2][8];
    for (int i = 0; i < 2; i++) {
        snprintf(names[i], sizeof(names[i]), "%s", v1[i].name);
        copy[i].name = names[i];
    }
    free(v1);
    reopen(f);
    assert_int_equal(logstore_streams(f->ls, "grp", &v2, &n2), 0);
    assert_int_equal(n2, 2);
    for (int i = 0; i < 2; i++)
        check_same_info(&copy[i], strcmp(v2[0].name, copy[i].name) == 0 ? &v2[0] : &v2[1]);
    free(v2);
}

static void test_index_attaches_open_writers(void **state)
{
    struct fx *f = *state;
    struct logstream *a = logstore_stream(f->ls, "grp", "a");
    put(a, 10, "before the index");
    logstore_flush(f->ls);
    struct logstream_info info;
    assert_int_equal(logstore_stream_info(f->ls, "grp", "a", &info), 0);
    assert_int_equal(info.last_ms, 10);
    put(a, 20, "after");
    assert_int_equal(logstore_stream_info(f->ls, "grp", "a", &info), 0);
    assert_int_equal(info.last_ms, 20);
    assert_int_equal(info.bytes, strlen("10\tbefore the index\n20\tafter\n"));
}

static void test_create_and_delete_group(void **state)
{
    struct fx *f = *state;
    assert_int_equal(logstore_create_group(f->ls, "mine"), 0);
    assert_int_equal(logstore_create_group(f->ls, "mine"), -EEXIST);
    assert_int_equal(logstore_group_exists(f->ls, "mine"), 1);
    struct loggroup_info gi;
    assert_int_equal(logstore_group_info(f->ls, "mine", &gi), 0);
    assert_int_equal(gi.nstreams, 0);
    assert_true(gi.creation_ms > 0);

    struct logstream *s = logstore_stream(f->ls, "mine", "s");
    put(s, 5, "one");
    struct logstream_info info;
    assert_int_equal(logstore_stream_info(f->ls, "mine", "s", &info), 0);
    assert_int_equal(logstore_delete_group(f->ls, "mine"), 0);
    assert_int_equal(logstore_group_exists(f->ls, "mine"), 0);
    assert_int_equal(logstore_delete_group(f->ls, "mine"), -ENOENT);
    assert_int_equal(logstore_stream_info(f->ls, "mine", "s", &info), -ENOENT);

    /* the live writer starts a new file with its next event */
    put(s, 6, "two");
    assert_int_equal(logstore_stream_info(f->ls, "mine", "s", &info), 0);
    assert_int_equal(info.first_ms, 6);
    assert_int_equal(info.bytes, strlen("6\ttwo\n"));
}

/* ---- reading one stream ---- */

static void fill(struct fx *f, const char *group, const char *stream, int n, int per_ms)
{
    struct logstream *s = logstore_stream(f->ls, group, stream);
    for (int i = 0; i < n; i++) {
        char msg[64];
        snprintf(msg, sizeof(msg), "%s-%05d", stream, i);
        put(s, 1000 + i / per_ms, msg);
    }
    logstore_flush(f->ls);
}

static void test_read_forward_backward(void **state)
{
    struct fx *f = *state;
    fill(f, "g", "s", 10, 1); /* ts 1000..1009 */
    static struct got g;
    memset(&g, 0, sizeof(g));
    struct log_read rd = {.pos = 0};
    assert_int_equal(logstore_read(f->ls, "g", "s", &rd, collect, &g), 0);
    assert_int_equal(g.n, 10);
    assert_string_equal(g.ev[0].msg, "s-00000");
    assert_int_equal(rd.began, 0);
    assert_int_equal(rd.resume, g.ev[9].next);

    /* pages of 3 forward: resume continues exactly */
    uint64_t pos = 0;
    int seen = 0;
    for (int page = 0; page < 5; page++) {
        memset(&g, 0, sizeof(g));
        g.limit = 3;
        rd = (struct log_read){.pos = pos};
        assert_int_equal(logstore_read(f->ls, "g", "s", &rd, collect, &g), 0);
        for (size_t i = 0; i < g.n; i++) {
            char want[16];
            snprintf(want, sizeof(want), "s-%05d", seen++);
            assert_string_equal(g.ev[i].msg, want);
        }
        if (g.n == 0)
            assert_int_equal(rd.resume, pos); /* nothing new: same position */
        pos = rd.resume;
    }
    assert_int_equal(seen, 10);

    /* backward from the end, newest first, 4 at a time */
    memset(&g, 0, sizeof(g));
    g.limit = 4;
    rd = (struct log_read){.pos = LOG_POS_END, .backward = 1};
    assert_int_equal(logstore_read(f->ls, "g", "s", &rd, collect, &g), 0);
    assert_int_equal(g.n, 4);
    assert_string_equal(g.ev[0].msg, "s-00009");
    assert_string_equal(g.ev[3].msg, "s-00006");
    assert_int_equal(rd.resume, g.ev[3].off);
    uint64_t back = rd.resume;
    memset(&g, 0, sizeof(g));
    rd = (struct log_read){.pos = back, .backward = 1};
    assert_int_equal(logstore_read(f->ls, "g", "s", &rd, collect, &g), 0);
    assert_int_equal(g.n, 6);
    assert_string_equal(g.ev[0].msg, "s-00005");
    assert_int_equal(rd.resume, 0);

    /* REJECT leaves the position before the refused event */
    memset(&g, 0, sizeof(g));
    g.reject_after = 2;
    rd = (struct log_read){.pos = 0};
    assert_int_equal(logstore_read(f->ls, "g", "s", &rd, collect, &g), 0);
    assert_int_equal(g.n, 2);
    assert_int_equal(rd.resume, g.ev[1].next);

    /* time bounds: [1003, 1006) */
    memset(&g, 0, sizeof(g));
    rd = (struct log_read){.pos = 0, .start_ms = 1003, .end_ms = 1006};
    assert_int_equal(logstore_read(f->ls, "g", "s", &rd, collect, &g), 0);
    assert_int_equal(g.n, 3);
    assert_string_equal(g.ev[0].msg, "s-00003");
    assert_int_equal(rd.began, g.ev[0].off);
    assert_int_equal(rd.resume, g.ev[2].next);
    memset(&g, 0, sizeof(g));
    rd = (struct log_read){.pos = LOG_POS_END, .backward = 1, .start_ms = 1003, .end_ms = 1006};
    assert_int_equal(logstore_read(f->ls, "g", "s", &rd, collect, &g), 0);
    assert_int_equal(g.n, 3);
    assert_string_equal(g.ev[0].msg, "s-00005");
    assert_string_equal(g.ev[2].msg, "s-00003");

    /* positions that are not event boundaries are refused */
    rd = (struct log_read){.pos = 3};
    assert_int_equal(logstore_read(f->ls, "g", "s", &rd, collect, &g), -EINVAL);
    rd = (struct log_read){.pos = 1u << 30};
    assert_int_equal(logstore_read(f->ls, "g", "s", &rd, collect, &g), -EINVAL);
    assert_int_equal(logstore_read(f->ls, "g", "nope", &rd, collect, &g), -ESRCH);
    assert_int_equal(logstore_read(f->ls, "nope", "s", &rd, collect, &g), -ENOENT);
}

/* Brute force over big files, one with short and one with long runs of
 * equal timestamps (longer than the binary search's linear window): every
 * seek lands where a linear filter says. */
static void check_seeks(struct fx *f, const char *stream, int n, int per_ms)
{
    fill(f, "g", stream, n, per_ms);
    static struct got g;
    unsigned seed = 12345;
    int span = n / per_ms;
    for (int iter = 0; iter < 60; iter++) {
        int64_t start = 1000 + rand_r(&seed) % (span + 4) - 2;
        int64_t end = start + rand_r(&seed) % (span < 40 ? span : 40);
        for (int backward = 0; backward < 2; backward++) {
            memset(&g, 0, sizeof(g));
            g.limit = 50;
            struct log_read rd = {.pos = backward ? LOG_POS_END : 0,
                                  .backward = backward,
                                  .start_ms = start,
                                  .end_ms = end};
            assert_int_equal(logstore_read(f->ls, "g", stream, &rd, collect, &g), 0);
            /* the expected events: i with 1000 + i/per_ms in [start, end) */
            int lo = -1, hi = -1;
            for (int i = 0; i < n; i++) {
                int64_t ts = 1000 + i / per_ms;
                if (ts >= start && (end == 0 || ts < end)) {
                    if (lo < 0)
                        lo = i;
                    hi = i;
                }
            }
            if (lo < 0) {
                assert_int_equal(g.n, 0);
                continue;
            }
            int count = hi - lo + 1 < 50 ? hi - lo + 1 : 50;
            assert_int_equal(g.n, count);
            char want[32];
            snprintf(want, sizeof(want), "%s-%05d", stream, backward ? hi : lo);
            assert_string_equal(g.ev[0].msg, want);
        }
    }
}

static void test_read_seeks_match_linear_filter(void **state)
{
    struct fx *f = *state;
    check_seeks(f, "short", 60000, 7); /* ~1.3 MB: many binary search steps */
    check_seeks(f, "long", 60000, 3000);
}

static void test_long_lines_and_torn_tail(void **state)
{
    struct fx *f = *state;
    struct logstream *s = logstore_stream(f->ls, "g", "s");
    size_t big = 200 * 1024;
    char *msg = malloc(big);
    memset(msg, 'x', big);
    put(s, 1, "short");
    logstream_put(s, 2, msg, big);
    put(s, 3, "after");
    logstore_flush(f->ls);
    /* a crash mid-write leaves an unterminated line */
    char path[256];
    snprintf(path, sizeof(path), "%s/g/s", f->root);
    int fd = open(path, O_WRONLY | O_APPEND);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "4\ttorn", 6), 6);
    close(fd);
    reopen(f);
    static struct got g;
    memset(&g, 0, sizeof(g));
    struct log_read rd = {.pos = 0};
    assert_int_equal(logstore_read(f->ls, "g", "s", &rd, collect, &g), 0);
    assert_int_equal(g.n, 4);
    assert_int_equal(g.ev[1].next - g.ev[1].off, big + 3);
    assert_string_equal(g.ev[3].msg, "torn");
    memset(&g, 0, sizeof(g));
    rd = (struct log_read){.pos = LOG_POS_END, .backward = 1};
    assert_int_equal(logstore_read(f->ls, "g", "s", &rd, collect, &g), 0);
    assert_int_equal(g.n, 4);
    assert_string_equal(g.ev[0].msg, "torn");
    assert_int_equal(g.ev[2].ts, 2);
    assert_string_equal(g.ev[3].msg, "short");
    struct logstream_info info;
    assert_int_equal(logstore_stream_info(f->ls, "g", "s", &info), 0);
    assert_int_equal(info.first_ms, 1);
    assert_int_equal(info.last_ms, 4);
    free(msg);
}

/* ---- merged scan ---- */

static int key_less(int64_t ts1, uint64_t h1, uint64_t o1, int64_t ts2, uint64_t h2, uint64_t o2)
{
    if (ts1 != ts2)
        return ts1 < ts2;
    if (h1 != h2)
        return h1 < h2;
    return o1 < o2;
}

static void test_scan_merges_in_key_order(void **state)
{
    struct fx *f = *state;
    fill(f, "g", "a", 30, 3);
    fill(f, "g", "b", 20, 2);
    fill(f, "g", "c", 10, 1);
    struct logstream *late = logstore_stream(f->ls, "g", "late");
    put(late, 5000, "late-0");
    logstore_flush(f->ls);
    static struct got all;
    memset(&all, 0, sizeof(all));
    struct log_scan sc = {0};
    struct log_key resume;
    int more;
    assert_int_equal(logstore_scan(f->ls, "g", &sc, collect, &all, &resume, &more), 0);
    assert_int_equal(all.n, 61);
    assert_int_equal(more, 0);
    for (size_t i = 1; i < all.n; i++)
        assert_true(key_less(all.ev[i - 1].ts, all.ev[i - 1].hash, all.ev[i - 1].off, all.ev[i].ts,
                             all.ev[i].hash, all.ev[i].off));
    assert_string_equal(all.ev[60].msg, "late-0");

    /* pages of 7 via resume: the same sequence, no loss, no repeat */
    static struct got g;
    struct log_key after;
    int have_after = 0;
    size_t seen = 0;
    for (;;) {
        memset(&g, 0, sizeof(g));
        g.limit = 7;
        sc = (struct log_scan){.after = have_after ? &after : NULL};
        assert_int_equal(logstore_scan(f->ls, "g", &sc, collect, &g, &resume, &more), 0);
        for (size_t i = 0; i < g.n; i++) {
            assert_string_equal(g.ev[i].msg, all.ev[seen].msg);
            seen++;
        }
        if (!more)
            break;
        after = resume;
        have_after = 1;
    }
    assert_int_equal(seen, all.n);

    /* a budget stops early but resumes exactly */
    seen = 0;
    have_after = 0;
    int calls = 0;
    for (;; calls++) {
        memset(&g, 0, sizeof(g));
        sc = (struct log_scan){.after = have_after ? &after : NULL, .scan_budget = 1};
        assert_int_equal(logstore_scan(f->ls, "g", &sc, collect, &g, &resume, &more), 0);
        for (size_t i = 0; i < g.n; i++)
            assert_string_equal(g.ev[i].msg, all.ev[seen++].msg);
        if (!more)
            break;
        after = resume;
        have_after = 1;
    }
    assert_int_equal(seen, all.n);
    assert_true(calls > 10);

    /* REJECT stops before the refused event */
    memset(&g, 0, sizeof(g));
    g.reject_after = 4;
    sc = (struct log_scan){0};
    assert_int_equal(logstore_scan(f->ls, "g", &sc, collect, &g, &resume, &more), 0);
    assert_int_equal(g.n, 4);
    assert_int_equal(more, 1);
    assert_int_equal(resume.offset, g.ev[3].off);
    assert_int_equal(resume.hash, g.ev[3].hash);

    /* filters: names, prefix, time */
    const char *names[] = {"c", "nope", "late"};
    memset(&g, 0, sizeof(g));
    sc = (struct log_scan){.streams = names, .nstreams = 3};
    assert_int_equal(logstore_scan(f->ls, "g", &sc, collect, &g, &resume, &more), 0);
    assert_int_equal(g.n, 11);
    memset(&g, 0, sizeof(g));
    sc = (struct log_scan){.prefix = "la"};
    assert_int_equal(logstore_scan(f->ls, "g", &sc, collect, &g, &resume, &more), 0);
    assert_int_equal(g.n, 1);
    memset(&g, 0, sizeof(g));
    sc = (struct log_scan){.start_ms = 1005, .end_ms = 1008};
    assert_int_equal(logstore_scan(f->ls, "g", &sc, collect, &g, &resume, &more), 0);
    assert_int_equal(g.n, 9 + 6 + 3); /* a: 3 per ms, b: 2 per ms, c: 1 per ms */
    for (size_t i = 0; i < g.n; i++)
        assert_true(g.ev[i].ts >= 1005 && g.ev[i].ts < 1008);
    assert_int_equal(logstore_scan(f->ls, "nope", &sc, collect, &g, &resume, &more), -ENOENT);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_file_names_and_lines),           T(test_event_id),
        T(test_index_follows_writers),          T(test_index_attaches_open_writers),
        T(test_create_and_delete_group),        T(test_read_forward_backward),
        T(test_read_seeks_match_linear_filter), T(test_long_lines_and_torn_tail),
        T(test_scan_merges_in_key_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
