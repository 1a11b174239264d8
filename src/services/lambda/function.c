/*
 * function: the Lambda function registry and records. Keeps every function
 * in a name-sorted array (binary search; ListFunctions pages in order),
 * persists each record (configuration, tags, versions, aliases, event
 * invoke configs, reserved and provisioned concurrency, function URL configs) as JSON in the
 * db, validates
 * configuration the way Lambda does (same error names and messages), and
 * turns a function into the pool_fn_spec the execution pool runs (argv per
 * runtime, Lambda's reserved environment variables, a reservation as the
 * instance cap).
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "services/lambda/lambda_internal.h"
#include "store/codestore.h"

/*=== Registry ===*/

static size_t lower_bound(struct lambda *l, const char *name)
{
    size_t lo = 0, hi = l->nfns;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (strcmp(l->fns[mid]->name, name) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

struct function *lambda_find(struct lambda *l, const char *name)
{
    size_t i = lower_bound(l, name);
    return i < l->nfns && strcmp(l->fns[i]->name, name) == 0 ? l->fns[i] : NULL;
}

int lambda_insert(struct lambda *l, struct function *fn)
{
    if (l->nfns == l->fns_alloc) {
        size_t n = l->fns_alloc ? l->fns_alloc * 2 : 64;
        struct function **a = realloc(l->fns, n * sizeof(*a));
        if (!a)
            return -ENOMEM;
        l->fns = a;
        l->fns_alloc = n;
    }
    size_t i = lower_bound(l, fn->name);
    memmove(l->fns + i + 1, l->fns + i, (l->nfns - i) * sizeof(*l->fns));
    l->fns[i] = fn;
    l->nfns++;
    fn->refs++;
    concurrency_account(l, fn, 1);
    return 0;
}

void lambda_remove(struct lambda *l, struct function *fn)
{
    size_t i = lower_bound(l, fn->name);
    if (i < l->nfns && l->fns[i] == fn) {
        memmove(l->fns + i, l->fns + i + 1, (l->nfns - i - 1) * sizeof(*l->fns));
        l->nfns--;
        fn->deleted = 1;
        concurrency_account(l, fn, 0);
        /* every version's runner too: the last reference may be dropped by an
         * invocation's done callback, which must not call into the pool */
        function_reset_runners(l, fn);
        function_unref(fn);
    }
}

void function_unref(struct function *fn)
{
    if (--fn->refs > 0)
        return;
    function_reset_runner(fn);
    for (size_t i = 0; i < fn->nvruns; i++)
        pool_fn_retire(fn->vruns[i].run);
    free(fn->vruns);
    json_decref(fn->config);
    json_decref(fn->tags);
    json_decref(fn->versions);
    json_decref(fn->aliases);
    json_decref(fn->event_configs);
    json_decref(fn->provisioned);
    json_decref(fn->url_configs);
    json_decref(fn->policies);
    free(fn);
}

void function_arn(const struct lambda *l, const char *name, char *out, size_t size)
{
    snprintf(out, size, "arn:aws:lambda:%s:%s:function:%s", l->cfg->region, l->cfg->account_id,
             name);
}

json_t *listing_view(json_t *config)
{
    static const char *const hidden[] = {"State",
                                         "StateReason",
                                         "StateReasonCode",
                                         "LastUpdateStatus",
                                         "LastUpdateStatusReason",
                                         "LastUpdateStatusReasonCode",
                                         NULL};
    json_t *c = json_deep_copy(config);
    for (const char *const *h = hidden; *h; h++)
        json_object_del(c, *h);
    return c;
}

int function_save(struct lambda *l, struct function *fn)
{
    json_t *rec = json_pack("{s:O, s:O, s:s, s:O, s:I, s:O}", "Configuration", fn->config, "Tags",
                            fn->tags, "CodeHex", fn->code_hex, "Versions", fn->versions,
                            "LastVersion", fn->last_version, "Aliases", fn->aliases);
    if (rec && json_object_size(fn->event_configs) > 0)
        json_object_set(rec, "EventInvokeConfigs", fn->event_configs);
    if (rec && fn->reserved_set)
        json_object_set_new(rec, "ReservedConcurrency", json_integer(fn->reserved));
    if (rec && json_object_size(fn->provisioned) > 0)
        json_object_set(rec, "ProvisionedConcurrency", fn->provisioned);
    if (rec && json_object_size(fn->url_configs) > 0)
        json_object_set(rec, "FunctionUrlConfigs", fn->url_configs);
    if (rec && json_object_size(fn->policies) > 0)
        json_object_set(rec, "Policies", fn->policies);
    char *text = rec ? json_dumps(rec, JSON_COMPACT) : NULL;
    json_decref(rec);
    if (!text)
        return -ENOMEM;
    int rc = db_function_put(l->db, fn->name, text);
    free(text);
    return rc;
}

static void load_one(const char *name, const char *record, void *arg)
{
    struct lambda *l = arg;
    json_t *rec = json_loads(record, 0, NULL);
    json_t *config = json_object_get(rec, "Configuration");
    const char *hex = json_string_value(json_object_get(rec, "CodeHex"));
    if (!json_is_object(config) || !hex || strlen(name) > 64) {
        log_warn("skipping unreadable record of function %s", name);
        json_decref(rec);
        return;
    }
    struct function *fn = calloc(1, sizeof(*fn));
    snprintf(fn->name, sizeof(fn->name), "%s", name);
    snprintf(fn->code_hex, sizeof(fn->code_hex), "%s", hex);
    fn->config = json_incref(config);
    fn->tags = json_incref(json_object_get(rec, "Tags"));
    fn->versions = json_incref(json_object_get(rec, "Versions"));
    if (!json_is_object(fn->versions)) {
        json_decref(fn->versions);
        fn->versions = json_object();
    }
    fn->last_version = json_integer_value(json_object_get(rec, "LastVersion"));
    fn->aliases = json_incref(json_object_get(rec, "Aliases"));
    if (!json_is_object(fn->aliases)) { /* records written before aliases existed */
        json_decref(fn->aliases);
        fn->aliases = json_object();
    }
    if (!json_is_object(fn->tags)) {
        json_decref(fn->tags);
        fn->tags = json_object();
    }
    fn->event_configs = json_incref(json_object_get(rec, "EventInvokeConfigs"));
    if (!json_is_object(fn->event_configs)) {
        json_decref(fn->event_configs);
        fn->event_configs = json_object();
    }
    fn->url_configs = json_object();
    const char *key;
    json_t *pc;
    json_object_foreach(json_object_get(rec, "FunctionUrlConfigs"), key, pc)
    {
        if (json_is_string(json_object_get(pc, "UrlId")) &&
            (strcmp(key, "$LATEST") == 0 || json_object_get(fn->aliases, key)))
            json_object_set(fn->url_configs, key, pc);
        else
            log_warn("skipping a bad function URL config of %s:%s", name, key);
    }
    fn->policies = policies_load(json_object_get(rec, "Policies"), fn);
    fn->provisioned = json_object();
    json_object_foreach(json_object_get(rec, "ProvisionedConcurrency"), key, pc)
    {
        json_t *n = json_object_get(pc, "Requested");
        if (json_is_integer(n) && json_integer_value(n) >= 1 &&
            json_integer_value(n) <= 0x7fffffff &&
            (json_object_get(fn->versions, key) || json_object_get(fn->aliases, key)))
            json_object_set(fn->provisioned, key, pc);
        else
            log_warn("skipping a bad provisioned concurrency config of %s:%s", name, key);
    }
    fn->provisioned_total = provisioned_sum(fn->provisioned);
    json_t *reserved = json_object_get(rec, "ReservedConcurrency");
    if (json_is_integer(reserved) && json_integer_value(reserved) >= 0) {
        fn->reserved_set = 1;
        fn->reserved = (unsigned)json_integer_value(reserved);
    }
    /* A record is only written once its code is stored: it is ready. */
    json_object_set_new(fn->config, "State", json_string("Active"));
    json_object_set_new(fn->config, "LastUpdateStatus", json_string("Successful"));
    json_object_del(fn->config, "StateReason");
    json_object_del(fn->config, "StateReasonCode");
    json_object_del(fn->config, "LastUpdateStatusReason");
    json_object_del(fn->config, "LastUpdateStatusReasonCode");
    json_decref(rec);
    lambda_insert(l, fn);
}

int lambda_load(struct lambda *l)
{
    return db_function_foreach(l->db, load_one, l);
}

/*=== Running ===*/

void function_reset_runner(struct function *fn)
{
    if (fn->run) {
        pool_fn_retire(fn->run);
        fn->run = NULL;
    }
}

static const char *cfg_str(json_t *config, const char *key)
{
    const char *s = json_string_value(json_object_get(config, key));
    return s ? s : "";
}

struct strv {
    char **v;
    size_t n;
};

static void strv_addf(struct strv *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void strv_addf(struct strv *s, const char *fmt, ...)
{
    char **v = realloc(s->v, (s->n + 2) * sizeof(*v));
    if (!v)
        return;
    s->v = v;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&v[s->n], fmt, ap) >= 0)
        s->n++;
    va_end(ap);
    v[s->n] = NULL;
}

static void strv_release(struct strv *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
}

int function_network_granted(const struct function *fn)
{
    const char *v = json_string_value(json_object_get(fn->tags, LAMBDA_NETWORK_TAG));
    return v && strcmp(v, "host") == 0;
}

void function_reset_runners(struct lambda *l, struct function *fn)
{
    function_reset_runner(fn);
    for (size_t i = 0; i < fn->nvruns; i++)
        pool_fn_retire(fn->vruns[i].run);
    fn->nvruns = 0;
    provisioned_sync(l, fn); /* provisioned versions start over at once */
}

struct version_run *function_version_run(struct function *fn, const char *version)
{
    for (size_t i = 0; i < fn->nvruns; i++)
        if (strcmp(fn->vruns[i].version, version) == 0)
            return &fn->vruns[i];
    return NULL;
}

/* What every instance's environment starts with (and the Python zygote's). */
static const char *const base_env[] = {"PATH=/usr/local/bin:/usr/bin:/bin:/opt/bin",
                                       "LANG=en_US.UTF-8", "TZ=:UTC", NULL};

/* Whether a function's own variables change how an interpreter starts (the zygote started
 * without them), so that its instances must be exec'd. */
static int env_shapes_startup(json_t *vars)
{
    static const char *const prefixes[] = {"PYTHON", "LC_", "LD_", NULL};
    const char *key;
    json_t *val;
    json_object_foreach(vars, key, val)
    {
        if (strcmp(key, "LANG") == 0 || strcmp(key, "TZ") == 0)
            return 1;
        for (int i = 0; prefixes[i]; i++)
            if (str_has_prefix(key, prefixes[i]))
                return 1;
    }
    return 0;
}

/* The sandbox's helpers from the runtimes dir: ignis-init, PID 1 of every instance
 * (runtimes/init); and the Python zygote (runtimes/python/zygote.py), an interpreter with the
 * runtime loaded that Python instances are forked from: a sandboxed pool only, when its
 * extension is built, unless IGNIS_ZYGOTE=0. */
void function_start_helpers(struct lambda *l)
{
    char init[4200];
    snprintf(init, sizeof(init), "%s/init/ignis-init", l->cfg->runtime_dir);
    int rc = pool_set_init(l->pool, init);
    if (rc < 0)
        log_warn("no ignis-init (%s: %s; `make runtimes` builds it): runtimes run as PID 1 of "
                 "their instance and nothing reaps the processes they orphan",
                 init, strerror(-rc));
    const char *off = getenv("IGNIS_ZYGOTE");
    if (!pool_sandboxed(l->pool) || (off && strcmp(off, "0") == 0))
        return;
    char script[4200], ext[4200];
    snprintf(script, sizeof(script), "%s/python/zygote.py", l->cfg->runtime_dir);
    snprintf(ext, sizeof(ext), "%s/python/_ignis_zygote.so", l->cfg->runtime_dir);
    if (access(ext, R_OK) != 0) {
        log_warn("no Python zygote (%s is not built): Python cold starts exec an interpreter", ext);
        return;
    }
    char *const argv[] = {"/usr/bin/python3", "-S", script, NULL};
    rc = pool_add_zygote(l->pool, "python", argv, (char *const *)base_env);
    if (rc < 0)
        log_warn("cannot start the Python zygote: %s", strerror(-rc));
    else
        l->python_zygote = 1;
}

/* Where a function on this host reaches the daemon: the listening address, or loopback
 * for a wildcard one. */
static const char *endpoint_host(const char *listen_host)
{
    if (!*listen_host || strcmp(listen_host, "0.0.0.0") == 0 || strcmp(listen_host, "::") == 0 ||
        strcmp(listen_host, "localhost") == 0)
        return "127.0.0.1";
    return listen_host;
}

/* A LoggingConfig level as the pool counts them; INFO, Lambda's default, when unset. */
static int level_of(json_t *logging, const char *member)
{
    const char *v = json_string_value(json_object_get(logging, member));
    int level = v ? pool_log_level_parse(v, strlen(v)) : 0;
    return level ? level : POOL_LOG_INFO;
}

/* Builds the spec for one version (config + code) and starts a pool_fn. */
static struct pool_fn *build_runner(struct lambda *l, struct function *fn, json_t *c,
                                    const char *code_hex, const char *version)
{
    const char *runtime = cfg_str(c, "Runtime");
    /* host_code: where the package is on this host; code_dir and lang_dir:
     * where the function sees its code and runtime (the sandbox mounts them
     * at Lambda's /var/task and /var/runtime). */
    char host_code[4200], code_dir[4200], arn[256], group[128], lang_dir[4200];
    codestore_dir_path(l->code_root, code_hex, host_code, sizeof(host_code));
    int sandboxed = pool_sandboxed(l->pool);
    const char *runtimes = sandboxed ? "/var/runtime" : l->cfg->runtime_dir;
    snprintf(code_dir, sizeof(code_dir), "%s", sandboxed ? "/var/task" : host_code);
    snprintf(arn, sizeof(arn), "%s", cfg_str(c, "FunctionArn"));
    snprintf(group, sizeof(group), "/aws/lambda/%s", fn->name);

    struct strv argv = {0}, env = {0};
    int provided = str_has_prefix(runtime, "provided");
    if (str_has_prefix(runtime, "python")) {
        snprintf(lang_dir, sizeof(lang_dir), "%s/python", runtimes);
        strv_addf(&argv, "/usr/bin/python3");
        strv_addf(&argv, "-S"); /* no site: see runtimes/python/bootstrap.py */
        strv_addf(&argv, "%s/bootstrap.py", lang_dir);
    } else if (str_has_prefix(runtime, "nodejs")) {
        snprintf(lang_dir, sizeof(lang_dir), "%s/node", runtimes);
        strv_addf(&argv, "/usr/bin/node");
        strv_addf(&argv, "%s/bootstrap.js", lang_dir);
    } else {
        snprintf(lang_dir, sizeof(lang_dir), "%s", code_dir);
        strv_addf(&argv, "%s/bootstrap", code_dir);
    }
    json_int_t memory = json_integer_value(json_object_get(c, "MemorySize"));
    json_int_t timeout = json_integer_value(json_object_get(c, "Timeout"));
    for (int i = 0; base_env[i]; i++)
        strv_addf(&env, "%s", base_env[i]);
    strv_addf(&env, "LD_LIBRARY_PATH=%s/lib:/opt/lib", code_dir);
    strv_addf(&env, "LAMBDA_TASK_ROOT=%s", code_dir);
    strv_addf(&env, "LAMBDA_RUNTIME_DIR=%s", lang_dir);
    strv_addf(&env, "_HANDLER=%s", cfg_str(c, "Handler"));
    strv_addf(&env, "AWS_REGION=%s", l->cfg->region);
    strv_addf(&env, "AWS_DEFAULT_REGION=%s", l->cfg->region);
    if (!provided)
        strv_addf(&env, "AWS_EXECUTION_ENV=AWS_Lambda_%s", runtime);
    strv_addf(&env, "AWS_LAMBDA_FUNCTION_NAME=%s", fn->name);
    strv_addf(&env, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE=%lld", (long long)memory);
    strv_addf(&env, "AWS_LAMBDA_FUNCTION_VERSION=%s", version);
    strv_addf(&env, "AWS_LAMBDA_INITIALIZATION_TYPE=on-demand");
    strv_addf(&env, "AWS_LAMBDA_LOG_GROUP_NAME=%s", group);
    json_t *logging = json_object_get(c, "LoggingConfig");
    const char *fmt = json_string_value(json_object_get(logging, "LogFormat"));
    int log_json = fmt && strcmp(fmt, "JSON") == 0;
    if (fmt && strcmp(fmt, "JSON") == 0) {
        strv_addf(&env, "AWS_LAMBDA_LOG_FORMAT=JSON");
        const char *lvl = json_string_value(json_object_get(logging, "ApplicationLogLevel"));
        if (lvl)
            strv_addf(&env, "AWS_LAMBDA_LOG_LEVEL=%s", lvl);
    }
    /* Credentials and an endpoint so that SDK clients made without arguments reach this
     * daemon, as on Lambda they reach AWS (Debian's boto3 predates AWS_ENDPOINT_URL: the
     * Python runtime applies it). Inside the sandbox the daemon listens on its own port at
     * 127.0.0.1 (pool_set_endpoint); otherwise that is where it listens on the host. */
    struct edge_credentials cred;
    edge_function_credentials(l->cfg, fn->name, &cred);
    strv_addf(&env, "AWS_ACCESS_KEY_ID=%s", cred.access_key);
    strv_addf(&env, "AWS_SECRET_ACCESS_KEY=%s", cred.secret_key);
    strv_addf(&env, "AWS_SESSION_TOKEN=%s", cred.session_token);
    json_t *vars = json_object_get(json_object_get(c, "Environment"), "Variables");
    if (!json_object_get(vars, "AWS_ENDPOINT_URL")) /* the function's own wins */
        strv_addf(&env, "AWS_ENDPOINT_URL=http://%s:%d", endpoint_host(l->cfg->listen_host),
                  l->cfg->listen_port);
    const char *key;
    json_t *val;
    json_object_foreach(vars, key, val) strv_addf(&env, "%s=%s", key, json_string_value(val));

    struct pool_fn_spec spec = {
        .name = fn->name,
        .version = version,
        .arn = arn,
        .log_group = group,
        .argv = argv.v,
        .envp = env.v,
        .cwd = code_dir,
        .code_dir = host_code,
        .runtime_dir = l->cfg->runtime_dir,
        .host_network = function_network_granted(fn),
        .tmp_mb = (unsigned)json_integer_value(
            json_object_get(json_object_get(c, "EphemeralStorage"), "Size")),
        .timeout_ms = (unsigned)timeout * 1000,
        .memory_mb = (unsigned)memory,
        /* a reservation caps the function's instances too (0 never runs: throttled earlier) */
        .max_instances = fn->reserved_set && fn->reserved > 0 ? fn->reserved : 0,
        .log_json = log_json,
        .system_log_level = log_json ? level_of(logging, "SystemLogLevel") : 0,
        .app_log_level = log_json ? level_of(logging, "ApplicationLogLevel") : 0,
        .zygote = l->python_zygote && str_has_prefix(runtime, "python") && !env_shapes_startup(vars)
                      ? "python"
                      : NULL,
    };
    struct pool_fn *run = pool_fn_new(l->pool, &spec);
    strv_release(&argv);
    strv_release(&env);
    return run;
}

struct pool_fn *function_runner(struct lambda *l, struct function *fn, const char *version)
{
    if (!version) {
        if (!fn->run)
            fn->run = build_runner(l, fn, fn->config, fn->code_hex, "$LATEST");
        return fn->run;
    }
    struct version_run *have = function_version_run(fn, version);
    if (have)
        return have->run;
    json_t *rec = json_object_get(fn->versions, version);
    const char *hex = json_string_value(json_object_get(rec, "CodeHex"));
    if (!rec || !hex || strlen(version) >= sizeof(have->version))
        return NULL;
    struct version_run *v = realloc(fn->vruns, (fn->nvruns + 1) * sizeof(*v));
    if (!v)
        return NULL;
    fn->vruns = v;
    struct pool_fn *run = build_runner(l, fn, json_object_get(rec, "Configuration"), hex, version);
    if (!run)
        return NULL;
    v += fn->nvruns++;
    memset(v, 0, sizeof(*v));
    snprintf(v->version, sizeof(v->version), "%s", version);
    v->run = run;
    /* a version with provisioned concurrency keeps its instances warm from the start */
    v->provisioned = provisioned_wanted(fn, version);
    if (v->provisioned) {
        v->short_since_ms = mono_us() / 1000;
        pool_fn_provision(run, v->provisioned);
    }
    return run;
}

/*=== Validation ===*/

int param_fail(struct param_error *err, unsigned status, const char *code, const char *fmt, ...)
{
    err->status = status;
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);
    return -1;
}

int param_validation(struct param_error *err, const char *value, const char *field,
                     const char *constraint)
{
    return param_fail(err, 400, "ValidationException",
                      "1 validation error detected: Value '%.200s' at '%s' failed to satisfy "
                      "constraint: %s",
                      value, field, constraint);
}

static int is_name_char(int c)
{
    return isalnum(c) || c == '-' || c == '_';
}

#define NAME_PATTERN                                                                               \
    "Member must satisfy regular expression pattern: "                                             \
    "(arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{2}(-gov)?-[a-z]+-\\d{1}:)?(\\d{12}:)?(function:)?("     \
    "[a-zA-Z0-9-_]+)(:(\\$LATEST|[a-zA-Z0-9-_]+))?"

static int all_digits(const char *s, size_t n)
{
    if (strlen(s) != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)s[i]))
            return 0;
    return 1;
}

