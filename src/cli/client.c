/*
 * client: SigV4-signed requests over libcurl for the CLI commands (see
 * client.h). Owns one curl handle (keep-alive across calls) and the
 * credentials it found.
 */
#include "cli/client.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/config.h"
#include "core/util.h"
#include "edge/sigv4.h"

struct client {
    CURL *curl;
    char endpoint[512];
    char host[300];
    char access_key[129];
    char secret[129];
    char region[32];
    char extra[512]; /* one unsigned header for the next call */
};

void client_next_header(struct client *c, const char *line)
{
    snprintf(c->extra, sizeof(c->extra), "%s", line);
}

static int find_credentials(struct client *c)
{
    const char *ak = getenv("AWS_ACCESS_KEY_ID"), *sk = getenv("AWS_SECRET_ACCESS_KEY");
    if (!(ak && *ak && sk && *sk)) {
        ak = getenv("IGNIS_ROOT_ACCESS_KEY_ID");
        sk = getenv("IGNIS_ROOT_SECRET_ACCESS_KEY");
    }
    if (ak && *ak && sk && *sk) {
        snprintf(c->access_key, sizeof(c->access_key), "%s", ak);
        snprintf(c->secret, sizeof(c->secret), "%s", sk);
        return 0;
    }
    /* the server's generated credentials, when on the same machine */
    struct config cfg;
    config_defaults(&cfg);
    if (config_load_credentials(&cfg) == 0 && !cfg.credentials_generated) {
        snprintf(c->access_key, sizeof(c->access_key), "%s", cfg.access_key);
        snprintf(c->secret, sizeof(c->secret), "%s", cfg.secret_key);
        return 0;
    }
    return -1;
}

struct client *client_new(void)
{
    struct client *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    const char *ep = getenv("IGNIS_ENDPOINT");
    const char *listen = getenv("IGNIS_LISTEN");
    if (ep && *ep)
        snprintf(c->endpoint, sizeof(c->endpoint), "%s", ep);
    else if (listen && *listen)
        snprintf(c->endpoint, sizeof(c->endpoint), "http://%s", listen);
    else
        snprintf(c->endpoint, sizeof(c->endpoint), "http://127.0.0.1:9070");
    size_t n = strlen(c->endpoint);
    while (n > 0 && c->endpoint[n - 1] == '/')
        c->endpoint[--n] = '\0';
    const char *h = strstr(c->endpoint, "://");
    snprintf(c->host, sizeof(c->host), "%s", h ? h + 3 : c->endpoint);
    c->host[strcspn(c->host, "/")] = '\0';
    const char *region = getenv("AWS_REGION");
    if (!region || !*region)
        region = getenv("IGNIS_REGION");
    snprintf(c->region, sizeof(c->region), "%s", region && *region ? region : "us-east-1");
    if (find_credentials(c) < 0) {
        fprintf(stderr, "ignis: no credentials: set AWS_ACCESS_KEY_ID and "
                        "AWS_SECRET_ACCESS_KEY (the server prints them on first start and keeps "
                        "them in <data dir>/credentials)\n");
        free(c);
        return NULL;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    c->curl = curl_easy_init();
    return c;
}

void client_free(struct client *c)
{
    if (!c)
        return;
    curl_easy_cleanup(c->curl);
    curl_global_cleanup();
    free(c);
}

static size_t collect(char *ptr, size_t size, size_t n, void *arg)
{
    return buf_append(arg, ptr, size * n) == 0 ? size * n : 0;
}

int client_call(struct client *c, const char *method, const char *path, const char *query,
                const char *service, const char *target, const char *content_type, const void *body,
                size_t len, struct client_response *out)
{
    memset(out, 0, sizeof(*out));
    char amz_date[17], payload_hash[65];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(amz_date, sizeof(amz_date), "%Y%m%dT%H%M%SZ", &tm);
    sha256_hex(body ? body : "", len, payload_hash);

    /* query pairs, raw */
    struct sigv4_kv q[64];
    size_t nq = 0;
    char qcopy[4096] = "";
    if (query && *query) {
        snprintf(qcopy, sizeof(qcopy), "%s", query);
        char *save = NULL;
        for (char *p = strtok_r(qcopy, "&", &save); p && nq < 64; p = strtok_r(NULL, "&", &save)) {
            char *eq = strchr(p, '=');
            if (eq)
                *eq = '\0';
            q[nq].name = p;
            q[nq].value = eq ? eq + 1 : NULL;
            nq++;
        }
    }
    struct sigv4_kv headers[4] = {
        {"host", c->host},
        {"x-amz-date", amz_date},
        {"x-amz-target", target},
    };
    size_t nh = target ? 3 : 2;
    struct sigv4_request req = {
        .method = method,
        .path = path,
        .query = q,
        .nquery = nq,
        .headers = headers,
        .nheaders = nh,
        .payload_hash = payload_hash,
    };
    struct buf auth = BUF_INIT;
    if (sigv4_authorization(&req, target ? "host;x-amz-date;x-amz-target" : "host;x-amz-date",
                            amz_date, c->region, service, c->access_key, c->secret, &auth) < 0) {
        fprintf(stderr, "ignis: cannot sign the request\n");
        return -1;
    }
    char url[8192];
    snprintf(url, sizeof(url), "%s%s%s%s", c->endpoint, path, query && *query ? "?" : "",
             query && *query ? query : "");
    struct curl_slist *hl = NULL;
    struct buf line = BUF_INIT;
    buf_printf(&line, "Authorization: %s", auth.data);
    hl = curl_slist_append(hl, line.data);
    buf_reset(&line);
    buf_printf(&line, "X-Amz-Date: %s", amz_date);
    hl = curl_slist_append(hl, line.data);
    if (target) {
        buf_reset(&line);
        buf_printf(&line, "X-Amz-Target: %s", target);
        hl = curl_slist_append(hl, line.data);
    }
    buf_reset(&line);
    buf_printf(&line, "Content-Type: %s", content_type ? content_type : "application/json");
    hl = curl_slist_append(hl, line.data);
    hl = curl_slist_append(hl, "Expect:");
    if (c->extra[0]) {
        hl = curl_slist_append(hl, c->extra);
        c->extra[0] = '\0';
    }
    buf_release(&line);
    buf_release(&auth);

    CURL *h = c->curl;
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    if (strcmp(method, "GET") != 0 && strcmp(method, "DELETE") != 0) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body ? body : "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    }
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &out->body);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, collect);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &out->headers);
    CURLcode rc = curl_easy_perform(h);
    curl_slist_free_all(hl);
    if (rc != CURLE_OK) {
        fprintf(stderr, "ignis: cannot reach %s: %s\n", c->endpoint, curl_easy_strerror(rc));
        client_response_release(out);
        return -1;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &out->status);
    return 0;
}

