/*
 * sigv4: AWS Signature Version 4, header form, both sides (see sigv4.h). This
 * file owns the Authorization header parser, the canonical request (path
 * normalisation and second encoding for non-S3 services exactly as botocore
 * does it, query re-encoding and sorting, header trimming and joining), the
 * X-Amz-Date / Date parsing, the signing-key chain and the constant-time
 * comparison. It runs on every request of the warm invoke path, so the
 * canonical request is never materialised: it is streamed into SHA-256
 * through a fixed stack buffer; derived signing keys are kept in a tiny
 * per-thread cache (they only change with the day, region, service or
 * secret); OpenSSL's algorithms are fetched once per process and its
 * contexts made once per thread. Nothing is allocated per request except
 * scratch for unusually long paths or query strings.
 */
#include "edge/sigv4.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "core/util.h"

#define ALGORITHM "AWS4-HMAC-SHA256"
#define ALGORITHM_LEN (sizeof(ALGORITHM) - 1)
#define SCOPE_TERMINATOR "aws4_request"
#define MAX_QUERY_PAIRS 1000
#define MAX_SKEW_MS (15 * 60 * 1000LL)
#define MAX_SECRET 256
#define AMZ_DATE_LEN 16 /* YYYYMMDDTHHMMSSZ */

/*
 * ---- OpenSSL objects ----
 * The algorithms are fetched once per process (an implicit fetch costs
 * ~0.3 µs). Contexts are made once per thread and freed by a thread-specific
 * destructor: setting up an HMAC context (which fetches its digest by name)
 * costs more than the HMAC itself. If the key cannot be created, each call
 * makes and frees its own contexts.
 */

static EVP_MD *g_sha256;
static EVP_MAC *g_hmac;
static pthread_key_t g_ctx_key;
static bool g_ctx_key_ok;
static pthread_once_t g_crypto_once = PTHREAD_ONCE_INIT;

struct crypto_ctx {
    EVP_MD_CTX *md;
    EVP_MAC_CTX *mac;
};

static __thread struct crypto_ctx *t_ctx;

static void crypto_ctx_free(void *p)
{
    struct crypto_ctx *c = p;
    if (!c)
        return;
    EVP_MD_CTX_free(c->md);
    EVP_MAC_CTX_free(c->mac);
    free(c);
}

static void crypto_init(void)
{
    g_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    g_hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    g_ctx_key_ok = pthread_key_create(&g_ctx_key, crypto_ctx_free) == 0;
}

static struct crypto_ctx *crypto_ctx_new(void)
{
    struct crypto_ctx *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_end(),
    };
    c->md = EVP_MD_CTX_new();
    c->mac = EVP_MAC_CTX_new(g_hmac);
    if (!c->md || !c->mac || EVP_MAC_CTX_set_params(c->mac, params) != 1) {
        crypto_ctx_free(c);
        return NULL;
    }
    return c;
}

/* This thread's contexts; *owned is set when the caller must free them. */
static struct crypto_ctx *crypto_ctx_get(bool *owned)
{
    *owned = false;
    if (t_ctx)
        return t_ctx;
    struct crypto_ctx *c = crypto_ctx_new();
    if (c && g_ctx_key_ok && pthread_setspecific(g_ctx_key, c) == 0)
        return t_ctx = c;
    *owned = c != NULL;
    return c;
}

static int hmac_sha256(EVP_MAC_CTX *ctx, const void *key, size_t klen, const void *msg, size_t mlen,
                       unsigned char out[32])
{
    size_t outl = 0;
    if (EVP_MAC_init(ctx, key, klen, NULL) != 1 || EVP_MAC_update(ctx, msg, mlen) != 1 ||
        EVP_MAC_final(ctx, out, &outl, 32) != 1 || outl != 32)
        return -EIO;
    return 0;
}

/* ---- character classes ---- */

static inline bool is_sp(char c)
{
    return c == ' ' || c == '\t';
}

/* What Python's str.split() treats as whitespace within ASCII (botocore's Trimall). */
static inline bool is_trim_ws(char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f);
}

static inline bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static inline bool is_unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.' || c == '~';
}

/* RFC 9110 token characters: what a header name may contain. */
static inline bool is_tchar(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || is_digit(c) ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static inline char lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c + ('a' - 'A')) : c;
}

static const char HEX_UPPER[] = "0123456789ABCDEF";

/* Case-insensitive (ASCII only, locale independent) match of a NUL-terminated
 * name against name2[0..len). */
static bool name_eq(const char *name, const char *name2, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (name[i] == '\0' || lower(name[i]) != lower(name2[i]))
            return false;
    return name[len] == '\0';
}

/* Number of headers called name (lower case) in req; *value gets the first. */
static size_t find_header(const struct sigv4_request *req, const char *name, const char **value)
{
    size_t n = 0, len = strlen(name);
    *value = NULL;
    for (size_t i = 0; i < req->nheaders; i++) {
        const struct sigv4_kv *h = &req->headers[i];
        if (h->name && name_eq(h->name, name, len)) {
            if (n++ == 0)
                *value = h->value ? h->value : "";
        }
    }
    return n;
}

