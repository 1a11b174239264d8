/*
 * libFuzzer target for the aws-chunked decoder (services/s3/chunked.c). The
 * first byte sets the slice size the body is fed in; the rest is the body.
 * Besides memory safety it checks that the decoder's output does not depend
 * on the slicing: the same input fed whole gives the same data, chunk count
 * and outcome, and data never exceeds what the chunk headers announced.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "services/s3/s3_internal.h"

struct out {
    uint64_t announced, got;
    unsigned chunks;
    uint32_t sum; /* a cheap digest of the data */
};

static int on_chunk(void *arg, uint64_t size, const char *sig)
{
    struct out *o = arg;
    if (sig && strlen(sig) != 64)
        abort();
    o->announced += size;
    o->chunks++;
    return 0;
}

static int on_data(void *arg, const char *p, size_t n)
{
    struct out *o = arg;
    o->got += n;
    for (size_t i = 0; i < n; i++)
        o->sum = o->sum * 31 + (unsigned char)p[i];
    if (o->got > o->announced)
        abort();
    return 0;
}

static int on_trailer(void *arg, const char *name, const char *value)
{
    (void)arg;
    if (!*name || strchr(name, ':') || !value)
        abort();
    return 0;
}

static const struct s3_chunked_ops ops = {on_chunk, on_data, NULL, on_trailer};

static int run(const char *p, size_t n, size_t step, struct out *o)
{
    struct s3_chunked d;
    memset(o, 0, sizeof(*o));
    s3_chunked_init(&d, &ops, o);
    for (size_t off = 0; off < n; off += step) {
        size_t k = n - off < step ? n - off : step;
        if (s3_chunked_feed(&d, p + off, k) < 0)
            return -1;
    }
    return s3_chunked_done(&d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t step = data[0] ? data[0] : 1;
    struct out a, b;
    int ra = run((const char *)data + 1, size - 1, step, &a);
    int rb = run((const char *)data + 1, size - 1, size, &b);
    if (ra != rb || a.got != b.got || a.sum != b.sum || a.chunks != b.chunks)
        abort();
    return 0;
}
