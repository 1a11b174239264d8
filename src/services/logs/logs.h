/*
 * logs: the CloudWatch Logs API (JSON 1.1, X-Amz-Target Logs_20140328.*) over
 * the log groups Ignis writes, as the aws CLI and boto3 call it:
 * DescribeLogGroups, DescribeLogStreams, GetLogEvents, FilterLogEvents (and
 * so `aws logs tail [--follow]`), CreateLogGroup and DeleteLogGroup.
 */
#ifndef IGNIS_SERVICES_LOGS_H
#define IGNIS_SERVICES_LOGS_H

#include "core/config.h"
#include "edge/edge.h"
#include "store/logstore.h"

/* Adds the "logs" route. One service per process: its state is static. */
int logs_register(struct edge *edge, struct logstore *ls, const struct config *cfg);

#endif
