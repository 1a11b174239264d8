/*
 * store: the metric store. Owns the series (in a hash table, loaded from the
 * db at start), their unwritten per-minute aggregates, the log-bucket
 * histograms that give percentiles, and the SQLite rows (migration 5:
 * metric_series, metric_data). Recording adds to the aggregate of the
 * series' minute in memory; metrics_flush (a timer) appends one row per
 * (series, minute) touched since the previous flush, so a minute may have
 * several rows and queries add them up with what is still in memory. Data
 * older than CloudWatch's 15 days of 1-minute retention is deleted. Loop
 * thread only.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/util.h"
#include "services/metrics/metrics_internal.h"

/* gamma = 1.02: a bucket spans 2%, its middle is within 1% of any value in it */
#define HIST_LN_GAMMA 0.0198026272961797
#define HIST_OFFSET 100000
#define HIST_SPAN 199999

const double prom_bounds[PROM_NBUCKETS] = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                           0.5,   1,     2.5,  5,     10,   60,  300};

/*=== Histograms ===*/

static int32_t hist_key(double v)
{
    if (v == 0 || v != v)
        return 0;
    double a = fabs(v);
    double k = floor(log(a) / HIST_LN_GAMMA) + HIST_OFFSET;
    if (k < 0)
        k = 0;
    if (k > HIST_SPAN)
        k = HIST_SPAN;
    int32_t key = 1 + (int32_t)k;
    return v > 0 ? key : -key;
}

static double hist_value(int32_t key)
{
    if (key == 0)
        return 0;
    int32_t k = (key > 0 ? key : -key) - 1 - HIST_OFFSET;
    double v = exp(((double)k + 0.5) * HIST_LN_GAMMA);
    return key > 0 ? v : -v;
}

void hist_add(struct hist *h, double v, uint32_t count)
{
    int32_t key = hist_key(v);
    uint32_t lo = 0, hi = h->n;
    if (h->n && h->bins[h->n - 1].key < key) /* common: a new largest */
        lo = h->n;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        if (h->bins[mid].key < key)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < h->n && h->bins[lo].key == key) {
        h->bins[lo].count += count;
        return;
    }
    if (h->n == h->alloc) {
        uint32_t alloc = h->alloc ? 2 * h->alloc : 8;
        struct hbin *b = realloc(h->bins, alloc * sizeof(*b));
        if (!b)
            return;
        h->bins = b;
        h->alloc = alloc;
    }
    memmove(h->bins + lo + 1, h->bins + lo, (h->n - lo) * sizeof(*h->bins));
    h->bins[lo] = (struct hbin){key, count};
    h->n++;
}

void hist_merge(struct hist *dst, const struct hist *src)
{
    for (uint32_t i = 0; i < src->n; i++)
        hist_add(dst, hist_value(src->bins[i].key), src->bins[i].count);
}

void hist_release(struct hist *h)
{
    free(h->bins);
    memset(h, 0, sizeof(*h));
}

double hist_percentile(const struct hist *h, double p, double min, double max)
{
    uint64_t total = 0;
    for (uint32_t i = 0; i < h->n; i++)
        total += h->bins[i].count;
    if (total == 0)
        return min;
    double rank = ceil(p / 100.0 * (double)total);
    if (rank < 1)
        rank = 1;
    uint64_t seen = 0;
    double v = max;
    for (uint32_t i = 0; i < h->n; i++) {
        seen += h->bins[i].count;
        if ((double)seen >= rank) {
            /* the smallest and largest samples are known exactly */
            v = i == 0 ? min : i == h->n - 1 ? max : hist_value(h->bins[i].key);
            break;
        }
    }
    return v < min ? min : v > max ? max : v;
}

