/*
 * wire: CloudWatch's two wire protocols around one JSON document per call.
 * The query protocol (aws CLI v2, boto3 1.26): a form-encoded POST whose
 * "A.member.N.B" keys are decoded here into nested objects and arrays of
 * strings, answered with <OpResponse><OpResult>...</OpResult>
 * <ResponseMetadata/></OpResponse> XML built from the output document
 * (lists as <member>, ExtendedStatistics as <entry><key><value>, timestamps
 * as ISO 8601). JSON 1.0 (newer SDKs): the body is the input and the output
 * document is the answer. Errors go through edge/aws_error.c. The form
 * decoder is a parser of untrusted input (tests/fuzz/fuzz_query_form.c).
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/util.h"
#include "edge/aws_error.h"
#include "services/metrics/metrics_internal.h"

#define XMLNS "http://monitoring.amazonaws.com/doc/2010-08-01/"
#define FORM_MAX_INDEX 1000 /* CloudWatch's longest lists (MetricData) */
#define FORM_MAX_DEPTH 16
/* List slots one body may create (sparse indexes pad with nulls): bounds the memory a
 * 1 MB body can make us use to a small multiple of it. */
#define FORM_MAX_SLOTS 200000

/*=== Form decoding ===*/

static int form_unescape(char *s, size_t n, size_t *out)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] == '+')
            s[i] = ' ';
    long len = percent_decode(s, n);
    if (len < 0)
        return -1;
    s[len] = '\0';
    *out = (size_t)len;
    return 0;
}

static int is_index(const char *s, long *out)
{
    if (!*s || *s == '0')
        return 0;
    long v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9' || v > FORM_MAX_INDEX)
            return 0;
        v = v * 10 + (*p - '0');
    }
    if (v > FORM_MAX_INDEX)
        return 0;
    *out = v;
    return 1;
}

/* Sets value at the key's path under root. */
static int form_set(json_t *root, char *key, json_t *value, size_t *slots, char *err,
                    size_t errsize)
{
    char *segs[FORM_MAX_DEPTH * 2 + 2];
    int n = 0;
    for (char *p = key;;) {
        if (n == (int)(sizeof(segs) / sizeof(segs[0]))) {
            snprintf(err, errsize, "parameter name too deep");
            return -1;
        }
        segs[n++] = p;
        char *dot = strchr(p, '.');
        if (!dot)
            break;
        *dot = '\0';
        p = dot + 1;
    }
    json_t *cur = root; /* an object or an array element slot's container */
    for (int i = 0; i < n; i++) {
        if (!*segs[i]) {
            snprintf(err, errsize, "empty segment in a parameter name");
            return -1;
        }
        long idx;
        int list = i + 2 < n &&
                   (strcmp(segs[i + 1], "member") == 0 || strcmp(segs[i + 1], "entry") == 0) &&
                   is_index(segs[i + 2], &idx);
        int last = list ? i + 2 == n - 1 : i == n - 1;
        json_t *child = json_object_get(cur, segs[i]);
        if (!list) {
            if (last) {
                if (child) {
                    snprintf(err, errsize, "parameter %s given twice", segs[i]);
                    return -1;
                }
                if (json_object_set(cur, segs[i], value) < 0)
                    goto nomem;
                return 0;
            }
            if (!child) {
                child = json_object();
                if (json_object_set_new(cur, segs[i], child) < 0)
                    goto nomem;
            } else if (!json_is_object(child)) {
                snprintf(err, errsize, "parameter %s is both a value and a structure", segs[i]);
                return -1;
            }
            cur = child;
            continue;
        }
        if (!child) {
            child = json_array();
            if (json_object_set_new(cur, segs[i], child) < 0)
                goto nomem;
        } else if (!json_is_array(child)) {
            snprintf(err, errsize, "parameter %s is both a value and a list", segs[i]);
            return -1;
        }
        while (json_array_size(child) < (size_t)idx) {
            if (++*slots > FORM_MAX_SLOTS) {
                snprintf(err, errsize, "too many list items");
                return -1;
            }
            if (json_array_append_new(child, json_null()) < 0)
                goto nomem;
        }
        json_t *el = json_array_get(child, (size_t)idx - 1);
        if (last) {
            if (!json_is_null(el)) {
                snprintf(err, errsize, "list item %s.%ld given twice", segs[i], idx);
                return -1;
            }
            if (json_array_set(child, (size_t)idx - 1, value) < 0)
                goto nomem;
            return 0;
        }
        if (json_is_null(el)) {
            el = json_object();
            if (json_array_set_new(child, (size_t)idx - 1, el) < 0)
                goto nomem;
        } else if (!json_is_object(el)) {
            snprintf(err, errsize, "list item %s.%ld is both a value and a structure", segs[i],
                     idx);
            return -1;
        }
        cur = el;
        i += 2;
    }
    return 0;
nomem:
    snprintf(err, errsize, "out of memory");
    return -1;
}

