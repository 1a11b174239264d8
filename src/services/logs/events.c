/*
 * events: GetLogEvents and FilterLogEvents. Owns their page building (at
 * most `limit` events and 1 MB, as AWS caps them), their tokens and the
 * mapping of store positions onto them:
 *   GetLogEvents: "f/<offset>" and "b/<offset>", byte offsets of event lines
 *   in the stream file. Reading forward from f/N continues after the last
 *   event returned; with nothing new the same token comes back, which is how
 *   clients poll a stream. Backward reads return the events just before b/N.
 *   FilterLogEvents: "n/<key>", the (timestamp, stream hash, offset) key of
 *   the last event looked at; a call that ran out of scan budget before
 *   filling its page answers the events it found and a token, as AWS does.
 * Event ids are the same key in 56 digits, stable across calls, which is
 * what `aws logs tail --follow` relies on to drop events it already printed.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/util.h"
#include "services/logs/logs_internal.h"

/*=== Pages ===*/

/* The UTF-8 sequence at s (n > 0 bytes): its length, with *ok = 1 when it
 * is well formed; else *ok = 0 and the length of its maximal ill-formed
 * subpart, which becomes one U+FFFD (Unicode's recommended practice, and
 * what Python's "replace" does). */
static size_t utf8_next(const unsigned char *s, size_t n, int *ok)
{
    unsigned c = s[0];
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF; /* the second byte's range */
    *ok = 0;
    if (c < 0x80) {
        *ok = 1;
        return 1;
    }
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        lo = c == 0xE0 ? 0xA0 : 0x80; /* no overlongs */
        hi = c == 0xED ? 0x9F : 0xBF; /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        lo = c == 0xF0 ? 0x90 : 0x80;
        hi = c == 0xF4 ? 0x8F : 0xBF; /* nothing past U+10FFFF */
    } else {
        return 1;
    }
    size_t i = 1;
    for (; i < len && i < n; i++)
        if (s[i] < (i == 1 ? lo : 0x80) || s[i] > (i == 1 ? hi : 0xBF))
            break;
    *ok = i == len;
    return i;
}

/* Appends s as a JSON string: quotes, escapes, and U+FFFD for bytes that
 * are not UTF-8 (a function may print anything). Runs of plain bytes are
 * copied at once. */
static void put_json_string(struct buf *b, const char *str, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)str;
    buf_putc(b, '"');
    size_t run = 0; /* start of the pending plain run */
    for (size_t i = 0; i < len;) {
        unsigned char ch = s[i];
        if (ch >= 0x20 && ch < 0x80 && ch != '"' && ch != '\\') {
            i++;
            continue;
        }
        int ok = 0;
        size_t n = ch >= 0x80 ? utf8_next(s + i, len - i, &ok) : 1;
        if (ok) {
            i += n; /* valid UTF-8: part of the run */
            continue;
        }
        buf_append(b, s + run, i - run);
        char esc[8] = {'\\', 0};
        size_t elen = 2;
        switch (ch) {
        case '"':
        case '\\':
            esc[1] = (char)ch;
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        default:
            if (ch < 0x20) {
                memcpy(esc + 1, "u00", 3);
                esc[4] = hex[ch >> 4];
                esc[5] = hex[ch & 15];
            } else {
                memcpy(esc + 1, "ufffd", 5);
            }
            elen = 6;
        }
        buf_append(b, esc, elen);
        i += n;
        run = i;
    }
    buf_append(b, s + run, len - run);
    buf_putc(b, '"');
}

/* A page of events rendered straight to JSON text: jansson objects for
 * 10,000 events cost ten times more than the reading. Each event's text is
 * events.data[at[i]..at[i+1]) so a backward read can be put in time order. */
struct page {
    struct buf events;
    size_t *at, n;
    size_t bytes;
    size_t limit;
    int filtered; /* FilterLogEvents: stream name and event id too */
    const struct logs_pattern *pattern;
    int have_first;
    uint64_t first_off, first_next; /* of the first event taken */
};

