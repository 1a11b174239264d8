/*
 * ignis-init: PID 1 of every sandboxed instance, as Lambda's init is in its microVM. The
 * instance's runtime is its child (PID 2); an orphan of the function (a shell's background
 * job, a daemonised helper) is reparented to PID 1 and would stay a zombie forever under a
 * runtime that never waits for processes it does not know, until the instance hit its
 * process limit. This program waits for every child; when the runtime ends it writes the
 * runtime's wait status to the status fd (the daemon reports the runtime's end, not
 * init's: PID 1 of a namespace cannot die of a signal it does not handle) and exits, which
 * ends every process left in the namespace.
 *
 * Usage (by the sandbox, never by hand): ignis-init STATUS_FD RUNTIME_PID
 *
 * Built freestanding (no libc, raw system calls, x86_64 and aarch64): a static binary of a
 * few pages, so exec'ing it costs a cold start next to nothing.
 */
#include <asm/unistd.h>
#include <linux/errno.h>
#include <linux/prctl.h>

#if defined(__x86_64__)
static long sys3(long n, long a, long b, long c)
{
    long ret;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(n), "D"(a), "S"(b), "d"(c)
                     : "rcx", "r11", "memory");
    return ret;
}

static long sys4(long n, long a, long b, long c, long d)
{
    long ret;
    register long r10 __asm__("r10") = d;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10)
                     : "rcx", "r11", "memory");
    return ret;
}

__asm__(".text\n"
        ".global _start\n"
        "_start:\n"
        "  xor %rbp, %rbp\n"
        "  mov %rsp, %rdi\n" /* argc, argv... */
        "  and $-16, %rsp\n"
        "  call start_c\n"
        "  hlt\n");
#elif defined(__aarch64__)
static long sys4(long n, long a, long b, long c, long d)
{
    register long x8 __asm__("x8") = n;
    register long x0 __asm__("x0") = a;
    register long x1 __asm__("x1") = b;
    register long x2 __asm__("x2") = c;
    register long x3 __asm__("x3") = d;
    __asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3) : "memory");
    return x0;
}

static long sys3(long n, long a, long b, long c)
{
    return sys4(n, a, b, c, 0);
}

__asm__(".text\n"
        ".global _start\n"
        "_start:\n"
        "  mov x29, #0\n"
        "  mov x0, sp\n"
        "  bl start_c\n"
        "  brk #0\n");
#else
#error "ignis-init: add this architecture's system call convention"
#endif

static __attribute__((noreturn)) void exit_group(int code)
{
    for (;;)
        sys3(__NR_exit_group, code, 0, 0);
}

static long parse_number(const char *s)
{
    long n = 0;
    if (!s || !*s)
        return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        n = n * 10 + (*s - '0');
    }
    return n;
}

__attribute__((used, noreturn)) void start_c(long *sp)
{
    long argc = sp[0];
    char **argv = (char **)(sp + 1);
    long status_fd = argc == 3 ? parse_number(argv[1]) : -1;
    long runtime = argc == 3 ? parse_number(argv[2]) : -1;
    if (status_fd < 0 || runtime <= 0)
        exit_group(127);
    for (int fd = 0; fd < 3; fd++) /* the instance's output pipe belongs to its processes */
        sys3(__NR_close, fd, 0, 0);
    /* The function runs as the same uid: not dumpable, so it cannot open /proc/1/fd/N and
     * write a made-up status for its own runtime. */
    sys3(__NR_prctl, PR_SET_DUMPABLE, 0, 0);
    for (;;) {
        int status = 0;
        long pid = sys4(__NR_wait4, -1, (long)&status, 0, 0);
        if (pid == -EINTR)
            continue;
        if (pid < 0) /* no child left: the runtime is gone too */
            exit_group(0);
        if (pid != runtime)
            continue; /* an orphan, reaped */
        sys3(__NR_write, status_fd, (long)&status, sizeof(status));
        exit_group((status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f));
    }
}
