/*
 * s3/notify: S3 bucket notifications to Lambda. Owns the
 * NotificationConfiguration document: parsing PutBucketNotificationConfiguration
 * bodies (libxml2, no network, no entity substitution) into a normalized JSON
 * config shaped like botocore's NotificationConfiguration
 * ({"LambdaFunctionConfigurations": [{"Id", "LambdaFunctionArn", "Events",
 * "Filter": {"Key": {"FilterRules": [{"Name": "Prefix"|"Suffix", "Value"}]}}}]}),
 * with S3's checks (event names, filter rules, overlapping configurations,
 * ids generated as S3 does: base64 of a UUID); checking destinations against
 * the Lambda registry; rendering it back for GetBucketNotificationConfiguration
 * (libxml2's writer); matching an object change against it (event type
 * wildcards, prefix/suffix on the key); and building S3's event record, sent
 * through lambda_invoke_async so that it is durable and retried like any
 * Event invoke. Queue, topic and EventBridge destinations do not exist here:
 * they are refused as S3 refuses a destination it cannot reach.
 * Not here: where configs are stored and when changes happen (the S3 service).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlwriter.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/util.h"
#include "services/s3/notify.h"

#define S3_NS "http://s3.amazonaws.com/doc/2006-03-01/"
#define NOTIFY_XML_MAX (1 << 20)
#define MALFORMED                                                                                  \
    "The XML you provided was not well-formed or did not validate against our published schema"
#define UNVALIDATED "Unable to validate the following destination configurations"
#define OVERLAP                                                                                    \
    "Configurations overlap. Configurations on the same bucket cannot share a common event type."

struct s3_notify {
    struct lambda *lambda;
    const struct config *cfg;
};

struct s3_notify *s3_notify_new(struct lambda *lambda, const struct config *cfg)
{
    struct s3_notify *n = calloc(1, sizeof(*n));
    if (!n)
        return NULL;
    n->lambda = lambda;
    n->cfg = cfg;
    return n;
}

void s3_notify_free(struct s3_notify *n)
{
    free(n);
}

unsigned s3_notify_error_status(const char *code)
{
    return code && strcmp(code, "NotImplemented") == 0 ? 501 : 400;
}

/*=== Events and filters ===*/

/* The event types a notification may name (botocore's Event enum), and
 * whether this server ever emits them. */
static const char *const known_events[] = {
    "s3:ReducedRedundancyLostObject",
    "s3:ObjectCreated:*",
    "s3:ObjectCreated:Put",
    "s3:ObjectCreated:Post",
    "s3:ObjectCreated:Copy",
    "s3:ObjectCreated:CompleteMultipartUpload",
    "s3:ObjectRemoved:*",
    "s3:ObjectRemoved:Delete",
    "s3:ObjectRemoved:DeleteMarkerCreated",
    "s3:ObjectRestore:*",
    "s3:ObjectRestore:Post",
    "s3:ObjectRestore:Completed",
    "s3:ObjectRestore:Delete",
    "s3:Replication:*",
    "s3:Replication:OperationFailedReplication",
    "s3:Replication:OperationNotTracked",
    "s3:Replication:OperationMissedThreshold",
    "s3:Replication:OperationReplicatedAfterThreshold",
    "s3:LifecycleTransition",
    "s3:IntelligentTiering",
    "s3:ObjectAcl:Put",
    "s3:LifecycleExpiration:*",
    "s3:LifecycleExpiration:Delete",
    "s3:LifecycleExpiration:DeleteMarkerCreated",
    "s3:ObjectTagging:*",
    "s3:ObjectTagging:Put",
    "s3:ObjectTagging:Delete",
    NULL,
};

static int event_known(const char *e)
{
    for (const char *const *k = known_events; *k; k++)
        if (strcmp(*k, e) == 0)
            return 1;
    return 0;
}

/* Whether configured event type want ("s3:ObjectCreated:*", "s3:ObjectCreated:Put")
 * covers an emitted event name ("ObjectCreated:Put", without "s3:"). */
