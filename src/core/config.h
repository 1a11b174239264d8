/*
 * config: the daemon's settings, from flags, then IGNIS_* environment
 * variables, then embedded defaults; and the root credentials, taken from
 * the environment or generated once into <data-dir>/credentials (0600).
 */
#ifndef IGNIS_CORE_CONFIG_H
#define IGNIS_CORE_CONFIG_H

#include <limits.h>

struct config {
    char listen_host[256];
    int listen_port;
    char data_dir[PATH_MAX];
    char region[32];
    char account_id[16];
    char access_key[129];
    char secret_key[129];
    char runtime_dir[PATH_MAX]; /* holds python/ and node/ bootstraps */
    int credentials_generated;  /* 1 when this start created them */
};

/* Fills defaults and environment overrides (no flags). */
void config_defaults(struct config *cfg);
/* Parses "HOST:PORT" into cfg. Returns 0 or -EINVAL. */
int config_set_listen(struct config *cfg, const char *spec);
/* Loads or creates the root credentials (env wins). Needs data_dir to exist. */
int config_load_credentials(struct config *cfg);
/* mkdir -p with mode. Returns 0 or -errno. */
int mkdir_p(const char *path, unsigned mode);

#endif
