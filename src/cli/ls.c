/*
 * ls: `ignis ls`. Lists every function (ListFunctions, all pages) as a table.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "core/buf.h"

int cmd_ls(int argc, char **argv)
{
    (void)argv;
    if (argc != 1) {
        fprintf(stderr, "usage: ignis ls\n");
        return 2;
    }
    struct client *cl = client_new();
    if (!cl)
        return 1;
    printf("%-40s %-16s %7s %7s  %s\n", "NAME", "RUNTIME", "MEMORY", "TIMEOUT", "LAST MODIFIED");
    char marker[1024] = "";
    int status = 0;
    do {
        struct buf q = BUF_INIT;
        buf_puts(&q, "MaxItems=50");
        if (marker[0]) {
            buf_puts(&q, "&Marker=");
            for (const char *p = marker; *p; p++) {
                if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
                    (*p >= '0' && *p <= '9') || strchr("-_.~", *p))
                    buf_putc(&q, *p);
                else
                    buf_printf(&q, "%%%02X", (unsigned char)*p);
            }
        }
        json_t *res =
            client_json(cl, "GET", "/2015-03-31/functions/", q.data, "lambda", NULL, NULL, NULL);
        buf_release(&q);
        if (!res) {
            status = 1;
            break;
        }
        size_t i;
        json_t *f;
        json_array_foreach(json_object_get(res, "Functions"), i, f)
        {
            const char *rt = json_string_value(json_object_get(f, "Runtime"));
            printf("%-40s %-16s %4lld MB %6llds  %s\n",
                   json_string_value(json_object_get(f, "FunctionName")), rt ? rt : "-",
                   (long long)json_integer_value(json_object_get(f, "MemorySize")),
                   (long long)json_integer_value(json_object_get(f, "Timeout")),
                   json_string_value(json_object_get(f, "LastModified")));
        }
        const char *next = json_string_value(json_object_get(res, "NextMarker"));
        snprintf(marker, sizeof(marker), "%s", next ? next : "");
        json_decref(res);
    } while (marker[0]);
    client_free(cl);
    return status;
}
