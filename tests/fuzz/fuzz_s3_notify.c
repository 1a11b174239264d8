/*
 * libFuzzer target for s3/notify's parser of PutBucketNotificationConfiguration bodies
 * (s3_notify_parse, libxml2 underneath). The input is copied into a buffer of exactly its
 * size (no NUL after it) so an over-read is caught. It checks:
 *
 *   - a refusal always carries an error code and a message, and never a config;
 *   - an accepted config renders (s3_notify_render) to XML that parses back to the same
 *     config (ids included), and every configuration in it has an Id, an ARN and at least
 *     one event;
 *   - matching every configuration against a few keys and events, and building an event
 *     record for them, never crashes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "services/s3/notify.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536)
        return 0;
    char *in = malloc(size ? size : 1);
    if (!in)
        return 0;
    memcpy(in, data, size);
    const char *code = NULL;
    char msg[256];
    json_t *cfg = s3_notify_parse(in, size, &code, msg, sizeof(msg));
    free(in);
    if (!cfg) {
        if (!code || !*code || !msg[0])
            abort();
        return 0;
    }
    size_t len = 0;
    char *xml = s3_notify_render(cfg, &len);
    if (!xml)
        abort();
    const char *code2 = NULL;
    json_t *again = s3_notify_parse(xml, len, &code2, msg, sizeof(msg));
    if (!again || !json_equal(cfg, again))
        abort();
    json_decref(again);
    free(xml);
    static const char *const keys[] = {"", "a", "images/x.jpg", "a b/%c.JPG"};
    static const char *const events[] = {"ObjectCreated:Put", "ObjectRemoved:Delete"};
    size_t i;
    json_t *fc;
    json_array_foreach(json_object_get(cfg, "LambdaFunctionConfigurations"), i, fc)
    {
        if (!json_is_string(json_object_get(fc, "Id")) ||
            !json_is_string(json_object_get(fc, "LambdaFunctionArn")) ||
            json_array_size(json_object_get(fc, "Events")) == 0)
            abort();
        for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
            for (size_t e = 0; e < sizeof(events) / sizeof(events[0]); e++) {
                if (!s3_notify_matches(fc, events[e], keys[k]))
                    continue;
                struct s3_object_change c = {.bucket = "b", .key = keys[k], .event = events[e]};
                char *rec = s3_notify_record("us-east-1",
                                             json_string_value(json_object_get(fc, "Id")), &c, 0);
                if (!rec)
                    abort();
                free(rec);
            }
        }
    }
    json_decref(cfg);
    return 0;
}