static enum log_visit take(const struct log_event *ev, void *arg)
{
    struct page *p = arg;
    if (p->pattern && !logs_pattern_match(p->pattern, ev->message, ev->len))
        return LOG_NEXT;
    size_t cost = ev->len + LOGS_EVENT_OVERHEAD;
    if (p->n > 0 && p->bytes + cost > LOGS_PAGE_BYTES)
        return LOG_REJECT;
    struct buf *b = &p->events;
    p->at[p->n] = b->len;
    if (p->filtered) {
        buf_puts(b, "{\"logStreamName\":");
        put_json_string(b, ev->stream, strlen(ev->stream));
        buf_putc(b, ',');
    } else {
        buf_putc(b, '{');
    }
    buf_printf(b, "\"timestamp\":%lld,\"message\":", (long long)ev->ts_ms);
    put_json_string(b, ev->message, ev->len);
    buf_printf(b, ",\"ingestionTime\":%lld", (long long)ev->ingested_ms);
    if (p->filtered) {
        char id[57];
        logstore_event_id(ev, id);
        buf_printf(b, ",\"eventId\":\"%s\"", id);
    }
    buf_putc(b, '}');
    p->at[++p->n] = b->len;
    p->bytes += cost;
    if (!p->have_first) {
        p->have_first = 1;
        p->first_off = ev->offset;
        p->first_next = ev->next;
    }
    return p->n >= p->limit ? LOG_STOP : LOG_NEXT;
}

static int page_init(struct page *p, size_t limit)
{
    memset(p, 0, sizeof(*p));
    p->limit = limit;
    p->at = malloc((limit + 1) * sizeof(*p->at));
    if (!p->at || buf_grow(&p->events, 64 * 1024) < 0) {
        free(p->at);
        return -ENOMEM;
    }
    p->at[0] = 0;
    return 0;
}

static void page_release(struct page *p)
{
    buf_release(&p->events);
    free(p->at);
}

/* {"events":[...] (in time order), plus what tail holds, then "}". */
static void page_answer(struct logs_call *c, struct page *p, int reverse, const char *tail)
{
    struct buf out = BUF_INIT;
    buf_grow(&out, p->events.len + 256);
    buf_puts(&out, "{\"events\":[");
    for (size_t k = 0; k < p->n; k++) {
        size_t i = reverse ? p->n - 1 - k : k;
        if (k)
            buf_putc(&out, ',');
        buf_append(&out, p->events.data + p->at[i], p->at[i + 1] - p->at[i]);
    }
    buf_printf(&out, "]%s}", tail);
    page_release(p);
    if (!out.data) {
        logs_fail(c, 500, "ServiceUnavailableException", "Out of memory.");
        return;
    }
    size_t len;
    char *text = buf_detach(&out, &len);
    logs_reply_text(c, text, len);
}

static void store_error(struct logs_call *c, int rc)
{
    if (rc == -ENOENT)
        logs_no_group(c);
    else if (rc == -ESRCH)
        logs_fail(c, 400, "ResourceNotFoundException", "The specified log stream does not exist.");
    else if (rc == -EINVAL)
        logs_fail(c, 400, "InvalidParameterException", "The specified nextToken is invalid.");
    else
        logs_fail(c, 500, "ServiceUnavailableException", "Cannot read the log: %s", strerror(-rc));
}

/*=== GetLogEvents ===*/

static int parse_offset_token(const char *t, char *dir, uint64_t *pos)
{
    if ((t[0] != 'f' && t[0] != 'b') || t[1] != '/')
        return -1;
    const char *d = t + 2;
    size_t n = strspn(d, "0123456789");
    if (n == 0 || n > 20 || d[n])
        return -1;
    errno = 0;
    unsigned long long v = strtoull(d, NULL, 10);
    if (errno || v >= LOG_POS_END)
        return -1;
    *dir = t[0];
    *pos = v;
    return 0;
}