static int event_covers(const char *want, const char *event)
{
    if (!str_has_prefix(want, "s3:"))
        return 0;
    want += 3;
    size_t n = strlen(want);
    if (n >= 2 && strcmp(want + n - 2, ":*") == 0)
        return strncmp(want, event, n - 1) == 0; /* "ObjectCreated:" */
    return strcmp(want, event) == 0;
}

/* Whether two configured event types share an event: equal, or one a
 * wildcard over the other's family. */
static int events_share(const char *a, const char *b)
{
    if (strcmp(a, b) == 0)
        return 1;
    size_t na = strlen(a), nb = strlen(b);
    if (na >= 2 && strcmp(a + na - 2, ":*") == 0 && strncmp(a, b, na - 1) == 0)
        return 1;
    if (nb >= 2 && strcmp(b + nb - 2, ":*") == 0 && strncmp(a, b, nb - 1) == 0)
        return 1;
    return 0;
}

static const char *filter_value(const json_t *fc, const char *name)
{
    size_t i;
    json_t *rule;
    json_array_foreach(
        json_object_get(json_object_get(json_object_get(fc, "Filter"), "Key"), "FilterRules"), i,
        rule)
    {
        const char *have = json_string_value(json_object_get(rule, "Name"));
        const char *value = json_string_value(json_object_get(rule, "Value"));
        if (have && value && strcmp(have, name) == 0)
            return value;
    }
    return "";
}

int s3_notify_matches(const json_t *fc, const char *event, const char *key)
{
    int covered = 0;
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(fc, "Events"), i, e)
    {
        if (json_is_string(e) && event_covers(json_string_value(e), event))
            covered = 1;
    }
    if (!covered)
        return 0;
    const char *prefix = filter_value(fc, "Prefix"), *suffix = filter_value(fc, "Suffix");
    size_t kn = strlen(key), sn = strlen(suffix);
    return str_has_prefix(key, prefix) && kn >= sn && strcmp(key + kn - sn, suffix) == 0;
}

/* Two filters can match the same key when their prefixes are nested (one a
 * prefix of the other; empty matches all) and so are their suffixes. */
static int filters_overlap(const json_t *a, const json_t *b)
{
    const char *pa = filter_value(a, "Prefix"), *pb = filter_value(b, "Prefix");
    const char *sa = filter_value(a, "Suffix"), *sb = filter_value(b, "Suffix");
    size_t la = strlen(sa), lb = strlen(sb);
    int prefixes = str_has_prefix(pa, pb) || str_has_prefix(pb, pa);
    int suffixes = la >= lb ? strcmp(sa + la - lb, sb) == 0 : strcmp(sb + lb - la, sa) == 0;
    return prefixes && suffixes;
}

static int configs_overlap(const json_t *a, const json_t *b)
{
    size_t i, j;
    json_t *ea, *eb;
    json_array_foreach(json_object_get(a, "Events"), i, ea)
    {
        json_array_foreach(json_object_get(b, "Events"), j, eb)
        {
            if (json_is_string(ea) && json_is_string(eb) &&
                events_share(json_string_value(ea), json_string_value(eb)))
                return filters_overlap(a, b);
        }
    }
    return 0;
}

/*=== Parse ===*/

struct parse_error {
    const char *code;
    char *msg;
    size_t msglen;
};

