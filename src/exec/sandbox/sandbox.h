/*
 * sandbox: runs one program isolated the way a serverless function's execution environment is:
 * its own mount, PID, IPC, UTS, network and cgroup namespaces; a minimal read-only root (made
 * once by sbx_root_new: the host's /usr and library dirs, a few /etc files, a minimal /dev),
 * the code dir at /var/task, an optional runtime dir at /var/runtime, a private /tmp (a
 * filesystem the caller gives, or a size-limited tmpfs), a fresh /proc; an unprivileged
 * uid/gid with every capability dropped, no_new_privs,
 * a seccomp filter and RLIMIT_NOFILE 1024. It knows nothing about what it runs.
 *
 * Networking: by default the program gets a network namespace with only `lo` up, and a TCP
 * listener on 127.0.0.1:SBX_API_PORT inside it is handed to the caller (api_listen_fd), who
 * accepts connections the program makes to that address. With host_network the program
 * shares the caller's network namespace and no listener is made.
 *
 * The program runs as PID 1 of its PID namespace: orphans it does not reap stay zombies until
 * it exits, and only SIGKILL/SIGSTOP (or signals it handles) reach it from outside.
 *
 * Runs as root, or rootless where unprivileged user namespaces are allowed (as bubblewrap
 * does; see sbx_isolate_mounts); sbx_probe says what the host allows. Link with -lseccomp. Files:
 * sandbox.c (orchestrator), mount.c, net.c, caps.c, seccomp.c, rlimit.c.
 */
#ifndef IGNIS_EXEC_SANDBOX_H
#define IGNIS_EXEC_SANDBOX_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct sbx_root;

#define SBX_API_PORT 9001      /* the listener inside the sandbox: 127.0.0.1:9001 */
#define SBX_DEFAULT_TMP_MB 512 /* tmp_mb 0 */
#define SBX_NOFILE 1024        /* RLIMIT_NOFILE, soft and hard */
#define SBX_MAX_CG_FDS 3       /* one per cgroup v1 hierarchy */

/* What the child was doing when setup failed (sbx_child.failed_step). */
enum sbx_step {
    SBX_STEP_NONE = 0,
    SBX_STEP_USERNS,   /* map uid/gid in the sandbox's own user namespace (rootless) */
    SBX_STEP_CGROUP,   /* enter the cgroup (sbx_spec.cg_fds) */
    SBX_STEP_CGROUPNS, /* unshare(CLONE_NEWCGROUP) once inside the instance's group */
    SBX_STEP_STDIO,
    SBX_STEP_HOSTNAME,
    SBX_STEP_NET_LO,
    SBX_STEP_NET_LISTEN,
    SBX_STEP_NET_SEND,
    SBX_STEP_NET_JOIN, /* setns into sbx_spec.netns_fd */
    SBX_STEP_MOUNT,    /* the message names the mount operation */
    SBX_STEP_CHDIR,
    SBX_STEP_RLIMIT,
    SBX_STEP_BOUNDING,
    SBX_STEP_CREDS,
    SBX_STEP_CAPS,
    SBX_STEP_NNP,
    SBX_STEP_SECCOMP,
    SBX_STEP_EXEC, /* execve itself failed: a bad entry point, not a sandbox problem */
    SBX_STEP_INIT, /* starting ignis-init as PID 1 (spec.init_fd) */
};

