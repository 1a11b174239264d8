#!/usr/bin/python3
"""Profile the daemon's warm invoke path: syscalls, perf, callgrind.

    /usr/bin/python3 bench/profile.py [--runtime provided|python|node] [--dry-run]
                                      [--invokes N] [--seconds S] [--out DIR]
                                      [--no-perf] [--no-callgrind]

Uses the fixtures of bench/run.py (one echo function) and reports, per invoke:

1. syscalls the daemon makes (strace -c attached to it over N sequential
   invokes);
2. where its CPU time goes, kernel included (perf record -e cpu-clock on the
   daemon for S seconds of wrk at 1 client), top symbols by self time;
3. instructions by function (valgrind --tool=callgrind --instr-atstart=no,
   instrumentation switched on with callgrind_control for exactly N
   sequential invokes), inclusive and self, in Ir per invoke.

Caveats: callgrind counts instructions, not time, and misses the kernel
(most of this daemon's cost); `rep stos`/`rep movs` count one Ir per
iteration, which inflates memset/memcpy. Valgrind 3.19 (Debian 12) does not
implement pidfd_open, so under callgrind the pool cannot start instances:
the script then profiles the edge alone (X-Amz-Invocation-Type: DryRun) and
says so. perf in a VM only has the cpu-clock software event, whose samples
pile up where interrupts get re-enabled (_raw_spin_unlock_irqrestore,
finish_task_switch): read those as "waking another task / switching".
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # no bench/__pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as bench  # noqa: E402


def invoke_loop(lam, name, n, extra=None):
    """n sequential invokes reusing one pre-signed request (as wrk does)."""
    path = "/2015-03-31/functions/%s/invocations" % name
    headers = lam.sign("POST", path, bench.EVENT, extra)
    for _ in range(n):
        lam.conn.request("POST", path, body=bench.EVENT, headers=headers)
        r = lam.conn.getresponse()
        body = r.read()
        if r.status not in (200, 204) or r.getheader("X-Amz-Function-Error"):
            raise RuntimeError("invoke answered HTTP %d %s: %r" % (
                r.status, r.getheader("X-Amz-Function-Error") or "", body[:300]))


def section(title):
    print("\n== " + title, flush=True)


def strace_syscalls(args, work, boot, extra):
    d = bench.Daemon(args.ignis, work).start()
    try:
        lam = bench.Lambda(d.port)
        lam.create("prof", args.runtime, bench.make_zip(args.runtime, boot))
        invoke_loop(lam, "prof", 200, extra)
        out = os.path.join(work, "strace.txt")
        st = subprocess.Popen(["strace", "-c", "-o", out, "-p", str(d.proc.pid)],
                              stderr=subprocess.DEVNULL)
        time.sleep(0.5)  # attached
        invoke_loop(lam, "prof", args.invokes, extra)
        st.terminate()
        st.wait()
    finally:
        d.stop()
    section("daemon syscalls per invoke (strace -c, %d sequential invokes)" % args.invokes)
    with open(out) as f:
        for line in f:
            cols = line.split()
            if len(cols) >= 5 and cols[0][0].isdigit() and cols[-1] != "total":
                calls = int(cols[3])
                errs = int(cols[4]) if len(cols) == 6 else 0
                print("  %-14s %6.2f%s" % (cols[-1], calls / args.invokes,
                                           "  (%.2f failed)" % (errs / args.invokes)
                                           if errs else ""))
            elif cols and cols[-1] == "total":
                print("  %-14s %6.2f" % ("total", int(cols[3]) / args.invokes))


def perf_profile(args, work, boot, extra, wrk):
    d = bench.Daemon(args.ignis, work)
    d.data_dir = os.path.join(work, "data-perf")
    d.start()
    data = os.path.join(work, "perf.data")
    try:
        lam = bench.Lambda(d.port)
        lam.create("prof", args.runtime, bench.make_zip(args.runtime, boot))
        lam.invoke("prof")
        fig = bench.Figure("prof", args.runtime, "prof", 1, 0, extra)
        fig.prepare(lam, work)
        url = "http://" + lam.host
        bench.run_wrk(wrk, url, fig.script, 1, 1)  # warm
        p = subprocess.Popen(["perf", "record", "-e", "cpu-clock", "-F", "4999", "-g",
                              "-o", data, "-p", str(d.proc.pid), "--", "sleep",
                              str(args.seconds)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        r = bench.run_wrk(wrk, url, fig.script, 1, args.seconds + 1)
        _, err = p.communicate()
    finally:
        d.stop()
    if p.returncode != 0 or not os.path.exists(data):
        print("profile: perf record failed: %s" % err.decode(errors="replace")[-500:])
        return
    section("perf: daemon CPU by symbol, self time (%d invokes/s at 1 client, p50 %d µs)" % (
        r["rps"], r["p50"]))
    rep = subprocess.run(["perf", "report", "-i", data, "--no-children", "--sort", "dso,sym",
                          "-g", "none", "-q", "--percent-limit", "0.7"],
                         capture_output=True, text=True).stdout
    kernel = user = 0.0
    full = subprocess.run(["perf", "report", "-i", data, "--no-children", "--sort", "dso",
                           "-g", "none", "-q"], capture_output=True, text=True).stdout
    for line in full.splitlines():
        m = re.match(r"\s*([\d.]+)%\s+(\S+)", line)
        if m:
            if "kernel" in m.group(2):
                kernel += float(m.group(1))
            else:
                user += float(m.group(1))
    print("  kernel %.0f%%, user space %.0f%% of the daemon's samples" % (kernel, user))
    for line in rep.splitlines()[:args.top]:
        if line.strip():
            print("  " + line.strip())
    if args.out:
        shutil.copy(data, os.path.join(args.out, "perf.data"))


def annotate_lines(ann, n, top):
    rows = []
    for line in ann.splitlines():
        m = re.match(r"^\s*([\d,]+)\s+\(\s*([\d.]+)%\)\s+(?:\*\s+)?(.*)$", line)
        if not m or "PROGRAM TOTALS" in line:
            continue
        name = m.group(3)
        name = re.sub(r"^\S*/(src/[^:]+):", r"\1:", name)  # shorten our paths
        name = re.sub(r"\[/usr/lib/x86_64-linux-gnu/", "[", name)
        name = re.sub(r"^\./[^:]*:", "", name)  # glibc source paths
        rows.append((int(m.group(1).replace(",", "")) / n, m.group(2), name[:100]))
    seen, out = set(), []
    for r in rows:  # callgrind_annotate lists some functions twice (file and object)
        key = re.sub(r"\s*\[.*\]$", "", r[2])
        if key in seen:
            continue
        seen.add(key)
        out.append(r)
        if len(out) >= top:
            break
    return out


def callgrind_profile(args, work, boot, extra):
    out_file = os.path.join(work, "callgrind.out")
    d = bench.Daemon(args.ignis, work)
    d.data_dir = os.path.join(work, "data-callgrind")
    vg = shutil.which("valgrind")
    real = d.binary
    d.binary = vg
    orig = subprocess.Popen

    def popen(cmd, **kw):  # Daemon.start runs [binary, "serve", ...]
        if cmd and cmd[0] == vg:
            cmd = [vg, "--tool=callgrind", "--instr-atstart=no",
                   "--callgrind-out-file=" + out_file, real] + cmd[1:]
        return orig(cmd, **kw)

    subprocess.Popen = popen
    try:
        d.start(timeout=60)
    finally:
        subprocess.Popen = orig
    what = "%s invokes" % args.runtime
    try:
        lam = bench.Lambda(d.port)
        lam.create("prof", args.runtime, bench.make_zip(args.runtime, boot))
        try:
            invoke_loop(lam, "prof", 20, extra)
        except RuntimeError as e:
            if extra is None and "Function not implemented" in d.read_log():
                print("\nprofile: under valgrind the pool cannot start instances (%s; valgrind "
                      "lacks pidfd_open): profiling the edge alone, as DryRun" %
                      str(e)[:80])
                extra = {"X-Amz-Invocation-Type": "DryRun"}
                what = "DryRun invokes (edge only)"
                invoke_loop(lam, "prof", 20, extra)
            else:
                raise
        subprocess.run(["callgrind_control", "-i", "on", str(d.proc.pid)], check=True,
                       stdout=subprocess.DEVNULL)
        invoke_loop(lam, "prof", args.invokes, extra)
        subprocess.run(["callgrind_control", "-i", "off", str(d.proc.pid)], check=True,
                       stdout=subprocess.DEVNULL)
    finally:
        d.stop(timeout=60)
    outs = sorted(f for f in os.listdir(work) if f.startswith("callgrind.out"))
    if not outs:
        print("profile: callgrind wrote no profile")
        return
    prof = os.path.join(work, outs[-1])
    for inclusive in (True, False):
        ann = subprocess.run(["callgrind_annotate", "--inclusive=%s" % (
            "yes" if inclusive else "no"), prof], capture_output=True, text=True).stdout
        total = re.search(r"^([\d,]+)\s+\(100\.0%\)\s+PROGRAM TOTALS", ann, re.M)
        section("callgrind, %s: Ir per invoke over %d %s%s" % (
            "inclusive" if inclusive else "self", args.invokes, what,
            ", total %.0f" % (int(total.group(1).replace(",", "")) / args.invokes)
            if total else ""))
        for ir, pct, name in annotate_lines(ann, args.invokes, args.top):
            print("  %9.0f %6s%%  %s" % (ir, pct, name))
        if args.out:
            with open(os.path.join(args.out, "callgrind-%s.txt" % (
                    "inclusive" if inclusive else "self")), "w") as f:
                f.write(ann)
    if args.out:
        shutil.copy(prof, os.path.join(args.out, "callgrind.out"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runtime", choices=sorted(bench.RUNTIMES), default="provided")
    ap.add_argument("--dry-run", action="store_true",
                    help="profile X-Amz-Invocation-Type: DryRun (the edge alone)")
    ap.add_argument("--invokes", type=int, default=1000,
                    help="sequential invokes for strace and callgrind")
    ap.add_argument("--seconds", type=int, default=4, help="perf sampling time")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--out", help="keep perf.data, callgrind.out and annotations here")
    ap.add_argument("--no-perf", action="store_true")
    ap.add_argument("--no-callgrind", action="store_true")
    ap.add_argument("--ignis", default=os.environ.get(
        "IGNIS_BIN", os.path.join(bench.REPO, "build", "ignis")))
    args = ap.parse_args()
    if args.out:
        os.makedirs(args.out, exist_ok=True)
    extra = {"X-Amz-Invocation-Type": "DryRun"} if args.dry_run else None
    work = tempfile.mkdtemp(prefix="ignis-profile-")
    try:
        boot = work  # bench.make_zip builds what a runtime needs in it
        if shutil.which("strace"):
            strace_syscalls(args, work, boot, extra)
        else:
            print("profile: no strace; skipping syscall counts")
        if not args.no_perf:
            if shutil.which("perf"):
                perf_profile(args, work, boot, extra, bench.ensure_wrk())
            else:
                print("profile: no perf; skipping (apt-get install linux-perf)")
        if not args.no_callgrind:
            if shutil.which("valgrind") and shutil.which("callgrind_control"):
                callgrind_profile(args, work, boot, extra)
            else:
                print("profile: no valgrind; skipping callgrind (apt-get install valgrind)")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.out:
        print("\nprofile: raw data in %s" % args.out)


if __name__ == "__main__":
    main()
