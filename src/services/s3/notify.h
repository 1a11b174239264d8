/*
 * s3/notify: S3 bucket notifications to Lambda. Owns the
 * NotificationConfiguration document (parse of PutBucketNotificationConfiguration
 * bodies into a normalized JSON config, render for
 * GetBucketNotificationConfiguration, validation of the destinations against
 * the Lambda registry), the matching of object changes against a config
 * (event type wildcards, prefix/suffix key filters), and the S3 event record
 * JSON, delivered durably through lambda_invoke_async.
 */
#ifndef IGNIS_SERVICES_S3_NOTIFY_H
#define IGNIS_SERVICES_S3_NOTIFY_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/config.h"
#include "services/lambda/lambda.h"

struct s3_notify; /* per daemon */

struct s3_notify *s3_notify_new(struct lambda *lambda, const struct config *cfg);
void s3_notify_free(struct s3_notify *n);

/*
 * PutBucketNotificationConfiguration body -> normalized JSON config (caller
 * owns), or NULL with an S3 error code + message filled in (e.g.
 * "MalformedXML", "InvalidArgument"). Checks the document only (shape,
 * event names, filters, overlaps); destinations are checked by
 * s3_notify_validate.
 */
json_t *s3_notify_parse(const char *xml, size_t len, const char **code, char *msg, size_t msglen);

/*
 * Checks that every destination of a parsed config exists (the Lambda
 * function, version or alias). Returns 0, or -1 with code/msg filled in
 * (InvalidArgument "Unable to validate the following destination
 * configurations", as S3 answers with status 400). n NULL: no check.
 * Call it after s3_notify_parse and before storing the config, unless the
 * request says x-amz-skip-destination-validation: true.
 */
int s3_notify_validate(struct s3_notify *n, const json_t *config, const char **code, char *msg,
                       size_t msglen);

/* The GetBucketNotificationConfiguration XML body for a stored config (NULL: empty config). */
char *s3_notify_render(const json_t *config, size_t *len);

/* One object change: sends an event to every matching function of config (async, durable). */
struct s3_object_change {
    const char *bucket, *key; /* key as stored (not encoded) */
    const char *event;        /* "ObjectCreated:Put", "ObjectCreated:Copy",
                                 "ObjectCreated:CompleteMultipartUpload",
                                 "ObjectRemoved:Delete", ... (without "s3:") */
    uint64_t size;
    const char *etag; /* etag without quotes; size 0/NULL for removals */
    const char *source_ip, *request_id, *principal;
    uint64_t sequence; /* per-bucket increasing: becomes the sequencer */
};
void s3_notify_emit(struct s3_notify *n, const json_t *config, const struct s3_object_change *c);

/* The HTTP status of an error code from parse/validate: 501 for
 * "NotImplemented" (EventBridgeConfiguration), else 400. */
unsigned s3_notify_error_status(const char *code);

/* Pieces of emit, for tests. Whether one function configuration (an element
 * of "LambdaFunctionConfigurations") wants event ("ObjectCreated:Put") on key. */
int s3_notify_matches(const json_t *fc, const char *event, const char *key);
/* Appends key as S3 writes it into events (form-URL-encoded, space as '+'). */
void s3_notify_encode_key(struct buf *out, const char *key);
/* S3's event document ({"Records": [...]}) for change c seen by
 * configuration config_id at when_ms; a new string, caller frees. */
char *s3_notify_record(const char *region, const char *config_id, const struct s3_object_change *c,
                       int64_t when_ms);

#endif