/* A ';'-joined list of non-empty header names. */
static bool valid_signed_headers(const char *s, size_t len)
{
    if (len == 0)
        return false;
    size_t seg = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == ';') {
            if (seg == 0)
                return false;
            seg = 0;
        } else if (is_tchar(s[i])) {
            seg++;
        } else {
            return false;
        }
    }
    return seg > 0;
}

/* ---- dates ---- */

/* Days since 1970-01-01 of a proleptic Gregorian date (Hinnant's algorithm), y >= 0. */
static int64_t days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    int era = y / 400;
    int yoe = y - era * 400;
    int mp = m > 2 ? m - 3 : m + 9;
    int doy = (153 * mp + 2) / 5 + d - 1;
    int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return (int64_t)era * 146097 + doe - 719468;
}

static bool valid_datetime(int y, int mo, int d, int h, int mi, int s)
{
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (y < 1970 || y > 9999 || mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || s > 59)
        return false;
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return d <= mdays[mo - 1] + (mo == 2 && leap);
}

static int digits(const char *p, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!is_digit(p[i]))
            return -1;
        v = v * 10 + (p[i] - '0');
    }
    return v;
}

/* Strict basic ISO 8601, "20150830T123600Z". */
static int parse_amz_date(const char *s, int64_t *epoch)
{
    if (strlen(s) != AMZ_DATE_LEN || s[8] != 'T' || s[15] != 'Z')
        return -EINVAL;
    int y = digits(s, 4), mo = digits(s + 4, 2), d = digits(s + 6, 2);
    int h = digits(s + 9, 2), mi = digits(s + 11, 2), sec = digits(s + 13, 2);
    if (y < 0 || mo < 0 || d < 0 || h < 0 || mi < 0 || sec < 0 ||
        !valid_datetime(y, mo, d, h, mi, sec))
        return -EINVAL;
    *epoch = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec;
    return 0;
}

/*
 * RFC 1123 / RFC 5322 date as sent in a Date header: "Sun, 30 Aug 2015
 * 12:36:00 GMT". The weekday is optional and not checked; the zone may be
 * GMT, UT, UTC, Z or a numeric offset (botocore sends "-0000").
 */
static int parse_http_date(const char *s, int64_t *epoch)
{
    static const char months[] = "janfebmaraprmayjunjulaugsepoctnovdec";
    const char *p = s;
    while (is_sp(*p))
        p++;
    if (!is_digit(*p)) {
        for (int i = 0; i < 3; i++, p++)
            if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z')))
                return -EINVAL;
        if (*p++ != ',')
            return -EINVAL;
        while (is_sp(*p))
            p++;
    }
    int d = 0, nd = 0;
    while (is_digit(*p) && nd < 2)
        d = d * 10 + (*p++ - '0'), nd++;
    if (nd == 0 || !is_sp(*p))
        return -EINVAL;
    while (is_sp(*p))
        p++;
    int mo = 0;
    for (int i = 0; i < 12; i++) {
        if (lower(p[0]) == months[3 * i] && lower(p[1]) == months[3 * i + 1] &&
            lower(p[2]) == months[3 * i + 2]) {
            mo = i + 1;
            break;
        }
    }
    if (mo == 0 || !is_sp(p[3]))
        return -EINVAL;
    p += 3;
    while (is_sp(*p))
        p++;
    int y = digits(p, 4);
    if (y < 0 || !is_sp(p[4]))
        return -EINVAL;
    p += 4;
    while (is_sp(*p))
        p++;
    int h = digits(p, 2);
    if (h < 0 || p[2] != ':')
        return -EINVAL;
    int mi = digits(p + 3, 2);
    if (mi < 0 || p[5] != ':')
        return -EINVAL;
    int sec = digits(p + 6, 2);
    if (sec < 0 || !is_sp(p[8]))
        return -EINVAL;
    p += 8;
    while (is_sp(*p))
        p++;
    int off = 0; /* seconds east of UTC */
    if (strncmp(p, "GMT", 3) == 0 || strncmp(p, "UTC", 3) == 0) {
        p += 3;
    } else if (strncmp(p, "UT", 2) == 0) {
        p += 2;
    } else if (*p == 'Z') {
        p += 1;
    } else if (*p == '+' || *p == '-') {
        int oh = digits(p + 1, 2);
        int om = oh < 0 ? -1 : digits(p + 3, 2);
        if (oh < 0 || om < 0 || oh > 23 || om > 59)
            return -EINVAL;
        off = (oh * 3600 + om * 60) * (*p == '-' ? -1 : 1);
        p += 5;
    } else {
        return -EINVAL;
    }
    while (is_sp(*p))
        p++;
    if (*p != '\0' || !valid_datetime(y, mo, d, h, mi, sec))
        return -EINVAL;
    *epoch = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - off;
    return 0;
}

static void put2(char *p, int v)
{
    p[0] = (char)('0' + v / 10);
    p[1] = (char)('0' + v % 10);
}

