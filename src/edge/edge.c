/*
 * edge: the public listener, SigV4 authentication and routing to services
 * (see edge.h). Owns the edge http_server and the route table, not the
 * services behind it.
 */
#include "edge/edge.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "edge/sigv4.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#define MAX_ROUTES 32

struct edge {
    const struct config *cfg;
    struct http_server *http;
    struct edge_route routes[MAX_ROUTES];
    int nroutes;
};

static const struct edge_route *route_by_path(struct edge *e, const char *path, int public)
{
    for (int i = 0; i < e->nroutes; i++) {
        const struct edge_route *r = &e->routes[i];
        if (r->public == public && r->path_prefix && str_has_prefix(path, r->path_prefix))
            return r;
    }
    return NULL;
}

static const struct edge_route *route_by_service(struct edge *e, const char *service)
{
    for (int i = 0; i < e->nroutes; i++)
        if (!e->routes[i].public && e->routes[i].service &&
            strcmp(e->routes[i].service, service) == 0)
            return &e->routes[i];
    return NULL;
}

/* A public route that claims the request by its headers (e.g. Host). */
static const struct edge_route *route_by_match(struct edge *e, struct http_req *req)
{
    for (int i = 0; i < e->nroutes; i++)
        if (e->routes[i].public && e->routes[i].match && e->routes[i].match(req, e->routes[i].arg))
            return &e->routes[i];
    return NULL;
}

/* The route for requests nothing else claims (S3 path-style). */
static const struct edge_route *route_fallback(struct edge *e)
{
    for (int i = 0; i < e->nroutes; i++)
        if (e->routes[i].fallback)
            return &e->routes[i];
    return NULL;
}

/* The service named in "Credential=AKID/date/region/SERVICE/aws4_request". */
static const struct edge_route *route_by_authorization(struct edge *e, const char *auth)
{
    struct sigv4_credential cred;
    if (!auth || sigv4_parse_authorization(auth, &cred) < 0)
        return NULL;
    return route_by_service(e, cred.service);
}

/* Picks the route as soon as the headers are in (a route claiming it by its
 * headers, else public path, else the credential scope's service, else the
 * path prefix) and keeps it with the request for handle(); its body cap
 * applies. */
static size_t body_cap(struct http_req *req, void *arg)
{
    struct edge *e = arg;
    const char *path = http_req_path(req);
    const struct edge_route *r = route_by_match(e, req);
    if (!r)
        r = route_by_path(e, path, 1);
    if (!r)
        r = route_by_authorization(e, http_req_header(req, "Authorization"));
    if (!r)
        r = route_by_path(e, path, 0);
    if (!r)
        r = route_fallback(e);
    http_req_set_user(req, r);
    if (r && r->body_cap)
        return r->body_cap(req, r->arg);
    return 1024 * 1024;
}

/* Functions' credentials (edge_function_credentials) are derived from the root secret, so
 * nothing about them is stored: a key of their form is valid with the secret only the
 * daemon (and the function it was given to) can compute. */
#define FN_KEY_PREFIX "ASIA"
#define FN_KEY_LEN 20

static void derive(const struct config *cfg, const char *purpose, const char *what,
                   unsigned char mac[32])
{
    char msg[512];
    int n = snprintf(msg, sizeof(msg), "ignis-%s:%s", purpose, what);
    unsigned len = 32;
    HMAC(EVP_sha256(), cfg->secret_key, (int)strlen(cfg->secret_key), (unsigned char *)msg,
         (size_t)(n < (int)sizeof(msg) ? n : (int)sizeof(msg) - 1), mac, &len);
}

static void function_secret(const struct config *cfg, const char *key, char secret[41])
{
    unsigned char mac[32];
    derive(cfg, "function-secret", key, mac);
    EVP_EncodeBlock((unsigned char *)secret, mac, 30); /* 40 characters */
    secret[40] = 0;
}

void edge_function_credentials(const struct config *cfg, const char *function,
                               struct edge_credentials *out)
{
    static const char base32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    unsigned char mac[32];
    derive(cfg, "function-key", function, mac);
    memcpy(out->access_key, FN_KEY_PREFIX, 4);
    for (int i = 0; i < FN_KEY_LEN - 4; i++)
        out->access_key[4 + i] = base32[mac[i] & 31];
    out->access_key[FN_KEY_LEN] = 0;
    function_secret(cfg, out->access_key, out->secret_key);
    unsigned char token[32];
    derive(cfg, "function-token", out->access_key, token);
    EVP_EncodeBlock((unsigned char *)out->session_token, token, 30);
    out->session_token[40] = 0;
}