struct sbx_spec {
    const struct sbx_root *root; /* what the filesystem starts from (sbx_root_new) */
    char *const *argv;           /* argv[0]: absolute path inside the sandbox */
    char *const *envp;           /* passed as is */
    const char *code_dir;        /* host path, mounted read-only at /var/task */
    const char *runtime_dir;     /* host path, mounted read-only at /var/runtime; NULL: none */
    const char *cwd;             /* inside; NULL: /var/task */
    int tmp_mount_fd;            /* > 0: a detached mount (fsmount, open_tree) moved to /tmp, e.g.
                                    from src/exec/scratch; 0 or -1: a tmpfs of tmp_mb there, which
                                    counts against the memory limit */
    unsigned tmp_mb;             /* size of that tmpfs; 0: SBX_DEFAULT_TMP_MB */
    uid_t uid;                   /* the program's uid and gid: the root's (its passwd names them) */
    gid_t gid;
    int host_network;           /* 1: share the caller's network namespace */
    uint16_t extra_port;        /* > 0, with a network namespace of the sandbox's own (no
                                   host_network, no netns_fd): a second listener there, on
                                   127.0.0.1:extra_port, handed back as extra_listen_fd (with
                                   netns_fd the caller makes it: sbx_netns_listen) */
    int netns_fd;               /* > 0: join this network namespace from sbx_netns_prepare, whose
                                   listener the caller keeps, instead of making one (saves about
                                   1 ms); 0 or -1: a new one */
    int stdout_fd;              /* becomes fds 1 and 2 (stdin is /dev/null); -1: inherit; not 0 */
    int cg_fds[SBX_MAX_CG_FDS]; /* the cgroup entered before anything else: fds that move
                                   the writer of "0" there (cgroup_attach_fds; the caller
                                   still calls cgroup_attach_done after), ncg_fds of them */
    int ncg_fds;
    uint64_t rlimit_data;  /* RLIMIT_DATA in bytes (a memory limit without cgroups); 0: none */
    unsigned rlimit_nproc; /* RLIMIT_NPROC (a process limit without cgroups); 0: none */
    int init_fd;           /* > 0: runtimes/init's ignis-init, opened by the caller: it becomes
                              PID 1 (reaping orphans) and the program PID 2; 0 or -1: the
                              program is PID 1 */
    int status_fd;         /* with init_fd: where init writes the program's wait status (an
                              int) when it ends, before it exits itself */
};

struct sbx_child {
    pid_t pid;                 /* a child of the caller (SIGCHLD, waitpid), host PID */
    int pidfd;                 /* O_CLOEXEC, owned by the caller */
    int api_listen_fd;         /* O_CLOEXEC|O_NONBLOCK listener, owned by the caller; -1 with
                                  host_network */
    int extra_listen_fd;       /* the same for sbx_spec.extra_port, or -1 */
    enum sbx_step failed_step; /* on failure: where; SBX_STEP_NONE otherwise */
};

/*
 * Starts spec->argv in a new sandbox and returns once it has exec'd (or failed to). Returns 0
 * and *out, or -errno with out->pid -1, no fd left open, the child reaped, out->failed_step
 * set when the child got that far, and a lowercase message in err ("bind /tmp/x at /var/task
 * read-only: No such file or directory", "execve /var/runtime/bootstrap: ..."). Nothing of
 * spec is kept. Blocks the calling thread for the setup (about 1-2 ms); thread-safe except
 * that the cgroup's fds must not be used concurrently.
 */
int sbx_spawn(const struct sbx_spec *spec, struct sbx_child *out, char *err, size_t errlen);

/*
 * For zygotes (a process that did its slow start-up once, e.g. an interpreter with its
 * runtime loaded, and forks a sandboxed copy of itself per instance): sbx_spawn without the
 * exec. The child is a copy of the caller, made a child of the caller's parent
 * (CLONE_PARENT: whoever asked the zygote reaps it), that applies the same sandbox, closes
 * every fd above 2 (report_fd included: EOF there means the setup is done) and returns 0 into
 * the caller's code; signal dispositions are kept (an interpreter's own). The caller gets
 * the child's pid (> 0) and *pidfd at once, without waiting for the setup: the child reports
 * a failure as sbx_spawn's does, {step, errno, mount op} (struct sbx_report) on report_fd,
 * and sends a listener it made (no netns_fd) over api_sock_fd. -errno if the clone failed.
 * spec->argv and envp are not used. With spec->init_fd the child forks once more after the
 * setup: the copy that returns is PID 2, and PID 1 (the pid given) becomes ignis-init.
 */
struct sbx_report {
    int step;  /* enum sbx_step */
    int err;   /* positive errno */
    int mount; /* index of the failed mount op */
};
int sbx_fork(const struct sbx_spec *spec, int report_fd, int api_sock_fd, int *pidfd, char *err,
             size_t errlen);
/* Describes a child's report as sbx_spawn's err does (plan rebuilt from spec). */
void sbx_describe_report(const struct sbx_spec *spec, const struct sbx_report *r, char *err,
                         size_t errlen);
/* A root made elsewhere by sbx_root_new, as a zygote names it (nothing mounted; free() it). */
struct sbx_root *sbx_root_attach(const char *dir, uid_t uid, gid_t gid, int userns);
const char *sbx_root_dir(const struct sbx_root *root);