static int format_amz_date(int64_t epoch, char out[AMZ_DATE_LEN + 1])
{
    time_t t = (time_t)epoch;
    struct tm tm;
    if (!gmtime_r(&t, &tm) || tm.tm_year + 1900 < 1970 || tm.tm_year + 1900 > 9999)
        return -EINVAL;
    int y = tm.tm_year + 1900;
    put2(out, y / 100);
    put2(out + 2, y % 100);
    put2(out + 4, tm.tm_mon + 1);
    put2(out + 6, tm.tm_mday);
    out[8] = 'T';
    put2(out + 9, tm.tm_hour);
    put2(out + 11, tm.tm_min);
    put2(out + 13, tm.tm_sec);
    out[15] = 'Z';
    out[16] = '\0';
    return 0;
}

/* ---- Authorization header ---- */

static int copy_field(char *dst, size_t size, const char *src, size_t len)
{
    if (len == 0 || len >= size)
        return -EINVAL;
    memcpy(dst, src, len);
    dst[len] = '\0';
    return 0;
}

/* "AKID/20150830/us-east-1/service/aws4_request" */
static int parse_credential(const char *v, size_t len, struct sigv4_credential *out)
{
    const char *part[5];
    size_t plen[5];
    size_t n = 0, start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || v[i] == '/') {
            if (n == 5)
                return -EINVAL;
            part[n] = v + start;
            plen[n++] = i - start;
            start = i + 1;
        }
    }
    if (n != 5 || plen[4] != sizeof(SCOPE_TERMINATOR) - 1 ||
        memcmp(part[4], SCOPE_TERMINATOR, plen[4]) != 0)
        return -EINVAL;
    if (plen[1] != 8 || digits(part[1], 8) < 0)
        return -EINVAL;
    if (copy_field(out->access_key, sizeof(out->access_key), part[0], plen[0]) ||
        copy_field(out->date, sizeof(out->date), part[1], plen[1]) ||
        copy_field(out->region, sizeof(out->region), part[2], plen[2]) ||
        copy_field(out->service, sizeof(out->service), part[3], plen[3]))
        return -EINVAL;
    return 0;
}

static int parse_signed_headers(const char *v, size_t len, struct sigv4_credential *out)
{
    if (len >= sizeof(out->signed_headers) || !valid_signed_headers(v, len))
        return -EINVAL;
    for (size_t i = 0; i < len; i++)
        out->signed_headers[i] = lower(v[i]);
    out->signed_headers[len] = '\0';
    return 0;
}

static int parse_signature(const char *v, size_t len, struct sigv4_credential *out)
{
    if (len != 64)
        return -EINVAL;
    for (size_t i = 0; i < len; i++) {
        if (hex_digit_value((unsigned char)v[i]) < 0)
            return -EINVAL;
        out->signature[i] = lower(v[i]);
    }
    out->signature[len] = '\0';
    return 0;
}

/*
 * Accepts the components in any order, each exactly once, separated by a
 * comma and/or blanks ("a, b", "a,b", "a ,b", "a b"); rejects anything else.
 */
int sigv4_parse_authorization(const char *value, struct sigv4_credential *out)
{
    if (!out)
        return -EINVAL;
    memset(out, 0, sizeof(*out));
    if (!value)
        return -EINVAL;
    const char *p = value;
    while (is_sp(*p))
        p++;
    if (strncmp(p, ALGORITHM, ALGORITHM_LEN) != 0 || !is_sp(p[ALGORITHM_LEN]))
        return -EINVAL;
    p += ALGORITHM_LEN;

    enum { HAVE_CRED = 1, HAVE_SIGNED = 2, HAVE_SIG = 4 };
    unsigned have = 0;
    for (;;) {
        bool comma = false;
        while (is_sp(*p))
            p++;
        if (have && *p == ',') {
            comma = true;
            p++;
            while (is_sp(*p))
                p++;
        }
        if (*p == '\0') {
            if (comma)
                return -EINVAL;
            break;
        }
        const char *key = p;
        while (*p != '\0' && *p != '=' && *p != ',' && !is_sp(*p))
            p++;
        if (*p != '=')
            return -EINVAL;
        size_t klen = (size_t)(p - key);
        const char *v = ++p;
        while (*p != '\0' && *p != ',' && !is_sp(*p)) {
            if ((unsigned char)*p < 0x21 || (unsigned char)*p > 0x7e)
                return -EINVAL;
            p++;
        }
        size_t vlen = (size_t)(p - v);

        unsigned bit;
        int rc;
        if (klen == 10 && memcmp(key, "Credential", 10) == 0) {
            bit = HAVE_CRED;
            rc = (have & bit) ? -EINVAL : parse_credential(v, vlen, out);
        } else if (klen == 13 && memcmp(key, "SignedHeaders", 13) == 0) {
            bit = HAVE_SIGNED;
            rc = (have & bit) ? -EINVAL : parse_signed_headers(v, vlen, out);
        } else if (klen == 9 && memcmp(key, "Signature", 9) == 0) {
            bit = HAVE_SIG;
            rc = (have & bit) ? -EINVAL : parse_signature(v, vlen, out);
        } else {
            return -EINVAL;
        }
        if (rc)
            return rc;
        have |= bit;
    }
    if (have != (HAVE_CRED | HAVE_SIGNED | HAVE_SIG))
        return -EINVAL;
    return 0;
}

/* ---- canonical request, streamed into SHA-256 ---- */

struct sink {
    EVP_MD_CTX *md;
    struct buf *copy; /* optional: the caller wants the canonical request */
    int err;
    size_t len;
    char data[2048];
};

