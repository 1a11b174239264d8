/*
 * bill: `ignis bill [--since T] [--until T] [--by function] [--json]`. Reads
 * the daemon's metered hours (GET /_ignis/billing, signed) and prices them
 * as Lambda does: requests and GB-seconds (billed duration x memory), less
 * the monthly free tier, which each calendar month's usage consumes in time
 * order (usage earlier in a month than --since still uses it up). Prices
 * and free tier come from flags, else IGNIS_PRICE_PER_MILLION_REQUESTS,
 * IGNIS_PRICE_PER_GB_SECOND, IGNIS_FREE_REQUESTS, IGNIS_FREE_GB_SECONDS,
 * else AWS's published x86 prices. Metering is by the hour: --since and
 * --until select whole hours. Default range: this calendar month so far.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "core/util.h"

struct prices {
    double per_million, per_gbs, free_requests, free_gbs;
};

struct fn_total {
    const char *name;
    double requests, gbs;
};

static double env_price(const char *name, double dflt)
{
    const char *v = getenv(name);
    char *end;
    double d = v && *v ? strtod(v, &end) : dflt;
    if (v && *v && (*end || d < 0)) {
        fprintf(stderr, "ignis bill: ignoring %s=%s\n", name, v);
        return dflt;
    }
    return d;
}

static int parse_number(const char *s, double *out)
{
    char *end;
    double d = strtod(s, &end);
    if (!*s || *end || d < 0)
        return -1;
    *out = d;
    return 0;
}

static int64_t month_start(int64_t secs)
{
    time_t t = (time_t)secs;
    struct tm tm;
    gmtime_r(&t, &tm);
    tm.tm_mday = 1;
    tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
    return (int64_t)timegm(&tm);
}

static void iso(int64_t secs, char out[32])
{
    format_iso8601_ms(secs * 1000, out);
}

static int usage(void)
{
    fprintf(stderr, "usage: ignis bill [--since T] [--until T] [--by function] [--json]\n"
                    "                  [--price-requests USD_PER_MILLION] [--price-gb-second USD]\n"
                    "                  [--free-requests N] [--free-gb-seconds N]\n"
                    "T: 2026-01-31, 2026-01-31T12:00:00Z or epoch seconds\n");
    return 2;
}

int cmd_bill(int argc, char **argv)
{
    struct prices p = {
        env_price("IGNIS_PRICE_PER_MILLION_REQUESTS", 0.20),
        env_price("IGNIS_PRICE_PER_GB_SECOND", 0.0000166667),
        env_price("IGNIS_FREE_REQUESTS", 1000000),
        env_price("IGNIS_FREE_GB_SECONDS", 400000),
    };
    int64_t now = now_ms() / 1000, since = month_start(now), until = now;
    int as_json = 0, by_function = 0;
    static const struct option opts[] = {
        {"since", required_argument, NULL, 's'},
        {"until", required_argument, NULL, 'u'},
        {"by", required_argument, NULL, 'b'},
        {"json", no_argument, NULL, 'j'},
        {"price-requests", required_argument, NULL, 'r'},
        {"price-gb-second", required_argument, NULL, 'g'},
        {"free-requests", required_argument, NULL, 'R'},
        {"free-gb-seconds", required_argument, NULL, 'G'},
        {NULL, 0, NULL, 0},
    };
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        int64_t ms;
        switch (c) {
        case 's':
        case 'u':
            if (parse_timestamp_ms(optarg, &ms) < 0) {
                fprintf(stderr, "ignis bill: not a time: %s\n", optarg);
                return usage();
            }
            *(c == 's' ? &since : &until) = ms / 1000;
            break;
        case 'b':
            if (strcmp(optarg, "function") != 0)
                return usage();
            by_function = 1;
            break;
        case 'j':
            as_json = 1;
            break;
        case 'r':
        case 'g':
        case 'R':
        case 'G': {
            double *dst = c == 'r'   ? &p.per_million
                          : c == 'g' ? &p.per_gbs
                          : c == 'R' ? &p.free_requests
                                     : &p.free_gbs;
            if (parse_number(optarg, dst) < 0) {
                fprintf(stderr, "ignis bill: not a price or amount: %s\n", optarg);
                return usage();
            }
            break;
        }
        default:
            return usage();
        }
    }
    if (optind != argc)
        return usage();
    if (until <= since) {
        fprintf(stderr, "ignis bill: --until must be after --since\n");
        return 2;
    }
    since -= (since % 3600 + 3600) % 3600;
    struct client *cl = client_new();
    if (!cl)
        return 1;
    char query[96];
    /* from the start of since's month: earlier usage that month uses up the free tier */
    snprintf(query, sizeof(query), "since=%lld&until=%lld", (long long)month_start(since),
             (long long)until);
    json_t *res = client_json(cl, "GET", "/_ignis/billing", query, "monitoring", NULL, NULL, NULL);
    client_free(cl);
    if (!res)
        return 1;
    json_t *hours = json_object_get(res, "hours");
    size_t nfn = 0;
    struct fn_total *fns = calloc(json_array_size(hours) + 1, sizeof(*fns));
    double requests = 0, gbs = 0, free_req = 0, free_gbs = 0;
    int64_t month = -1;
    double left_req = 0, left_gbs = 0;
    size_t i;
    json_t *h;
    json_array_foreach(hours, i, h)
    {
        int64_t hour = (int64_t)json_integer_value(json_object_get(h, "hour"));
        double req = (double)json_integer_value(json_object_get(h, "requests"));
        double g = (double)json_integer_value(json_object_get(h, "mb_ms")) / 1024.0 / 1000.0;
        if (month_start(hour) != month) { /* a new month: a new free tier */
            month = month_start(hour);
            left_req = p.free_requests;
            left_gbs = p.free_gbs;
        }
        double fr = req < left_req ? req : left_req, fg = g < left_gbs ? g : left_gbs;
        left_req -= fr;
        left_gbs -= fg;
        if (hour < since)
            continue;
        requests += req;
        gbs += g;
        free_req += fr;
        free_gbs += fg;
        const char *name = json_string_value(json_object_get(h, "function"));
        size_t k = 0;
        while (k < nfn && strcmp(fns[k].name, name) != 0)
            k++;
        if (k == nfn)
            fns[nfn++].name = name;
        fns[k].requests += req;
        fns[k].gbs += g;
    }
    double gross = requests / 1e6 * p.per_million + gbs * p.per_gbs;
    double due = (requests - free_req) / 1e6 * p.per_million + (gbs - free_gbs) * p.per_gbs;
    char s_iso[32], u_iso[32];
    iso(since, s_iso);
    iso(until, u_iso);
    int gran = (int)json_integer_value(json_object_get(res, "granularity_ms"));
    if (as_json) {
        json_t *out = json_pack(
            "{s:s, s:s, s:i, s:{s:f, s:f, s:f, s:f}, s:f, s:f, s:f, s:f, s:f, s:{s:f, s:f}, s:f}",
            "since", s_iso, "until", u_iso, "billing_granularity_ms", gran, "prices",
            "per_million_requests", p.per_million, "per_gb_second", p.per_gbs, "free_requests",
            p.free_requests, "free_gb_seconds", p.free_gbs, "requests", requests, "gb_seconds", gbs,
            "request_cost", requests / 1e6 * p.per_million, "compute_cost", gbs * p.per_gbs,
            "gross_cost", gross, "free_tier", "requests", free_req, "gb_seconds", free_gbs, "cost",
            due);
        if (by_function) {
            json_t *list = json_array();
            for (size_t k = 0; k < nfn; k++)
                json_array_append_new(
                    list,
                    json_pack("{s:s, s:f, s:f, s:f}", "function", fns[k].name, "requests",
                              fns[k].requests, "gb_seconds", fns[k].gbs, "cost",
                              fns[k].requests / 1e6 * p.per_million + fns[k].gbs * p.per_gbs));
            json_object_set_new(out, "functions", list);
        }
        char *text = json_dumps(out, JSON_INDENT(2) | JSON_REAL_PRECISION(12));
        printf("%s\n", text ? text : "{}");
        free(text);
        json_decref(out);
    } else {
        printf("Lambda usage %s .. %s (billed duration rounded up to %d ms)\n", s_iso, u_iso, gran);
        printf("%-40s %12s %16s %14s\n", by_function ? "FUNCTION" : "", "REQUESTS", "GB-SECONDS",
               "COST (USD)");
        for (size_t k = 0; by_function && k < nfn; k++)
            printf("%-40s %12.0f %16.4f %14.6f\n", fns[k].name, fns[k].requests, fns[k].gbs,
                   fns[k].requests / 1e6 * p.per_million + fns[k].gbs * p.per_gbs);
        printf("%-40s %12.0f %16.4f %14.6f\n", "total", requests, gbs, gross);
        printf("%-40s %12.0f %16.4f %14.6f\n", "free tier", -free_req, -free_gbs, due - gross);
        printf("%-40s %12s %16s %14.6f\n", "due", "", "", due);
        printf("prices: $%g per 1M requests, $%.10g per GB-second; free tier %.0f requests and "
               "%.0f GB-seconds a month\n",
               p.per_million, p.per_gbs, p.free_requests, p.free_gbs);
    }
    free(fns);
    json_decref(res);
    return 0;
}
