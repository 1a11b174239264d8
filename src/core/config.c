/*
 * config: defaults, environment overrides and root credentials (config.h).
 */
#include "core/config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/util.h"

static void copy_str(char *dst, size_t size, const char *src)
{
    size_t n = strnlen(src, size - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* The directory holding runtimes/: next to the binary's build/ dir, or
 * IGNIS_RUNTIME_DIR. */
static void find_runtime_dir(struct config *cfg)
{
    const char *env = getenv("IGNIS_RUNTIME_DIR");
    if (env && *env) {
        copy_str(cfg->runtime_dir, sizeof(cfg->runtime_dir), env);
        return;
    }
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n > 0) {
        exe[n] = '\0';
        /* <repo>/build/ignis or <repo>/build/asan/ignis: walk up to runtimes/ */
        for (int up = 0; up < 4; up++) {
            char *slash = strrchr(exe, '/');
            if (!slash)
                break;
            *slash = '\0';
            char probe[PATH_MAX + 32];
            snprintf(probe, sizeof(probe), "%s/runtimes/python/bootstrap.py", exe);
            if (access(probe, R_OK) == 0) {
                snprintf(cfg->runtime_dir, sizeof(cfg->runtime_dir), "%.4000s/runtimes", exe);
                return;
            }
        }
    }
    copy_str(cfg->runtime_dir, sizeof(cfg->runtime_dir), "/usr/local/share/ignis/runtimes");
}

void config_defaults(struct config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    copy_str(cfg->listen_host, sizeof(cfg->listen_host), "127.0.0.1");
    cfg->listen_port = 9070;
    const char *home = getenv("HOME");
    snprintf(cfg->data_dir, sizeof(cfg->data_dir), "%.4000s/.local/share/ignis",
             home && *home ? home : "/root");
    copy_str(cfg->region, sizeof(cfg->region), "us-east-1");
    copy_str(cfg->account_id, sizeof(cfg->account_id), "000000000000");
    const char *v;
    if ((v = getenv("IGNIS_LISTEN")) && *v)
        config_set_listen(cfg, v);
    if ((v = getenv("IGNIS_DATA_DIR")) && *v)
        copy_str(cfg->data_dir, sizeof(cfg->data_dir), v);
    if ((v = getenv("IGNIS_REGION")) && *v)
        copy_str(cfg->region, sizeof(cfg->region), v);
    if ((v = getenv("IGNIS_ACCOUNT_ID")) && strlen(v) == 12)
        copy_str(cfg->account_id, sizeof(cfg->account_id), v);
    find_runtime_dir(cfg);
}

int config_set_listen(struct config *cfg, const char *spec)
{
    /* HOST:PORT, with IPv6 hosts in brackets: [::1]:9070 */
    const char *colon = strrchr(spec, ':');
    if (!colon || colon == spec || colon[1] == '\0')
        return -EINVAL;
    const char *host = spec;
    size_t hlen = (size_t)(colon - spec);
    if (spec[0] == '[') {
        if (hlen < 3 || spec[hlen - 1] != ']')
            return -EINVAL;
        host++;
        hlen -= 2;
    } else if (memchr(spec, ':', hlen)) {
        return -EINVAL; /* an IPv6 address needs brackets */
    }
    if (hlen >= sizeof(cfg->listen_host))
        return -EINVAL;
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port < 0 || port > 65535)
        return -EINVAL;
    memcpy(cfg->listen_host, host, hlen);
    cfg->listen_host[hlen] = '\0';
    cfg->listen_port = (int)port;
    return 0;
}

int mkdir_p(const char *path, unsigned mode)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof(tmp), "%s", path) >= (int)sizeof(tmp))
        return -ENAMETOOLONG;
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, mode) < 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(tmp, mode) < 0 && errno != EEXIST)
        return -errno;
    struct stat st;
    if (stat(tmp, &st) < 0)
        return -errno;
    return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

static void random_token(char *out, size_t len, const char *alphabet)
{
    size_t n = strlen(alphabet);
    unsigned char b[64];
    random_bytes(b, len);
    for (size_t i = 0; i < len; i++)
        out[i] = alphabet[b[i] % n];
    out[len] = '\0';
}

int config_load_credentials(struct config *cfg)
{
    const char *ak = getenv("IGNIS_ROOT_ACCESS_KEY_ID"),
               *sk = getenv("IGNIS_ROOT_SECRET_ACCESS_KEY");
    if (ak && *ak && sk && *sk) {
        copy_str(cfg->access_key, sizeof(cfg->access_key), ak);
        copy_str(cfg->secret_key, sizeof(cfg->secret_key), sk);
        return 0;
    }
    char path[PATH_MAX + 16];
    snprintf(path, sizeof(path), "%s/credentials", cfg->data_dir);
    FILE *f = fopen(path, "re");
    if (f) {
        char line[512];
        while (fgets(line, sizeof(line), f)) {
            line[strcspn(line, "\r\n")] = '\0';
            if (str_has_prefix(line, "aws_access_key_id = "))
                copy_str(cfg->access_key, sizeof(cfg->access_key), line + 20);
            else if (str_has_prefix(line, "aws_secret_access_key = "))
                copy_str(cfg->secret_key, sizeof(cfg->secret_key), line + 24);
        }
        fclose(f);
        if (cfg->access_key[0] && cfg->secret_key[0])
            return 0;
        return -EINVAL;
    }
    if (errno != ENOENT)
        return -errno;
    strcpy(cfg->access_key, "AKIA");
    random_token(cfg->access_key + 4, 16, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567");
    random_token(cfg->secret_key, 40,
                 "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/");
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    char text[512];
    int n = snprintf(text, sizeof(text),
                     "[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n",
                     cfg->access_key, cfg->secret_key);
    int ok = write(fd, text, (size_t)n) == n && fsync(fd) == 0;
    close(fd);
    if (!ok)
        return -EIO;
    cfg->credentials_generated = 1;
    return 0;
}
