/*
 * client: the signed HTTP client the CLI commands share. Finds the server
 * (IGNIS_ENDPOINT, else IGNIS_LISTEN, else http://127.0.0.1:9070) and the
 * credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, else
 * IGNIS_ROOT_ACCESS_KEY_ID/..., else <data dir>/credentials), signs every
 * request with SigV4 (edge/sigv4) and sends it with libcurl.
 */
#ifndef IGNIS_CLI_CLIENT_H
#define IGNIS_CLI_CLIENT_H

#include <jansson.h>
#include <stddef.h>

#include "core/buf.h"

struct client;

struct client_response {
    long status;
    struct buf body;
    struct buf headers; /* raw header block */
};

/* Returns NULL (and prints why) when no credentials are found. */
struct client *client_new(void);
void client_free(struct client *c);

/* One signed request. path is raw (already percent-encoded), query may be
 * NULL ("a=1&b=2", encoded). target sets X-Amz-Target (JSON 1.1 APIs).
 * Returns 0, or -1 when the server could not be reached (message printed). */
int client_call(struct client *c, const char *method, const char *path, const char *query,
                const char *service, const char *target, const char *content_type, const void *body,
                size_t len, struct client_response *out);
void client_response_release(struct client_response *r);
/* Adds "Name: value" to the next call only (not signed). */
void client_next_header(struct client *c, const char *line);
/* A response header's value (case-insensitive), copied into out. */
int client_header(const struct client_response *r, const char *name, char *out, size_t size);

/* An AWS error answer: its code (from x-amzn-ErrorType or __type) and message. */
struct client_error {
    long status;
    char code[128];
    char message[1024];
};
/* Fills err from an answer of status >= 300. */
void client_error_from(const struct client_response *r, struct client_error *err);
void client_error_print(const struct client_error *err);

/* Calls a JSON API and parses the answer. On an AWS error returns NULL and
 * fills err (when err is NULL, prints "ignis: <Code> (HTTP n): <message>"). */
json_t *client_json(struct client *c, const char *method, const char *path, const char *query,
                    const char *service, const char *target, json_t *body,
                    struct client_error *err);

#endif
