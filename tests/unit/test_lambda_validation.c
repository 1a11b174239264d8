/*
 * test_lambda_validation: request validation of the Lambda API in
 * src/services/lambda/function.c: parse_function_ref (names, full and partial ARNs,
 * qualifiers, percent-encoding, lengths, characters) and apply_configuration (Runtime,
 * Role, Handler, Description, Timeout, MemorySize, Environment, EphemeralStorage,
 * TracingConfig, LoggingConfig, Architectures, unsupported features), checking the error
 * codes and AWS's message shapes. apply_configuration ignores its struct lambda, so NULL
 * is passed; configurations start from the document CreateFunction builds in api.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "core/buf.h"
#include "services/lambda/lambda_internal.h"

#define NAME_PATTERN_MSG                                                                           \
    "Member must satisfy regular expression pattern: "                                             \
    "(arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{2}(-gov)?-[a-z]+-\\d{1}:)?(\\d{12}:)?(function:)?("     \
    "[a-zA-Z0-9-_]+)(:(\\$LATEST|[a-zA-Z0-9-_]+))?"
#define ROLE_PATTERN_MSG                                                                           \
    "Member must satisfy regular expression pattern: "                                             \
    "arn:(aws[a-zA-Z-]*)?:iam::\\d{12}:role/?[a-zA-Z_0-9+=,.@\\-_/]+"
#define MANDATORY_MSG                                                                              \
    "Runtime and Handler are mandatory parameters for functions created with deployment "          \
    "packages."
#define ENV_PREFIX "Lambda was unable to configure your environment variables because the "
#define ROLE "arn:aws:iam::123456789012:role/lambda-role"
#define CREATE_BODY "\"Runtime\":\"python3.12\",\"Role\":\"" ROLE "\",\"Handler\":\"app.handler\""

/*=== helpers ===*/

/* The configuration CreateFunction starts from (api.c). */
static json_t *base_config(void)
{
    json_t *c = json_pack(
        "{s:s, s:s, s:s, s:I, s:I, s:s, s:{s:s}, s:s, s:[s], s:{s:i}, s:{s:s, s:s},"
        " s:{s:s, s:s}}",
        "FunctionName", "fn", "FunctionArn", "arn:aws:lambda:us-east-1:000000000000:function:fn",
        "Description", "", "Timeout", (json_int_t)3, "MemorySize", (json_int_t)128, "Version",
        "$LATEST", "TracingConfig", "Mode", "PassThrough", "PackageType", "Zip", "Architectures",
        "x86_64", "EphemeralStorage", "Size", 512, "SnapStart", "ApplyOn", "None",
        "OptimizationStatus", "Off", "LoggingConfig", "LogFormat", "Text", "LogGroup",
        "/aws/lambda/fn");
    assert_non_null(c);
    return c;
}

static json_t *parse(const char *text)
{
    json_error_t e;
    json_t *v = json_loads(text, 0, &e);
    if (!v)
        print_error("bad test JSON (%s): %s\n", e.text, text);
    assert_non_null(v);
    return v;
}

/* Applies body (JSON text) to config; returns apply_configuration's result. */
static int apply(json_t *config, const char *body, int creating, struct param_error *err)
{
    json_t *b = parse(body);
    memset(err, 0, sizeof(*err));
    int rc = apply_configuration(NULL, config, b, creating, err);
    json_decref(b);
    return rc;
}

static void expect_ok(json_t *config, const char *body, int creating)
{
    struct param_error err;
    int rc = apply(config, body, creating, &err);
    if (rc != 0)
        print_error("%s rejected: %s %s\n", body, err.code ? err.code : "(null)", err.message);
    assert_int_equal(rc, 0);
}

/* On a fresh base config: expects failure with this code and message (prefix if partial). */
static void expect_fail(const char *body, int creating, const char *code, const char *message,
                        int partial)
{
    json_t *c = base_config();
    struct param_error err;
    int rc = apply(c, body, creating, &err);
    if (rc == 0)
        print_error("%s accepted\n", body);
    assert_int_equal(rc, -1);
    assert_int_equal(err.status, 400);
    assert_non_null(err.code);
    assert_string_equal(err.code, code);
    if (partial) {
        if (strncmp(err.message, message, strlen(message)) != 0)
            print_error("message \"%s\" does not start with \"%s\"\n", err.message, message);
        assert_int_equal(strncmp(err.message, message, strlen(message)), 0);
    } else {
        assert_string_equal(err.message, message);
    }
    json_decref(c);
}

static void expect_validation(const char *body, int creating, const char *value, const char *field,
                              const char *constraint)
{
    char msg[1024];
    snprintf(msg, sizeof(msg),
             "1 validation error detected: Value '%s' at '%s' failed to satisfy constraint: %s",
             value, field, constraint);
    expect_fail(body, creating, "ValidationException", msg, 0);
}

static void expect_invalid(const char *body, int creating, const char *message, int partial)
{
    expect_fail(body, creating, "InvalidParameterValueException", message, partial);
}

static const char *cfg_s(json_t *config, const char *key)
{
    return json_string_value(json_object_get(config, key));
}

static json_int_t cfg_i(json_t *config, const char *key)
{
    json_t *v = json_object_get(config, key);
    assert_true(json_is_integer(v));
    return json_integer_value(v);
}