/* $LATEST, or a version number / alias name */
static int qualifier_ok(const char *q)
{
    if (strcmp(q, "$LATEST") == 0)
        return 1;
    if (!*q || strlen(q) > 128)
        return 0;
    for (const char *p = q; *p; p++)
        if (!is_name_char((unsigned char)*p))
            return 0;
    return 1;
}

int parse_function_ref(const char *segment, char name[65], char qualifier[130],
                       struct param_error *err)
{
    char ref[512];
    size_t n = strlen(segment);
    if (n >= sizeof(ref))
        return param_validation(err, segment, "functionName",
                                "Member must have length less than or equal to 170");
    memcpy(ref, segment, n + 1);
    long len = percent_decode(ref, n);
    if (len < 0 || memchr(ref, '\0', (size_t)len))
        return param_validation(err, segment, "functionName", NAME_PATTERN);
    /* name | name:q | acct:function:name[:q] | arn:aws:lambda:region:acct:function:name[:q];
     * every part non-empty */
    char *parts[9], copy[512], *rest = copy;
    int np = 0;
    snprintf(copy, sizeof(copy), "%s", ref);
    while (rest && np < 9)
        parts[np++] = strsep(&rest, ":");
    for (int i = 0; i < np; i++)
        if (!*parts[i])
            return param_validation(err, ref, "functionName", NAME_PATTERN);
    const char *fname = NULL, *q = NULL;
    if (rest) {
        /* more than 8 parts */
    } else if (np == 1 || np == 2) {
        fname = parts[0];
        q = np == 2 ? parts[1] : NULL;
    } else if ((np == 3 || np == 4) && all_digits(parts[0], 12) &&
               strcmp(parts[1], "function") == 0) {
        fname = parts[2];
        q = np == 4 ? parts[3] : NULL;
    } else if ((np == 7 || np == 8) && strcmp(parts[0], "arn") == 0 &&
               str_has_prefix(parts[1], "aws") && strcmp(parts[2], "lambda") == 0 &&
               all_digits(parts[4], 12) && strcmp(parts[5], "function") == 0) {
        fname = parts[6];
        q = np == 8 ? parts[7] : NULL;
    }
    if (!fname || strlen(fname) > 64 || (q && !qualifier_ok(q)))
        return param_validation(err, ref, "functionName", NAME_PATTERN);
    for (const char *p = fname; *p; p++)
        if (!is_name_char((unsigned char)*p))
            return param_validation(err, ref, "functionName", NAME_PATTERN);
    snprintf(name, 65, "%s", fname);
    if (qualifier)
        snprintf(qualifier, 130, "%s", q ? q : "");
    return 0;
}

