/*
 * invoke: `ignis invoke NAME [JSON] [--tail]`. Prints the function's answer
 * on stdout; with --tail, its log on stderr. Exits 1 when the function
 * failed (X-Amz-Function-Error) or the call did.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "core/util.h"

int cmd_invoke(int argc, char **argv)
{
    static const struct option opts[] = {
        {"tail", no_argument, NULL, 't'},
        {NULL, 0, NULL, 0},
    };
    int tail = 0, c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c != 't')
            return 2;
        tail = 1;
    }
    if (optind >= argc || argc - optind > 2) {
        fprintf(stderr, "usage: ignis invoke NAME [JSON] [--tail]\n");
        return 2;
    }
    const char *name = argv[optind];
    const char *payload = optind + 1 < argc ? argv[optind + 1] : "{}";
    struct client *cl = client_new();
    if (!cl)
        return 1;
    char path[512];
    snprintf(path, sizeof(path), "/2015-03-31/functions/%s/invocations", name);
    struct client_response r;
    int status = 1;
    if (tail)
        client_next_header(cl, "X-Amz-Log-Type: Tail");
    if (client_call(cl, "POST", path, NULL, "lambda", NULL, "application/json", payload,
                    strlen(payload), &r) < 0)
        goto out;
    char value[8192];
    if (tail && client_header(&r, "X-Amz-Log-Result", value, sizeof(value)) == 0) {
        struct buf log = BUF_INIT;
        if (base64_decode(&log, value, strlen(value)) == 0 && log.len)
            fwrite(log.data, 1, log.len, stderr);
        buf_release(&log);
    }
    if (r.status != 200) {
        struct client_error err;
        client_error_from(&r, &err);
        client_error_print(&err);
    } else {
        fwrite(r.body.data ? r.body.data : "", 1, r.body.len, stdout);
        printf("\n");
        status = client_header(&r, "X-Amz-Function-Error", value, sizeof(value)) == 0 ? 1 : 0;
    }
    client_response_release(&r);
out:
    client_free(cl);
    return status;
}