static void sink_flush(struct sink *s)
{
    if (s->len == 0)
        return;
    if (!s->err && EVP_DigestUpdate(s->md, s->data, s->len) != 1)
        s->err = -EIO;
    if (!s->err && s->copy) {
        int rc = buf_append(s->copy, s->data, s->len);
        if (rc)
            s->err = rc;
    }
    s->len = 0;
}

static inline void sink_putc(struct sink *s, char c)
{
    if (s->len == sizeof(s->data))
        sink_flush(s);
    s->data[s->len++] = c;
}

static void sink_put(struct sink *s, const char *p, size_t n)
{
    while (n > 0) {
        if (s->len == sizeof(s->data))
            sink_flush(s);
        size_t k = sizeof(s->data) - s->len;
        if (k > n)
            k = n;
        memcpy(s->data + s->len, p, k);
        s->len += k;
        p += k;
        n -= k;
    }
}

static void sink_puts(struct sink *s, const char *str)
{
    sink_put(s, str, strlen(str));
}

static void sink_put_lower(struct sink *s, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        sink_putc(s, lower(p[i]));
}

/* SigV4 URI encoding: unreserved bytes as they are, '/' too if keep_slash, else %XX. */
static void sink_put_encoded(struct sink *s, const char *p, size_t n, bool keep_slash)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (is_unreserved(c) || (keep_slash && c == '/')) {
            sink_putc(s, (char)c);
        } else {
            sink_putc(s, '%');
            sink_putc(s, HEX_UPPER[c >> 4]);
            sink_putc(s, HEX_UPPER[c & 15]);
        }
    }
}

/*
 * Canonical URI. S3: the path exactly as sent. Everything else, as botocore's
 * SigV4Auth._normalize_url_path: remove empty and '.' segments, resolve '..'
 * (RFC 3986 5.2.4, on the raw segments), keep a leading and trailing '/', then
 * URI-encode the result again with '/' kept ("%3A" becomes "%253A"). The
 * segments are walked backwards so that each '..' cancels the nearest
 * surviving segment before it, in one pass and without a segment limit.
 */
static int put_path(struct sink *s, const char *path, bool s3)
{
    size_t n = path ? strlen(path) : 0;
    if (n == 0) {
        sink_putc(s, '/');
        return 0;
    }
    if (s3) {
        sink_put(s, path, n);
        return 0;
    }
    char stack[512];
    char *tmp = n <= sizeof(stack) ? stack : malloc(n);
    if (!tmp)
        return -ENOMEM;
    /* Kept segments and the '/' between them never exceed n bytes. */
    size_t w = n, end = n, kept = 0, pending_up = 0;
    for (;;) {
        size_t start = end;
        while (start > 0 && path[start - 1] != '/')
            start--;
        const char *seg = path + start;
        size_t len = end - start;
        if (len == 0 || (len == 1 && seg[0] == '.')) {
            /* dropped */
        } else if (len == 2 && seg[0] == '.' && seg[1] == '.') {
            pending_up++;
        } else if (pending_up > 0) {
            pending_up--;
        } else {
            if (kept++)
                tmp[--w] = '/';
            w -= len;
            memcpy(tmp + w, seg, len);
        }
        if (start == 0)
            break;
        end = start - 1;
    }
    if (path[0] == '/')
        sink_putc(s, '/');
    sink_put_encoded(s, tmp + w, n - w, true);
    if (kept > 0 && path[n - 1] == '/')
        sink_putc(s, '/');
    if (tmp != stack)
        free(tmp);
    return 0;
}

struct qpair {
    const char *name, *value;
    size_t nlen, vlen;
};

static int qpair_cmp(const void *a, const void *b)
{
    const struct qpair *x = a, *y = b;
    size_t n = x->nlen < y->nlen ? x->nlen : y->nlen;
    int c = memcmp(x->name, y->name, n);
    if (c || x->nlen != y->nlen)
        return c ? c : (x->nlen < y->nlen ? -1 : 1);
    n = x->vlen < y->vlen ? x->vlen : y->vlen;
    c = memcmp(x->value, y->value, n);
    if (c || x->vlen != y->vlen)
        return c ? c : (x->vlen < y->vlen ? -1 : 1);
    return 0;
}

/* Percent-decodes in[0..n) and re-encodes it with SigV4's rules into out (3n bytes). */
static long requote(const char *in, size_t n, char *out)
{
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c == '%') {
            int hi = i + 2 < n ? hex_digit_value((unsigned char)in[i + 1]) : -1;
            int lo = i + 2 < n ? hex_digit_value((unsigned char)in[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                return -EINVAL;
            c = (unsigned char)(hi * 16 + lo);
            i += 2;
        }
        if (is_unreserved(c)) {
            out[w++] = (char)c;
        } else {
            out[w++] = '%';
            out[w++] = HEX_UPPER[c >> 4];
            out[w++] = HEX_UPPER[c & 15];
        }
    }
    return (long)w;
}

/*
 * Canonical query string: every pair decoded and re-encoded, sorted by
 * encoded name then encoded value, "name=value" joined with '&'.
 */
