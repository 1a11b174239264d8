/*
 * test_s3_notify: S3 notification configurations (src/services/s3/notify.c) without a daemon:
 * parsing PutBucketNotificationConfiguration bodies into the normalized JSON config and S3's
 * errors for bad ones (malformed XML, unknown events, bad filters, overlaps, queue/topic
 * destinations, DTDs), rendering it back, matching object changes (wildcards, prefix/suffix),
 * and the event record JSON (key encoding, removal events without size/eTag, sequencer).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/buf.h"
#include "services/s3/notify.h"

#define FN "arn:aws:lambda:us-east-1:000000000000:function:thumb"
#define OPEN "<NotificationConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
#define CLOSE "</NotificationConfiguration>"

static json_t *parse(const char *xml, const char **code, char *msg)
{
    return s3_notify_parse(xml, strlen(xml), code, msg, 256);
}

static void expect_error(const char *xml, const char *want_code, const char *want_msg)
{
    const char *code = NULL;
    char msg[256];
    json_t *cfg = parse(xml, &code, msg);
    assert_null(cfg);
    assert_non_null(code);
    assert_string_equal(code, want_code);
    if (want_msg)
        assert_string_equal(msg, want_msg);
}

static void test_parse_lambda_config(void **state)
{
    (void)state;
    const char *code = NULL;
    char msg[256];
    json_t *cfg =
        parse(OPEN "<CloudFunctionConfiguration><Id>thumbs</Id>"
                   "<CloudFunction>" FN "</CloudFunction>"
                   "<Event>s3:ObjectCreated:*</Event><Event>s3:ObjectRemoved:Delete</Event>"
                   "<Filter><S3Key><FilterRule><Name>prefix</Name><Value>images/</Value>"
                   "</FilterRule><FilterRule><Name>Suffix</Name><Value>.jpg</Value>"
                   "</FilterRule></S3Key></Filter></CloudFunctionConfiguration>" CLOSE,
              &code, msg);
    assert_non_null(cfg);
    json_t *want = json_loads(
        "{\"LambdaFunctionConfigurations\": [{\"Id\": \"thumbs\", \"LambdaFunctionArn\": \"" FN
        "\", \"Events\": [\"s3:ObjectCreated:*\", \"s3:ObjectRemoved:Delete\"], \"Filter\": "
        "{\"Key\": {\"FilterRules\": [{\"Name\": \"Prefix\", \"Value\": \"images/\"}, "
        "{\"Name\": \"Suffix\", \"Value\": \".jpg\"}]}}}]}",
        0, NULL);
    assert_true(json_equal(cfg, want));
    json_decref(want);
    json_decref(cfg);
}

static void test_parse_generates_ids_and_empty(void **state)
{
    (void)state;
    const char *code = NULL;
    char msg[256];
    json_t *cfg =
        parse(OPEN "<CloudFunctionConfiguration><CloudFunction>" FN "</CloudFunction>"
                   "<Event>s3:ObjectCreated:Put</Event></CloudFunctionConfiguration>" CLOSE,
              &code, msg);
    assert_non_null(cfg);
    const char *id = json_string_value(json_object_get(
        json_array_get(json_object_get(cfg, "LambdaFunctionConfigurations"), 0), "Id"));
    assert_non_null(id);
    assert_int_equal(strlen(id), 48); /* base64 of a 36-character UUID */
    json_decref(cfg);
    cfg = parse(OPEN CLOSE, &code, msg);
    assert_non_null(cfg);
    assert_int_equal(json_object_size(cfg), 0);
    json_decref(cfg);
    /* without a namespace and with the newer element name */
    cfg = parse("<NotificationConfiguration><LambdaFunctionConfiguration><Id>a</Id>"
                "<LambdaFunctionArn>" FN "</LambdaFunctionArn><Event>s3:ObjectRemoved:*</Event>"
                "</LambdaFunctionConfiguration></NotificationConfiguration>",
                &code, msg);
    assert_non_null(cfg);
    json_decref(cfg);
}