static const char *const supported_runtimes[] = {
    "python3.8",  "python3.9",    "python3.10",      "python3.11", "python3.12",
    "python3.13", "nodejs16.x",   "nodejs18.x",      "nodejs20.x", "nodejs22.x",
    "provided",   "provided.al2", "provided.al2023", NULL,
};

static const char *const deprecated_runtimes[] = {
    "python2.7",  "python3.6",  "python3.7",  "nodejs",     "nodejs4.3",      "nodejs6.10",
    "nodejs8.10", "nodejs10.x", "nodejs12.x", "nodejs14.x", "nodejs4.3-edge", NULL,
};

static int in_list(const char *s, const char *const *list)
{
    for (; *list; list++)
        if (strcmp(s, *list) == 0)
            return 1;
    return 0;
}

int param_int(json_t *body, const char *key, const char *field, long min, long max, json_int_t *out,
              struct param_error *err)
{
    json_t *v = json_object_get(body, key);
    if (!v)
        return 1;
    if (!json_is_integer(v))
        return param_fail(err, 400, "InvalidParameterValueException", "%s must be an integer", key);
    json_int_t i = json_integer_value(v);
    char text[32];
    snprintf(text, sizeof(text), "%lld", (long long)i);
    char constraint[96];
    if (i < min) {
        snprintf(constraint, sizeof(constraint),
                 "Member must have value greater than or equal to %ld", min);
        return param_validation(err, text, field, constraint);
    }
    if (i > max) {
        snprintf(constraint, sizeof(constraint), "Member must have value less than or equal to %ld",
                 max);
        return param_validation(err, text, field, constraint);
    }
    *out = i;
    return 0;
}