static int put_query(struct sink *s, const struct sigv4_request *req)
{
    size_t n = req->nquery;
    if (n == 0)
        return 0;
    if (n > MAX_QUERY_PAIRS || !req->query)
        return -EINVAL;
    size_t need = 0;
    for (size_t i = 0; i < n; i++) {
        const struct sigv4_kv *q = &req->query[i];
        if (!q->name)
            return -EINVAL;
        size_t len = strlen(q->name) + (q->value ? strlen(q->value) : 0);
        if (len > (SIZE_MAX / 3 - need) / 3)
            return -EINVAL;
        need += 3 * len;
    }

    char text_stack[1024];
    struct qpair pairs_stack[16];
    char *text = need <= sizeof(text_stack) ? text_stack : malloc(need);
    struct qpair *pairs = n <= 16 ? pairs_stack : malloc(n * sizeof(*pairs));
    int rc = 0;
    if (!text || !pairs) {
        rc = -ENOMEM;
        goto out;
    }
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        const struct sigv4_kv *q = &req->query[i];
        long len = requote(q->name, strlen(q->name), text + w);
        if (len < 0) {
            rc = -EINVAL;
            goto out;
        }
        pairs[i].name = text + w;
        pairs[i].nlen = (size_t)len;
        w += (size_t)len;
        len = q->value ? requote(q->value, strlen(q->value), text + w) : 0;
        if (len < 0) {
            rc = -EINVAL;
            goto out;
        }
        pairs[i].value = text + w;
        pairs[i].vlen = (size_t)len;
        w += (size_t)len;
    }
    if (n > 1)
        qsort(pairs, n, sizeof(*pairs), qpair_cmp);
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            sink_putc(s, '&');
        sink_put(s, pairs[i].name, pairs[i].nlen);
        sink_putc(s, '=');
        sink_put(s, pairs[i].value, pairs[i].vlen);
    }
out:
    if (text && text != text_stack)
        free(text);
    if (pairs && pairs != pairs_stack)
        free(pairs);
    return rc;
}

/* Trimall: no leading or trailing blanks, inner runs of blanks become one space. */
static void put_trimmed(struct sink *s, const char *v)
{
    bool any = false, gap = false;
    for (; *v; v++) {
        if (is_trim_ws(*v)) {
            gap = any;
            continue;
        }
        if (gap)
            sink_putc(s, ' ');
        gap = false;
        any = true;
        sink_putc(s, *v);
    }
}

/* "name:v1,v2\n" for each signed header, in the order signed_headers lists them. */
static int put_headers(struct sink *s, const struct sigv4_request *req, const char *signed_headers)
{
    const char *p = signed_headers;
    for (;;) {
        const char *e = strchr(p, ';');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        sink_put_lower(s, p, len);
        sink_putc(s, ':');
        size_t found = 0;
        for (size_t i = 0; i < req->nheaders; i++) {
            const struct sigv4_kv *h = &req->headers[i];
            if (!h->name || !name_eq(h->name, p, len))
                continue;
            if (found++)
                sink_putc(s, ',');
            put_trimmed(s, h->value ? h->value : "");
        }
        if (found == 0)
            return -EINVAL;
        sink_putc(s, '\n');
        if (!e)
            return 0;
        p = e + 1;
    }
}

/* ---- signing key, with a small per-thread cache ---- */

struct key_cache_entry {
    bool used;
    char date[9];
    char region[sizeof(((struct sigv4_credential *)0)->region)];
    char service[sizeof(((struct sigv4_credential *)0)->service)];
    char secret[MAX_SECRET + 1];
    unsigned char key[32];
};

#define KEY_CACHE_SIZE 4
static __thread struct key_cache_entry key_cache[KEY_CACHE_SIZE];
static __thread unsigned key_cache_next;

static int signing_key(EVP_MAC_CTX *ctx, const char *secret, size_t secret_len, const char *date,
                       const char *region, const char *service, unsigned char out[32])
{
    for (int i = 0; i < KEY_CACHE_SIZE; i++) {
        const struct key_cache_entry *e = &key_cache[i];
        if (e->used && memcmp(e->date, date, 8) == 0 && strcmp(e->region, region) == 0 &&
            strcmp(e->service, service) == 0 && strcmp(e->secret, secret) == 0) {
            memcpy(out, e->key, 32);
            return 0;
        }
    }

    /* kDate = HMAC("AWS4" secret, date), kRegion, kService, kSigning. */
    char k0[4 + MAX_SECRET];
    unsigned char a[32], b[32];
    memcpy(k0, "AWS4", 4);
    memcpy(k0 + 4, secret, secret_len);
    int rc = hmac_sha256(ctx, k0, 4 + secret_len, date, 8, a);
    OPENSSL_cleanse(k0, sizeof(k0));
    if (!rc)
        rc = hmac_sha256(ctx, a, 32, region, strlen(region), b);
    if (!rc)
        rc = hmac_sha256(ctx, b, 32, service, strlen(service), a);
    if (!rc)
        rc = hmac_sha256(ctx, a, 32, SCOPE_TERMINATOR, sizeof(SCOPE_TERMINATOR) - 1, b);
    OPENSSL_cleanse(a, sizeof(a));
    if (rc) {
        OPENSSL_cleanse(b, sizeof(b));
        return rc;
    }
    memcpy(out, b, 32);

    struct key_cache_entry *e = &key_cache[key_cache_next++ % KEY_CACHE_SIZE];
    e->used = true;
    memcpy(e->date, date, 8);
    e->date[8] = '\0';
    strcpy(e->region, region);   /* lengths checked by sigv4_compute */
    strcpy(e->service, service); /* likewise */
    memcpy(e->secret, secret, secret_len + 1);
    memcpy(e->key, b, 32);
    OPENSSL_cleanse(b, sizeof(b));
    return 0;
}