void logs_get_log_events(struct logs_call *c)
{
    const char *group, *stream, *token = NULL;
    int64_t start = 0, end = 0, limit = LOGS_MAX_EVENTS;
    int head = 0, unmask = 0;
    if (logs_param_group(c, &group) < 0 ||
        logs_param_str(c, "logStreamName", 1, LOGS_MAX_NAME, &stream) < 0 ||
        logs_param_long(c, "startTime", 0, INT64_MAX, &start) < 0 ||
        logs_param_long(c, "endTime", 0, INT64_MAX, &end) < 0 ||
        logs_param_long(c, "limit", 1, LOGS_MAX_EVENTS, &limit) < 0 ||
        logs_param_bool(c, "startFromHead", &head) < 0 ||
        logs_param_bool(c, "unmask", &unmask) < 0 ||
        logs_param_str(c, "nextToken", 0, 1024, &token) < 0)
        return;
    char dir = head ? 'f' : 'b';
    uint64_t pos = head ? 0 : LOG_POS_END;
    if (token && parse_offset_token(token, &dir, &pos) < 0) {
        logs_fail(c, 400, "InvalidParameterException", "The specified nextToken is invalid.");
        return;
    }
    struct page p;
    if (page_init(&p, (size_t)limit) < 0) {
        logs_fail(c, 500, "ServiceUnavailableException", "Out of memory.");
        return;
    }
    struct log_read rd = {
        .pos = pos,
        .backward = dir == 'b',
        .start_ms = start,
        .end_ms = end,
        .scan_budget = LOGS_SCAN_BUDGET,
    };
    int rc = logstore_read(c->svc->ls, group, stream, &rd, take, &p);
    if (rc < 0) {
        page_release(&p);
        store_error(c, rc);
        return;
    }
    /* backward reads visit newest first */
    uint64_t fwd = rd.backward ? (p.have_first ? p.first_next : rd.began) : rd.resume;
    uint64_t back = rd.backward ? rd.resume : (p.have_first ? p.first_off : rd.began);
    char tail[96];
    snprintf(tail, sizeof(tail),
             ",\"nextForwardToken\":\"f/%020" PRIu64 "\",\"nextBackwardToken\":\"b/%020" PRIu64
             "\"",
             fwd, back);
    page_answer(c, &p, rd.backward, tail);
}

/*=== FilterLogEvents ===*/

static int parse_key_token(const char *t, struct log_key *key)
{
    if (strncmp(t, "n/", 2) != 0 || strlen(t) != 58 || strspn(t + 2, "0123456789") != 56)
        return -1;
    char part[21];
    memcpy(part, t + 2, 16);
    part[16] = '\0';
    key->ts_ms = strtoll(part, NULL, 10);
    memcpy(part, t + 18, 20);
    part[20] = '\0';
    errno = 0;
    key->hash = strtoull(part, NULL, 10);
    memcpy(part, t + 38, 20);
    key->offset = strtoull(part, NULL, 10);
    return errno ? -1 : 0;
}