/* The caller's end of a zygote (zygote.c). sbx_zygote_start runs argv (absolute path) with
 * envp, stdin/stdout on /dev/null, stderr inherited and the control socket as fd 3, on which
 * the program calls sbx_zygote_serve; it starts in the background and is ready once it
 * serves (sbx_zygote_ready: a non-blocking check, 1 ready, 0 not yet, -1 dead). sbx_zygote_spawn is
 * sbx_spawn through the zygote (same spec and results, argv/envp handed to the child, which
 * is the caller's child): -EAGAIN when it is not ready; a zygote that fails to answer is
 * dropped (ready stays 0). sbx_zygote_free closes the socket (the zygote exits) and reaps
 * it. Single-threaded use. */
struct sbx_zygote;
struct sbx_zygote *sbx_zygote_start(char *const argv[], char *const envp[]);
int sbx_zygote_ready(struct sbx_zygote *z);
pid_t sbx_zygote_pid(const struct sbx_zygote *z);
int sbx_zygote_spawn(struct sbx_zygote *z, const struct sbx_spec *spec, struct sbx_child *out,
                     char *err, size_t errlen);
void sbx_zygote_free(struct sbx_zygote *z);

/* The zygote's end: serves requests on fd 3 until it closes (returns -1 in the zygote).
 * Returns 0 in each sandboxed child, with the argv and envp it was given (malloc'd). The
 * hooks run around each fork (an interpreter's own fork bookkeeping). */
struct sbx_zygote_hooks {
    void (*before_fork)(void);
    void (*after_fork_parent)(void);
    void (*after_fork_child)(void);
};
int sbx_zygote_serve(const struct sbx_zygote_hooks *hooks, char ***argv, char ***envp);

enum sbx_support {
    SBX_SUPPORT_NONE = 0,  /* no sandbox possible */
    SBX_SUPPORT_ROOT = 1,  /* root with all namespaces and seccomp: sbx_spawn works */
    SBX_SUPPORT_USERNS = 2 /* not root, but unprivileged user namespaces: rootless mode */
};

/* Moves the calling process into a mount namespace of its own (mounts propagate in from the
 * host, none out), where sbx_root_new can mount without the host seeing it and which a killed
 * process takes along. userns (rootless, SBX_SUPPORT_USERNS): first into a user namespace of
 * its own too, where it is uid/gid 0 with every capability; then every sandbox gets a user
 * namespace of its own, whose one uid/gid map to this one (on the host: the caller's), and
 * sbx_spec.netns_fd cannot be used. Call before any thread starts. Returns 0 or -errno. */
int sbx_isolate_mounts(int userns);
/* Whether sbx_isolate_mounts made a user namespace. */
int sbx_in_userns(void);

/* Builds at dir (an absolute path; created, must be empty) the read-only root every sandbox
 * starts from, for programs running as uid/gid: a tmpfs with the host's /usr and library dirs,
 * a few /etc entries and /dev (see mount.c). Takes a few ms: call once, in a mount namespace
 * of the caller's own (sbx_isolate_mounts). NULL with a message in err on failure. */
struct sbx_root *sbx_root_new(const char *dir, uid_t uid, gid_t gid, char *err, size_t errlen);
/* Unmounts and removes it; sandboxes already started keep their copy. */
void sbx_root_free(struct sbx_root *root);

/* Makes a network namespace as a sandbox gets it (only `lo`, up) and a listener on
 * 127.0.0.1:SBX_API_PORT inside it, for sbx_spec.netns_fd, without leaving the calling thread
 * in it. Both fds O_CLOEXEC (the listener also O_NONBLOCK); the listener keeps the namespace
 * alive. Thread-safe. Returns 0 or -errno. */
int sbx_netns_prepare(int *ns_fd, int *listen_fd);

/* A listener (O_CLOEXEC|O_NONBLOCK) on 127.0.0.1:port inside the network namespace ns (a
 * namespace fd, or a sandboxed child's pidfd), made without leaving the calling thread in it:
 * how a caller offers a sandbox more services than the Runtime API. Returns it or -errno. */
int sbx_netns_listen(int ns, uint16_t port);

/* What this host allows, with a one-line description in desc. Forks once (call it at startup,
 * not on a hot path). Returns an enum sbx_support. */
int sbx_probe(char *desc, size_t size);

/* "mount", "execve", ... for logs. */
const char *sbx_step_name(enum sbx_step step);

#endif