static char *repeat(char c, size_t n)
{
    char *s = malloc(n + 1);
    assert_non_null(s);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

/*=== parse_function_ref ===*/

static void ref_ok(const char *segment, const char *name, const char *qualifier)
{
    char n[65], q[130];
    struct param_error err;
    memset(n, 'Z', sizeof(n));
    memset(q, 'Z', sizeof(q));
    int rc = parse_function_ref(segment, n, q, &err);
    if (rc != 0)
        print_error("parse_function_ref(\"%s\") failed: %s\n", segment, err.message);
    assert_int_equal(rc, 0);
    assert_string_equal(n, name);
    assert_string_equal(q, qualifier);
    /* the qualifier buffer is optional */
    memset(n, 'Z', sizeof(n));
    assert_int_equal(parse_function_ref(segment, n, NULL, &err), 0);
    assert_string_equal(n, name);
}

static void ref_bad(const char *segment)
{
    char n[65], q[130];
    struct param_error err;
    memset(&err, 0, sizeof(err));
    int rc = parse_function_ref(segment, n, q, &err);
    if (rc == 0)
        print_error("parse_function_ref(\"%s\") accepted: name \"%s\" qualifier \"%s\"\n", segment,
                    n, q);
    assert_int_equal(rc, -1);
    assert_int_equal(err.status, 400);
    assert_non_null(err.code);
    assert_string_equal(err.code, "ValidationException");
    assert_non_null(strstr(err.message, "at 'functionName' failed to satisfy constraint: "));
    assert_int_equal(strncmp(err.message, "1 validation error detected: Value '", 36), 0);
}

static void test_ref_names(void **state)
{
    (void)state;
    ref_ok("foo", "foo", "");
    ref_ok("my-function_1", "my-function_1", "");
    ref_ok("A", "A", "");
    ref_ok("0123456789", "0123456789", "");
    char *n64 = repeat('a', 64);
    ref_ok(n64, n64, "");
    free(n64);
}

static void test_ref_qualifiers(void **state)
{
    (void)state;
    ref_ok("foo:$LATEST", "foo", "$LATEST");
    ref_ok("foo:1", "foo", "1");
    ref_ok("foo:prod-alias_2", "foo", "prod-alias_2");
    ref_ok("foo%3A%24LATEST", "foo", "$LATEST");
}

static void test_ref_full_arns(void **state)
{
    (void)state;
    ref_ok("arn:aws:lambda:us-east-1:000000000000:function:foo", "foo", "");
    ref_ok("arn:aws:lambda:us-east-1:000000000000:function:foo:$LATEST", "foo", "$LATEST");
    ref_ok("arn:aws:lambda:eu-west-2:123456789012:function:my-fn:7", "my-fn", "7");
    ref_ok("arn:aws-us-gov:lambda:us-gov-west-1:123456789012:function:g", "g", "");
    ref_ok("arn:aws-cn:lambda:cn-north-1:123456789012:function:c:live", "c", "live");
}

static void test_ref_partial_arns(void **state)
{
    (void)state;
    ref_ok("000000000000:function:foo", "foo", "");
    ref_ok("123456789012:function:foo:$LATEST", "foo", "$LATEST");
    ref_ok("123456789012:function:foo:3", "foo", "3");
}

static void test_ref_percent_encoded(void **state)
{
    (void)state;
    ref_ok("arn%3Aaws%3Alambda%3Aus-east-1%3A000000000000%3Afunction%3Afoo", "foo", "");
    ref_ok("arn%3aaws%3alambda%3aus-east-1%3a000000000000%3afunction%3afoo%3a%24LATEST", "foo",
           "$LATEST");
    ref_ok("000000000000%3Afunction%3Afoo", "foo", "");
    ref_ok("f%6F%6f", "foo", "");
    ref_bad("fo%o");
    ref_bad("foo%");
    ref_bad("foo%4");
    ref_bad("foo%zz");
    ref_bad("foo%2Fbar"); /* decodes to '/' */
    ref_bad("foo%253A1"); /* decoded once: "foo%3A1" */
}

static void test_ref_too_long(void **state)
{
    (void)state;
    char *n65 = repeat('a', 65);
    ref_bad(n65);
    char n[65];
    struct param_error err;
    assert_int_equal(parse_function_ref(n65, n, NULL, &err), -1);
    char msg[1024];
    snprintf(msg, sizeof(msg),
             "1 validation error detected: Value '%s' at 'functionName' failed to satisfy "
             "constraint: " NAME_PATTERN_MSG,
             n65);
    assert_string_equal(err.message, msg);
    free(n65);

    char arn[256];
    char *n80 = repeat('b', 80);
    snprintf(arn, sizeof(arn), "arn:aws:lambda:us-east-1:000000000000:function:%s", n80);
    ref_bad(arn);
    free(n80);

    /* segments far beyond any valid reference are refused without overflowing anything */
    char *huge = repeat('c', 5000);
    ref_bad(huge);
    assert_int_equal(parse_function_ref(huge, n, NULL, &err), -1);
    assert_true(strlen(err.message) < sizeof(err.message));
    free(huge);
}

static void test_ref_invalid_chars(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "foo.bar",
        "foo bar",
        "foo/bar",
        "f\xc3\xa9",
        "foo*",
        "foo\tbar",
        "foo'bar",
        "arn:aws:lambda:us-east-1:000000000000:function:foo.bar",
        "arn:aws:lambda:us-east-1:000000000000:function:foo:1:2",
        "arn:aws:lambda:us-east-1:000000000000:layer:foo",
        "arn:aws:s3:us-east-1:000000000000:function:foo",
        "a:b:c:d:e:f:g:h:i:j:k",
        ":",
        "::",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ref_bad(bad[i]);

    /* the message names the value and the pattern, AWS style */
    char n[65];
    struct param_error err;
    assert_int_equal(parse_function_ref("foo.bar", n, NULL, &err), -1);
    assert_string_equal(err.message,
                        "1 validation error detected: Value 'foo.bar' at 'functionName' failed "
                        "to satisfy constraint: " NAME_PATTERN_MSG);
}

/* Empty ':'-separated parts are not skipped: "foo::1", ":foo" and "foo:" are malformed. */
static void test_ref_empty_parts(void **state)
{
    (void)state;
    ref_bad("foo::1");
    ref_bad(":foo");
    ref_bad("foo:");
    ref_bad("123456789012::function:foo");
    ref_bad("arn:aws:lambda:us-east-1:000000000000:function::foo");
    ref_bad("arn:aws:lambda:us-east-1:000000000000:function:foo:");
}

/* A percent-encoded NUL must not truncate the name ("foo%00bar" is not "foo"). */
static void test_ref_encoded_nul(void **state)
{
    (void)state;
    ref_bad("foo%00bar");
    ref_bad("foo%00");
}

/* The qualifier follows the same pattern: $LATEST or [a-zA-Z0-9-_]+. */
static void test_ref_qualifier_chars(void **state)
{
    (void)state;
    ref_bad("foo:bad/q");
    ref_bad("foo:a.b");
    ref_bad("foo:$NOTLATEST");
    ref_bad("arn:aws:lambda:us-east-1:000000000000:function:foo:v%201");
}

/* A partial ARN's account is twelve digits; a full ARN needs its account too. */
static void test_ref_account_digits(void **state)
{
    (void)state;
    ref_bad("abc:function:foo");
    ref_bad("12345:function:foo");
    ref_bad("arn:aws:lambda:us-east-1:notanaccount:function:foo");
}

/*=== apply_configuration: create basics ===*/

static void test_create_minimal(void **state)
{
    (void)state;
    json_t *c = base_config();
    expect_ok(c, "{" CREATE_BODY "}", 1);
    assert_string_equal(cfg_s(c, "Runtime"), "python3.12");
    assert_string_equal(cfg_s(c, "Role"), ROLE);
    assert_string_equal(cfg_s(c, "Handler"), "app.handler");
    /* defaults untouched */
    assert_int_equal(cfg_i(c, "Timeout"), 3);
    assert_int_equal(cfg_i(c, "MemorySize"), 128);
    assert_string_equal(cfg_s(c, "Description"), "");
    json_t *lc = json_object_get(c, "LoggingConfig");
    assert_string_equal(cfg_s(lc, "LogFormat"), "Text");
    assert_null(json_object_get(lc, "ApplicationLogLevel"));
    assert_null(json_object_get(c, "Environment"));
    json_decref(c);
}

static void test_create_full(void **state)
{
    (void)state;
    json_t *c = base_config();
    expect_ok(c,
              "{" CREATE_BODY ",\"Description\":\"d\",\"Timeout\":900,\"MemorySize\":10240,"
              "\"Environment\":{\"Variables\":{\"A\":\"1\",\"B_2\":\"two\"}},"
              "\"EphemeralStorage\":{\"Size\":10240},\"TracingConfig\":{\"Mode\":\"Active\"},"
              "\"Architectures\":[\"x86_64\"],\"Layers\":[],\"VpcConfig\":{},"
              "\"DeadLetterConfig\":null}",
              1);
    assert_string_equal(cfg_s(c, "Description"), "d");
    assert_int_equal(cfg_i(c, "Timeout"), 900);
    assert_int_equal(cfg_i(c, "MemorySize"), 10240);
    json_t *vars = json_object_get(json_object_get(c, "Environment"), "Variables");
    assert_true(json_is_object(vars));
    assert_int_equal(json_object_size(vars), 2);
    assert_string_equal(cfg_s(vars, "A"), "1");
    assert_string_equal(cfg_s(vars, "B_2"), "two");
    assert_int_equal(cfg_i(json_object_get(c, "EphemeralStorage"), "Size"), 10240);
    assert_string_equal(cfg_s(json_object_get(c, "TracingConfig"), "Mode"), "Active");
    json_decref(c);
}

static void test_create_mandatory(void **state)
{
    (void)state;
    expect_invalid("{\"Role\":\"" ROLE "\",\"Handler\":\"a.b\"}", 1, MANDATORY_MSG, 0);
    expect_invalid("{\"Runtime\":\"nodejs20.x\",\"Role\":\"" ROLE "\"}", 1, MANDATORY_MSG, 0);
    /* provided runtimes need no handler */
    json_t *c = base_config();
    expect_ok(c, "{\"Runtime\":\"provided.al2023\",\"Role\":\"" ROLE "\"}", 1);
    assert_null(json_object_get(c, "Handler"));
    json_decref(c);
    /* updates need neither */
    c = base_config();
    json_t *before = json_deep_copy(c);
    expect_ok(c, "{}", 0);
    assert_true(json_equal(c, before));
    json_decref(before);
    json_decref(c);
}

/* AWS writes a missing member as: Value null at 'role' (no quotes around null). */
static void test_create_role_missing(void **state)
{
    (void)state;
    expect_fail("{\"Runtime\":\"python3.12\",\"Handler\":\"a.b\"}", 1, "ValidationException",
                "1 validation error detected: Value null at 'role' failed to satisfy constraint: "
                "Member must not be null",
                0);
}

/*=== Timeout, MemorySize, Description, Handler ===*/

static void test_timeout_bounds(void **state)
{
    (void)state;
    expect_validation("{\"Timeout\":901}", 0, "901", "timeout",
                      "Member must have value less than or equal to 900");
    expect_validation("{\"Timeout\":0}", 0, "0", "timeout",
                      "Member must have value greater than or equal to 1");
    expect_validation("{\"Timeout\":-5}", 0, "-5", "timeout",
                      "Member must have value greater than or equal to 1");
    expect_validation("{\"Timeout\":100000000000}", 0, "100000000000", "timeout",
                      "Member must have value less than or equal to 900");
    json_t *c = base_config();
    expect_ok(c, "{\"Timeout\":1}", 0);
    assert_int_equal(cfg_i(c, "Timeout"), 1);
    expect_ok(c, "{\"Timeout\":900}", 0);
    assert_int_equal(cfg_i(c, "Timeout"), 900);
    json_decref(c);
    /* not an integer */
    struct param_error err;
    c = base_config();
    assert_int_equal(apply(c, "{\"Timeout\":\"30\"}", 0, &err), -1);
    assert_int_equal(err.status, 400);
    assert_int_equal(apply(c, "{\"Timeout\":3.5}", 0, &err), -1);
    assert_int_equal(apply(c, "{\"Timeout\":true}", 0, &err), -1);
    assert_int_equal(cfg_i(c, "Timeout"), 3);
    json_decref(c);
}

static void test_memory_bounds(void **state)
{
    (void)state;
    expect_validation("{\"MemorySize\":127}", 0, "127", "memorySize",
                      "Member must have value greater than or equal to 128");
    expect_validation("{\"MemorySize\":10241}", 0, "10241", "memorySize",
                      "Member must have value less than or equal to 10240");
    json_t *c = base_config();
    expect_ok(c, "{\"MemorySize\":128}", 0);
    assert_int_equal(cfg_i(c, "MemorySize"), 128);
    expect_ok(c, "{\"MemorySize\":1769}", 0);
    assert_int_equal(cfg_i(c, "MemorySize"), 1769);
    expect_ok(c, "{\"MemorySize\":10240}", 0);
    assert_int_equal(cfg_i(c, "MemorySize"), 10240);
    struct param_error err;
    assert_int_equal(apply(c, "{\"MemorySize\":\"512\"}", 0, &err), -1);
    assert_int_equal(err.status, 400);
    assert_int_equal(cfg_i(c, "MemorySize"), 10240);
    json_decref(c);
}

static void test_description(void **state)
{
    (void)state;
    char body[600];
    char *d256 = repeat('d', 256), *d257 = repeat('d', 257);
    json_t *c = base_config();
    snprintf(body, sizeof(body), "{\"Description\":\"%s\"}", d256);
    expect_ok(c, body, 0);
    assert_string_equal(cfg_s(c, "Description"), d256);
    json_decref(c);
    snprintf(body, sizeof(body), "{\"Description\":\"%s\"}", d257);
    char value[260];
    snprintf(value, sizeof(value), "%.200s", d257); /* values are cut at 200 characters */
    expect_validation(body, 0, value, "description",
                      "Member must have length less than or equal to 256");
    free(d256);
    free(d257);
}

static void test_handler(void **state)
{
    (void)state;
    char body[600];
    char *h128 = repeat('h', 128), *h129 = repeat('h', 129);
    json_t *c = base_config();
    snprintf(body, sizeof(body), "{\"Handler\":\"%s\"}", h128);
    expect_ok(c, body, 0);
    assert_string_equal(cfg_s(c, "Handler"), h128);
    expect_ok(c, "{\"Handler\":\"index.handler\"}", 0);
    expect_ok(c, "{\"Handler\":\"src/app.Handler::handle\"}", 0);
    json_decref(c);
    snprintf(body, sizeof(body), "{\"Handler\":\"%s\"}", h129);
    expect_fail(body, 0, "ValidationException", "1 validation error detected: Value '", 1);
    expect_validation("{\"Handler\":\"app handler\"}", 0, "app handler", "handler",
                      "Member must satisfy regular expression pattern: [^\\s]+");
    expect_validation("{\"Handler\":\"app\\nhandler\"}", 0, "app\nhandler", "handler",
                      "Member must satisfy regular expression pattern: [^\\s]+");
    free(h128);
    free(h129);
}

/* [^\s]+ needs at least one character. */
static void test_handler_empty(void **state)
{
    (void)state;
    expect_validation("{\"Handler\":\"\"}", 0, "", "handler",
                      "Member must satisfy regular expression pattern: [^\\s]+");
}

/*=== Runtime ===*/

static void test_runtimes(void **state)
{
    (void)state;
    static const char *const ok[] = {
        "python3.8",  "python3.9",    "python3.10",      "python3.11", "python3.12",
        "python3.13", "nodejs16.x",   "nodejs18.x",      "nodejs20.x", "nodejs22.x",
        "provided",   "provided.al2", "provided.al2023",
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        json_t *c = base_config();
        char body[256];
        snprintf(body, sizeof(body),
                 "{\"Runtime\":\"%s\",\"Role\":\"" ROLE "\",\"Handler\":\"a.b\"}", ok[i]);
        expect_ok(c, body, 1);
        assert_string_equal(cfg_s(c, "Runtime"), ok[i]);
        json_decref(c);
    }
    /* an update may change only the runtime */
    json_t *c = base_config();
    expect_ok(c, "{\"Runtime\":\"nodejs22.x\"}", 0);
    assert_string_equal(cfg_s(c, "Runtime"), "nodejs22.x");
    json_decref(c);
}

static void test_runtime_unknown(void **state)
{
    (void)state;
    static const char *const bad[] = {"python4.0",   "java21", "PYTHON3.12",
                                      "python3.12 ", "",       "nodejs20"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char body[128], prefix[256];
        snprintf(body, sizeof(body), "{\"Runtime\":\"%s\"}", bad[i]);
        snprintf(prefix, sizeof(prefix),
                 "1 validation error detected: Value '%s' at 'runtime' failed to satisfy "
                 "constraint: Member must satisfy enum value set: [",
                 bad[i]);
        expect_fail(body, 0, "ValidationException", prefix, 1);
        expect_fail(body, 1, "ValidationException", prefix, 1);
    }
    struct param_error err;
    json_t *c = base_config();
    assert_int_equal(apply(c, "{\"Runtime\":42}", 0, &err), -1);
    assert_int_equal(err.status, 400);
    assert_null(json_object_get(c, "Runtime"));
    json_decref(c);
}

static void test_runtime_deprecated(void **state)
{
    (void)state;
    static const char *const old[] = {"python2.7",  "python3.6",  "python3.7",     "nodejs",
                                      "nodejs4.3",  "nodejs6.10", "nodejs8.10",    "nodejs10.x",
                                      "nodejs12.x", "nodejs14.x", "nodejs4.3-edge"};
    for (size_t i = 0; i < sizeof(old) / sizeof(old[0]); i++) {
        char body[128], prefix[256];
        snprintf(body, sizeof(body), "{\"Runtime\":\"%s\"}", old[i]);
        snprintf(prefix, sizeof(prefix),
                 "The runtime parameter of %s is no longer supported for creating or updating "
                 "AWS Lambda functions.",
                 old[i]);
        expect_invalid(body, 0, prefix, 1);
        expect_invalid(body, 1, prefix, 1);
    }
}

/*=== Role ===*/

static void test_roles(void **state)
{
    (void)state;
    static const char *const ok[] = {
        ROLE,
        "arn:aws:iam::123456789012:role/service-role/my-role-abc123",
        "arn:aws-cn:iam::123456789012:role/r",
        "arn:aws-us-gov:iam::123456789012:role/r",
        "arn:aws:iam::123456789012:role/a+b=c,d.e@f-g_h",
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        json_t *c = base_config();
        char body[256];
        snprintf(body, sizeof(body), "{\"Role\":\"%s\"}", ok[i]);
        expect_ok(c, body, 0);
        assert_string_equal(cfg_s(c, "Role"), ok[i]);
        json_decref(c);
    }
    static const char *const bad[] = {
        "role",
        "",
        "arn:aws:iam::12345678901:role/r",
        "arn:aws:iam::1234567890123:role/r",
        "arn:aws:iam::123456789012:user/r",
        "arn:aws:iam::123456789012:role/",
        "arn:aws:iam::123456789012:role",
        "arn:aws:iam::123456789012:role/a b",
        "arn:aws:iam::123456789012:role/a*b",
        "arn:aws:s3::123456789012:role/r",
        "arn:aws:iam:us-east-1:123456789012:role/r",
        "arn:gcp:iam::123456789012:role/r",
        "arn:aws:iam::abcdefghijkl:role/r",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char body[256];
        snprintf(body, sizeof(body), "{\"Role\":\"%s\"}", bad[i]);
        expect_validation(body, 0, bad[i], "role", ROLE_PATTERN_MSG);
    }
    struct param_error err;
    json_t *c = base_config();
    assert_int_equal(apply(c, "{\"Role\":[\"" ROLE "\"]}", 0, &err), -1);
    assert_int_equal(err.status, 400);
    json_decref(c);
}

/*=== Environment ===*/

static void test_env_valid(void **state)
{
    (void)state;
    json_t *c = base_config();
    expect_ok(c, "{\"Environment\":{\"Variables\":{\"STAGE\":\"prod\",\"x_1\":\"\"}}}", 0);
    json_t *vars = json_object_get(json_object_get(c, "Environment"), "Variables");
    assert_int_equal(json_object_size(vars), 2);
    assert_string_equal(cfg_s(vars, "STAGE"), "prod");
    assert_string_equal(cfg_s(vars, "x_1"), "");
    /* an Environment without Variables clears them */
    expect_ok(c, "{\"Environment\":{}}", 0);
    vars = json_object_get(json_object_get(c, "Environment"), "Variables");
    assert_true(json_is_object(vars));
    assert_int_equal(json_object_size(vars), 0);
    json_decref(c);
}

static void test_env_reserved(void **state)
{
    (void)state;
    static const char *const reserved[] = {
        "AWS_DEFAULT_REGION",
        "AWS_REGION",
        "AWS_EXECUTION_ENV",
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        "AWS_LAMBDA_FUNCTION_VERSION",
        "AWS_LAMBDA_INITIALIZATION_TYPE",
        "AWS_LAMBDA_LOG_GROUP_NAME",
        "AWS_LAMBDA_LOG_STREAM_NAME",
        "AWS_ACCESS_KEY",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_LAMBDA_RUNTIME_API",
        "LAMBDA_TASK_ROOT",
        "LAMBDA_RUNTIME_DIR",
    };
    for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++) {
        char body[256], msg[512];
        snprintf(body, sizeof(body),
                 "{\"Environment\":{\"Variables\":{\"OK\":\"1\",\"%s\":\"x\"}}}", reserved[i]);
        snprintf(msg, sizeof(msg),
                 ENV_PREFIX "environment variables you have provided contains reserved keys that "
                            "are currently not supported for modification. Reserved keys used in "
                            "this request: %s",
                 reserved[i]);
        expect_invalid(body, 0, msg, 0);
    }
    /* several reserved keys are all named */
    json_t *c = base_config();
    struct param_error err;
    assert_int_equal(apply(c,
                           "{\"Environment\":{\"Variables\":{\"AWS_REGION\":\"a\","
                           "\"LAMBDA_TASK_ROOT\":\"b\"}}}",
                           0, &err),
                     -1);
    assert_string_equal(err.code, "InvalidParameterValueException");
    assert_non_null(strstr(err.message, "AWS_REGION"));
    assert_non_null(strstr(err.message, "LAMBDA_TASK_ROOT"));
    /* the reserved names that start with '_' are refused too (they are not even valid keys) */
    assert_int_equal(apply(c, "{\"Environment\":{\"Variables\":{\"_HANDLER\":\"x\"}}}", 0, &err),
                     -1);
    assert_string_equal(err.code, "InvalidParameterValueException");
    assert_non_null(strstr(err.message, "_HANDLER"));
    assert_int_equal(
        apply(c, "{\"Environment\":{\"Variables\":{\"_X_AMZN_TRACE_ID\":\"x\"}}}", 0, &err), -1);
    assert_string_equal(err.code, "InvalidParameterValueException");
    /* similar names are fine */
    expect_ok(c, "{\"Environment\":{\"Variables\":{\"AWS_REGIONS\":\"a\",\"PATH\":\"/x\"}}}", 0);
    json_decref(c);
}