static int check_string(json_t *body, const char *key, const char **out, struct param_error *err)
{
    json_t *v = json_object_get(body, key);
    if (!v)
        return 1;
    if (!json_is_string(v))
        return param_fail(err, 400, "InvalidParameterValueException", "%s must be a string", key);
    *out = json_string_value(v);
    return 0;
}

static const char *const reserved_env[] = {
    "_HANDLER",
    "_X_AMZN_TRACE_ID",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_ACCESS_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_LAMBDA_RUNTIME_API",
    "LAMBDA_TASK_ROOT",
    "LAMBDA_RUNTIME_DIR",
    NULL,
};

static int check_environment(json_t *env, struct param_error *err)
{
    if (!json_is_object(env))
        return param_fail(err, 400, "InvalidParameterValueException",
                          "Environment must be an object");
    json_t *vars = json_object_get(env, "Variables");
    if (!vars)
        return 0;
    if (!json_is_object(vars))
        return param_fail(err, 400, "InvalidParameterValueException",
                          "Environment.Variables must be a map of strings");
    size_t total = 0;
    char reserved[512] = "";
    const char *key;
    json_t *val;
    json_object_foreach(vars, key, val)
    {
        if (!json_is_string(val))
            return param_fail(err, 400, "InvalidParameterValueException",
                              "Environment variable %.100s must be a string", key);
        if (!isalpha((unsigned char)key[0]))
            return param_fail(
                err, 400, "InvalidParameterValueException",
                "Lambda was unable to configure your environment variables because the "
                "environment variables you have provided contains invalid keys: %.100s",
                key);
        for (const char *p = key; *p; p++)
            if (!isalnum((unsigned char)*p) && *p != '_')
                return param_fail(
                    err, 400, "InvalidParameterValueException",
                    "Lambda was unable to configure your environment variables because "
                    "the environment variables you have provided contains invalid keys: "
                    "%.100s",
                    key);
        if (in_list(key, reserved_env)) {
            size_t used = strlen(reserved);
            snprintf(reserved + used, sizeof(reserved) - used, "%s%s", used ? ", " : "", key);
        }
        total += strlen(key) + json_string_length(val);
    }
    if (reserved[0])
        return param_fail(err, 400, "InvalidParameterValueException",
                          "Lambda was unable to configure your environment variables because the "
                          "environment variables you have provided contains reserved keys that are "
                          "currently not supported for modification. Reserved keys used in this "
                          "request: %s",
                          reserved);
    if (total > LAMBDA_ENV_MAX)
        return param_fail(err, 400, "InvalidParameterValueException",
                          "Lambda was unable to configure your environment variables because the "
                          "environment variables you have provided exceeded the 4KB limit. String "
                          "measured: %zu",
                          total);
    return 0;
}