/* ---- public entry points ---- */

/* Region, service and access key: visible ASCII with no separator of the header in it. */
static bool valid_scope_part(const char *s, size_t max)
{
    size_t n = 0;
    for (; s[n]; n++) {
        unsigned char c = (unsigned char)s[n];
        if (c < 0x21 || c > 0x7e || c == '/' || c == ',' || n >= max)
            return false;
    }
    return n > 0;
}

int sigv4_compute(const struct sigv4_request *req, const char *signed_headers, const char *amz_date,
                  const char *region, const char *service, const char *secret, char out_hex[65],
                  struct buf *canonical)
{
    if (!req || !req->method || !req->payload_hash || (!req->headers && req->nheaders) ||
        !signed_headers || !amz_date || !region || !service || !secret || !out_hex)
        return -EINVAL;
    int64_t epoch;
    size_t secret_len = strlen(secret);
    if (parse_amz_date(amz_date, &epoch) ||
        !valid_signed_headers(signed_headers, strlen(signed_headers)) ||
        !valid_scope_part(region, sizeof(((struct sigv4_credential *)0)->region) - 1) ||
        !valid_scope_part(service, sizeof(((struct sigv4_credential *)0)->service) - 1) ||
        secret_len > MAX_SECRET)
        return -EINVAL;

    pthread_once(&g_crypto_once, crypto_init);
    if (!g_sha256 || !g_hmac)
        return -EIO;

    bool owned;
    struct crypto_ctx *ctx = crypto_ctx_get(&owned);
    if (!ctx)
        return -ENOMEM;
    struct sink s;
    s.copy = canonical;
    s.err = 0;
    s.len = 0;
    s.md = ctx->md;
    int rc = EVP_DigestInit_ex2(s.md, g_sha256, NULL) == 1 ? 0 : -EIO;
    if (rc)
        goto out;

    sink_puts(&s, req->method);
    sink_putc(&s, '\n');
    if ((rc = put_path(&s, req->path, req->s3)))
        goto out;
    sink_putc(&s, '\n');
    if ((rc = put_query(&s, req)))
        goto out;
    sink_putc(&s, '\n');
    if ((rc = put_headers(&s, req, signed_headers)))
        goto out;
    sink_putc(&s, '\n');
    sink_put_lower(&s, signed_headers, strlen(signed_headers));
    sink_putc(&s, '\n');
    sink_puts(&s, req->payload_hash);
    sink_flush(&s);
    if ((rc = s.err))
        goto out;

    unsigned char md[32];
    unsigned int mdlen = 0;
    if (EVP_DigestFinal_ex(s.md, md, &mdlen) != 1 || mdlen != 32) {
        rc = -EIO;
        goto out;
    }

    /* String to sign: fixed parts are bounded by the checks above (< 200 bytes). */
    char sts[256];
    size_t n = 0, rlen = strlen(region), slen = strlen(service);
    memcpy(sts + n, ALGORITHM "\n", ALGORITHM_LEN + 1);
    n += ALGORITHM_LEN + 1;
    memcpy(sts + n, amz_date, AMZ_DATE_LEN);
    n += AMZ_DATE_LEN;
    sts[n++] = '\n';
    memcpy(sts + n, amz_date, 8);
    n += 8;
    sts[n++] = '/';
    memcpy(sts + n, region, rlen);
    n += rlen;
    sts[n++] = '/';
    memcpy(sts + n, service, slen);
    n += slen;
    memcpy(sts + n, "/" SCOPE_TERMINATOR "\n", sizeof(SCOPE_TERMINATOR) + 1);
    n += sizeof(SCOPE_TERMINATOR) + 1;
    hex_encode(md, 32, sts + n);
    n += 64;

    unsigned char key[32], sig[32];
    rc = signing_key(ctx->mac, secret, secret_len, amz_date, region, service, key);
    if (!rc)
        rc = hmac_sha256(ctx->mac, key, 32, sts, n, sig);
    OPENSSL_cleanse(key, sizeof(key));
    if (!rc)
        hex_encode(sig, 32, out_hex);
out:
    if (owned)
        crypto_ctx_free(ctx);
    return rc;
}