static const char *secret_for(const char *access_key, void *arg)
{
    const struct config *cfg = arg;
    if (strcmp(access_key, cfg->access_key) == 0)
        return cfg->secret_key;
    static __thread char derived[41];
    if (strlen(access_key) == FN_KEY_LEN && str_has_prefix(access_key, FN_KEY_PREFIX)) {
        function_secret(cfg, access_key, derived);
        return derived;
    }
    return NULL;
}

void edge_take_connection(int fd, const struct sockaddr *addr, socklen_t len, void *edge)
{
    struct edge *e = edge;
    if (http_server_add_connection(e->http, fd, addr, len) < 0)
        log_warn("edge: could not take a function's connection");
}

static void amz_time(time_t t, char out[17])
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}

/* AWS's two wordings for a request outside the 15-minute window. */
static void skew_error(struct http_req *req, enum aws_protocol proto)
{
    const char *date = http_req_header(req, "X-Amz-Date");
    struct tm tm = {0};
    time_t now = time(NULL), when = now;
    if (date && strptime(date, "%Y%m%dT%H%M%SZ", &tm))
        when = timegm(&tm);
    char sent[17], bound[17], server[17];
    amz_time(when, sent);
    amz_time(now, server);
    if (when > now) {
        amz_time(now + 900, bound);
        aws_error(req, proto, 403, "InvalidSignatureException",
                  "Signature not yet current: %s is still later than %s (%s + 15 min.)", sent,
                  bound, server);
    } else {
        amz_time(now - 900, bound);
        aws_error(req, proto, 403, "InvalidSignatureException",
                  "Signature expired: %s is now earlier than %s (%s - 15 min.)", sent, bound,
                  server);
    }
}

enum sigv4_result edge_verify(const struct config *cfg, struct http_req *req,
                              struct sigv4_credential *cred)
{
    struct sigv4_request sreq;
    http_req_sigv4(req, &sreq);
    size_t len;
    const char *body = http_req_body(req, &len);
    /* The signature covers the hash, so the hash must be the body's own: a
     * declared x-amz-content-sha256 is checked, never trusted. (S3's
     * UNSIGNED-PAYLOAD and aws-chunked forms: edge_authenticate_s3.) */
    char body_hash[65];
    sha256_hex(body, len, body_hash);
    sreq.payload_hash = body_hash;
    const char *declared = http_req_header(req, "x-amz-content-sha256");
    memset(cred, 0, sizeof(*cred));
    enum sigv4_result res = sigv4_verify(&sreq, secret_for, (void *)cfg, now_ms(), cred);
    if (res == SIGV4_OK && declared && strcasecmp(declared, body_hash) != 0)
        res = SIGV4_MISMATCH; /* what was signed is not this body */
    return res;
}

/*=== S3 ===*/

static int is_hex64(const char *s)
{
    if (strlen(s) != 64)
        return 0;
    for (int i = 0; i < 64; i++)
        if (hex_digit_value((unsigned char)s[i]) < 0)
            return 0;
    return 1;
}