static void test_parse_errors(void **state)
{
    (void)state;
    expect_error("<NotificationConfiguration>", "MalformedXML", NULL);
    expect_error("", "MalformedXML", NULL);
    expect_error("<Other/>", "MalformedXML", NULL);
    expect_error(OPEN "<Bogus/>" CLOSE, "MalformedXML", NULL);
    expect_error(OPEN "<CloudFunctionConfiguration><CloudFunction>" FN "</CloudFunction>"
                      "</CloudFunctionConfiguration>" CLOSE,
                 "MalformedXML", NULL);
    expect_error(OPEN "<CloudFunctionConfiguration><CloudFunction>" FN "</CloudFunction>"
                      "<Event>s3:ObjectCreated:Nope</Event></CloudFunctionConfiguration>" CLOSE,
                 "InvalidArgument", "The event is not supported for notifications");
    expect_error(OPEN "<CloudFunctionConfiguration><CloudFunction>" FN "</CloudFunction>"
                      "<Event>s3:ObjectCreated:*</Event><Filter><S3Key><FilterRule><Name>middle"
                      "</Name><Value>x</Value></FilterRule></S3Key></Filter>"
                      "</CloudFunctionConfiguration>" CLOSE,
                 "InvalidArgument", "filter rule name must be either prefix or suffix");
    expect_error(OPEN "<CloudFunctionConfiguration><CloudFunction>" FN "</CloudFunction>"
                      "<Event>s3:ObjectCreated:*</Event><Filter><S3Key><FilterRule><Name>prefix"
                      "</Name><Value>a</Value></FilterRule><FilterRule><Name>Prefix</Name>"
                      "<Value>b</Value></FilterRule></S3Key></Filter>"
                      "</CloudFunctionConfiguration>" CLOSE,
                 "InvalidArgument", "Cannot specify more than one prefix rule in a filter.");
    expect_error(OPEN "<QueueConfiguration><Queue>arn:aws:sqs:us-east-1:000000000000:q</Queue>"
                      "<Event>s3:ObjectCreated:*</Event></QueueConfiguration>" CLOSE,
                 "InvalidArgument", "Unable to validate the following destination configurations");
    expect_error(OPEN "<EventBridgeConfiguration/>" CLOSE, "NotImplemented", NULL);
    assert_int_equal(s3_notify_error_status("NotImplemented"), 501);
    assert_int_equal(s3_notify_error_status("MalformedXML"), 400);
    /* a DTD (entity expansion, external entities) is refused outright */
    expect_error("<?xml version=\"1.0\"?><!DOCTYPE n [<!ENTITY x \"s3:ObjectCreated:*\">]>"
                 "<NotificationConfiguration><CloudFunctionConfiguration><CloudFunction>" FN
                 "</CloudFunction><Event>&x;</Event></CloudFunctionConfiguration>" CLOSE,
                 "MalformedXML", NULL);
}

static const char *overlap_msg =
    "Configurations overlap. Configurations on the same bucket cannot share a common event type.";

static void config_pair(char *out, size_t n, const char *e1, const char *p1, const char *e2,
                        const char *p2)
{
    snprintf(out, n,
             OPEN "<CloudFunctionConfiguration><Id>a</Id><CloudFunction>" FN "</CloudFunction>"
                  "<Event>%s</Event><Filter><S3Key><FilterRule><Name>prefix</Name><Value>%s"
                  "</Value></FilterRule></S3Key></Filter></CloudFunctionConfiguration>"
                  "<CloudFunctionConfiguration><Id>b</Id><CloudFunction>" FN "</CloudFunction>"
                  "<Event>%s</Event><Filter><S3Key><FilterRule><Name>prefix</Name><Value>%s"
                  "</Value></FilterRule></S3Key></Filter></CloudFunctionConfiguration>" CLOSE,
             e1, p1, e2, p2);
}

