/*
 * billing: the meter Lambda bills by. Every invocation adds one request, its
 * billed duration (rounded up to 1 ms, or to 100 ms with
 * IGNIS_BILLING_GRANULARITY_MS=100, as Lambda billed before December 2020)
 * and that duration times its memory (MB-ms) to its function's hour, in
 * memory; the flush timer adds the hours to the billing table (one upsert
 * each), so a kill -9 loses at most one flush interval of metering. Answers
 * GET /_ignis/billing?since=S&until=S (epoch seconds, whole hours, signed
 * like any API call) with the stored hours; `ignis bill` prices them.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/util.h"
#include "edge/aws_error.h"
#include "services/metrics/metrics_internal.h"

void billing_meter(struct metrics *m, const char *function, const struct invocation *inv)
{
    int64_t hour = now_ms() / 1000;
    hour -= hour % 3600;
    struct bill_acc *b = NULL;
    for (size_t i = m->nbills; i-- > 0;)
        if (m->bills[i].hour == hour && strcmp(m->bills[i].function, function) == 0) {
            b = &m->bills[i];
            break;
        }
    if (!b) {
        if (m->nbills == m->bills_alloc) {
            size_t alloc = m->bills_alloc ? 2 * m->bills_alloc : 16;
            struct bill_acc *n = realloc(m->bills, alloc * sizeof(*n));
            if (!n)
                return;
            m->bills = n;
            m->bills_alloc = alloc;
        }
        b = &m->bills[m->nbills++];
        memset(b, 0, sizeof(*b));
        snprintf(b->function, sizeof(b->function), "%s", function);
        b->hour = hour;
    }
    uint64_t billed = 0;
    if (inv->duration_us > 0) {
        if (m->billing_granularity_ms <= 1) {
            billed = inv->billed_ms;
        } else {
            uint64_t g = (uint64_t)m->billing_granularity_ms * 1000;
            billed = ((uint64_t)inv->duration_us + g - 1) / g * m->billing_granularity_ms;
        }
    }
    b->requests++;
    b->billed_ms += billed;
    b->mb_ms += billed * inv->memory_mb;
}

void billing_flush(struct metrics *m)
{
    if (!m->nbills)
        return;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(m->conn,
                           "INSERT INTO billing(function, hour, requests, billed_ms, mb_ms) "
                           "VALUES(?, ?, ?, ?, ?) ON CONFLICT(function, hour) DO UPDATE SET "
                           "requests = requests + excluded.requests, "
                           "billed_ms = billed_ms + excluded.billed_ms, "
                           "mb_ms = mb_ms + excluded.mb_ms",
                           -1, &st, NULL) != SQLITE_OK) {
        log_error("sqlite: billing: %s", sqlite3_errmsg(m->conn));
        return;
    }
    for (size_t i = 0; i < m->nbills; i++) {
        struct bill_acc *b = &m->bills[i];
        sqlite3_bind_text(st, 1, b->function, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, b->hour);
        sqlite3_bind_int64(st, 3, (sqlite3_int64)b->requests);
        sqlite3_bind_int64(st, 4, (sqlite3_int64)b->billed_ms);
        sqlite3_bind_int64(st, 5, (sqlite3_int64)b->mb_ms);
        if (sqlite3_step(st) != SQLITE_DONE)
            log_error("sqlite: billing %s: %s", b->function, sqlite3_errmsg(m->conn));
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
    }
    sqlite3_finalize(st);
    m->nbills = 0;
}

static int query_seconds(struct http_req *req, const char *name, int64_t *out)
{
    const char *v = http_req_query(req, name);
    if (!v)
        return 1;
    char *end;
    long long n = strtoll(v, &end, 10);
    if (!*v || *end)
        return -1;
    *out = n;
    return 0;
}

void billing_report(struct metrics *m, struct http_req *req)
{
    int64_t since = 0, until = INT64_MAX / 2;
    if (strcmp(http_req_method(req), "GET") != 0 || query_seconds(req, "since", &since) < 0 ||
        query_seconds(req, "until", &until) < 0) {
        aws_error(req, AWS_JSON_11, 400, "ValidationException",
                  "GET /_ignis/billing?since=EPOCH_S&until=EPOCH_S");
        return;
    }
    metrics_flush(m); /* what is metered so far, in the db */
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(m->conn,
                           "SELECT function, hour, requests, billed_ms, mb_ms FROM billing "
                           "WHERE hour >= ? AND hour < ? ORDER BY hour, function",
                           -1, &st, NULL) != SQLITE_OK) {
        aws_error(req, AWS_JSON_11, 500, "ServiceException", "billing: %s",
                  sqlite3_errmsg(m->conn));
        return;
    }
    sqlite3_bind_int64(st, 1, since - (since % 3600 + 3600) % 3600);
    sqlite3_bind_int64(st, 2, until);
    json_t *rows = json_array();
    while (sqlite3_step(st) == SQLITE_ROW)
        json_array_append_new(rows, json_pack("{s:s, s:I, s:I, s:I, s:I}", "function",
                                              sqlite3_column_text(st, 0), "hour",
                                              (json_int_t)sqlite3_column_int64(st, 1), "requests",
                                              (json_int_t)sqlite3_column_int64(st, 2), "billed_ms",
                                              (json_int_t)sqlite3_column_int64(st, 3), "mb_ms",
                                              (json_int_t)sqlite3_column_int64(st, 4)));
    sqlite3_finalize(st);
    aws_reply_json(
        req, 200,
        json_pack("{s:i, s:o}", "granularity_ms", (int)m->billing_granularity_ms, "hours", rows));
}
