/*
 * util: clocks, randomness, encodings and digests (see util.h). Stateless.
 */
#include "core/util.h"

#include <errno.h>
#include <unistd.h>
#include <math.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void getrandom_all(unsigned char *p, size_t n)
{
    while (n > 0) {
        ssize_t got = getrandom(p, n, 0);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            /* getrandom cannot fail on Linux >= 3.17 once the pool is ready */
            memset(p, 0, n);
            return;
        }
        p += got;
        n -= (size_t)got;
    }
}

/* Request ids, trace ids and stream names need a few random bytes per invoke:
 * serve them from a per-thread pool refilled 4 KB at a time, not a syscall
 * each. A forked child must not reuse the parent's pool: it never calls this
 * before exec. */
void random_bytes(void *out, size_t n)
{
    static __thread unsigned char pool[4096];
    static __thread size_t avail;
    unsigned char *dst = out;
    if (n > sizeof(pool) / 4) {
        getrandom_all(dst, n);
        return;
    }
    if (avail < n) {
        getrandom_all(pool, sizeof(pool));
        avail = sizeof(pool);
    }
    memcpy(dst, pool + sizeof(pool) - avail, n);
    memset(pool + sizeof(pool) - avail, 0, n); /* used bytes are not kept */
    avail -= n;
}

void uuid_v4(char out[37])
{
    unsigned char b[16];
    random_bytes(b, sizeof(b));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
             b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
}

void hex_encode(const unsigned char *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

int base64_encode(struct buf *out, const void *in, size_t n)
{
    size_t need = 4 * ((n + 2) / 3);
    int rc = buf_grow(out, need);
    if (rc)
        return rc;
    int w = EVP_EncodeBlock((unsigned char *)out->data + out->len, in, (int)n);
    out->len += (size_t)w;
    out->data[out->len] = '\0';
    return 0;
}

int base64_decode(struct buf *out, const char *in, size_t n)
{
    /* Strip whitespace the way AWS clients never send but humans might. */
    while (n > 0 && (in[n - 1] == '\n' || in[n - 1] == '\r' || in[n - 1] == ' '))
        n--;
    if (n % 4 != 0)
        return -EINVAL;
    if (n == 0)
        return 0;
    /* '=' only as the last one or two characters */
    size_t pad = in[n - 1] == '=' ? (in[n - 2] == '=' ? 2 : 1) : 0;
    if (memchr(in, '=', n - pad))
        return -EINVAL;
    size_t need = 3 * (n / 4) - pad;
    /* EVP writes whole 3-byte groups, padding included: when only the cap
     * keeps that slack out, decode into scratch memory and copy. */
    unsigned char *dst, *scratch = NULL;
    int rc = buf_grow(out, 3 * (n / 4));
    if (rc == -EMSGSIZE) {
        rc = buf_grow(out, need);
        if (rc)
            return rc;
        scratch = malloc(3 * (n / 4) + 1);
        if (!scratch)
            return -ENOMEM;
        dst = scratch;
    } else if (rc) {
        return rc;
    } else {
        dst = (unsigned char *)out->data + out->len;
    }
    int w = EVP_DecodeBlock(dst, (const unsigned char *)in, (int)n);
    if (w < 0) {
        free(scratch);
        if (out->data)
            out->data[out->len] = '\0';
        return -EINVAL;
    }
    if (scratch) {
        memcpy(out->data + out->len, scratch, need);
        free(scratch);
    }
    out->len += need;
    out->data[out->len] = '\0';
    return 0;
}

void sha256(const void *in, size_t n, unsigned char out[32])
{
    SHA256(in, n, out);
}

void sha256_hex(const void *in, size_t n, char out[65])
{
    unsigned char md[32];
    SHA256(in, n, md);
    hex_encode(md, 32, out);
}

int hex_digit_value(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

long percent_decode(char *s, size_t n)
{
    size_t r = 0, w = 0;
    while (r < n) {
        if (s[r] == '%') {
            if (r + 2 >= n)
                return -EINVAL;
            int hi = hex_digit_value((unsigned char)s[r + 1]),
                lo = hex_digit_value((unsigned char)s[r + 2]);
            if (hi < 0 || lo < 0)
                return -EINVAL;
            s[w++] = (char)(hi * 16 + lo);
            r += 3;
        } else {
            s[w++] = s[r++];
        }
    }
    if (w < n)
        s[w] = '\0';
    return (long)w;
}

static void split_ms(int64_t ms, time_t *secs, int *millis)
{
    int64_t s = ms / 1000, m = ms % 1000;
    if (m < 0) {
        m += 1000;
        s -= 1;
    }
    *secs = (time_t)s;
    *millis = (int)m;
}

static void format_ms(int64_t ms, const char *zone, char out[32])
{
    time_t secs;
    int millis;
    split_ms(ms, &secs, &millis);
    struct tm tm;
    gmtime_r(&secs, &tm);
    char base[20];
    strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, 32, "%s.%03d%s", base, millis, zone);
}

void format_lambda_time(int64_t ms, char out[32])
{
    format_ms(ms, "+0000", out);
}

void format_iso8601_ms(int64_t ms, char out[32])
{
    format_ms(ms, "Z", out);
}

int parse_timestamp_ms(const char *s, int64_t *out_ms)
{
    char *end;
    double d = strtod(s, &end);
    if (*s && !*end && strchr(s, '-') == NULL) { /* epoch seconds */
        if (!isfinite(d) || fabs(d) > 1e12)
            return -EINVAL;
        *out_ms = (int64_t)floor(d * 1000.0 + 0.5);
        return 0;
    }
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!p) {
        memset(&tm, 0, sizeof(tm));
        p = strptime(s, "%Y-%m-%d", &tm);
        if (!p)
            return -EINVAL;
    }
    int64_t ms = 0;
    if (*p == '.') {
        int64_t scale = 100;
        for (p++; *p >= '0' && *p <= '9'; p++, scale /= 10)
            ms += scale > 0 ? (*p - '0') * scale : 0;
    }
    int64_t offset = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p == '-' ? -1 : 1;
        const char *d = p + 1;
        int colon = d[0] && d[1] && d[2] == ':';
        const char *mm = d + 2 + colon;
        for (int i = 0; i < 2; i++)
            if (d[i] < '0' || d[i] > '9')
                return -EINVAL;
        for (int i = 0; i < 2; i++)
            if (mm[i] < '0' || mm[i] > '9')
                return -EINVAL;
        offset = sign * (((d[0] - '0') * 10 + (d[1] - '0')) * 3600 +
                         ((mm[0] - '0') * 10 + (mm[1] - '0')) * 60);
        p = mm + 2;
    }
    if (*p)
        return -EINVAL;
    *out_ms = ((int64_t)timegm(&tm) - offset) * 1000 + ms;
    return 0;
}

int str_has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

int str_has_suffix(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && memcmp(s + a - b, suffix, b) == 0;
}

int write_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}