static void test_env_invalid(void **state)
{
    (void)state;
    const char *bad_key = ENV_PREFIX "environment variables you have provided contains invalid "
                                     "keys: ";
    char msg[512];
    snprintf(msg, sizeof(msg), "%s1ABC", bad_key);
    expect_invalid("{\"Environment\":{\"Variables\":{\"1ABC\":\"x\"}}}", 0, msg, 0);
    snprintf(msg, sizeof(msg), "%sA-B", bad_key);
    expect_invalid("{\"Environment\":{\"Variables\":{\"A-B\":\"x\"}}}", 0, msg, 0);
    snprintf(msg, sizeof(msg), "%s_A", bad_key);
    expect_invalid("{\"Environment\":{\"Variables\":{\"_A\":\"x\"}}}", 0, msg, 0);
    snprintf(msg, sizeof(msg), "%s", bad_key);
    expect_invalid("{\"Environment\":{\"Variables\":{\"\":\"x\"}}}", 0, msg, 0);
    expect_invalid("{\"Environment\":{\"Variables\":{\"A B\":\"x\"}}}", 0, bad_key, 1);
    /* shapes */
    struct param_error err;
    json_t *c = base_config();
    assert_int_equal(apply(c, "{\"Environment\":{\"Variables\":{\"A\":1}}}", 0, &err), -1);
    assert_string_equal(err.code, "InvalidParameterValueException");
    assert_int_equal(apply(c, "{\"Environment\":{\"Variables\":[\"A=1\"]}}", 0, &err), -1);
    assert_int_equal(apply(c, "{\"Environment\":\"A=1\"}", 0, &err), -1);
    assert_int_equal(err.status, 400);
    assert_null(json_object_get(c, "Environment"));
    json_decref(c);
}