static void test_overlaps(void **state)
{
    (void)state;
    char xml[2048];
    config_pair(xml, sizeof(xml), "s3:ObjectCreated:*", "images/", "s3:ObjectCreated:Put",
                "images/big/");
    expect_error(xml, "InvalidArgument", overlap_msg);
    config_pair(xml, sizeof(xml), "s3:ObjectCreated:Put", "", "s3:ObjectCreated:Put", "x/");
    expect_error(xml, "InvalidArgument", overlap_msg);
    /* disjoint prefixes, or different event types: fine */
    const char *code;
    char msg[256];
    config_pair(xml, sizeof(xml), "s3:ObjectCreated:*", "images/", "s3:ObjectCreated:*", "docs/");
    json_t *cfg = parse(xml, &code, msg);
    assert_non_null(cfg);
    json_decref(cfg);
    config_pair(xml, sizeof(xml), "s3:ObjectCreated:*", "", "s3:ObjectRemoved:*", "");
    cfg = parse(xml, &code, msg);
    assert_non_null(cfg);
    json_decref(cfg);
    config_pair(xml, sizeof(xml), "s3:ObjectCreated:Put", "", "s3:ObjectCreated:Copy", "");
    cfg = parse(xml, &code, msg);
    assert_non_null(cfg);
    json_decref(cfg);
}