/* Lists given sparsely ("member.3" without 1 and 2) keep their items in order. */
static void compact(json_t *v)
{
    if (json_is_object(v)) {
        const char *k;
        json_t *c;
        json_object_foreach(v, k, c) compact(c);
    } else if (json_is_array(v)) {
        size_t n = json_array_size(v), kept = 0;
        for (size_t i = 0; i < n; i++) {
            json_t *c = json_array_get(v, i);
            if (json_is_null(c))
                continue;
            compact(c);
            if (kept != i)
                json_array_set(v, kept, c);
            kept++;
        }
        while (json_array_size(v) > kept) /* from the end: O(1) each */
            json_array_remove(v, json_array_size(v) - 1);
    }
}

json_t *mw_form_decode(const char *body, size_t len, char *err, size_t errsize)
{
    json_t *root = json_object();
    char *copy = malloc(len + 1);
    if (!root || !copy) {
        json_decref(root);
        free(copy);
        snprintf(err, errsize, "out of memory");
        return NULL;
    }
    memcpy(copy, body, len);
    copy[len] = '\0';
    char *p = copy, *end = copy + len;
    size_t slots = 0;
    while (p < end) {
        char *amp = memchr(p, '&', (size_t)(end - p));
        char *stop = amp ? amp : end;
        *stop = '\0';
        if (stop > p) {
            char *eq = memchr(p, '=', (size_t)(stop - p));
            char *val = eq ? eq + 1 : stop;
            size_t klen = (size_t)((eq ? eq : stop) - p), vlen = (size_t)(stop - val);
            p[klen] = '\0';
            size_t kl, vl;
            if (form_unescape(p, klen, &kl) < 0 || form_unescape(val, vlen, &vl) < 0) {
                snprintf(err, errsize, "bad percent-encoding in the request");
                goto error;
            }
            if (kl != strlen(p) || vl != strlen(val)) {
                snprintf(err, errsize, "NUL in a parameter");
                goto error;
            }
            json_t *k = json_string(p), *v = json_string(val);
            json_decref(k); /* jansson keys must be UTF-8 too */
            if (!k || !v) {
                json_decref(v);
                snprintf(err, errsize, "a parameter is not UTF-8");
                goto error;
            }
            int rc = kl ? form_set(root, p, v, &slots, err, errsize) : 0;
            json_decref(v);
            if (rc < 0)
                goto error;
        }
        p = stop + 1;
    }
    free(copy);
    compact(root);
    return root;
error:
    free(copy);
    json_decref(root);
    return NULL;
}

/*=== Answers ===*/

int mw_is_time_key(const char *k)
{
    return strcmp(k, "Timestamp") == 0 || strcmp(k, "Timestamps") == 0 ||
           strcmp(k, "StateUpdatedTimestamp") == 0 ||
           strcmp(k, "AlarmConfigurationUpdatedTimestamp") == 0 ||
           strcmp(k, "StateTransitionedTimestamp") == 0;
}

static void xml_text(struct buf *b, const char *s)
{
    aws_xml_escape(b, s, strlen(s));
}

static void xml_time(struct buf *b, double secs)
{
    char t[32];
    format_iso8601_ms((int64_t)llround(secs * 1000.0), t);
    buf_puts(b, t);
}

static void xml_scalar(struct buf *b, json_t *v, int time)
{
    if (json_is_string(v))
        xml_text(b, json_string_value(v));
    else if (time && json_is_number(v))
        xml_time(b, json_number_value(v));
    else if (json_is_integer(v))
        buf_printf(b, "%lld", (long long)json_integer_value(v));
    else if (json_is_real(v))
        buf_printf(b, "%.17g", json_real_value(v));
    else if (json_is_true(v))
        buf_puts(b, "true");
    else if (json_is_false(v))
        buf_puts(b, "false");
}

static void xml_value(struct buf *b, const char *key, json_t *v);

static void xml_members(struct buf *b, json_t *obj)
{
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v) xml_value(b, k, v);
}

static void xml_value(struct buf *b, const char *key, json_t *v)
{
    buf_printf(b, "<%s>", key);
    if (json_is_array(v)) {
        size_t i;
        json_t *el;
        json_array_foreach(v, i, el)
        {
            buf_puts(b, "<member>");
            if (json_is_object(el))
                xml_members(b, el);
            else
                xml_scalar(b, el, mw_is_time_key(key));
            buf_puts(b, "</member>");
        }
    } else if (json_is_object(v) && strcmp(key, "ExtendedStatistics") == 0) {
        const char *k;
        json_t *el;
        json_object_foreach(v, k, el)
        {
            buf_puts(b, "<entry><key>");
            xml_text(b, k);
            buf_puts(b, "</key><value>");
            xml_scalar(b, el, 0);
            buf_puts(b, "</value></entry>");
        }
    } else if (json_is_object(v)) {
        xml_members(b, v);
    } else {
        xml_scalar(b, v, mw_is_time_key(key));
    }
    buf_printf(b, "</%s>", key);
}