static void test_env_size(void **state)
{
    (void)state;
    const char *prefix = ENV_PREFIX "environment variables you have provided exceeded the 4KB "
                                    "limit.";
    char *big = repeat('x', 5000);
    size_t size = strlen(big) + 64;
    char *body = malloc(size);
    assert_non_null(body);
    snprintf(body, size, "{\"Environment\":{\"Variables\":{\"BIG\":\"%s\"}}}", big);
    expect_invalid(body, 0, prefix, 1);
    free(big);
    free(body);

    /* many small variables add up */
    struct buf b = BUF_INIT;
    assert_int_equal(buf_puts(&b, "{\"Environment\":{\"Variables\":{"), 0);
    for (int i = 0; i < 50; i++)
        assert_int_equal(buf_printf(&b, "%s\"V%02d\":\"%0100d\"", i ? "," : "", i, 0), 0);
    assert_int_equal(buf_puts(&b, "}}}"), 0);
    expect_invalid(b.data, 0, prefix, 1);
    buf_release(&b);

    /* well under the limit */
    json_t *c = base_config();
    char *mid = repeat('y', 3000);
    body = malloc(3100);
    assert_non_null(body);
    snprintf(body, 3100, "{\"Environment\":{\"Variables\":{\"MID\":\"%s\"}}}", mid);
    expect_ok(c, body, 0);
    free(mid);
    free(body);
    json_decref(c);
}

