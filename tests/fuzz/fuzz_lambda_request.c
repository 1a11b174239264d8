/*
 * libFuzzer target for the Lambda request validation in services/lambda/function.c. The
 * input is split at its first newline: before it, a function reference as it would appear
 * in a request path (parse_function_ref); after it, a JSON document which, when it is an
 * object, goes to apply_configuration with creating=0 and 1, each on a fresh copy of the
 * configuration CreateFunction starts from (api.c) and on an empty object.
 *
 * Besides memory safety it checks: a parsed name is 1..64 characters of [A-Za-z0-9_-], the
 * qualifier is bounded, and parsing the name alone gives the name back; every error is a
 * 400 with a code and a bounded message; a configuration that was accepted has Timeout,
 * MemorySize and EphemeralStorage.Size within Lambda's bounds, a supported Runtime, and
 * (when creating) a Runtime and a Role, and still serialises.
 *
 * With IGNIS_FUZZ_STRICT=1 in the environment it also checks what the unit tests show
 * parse_function_ref gets wrong today (empty ':' parts skipped, %00 truncating the name,
 * qualifiers not validated), so the fuzzer can find more such inputs.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/util.h"
#include "services/lambda/lambda_internal.h"

static int strict = -1;

static int valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '-' || *s == '_'))
            return 0;
    return 1;
}

static void check_error(int rc, const struct param_error *err)
{
    if (rc != -1 || err->status != 400 || !err->code || !err->code[0] ||
        strnlen(err->message, sizeof(err->message)) >= sizeof(err->message) || !err->message[0])
        abort();
}

static void check_ref(const char *ref, size_t reflen)
{
    char name[65], qual[130];
    struct param_error err;
    memset(name, 0x55, sizeof(name));
    memset(qual, 0x55, sizeof(qual));
    memset(&err, 0, sizeof(err));
    int rc = parse_function_ref(ref, name, qual, &err);
    if (rc != 0) {
        check_error(rc, &err);
        return;
    }
    if (!valid_name(name) || strnlen(qual, sizeof(qual)) >= sizeof(qual))
        abort();
    /* the name on its own names the same function */
    char again[65], q2[130];
    if (parse_function_ref(name, again, q2, &err) != 0 || strcmp(again, name) != 0 || q2[0])
        abort();
    if (!strict)
        return;
    /* strict: the decoded reference ends in exactly "name" or "name:qualifier", holds no NUL,
     * and the qualifier is $LATEST or [A-Za-z0-9_-]+ */
    char *dec = malloc(reflen + 1);
    if (!dec)
        return;
    memcpy(dec, ref, reflen + 1);
    long n = percent_decode(dec, reflen);
    if (n < 0 || memchr(dec, '\0', (size_t)n))
        abort();
    dec[n] = '\0';
    char tail[200];
    snprintf(tail, sizeof(tail), "%s%s%s", name, qual[0] ? ":" : "", qual);
    size_t tl = strlen(tail);
    if ((size_t)n < tl || strcmp(dec + n - tl, tail) != 0)
        abort();
    if ((size_t)n > tl && dec[n - tl - 1] != ':')
        abort();
    if (qual[0] && strcmp(qual, "$LATEST") != 0 && !valid_name(qual))
        abort();
    free(dec);
}

static json_t *base_config(void)
{
    return json_pack("{s:s, s:s, s:s, s:I, s:I, s:s, s:{s:s}, s:s, s:[s], s:{s:i}, s:{s:s, s:s},"
                     " s:{s:s, s:s}}",
                     "FunctionName", "fn", "FunctionArn",
                     "arn:aws:lambda:us-east-1:000000000000:function:fn", "Description", "",
                     "Timeout", (json_int_t)3, "MemorySize", (json_int_t)128, "Version", "$LATEST",
                     "TracingConfig", "Mode", "PassThrough", "PackageType", "Zip", "Architectures",
                     "x86_64", "EphemeralStorage", "Size", 512, "SnapStart", "ApplyOn", "None",
                     "OptimizationStatus", "Off", "LoggingConfig", "LogFormat", "Text", "LogGroup",
                     "/aws/lambda/fn");
}

static void check_int_field(json_t *obj, const char *key, json_int_t min, json_int_t max)
{
    json_t *v = json_object_get(obj, key);
    if (!v)
        return;
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
        abort();
}

static void check_config(json_t *c, int creating)
{
    check_int_field(c, "Timeout", 1, 900);
    check_int_field(c, "MemorySize", 128, 10240);
    check_int_field(json_object_get(c, "EphemeralStorage"), "Size", 512, 10240);
    json_t *rt = json_object_get(c, "Runtime");
    if (rt) {
        const char *s = json_string_value(rt);
        if (!s || !(str_has_prefix(s, "python3.") || str_has_prefix(s, "nodejs") ||
                    str_has_prefix(s, "provided")))
            abort();
    }
    if (creating && (!json_is_string(rt) || !json_is_string(json_object_get(c, "Role"))))
        abort();
    const char *handler = json_string_value(json_object_get(c, "Handler"));
    if (handler && (strlen(handler) > 128 || strpbrk(handler, " \t\r\n")))
        abort();
    if (strict && handler && !handler[0])
        abort();
    json_t *vars = json_object_get(json_object_get(c, "Environment"), "Variables");
    if (vars) {
        const char *key;
        json_t *val;
        json_object_foreach(vars, key, val)
        {
            if (!json_is_string(val))
                abort();
        }
    }
    char *text = json_dumps(c, JSON_COMPACT);
    if (!text)
        abort();
    free(text);
}

static void check_apply(json_t *config, json_t *body, int creating)
{
    struct param_error err;
    memset(&err, 0, sizeof(err));
    int rc = apply_configuration(NULL, config, body, creating, &err);
    if (rc == 0)
        check_config(config, creating);
    else
        check_error(rc, &err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (strict < 0) {
        const char *e = getenv("IGNIS_FUZZ_STRICT");
        strict = e && *e == '1';
    }
    if (size > 65536)
        return 0;
    const uint8_t *nl = memchr(data, '\n', size);
    size_t reflen = nl ? (size_t)(nl - data) : size;
    char *ref = malloc(reflen + 1);
    if (!ref)
        return 0;
    memcpy(ref, data, reflen);
    ref[reflen] = '\0';
    check_ref(ref, strlen(ref));
    free(ref);

    if (!nl)
        return 0;
    const char *json = (const char *)nl + 1;
    size_t jlen = size - reflen - 1;
    json_t *body = json_loadb(json, jlen, 0, NULL);
    if (!json_is_object(body)) {
        json_decref(body);
        return 0;
    }
    for (int creating = 0; creating < 2; creating++) {
        json_t *config = base_config();
        if (!config)
            abort();
        check_apply(config, body, creating);
        json_decref(config);
        json_t *empty = json_object();
        check_apply(empty, body, creating);
        json_decref(empty);
    }
    json_decref(body);
    return 0;
}