int hist_encode(const struct hist *h, struct buf *out)
{
    for (uint32_t i = 0; i < h->n; i++) {
        unsigned char b[8];
        uint32_t k = (uint32_t)h->bins[i].key, c = h->bins[i].count;
        for (int j = 0; j < 4; j++) {
            b[j] = (unsigned char)(k >> (8 * j));
            b[4 + j] = (unsigned char)(c >> (8 * j));
        }
        if (buf_append(out, b, 8) < 0)
            return -ENOMEM;
    }
    return 0;
}

int hist_decode(struct hist *h, const void *blob, size_t len)
{
    const unsigned char *p = blob;
    if (len % 8)
        return -EINVAL;
    for (size_t i = 0; i + 8 <= len; i += 8) {
        uint32_t k = 0, c = 0;
        for (int j = 0; j < 4; j++) {
            k |= (uint32_t)p[i + j] << (8 * j);
            c |= (uint32_t)p[i + 4 + j] << (8 * j);
        }
        hist_add(h, hist_value((int32_t)k), c);
    }
    return 0;
}

/*=== Aggregates ===*/

void agg_add(struct agg *a, double v, double count, int keep_hist)
{
    if (a->count == 0) {
        a->min = a->max = v;
    } else {
        if (v < a->min)
            a->min = v;
        if (v > a->max)
            a->max = v;
    }
    a->count += count;
    a->sum += v * count;
    if (keep_hist)
        hist_add(&a->h, v, count < 1 ? 1 : (uint32_t)count);
}

void agg_merge(struct agg *dst, const struct agg *src)
{
    if (src->count == 0)
        return;
    if (dst->count == 0) {
        dst->min = src->min;
        dst->max = src->max;
    } else {
        if (src->min < dst->min)
            dst->min = src->min;
        if (src->max > dst->max)
            dst->max = src->max;
    }
    dst->count += src->count;
    dst->sum += src->sum;
    hist_merge(&dst->h, &src->h);
}

void agg_release(struct agg *a)
{
    hist_release(&a->h);
    memset(a, 0, sizeof(*a));
}

int metrics_stat_valid(const char *stat)
{
    static const char *const plain[] = {"SampleCount", "Average", "Sum", "Minimum", "Maximum"};
    for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++)
        if (strcmp(stat, plain[i]) == 0)
            return 1;
    if (stat[0] != 'p')
        return 0;
    char *end;
    double p = strtod(stat + 1, &end);
    return end != stat + 1 && !*end && p > 0 && p <= 100 && strchr("0123456789", stat[1]);
}

int metrics_stat(const struct agg *a, const char *stat, double *out)
{
    if (!metrics_stat_valid(stat))
        return -1;
    if (strcmp(stat, "SampleCount") == 0) {
        *out = a->count;
        return 0;
    }
    if (a->count == 0)
        return 1;
    if (strcmp(stat, "Sum") == 0)
        *out = a->sum;
    else if (strcmp(stat, "Average") == 0)
        *out = a->sum / a->count;
    else if (strcmp(stat, "Minimum") == 0)
        *out = a->min;
    else if (strcmp(stat, "Maximum") == 0)
        *out = a->max;
    else if (a->h.n == 0)
        *out = a->sum / a->count; /* no samples kept (StatisticValues only): the mean */
    else
        *out = hist_percentile(&a->h, strtod(stat + 1, NULL), a->min, a->max);
    return 0;
}

/*=== Series ===*/