/*=== EphemeralStorage, TracingConfig ===*/

static void test_ephemeral_storage(void **state)
{
    (void)state;
    json_t *c = base_config();
    expect_ok(c, "{\"EphemeralStorage\":{\"Size\":2048}}", 0);
    assert_int_equal(cfg_i(json_object_get(c, "EphemeralStorage"), "Size"), 2048);
    json_decref(c);
    expect_validation("{\"EphemeralStorage\":{\"Size\":511}}", 0, "511", "ephemeralStorage.size",
                      "Member must have value greater than or equal to 512");
    expect_validation("{\"EphemeralStorage\":{\"Size\":10241}}", 0, "10241",
                      "ephemeralStorage.size",
                      "Member must have value less than or equal to 10240");
}

static void test_tracing(void **state)
{
    (void)state;
    json_t *c = base_config();
    expect_ok(c, "{\"TracingConfig\":{\"Mode\":\"Active\"}}", 0);
    assert_string_equal(cfg_s(json_object_get(c, "TracingConfig"), "Mode"), "Active");
    expect_ok(c, "{\"TracingConfig\":{\"Mode\":\"PassThrough\"}}", 0);
    assert_string_equal(cfg_s(json_object_get(c, "TracingConfig"), "Mode"), "PassThrough");
    json_decref(c);
    expect_validation("{\"TracingConfig\":{\"Mode\":\"active\"}}", 0, "active",
                      "tracingConfig.mode",
                      "Member must satisfy enum value set: [Active, PassThrough]");
}

