/*
 * xml: S3's XML request bodies, parsed with libxml2 (no network, no entity
 * expansion, no DTD): DeleteObjects' <Delete>, CompleteMultipartUpload's
 * <CompleteMultipartUpload> and CreateBucket's <CreateBucketConfiguration>.
 * Elements are matched by local name whatever their namespace, as S3
 * accepts bodies with or without xmlns. Untrusted input (fuzzed in
 * tests/fuzz/fuzz_s3_xml.c). The answers' XML is written in the handlers.
 */
#include <errno.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <stdlib.h>
#include <string.h>

#include "services/s3/s3_internal.h"

#define MAX_DELETE_KEYS 1000

static xmlDocPtr parse(const char *xml, size_t len)
{
    if (len == 0 || len > S3_XML_BODY_CAP)
        return NULL;
    return xmlReadMemory(xml, (int)len, NULL, NULL,
                         XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
}

static int is(xmlNodePtr n, const char *name)
{
    return n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, name) == 0;
}

/* The text of an element (its text children joined); caller frees. */
static char *text_of(xmlNodePtr n, size_t *len)
{
    xmlChar *t = xmlNodeGetContent(n);
    if (!t)
        return NULL;
    size_t l = strlen((const char *)t);
    char *out = malloc(l + 1);
    if (out)
        memcpy(out, t, l + 1);
    xmlFree(t);
    if (len)
        *len = l;
    return out;
}

/* Quotes removed from an ETag ("\"abc\"" -> "abc"), copied into out. */
static int copy_etag(const char *v, char *out, size_t size)
{
    size_t n = strlen(v);
    while (n > 0 && (*v == ' ' || *v == '\n' || *v == '\t' || *v == '\r'))
        v++, n--;
    while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\n' || v[n - 1] == '\t' || v[n - 1] == '\r'))
        n--;
    if (n >= 2 && v[0] == '"' && v[n - 1] == '"')
        v++, n -= 2;
    if (n >= size)
        return -EINVAL;
    memcpy(out, v, n);
    out[n] = '\0';
    return 0;
}

void s3_delete_list_release(struct s3_delete_list *d)
{
    for (size_t i = 0; i < d->n; i++)
        free(d->keys[i]);
    free(d->keys);
    free(d->lens);
    memset(d, 0, sizeof(*d));
}

int s3_xml_parse_delete(const char *xml, size_t len, struct s3_delete_list *out)
{
    memset(out, 0, sizeof(*out));
    xmlDocPtr doc = parse(xml, len);
    if (!doc)
        return -EINVAL;
    int rc = -EINVAL;
    xmlNodePtr root = xmlDocGetRootElement(doc);
    if (!root || !is(root, "Delete"))
        goto out;
    out->keys = calloc(MAX_DELETE_KEYS, sizeof(*out->keys));
    out->lens = calloc(MAX_DELETE_KEYS, sizeof(*out->lens));
    if (!out->keys || !out->lens)
        goto out;
    for (xmlNodePtr n = root->children; n; n = n->next) {
        if (is(n, "Quiet")) {
            char *t = text_of(n, NULL);
            out->quiet = t && strcmp(t, "true") == 0;
            free(t);
        } else if (is(n, "Object")) {
            char *key = NULL;
            size_t klen = 0;
            for (xmlNodePtr k = n->children; k; k = k->next) {
                if (is(k, "Key")) {
                    if (key)
                        goto bad_object;
                    key = text_of(k, &klen);
                    if (!key)
                        goto out;
                }
            }
            if (!key || klen == 0 || klen > S3_MAX_KEY || out->n == MAX_DELETE_KEYS) {
            bad_object:
                free(key);
                goto out;
            }
            out->keys[out->n] = key;
            out->lens[out->n++] = klen;
        }
    }
    rc = out->n > 0 ? 0 : -EINVAL;
out:
    xmlFreeDoc(doc);
    if (rc)
        s3_delete_list_release(out);
    return rc;
}

int s3_xml_parse_complete(const char *xml, size_t len, struct s3_part_ref **parts, size_t *n)
{
    *parts = NULL;
    *n = 0;
    xmlDocPtr doc = parse(xml, len);
    if (!doc)
        return -EINVAL;
    int rc = -EINVAL;
    struct s3_part_ref *p = NULL;
    size_t np = 0;
    xmlNodePtr root = xmlDocGetRootElement(doc);
    if (!root || !is(root, "CompleteMultipartUpload"))
        goto out;
    p = calloc(S3_MAX_PARTS, sizeof(*p));
    if (!p)
        goto out;
    for (xmlNodePtr e = root->children; e; e = e->next) {
        if (!is(e, "Part"))
            continue;
        if (np == S3_MAX_PARTS)
            goto out;
        int number = -1, have_etag = 0;
        for (xmlNodePtr f = e->children; f; f = f->next) {
            if (is(f, "PartNumber")) {
                char *t = text_of(f, NULL);
                char *end = NULL;
                long v = t ? strtol(t, &end, 10) : -1;
                if (!t || !*t || *end || v < 1 || v > S3_MAX_PARTS)
                    v = -1;
                free(t);
                if (v < 0)
                    goto out;
                number = (int)v;
            } else if (is(f, "ETag")) {
                char *t = text_of(f, NULL);
                int bad = !t || copy_etag(t, p[np].etag, sizeof(p[np].etag)) < 0;
                free(t);
                if (bad)
                    goto out;
                have_etag = 1;
            }
        }
        if (number < 0 || !have_etag)
            goto out;
        p[np++].number = number;
    }
    if (np == 0)
        goto out;
    *parts = p;
    *n = np;
    p = NULL;
    rc = 0;
out:
    free(p);
    xmlFreeDoc(doc);
    return rc;
}

int s3_xml_parse_create_bucket(const char *xml, size_t len, char *location, size_t size)
{
    location[0] = '\0';
    xmlDocPtr doc = parse(xml, len);
    if (!doc)
        return -EINVAL;
    int rc = -EINVAL;
    xmlNodePtr root = xmlDocGetRootElement(doc);
    if (!root || !is(root, "CreateBucketConfiguration"))
        goto out;
    for (xmlNodePtr e = root->children; e; e = e->next) {
        if (is(e, "LocationConstraint")) {
            size_t l;
            char *t = text_of(e, &l);
            if (!t || l >= size) {
                free(t);
                goto out;
            }
            memcpy(location, t, l + 1);
            free(t);
        }
    }
    rc = 0;
out:
    xmlFreeDoc(doc);
    return rc;
}
