/*
 * cbor: CloudWatch's rpc-v2-cbor protocol (Smithy RPC v2 CBOR, what newer
 * SDKs pick) in terms of the JSON documents the operations use. Decoding
 * drives libcbor's streaming decoder and builds the jansson document itself,
 * so a declared length never allocates anything (a 9-byte item may claim
 * 2^60 elements): containers grow only with the items actually present,
 * depth and item count are capped, map keys must be text, tags are dropped
 * (tag 1, a timestamp, leaves its epoch seconds, which the operations read
 * as a timestamp), byte strings become base64 text. Encoding writes
 * timestamps (the keys wire.c knows) as tag 1 + a double. A parser of
 * untrusted input: tests/fuzz/fuzz_cbor.c.
 */
#include <cbor.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "services/metrics/metrics_internal.h"

#define CBOR_MAX_DEPTH 32
#define CBOR_MAX_ITEMS 200000

/*=== Decoding ===*/

struct frame {
    json_t *c;        /* object or array */
    size_t remaining; /* items (arrays) or pairs (maps) left; SIZE_MAX: indefinite */
    char *key;        /* maps: the key waiting for its value */
};

struct dec {
    json_t *root;
    struct frame stack[CBOR_MAX_DEPTH];
    int depth;
    size_t items;
    int in_string; /* inside an indefinite-length string: 1 text, 2 bytes */
    struct buf str;
    const char *err;
};

static void fail(struct dec *d, const char *why)
{
    if (!d->err)
        d->err = why;
}

/* Closes the definite containers that are complete. */
static void settle(struct dec *d)
{
    while (d->depth > 0 && d->stack[d->depth - 1].remaining == 0) {
        d->depth--;
        free(d->stack[d->depth].key);
        d->stack[d->depth].key = NULL;
    }
}

/* Places v (taken) where the document expects the next item. */
static void put(struct dec *d, json_t *v)
{
    if (d->err || !v) {
        json_decref(v);
        fail(d, "out of memory");
        return;
    }
    if (++d->items > CBOR_MAX_ITEMS) {
        json_decref(v);
        fail(d, "too many items");
        return;
    }
    if (d->depth == 0) {
        if (d->root) {
            json_decref(v);
            fail(d, "data after the document");
            return;
        }
        d->root = v;
        return;
    }
    struct frame *f = &d->stack[d->depth - 1];
    if (json_is_object(f->c)) {
        if (!f->key) {
            if (!json_is_string(v)) {
                json_decref(v);
                fail(d, "a map key is not text");
                return;
            }
            f->key = strdup(json_string_value(v));
            json_decref(v);
            if (!f->key)
                fail(d, "out of memory");
            return;
        }
        int rc = json_object_set_new(f->c, f->key, v);
        free(f->key);
        f->key = NULL;
        if (rc < 0) {
            fail(d, "bad map key");
            return;
        }
    } else if (json_array_append_new(f->c, v) < 0) {
        fail(d, "out of memory");
        return;
    }
    if (f->remaining != SIZE_MAX)
        f->remaining--;
}

static void open_container(struct dec *d, json_t *c, size_t n)
{
    json_incref(c);
    put(d, c);
    if (d->err) {
        json_decref(c);
        return;
    }
    if (d->depth == CBOR_MAX_DEPTH) {
        json_decref(c);
        fail(d, "nested too deep");
        return;
    }
    d->stack[d->depth++] = (struct frame){c, n, NULL};
    json_decref(c); /* the parent (or root) holds it */
}

static void after_value(struct dec *d)
{
    settle(d);
}

#define D ((struct dec *)ctx)

static void on_uint8(void *ctx, uint8_t v)
{
    put(D, json_integer(v));
}
static void on_uint16(void *ctx, uint16_t v)
{
    put(D, json_integer(v));
}
static void on_uint32(void *ctx, uint32_t v)
{
    put(D, json_integer(v));
}
static void on_uint64(void *ctx, uint64_t v)
{
    put(D, v > INT64_MAX ? json_real((double)v) : json_integer((json_int_t)v));
}
static void on_negint8(void *ctx, uint8_t v)
{
    put(D, json_integer(-1 - (json_int_t)v));
}
static void on_negint16(void *ctx, uint16_t v)
{
    put(D, json_integer(-1 - (json_int_t)v));
}
static void on_negint32(void *ctx, uint32_t v)
{
    put(D, json_integer(-1 - (json_int_t)v));
}
static void on_negint64(void *ctx, uint64_t v)
{
    put(D, v >= INT64_MAX ? json_real(-1.0 - (double)v) : json_integer(-1 - (json_int_t)v));
}