/*=== LoggingConfig ===*/

#define LOG_TEXT_LEVEL_MSG                                                                         \
    "LogLevel is not supported when LogFormat is set to \"Text\". Remove LogLevel from your "      \
    "request or change the LogFormat to \"JSON\" and try again."

static void test_logging_json_defaults(void **state)
{
    (void)state;
    json_t *c = base_config();
    expect_ok(c, "{\"LoggingConfig\":{\"LogFormat\":\"JSON\"}}", 0);
    json_t *lc = json_object_get(c, "LoggingConfig");
    assert_string_equal(cfg_s(lc, "LogFormat"), "JSON");
    assert_string_equal(cfg_s(lc, "ApplicationLogLevel"), "INFO");
    assert_string_equal(cfg_s(lc, "SystemLogLevel"), "INFO");
    assert_string_equal(cfg_s(lc, "LogGroup"), "/aws/lambda/fn");

    /* with JSON in place a level alone may change */
    expect_ok(c, "{\"LoggingConfig\":{\"ApplicationLogLevel\":\"ERROR\"}}", 0);
    lc = json_object_get(c, "LoggingConfig");
    assert_string_equal(cfg_s(lc, "LogFormat"), "JSON");
    assert_string_equal(cfg_s(lc, "ApplicationLogLevel"), "ERROR");
    assert_string_equal(cfg_s(lc, "SystemLogLevel"), "INFO");

    /* back to Text drops the levels */
    expect_ok(c, "{\"LoggingConfig\":{\"LogFormat\":\"Text\"}}", 0);
    lc = json_object_get(c, "LoggingConfig");
    assert_string_equal(cfg_s(lc, "LogFormat"), "Text");
    assert_null(json_object_get(lc, "ApplicationLogLevel"));
    assert_null(json_object_get(lc, "SystemLogLevel"));
    assert_string_equal(cfg_s(lc, "LogGroup"), "/aws/lambda/fn");
    json_decref(c);
}

