/*
 * logs: `ignis logs NAME [--follow] [--since MINUTES]`. Reads the function's
 * log group /aws/lambda/NAME through CloudWatch Logs' FilterLogEvents and
 * prints "<time> <stream> <message>" lines, as `aws logs tail` does; with
 * --follow it keeps polling for new events.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "core/util.h"

#define SEEN_MAX 4096

struct seen {
    char *ids[SEEN_MAX];
    size_t n;
};

static int seen_has(struct seen *s, const char *id)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->ids[i], id) == 0)
            return 1;
    return 0;
}

static void seen_add(struct seen *s, const char *id)
{
    if (s->n == SEEN_MAX) {
        free(s->ids[0]);
        memmove(s->ids, s->ids + 1, (SEEN_MAX - 1) * sizeof(*s->ids));
        s->n--;
    }
    s->ids[s->n++] = strdup(id);
}

/* Prints the events from start_ms on; returns the newest timestamp seen. */
static int print_since(struct client *cl, const char *group, int64_t start_ms, struct seen *seen,
                       int64_t *newest)
{
    const char *token = NULL;
    json_t *res = NULL;
    do {
        json_t *body = json_pack("{s:s, s:I, s:b}", "logGroupName", group, "startTime",
                                 (json_int_t)start_ms, "interleaved", 1);
        if (token)
            json_object_set_new(body, "nextToken", json_string(token));
        json_decref(res);
        struct client_error err;
        res =
            client_json(cl, "POST", "/", NULL, "logs", "Logs_20140328.FilterLogEvents", body, &err);
        json_decref(body);
        if (!res) {
            if (strcmp(err.code, "ResourceNotFoundException") == 0)
                return 0; /* the function has not logged anything yet */
            if (strcmp(err.code, "Unreachable") != 0)
                client_error_print(&err);
            return -1;
        }
        size_t i;
        json_t *ev;
        json_array_foreach(json_object_get(res, "events"), i, ev)
        {
            const char *id = json_string_value(json_object_get(ev, "eventId"));
            if (id && seen_has(seen, id))
                continue;
            if (id)
                seen_add(seen, id);
            int64_t ts = json_integer_value(json_object_get(ev, "timestamp"));
            char when[32];
            format_iso8601_ms(ts, when);
            printf("%s %s %s\n", when, json_string_value(json_object_get(ev, "logStreamName")),
                   json_string_value(json_object_get(ev, "message")));
            if (ts > *newest)
                *newest = ts;
        }
        token = json_string_value(json_object_get(res, "nextToken"));
    } while (token);
    json_decref(res);
    fflush(stdout);
    return 0;
}

int cmd_logs(int argc, char **argv)
{
    static const struct option opts[] = {
        {"follow", no_argument, NULL, 'f'},
        {"since", required_argument, NULL, 's'},
        {NULL, 0, NULL, 0},
    };
    int follow = 0, c;
    long since_min = 60;
    while ((c = getopt_long(argc, argv, "f", opts, NULL)) != -1) {
        if (c == 'f')
            follow = 1;
        else if (c == 's')
            since_min = strtol(optarg, NULL, 10);
        else
            return 2;
    }
    if (optind != argc - 1) {
        fprintf(stderr, "usage: ignis logs NAME [--follow] [--since MINUTES]\n");
        return 2;
    }
    struct client *cl = client_new();
    if (!cl)
        return 1;
    char group[256];
    snprintf(group, sizeof(group), "/aws/lambda/%s", argv[optind]);
    struct seen *seen = calloc(1, sizeof(*seen));
    int64_t newest = now_ms() - since_min * 60000;
    int rc = print_since(cl, group, newest, seen, &newest);
    while (rc == 0 && follow) {
        usleep(500000);
        rc = print_since(cl, group, newest, seen, &newest);
    }
    for (size_t i = 0; i < seen->n; i++)
        free(seen->ids[i]);
    free(seen);
    client_free(cl);
    return rc == 0 ? 0 : 1;
}
