/*
 * libFuzzer target for edge/sigv4. The input is read as newline-separated
 * fields:
 *
 *   0 Authorization value   1 X-Amz-Date value   2 Date value
 *   3 raw path              4 raw query ("a=1&b") 5 Host value
 *   6 X-Extra value         7 flags: 's' = S3 rules, 'p' = POST
 *
 * The whole input also goes to sigv4_parse_authorization as one string. Besides
 * memory safety it checks two properties: a parsed credential is always
 * bounded and NUL-terminated, and whatever the client side manages to sign
 * (sigv4_authorization over the same path, query and headers) the server side
 * accepts (sigv4_verify returns SIGV4_OK).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "edge/sigv4.h"

#define NFIELDS 8
#define MAX_QUERY 1100 /* a little over the module's limit of 1000 */
#define FUZZ_DATE "20150830T123600Z"
#define FUZZ_NOW_MS 1440938160000LL
#define FUZZ_SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"

static const char *lookup(const char *access_key, void *arg)
{
    (void)arg;
    return strcmp(access_key, "AKIDEXAMPLE") == 0 ? FUZZ_SECRET : NULL;
}

static void check_bounded(const struct sigv4_credential *c)
{
    if (strnlen(c->access_key, sizeof(c->access_key)) >= sizeof(c->access_key) ||
        strnlen(c->date, sizeof(c->date)) >= sizeof(c->date) ||
        strnlen(c->region, sizeof(c->region)) >= sizeof(c->region) ||
        strnlen(c->service, sizeof(c->service)) >= sizeof(c->service) ||
        strnlen(c->signed_headers, sizeof(c->signed_headers)) >= sizeof(c->signed_headers) ||
        strnlen(c->signature, sizeof(c->signature)) >= sizeof(c->signature))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 16384)
        return 0;
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';

    struct sigv4_credential cred;
    if (sigv4_parse_authorization(text, &cred) == 0)
        check_bounded(&cred);

    char *field[NFIELDS];
    char *p = text;
    for (int i = 0; i < NFIELDS; i++) {
        field[i] = p;
        char *nl = p ? strchr(p, '\n') : NULL;
        if (nl)
            *nl = '\0';
        p = nl ? nl + 1 : NULL;
        if (!field[i])
            field[i] = "";
    }

    static struct sigv4_kv query[MAX_QUERY];
    size_t nquery = 0;
    if (field[4][0]) {
        for (char *q = field[4]; q && nquery < MAX_QUERY;) {
            char *amp = strchr(q, '&');
            if (amp)
                *amp = '\0';
            char *eq = strchr(q, '=');
            if (eq)
                *eq = '\0';
            query[nquery].name = q;
            query[nquery].value = eq ? eq + 1 : NULL;
            nquery++;
            q = amp ? amp + 1 : NULL;
        }
    }
    int s3 = strchr(field[7], 's') != NULL;
    const char *method = strchr(field[7], 'p') ? "POST" : "GET";
    const char *payload = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    /* Server side on the request as given. */
    struct sigv4_kv headers[6] = {
        {"Authorization", field[0]}, {"X-Amz-Date", field[1]}, {"Date", field[2]},
        {"Host", field[5]},          {"X-Extra", field[6]},
    };
    struct sigv4_request req = {method, field[3], query, nquery, headers, 5, payload, s3};
    struct sigv4_credential out;
    enum sigv4_result r = sigv4_verify(&req, lookup, NULL, FUZZ_NOW_MS, &out);
    if (r > SIGV4_EXPIRED)
        abort();
    check_bounded(&out);
    /* Without X-Amz-Date the Date header is used. */
    req.headers = (struct sigv4_kv[]){headers[0], headers[2], headers[3]};
    req.nheaders = 3;
    (void)sigv4_verify(&req, lookup, NULL, FUZZ_NOW_MS, NULL);

    /* Canonical request with the fuzzed field as the signed-header list. */
    struct buf canonical;
    buf_init(&canonical, 1 << 20);
    char sig[65];
    req.headers = headers;
    req.nheaders = 5;
    (void)sigv4_compute(&req, field[6], FUZZ_DATE, "us-east-1", "service", FUZZ_SECRET, sig,
                        &canonical);
    buf_release(&canonical);

    /* Round trip: what the client signs, the server accepts. */
    headers[0] = (struct sigv4_kv){"Host", field[5]};
    headers[1] = (struct sigv4_kv){"X-Amz-Date", FUZZ_DATE};
    headers[2] = (struct sigv4_kv){"X-Extra", field[6]};
    req.headers = headers;
    req.nheaders = 3;
    struct buf auth = BUF_INIT;
    if (sigv4_authorization(&req, "host;x-amz-date;x-extra", FUZZ_DATE, "us-east-1", "lambda",
                            "AKIDEXAMPLE", FUZZ_SECRET, &auth) == 0) {
        headers[3] = (struct sigv4_kv){"Authorization", auth.data};
        req.nheaders = 4;
        if (sigv4_verify(&req, lookup, NULL, FUZZ_NOW_MS, NULL) != SIGV4_OK)
            abort();
    }
    buf_release(&auth);
    free(text);
    return 0;
}