static void on_string(void *ctx, cbor_data data, size_t len)
{
    if (D->in_string == 1) {
        if (buf_append(&D->str, data, len) < 0)
            fail(D, "out of memory");
        return;
    }
    if (D->in_string == 2) {
        fail(D, "text in a byte string");
        return;
    }
    json_t *s = json_stringn((const char *)data, len);
    if (!s) {
        fail(D, "text is not UTF-8");
        return;
    }
    put(D, s);
}

static void on_bytes(void *ctx, cbor_data data, size_t len)
{
    if (D->in_string == 2) {
        if (buf_append(&D->str, data, len) < 0)
            fail(D, "out of memory");
        return;
    }
    if (D->in_string == 1) {
        fail(D, "bytes in a text string");
        return;
    }
    struct buf b64 = BUF_INIT;
    base64_encode(&b64, data, len);
    put(D, json_string(b64.data ? b64.data : ""));
    buf_release(&b64);
}

static void on_string_start(void *ctx)
{
    if (D->in_string)
        fail(D, "nested indefinite string");
    D->in_string = 1;
    buf_reset(&D->str);
}

static void on_bytes_start(void *ctx)
{
    if (D->in_string)
        fail(D, "nested indefinite string");
    D->in_string = 2;
    buf_reset(&D->str);
}

static void on_array_start(void *ctx, size_t n)
{
    open_container(D, json_array(), n);
}
static void on_indef_array_start(void *ctx)
{
    open_container(D, json_array(), SIZE_MAX);
}
static void on_map_start(void *ctx, size_t n)
{
    open_container(D, json_object(), n);
}
static void on_indef_map_start(void *ctx)
{
    open_container(D, json_object(), SIZE_MAX);
}

static void on_tag(void *ctx, uint64_t tag)
{
    (void)ctx;
    (void)tag; /* tag 1 (epoch seconds) and others: the value stands for itself */
}

static void on_float(void *ctx, float v)
{
    put(D, json_real(v));
}
static void on_double(void *ctx, double v)
{
    put(D, json_real(v));
}
static void on_null(void *ctx)
{
    put(D, json_null());
}
static void on_bool(void *ctx, bool v)
{
    put(D, json_boolean(v));
}

static void on_break(void *ctx)
{
    if (D->in_string) {
        int text = D->in_string == 1;
        D->in_string = 0;
        if (text) {
            json_t *s = json_stringn(D->str.data ? D->str.data : "", D->str.len);
            if (!s)
                fail(D, "text is not UTF-8");
            else
                put(D, s);
        } else {
            struct buf b64 = BUF_INIT;
            base64_encode(&b64, D->str.data ? D->str.data : "", D->str.len);
            put(D, json_string(b64.data ? b64.data : ""));
            buf_release(&b64);
        }
        return;
    }
    if (D->depth == 0 || D->stack[D->depth - 1].remaining != SIZE_MAX) {
        fail(D, "unexpected break");
        return;
    }
    struct frame *f = &D->stack[D->depth - 1];
    if (f->key) {
        fail(D, "a map key without its value");
        return;
    }
    f->remaining = 0;
}

#undef D