static uint64_t hash3(const char *a, const char *b, const char *c)
{
    uint64_t h = 1469598103934665603ULL;
    for (const char *s = a; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    h = (h ^ 0x1f) * 1099511628211ULL;
    for (const char *s = b; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    h = (h ^ 0x1f) * 1099511628211ULL;
    for (const char *s = c; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static int cmp_dim(const void *a, const void *b)
{
    json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    return strcmp(json_string_value(json_object_get(x, "Name")),
                  json_string_value(json_object_get(y, "Name")));
}

char *metrics_dims_canonical(json_t *dims)
{
    size_t n = json_array_size(dims);
    if (dims && !json_is_array(dims))
        return NULL;
    if (n > METRICS_MAX_DIMS)
        return NULL;
    json_t *items[METRICS_MAX_DIMS];
    for (size_t i = 0; i < n; i++) {
        items[i] = json_array_get(dims, i);
        if (!json_is_string(json_object_get(items[i], "Name")) ||
            !json_is_string(json_object_get(items[i], "Value")))
            return NULL;
    }
    qsort(items, n, sizeof(items[0]), cmp_dim);
    json_t *out = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(out, json_pack("[OO]", json_object_get(items[i], "Name"),
                                             json_object_get(items[i], "Value")));
    char *text = json_dumps(out, JSON_COMPACT);
    json_decref(out);
    return text;
}

static void table_grow(struct metrics *m)
{
    size_t nb = m->nbuckets ? m->nbuckets * 2 : 256;
    struct series **t = calloc(nb, sizeof(*t));
    if (!t)
        return;
    for (size_t i = 0; i < m->nbuckets; i++) {
        for (struct series *s = m->table[i], *next; s; s = next) {
            next = s->hnext;
            size_t b = hash3(s->ns, s->name, s->dims) & (nb - 1);
            s->hnext = t[b];
            t[b] = s;
        }
    }
    free(m->table);
    m->table = t;
    m->nbuckets = nb;
}

static struct series *series_new(struct metrics *m, const char *ns, const char *name,
                                 const char *dims)
{
    if (m->nseries >= m->nbuckets)
        table_grow(m);
    if (!m->table)
        return NULL;
    struct series *s = calloc(1, sizeof(*s));
    if (!s || !(s->ns = strdup(ns)) || !(s->name = strdup(name)) || !(s->dims = strdup(dims))) {
        if (s) {
            free(s->ns);
            free(s->name);
            free(s);
        }
        return NULL;
    }
    snprintf(s->unit, sizeof(s->unit), "None");
    size_t b = hash3(ns, name, dims) & (m->nbuckets - 1);
    s->hnext = m->table[b];
    m->table[b] = s;
    m->nseries++;
    return s;
}

struct series *metrics_series(struct metrics *m, const char *ns, const char *name, const char *dims,
                              int create)
{
    if (m->nbuckets) {
        size_t b = hash3(ns, name, dims) & (m->nbuckets - 1);
        for (struct series *s = m->table[b]; s; s = s->hnext)
            if (strcmp(s->name, name) == 0 && strcmp(s->dims, dims) == 0 && strcmp(s->ns, ns) == 0)
                return s;
    }
    return create ? series_new(m, ns, name, dims) : NULL;
}

static struct agg *slot_for(struct series *s, int64_t ts)
{
    int64_t minute = ts - (ts % 60 + 60) % 60;
    if (s->nslots && s->slots[s->nslots - 1].minute == minute)
        return &s->slots[s->nslots - 1].a;
    for (size_t i = 0; i < s->nslots; i++)
        if (s->slots[i].minute == minute)
            return &s->slots[i].a;
    if (s->nslots == s->slots_alloc) {
        size_t alloc = s->slots_alloc ? 2 * s->slots_alloc : 2;
        struct slot *n = realloc(s->slots, alloc * sizeof(*n));
        if (!n)
            return NULL;
        s->slots = n;
        s->slots_alloc = alloc;
    }
    struct slot *sl = &s->slots[s->nslots++];
    memset(sl, 0, sizeof(*sl));
    sl->minute = minute;
    if (ts > s->last_s)
        s->last_s = ts;
    return &sl->a;
}

void metrics_add(struct metrics *m, struct series *s, int64_t ts, double v, double count)
{
    (void)m;
    struct agg *a = slot_for(s, ts);
    if (!a)
        return;
    agg_add(a, v, count, s->keep_hist);
    s->life_count += count;
    s->life_sum += v * count;
    if (s->life_buckets) {
        double secs = v / 1000.0; /* Duration is in ms */
        size_t i = 0;
        while (i < PROM_NBUCKETS && secs > prom_bounds[i])
            i++;
        s->life_buckets[i] += (uint64_t)count;
    }
}

void metrics_add_agg(struct metrics *m, struct series *s, int64_t ts, const struct agg *src)
{
    (void)m;
    struct agg *a = slot_for(s, ts);
    if (!a)
        return;
    agg_merge(a, src);
    s->life_count += src->count;
    s->life_sum += src->sum;
}

void metrics_foreach(struct metrics *m, metrics_series_cb cb, void *arg)
{
    for (size_t i = 0; i < m->nbuckets; i++)
        for (struct series *s = m->table[i]; s; s = s->hnext)
            cb(s, arg);
}

/*=== The db ===*/

static int series_store(struct metrics *m, struct series *s)
{
    sqlite3_stmt *st = m->st_series_put;
    sqlite3_bind_text(st, 1, s->ns, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, s->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, s->dims, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, s->unit, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc != SQLITE_DONE) {
        log_error("sqlite: storing metric %s/%s: %s", s->ns, s->name, sqlite3_errmsg(m->conn));
        return -EIO;
    }
    s->id = sqlite3_last_insert_rowid(m->conn);
    return 0;
}

static void flush_series(struct series *s, void *arg)
{
    struct metrics *m = arg;
    if (!s->nslots)
        return;
    if (!s->id && series_store(m, s) < 0)
        return;
    struct buf blob = BUF_INIT;
    for (size_t i = 0; i < s->nslots; i++) {
        struct agg *a = &s->slots[i].a;
        sqlite3_stmt *st = m->st_data_put;
        buf_reset(&blob);
        hist_encode(&a->h, &blob);
        sqlite3_bind_int64(st, 1, s->id);
        sqlite3_bind_int64(st, 2, s->slots[i].minute);
        sqlite3_bind_double(st, 3, a->count);
        sqlite3_bind_double(st, 4, a->sum);
        sqlite3_bind_double(st, 5, a->min);
        sqlite3_bind_double(st, 6, a->max);
        if (blob.len)
            sqlite3_bind_blob(st, 7, blob.data, (int)blob.len, SQLITE_STATIC);
        else
            sqlite3_bind_null(st, 7);
        if (sqlite3_step(st) != SQLITE_DONE)
            log_error("sqlite: storing datapoints of %s/%s: %s", s->ns, s->name,
                      sqlite3_errmsg(m->conn));
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        agg_release(a);
    }
    buf_release(&blob);
    s->nslots = 0;
}

void metrics_flush(struct metrics *m)
{
    if (!m->conn)
        return;
    sqlite3_exec(m->conn, "BEGIN", NULL, NULL, NULL);
    metrics_foreach(m, flush_series, m);
    billing_flush(m);
    int64_t now = now_ms() / 1000;
    if (now - m->last_prune_s > 3600) {
        m->last_prune_s = now;
        sqlite3_bind_int64(m->st_prune, 1, now - METRICS_RETENTION_S);
        sqlite3_step(m->st_prune);
        sqlite3_reset(m->st_prune);
    }
    if (sqlite3_exec(m->conn, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        log_error("sqlite: committing metrics: %s", sqlite3_errmsg(m->conn));
        sqlite3_exec(m->conn, "ROLLBACK", NULL, NULL, NULL);
    }
}

int metrics_store_open(struct metrics *m)
{
    m->conn = db_sqlite(m->db);
    const struct {
        sqlite3_stmt **st;
        const char *sql;
    } sts[] = {
        {&m->st_series_put,
         "INSERT INTO metric_series(namespace, name, dims, unit) VALUES(?, ?, ?, ?)"},
        {&m->st_data_put,
         "INSERT INTO metric_data(series, ts, count, sum, min, max, hist) VALUES(?,?,?,?,?,?,?)"},
        {&m->st_data_get, "SELECT ts, count, sum, min, max, hist FROM metric_data "
                          "WHERE series = ? AND ts >= ? AND ts < ?"},
        {&m->st_prune, "DELETE FROM metric_data WHERE ts < ?"},
    };
    for (size_t i = 0; i < sizeof(sts) / sizeof(sts[0]); i++)
        if (sqlite3_prepare_v2(m->conn, sts[i].sql, -1, sts[i].st, NULL) != SQLITE_OK) {
            log_error("sqlite prepare %s: %s", sts[i].sql, sqlite3_errmsg(m->conn));
            return -EIO;
        }
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(m->conn,
                           "SELECT s.id, s.namespace, s.name, s.dims, s.unit, "
                           "(SELECT MAX(ts) FROM metric_data d WHERE d.series = s.id) "
                           "FROM metric_series s",
                           -1, &st, NULL) != SQLITE_OK)
        return -EIO;
    while (sqlite3_step(st) == SQLITE_ROW) {
        struct series *s = metrics_series(m, (const char *)sqlite3_column_text(st, 1),
                                          (const char *)sqlite3_column_text(st, 2),
                                          (const char *)sqlite3_column_text(st, 3), 1);
        if (!s)
            continue;
        s->id = sqlite3_column_int64(st, 0);
        snprintf(s->unit, sizeof(s->unit), "%s", (const char *)sqlite3_column_text(st, 4));
        s->last_s = sqlite3_column_int64(st, 5);
    }
    sqlite3_finalize(st);
    return 0;
}

void metrics_store_close(struct metrics *m)
{
    for (size_t i = 0; i < m->nbuckets; i++) {
        for (struct series *s = m->table[i], *next; s; s = next) {
            next = s->hnext;
            for (size_t k = 0; k < s->nslots; k++)
                agg_release(&s->slots[k].a);
            free(s->slots);
            free(s->life_buckets);
            free(s->ns);
            free(s->name);
            free(s->dims);
            free(s);
        }
    }
    free(m->table);
    sqlite3_finalize(m->st_series_put);
    sqlite3_finalize(m->st_data_put);
    sqlite3_finalize(m->st_data_get);
    sqlite3_finalize(m->st_prune);
}

/*=== Queries ===*/

int metrics_query(struct metrics *m, struct series *s, int64_t start, int64_t end, int period,
                  struct agg *out, size_t nout)
{
    if (period <= 0)
        return -EINVAL;
    if (s->id && m->conn) {
        sqlite3_stmt *st = m->st_data_get;
        sqlite3_bind_int64(st, 1, s->id);
        sqlite3_bind_int64(st, 2, start - (start % 60 + 60) % 60);
        sqlite3_bind_int64(st, 3, end);
        while (sqlite3_step(st) == SQLITE_ROW) {
            int64_t ts = sqlite3_column_int64(st, 0);
            if (ts < start)
                continue;
            size_t i = (size_t)((ts - start) / period);
            if (i >= nout)
                continue;
            struct agg a = {.count = sqlite3_column_double(st, 1),
                            .sum = sqlite3_column_double(st, 2),
                            .min = sqlite3_column_double(st, 3),
                            .max = sqlite3_column_double(st, 4)};
            const void *blob = sqlite3_column_blob(st, 5);
            if (blob)
                hist_decode(&a.h, blob, (size_t)sqlite3_column_bytes(st, 5));
            agg_merge(&out[i], &a);
            agg_release(&a);
        }
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
    }
    for (size_t k = 0; k < s->nslots; k++) {
        int64_t ts = s->slots[k].minute;
        if (ts < start || ts >= end)
            continue;
        size_t i = (size_t)((ts - start) / period);
        if (i < nout)
            agg_merge(&out[i], &s->slots[k].a);
    }
    return 0;
}