static int s3_payload_form_ok(const char *v)
{
    return is_hex64(v) || strcmp(v, "UNSIGNED-PAYLOAD") == 0 ||
           strcmp(v, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD") == 0 ||
           strcmp(v, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER") == 0 ||
           strcmp(v, "STREAMING-UNSIGNED-PAYLOAD-TRAILER") == 0;
}

/* Query parameters that are part of a SigV2 canonical resource. */
static const char *const sigv2_subresources[] = {
    "accelerate",
    "acl",
    "cors",
    "defaultObjectAcl",
    "delete",
    "lifecycle",
    "location",
    "logging",
    "notification",
    "partNumber",
    "policy",
    "requestPayment",
    "response-cache-control",
    "response-content-disposition",
    "response-content-encoding",
    "response-content-language",
    "response-content-type",
    "response-expires",
    "restore",
    "tagging",
    "torrent",
    "uploadId",
    "uploads",
    "versionId",
    "versioning",
    "versions",
    "website",
    NULL,
};

static int kv_name_cmp(const void *a, const void *b)
{
    return strcmp(((const struct sigv4_kv *)a)->name, ((const struct sigv4_kv *)b)->name);
}

/*
 * S3's legacy presigned URLs (AWSAccessKeyId, Expires, Signature: what the
 * aws CLI v1's `s3 presign` and boto3's generate_presigned_url make unless
 * told s3v4): base64(HMAC-SHA1(secret, verb, Content-MD5, Content-Type,
 * Expires, x-amz-* headers, /bucket/path?subresources)). Returns 0, or -1
 * after answering the error.
 */
static int verify_sigv2_query(const struct config *cfg, struct http_req *req, const char *bucket,
                              struct sigv4_request *sreq, struct sigv4_credential *cred)
{
    const char *akid = http_req_query(req, "AWSAccessKeyId");
    const char *expires = http_req_query(req, "Expires");
    const char *signature = http_req_query(req, "Signature");
    memset(cred, 0, sizeof(*cred));
    if (!akid || !expires || !signature) {
        aws_error_xml(req, 403, "AccessDenied", NULL,
                      "Query-string authentication requires the Signature, Expires and "
                      "AWSAccessKeyId parameters");
        return -1;
    }
    snprintf(cred->access_key, sizeof(cred->access_key), "%s", akid);
    char *end;
    long long exp = strtoll(expires, &end, 10);
    char now[17];
    amz_time(time(NULL), now);
    if (!*expires || *end) {
        aws_error_xml(req, 403, "AccessDenied", NULL,
                      "Invalid date (should be seconds since epoch)");
        return -1;
    }
    if ((long long)time(NULL) > exp) {
        const char *extra[] = {"Expires", expires, "ServerTime", now, NULL};
        aws_error_xml(req, 403, "AccessDenied", extra, "Request has expired");
        return -1;
    }
    if (strcmp(akid, cfg->access_key) != 0) {
        const char *extra[] = {"AWSAccessKeyId", akid, NULL};
        aws_error_xml(req, 403, "InvalidAccessKeyId", extra,
                      "The AWS Access Key Id you provided does not exist in our records.");
        return -1;
    }
    struct buf sts = BUF_INIT;
    const char *md5 = http_req_header(req, "Content-MD5");
    const char *type = http_req_header(req, "Content-Type");
    buf_printf(&sts, "%s\n%s\n%s\n%s\n", http_req_method(req), md5 ? md5 : "", type ? type : "",
               expires);
    /* x-amz-* headers, lower-case names sorted */
    struct sigv4_kv amz[64];
    size_t namz = 0;
    for (size_t i = 0; i < sreq->nheaders && namz < 64; i++)
        if (sreq->headers[i].name && strncasecmp(sreq->headers[i].name, "x-amz-", 6) == 0)
            amz[namz++] = sreq->headers[i];
    char lower[64][128];
    for (size_t i = 0; i < namz; i++) {
        snprintf(lower[i], sizeof(lower[i]), "%s", amz[i].name);
        for (char *p = lower[i]; *p; p++)
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p + 32);
        amz[i].name = lower[i];
    }
    qsort(amz, namz, sizeof(amz[0]), kv_name_cmp);
    for (size_t i = 0; i < namz; i++)
        buf_printf(&sts, "%s:%s\n", amz[i].name, amz[i].value ? amz[i].value : "");
    if (bucket)
        buf_printf(&sts, "/%s", bucket);
    const char *path = http_req_path(req);
    buf_append(&sts, path, strcspn(path, "?"));
    struct sigv4_kv sub[32];
    size_t nsub = 0;
    for (size_t i = 0; i < sreq->nquery && nsub < 32; i++)
        for (int k = 0; sigv2_subresources[k]; k++)
            if (sreq->query[i].name && strcmp(sreq->query[i].name, sigv2_subresources[k]) == 0)
                sub[nsub++] = sreq->query[i];
    qsort(sub, nsub, sizeof(sub[0]), kv_name_cmp);
    for (size_t i = 0; i < nsub; i++) {
        buf_putc(&sts, i ? '&' : '?');
        buf_puts(&sts, sub[i].name);
        if (sub[i].value) {
            const char *v = http_req_query(req, sub[i].name);
            buf_printf(&sts, "=%s", v ? v : "");
        }
    }
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    struct buf expected = BUF_INIT;
    int ok = sts.data &&
             HMAC(EVP_sha1(), cfg->secret_key, (int)strlen(cfg->secret_key),
                  (const unsigned char *)sts.data, sts.len, mac, &maclen) != NULL &&
             base64_encode(&expected, mac, maclen) == 0 && strlen(signature) == expected.len &&
             CRYPTO_memcmp(expected.data, signature, expected.len) == 0;
    if (!ok) {
        const char *extra[] = {
            "AWSAccessKeyId", akid, "StringToSign", sts.data ? sts.data : "", "SignatureProvided",
            signature,        NULL};
        aws_error_xml(req, 403, "SignatureDoesNotMatch", extra,
                      "The request signature we calculated does not match the signature you "
                      "provided. Check your key and signing method.");
    }
    buf_release(&sts);
    buf_release(&expected);
    return ok ? 0 : -1;
}

int edge_authenticate_s3(const struct config *cfg, struct http_req *req, const char *vhost_bucket,
                         struct sigv4_credential *cred, struct edge_auth *auth)
{
    struct sigv4_request sreq;
    http_req_sigv4(req, &sreq);
    sreq.s3 = 1;
    memset(auth, 0, sizeof(*auth));
    const char *declared = http_req_header(req, "x-amz-content-sha256");
    int presigned = http_req_query(req, "X-Amz-Algorithm") != NULL;
    if (!presigned && !http_req_header(req, "Authorization") &&
        http_req_query(req, "AWSAccessKeyId")) {
        if (verify_sigv2_query(cfg, req, vhost_bucket, &sreq, cred) < 0)
            return -1;
        auth->access_key = cred->access_key;
        auth->service = "s3";
        auth->region = cfg->region;
        auth->payload_hash = "UNSIGNED-PAYLOAD";
        return 0;
    }
    enum sigv4_result res;
    char now[17], body_hash[65];
    amz_time(time(NULL), now);
    if (presigned) {
        sreq.payload_hash = declared ? declared : "UNSIGNED-PAYLOAD";
        res = sigv4_verify_presigned(&sreq, secret_for, (void *)cfg, now_ms(), cred);
    } else {
        if (!http_req_header(req, "Authorization")) {
            aws_error_xml(req, 403, "AccessDenied", NULL, "Access Denied");
            return -1;
        }
        if (!declared) {
            aws_error_xml(req, 400, "InvalidRequest", NULL,
                          "Missing required header for this request: x-amz-content-sha256");
            return -1;
        }
        if (!s3_payload_form_ok(declared)) {
            static const char *const extra[] = {"ArgumentName", "x-amz-content-sha256", NULL};
            aws_error_xml(req, 400, "InvalidArgument", extra,
                          "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, "
                          "STREAMING-AWS4-HMAC-SHA256-PAYLOAD, "
                          "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER, "
                          "STREAMING-UNSIGNED-PAYLOAD-TRAILER or a valid sha256 value.");
            return -1;
        }
        sreq.payload_hash = declared;
        res = sigv4_verify(&sreq, secret_for, (void *)cfg, now_ms(), cred);
    }
    switch (res) {
    case SIGV4_OK:
        break;
    case SIGV4_MISSING:
        aws_error_xml(req, 403, "AccessDenied", NULL, "Access Denied");
        return -1;
    case SIGV4_UNKNOWN_KEY: {
        const char *extra[] = {"AWSAccessKeyId", cred->access_key, NULL};
        aws_error_xml(req, 403, "InvalidAccessKeyId", extra,
                      "The AWS Access Key Id you provided does not exist in our records.");
        return -1;
    }
    case SIGV4_EXPIRED:
        if (presigned) {
            const char *expires = http_req_query(req, "X-Amz-Expires");
            const char *extra[] = {"X-Amz-Expires", expires ? expires : "", "ServerTime", now,
                                   NULL};
            aws_error_xml(req, 403, "AccessDenied", extra, "Request has expired");
        } else {
            const char *date = http_req_header(req, "X-Amz-Date");
            const char *extra[] = {"RequestTime",
                                   date ? date : "",
                                   "ServerTime",
                                   now,
                                   "MaxAllowedSkewMilliseconds",
                                   "900000",
                                   NULL};
            aws_error_xml(req, 403, "RequestTimeTooSkewed", extra,
                          "The difference between the request time and the current time is too "
                          "large.");
        }
        return -1;
    case SIGV4_MALFORMED:
        if (presigned)
            aws_error_xml(req, 400, "AuthorizationQueryParametersError", NULL,
                          "Query-string authentication version 4 requires the X-Amz-Algorithm, "
                          "X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, "
                          "and X-Amz-Expires parameters.");
        else
            aws_error_xml(req, 400, "AuthorizationHeaderMalformed", NULL,
                          "The authorization header is malformed; the Credential is mal-formed; "
                          "expecting \"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request\".");
        return -1;
    case SIGV4_MISMATCH: {
        const char *extra[] = {"AWSAccessKeyId", cred->access_key, "SignatureProvided",
                               cred->signature, NULL};
        aws_error_xml(req, 403, "SignatureDoesNotMatch", extra,
                      "The request signature we calculated does not match the signature you "
                      "provided. Check your key and signing method.");
        return -1;
    }
    }
    /* A body held whole is checked here; a streamed one by the service as it arrives. */
    if (!presigned && is_hex64(declared) && !http_req_streaming(req)) {
        size_t len;
        const char *body = http_req_body(req, &len);
        sha256_hex(body, len, body_hash);
        if (strcasecmp(declared, body_hash) != 0) {
            const char *extra[] = {"ClientComputedContentSHA256", declared,
                                   "S3ComputedContentSHA256", body_hash, NULL};
            aws_error_xml(req, 400, "XAmzContentSHA256Mismatch", extra,
                          "The provided 'x-amz-content-sha256' header does not match what was "
                          "computed.");
            return -1;
        }
    }
    auth->access_key = cred->access_key;
    auth->service = cred->service;
    auth->region = cred->region;
    auth->payload_hash = presigned ? "UNSIGNED-PAYLOAD" : declared;
    auth->signature = cred->signature;
    auth->amz_date = cred->amz_date;
    return 0;
}

static void handle(struct http_req *req, void *arg)
{
    struct edge *e = arg;
    const char *path = http_req_path(req);
    const struct edge_route *r = http_req_user(req);
    if (!r) {
        aws_error(req, AWS_REST_JSON, 400, "UnknownOperationException",
                  "No service of this Ignis answers %s %s", http_req_method(req), path);
        return;
    }
    struct edge_auth none = {0};
    if (r->public || http_req_body_too_large(req)) {
        /* Public paths check their own token. A dropped body cannot have its
         * signature checked: the service answers "too large" first, as AWS. */
        r->handle(req, &none, r->arg);
        return;
    }

    struct sigv4_credential cred;
    if (r->proto == AWS_REST_XML) {
        struct edge_auth auth;
        if (edge_authenticate_s3(e->cfg, req, NULL, &cred, &auth) == 0)
            r->handle(req, &auth, r->arg);
        return;
    }
    switch (edge_verify(e->cfg, req, &cred)) {
    case SIGV4_OK:
        break;
    case SIGV4_MISSING:
        aws_error(req, r->proto, 403, "MissingAuthenticationTokenException",
                  "Missing Authentication Token");
        return;
    case SIGV4_UNKNOWN_KEY:
        aws_error(req, r->proto, 403, "UnrecognizedClientException",
                  "The security token included in the request is invalid.");
        return;
    case SIGV4_EXPIRED:
        skew_error(req, r->proto);
        return;
    case SIGV4_MALFORMED:
        aws_error(req, r->proto, 403, "IncompleteSignatureException",
                  "Authorization header requires 'Credential', 'Signature' and "
                  "'SignedHeaders' parameters, and a valid X-Amz-Date.");
        return;
    case SIGV4_MISMATCH:
        aws_error(req, r->proto, 403, "InvalidSignatureException",
                  "The request signature we calculated does not match the signature you "
                  "provided. Check your AWS Secret Access Key and signing method. Consult the "
                  "service documentation for details.");
        return;
    }
    struct edge_auth auth = {
        .access_key = cred.access_key, .service = cred.service, .region = cred.region};
    r->handle(req, &auth, r->arg);
}

struct edge *edge_new(struct loop *loop, const struct config *cfg, int listen_fd)
{
    struct edge *e = calloc(1, sizeof(*e));
    if (!e)
        return NULL;
    e->cfg = cfg;
    struct http_server_opts opts = {
        .listen_fd = listen_fd,
        .handler = handle,
        .body_cap = body_cap,
        .arg = e,
        .idle_timeout_s = 300,
    };
    e->http = http_server_new(loop, &opts);
    if (!e->http) {
        free(e);
        return NULL;
    }
    return e;
}

int edge_add_route(struct edge *e, const struct edge_route *route)
{
    if (e->nroutes == MAX_ROUTES)
        return -ENOSPC;
    e->routes[e->nroutes++] = *route;
    return 0;
}

void edge_free(struct edge *e)
{
    if (!e)
        return;
    http_server_free(e->http);
    free(e);
}

int edge_listen(const char *host, int port)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res;
    char portstr[8];
    snprintf(portstr, sizeof(portstr), "%d", port);
    int rc = getaddrinfo(host, portstr, &hints, &res);
    if (rc != 0) {
        log_error("getaddrinfo %s: %s", host, gai_strerror(rc));
        return -EINVAL;
    }
    int fd = -EADDRNOTAVAIL;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        int s = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (s < 0)
            continue;
        int one = 1;
        setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(s, ai->ai_addr, ai->ai_addrlen) == 0 && listen(s, 1024) == 0) {
            fd = s;
            break;
        }
        fd = -errno;
        close(s);
    }
    freeaddrinfo(res);
    return fd;
}

int edge_socket_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
        return -errno;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}
