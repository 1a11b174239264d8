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

#include <openssl/evp.h>
#include <openssl/hmac.h>

#define MAX_ROUTES 16

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
     * UNSIGNED-PAYLOAD and aws-chunked forms will be its own case.) */
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
    struct edge_auth auth = {cred.access_key, cred.service, cred.region};
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