enum sigv4_result sigv4_verify(const struct sigv4_request *req, sigv4_secret_lookup lookup,
                               void *arg, int64_t now_ms, struct sigv4_credential *cred_out)
{
    if (cred_out)
        memset(cred_out, 0, sizeof(*cred_out));
    if (!req || (!req->headers && req->nheaders))
        return SIGV4_MALFORMED;

    const char *auth;
    size_t nauth = find_header(req, "authorization", &auth);
    if (nauth == 0)
        return SIGV4_MISSING;
    struct sigv4_credential cred;
    if (nauth > 1 || sigv4_parse_authorization(auth, &cred))
        return SIGV4_MALFORMED;
    if (cred_out)
        *cred_out = cred;

    /* X-Amz-Date wins over Date; either way the string to sign uses the basic format. */
    const char *date;
    char amz_date[AMZ_DATE_LEN + 1];
    int64_t epoch;
    size_t ndate = find_header(req, "x-amz-date", &date);
    if (ndate == 1) {
        if (parse_amz_date(date, &epoch))
            return SIGV4_MALFORMED;
        memcpy(amz_date, date, sizeof(amz_date));
    } else if (ndate == 0 && find_header(req, "date", &date) == 1) {
        if (parse_http_date(date, &epoch) || format_amz_date(epoch, amz_date))
            return SIGV4_MALFORMED;
    } else {
        return SIGV4_MALFORMED;
    }
    if (memcmp(cred.date, amz_date, 8) != 0)
        return SIGV4_MALFORMED;
    if (cred_out)
        memcpy(cred_out->amz_date, amz_date, sizeof(amz_date));
    /* epoch is within years 1970..9999, so none of this can overflow. */
    int64_t at_ms = epoch * 1000;
    if (now_ms > at_ms + MAX_SKEW_MS || now_ms < at_ms - MAX_SKEW_MS)
        return SIGV4_EXPIRED;

    const char *secret = lookup ? lookup(cred.access_key, arg) : NULL;
    if (!secret)
        return SIGV4_UNKNOWN_KEY;

    char expected[65];
    if (sigv4_compute(req, cred.signed_headers, amz_date, cred.region, cred.service, secret,
                      expected, NULL))
        return SIGV4_MALFORMED;
    if (CRYPTO_memcmp(expected, cred.signature, 64) != 0)
        return SIGV4_MISMATCH;
    return SIGV4_OK;
}

/* ---- S3: presigned URLs and chunk signatures ---- */

/* The decoded value of query parameter name (copied into out, NUL-terminated),
 * its index in *at; 0, -ENOENT, or -EINVAL (duplicate, too long, bad escape). */
static int presign_param(const struct sigv4_request *req, const char *name, char *out, size_t size,
                         size_t *at)
{
    int found = 0;
    for (size_t i = 0; i < req->nquery; i++) {
        const struct sigv4_kv *q = &req->query[i];
        if (!q->name || strcmp(q->name, name) != 0)
            continue;
        if (found++)
            return -EINVAL;
        const char *v = q->value ? q->value : "";
        size_t n = strlen(v);
        if (n >= size)
            return -EINVAL;
        memcpy(out, v, n + 1);
        long len = percent_decode(out, n);
        if (len < 0)
            return -EINVAL;
        out[len] = '\0';
        if (at)
            *at = i;
    }
    return found ? 0 : -ENOENT;
}

enum sigv4_result sigv4_verify_presigned(const struct sigv4_request *req,
                                         sigv4_secret_lookup lookup, void *arg, int64_t now_ms,
                                         struct sigv4_credential *cred_out)
{
    if (cred_out)
        memset(cred_out, 0, sizeof(*cred_out));
    if (!req || (!req->query && req->nquery) || req->nquery > MAX_QUERY_PAIRS)
        return SIGV4_MALFORMED;
    char alg[32], credential[256], date[32], expires[16], sig[80];
    struct sigv4_credential cred;
    memset(&cred, 0, sizeof(cred));
    size_t sig_at = 0;
    int rc = presign_param(req, "X-Amz-Algorithm", alg, sizeof(alg), NULL);
    if (rc == -ENOENT)
        return SIGV4_MISSING;
    if (rc || strcmp(alg, ALGORITHM) != 0 ||
        presign_param(req, "X-Amz-Credential", credential, sizeof(credential), NULL) ||
        parse_credential(credential, strlen(credential), &cred) ||
        presign_param(req, "X-Amz-SignedHeaders", cred.signed_headers, sizeof(cred.signed_headers),
                      NULL) ||
        !valid_signed_headers(cred.signed_headers, strlen(cred.signed_headers)) ||
        presign_param(req, "X-Amz-Signature", sig, sizeof(sig), &sig_at) ||
        parse_signature(sig, strlen(sig), &cred))
        return SIGV4_MALFORMED;
    for (char *p = cred.signed_headers; *p; p++)
        *p = lower(*p);
    if (cred_out)
        *cred_out = cred;
    int64_t epoch;
    if (presign_param(req, "X-Amz-Date", date, sizeof(date), NULL) ||
        parse_amz_date(date, &epoch) || memcmp(cred.date, date, 8) != 0)
        return SIGV4_MALFORMED;
    if (presign_param(req, "X-Amz-Expires", expires, sizeof(expires), NULL))
        return SIGV4_MALFORMED;
    char *end;
    long secs = strtol(expires, &end, 10);
    if (!expires[0] || *end || secs < 1 || secs > 604800)
        return SIGV4_MALFORMED;
    memcpy(cred.amz_date, date, AMZ_DATE_LEN + 1);
    if (cred_out)
        *cred_out = cred;
    if (now_ms > (epoch + secs) * 1000 || now_ms < epoch * 1000 - MAX_SKEW_MS)
        return SIGV4_EXPIRED;
    const char *secret = lookup ? lookup(cred.access_key, arg) : NULL;
    if (!secret)
        return SIGV4_UNKNOWN_KEY;