json_t *mw_cbor_decode(const void *data, size_t len, char *err, size_t errsize)
{
    struct cbor_callbacks cb = cbor_empty_callbacks;
    cb.uint8 = on_uint8;
    cb.uint16 = on_uint16;
    cb.uint32 = on_uint32;
    cb.uint64 = on_uint64;
    cb.negint8 = on_negint8;
    cb.negint16 = on_negint16;
    cb.negint32 = on_negint32;
    cb.negint64 = on_negint64;
    cb.string = on_string;
    cb.string_start = on_string_start;
    cb.byte_string = on_bytes;
    cb.byte_string_start = on_bytes_start;
    cb.array_start = on_array_start;
    cb.indef_array_start = on_indef_array_start;
    cb.map_start = on_map_start;
    cb.indef_map_start = on_indef_map_start;
    cb.tag = on_tag;
    cb.float2 = on_float;
    cb.float4 = on_float;
    cb.float8 = on_double;
    cb.null = on_null;
    cb.undefined = on_null;
    cb.boolean = on_bool;
    cb.indef_break = on_break;
    struct dec d;
    memset(&d, 0, sizeof(d));
    size_t off = 0;
    while (off < len && !d.err) {
        struct cbor_decoder_result r =
            cbor_stream_decode((cbor_data)data + off, len - off, &cb, &d);
        if (r.status != CBOR_DECODER_FINISHED || r.read == 0) {
            fail(&d, r.status == CBOR_DECODER_NEDATA ? "truncated" : "malformed");
            break;
        }
        off += r.read;
        if (!d.in_string)
            after_value(&d);
    }
    if (!d.err && (d.depth > 0 || d.in_string))
        fail(&d, "truncated");
    if (!d.err && !d.root)
        d.root = json_object(); /* no body: no input members */
    if (!d.err && !json_is_object(d.root))
        fail(&d, "the input is not a map");
    for (int i = 0; i < d.depth; i++)
        free(d.stack[i].key);
    buf_release(&d.str);
    if (d.err) {
        snprintf(err, errsize, "%s", d.err);
        json_decref(d.root);
        return NULL;
    }
    return d.root;
}

/*=== Encoding ===*/

static int emit(struct buf *out, size_t (*enc)(uint64_t, unsigned char *, size_t), uint64_t v)
{
    unsigned char tmp[16];
    size_t n = enc(v, tmp, sizeof(tmp));
    return n ? buf_append(out, tmp, n) : -1;
}

static int emit_double(struct buf *out, double v)
{
    unsigned char tmp[16];
    size_t n = cbor_encode_double(v, tmp, sizeof(tmp));
    return n ? buf_append(out, tmp, n) : -1;
}

static int emit_text(struct buf *out, const char *s, size_t len)
{
    if (emit(out, cbor_encode_string_start, len) < 0)
        return -1;
    return buf_append(out, s, len);
}

static int encode(struct buf *out, json_t *v, int time)
{
    if (json_is_object(v)) {
        if (emit(out, cbor_encode_map_start, json_object_size(v)) < 0)
            return -1;
        const char *k;
        json_t *c;
        json_object_foreach(v, k, c)
        {
            if (emit_text(out, k, strlen(k)) < 0 || encode(out, c, mw_is_time_key(k)) < 0)
                return -1;
        }
        return 0;
    }
    if (json_is_array(v)) {
        if (emit(out, cbor_encode_array_start, json_array_size(v)) < 0)
            return -1;
        size_t i;
        json_t *c;
        json_array_foreach(v, i, c) if (encode(out, c, time) < 0) return -1;
        return 0;
    }
    if (time && json_is_number(v)) {
        if (emit(out, cbor_encode_tag, 1) < 0)
            return -1;
        return emit_double(out, json_number_value(v));
    }
    if (json_is_string(v))
        return emit_text(out, json_string_value(v), json_string_length(v));
    if (json_is_integer(v)) {
        json_int_t n = json_integer_value(v);
        return n >= 0 ? emit(out, cbor_encode_uint, (uint64_t)n)
                      : emit(out, cbor_encode_negint, (uint64_t)(-1 - n));
    }
    if (json_is_real(v))
        return emit_double(out, json_real_value(v));
    unsigned char tmp[4];
    size_t n = json_is_boolean(v) ? cbor_encode_bool(json_is_true(v), tmp, sizeof(tmp))
                                  : cbor_encode_null(tmp, sizeof(tmp));
    return n ? buf_append(out, tmp, n) : -1;
}

int mw_cbor_encode(json_t *doc, struct buf *out)
{
    return encode(out, doc, 0);
}