void logs_filter_log_events(struct logs_call *c)
{
    const char *group, *prefix = NULL, *pattern_src = NULL, *token = NULL;
    int64_t start = 0, end = 0, limit = LOGS_MAX_EVENTS;
    int interleaved = 1, unmask = 0;
    if (logs_param_group(c, &group) < 0 ||
        logs_param_str(c, "logStreamNamePrefix", 0, LOGS_MAX_NAME, &prefix) < 0 ||
        logs_param_long(c, "startTime", 0, INT64_MAX, &start) < 0 ||
        logs_param_long(c, "endTime", 0, INT64_MAX, &end) < 0 ||
        logs_param_long(c, "limit", 1, LOGS_MAX_EVENTS, &limit) < 0 ||
        logs_param_bool(c, "interleaved", &interleaved) < 0 ||
        logs_param_bool(c, "unmask", &unmask) < 0 ||
        logs_param_str(c, "nextToken", 0, 1024, &token) < 0)
        return;
    json_t *pv = json_object_get(c->body, "filterPattern"); /* may be "" */
    if (pv && !json_is_null(pv)) {
        if (!json_is_string(pv)) {
            logs_fail(c, 400, "SerializationException", "Expected a string for 'filterPattern'.");
            return;
        }
        pattern_src = json_string_value(pv);
        if (json_string_length(pv) > 1024) {
            logs_fail(c, 400, "InvalidParameterException",
                      "1 validation error detected: Value at 'filterPattern' failed to satisfy "
                      "constraint: Member must have length less than or equal to 1024");
            return;
        }
    }
    json_t *names = json_object_get(c->body, "logStreamNames");
    const char **streams = NULL;
    size_t nstreams = 0;
    if (names && !json_is_null(names)) {
        if (!json_is_array(names)) {
            logs_fail(c, 400, "SerializationException",
                      "Expected a list of strings for 'logStreamNames'.");
            return;
        }
        nstreams = json_array_size(names);
        if (nstreams < 1 || nstreams > 100) {
            logs_fail(c, 400, "InvalidParameterException",
                      "1 validation error detected: Value at 'logStreamNames' failed to satisfy "
                      "constraint: Member must have length %s",
                      nstreams < 1 ? "greater than or equal to 1" : "less than or equal to 100");
            return;
        }
        streams = calloc(nstreams, sizeof(*streams));
        if (!streams) {
            logs_fail(c, 500, "ServiceUnavailableException", "Out of memory.");
            return;
        }
        for (size_t i = 0; i < nstreams; i++) {
            json_t *s = json_array_get(names, i);
            size_t len = json_string_length(s);
            if (!json_is_string(s) || len < 1 || len > LOGS_MAX_NAME) {
                free(streams);
                logs_fail(c, 400, "InvalidParameterException",
                          "1 validation error detected: Value at 'logStreamNames' failed to "
                          "satisfy constraint: Member must satisfy constraint: [Member must "
                          "have length less than or equal to 512, Member must have length "
                          "greater than or equal to 1]");
                return;
            }
            streams[i] = json_string_value(s);
        }
    }
    if (streams && prefix) {
        free(streams);
        logs_fail(c, 400, "InvalidParameterException",
                  "logStreamNames and logStreamNamePrefix are mutually exclusive parameters.");
        return;
    }
    struct log_key after;
    if (token && parse_key_token(token, &after) < 0) {
        free(streams);
        logs_fail(c, 400, "InvalidParameterException", "The specified nextToken is invalid.");
        return;
    }
    struct logs_pattern *pattern = NULL;
    char err[512];
    if (pattern_src && logs_pattern_compile(pattern_src, &pattern, err, sizeof(err)) < 0) {
        free(streams);
        logs_fail(c, 400, "InvalidParameterException", "%s", err);
        return;
    }
    struct page p;
    if (page_init(&p, (size_t)limit) < 0) {
        free(streams);
        logs_pattern_free(pattern);
        logs_fail(c, 500, "ServiceUnavailableException", "Out of memory.");
        return;
    }
    p.filtered = 1;
    p.pattern = pattern;
    struct log_scan sc = {
        .streams = streams,
        .nstreams = nstreams,
        .prefix = prefix,
        .start_ms = start,
        .end_ms = end,
        .after = token ? &after : NULL,
        .scan_budget = LOGS_SCAN_BUDGET,
    };
    struct log_key resume;
    int more = 0;
    int rc = logstore_scan(c->svc->ls, group, &sc, take, &p, &resume, &more);
    free(streams);
    logs_pattern_free(pattern);
    if (rc < 0) {
        page_release(&p);
        store_error(c, rc);
        return;
    }
    char tail[128] = ",\"searchedLogStreams\":[]";
    if (more) {
        struct log_event ev = {
            .ts_ms = resume.ts_ms, .stream_hash = resume.hash, .offset = resume.offset};
        char id[57];
        logstore_event_id(&ev, id);
        snprintf(tail + strlen(tail), sizeof(tail) - strlen(tail), ",\"nextToken\":\"n/%s\"", id);
    }
    page_answer(c, &p, 0, tail);
}