void mw_reply(struct mw_call *c, json_t *out)
{
    char id[37];
    aws_request_id(c->req, id);
    if (c->proto == MW_CBOR) {
        struct buf b = BUF_INIT;
        if (!out)
            out = json_object();
        int rc = mw_cbor_encode(out, &b);
        json_decref(out);
        if (rc < 0) {
            buf_release(&b);
            mw_fail(c, 500, "InternalServiceError", "The answer could not be encoded.");
            return;
        }
        http_req_add_header(c->req, "smithy-protocol", "rpc-v2-cbor");
        size_t len;
        char *body = buf_detach(&b, &len);
        http_reply_take(c->req, 200, "application/cbor", body, len);
        return;
    }
    if (c->proto == MW_JSON) {
        if (!out)
            out = json_object();
        char *text = json_dumps(out, JSON_COMPACT);
        json_decref(out);
        http_reply_take(c->req, 200, "application/x-amz-json-1.0", text, text ? strlen(text) : 0);
        return;
    }
    struct buf b = BUF_INIT;
    buf_printf(&b, "<%sResponse xmlns=\"" XMLNS "\">", c->op);
    if (out) {
        buf_printf(&b, "<%sResult>", c->op);
        xml_members(&b, out);
        buf_printf(&b, "</%sResult>", c->op);
        json_decref(out);
    }
    buf_printf(&b, "<ResponseMetadata><RequestId>%s</RequestId></ResponseMetadata></%sResponse>",
               id, c->op);
    size_t len;
    char *text = buf_detach(&b, &len);
    http_reply_take(c->req, 200, "text/xml", text, len);
}

void mw_fail(struct mw_call *c, unsigned status, const char *code, const char *fmt, ...)
{
    char msg[1536];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    aws_error(c->req,
              c->proto == MW_QUERY  ? AWS_QUERY
              : c->proto == MW_JSON ? AWS_JSON_10
                                    : AWS_RPC_CBOR,
              status, code, "%s", msg);
}

/*=== Reading the input ===*/

int mw_missing(struct mw_call *c, const char *name)
{
    mw_fail(c, 400, "MissingParameter", "The parameter %s is required.", name);
    return -1;
}

int mw_str(struct mw_call *c, json_t *obj, const char *key, const char **out)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v))
        return 1;
    if (!json_is_string(v)) {
        mw_fail(c, 400, "InvalidParameterValue", "The parameter %s must be a string.", key);
        return -1;
    }
    *out = json_string_value(v);
    return 0;
}

int mw_num(struct mw_call *c, json_t *obj, const char *key, double *out)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v))
        return 1;
    if (json_is_number(v)) {
        *out = json_number_value(v);
        return 0;
    }
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        char *end;
        double d = strtod(s, &end);
        if (*s && !*end && isfinite(d)) {
            *out = d;
            return 0;
        }
    }
    mw_fail(c, 400, "InvalidParameterValue", "The parameter %s must be a number.", key);
    return -1;
}

int mw_int(struct mw_call *c, json_t *obj, const char *key, long min, long max, long *out)
{
    double d;
    int rc = mw_num(c, obj, key, &d);
    if (rc)
        return rc;
    if (d != floor(d) || d < (double)min || d > (double)max) {
        mw_fail(c, 400, "InvalidParameterValue",
                "The parameter %s must be a whole number from %ld to %ld.", key, min, max);
        return -1;
    }
    *out = (long)d;
    return 0;
}

int mw_bool(struct mw_call *c, json_t *obj, const char *key, int *out)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v))
        return 1;
    if (json_is_boolean(v)) {
        *out = json_is_true(v);
        return 0;
    }
    const char *s = json_string_value(v);
    if (s && (strcmp(s, "true") == 0 || strcmp(s, "false") == 0)) {
        *out = s[0] == 't';
        return 0;
    }
    mw_fail(c, 400, "InvalidParameterValue", "The parameter %s must be true or false.", key);
    return -1;
}

int mw_time(struct mw_call *c, json_t *obj, const char *key, int64_t *out_ms)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v))
        return 1;
    if (json_is_number(v)) {
        *out_ms = (int64_t)llround(json_number_value(v) * 1000.0);
        return 0;
    }
    if (json_is_string(v) && parse_timestamp_ms(json_string_value(v), out_ms) == 0)
        return 0;
    mw_fail(c, 400, "InvalidParameterValue", "The parameter %s must be a timestamp.", key);
    return -1;
}

json_t *mw_list(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return json_is_array(v) ? v : NULL; /* jansson treats NULL as an empty array */
}
