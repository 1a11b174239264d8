/*
 * deploy: `ignis deploy DIR --name N --runtime R --handler H [--timeout S]
 * [--memory MB] [--env K=V]...`. Zips DIR in memory (libzip, modes kept),
 * then CreateFunction, or UpdateFunctionCode + UpdateFunctionConfiguration
 * when the function exists, and waits until the update is Successful.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zip.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "core/util.h"

static int add_tree(zip_t *za, const char *root, const char *rel)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s%s%s", root, *rel ? "/" : "", rel);
    DIR *d = opendir(path);
    if (!d) {
        fprintf(stderr, "ignis deploy: cannot read %s: %s\n", path, strerror(errno));
        return -1;
    }
    struct dirent *de;
    int rc = 0;
    while (rc == 0 && (de = readdir(d))) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        char child[4096], full[8192];
        snprintf(child, sizeof(child), "%s%s%s", rel, *rel ? "/" : "", de->d_name);
        snprintf(full, sizeof(full), "%s/%s", root, child);
        struct stat st;
        if (lstat(full, &st) < 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            if (strcmp(de->d_name, "__pycache__") == 0 || strcmp(de->d_name, ".git") == 0)
                continue;
            zip_int64_t idx = zip_dir_add(za, child, ZIP_FL_ENC_UTF_8);
            if (idx >= 0)
                zip_file_set_external_attributes(za, (zip_uint64_t)idx, 0, ZIP_OPSYS_UNIX,
                                                 (zip_uint32_t)(S_IFDIR | 0755) << 16);
            rc = add_tree(za, root, child);
        } else if (S_ISREG(st.st_mode)) {
            zip_source_t *src = zip_source_file(za, full, 0, -1);
            zip_int64_t idx = src ? zip_file_add(za, child, src, ZIP_FL_ENC_UTF_8) : -1;
            if (idx < 0) {
                zip_source_free(src);
                fprintf(stderr, "ignis deploy: cannot add %s: %s\n", full, zip_strerror(za));
                rc = -1;
                break;
            }
            zip_file_set_external_attributes(za, (zip_uint64_t)idx, 0, ZIP_OPSYS_UNIX,
                                             (zip_uint32_t)(S_IFREG | (st.st_mode & 0777)) << 16);
        }
    }
    closedir(d);
    return rc;
}

/* Zips dir into out (the zip's bytes). */
static int zip_dir(const char *dir, struct buf *out)
{
    zip_error_t err;
    zip_error_init(&err);
    zip_source_t *src = zip_source_buffer_create(NULL, 0, 0, &err);
    if (!src)
        return -1;
    zip_source_keep(src);
    zip_t *za = zip_open_from_source(src, ZIP_TRUNCATE, &err);
    if (!za) {
        zip_source_free(src);
        return -1;
    }
    if (add_tree(za, dir, "") < 0 || zip_close(za) < 0) {
        zip_discard(za);
        zip_source_free(src);
        return -1;
    }
    int rc = -1;
    if (zip_source_open(src) == 0) {
        char chunk[65536];
        zip_int64_t n;
        while ((n = zip_source_read(src, chunk, sizeof(chunk))) > 0)
            buf_append(out, chunk, (size_t)n);
        zip_source_close(src);
        rc = n < 0 ? -1 : 0;
    }
    zip_source_free(src);
    return rc;
}

