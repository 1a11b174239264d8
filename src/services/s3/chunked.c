/*
 * chunked: an incremental decoder of S3's aws-chunked body framing
 * (STREAMING-AWS4-HMAC-SHA256-PAYLOAD and the unsigned trailer form):
 *   <hex size>[;chunk-signature=<64 hex>]\r\n <size bytes> \r\n ... 0[;...]\r\n
 *   [<trailer>:<value>\r\n ...] \r\n
 * Fed any slicing of the body; reports chunk headers, data, chunk ends and
 * trailers to callbacks. Owns the framing only: signatures and hashes are the
 * caller's (upload.c). Input is untrusted: lines are capped, sizes checked.
 */
#include <errno.h>
#include <string.h>

#include "core/util.h"
#include "services/s3/s3_internal.h"

enum { ST_SIZE, ST_DATA, ST_DATA_CR, ST_DATA_LF, ST_TRAILER, ST_DONE };

#define MAX_CHUNK (S3_MAX_OBJECT + 1)

void s3_chunked_init(struct s3_chunked *d, const struct s3_chunked_ops *ops, void *arg)
{
    memset(d, 0, sizeof(*d));
    d->ops = ops;
    d->arg = arg;
    d->state = ST_SIZE;
}

/* "<hex>[;chunk-signature=<sig>]" */
static int chunk_header(struct s3_chunked *d)
{
    const char *p = d->line;
    uint64_t size = 0;
    int ndigits = 0;
    for (; *p && *p != ';'; p++) {
        int v = hex_digit_value((unsigned char)*p);
        if (v < 0 || ++ndigits > 16)
            return -EINVAL;
        size = size * 16 + (uint64_t)v;
    }
    if (ndigits == 0 || size > MAX_CHUNK)
        return -EINVAL;
    const char *sig = NULL;
    if (*p == ';') {
        static const char ext[] = ";chunk-signature=";
        if (strncmp(p, ext, sizeof(ext) - 1) != 0)
            return -EINVAL;
        sig = p + sizeof(ext) - 1;
        if (strlen(sig) != 64)
            return -EINVAL;
        for (int i = 0; i < 64; i++)
            if (hex_digit_value((unsigned char)sig[i]) < 0)
                return -EINVAL;
    }
    d->remaining = size;
    d->last = size == 0;
    return d->ops->chunk ? d->ops->chunk(d->arg, size, sig) : 0;
}

static int trailer_line(struct s3_chunked *d)
{
    char *colon = strchr(d->line, ':');
    if (!colon || colon == d->line)
        return -EINVAL;
    *colon = '\0';
    const char *v = colon + 1;
    while (*v == ' ' || *v == '\t')
        v++;
    return d->ops->trailer ? d->ops->trailer(d->arg, d->line, v) : 0;
}

/* A line has ended (the CRLF consumed). */
static int line_done(struct s3_chunked *d)
{
    d->line[d->line_len] = '\0';
    d->line_len = 0;
    int rc;
    if (d->state == ST_SIZE) {
        if ((rc = chunk_header(d)) < 0)
            return rc;
        if (d->remaining > 0) {
            d->state = ST_DATA;
            return 0;
        }
        /* the last chunk: no data, then trailers or the final empty line */
        if (d->ops->chunk_end && (rc = d->ops->chunk_end(d->arg)) < 0)
            return rc;
        d->state = ST_TRAILER;
        return 0;
    }
    /* ST_TRAILER */
    if (d->line[0] == '\0') {
        d->state = ST_DONE;
        return 0;
    }
    return trailer_line(d);
}

int s3_chunked_feed(struct s3_chunked *d, const char *p, size_t n)
{
    size_t i = 0;
    int rc;
    while (i < n) {
        switch (d->state) {
        case ST_SIZE:
        case ST_TRAILER: {
            char c = p[i++];
            if (c == '\n') {
                if (d->line_len == 0 || d->line[d->line_len - 1] != '\r')
                    return -EINVAL;
                d->line_len--;
                if ((rc = line_done(d)) < 0)
                    return rc;
                break;
            }
            if (d->line_len + 2 >= sizeof(d->line) || c == '\0' ||
                (d->line_len > 0 && d->line[d->line_len - 1] == '\r'))
                return -EINVAL;
            d->line[d->line_len++] = c;
            break;
        }
        case ST_DATA: {
            size_t k = n - i;
            if (k > d->remaining)
                k = (size_t)d->remaining;
            if (d->ops->data && (rc = d->ops->data(d->arg, p + i, k)) < 0)
                return rc;
            i += k;
            d->remaining -= k;
            if (d->remaining == 0)
                d->state = ST_DATA_CR;
            break;
        }
        case ST_DATA_CR:
            if (p[i++] != '\r')
                return -EINVAL;
            d->state = ST_DATA_LF;
            break;
        case ST_DATA_LF:
            if (p[i++] != '\n')
                return -EINVAL;
            if (d->ops->chunk_end && (rc = d->ops->chunk_end(d->arg)) < 0)
                return rc;
            d->state = ST_SIZE;
            break;
        default: /* ST_DONE: nothing may follow */
            return -EINVAL;
        }
    }
    return 0;
}

int s3_chunked_done(const struct s3_chunked *d)
{
    return d->state == ST_DONE;
}
