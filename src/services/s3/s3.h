/*
 * s3: the S3-compatible object store (rest-xml, SigV4 service "s3"), as the
 * aws CLI and boto3 call it: buckets, objects, listings, multipart uploads,
 * path-style (/bucket/key) and virtual-hosted (<bucket>.s3.localhost) URLs.
 * Object bytes live in files under <data>/s3/, metadata in SQLite; bucket
 * notifications go through services/s3/notify.h.
 */
#ifndef IGNIS_SERVICES_S3_S3_H
#define IGNIS_SERVICES_S3_S3_H

#include "core/config.h"
#include "core/loop.h"
#include "core/workq.h"
#include "edge/edge.h"

struct s3;
struct lambda;

/* Opens the store under <cfg->data_dir>/s3 (the db at <data>/ignis.db, already
 * migrated by db_open), removing what a crash left half-written. wq runs the
 * fsyncs and big copies; lambda (may be NULL) receives notifications. */
struct s3 *s3_new(struct loop *loop, const struct config *cfg, struct workq *wq,
                  struct lambda *lambda);
int s3_register(struct s3 *s3, struct edge *edge);
/* After edge_free (uploads in flight are dropped by the edge's shutdown). */
void s3_free(struct s3 *s3);

#endif