#define ROLE_PATTERN                                                                               \
    "Member must satisfy regular expression pattern: "                                             \
    "arn:(aws[a-zA-Z-]*)?:iam::\\d{12}:role/?[a-zA-Z_0-9+=,.@\\-_/]+"

static int role_ok(const char *role)
{
    /* arn:aws:iam::123456789012:role/name */
    const char *p = role;
    if (!str_has_prefix(p, "arn:aws"))
        return 0;
    p = strchr(p + 7, ':');
    if (!p || !str_has_prefix(p, ":iam::"))
        return 0;
    p += 6;
    for (int i = 0; i < 12; i++, p++)
        if (!isdigit((unsigned char)*p))
            return 0;
    if (!str_has_prefix(p, ":role/") && !str_has_prefix(p, ":role"))
        return 0;
    p += 5;
    if (*p == '/')
        p++;
    if (!*p)
        return 0;
    for (; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("+=,.@-_/", *p))
            return 0;
    return 1;
}

int apply_configuration(struct lambda *l, json_t *config, json_t *body, int creating,
                        struct param_error *err)
{
    (void)l;
    const char *s = NULL;
    json_int_t i = 0;
    int rc;

    if ((rc = check_string(body, "Runtime", &s, err)) < 0)
        return -1;
    if (rc == 0) {
        if (in_list(s, deprecated_runtimes))
            return param_fail(
                err, 400, "InvalidParameterValueException",
                "The runtime parameter of %s is no longer supported for creating or "
                "updating AWS Lambda functions. We recommend you use a supported runtime "
                "while creating or updating functions.",
                s);
        if (!in_list(s, supported_runtimes))
            return param_validation(err, s, "runtime",
                                    "Member must satisfy enum value set: [python3.8, python3.9, "
                                    "python3.10, python3.11, python3.12, python3.13, nodejs16.x, "
                                    "nodejs18.x, nodejs20.x, nodejs22.x, provided, provided.al2, "
                                    "provided.al2023]");
        json_object_set_new(config, "Runtime", json_string(s));
    } else if (creating) {
        return param_fail(err, 400, "InvalidParameterValueException",
                          "Runtime and Handler are mandatory parameters for functions created with "
                          "deployment packages.");
    }
    const char *runtime = json_string_value(json_object_get(config, "Runtime"));