int cmd_deploy(int argc, char **argv)
{
    static const struct option opts[] = {
        {"name", required_argument, NULL, 'n'},    {"runtime", required_argument, NULL, 'r'},
        {"handler", required_argument, NULL, 'H'}, {"timeout", required_argument, NULL, 't'},
        {"memory", required_argument, NULL, 'm'},  {"env", required_argument, NULL, 'e'},
        {"role", required_argument, NULL, 'R'},    {NULL, 0, NULL, 0},
    };
    const char *name = NULL, *runtime = NULL, *handler = NULL, *role = NULL;
    long timeout = 0, memory = 0;
    json_t *env = json_object();
    int c, status = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'n':
            name = optarg;
            break;
        case 'r':
            runtime = optarg;
            break;
        case 'H':
            handler = optarg;
            break;
        case 'R':
            role = optarg;
            break;
        case 't':
            timeout = strtol(optarg, NULL, 10);
            break;
        case 'm':
            memory = strtol(optarg, NULL, 10);
            break;
        case 'e': {
            char *eq = strchr(optarg, '=');
            if (!eq) {
                fprintf(stderr, "ignis deploy: --env wants KEY=VALUE\n");
                json_decref(env);
                return 2;
            }
            *eq = '\0';
            json_object_set_new(env, optarg, json_string(eq + 1));
            break;
        }
        default:
            json_decref(env);
            return 2;
        }
    }
    if (optind != argc - 1 || !name) {
        fprintf(stderr, "usage: ignis deploy DIR --name N --runtime R --handler H [--timeout S] "
                        "[--memory MB] [--env K=V]... [--role ARN]\n");
        json_decref(env);
        return 2;
    }
    struct buf zip = BUF_INIT, b64 = BUF_INIT;
    struct client *cl = NULL;
    json_t *conf = json_object(), *res = NULL;
    if (zip_dir(argv[optind], &zip) < 0) {
        fprintf(stderr, "ignis deploy: cannot zip %s\n", argv[optind]);
        goto out;
    }
    base64_encode(&b64, zip.data, zip.len);
    if (!(cl = client_new()))
        goto out;
    if (runtime)
        json_object_set_new(conf, "Runtime", json_string(runtime));
    if (handler)
        json_object_set_new(conf, "Handler", json_string(handler));
    if (timeout)
        json_object_set_new(conf, "Timeout", json_integer(timeout));
    if (memory)
        json_object_set_new(conf, "MemorySize", json_integer(memory));
    if (json_object_size(env))
        json_object_set_new(conf, "Environment", json_pack("{s:O}", "Variables", env));
    if (role)
        json_object_set_new(conf, "Role", json_string(role));

    char path[512];
    snprintf(path, sizeof(path), "/2015-03-31/functions/%s/configuration", name);
    long st = 0;
    struct client_response probe;
    if (client_call(cl, "GET", path, NULL, "lambda", NULL, NULL, NULL, 0, &probe) < 0)
        goto out;
    st = probe.status;
    client_response_release(&probe);
    if (st == 404) {
        json_t *body = json_deep_copy(conf);
        json_object_set_new(body, "FunctionName", json_string(name));
        if (!role)
            json_object_set_new(body, "Role",
                                json_string("arn:aws:iam::000000000000:role/ignis-default"));
        json_object_set_new(body, "Code", json_pack("{s:s}", "ZipFile", b64.data));
        res = client_json(cl, "POST", "/2015-03-31/functions", NULL, "lambda", NULL, body, NULL);
        json_decref(body);
        if (!res)
            goto out;
        printf("created %s\n", json_string_value(json_object_get(res, "FunctionArn")));
    } else {
        snprintf(path, sizeof(path), "/2015-03-31/functions/%s/code", name);
        json_t *body = json_pack("{s:s}", "ZipFile", b64.data);
        res = client_json(cl, "PUT", path, NULL, "lambda", NULL, body, NULL);
        json_decref(body);
        if (!res)
            goto out;
        snprintf(path, sizeof(path), "/2015-03-31/functions/%s/configuration", name);
        for (int i = 0; i < 100; i++) { /* wait for the code update to finish */
            json_decref(res);
            res = client_json(cl, "GET", path, NULL, "lambda", NULL, NULL, NULL);
            const char *s = json_string_value(json_object_get(res, "LastUpdateStatus"));
            if (!res || !s || strcmp(s, "InProgress") != 0)
                break;
            usleep(50000);
        }
        if (res && json_object_size(conf)) {
            json_decref(res);
            res = client_json(cl, "PUT", path, NULL, "lambda", NULL, conf, NULL);
        }
        if (!res)
            goto out;
        printf("updated %s\n", json_string_value(json_object_get(res, "FunctionArn")));
    }
    printf("CodeSha256 %s, %lld bytes\n", json_string_value(json_object_get(res, "CodeSha256")),
           (long long)json_integer_value(json_object_get(res, "CodeSize")));
    status = 0;
out:
    json_decref(res);
    json_decref(conf);
    json_decref(env);
    buf_release(&zip);
    buf_release(&b64);
    client_free(cl);
    return status;
}
