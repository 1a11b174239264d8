/*
 * sigv4: AWS Signature Version 4, header form (Authorization:
 * AWS4-HMAC-SHA256 ...). Pure computation: parses the Authorization header,
 * builds the canonical request and string to sign, derives the signing key
 * and compares signatures in constant time. Knows nothing about HTTP
 * libraries or which credentials exist: the caller passes a lookup.
 * Also S3's forms: presigned URLs (query-string auth) and the chunk
 * signatures of aws-chunked (STREAMING-AWS4-HMAC-SHA256-PAYLOAD) bodies.
 */
#ifndef IGNIS_EDGE_SIGV4_H
#define IGNIS_EDGE_SIGV4_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

struct sigv4_kv {
    const char *name;
    const char *value; /* query: NULL when the parameter had no '=' */
};

/* One parsed Authorization header. */
struct sigv4_credential {
    char access_key[129];
    char date[9]; /* YYYYMMDD of the credential scope */
    char region[33];
    char service[33];
    char signed_headers[1024]; /* "host;x-amz-date", lower case, ';'-joined */
    char signature[65];        /* lower-case hex */
    char amz_date[17];         /* the request's time, "20150830T123600Z" (set by the verifiers) */
};

/* The request as received, nothing decoded. */
struct sigv4_request {
    const char *method;
    const char *path;             /* raw request path as sent (percent-encoded), no query */
    const struct sigv4_kv *query; /* raw query pairs as sent (still percent-encoded) */
    size_t nquery;
    const struct sigv4_kv *headers; /* every request header; names in any case */
    size_t nheaders;
    const char *payload_hash; /* hex SHA-256 of the body, or x-amz-content-sha256's value */
    int s3;                   /* S3 rules: path neither normalised nor encoded twice */
};

enum sigv4_result {
    SIGV4_OK = 0,
    SIGV4_MISSING,     /* no Authorization header */
    SIGV4_MALFORMED,   /* Authorization or X-Amz-Date unparsable, or a signed header missing */
    SIGV4_UNKNOWN_KEY, /* lookup did not know the access key */
    SIGV4_MISMATCH,    /* signature differs */
    SIGV4_EXPIRED,     /* X-Amz-Date more than 15 minutes from now */
};

/* Returns 0 or -EINVAL. */
int sigv4_parse_authorization(const char *value, struct sigv4_credential *out);

/*
 * Computes the lower-case hex signature of req for the given scope, signed
 * headers (';'-joined lower-case names) and amz_date ("20150830T123600Z").
 * If canonical is not NULL the canonical request is appended to it (for
 * error messages and debugging). Returns 0 or -EINVAL (a signed header is
 * not in req, or arguments are malformed). Also, rarely: -ENOMEM/-EIO from
 * OpenSSL or scratch space, or canonical's own error (e.g. -EMSGSIZE when
 * its cap is reached). Query values are percent-decoded and re-encoded, so a
 * bad escape ("%zz") is -EINVAL; more than 1000 query pairs is -EINVAL.
 */
int sigv4_compute(const struct sigv4_request *req, const char *signed_headers, const char *amz_date,
                  const char *region, const char *service, const char *secret, char out_hex[65],
                  struct buf *canonical);

/* Returns the secret for access_key, or NULL when unknown. */
typedef const char *(*sigv4_secret_lookup)(const char *access_key, void *arg);

/*
 * Verifies req's Authorization header (the date comes from X-Amz-Date, or
 * Date). cred_out (optional) receives the parsed credential even on failure
 * when it could be parsed, so the caller can route by service (it is zeroed
 * otherwise). Checks run in this order: header present, parsable, date
 * parsable and equal to the scope date, within 15 minutes, key known,
 * signature. Duplicate Authorization or X-Amz-Date headers, and failures
 * inside sigv4_compute, are SIGV4_MALFORMED.
 */
enum sigv4_result sigv4_verify(const struct sigv4_request *req, sigv4_secret_lookup lookup,
                               void *arg, int64_t now_ms, struct sigv4_credential *cred_out);

/*
 * Verifies a presigned URL: X-Amz-Algorithm, X-Amz-Credential, X-Amz-Date,
 * X-Amz-Expires (1..604800 s), X-Amz-SignedHeaders and X-Amz-Signature in the
 * query (every other pair is signed too). The payload hash is
 * req->payload_hash (S3: "UNSIGNED-PAYLOAD"). SIGV4_MISSING when the query
 * has no X-Amz-Algorithm; SIGV4_EXPIRED when now is past X-Amz-Date +
 * X-Amz-Expires (or the date is more than 15 minutes ahead).
 */
enum sigv4_result sigv4_verify_presigned(const struct sigv4_request *req,
                                         sigv4_secret_lookup lookup, void *arg, int64_t now_ms,
                                         struct sigv4_credential *cred_out);

/*
 * The signature of one chunk of an aws-chunked body: HMAC over
 * "AWS4-HMAC-SHA256-PAYLOAD", the date, the scope, the previous signature
 * (the seed signature for the first chunk), SHA-256("") and the chunk's
 * SHA-256. Returns 0 or -EINVAL/-EIO.
 */
int sigv4_chunk_signature(const char *secret, const char *amz_date, const char *region,
                          const char *service, const char *prev_signature,
                          const unsigned char chunk_sha256[32], char out_hex[65]);

/*
 * The signature of the trailer of a STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER
 * body: HMAC over "AWS4-HMAC-SHA256-TRAILER", the date, the scope, the last
 * chunk's signature and the SHA-256 of the trailing headers as sent
 * ("name:value\n" each, x-amz-trailer-signature excluded).
 */
int sigv4_trailer_signature(const char *secret, const char *amz_date, const char *region,
                            const char *service, const char *prev_signature,
                            const unsigned char trailer_sha256[32], char out_hex[65]);

/*
 * Client side: signs a request with the headers it names in signed_headers
 * (which must be in req->headers) and appends the Authorization header's
 * value to out. On failure out is left as it was.
 */
int sigv4_authorization(const struct sigv4_request *req, const char *signed_headers,
                        const char *amz_date, const char *region, const char *service,
                        const char *access_key, const char *secret, struct buf *out);

#endif