    if ((rc = check_string(body, "Role", &s, err)) < 0)
        return -1;
    if (rc == 0) {
        if (!role_ok(s))
            return param_validation(err, s, "role", ROLE_PATTERN);
        json_object_set_new(config, "Role", json_string(s));
    } else if (creating) {
        return param_fail(err, 400, "ValidationException",
                          "1 validation error detected: Value null at 'role' failed to satisfy "
                          "constraint: Member must not be null");
    }

    if ((rc = check_string(body, "Handler", &s, err)) < 0)
        return -1;
    if (rc == 0) {
        if (!*s || strlen(s) > 128 || strpbrk(s, " \t\r\n"))
            return param_validation(err, s, "handler",
                                    "Member must satisfy regular expression pattern: [^\\s]+");
        json_object_set_new(config, "Handler", json_string(s));
    } else if (creating && runtime && !str_has_prefix(runtime, "provided")) {
        return param_fail(err, 400, "InvalidParameterValueException",
                          "Runtime and Handler are mandatory parameters for functions created with "
                          "deployment packages.");
    }

    if ((rc = check_string(body, "Description", &s, err)) < 0)
        return -1;
    if (rc == 0) {
        if (strlen(s) > 256)
            return param_validation(err, s, "description",
                                    "Member must have length less than or equal to 256");
        json_object_set_new(config, "Description", json_string(s));
    }
    if ((rc = param_int(body, "Timeout", "timeout", 1, 900, &i, err)) < 0)
        return -1;
    if (rc == 0)
        json_object_set_new(config, "Timeout", json_integer(i));
    if ((rc = param_int(body, "MemorySize", "memorySize", 128, 10240, &i, err)) < 0)
        return -1;
    if (rc == 0)
        json_object_set_new(config, "MemorySize", json_integer(i));