static void test_logging_explicit_levels(void **state)
{
    (void)state;
    json_t *c = base_config();
    expect_ok(c,
              "{\"LoggingConfig\":{\"LogFormat\":\"JSON\",\"ApplicationLogLevel\":\"DEBUG\","
              "\"SystemLogLevel\":\"WARN\"}}",
              0);
    json_t *lc = json_object_get(c, "LoggingConfig");
    assert_string_equal(cfg_s(lc, "ApplicationLogLevel"), "DEBUG");
    assert_string_equal(cfg_s(lc, "SystemLogLevel"), "WARN");
    /* the system log has three levels only (Lambda's SystemLogLevel enum) */
    static const char *const levels[] = {"DEBUG", "INFO", "WARN"};
    for (size_t i = 0; i < 3; i++) {
        char body[128];
        snprintf(body, sizeof(body), "{\"LoggingConfig\":{\"SystemLogLevel\":\"%s\"}}", levels[i]);
        expect_ok(c, body, 0);
        assert_string_equal(cfg_s(json_object_get(c, "LoggingConfig"), "SystemLogLevel"),
                            levels[i]);
    }
    json_decref(c);
    expect_fail("{\"LoggingConfig\":{\"LogFormat\":\"JSON\",\"SystemLogLevel\":\"TRACE\"}}", 0,
                "ValidationException",
                "1 validation error detected: Value 'TRACE' at 'loggingConfig.systemLogLevel' "
                "failed to satisfy constraint: Member must satisfy enum value set: [DEBUG, INFO, "
                "WARN]",
                0);
}

static void test_logging_text_with_level(void **state)
{
    (void)state;
    expect_invalid("{\"LoggingConfig\":{\"ApplicationLogLevel\":\"DEBUG\"}}", 0, LOG_TEXT_LEVEL_MSG,
                   0);
    expect_invalid("{\"LoggingConfig\":{\"LogFormat\":\"Text\",\"SystemLogLevel\":\"WARN\"}}", 0,
                   LOG_TEXT_LEVEL_MSG, 0);
    /* from JSON to Text while naming a level */
    json_t *c = base_config();
    expect_ok(c, "{\"LoggingConfig\":{\"LogFormat\":\"JSON\"}}", 0);
    struct param_error err;
    assert_int_equal(apply(c,
                           "{\"LoggingConfig\":{\"LogFormat\":\"Text\",\"ApplicationLogLevel\":"
                           "\"INFO\"}}",
                           0, &err),
                     -1);
    assert_string_equal(err.code, "InvalidParameterValueException");
    assert_string_equal(err.message, LOG_TEXT_LEVEL_MSG);
    json_decref(c);
}

static void test_logging_bad_values(void **state)
{
    (void)state;
    expect_validation("{\"LoggingConfig\":{\"LogFormat\":\"XML\"}}", 0, "XML",
                      "loggingConfig.logFormat",
                      "Member must satisfy enum value set: [Text, JSON]");
    expect_validation("{\"LoggingConfig\":{\"LogFormat\":\"json\"}}", 0, "json",
                      "loggingConfig.logFormat",
                      "Member must satisfy enum value set: [Text, JSON]");
    expect_fail("{\"LoggingConfig\":{\"LogFormat\":\"JSON\",\"ApplicationLogLevel\":\"VERBOSE\"}}",
                0, "ValidationException",
                "1 validation error detected: Value 'VERBOSE' at 'loggingConfig", 1);
    expect_fail("{\"LoggingConfig\":{\"LogFormat\":\"JSON\",\"SystemLogLevel\":\"info\"}}", 0,
                "ValidationException",
                "1 validation error detected: Value 'info' at 'loggingConfig", 1);
}