    /* Every query pair but the signature is signed. */
    struct sigv4_kv stack[32];
    struct sigv4_kv *q = req->nquery <= 32 ? stack : malloc(req->nquery * sizeof(*q));
    if (!q)
        return SIGV4_MALFORMED;
    size_t nq = 0;
    for (size_t i = 0; i < req->nquery; i++)
        if (i != sig_at)
            q[nq++] = req->query[i];
    struct sigv4_request unsigned_req = *req;
    unsigned_req.query = q;
    unsigned_req.nquery = nq;
    char expected[65];
    rc = sigv4_compute(&unsigned_req, cred.signed_headers, date, cred.region, cred.service, secret,
                       expected, NULL);
    if (q != stack)
        free(q);
    if (rc)
        return SIGV4_MALFORMED;
    if (CRYPTO_memcmp(expected, cred.signature, 64) != 0)
        return SIGV4_MISMATCH;
    return SIGV4_OK;
}

/* HMAC over "<kind>\n<date>\n<scope>\n<prev>\n<tail>": the chained signatures
 * of aws-chunked bodies (tail: SHA-256("") and the chunk's hash, or the
 * trailer's hash). */
static int chained_signature(const char *kind, const char *secret, const char *amz_date,
                             const char *region, const char *service, const char *prev_signature,
                             const char *tail, char out_hex[65])
{
    int64_t epoch;
    size_t secret_len = secret ? strlen(secret) : 0;
    if (!secret || !amz_date || !region || !service || !prev_signature || !out_hex ||
        parse_amz_date(amz_date, &epoch) || secret_len > MAX_SECRET ||
        strlen(prev_signature) != 64 ||
        !valid_scope_part(region, sizeof(((struct sigv4_credential *)0)->region) - 1) ||
        !valid_scope_part(service, sizeof(((struct sigv4_credential *)0)->service) - 1))
        return -EINVAL;
    pthread_once(&g_crypto_once, crypto_init);
    if (!g_sha256 || !g_hmac)
        return -EIO;
    bool owned;
    struct crypto_ctx *ctx = crypto_ctx_get(&owned);
    if (!ctx)
        return -ENOMEM;
    char sts[512];
    int n = snprintf(sts, sizeof(sts), "%s\n%s\n%.8s/%s/%s/%s\n%s\n%s", kind, amz_date, amz_date,
                     region, service, SCOPE_TERMINATOR, prev_signature, tail);
    unsigned char key[32], sig[32];
    int rc = n > 0 && (size_t)n < sizeof(sts) ? 0 : -EINVAL;
    if (!rc)
        rc = signing_key(ctx->mac, secret, secret_len, amz_date, region, service, key);
    if (!rc)
        rc = hmac_sha256(ctx->mac, key, 32, sts, (size_t)n, sig);
    OPENSSL_cleanse(key, sizeof(key));
    if (!rc)
        hex_encode(sig, 32, out_hex);
    if (owned)
        crypto_ctx_free(ctx);
    return rc;
}

int sigv4_chunk_signature(const char *secret, const char *amz_date, const char *region,
                          const char *service, const char *prev_signature,
                          const unsigned char chunk_sha256[32], char out_hex[65])
{
    /* SHA-256 of the empty string: the chunk form has no headers to hash */
    char tail[64 + 1 + 65] = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n";
    hex_encode(chunk_sha256, 32, tail + 65);
    return chained_signature("AWS4-HMAC-SHA256-PAYLOAD", secret, amz_date, region, service,
                             prev_signature, tail, out_hex);
}

int sigv4_trailer_signature(const char *secret, const char *amz_date, const char *region,
                            const char *service, const char *prev_signature,
                            const unsigned char trailer_sha256[32], char out_hex[65])
{
    char tail[65];
    hex_encode(trailer_sha256, 32, tail);
    return chained_signature("AWS4-HMAC-SHA256-TRAILER", secret, amz_date, region, service,
                             prev_signature, tail, out_hex);
}

int sigv4_authorization(const struct sigv4_request *req, const char *signed_headers,
                        const char *amz_date, const char *region, const char *service,
                        const char *access_key, const char *secret, struct buf *out)
{
    if (!out || !access_key ||
        !valid_scope_part(access_key, sizeof(((struct sigv4_credential *)0)->access_key) - 1))
        return -EINVAL;
    char sig[65];
    int rc = sigv4_compute(req, signed_headers, amz_date, region, service, secret, sig, NULL);
    if (rc)
        return rc;
    size_t start = out->len;
    rc = buf_printf(out, ALGORITHM " Credential=%s/%.8s/%s/%s/" SCOPE_TERMINATOR ", SignedHeaders=",
                    access_key, amz_date, region, service);
    size_t sh = out->len;
    if (!rc)
        rc = buf_puts(out, signed_headers);
    if (!rc) {
        for (size_t i = sh; i < out->len; i++)
            out->data[i] = lower(out->data[i]);
        rc = buf_printf(out, ", Signature=%s", sig);
    }
    if (rc && out->data) {
        out->len = start;
        out->data[start] = '\0';
    }
    return rc;
}