static int fail(struct parse_error *pe, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(struct parse_error *pe, const char *code, const char *fmt, ...)
{
    pe->code = code;
    if (pe->msg && pe->msglen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(pe->msg, pe->msglen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static int named(const xmlNode *node, const char *name)
{
    return node->type == XML_ELEMENT_NODE && strcmp((const char *)node->name, name) == 0;
}

/* An element's text (a new string, caller frees) with surrounding blanks
 * removed when trim; NULL when it has element children (not a value). */
static char *text_of(const xmlNode *node, int trim)
{
    for (const xmlNode *c = node->children; c; c = c->next)
        if (c->type == XML_ELEMENT_NODE)
            return NULL;
    xmlChar *raw = xmlNodeGetContent(node);
    char *s = strdup(raw ? (const char *)raw : "");
    xmlFree(raw);
    if (s && trim) {
        char *p = s;
        while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
            p++;
        size_t n = strlen(p);
        while (n > 0 &&
               (p[n - 1] == ' ' || p[n - 1] == '\t' || p[n - 1] == '\r' || p[n - 1] == '\n'))
            n--;
        memmove(s, p, n);
        s[n] = '\0';
    }
    return s;
}

/* Filter/S3Key/FilterRule* into rules ([{"Name", "Value"}]). */
static int parse_filter(const xmlNode *filter, json_t *rules, struct parse_error *pe)
{
    for (const xmlNode *k = filter->children; k; k = k->next) {
        if (k->type != XML_ELEMENT_NODE)
            continue;
        if (!named(k, "S3Key"))
            return fail(pe, "MalformedXML", MALFORMED);
        for (const xmlNode *r = k->children; r; r = r->next) {
            if (r->type != XML_ELEMENT_NODE)
                continue;
            if (!named(r, "FilterRule"))
                return fail(pe, "MalformedXML", MALFORMED);
            char *name = NULL, *value = NULL;
            int bad = 0;
            for (const xmlNode *f = r->children; f && !bad; f = f->next) {
                if (f->type != XML_ELEMENT_NODE)
                    continue;
                char **slot = named(f, "Name") ? &name : named(f, "Value") ? &value : NULL;
                if (!slot || *slot || !(*slot = text_of(f, slot == &name)))
                    bad = 1;
            }
            if (bad || !name || !value) {
                free(name);
                free(value);
                return fail(pe, "MalformedXML", MALFORMED);
            }
            const char *canon = strcasecmp(name, "prefix") == 0   ? "Prefix"
                                : strcasecmp(name, "suffix") == 0 ? "Suffix"
                                                                  : NULL;
            free(name);
            if (!canon) {
                free(value);
                return fail(pe, "InvalidArgument",
                            "filter rule name must be either prefix or suffix");
            }
            size_t i;
            json_t *have;
            json_array_foreach(rules, i, have)
            {
                if (strcmp(json_string_value(json_object_get(have, "Name")), canon) == 0) {
                    free(value);
                    return fail(pe, "InvalidArgument",
                                "Cannot specify more than one %s rule in a filter.",
                                canon[0] == 'P' ? "prefix" : "suffix");
                }
            }
            if (strlen(value) > 1024) {
                free(value);
                return fail(pe, "InvalidArgument",
                            "The filter rule value cannot be longer than 1024 characters.");
            }
            json_array_append_new(rules, json_pack("{s:s, s:s}", "Name", canon, "Value", value));
            free(value);
        }
    }
    return 0;
}

/* S3's generated ids: base64 of a random UUID. */
static void new_id(char out[64])
{
    char uuid[37];
    uuid_v4(uuid);
    struct buf b = BUF_INIT;
    base64_encode(&b, uuid, 36);
    snprintf(out, 64, "%s", b.data ? b.data : uuid);
    buf_release(&b);
}

/* One CloudFunctionConfiguration (or LambdaFunctionConfiguration) into a new object. */
static json_t *parse_function_config(const xmlNode *node, struct parse_error *pe)
{
    json_t *fc = json_object(), *events = json_array(), *rules = json_array();
    char *id = NULL, *arn = NULL;
    int rc = 0, filters = 0;
    for (const xmlNode *c = node->children; c && rc == 0; c = c->next) {
        if (c->type != XML_ELEMENT_NODE)
            continue;
        if (named(c, "Id") || named(c, "CloudFunction") || named(c, "LambdaFunctionArn")) {
            char **slot = named(c, "Id") ? &id : &arn;
            if (*slot || !(*slot = text_of(c, 1)))
                rc = fail(pe, "MalformedXML", MALFORMED);
        } else if (named(c, "Event")) {
            char *e = text_of(c, 1);
            if (!e) {
                rc = fail(pe, "MalformedXML", MALFORMED);
            } else if (!event_known(e)) {
                rc = fail(pe, "InvalidArgument", "The event is not supported for notifications");
            } else {
                size_t i;
                json_t *have;
                int dup = 0;
                json_array_foreach(events, i, have) dup |= strcmp(json_string_value(have), e) == 0;
                if (!dup)
                    json_array_append_new(events, json_string(e));
            }
            free(e);
        } else if (named(c, "Filter")) {
            rc = filters++ ? fail(pe, "MalformedXML", MALFORMED) : parse_filter(c, rules, pe);
        } else if (named(c, "InvocationRole")) {
            /* the deprecated API's role: accepted, not used */
        } else {
            rc = fail(pe, "MalformedXML", MALFORMED);
        }
    }
    if (rc == 0 && (!arn || !*arn))
        rc = fail(pe, "InvalidArgument", UNVALIDATED);
    if (rc == 0 && json_array_size(events) == 0)
        rc = fail(pe, "MalformedXML", MALFORMED);
    if (rc == 0 && id && strlen(id) > 1024)
        rc = fail(pe, "InvalidArgument", "The ID cannot be longer than 1024 characters.");
    if (rc < 0) {
        free(id);
        free(arn);
        json_decref(fc);
        json_decref(events);
        json_decref(rules);
        return NULL;
    }
    char gen[64];
    if (!id || !*id)
        new_id(gen);
    json_object_set_new(fc, "Id", json_string(id && *id ? id : gen));
    json_object_set_new(fc, "LambdaFunctionArn", json_string(arn));
    json_object_set_new(fc, "Events", events);
    if (json_array_size(rules) > 0)
        json_object_set_new(fc, "Filter", json_pack("{s:{s:o}}", "Key", "FilterRules", rules));
    else
        json_decref(rules);
    free(id);
    free(arn);
    return fc;
}

/* Strings must be valid UTF-8 for jansson; libxml2 guarantees it for parsed text. */
json_t *s3_notify_parse(const char *xml, size_t len, const char **code, char *msg, size_t msglen)
{
    struct parse_error pe = {.code = NULL, .msg = msg, .msglen = msglen};
    if (msg && msglen)
        msg[0] = '\0';
    if (!xml || len == 0 || len > NOTIFY_XML_MAX) {
        fail(&pe, "MalformedXML", MALFORMED);
        *code = pe.code;
        return NULL;
    }
    xmlDoc *doc = xmlReadMemory(xml, (int)len, "notification.xml", NULL,
                                XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    xmlNode *root = doc ? xmlDocGetRootElement(doc) : NULL;
    json_t *list = json_array(), *out = NULL;
    int rc = 0;
    /* no DTD: nothing to expand, nothing fetched */
    if (!root || !named(root, "NotificationConfiguration") || doc->intSubset)
        rc = fail(&pe, "MalformedXML", MALFORMED);
    for (xmlNode *c = root ? root->children : NULL; c && rc == 0; c = c->next) {
        if (c->type != XML_ELEMENT_NODE)
            continue;
        if (named(c, "CloudFunctionConfiguration") || named(c, "LambdaFunctionConfiguration")) {
            json_t *fc = parse_function_config(c, &pe);
            if (!fc)
                rc = -1;
            else
                json_array_append_new(list, fc);
        } else if (named(c, "QueueConfiguration") || named(c, "TopicConfiguration")) {
            /* no queues or topics exist here: S3's answer for a destination it cannot reach */
            rc = fail(&pe, "InvalidArgument", UNVALIDATED);
        } else if (named(c, "EventBridgeConfiguration")) {
            rc = fail(&pe, "NotImplemented",
                      "EventBridge notifications are not implemented by Ignis yet");
        } else {
            rc = fail(&pe, "MalformedXML", MALFORMED);
        }
    }
    /* ids are unique; no two configurations may share an event for the same keys */
    for (size_t i = 0; rc == 0 && i < json_array_size(list); i++) {
        json_t *a = json_array_get(list, i);
        for (size_t j = 0; rc == 0 && j < i; j++) {
            json_t *b = json_array_get(list, j);
            if (json_equal(json_object_get(a, "Id"), json_object_get(b, "Id")))
                rc = fail(&pe, "InvalidArgument", "Same ID used for multiple configurations.");
            else if (configs_overlap(a, b))
                rc = fail(&pe, "InvalidArgument", OVERLAP);
        }
    }
    if (rc == 0) {
        out = json_object();
        if (json_array_size(list) > 0)
            json_object_set(out, "LambdaFunctionConfigurations", list);
    }
    json_decref(list);
    xmlFreeDoc(doc);
    *code = pe.code;
    return out;
}

int s3_notify_validate(struct s3_notify *n, const json_t *config, const char **code, char *msg,
                       size_t msglen)
{
    if (!n || !n->lambda)
        return 0;
    size_t i;
    json_t *fc;
    json_array_foreach(json_object_get(config, "LambdaFunctionConfigurations"), i, fc)
    {
        const char *arn = json_string_value(json_object_get(fc, "LambdaFunctionArn"));
        /* S3 takes a function's full ARN, in this region */
        char prefix[96];
        snprintf(prefix, sizeof(prefix), "arn:aws:lambda:%s:", n->cfg->region);
        if (!arn || !str_has_prefix(arn, prefix) || !lambda_function_exists(n->lambda, arn)) {
            *code = "InvalidArgument";
            if (msg && msglen)
                snprintf(msg, msglen, "%s", UNVALIDATED);
            return -1;
        }
    }
    return 0;
}

/*=== Render ===*/

char *s3_notify_render(const json_t *config, size_t *len)
{
    xmlBuffer *xb = xmlBufferCreate();
    xmlTextWriter *w = xb ? xmlNewTextWriterMemory(xb, 0) : NULL;
    if (!w) {
        if (xb)
            xmlBufferFree(xb);
        return NULL;
    }
    int rc = xmlTextWriterStartDocument(w, "1.0", "UTF-8", NULL);
    rc |= xmlTextWriterStartElementNS(w, NULL, BAD_CAST "NotificationConfiguration",
                                      BAD_CAST S3_NS) < 0;
    size_t i, j;
    json_t *fc, *v;
    json_array_foreach(json_object_get(config, "LambdaFunctionConfigurations"), i, fc)
    {
        rc |= xmlTextWriterStartElement(w, BAD_CAST "CloudFunctionConfiguration") < 0;
        rc |= xmlTextWriterWriteElement(w, BAD_CAST "Id",
                                        BAD_CAST json_string_value(json_object_get(fc, "Id"))) < 0;
        rc |= xmlTextWriterWriteElement(
                  w, BAD_CAST "CloudFunction",
                  BAD_CAST json_string_value(json_object_get(fc, "LambdaFunctionArn"))) < 0;
        json_array_foreach(json_object_get(fc, "Events"), j, v)
        {
            rc |= xmlTextWriterWriteElement(w, BAD_CAST "Event", BAD_CAST json_string_value(v)) < 0;
        }
        json_t *rules =
            json_object_get(json_object_get(json_object_get(fc, "Filter"), "Key"), "FilterRules");
        if (json_array_size(rules) > 0) {
            rc |= xmlTextWriterStartElement(w, BAD_CAST "Filter") < 0;
            rc |= xmlTextWriterStartElement(w, BAD_CAST "S3Key") < 0;
            json_array_foreach(rules, j, v)
            {
                rc |= xmlTextWriterStartElement(w, BAD_CAST "FilterRule") < 0;
                rc |= xmlTextWriterWriteElement(
                          w, BAD_CAST "Name",
                          BAD_CAST json_string_value(json_object_get(v, "Name"))) < 0;
                rc |= xmlTextWriterWriteElement(
                          w, BAD_CAST "Value",
                          BAD_CAST json_string_value(json_object_get(v, "Value"))) < 0;
                rc |= xmlTextWriterEndElement(w) < 0;
            }
            rc |= xmlTextWriterEndElement(w) < 0;
            rc |= xmlTextWriterEndElement(w) < 0;
        }
        rc |= xmlTextWriterEndElement(w) < 0;
    }
    rc |= xmlTextWriterEndDocument(w) < 0;
    xmlFreeTextWriter(w); /* flushes into xb */
    char *out = NULL;
    if (rc == 0) {
        size_t n = (size_t)xmlBufferLength(xb);
        out = malloc(n + 1);
        if (out) {
            memcpy(out, xmlBufferContent(xb), n);
            out[n] = '\0';
            if (len)
                *len = n;
        }
    }
    xmlBufferFree(xb);
    return out;
}

/*=== Events ===*/

void s3_notify_encode_key(struct buf *out, const char *key)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            strchr("-_.*/", *p))
            buf_putc(out, (char)*p);
        else if (*p == ' ')
            buf_putc(out, '+');
        else {
            char esc[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            buf_append(out, esc, 3);
        }
    }
}

char *s3_notify_record(const char *region, const char *config_id, const struct s3_object_change *c,
                       int64_t when_ms)
{
    char time[32], seq[32], id2[80];
    format_iso8601_ms(when_ms, time);
    snprintf(seq, sizeof(seq), "%018" PRIX64, c->sequence);
    unsigned char rnd[48];
    random_bytes(rnd, sizeof(rnd));
    struct buf b64 = BUF_INIT, key = BUF_INIT;
    base64_encode(&b64, rnd, sizeof(rnd));
    snprintf(id2, sizeof(id2), "%s", b64.data ? b64.data : "");
    buf_release(&b64);
    buf_puts(&key, "");
    s3_notify_encode_key(&key, c->key);
    char arn[320];
    snprintf(arn, sizeof(arn), "arn:aws:s3:::%s", c->bucket);
    const char *principal = c->principal && *c->principal ? c->principal : "anonymous";
    json_t *object = json_pack("{s:s}", "key", key.data);
    buf_release(&key);
    if (str_has_prefix(c->event, "ObjectCreated:")) {
        json_object_set_new(object, "size", json_integer((json_int_t)c->size));
        json_object_set_new(object, "eTag", json_string(c->etag ? c->etag : ""));
    }
    json_object_set_new(object, "sequencer", json_string(seq));
    json_t *record = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:{s:s}, s:{s:s}, s:{s:s, s:s},"
        " s:{s:s, s:s, s:{s:s, s:{s:s}, s:s}, s:o}}",
        "eventVersion", "2.1", "eventSource", "aws:s3", "awsRegion", region, "eventTime", time,
        "eventName", c->event, "userIdentity", "principalId", principal, "requestParameters",
        "sourceIPAddress", c->source_ip ? c->source_ip : "127.0.0.1", "responseElements",
        "x-amz-request-id", c->request_id ? c->request_id : "", "x-amz-id-2", id2, "s3",
        "s3SchemaVersion", "1.0", "configurationId", config_id, "bucket", "name", c->bucket,
        "ownerIdentity", "principalId", principal, "arn", arn, "object", object);
    json_t *doc = record ? json_pack("{s:[o]}", "Records", record) : NULL;
    char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    return text;
}

void s3_notify_emit(struct s3_notify *n, const json_t *config, const struct s3_object_change *c)
{
    if (!n || !config || !c || !c->event || !c->bucket || !c->key)
        return;
    int64_t when = now_ms();
    size_t i;
    json_t *fc;
    json_array_foreach(json_object_get(config, "LambdaFunctionConfigurations"), i, fc)
    {
        if (!s3_notify_matches(fc, c->event, c->key))
            continue;
        const char *id = json_string_value(json_object_get(fc, "Id"));
        const char *arn = json_string_value(json_object_get(fc, "LambdaFunctionArn"));
        char *payload = s3_notify_record(n->cfg->region, id ? id : "", c, when);
        int rc = -ENOMEM;
        if (!n->lambda || !arn)
            rc = -ENOENT;
        else if (payload)
            rc = lambda_invoke_async(n->lambda, arn, payload, strlen(payload));
        if (rc < 0)
            log_warn("s3 notification of %s %s/%s to %s not sent: %s", c->event, c->bucket, c->key,
                     arn ? arn : "?", strerror(-rc));
        free(payload);
    }
}