/*=== Architectures, unsupported features ===*/

#define ARCH_CONSTRAINT                                                                            \
    "Member must satisfy constraint: [Member must satisfy enum value set: [x86_64, arm64]]"

static void test_architectures(void **state)
{
    (void)state;
    json_t *c = base_config();
    expect_ok(c, "{\"Architectures\":[\"x86_64\"]}", 0);
    expect_ok(c, "{" CREATE_BODY ",\"Architectures\":[\"x86_64\"]}", 1);
    json_decref(c);
    expect_invalid("{\"Architectures\":[\"arm64\"]}", 0,
                   "Architecture arm64 is not supported by this Ignis host (x86_64).", 0);
    expect_validation("{\"Architectures\":[\"sparc\"]}", 0, "sparc", "architectures",
                      ARCH_CONSTRAINT);
    expect_validation("{\"Architectures\":[\"x86_64\",\"arm64\"]}", 0, "x86_64", "architectures",
                      ARCH_CONSTRAINT);
    expect_fail("{\"Architectures\":[]}", 0, "ValidationException",
                "1 validation error detected: Value ", 1);
    expect_fail("{\"Architectures\":\"x86_64\"}", 0, "ValidationException",
                "1 validation error detected: Value ", 1);
    expect_fail("{\"Architectures\":[5]}", 0, "ValidationException",
                "1 validation error detected: Value ", 1);
}

static void test_unsupported_features(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        {"VpcConfig", "{\"SubnetIds\":[\"subnet-1\"]}"},
        {"DeadLetterConfig", "{\"TargetArn\":\"arn:aws:sqs:us-east-1:000000000000:q\"}"},
        {"KMSKeyArn", "\"arn:aws:kms:us-east-1:000000000000:key/k\""},
        {"Layers", "[\"arn:aws:lambda:us-east-1:000000000000:layer:l:1\"]"},
        {"FileSystemConfigs", "[{\"Arn\":\"a\",\"LocalMountPath\":\"/mnt/x\"}]"},
        {"ImageConfig", "{\"Command\":[\"x\"]}"},
        {"CodeSigningConfigArn", "\"arn:aws:lambda:us-east-1:000000000000:code-signing-config:c\""},
        {"SnapStart", "{\"ApplyOn\":\"PublishedVersions\"}"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char body[256], msg[128];
        snprintf(body, sizeof(body), "{\"%s\":%s}", cases[i][0], cases[i][1]);
        snprintf(msg, sizeof(msg), "%s is not supported by Ignis yet.", cases[i][0]);
        expect_invalid(body, 0, msg, 0);
        /* empty or null is the same as absent */
        json_t *c = base_config();
        snprintf(body, sizeof(body), "{\"%s\":null}", cases[i][0]);
        expect_ok(c, body, 0);
        json_decref(c);
    }
    json_t *c = base_config();
    expect_ok(c, "{\"Layers\":[],\"VpcConfig\":{},\"FileSystemConfigs\":[]}", 0);
    json_decref(c);
}

/* With several bad fields, the first one checked is the one reported. */
static void test_first_error_wins(void **state)
{
    (void)state;
    expect_validation("{\"Timeout\":0,\"MemorySize\":1}", 0, "0", "timeout",
                      "Member must have value greater than or equal to 1");
    expect_validation("{\"Runtime\":\"cobol\",\"Timeout\":0}", 0, "cobol", "runtime",
                      "Member must satisfy enum value set: [python3.8, python3.9, python3.10, "
                      "python3.11, python3.12, python3.13, nodejs16.x, nodejs18.x, nodejs20.x, "
                      "nodejs22.x, provided, provided.al2, provided.al2023]");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ref_names),
        cmocka_unit_test(test_ref_qualifiers),
        cmocka_unit_test(test_ref_full_arns),
        cmocka_unit_test(test_ref_partial_arns),
        cmocka_unit_test(test_ref_percent_encoded),
        cmocka_unit_test(test_ref_too_long),
        cmocka_unit_test(test_ref_invalid_chars),
        cmocka_unit_test(test_ref_empty_parts),
        cmocka_unit_test(test_ref_encoded_nul),
        cmocka_unit_test(test_ref_qualifier_chars),
        cmocka_unit_test(test_ref_account_digits),
        cmocka_unit_test(test_create_minimal),
        cmocka_unit_test(test_create_full),
        cmocka_unit_test(test_create_mandatory),
        cmocka_unit_test(test_create_role_missing),
        cmocka_unit_test(test_timeout_bounds),
        cmocka_unit_test(test_memory_bounds),
        cmocka_unit_test(test_description),
        cmocka_unit_test(test_handler),
        cmocka_unit_test(test_handler_empty),
        cmocka_unit_test(test_runtimes),
        cmocka_unit_test(test_runtime_unknown),
        cmocka_unit_test(test_runtime_deprecated),
        cmocka_unit_test(test_roles),
        cmocka_unit_test(test_env_valid),
        cmocka_unit_test(test_env_reserved),
        cmocka_unit_test(test_env_invalid),
        cmocka_unit_test(test_env_size),
        cmocka_unit_test(test_ephemeral_storage),
        cmocka_unit_test(test_tracing),
        cmocka_unit_test(test_logging_json_defaults),
        cmocka_unit_test(test_logging_explicit_levels),
        cmocka_unit_test(test_logging_text_with_level),
        cmocka_unit_test(test_logging_bad_values),
        cmocka_unit_test(test_architectures),
        cmocka_unit_test(test_unsupported_features),
        cmocka_unit_test(test_first_error_wins),
    };
    return cmocka_run_group_tests_name("lambda_validation", tests, NULL, NULL);
}