void client_response_release(struct client_response *r)
{
    buf_release(&r->body);
    buf_release(&r->headers);
}

int client_header(const struct client_response *r, const char *name, char *out, size_t size)
{
    size_t n = strlen(name);
    const char *p = r->headers.data;
    while (p && *p) {
        const char *eol = strstr(p, "\r\n");
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        if (len > n && strncasecmp(p, name, n) == 0 && p[n] == ':') {
            const char *v = p + n + 1;
            while (*v == ' ')
                v++;
            size_t vlen = len - (size_t)(v - p);
            if (vlen >= size)
                vlen = size - 1;
            memcpy(out, v, vlen);
            out[vlen] = '\0';
            return 0;
        }
        p = eol ? eol + 2 : NULL;
    }
    return -1;
}

void client_error_from(const struct client_response *r, struct client_error *err)
{
    memset(err, 0, sizeof(*err));
    err->status = r->status;
    json_t *doc = r->body.len ? json_loadb(r->body.data, r->body.len, 0, NULL) : NULL;
    if (client_header(r, "x-amzn-ErrorType", err->code, sizeof(err->code)) < 0) {
        const char *t = json_string_value(json_object_get(doc, "__type"));
        snprintf(err->code, sizeof(err->code), "%s", t ? t : "Error");
    }
    err->code[strcspn(err->code, ":")] = '\0';
    const char *msg = json_string_value(json_object_get(doc, "message"));
    if (!msg)
        msg = json_string_value(json_object_get(doc, "Message"));
    snprintf(err->message, sizeof(err->message), "%s", msg ? msg : "");
    json_decref(doc);
}

void client_error_print(const struct client_error *err)
{
    fprintf(stderr, "ignis: %s (HTTP %ld): %s\n", err->code, err->status, err->message);
}

json_t *client_json(struct client *c, const char *method, const char *path, const char *query,
                    const char *service, const char *target, json_t *body, struct client_error *err)
{
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    struct client_response r;
    struct client_error local;
    int rc = client_call(c, method, path, query, service, target,
                         target ? "application/x-amz-json-1.1" : "application/json", text,
                         text ? strlen(text) : 0, &r);
    free(text);
    if (rc < 0) {
        if (err) {
            memset(err, 0, sizeof(*err));
            snprintf(err->code, sizeof(err->code), "Unreachable");
        }
        return NULL;
    }
    json_t *doc = NULL;
    if (r.status >= 300) {
        client_error_from(&r, err ? err : &local);
        if (!err)
            client_error_print(&local);
    } else {
        doc = r.body.len ? json_loadb(r.body.data, r.body.len, 0, NULL) : json_object();
        if (!doc)
            fprintf(stderr, "ignis: the server answered something that is not JSON\n");
    }
    client_response_release(&r);
    return doc;
}