    json_t *env = json_object_get(body, "Environment");
    if (env) {
        if (check_environment(env, err) < 0)
            return -1;
        json_t *vars = json_object_get(env, "Variables");
        json_object_set_new(config, "Environment",
                            vars ? json_pack("{s:O}", "Variables", vars)
                                 : json_pack("{s:o}", "Variables", json_object()));
    }
    json_t *eph = json_object_get(body, "EphemeralStorage");
    if (eph) {
        if (param_int(eph, "Size", "ephemeralStorage.size", 512, 10240, &i, err) < 0)
            return -1;
        if (json_object_get(eph, "Size"))
            json_object_set_new(config, "EphemeralStorage", json_pack("{s:I}", "Size", i));
    }
    json_t *tracing = json_object_get(body, "TracingConfig");
    if (tracing) {
        const char *mode = json_string_value(json_object_get(tracing, "Mode"));
        if (!mode || (strcmp(mode, "Active") != 0 && strcmp(mode, "PassThrough") != 0))
            return param_validation(err, mode ? mode : "null", "tracingConfig.mode",
                                    "Member must satisfy enum value set: [Active, PassThrough]");
        json_object_set_new(config, "TracingConfig", json_pack("{s:s}", "Mode", mode));
    }
    json_t *logging = json_object_get(body, "LoggingConfig");
    if (logging) {
        json_t *cur = json_object_get(config, "LoggingConfig");
        const char *fmt = json_string_value(json_object_get(logging, "LogFormat"));
        if (fmt && strcmp(fmt, "Text") != 0 && strcmp(fmt, "JSON") != 0)
            return param_validation(err, fmt, "loggingConfig.logFormat",
                                    "Member must satisfy enum value set: [Text, JSON]");
        const char *levels[] = {"ApplicationLogLevel", "SystemLogLevel"};
        const char *app_lv = json_string_value(json_object_get(logging, levels[0]));
        const char *sys_lv = json_string_value(json_object_get(logging, levels[1]));
        if (app_lv && !in_list(app_lv, (const char *const[]){"TRACE", "DEBUG", "INFO", "WARN",
                                                             "ERROR", "FATAL", NULL}))
            return param_validation(
                err, app_lv, "loggingConfig.applicationLogLevel",
                "Member must satisfy enum value set: [TRACE, DEBUG, INFO, WARN, ERROR, FATAL]");
        if (sys_lv && !in_list(sys_lv, (const char *const[]){"DEBUG", "INFO", "WARN", NULL}))
            return param_validation(err, sys_lv, "loggingConfig.systemLogLevel",
                                    "Member must satisfy enum value set: [DEBUG, INFO, WARN]");
        if (fmt)
            json_object_set_new(cur, "LogFormat", json_string(fmt));
        const char *effective = json_string_value(json_object_get(cur, "LogFormat"));
        for (int k = 0; k < 2; k++) {
            const char *lv = json_string_value(json_object_get(logging, levels[k]));
            if (lv && effective && strcmp(effective, "JSON") != 0)
                return param_fail(
                    err, 400, "InvalidParameterValueException",
                    "LogLevel is not supported when LogFormat is set to \"Text\". Remove "
                    "LogLevel from your request or change the LogFormat to \"JSON\" and "
                    "try again.");
            if (lv)
                json_object_set_new(cur, levels[k], json_string(lv));
            else if (effective && strcmp(effective, "JSON") == 0 &&
                     !json_object_get(cur, levels[k]))
                json_object_set_new(cur, levels[k], json_string("INFO"));
        }
        if (effective && strcmp(effective, "Text") == 0) {
            json_object_del(cur, "ApplicationLogLevel");
            json_object_del(cur, "SystemLogLevel");
        }
    }
    json_t *arch = json_object_get(body, "Architectures");
    if (arch) {
        const char *a = json_string_value(json_array_get(arch, 0));
        if (!json_is_array(arch) || json_array_size(arch) != 1 || !a ||
            (strcmp(a, "x86_64") != 0 && strcmp(a, "arm64") != 0))
            return param_validation(
                err, a ? a : "null", "architectures",
                "Member must satisfy constraint: [Member must satisfy enum value "
                "set: [x86_64, arm64]]");
        if (strcmp(a, "arm64") == 0)
            return param_fail(err, 400, "InvalidParameterValueException",
                              "Architecture arm64 is not supported by this Ignis host (x86_64).");
    }
    /* no SQS queues or SNS topics yet: a dead-letter queue can only be absent
     * (an empty TargetArn is how a client removes one) */
    json_t *dlq = json_object_get(body, "DeadLetterConfig");
    const char *dlq_arn = json_string_value(json_object_get(dlq, "TargetArn"));
    int dlq_empty = json_is_object(dlq) && json_object_size(dlq) == 1 && dlq_arn && !*dlq_arn;
    static const char *const unsupported[] = {
        "VpcConfig",   "DeadLetterConfig",     "KMSKeyArn", "Layers", "FileSystemConfigs",
        "ImageConfig", "CodeSigningConfigArn", "SnapStart", NULL};
    for (const char *const *u = unsupported; *u; u++) {
        json_t *v = json_object_get(body, *u);
        if (v == dlq && dlq_empty)
            continue;
        if (v && !(json_is_array(v) && json_array_size(v) == 0) &&
            !(json_is_object(v) && json_object_size(v) == 0) && !json_is_null(v))
            return param_fail(err, 400, "InvalidParameterValueException",
                              "%s is not supported by Ignis yet.", *u);
    }
    return 0;
}