static void test_render_round_trip(void **state)
{
    (void)state;
    const char *code;
    char msg[256];
    json_t *cfg = parse(OPEN "<CloudFunctionConfiguration><Id>x&amp;y</Id>"
                             "<CloudFunction>" FN "</CloudFunction>"
                             "<Event>s3:ObjectCreated:*</Event><Filter><S3Key><FilterRule>"
                             "<Name>suffix</Name><Value>&lt;.jpg</Value></FilterRule></S3Key>"
                             "</Filter></CloudFunctionConfiguration>" CLOSE,
                        &code, msg);
    assert_non_null(cfg);
    size_t len = 0;
    char *xml = s3_notify_render(cfg, &len);
    assert_non_null(xml);
    assert_int_equal(strlen(xml), len);
    assert_non_null(strstr(xml, "<Id>x&amp;y</Id>"));
    assert_non_null(strstr(xml, "<Name>Suffix</Name><Value>&lt;.jpg</Value>"));
    json_t *again = s3_notify_parse(xml, len, &code, msg, sizeof(msg));
    assert_true(json_equal(cfg, again));
    json_decref(again);
    free(xml);
    json_decref(cfg);
    xml = s3_notify_render(NULL, &len);
    assert_non_null(xml);
    assert_non_null(strstr(xml, "<NotificationConfiguration "
                                "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"/>"));
    free(xml);
}

static void test_matching(void **state)
{
    (void)state;
    json_t *fc = json_loads("{\"Events\": [\"s3:ObjectCreated:*\", \"s3:ObjectRemoved:Delete\"],"
                            " \"Filter\": {\"Key\": {\"FilterRules\": [{\"Name\": \"Prefix\","
                            " \"Value\": \"in/\"}, {\"Name\": \"Suffix\", \"Value\": \".jpg\"}]}}}",
                            0, NULL);
    assert_true(s3_notify_matches(fc, "ObjectCreated:Put", "in/a.jpg"));
    assert_true(s3_notify_matches(fc, "ObjectCreated:CompleteMultipartUpload", "in/b/c.jpg"));
    assert_true(s3_notify_matches(fc, "ObjectRemoved:Delete", "in/a.jpg"));
    assert_false(s3_notify_matches(fc, "ObjectRemoved:DeleteMarkerCreated", "in/a.jpg"));
    assert_false(s3_notify_matches(fc, "ObjectCreated:Put", "out/a.jpg"));
    assert_false(s3_notify_matches(fc, "ObjectCreated:Put", "in/a.png"));
    assert_false(s3_notify_matches(fc, "ObjectCreated:Put", "in/"));
    json_decref(fc);
    fc = json_loads("{\"Events\": [\"s3:ObjectCreated:Put\"]}", 0, NULL);
    assert_true(s3_notify_matches(fc, "ObjectCreated:Put", "anything"));
    assert_false(s3_notify_matches(fc, "ObjectCreated:Copy", "anything"));
    json_decref(fc);
}

static void test_event_record(void **state)
{
    (void)state;
    struct s3_object_change c = {
        .bucket = "photos",
        .key = "in/my photo+1 (é).jpg",
        .event = "ObjectCreated:Put",
        .size = 1024,
        .etag = "d41d8cd98f00b204e9800998ecf8427e",
        .source_ip = "10.0.0.1",
        .request_id = "REQ1",
        .principal = "AWS:AKIAEXAMPLE",
        .sequence = 0x2a,
    };
    char *text = s3_notify_record("us-east-1", "cfg-1", &c, 0);
    assert_non_null(text);
    json_t *doc = json_loads(text, 0, NULL);
    free(text);
    json_t *r = json_array_get(json_object_get(doc, "Records"), 0);
    assert_int_equal(json_array_size(json_object_get(doc, "Records")), 1);
    assert_string_equal(json_string_value(json_object_get(r, "eventVersion")), "2.1");
    assert_string_equal(json_string_value(json_object_get(r, "eventSource")), "aws:s3");
    assert_string_equal(json_string_value(json_object_get(r, "awsRegion")), "us-east-1");
    assert_string_equal(json_string_value(json_object_get(r, "eventTime")),
                        "1970-01-01T00:00:00.000Z");
    assert_string_equal(json_string_value(json_object_get(r, "eventName")), "ObjectCreated:Put");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(r, "userIdentity"), "principalId")),
        "AWS:AKIAEXAMPLE");
    assert_string_equal(json_string_value(json_object_get(json_object_get(r, "requestParameters"),
                                                          "sourceIPAddress")),
                        "10.0.0.1");
    json_t *resp = json_object_get(r, "responseElements");
    assert_string_equal(json_string_value(json_object_get(resp, "x-amz-request-id")), "REQ1");
    assert_true(json_string_length(json_object_get(resp, "x-amz-id-2")) > 0);
    json_t *s3 = json_object_get(r, "s3");
    assert_string_equal(json_string_value(json_object_get(s3, "s3SchemaVersion")), "1.0");
    assert_string_equal(json_string_value(json_object_get(s3, "configurationId")), "cfg-1");
    json_t *b = json_object_get(s3, "bucket");
    assert_string_equal(json_string_value(json_object_get(b, "name")), "photos");
    assert_string_equal(json_string_value(json_object_get(b, "arn")), "arn:aws:s3:::photos");
    json_t *o = json_object_get(s3, "object");
    assert_string_equal(json_string_value(json_object_get(o, "key")),
                        "in/my+photo%2B1+%28%C3%A9%29.jpg");
    assert_int_equal(json_integer_value(json_object_get(o, "size")), 1024);
    assert_string_equal(json_string_value(json_object_get(o, "eTag")),
                        "d41d8cd98f00b204e9800998ecf8427e");
    assert_string_equal(json_string_value(json_object_get(o, "sequencer")), "00000000000000002A");
    json_decref(doc);

    c.event = "ObjectRemoved:Delete";
    c.size = 0;
    c.etag = NULL;
    text = s3_notify_record("us-east-1", "cfg-1", &c, 0);
    doc = json_loads(text, 0, NULL);
    free(text);
    o = json_object_get(json_object_get(json_array_get(json_object_get(doc, "Records"), 0), "s3"),
                        "object");
    assert_null(json_object_get(o, "size"));
    assert_null(json_object_get(o, "eTag"));
    assert_non_null(json_object_get(o, "sequencer"));
    json_decref(doc);
}

static void test_emit_without_lambda_is_harmless(void **state)
{
    (void)state;
    struct config cfg;
    memset(&cfg, 0, sizeof(cfg));
    snprintf(cfg.region, sizeof(cfg.region), "us-east-1");
    struct s3_notify *n = s3_notify_new(NULL, &cfg);
    assert_non_null(n);
    json_t *config =
        json_loads("{\"LambdaFunctionConfigurations\": [{\"Id\": \"a\", "
                   "\"LambdaFunctionArn\": \"" FN "\", \"Events\": [\"s3:ObjectCreated:*\"]}]}",
                   0, NULL);
    struct s3_object_change c = {.bucket = "b", .key = "k", .event = "ObjectCreated:Put"};
    s3_notify_emit(n, config, &c);
    const char *code;
    char msg[64];
    assert_int_equal(s3_notify_validate(n, config, &code, msg, sizeof(msg)), 0);
    json_decref(config);
    s3_notify_free(n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_lambda_config),
        cmocka_unit_test(test_parse_generates_ids_and_empty),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_overlaps),
        cmocka_unit_test(test_render_round_trip),
        cmocka_unit_test(test_matching),
        cmocka_unit_test(test_event_record),
        cmocka_unit_test(test_emit_without_lambda_is_harmless),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
