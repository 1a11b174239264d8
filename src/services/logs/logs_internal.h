/*
 * logs_internal: what the files of the logs service share: the service
 * state, one call's context, parameter readers that answer the AWS error
 * themselves, and the filter pattern matcher.
 */
#ifndef IGNIS_SERVICES_LOGS_INTERNAL_H
#define IGNIS_SERVICES_LOGS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/config.h"
#include "edge/http.h"
#include "store/logstore.h"

#define LOGS_MAX_NAME 512
#define LOGS_PAGE_BYTES 1048576 /* an events page: 1 MB, counting 26 bytes per event */
#define LOGS_EVENT_OVERHEAD 26
#define LOGS_MAX_EVENTS 10000
#define LOGS_SCAN_BUDGET (4 << 20) /* bytes of log one call may examine */

struct logs {
    struct logstore *ls;
    const struct config *cfg;
};

struct logs_call {
    struct logs *svc;
    struct http_req *req;
    json_t *body;
};

/* Answers: a JSON 1.1 document (takes doc), JSON text (takes the malloc'd
 * text), or an error. */
void logs_reply(struct logs_call *c, json_t *doc);
void logs_reply_text(struct logs_call *c, char *text, size_t len);
void logs_fail(struct logs_call *c, unsigned status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void logs_no_group(struct logs_call *c);

/* Parameter readers: 0 (present), 1 (absent, *out untouched), or -1 after
 * answering SerializationException / InvalidParameterException. */
int logs_param_str(struct logs_call *c, const char *name, int required, size_t max,
                   const char **out);
int logs_param_long(struct logs_call *c, const char *name, int64_t min, int64_t max, int64_t *out);
int logs_param_bool(struct logs_call *c, const char *name, int *out);
/* logGroupName or logGroupIdentifier (a name or a log group ARN). */
int logs_param_group(struct logs_call *c, const char **out);
/* A group name must match [\.\-_/#A-Za-z0-9]+; 0, or -1 after answering. */
int logs_check_group_name(struct logs_call *c, const char *member, const char *name);

void logs_group_arn(const struct logs *svc, const char *group, char *out, size_t size);

/* Operations (events.c). */
void logs_get_log_events(struct logs_call *c);
void logs_filter_log_events(struct logs_call *c);

/* Filter patterns (pattern.c): plain terms (all must appear), "quoted
 * phrases", ?term (at least one of them) and -term (none of them), matched
 * case-sensitively as substrings. Empty: everything. */
struct logs_pattern;
/* 0, or -EINVAL with a message for the client in err. */
int logs_pattern_compile(const char *src, struct logs_pattern **out, char *err, size_t errlen);
int logs_pattern_match(const struct logs_pattern *p, const char *msg, size_t len);
void logs_pattern_free(struct logs_pattern *p);
/* JSON filter patterns ({ $.level = "ERROR" }: json_pattern.c), used by the above. */
struct json_pattern;
int json_pattern_compile(const char *src, struct json_pattern **out, char *err, size_t errlen);
int json_pattern_match(const struct json_pattern *p, const char *msg, size_t len);
void json_pattern_free(struct json_pattern *p);

#endif
