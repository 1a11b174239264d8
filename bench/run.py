#!/usr/bin/python3
"""Ignis benchmark suite: `make bench` (or `/usr/bin/python3 bench/run.py`).

Starts its own daemon (free port, temporary data dir), deploys three trivial
echo functions (Python, Node.js, provided.al2023 with a libcurl bootstrap
compiled from bench/fixtures/bootstrap.c) and measures

  * cold start: CreateFunction + first Invoke wall time and the Init
    Duration of the first REPORT line (LogType=Tail), over fresh functions;
  * warm sync invoke latency (p50/p99) and throughput with wrk, replaying one
    request pre-signed with botocore's SigV4Auth, at 1 and 16 clients, plus
    the edge alone (the same invoke as X-Amz-Invocation-Type: DryRun: SigV4,
    routing, payload check, no runtime round trip). Each figure gets a
    warm-up, then interleaved rounds; the median of the quiet rounds is
    reported, with the daemon's and the function's CPU time per invoke and
    the CPU other processes on the machine used meanwhile.

Prints a table, rewrites the section of docs/benchmarks.md between
<!-- bench:begin --> and <!-- bench:end --> (the rest is kept), stops the
daemon with SIGTERM and checks it exits 0. Exits 1 if anything failed.

--quick: smoke run (< 20 s) that leaves docs/benchmarks.md alone unless
--docs is given. --streaming: only the response-streaming section (a Node
awslambda.streamifyResponse function behind a RESPONSE_STREAM Function URL:
time to first byte and streamed throughput), which the full run also does;
it rewrites its own section of docs/benchmarks.md (between
<!-- bench:streaming:begin --> and <!-- bench:streaming:end -->). --s3: only
the S3 section (256 MiB PUT/GET MB/s against dd on the same disk, 4 KB
PUT/GET ops/s with wrk), between <!-- bench:s3:begin --> and
<!-- bench:s3:end -->. --metering: only the metering section (the
in-process cost of recording one invocation, bench/fixtures/meter_cost.c
built against the binary's libignis.a, and warm invokes on two daemons, one
with IGNIS_METRICS=0), between <!-- bench:metering:begin --> and
<!-- bench:metering:end -->. See bench/README.md.
"""
import argparse
import base64
import datetime
import hashlib
import http.client
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
import conftest  # noqa: E402  (the test suite's daemon and zip helpers)
BENCH = os.path.join(REPO, "bench")
FIXTURES = os.path.join(BENCH, "fixtures")
DOCS = os.path.join(REPO, "docs", "benchmarks.md")
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"

ACCESS_KEY = conftest.ACCESS_KEY
SECRET_KEY = conftest.SECRET_KEY
REGION = "us-east-1"
ROLE = "arn:aws:iam::000000000000:role/lambda-role"
EVENT = b'{"bench":"ignis","n":1}'
# One full vCPU, as Lambda gives at 1,769 MB: instances get CPU in proportion to memory
# after init, so smaller functions measure the quota rather than the platform.
MEMORY_MB = 1769

# Targets: warm p50 in µs, throughput in invokes/s, cold create-to-first-response in ms.
TARGETS = {
    ("provided", 1, "p50"): 150,
    ("python", 1, "p50"): 300,
    ("python", 16, "rps"): 5000,
    ("python", "cold_total"): 40,
    ("static", "cold_invoke"): 5,
}

RUNTIMES = {
    # key: (Runtime, Handler, files {zip name: (source path, mode)})
    "python": ("python3.11", "app.handler", {"app.py": ("app.py", 0o644)}),
    "node": ("nodejs20.x", "index.handler", {"index.js": ("index.js", 0o644)}),
    "provided": ("provided.al2023", "bootstrap", {"bootstrap": ("bootstrap.c", 0o755)}),
    "static": ("provided.al2023", "bootstrap", {"bootstrap": ("bootstrap_static.c", 0o755)}),
}
# How tables name a runtime key (two keys share provided.al2023).
LABELS = {"provided": "provided.al2023", "static": "provided.al2023, static binary"}


def label(key):
    return LABELS.get(key, RUNTIMES[key][0])


def say(*a):
    print(*a, flush=True)


# --------------------------------------------------------------------------
# setup: tools, fixtures
# --------------------------------------------------------------------------

def ensure_wrk():
    if shutil.which("wrk"):
        return shutil.which("wrk")
    say("wrk not found: installing the Debian package `wrk` (apt-get install -y wrk) ...")
    if os.geteuid() != 0:
        sys.exit("bench: wrk is missing and we are not root; run `apt-get install wrk` first")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    p = subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], env=env)
    if p.returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, check=False)
        subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], env=env, check=True)
    path = shutil.which("wrk")
    if not path:
        sys.exit("bench: wrk still not found after apt-get install")
    return path


def build_bootstrap(out_dir, name):
    """Compiles bench/fixtures/<name> (bootstrap.c against libcurl, bootstrap_static.c
    statically); returns the binary path."""
    src = os.path.join(FIXTURES, name)
    out = os.path.join(out_dir, name[:-2])
    if name == "bootstrap_static.c":
        flags = ["-static", "-s"]
    else:
        try:
            flags = subprocess.run(["pkg-config", "--cflags", "--libs", "libcurl"],
                                   capture_output=True, text=True, check=True).stdout.split()
        except (OSError, subprocess.CalledProcessError):
            flags = ["-lcurl"]
    cc = os.environ.get("CC", "cc")
    cmd = [cc, "-O2", "-Wall", "-o", out, src] + flags
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit("bench: cannot compile %s:\n%s\n%s" % (src, " ".join(cmd), p.stderr))
    return out


def make_zip(runtime_key, workdir):
    files, modes = {}, {}
    for name, (src, mode) in RUNTIMES[runtime_key][2].items():
        path = (build_bootstrap(workdir, src) if src.endswith(".c")
                else os.path.join(FIXTURES, src))
        with open(path, "rb") as f:
            files[name] = f.read()
        modes[name] = mode
    return conftest.make_zip(files, modes)


# --------------------------------------------------------------------------
# the daemon
# --------------------------------------------------------------------------

class Daemon(conftest.Server):
    """The test suite's daemon, started from a given binary; stop() also says
    how long SIGTERM took."""

    def __init__(self, binary, workdir):
        super().__init__(os.path.join(workdir, "data"), binary=binary)

    def stop(self, timeout=15):
        t0 = time.perf_counter()
        try:
            rc = super().stop(timeout=timeout)
        except AssertionError:
            rc = "timeout (killed)"
        return rc, time.perf_counter() - t0


# --------------------------------------------------------------------------
# a small signed Lambda client (keeps its own overhead out of cold starts)
# --------------------------------------------------------------------------

class Lambda:
    def __init__(self, port):
        self.host = "127.0.0.1:%d" % port
        self.creds = Credentials(ACCESS_KEY, SECRET_KEY)
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def sign(self, method, path, body=b"", headers=None):
        """Returns the headers of a SigV4-signed request (valid 15 minutes)."""
        req = AWSRequest(method=method, url="http://%s%s" % (self.host, path), data=body,
                         headers=dict(headers or {}))
        SigV4Auth(self.creds, "lambda", REGION).add_auth(req)
        out = dict(req.headers.items())
        out["Host"] = self.host
        return out

    def call(self, method, path, body=b"", headers=None):
        h = self.sign(method, path, body, headers)
        for attempt in (0, 1):
            try:
                self.conn.request(method, path, body=body, headers=h)
                r = self.conn.getresponse()
                return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
            except (http.client.HTTPException, ConnectionError):
                self.conn.close()  # the daemon closed an idle keep-alive: once more
                if attempt:
                    raise

    def create(self, name, runtime_key, zip_bytes):
        runtime, handler, _ = RUNTIMES[runtime_key]
        body = json.dumps({"FunctionName": name, "Runtime": runtime, "Handler": handler,
                           "Role": ROLE, "Timeout": 30, "MemorySize": MEMORY_MB,
                           "Code": {"ZipFile": base64.b64encode(zip_bytes).decode()}}).encode()
        st, _, out = self.call("POST", "/2015-03-31/functions", body,
                               {"Content-Type": "application/json"})
        if st != 201:
            raise RuntimeError("CreateFunction %s: HTTP %d %s" % (name, st, out[:300]))

    def invoke(self, name, payload=EVENT, tail=False):
        h = {"X-Amz-Log-Type": "Tail"} if tail else {}
        st, hdrs, out = self.call("POST", "/2015-03-31/functions/%s/invocations" % name,
                                  payload, h)
        if st != 200 or "x-amz-function-error" in hdrs:
            raise RuntimeError("Invoke %s: HTTP %d %s %s" % (name, st,
                               hdrs.get("x-amz-function-error", ""), out[:300]))
        log = base64.b64decode(hdrs.get("x-amz-log-result", "")).decode(errors="replace")
        return out, log

    def delete(self, name):
        self.call("DELETE", "/2015-03-31/functions/%s" % name)

    def url_path(self, name):
        """Gives name a Function URL (AuthType NONE); returns its path form."""
        st, _, out = self.call("POST", "/2021-10-31/functions/%s/url" % name,
                               b'{"AuthType":"NONE"}', {"Content-Type": "application/json"})
        if st != 201:
            raise RuntimeError("CreateFunctionUrlConfig %s: HTTP %d %s" % (name, st, out[:300]))
        url_id = json.loads(out)["FunctionUrl"].split("//")[1].split(".")[0]
        return "/_ignis/url/%s/bench" % url_id


# --------------------------------------------------------------------------
# wrk
# --------------------------------------------------------------------------

LUA_DONE = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"p50":%d,"p90":%d,"p99":%d,"p999":%d,"min":%d,"max":%d,"mean":%.2f,' ..
    '"err_connect":%d,"err_read":%d,"err_write":%d,"err_status":%d,"err_timeout":%d}\n',
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.min, latency.max, latency.mean,
    e.connect, e.read, e.write, e.status, e.timeout))
end
"""


def lua_str(s):
    level = "=" * 4
    assert "]" + level + "]" not in s
    return "[" + level + "[" + s + "]" + level + "]"


def write_lua(path, method, req_path, body, headers):
    lines = ["wrk.method = %s" % lua_str(method),
             "wrk.path = %s" % lua_str(req_path),
             "wrk.body = %s" % lua_str(body.decode())]
    for k, v in headers.items():
        lines.append("wrk.headers[ %s ] = %s" % (lua_str(k), lua_str(v)))
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n" + LUA_DONE)


def run_wrk(wrk, url, script, clients, seconds, threads=1, cpu=None):
    cmd = [wrk, "-t%d" % threads, "-c%d" % clients, "-d%ds" % seconds, "--timeout", "10s",
           "-s", script, url]
    pin = (lambda: os.sched_setaffinity(0, {cpu})) if cpu is not None else None
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60,
                       preexec_fn=pin)
    m = re.search(r"^BENCH_JSON (\{.*\})$", p.stdout, re.M)
    if p.returncode != 0 or not m:
        raise RuntimeError("wrk failed (%s):\n%s\n%s" % (" ".join(cmd), p.stdout, p.stderr))
    r = json.loads(m.group(1))
    r["rps"] = r["requests"] / (r["duration_us"] / 1e6) if r["duration_us"] else 0.0
    r["errors"] = sum(r[k] for k in r if k.startswith("err_"))
    return r


# --------------------------------------------------------------------------
# CPU accounting: whose CPU time went where during a figure
# --------------------------------------------------------------------------

def _snapshot():
    """{pid: (ppid, on-CPU ns of all its threads)} for every process, from
    /proc/PID/task/*/schedstat (exact, unlike tick-sampled /proc/stat)."""
    procs = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            ns = 0
            for tid in os.listdir("/proc/%s/task" % d):
                try:
                    with open("/proc/%s/task/%s/schedstat" % (d, tid)) as f:
                        ns += int(f.read().split()[0])
                except (OSError, ValueError, IndexError):
                    pass
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile
        procs[int(d)] = (ppid, ns)
    return procs


def _descendants(procs, root):
    kids = {}
    for pid, (ppid, _) in procs.items():
        kids.setdefault(ppid, []).append(pid)
    out, todo = set(), [root]
    while todo:
        p = todo.pop()
        out.add(p)
        todo += kids.get(p, [])
    return out


class CpuMeter:
    """Around one wrk run: on-CPU time of the daemon, of its function
    processes, and of every other process on the machine (not this benchmark,
    not kernel threads). Processes that both start and exit within the run are
    missed, so "other" is a lower bound."""

    def __init__(self, daemon_pid):
        self.pid = daemon_pid

    def start(self):
        self.t0, self.a = time.perf_counter(), _snapshot()

    def stop(self):
        t1, b = time.perf_counter(), _snapshot()
        wall = t1 - self.t0
        a = self.a
        both = {**a, **b}
        ours = _descendants(both, os.getpid())
        runtimes = _descendants(both, self.pid) - {self.pid}

        def delta(pid):
            return max(0, b.get(pid, (0, 0))[1] - a.get(pid, (0, 0))[1]) if pid in b else 0

        other = sum(delta(p) for p in b
                    if p not in ours and p != 2 and b[p][0] != 2)  # 2: kthreadd
        return {"wall_s": wall, "daemon_ns": delta(self.pid),
                "runtimes_ns": sum(delta(p) for p in runtimes),
                "other_pct": 100.0 * other / (wall * 1e9)}


# --------------------------------------------------------------------------
# measurements
# --------------------------------------------------------------------------

def raw_response_size(host, port, method, path, body, headers):
    """Bytes of one complete answer to the request wrk will send; wrk's byte
    count must match requests x this, or some invokes answered differently
    (e.g. a function error, which wrk alone would count as a success)."""
    head = "%s %s HTTP/1.1\r\n" % (method, path)
    for k, v in headers.items():
        head += "%s: %s\r\n" % (k, v)
    head += "Content-Length: %d\r\n\r\n" % len(body)
    with socket.create_connection((host, port), timeout=30) as s:
        s.sendall(head.encode() + body)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        hdr, _, rest = data.partition(b"\r\n\r\n")
        m = re.search(rb"(?im)^content-length:\s*(\d+)", hdr)
        n = int(m.group(1)) if m else 0
        while len(rest) < n:
            chunk = s.recv(65536)
            if not chunk:
                break
            rest += chunk
        if not re.match(rb"HTTP/1\.[01] 2\d\d", hdr) or re.search(rb"(?im)^x-amz-function-error:", hdr):
            raise RuntimeError("the benchmark request failed: %r" % data[:400])
        return len(hdr) + 4 + n


QUIET_PCT = 25.0  # a round is quiet when other processes used at most this much of one CPU


class Figure:
    """One warm figure: a pre-signed request, a client count, its rounds."""

    def __init__(self, label, key, fn, clients, warmup, extra=None, url_path=None):
        self.label, self.key, self.fn, self.clients = label, key, fn, clients
        self.warmup, self.extra, self.url_path = warmup, extra, url_path
        self.rounds = []

    def prepare(self, lam, workdir):
        if self.url_path:  # a Function URL (AuthType NONE): plain HTTP, nothing signed
            self.path = self.url_path
            headers = {"Host": lam.host, "Content-Type": "application/json"}
        else:
            self.path = "/2015-03-31/functions/%s/invocations" % self.fn
            headers = lam.sign("POST", self.path, EVENT, self.extra)  # valid 15 minutes
        self.script = os.path.join(workdir, "%s-%d.lua" % (re.sub(r"\W+", "_", self.label),
                                                          self.clients))
        write_lua(self.script, "POST", self.path, EVENT, headers)
        host, port = lam.host.split(":")
        self.resp_bytes = raw_response_size(host, int(port), "POST", self.path, EVENT, headers)

    def run(self, wrk, url, seconds, meter):
        meter.start()
        r = run_wrk(wrk, url, self.script, self.clients, seconds)
        r.update(meter.stop())
        n = max(r["requests"], 1)
        r["daemon_us_per_invoke"] = r["daemon_ns"] / n / 1e3
        r["runtime_us_per_invoke"] = r["runtimes_ns"] / n / 1e3
        # partial answers at the end of the run add at most `clients` responses
        expect = r["requests"] * self.resp_bytes
        r["odd_bytes"] = abs(r["bytes"] - expect) > self.resp_bytes * (self.clients + 1) \
            + 0.002 * expect
        self.rounds.append(r)
        return r

    def summary(self):
        """Median over the quiet rounds (other processes using at most
        QUIET_PCT of a CPU); over all rounds, flagged, if none was quiet."""
        quiet = [r for r in self.rounds if r["other_pct"] <= QUIET_PCT]
        rs = quiet or self.rounds
        med = lambda k: statistics.median(r[k] for r in rs)  # noqa: E731
        return {"p50": med("p50"), "p90": med("p90"), "p99": med("p99"), "rps": med("rps"),
                "requests": sum(r["requests"] for r in self.rounds),
                "errors": sum(r["errors"] for r in self.rounds),
                "odd_bytes": any(r["odd_bytes"] for r in self.rounds),
                "daemon_us": med("daemon_us_per_invoke"),
                "runtime_us": med("runtime_us_per_invoke"),
                "other_pct": med("other_pct"),
                "rounds_used": len(rs), "rounds": len(self.rounds), "noisy": not quiet}


def pin_process(pid, cpus):
    """Sets the CPU affinity of every thread of pid."""
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            os.sched_setaffinity(int(tid), cpus)
        except OSError:
            pass


def handoff_probe(wrk, url, fig, daemon_pid, seconds, settle=True):
    """DryRun round trips with wrk and the daemon pinned to one CPU, then to
    two different CPUs: what a wake-up across CPUs costs on this machine."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None
    out = {}
    try:
        for label, wcpu, dcpu in (("same", cpus[0], cpus[0]), ("across", cpus[0], cpus[1])):
            pin_process(daemon_pid, {dcpu})
            if settle:
                run_wrk(wrk, url, fig.script, 1, 1, cpu=wcpu)
            out[label] = run_wrk(wrk, url, fig.script, 1, seconds, cpu=wcpu)
    finally:
        pin_process(daemon_pid, set(cpus))  # instances forked later inherit it
    return {k: {"p50": v["p50"], "p99": v["p99"], "rps": v["rps"]} for k, v in out.items()}


def echoed(out):
    try:
        return json.loads(out) == json.loads(EVENT)
    except ValueError:
        return False


INIT_RE = re.compile(r"Init Duration: ([0-9.]+) ms")


def cold(lam, key, zip_bytes, samples):
    """CreateFunction + first Invoke on `samples` fresh functions, after one
    unrecorded first one (which also pays for a cold page cache)."""
    rows, names = [], []
    for i in range(samples + 1):
        name = "bench-cold-%s-%s" % (key, uuid.uuid4().hex[:8])
        names.append(name)
        t0 = time.perf_counter()
        lam.create(name, key, zip_bytes)
        t1 = time.perf_counter()
        out, log = lam.invoke(name, tail=True)
        t2 = time.perf_counter()
        if not echoed(out):
            raise RuntimeError("cold %s answered %r" % (name, out[:200]))
        m = INIT_RE.search(log)
        if i == 0:
            continue
        rows.append({"create_ms": (t1 - t0) * 1e3, "invoke_ms": (t2 - t1) * 1e3,
                     "total_ms": (t2 - t0) * 1e3,
                     "init_ms": float(m.group(1)) if m else None})
    for n in names:
        lam.delete(n)
    return rows


BURST = 500


def burst(lam, key, zip_bytes, n=BURST):
    """n concurrent sync invokes (one connection each, released together) against a fresh
    function: wall time until every one is answered, and how many were cold starts (their
    REPORT carries Init Duration): the instances started."""
    import threading
    name = "bench-burst-%s-%s" % (key, uuid.uuid4().hex[:8])
    lam.create(name, key, zip_bytes)
    path = "/2015-03-31/functions/%s/invocations" % name
    headers = lam.sign("POST", path, EVENT, {"X-Amz-Log-Type": "Tail"})
    host, port = lam.host.split(":")
    gate = threading.Barrier(n + 1)
    results = [None] * n

    def one(i):
        c = http.client.HTTPConnection(host, int(port), timeout=300)
        c.connect()
        gate.wait()
        try:
            c.request("POST", path, body=EVENT, headers=headers)
            r = c.getresponse()
            body = r.read()
            log = base64.b64decode(r.getheader("x-amz-log-result", "")).decode(errors="replace")
            results[i] = (r.status == 200 and echoed(body) and not r.getheader(
                "x-amz-function-error"), "Init Duration" in log, time.perf_counter())
        except (OSError, http.client.HTTPException):
            results[i] = (False, False, time.perf_counter())
        finally:
            c.close()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    gate.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    lam.delete(name)
    done = sorted(r[2] - t0 for r in results)
    return {"n": n, "ok": sum(1 for r in results if r[0]),
            "cold": sum(1 for r in results if r[1]),
            "all_ms": done[-1] * 1e3, "p50_ms": done[n // 2] * 1e3}


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


# --------------------------------------------------------------------------
# reporting
# --------------------------------------------------------------------------

def sh(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def machine():
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            kb = int(re.search(r"MemTotal:\s+(\d+)", f.read()).group(1))
            mem = "%.1f GiB" % (kb / 1024 / 1024)
    except (OSError, AttributeError):
        pass
    commit = sh(["git", "-C", REPO, "rev-parse", "--short", "HEAD"]) or "unknown"
    # --no-optional-locks: a read-only look that never rewrites the index
    dirty = sh(["git", "-C", REPO, "--no-optional-locks", "status", "--porcelain",
                "--untracked-files=no"])
    return {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "nproc": sh(["nproc"]) or str(os.cpu_count()), "cpu": cpu,
            "kernel": platform.release(), "memory": mem, "commit": commit,
            "dirty": bool(dirty)}


def fmt(v, unit="", nd=0):
    if v is None:
        return "n/a"
    return ("{:,.%df}" % nd).format(v) + unit


def verdict(value, target, higher_is_better=False):
    if target is None or value is None:
        return ""
    ok = value >= target if higher_is_better else value <= target
    return "met" if ok else "**missed**"




def target_of(fig):
    if fig.get("url"):  # the targets are for Invoke; Function URL figures are for comparison
        return "", ""
    key, c = fig["key"], fig["clients"]
    if (key, c, "p50") in TARGETS:
        t = TARGETS[(key, c, "p50")]
        return "p50 ≤ %d µs" % t, verdict(fig["p50"], t)
    if (key, c, "rps") in TARGETS:
        t = TARGETS[(key, c, "rps")]
        return "≥ %s invokes/s" % fmt(t), verdict(fig["rps"], t, True)
    return "", ""


def placement(res):
    """Which way the scheduler went in this run, judged by the free-running
    DryRun figure against the pinned ones of the probe."""
    h = res.get("handoff")
    dry = [f for f in res["warm"] if f["key"] == "edge"]
    if not h or not dry:
        return ""
    same, across, got = h["same"]["p50"], h["across"]["p50"], dry[0]["p50"]
    if across <= same:
        return ""
    x = (got - same) / (across - same)
    where = ("mostly shared one CPU" if x < 0.25 else "mostly ran on different CPUs"
             if x > 0.75 else "were placed both ways")
    return ("In this run the DryRun figure (%s µs) says client and daemon %s; runs that "
            "went the other way are not comparable with this one." % (fmt(got), where))


def render(res, quick):
    m, p = res["machine"], res["params"]
    L = []
    L.append("Measured %s on commit `%s`%s; %s CPUs (%s), Linux %s, %s RAM.%s" % (
        m["date"], m["commit"], " plus uncommitted changes" if m["dirty"] else "", m["nproc"],
        m["cpu"], m["kernel"], m["memory"],
        " **Quick smoke run: not for comparison.**" if quick else ""))
    L.append("Every function has MemorySize %d MB: one vCPU, as on Lambda; instances run "
             "sandboxed, with CPU in proportion to memory after init." % MEMORY_MB)
    L.append("")
    L.append("### Warm invokes")
    L.append("")
    L.append("Synchronous `Invoke` of a %d-byte JSON event, one SigV4-signed request "
             "replayed by wrk over keep-alive connections; %d s of warm-up per figure, then "
             "%d interleaved rounds of %d s; each figure is the median of its quiet rounds "
             "(other processes using ≤ %d%% of one CPU). *Daemon/function CPU*: on-CPU time "
             "of the daemon and of the function's processes per invoke. *Other load*: CPU "
             "used meanwhile by processes outside the benchmark (%% of one CPU; a lower "
             "bound). *via URL*: the same body POSTed, unsigned, to the function's Function "
             "URL (`AuthType` NONE, path form): the payload 2.0 event in, the echoed event "
             "back as an inferred 200." % (len(EVENT), p["warmup"], p["rounds"], p["duration"],
                                           QUIET_PCT))
    L.append("")
    L.append("| function | clients | p50 | p99 | invokes/s | daemon CPU/invoke "
             "| function CPU/invoke | other load | target | |")
    L.append("|---|--:|--:|--:|--:|--:|--:|--:|---|---|")
    for f in res["warm"]:
        tgt, verd = target_of(f)
        notes = []
        if f["errors"]:
            notes.append("%d errors" % f["errors"])
        if f["odd_bytes"]:
            notes.append("some answers were not the echo")
        used = "⚠ no quiet round" if f["noisy"] else "%d of %d rounds quiet" % (
            f["rounds_used"], f["rounds"])
        L.append("| %s | %d | %s | %s | %s%s | %s | %s | %s (%s) | %s | %s |" % (
            f["label"], f["clients"], fmt(f["p50"], " µs"), fmt(f["p99"], " µs"),
            fmt(f["rps"]), " (%s)" % ", ".join(notes) if notes else "",
            fmt(f["daemon_us"], " µs"), fmt(f["runtime_us"], " µs") if f["key"] != "edge" else "—",
            fmt(f["other_pct"], "%"), used, tgt, verd))
    if any(f["noisy"] for f in res["warm"]):
        L.append("")
        L.append("⚠ no quiet round: other processes were busy throughout, so this figure "
                 "is not comparable (it can be better as well as worse, see below).")
    h = res.get("handoff")
    if h:
        L.append("")
        L.append("Hand-off probe: the DryRun round trip takes %s µs p50 with wrk and the "
                 "daemon pinned to the same CPU and %s µs pinned to different CPUs. Waking a "
                 "process on another (idle) vCPU is what costs here, ~%s µs per hop, and a "
                 "warm invoke makes four hops (client → daemon → function → daemon → "
                 "client), so where the scheduler puts the three processes moves the warm "
                 "latencies more than most daemon changes; a busy neighbour that packs them "
                 "on one CPU makes them *faster*. %s" % (
                     fmt(h["same"]["p50"]), fmt(h["across"]["p50"]),
                     fmt(max(0, (h["across"]["p50"] - h["same"]["p50"]) / 2)),
                     placement(res)))
    L.append("")
    L.append("### Cold starts")
    L.append("")
    L.append("%d fresh functions per runtime (after one unrecorded), p50 with min–max; "
             "*create-to-first-response* is the `CreateFunction` call plus the first "
             "`Invoke`, as a client sees it; *Init Duration* is from the first REPORT line "
             "(`LogType=Tail`)." % p["cold_samples"])
    L.append("")
    L.append("| runtime | CreateFunction | first Invoke | create-to-first-response "
             "| Init Duration | other load | target |")
    L.append("|---|--:|--:|--:|--:|--:|---|")
    for key, rows in res["cold"].items():
        def cell(field):
            xs = [r[field] for r in rows if r[field] is not None]
            if not xs:
                return "n/a"
            return "%s ms (%s–%s)" % (fmt(median(xs), "", 1), fmt(min(xs), "", 1),
                                       fmt(max(xs), "", 1))
        tgt = ""
        if (key, "cold_total") in TARGETS:
            t = TARGETS[(key, "cold_total")]
            tgt = "create-to-first-response p50 ≤ %d ms: %s" % (
                t, verdict(median([r["total_ms"] for r in rows]), t))
        if (key, "cold_invoke") in TARGETS:
            t = TARGETS[(key, "cold_invoke")]
            tgt = "first Invoke p50 ≤ %d ms: %s" % (
                t, verdict(median([r["invoke_ms"] for r in rows]), t))
        L.append("| %s | %s | %s | %s | %s | %s | %s |" % (
            label(key), cell("create_ms"), cell("invoke_ms"), cell("total_ms"),
            cell("init_ms"), fmt(res["cold_other_pct"].get(key), "%"), tgt))
    L.append("")
    b = res.get("burst")
    if b:
        L.append("### Burst")
        L.append("")
        L.append("%d concurrent sync invokes (one connection each, released together) against "
                 "a just-created `%s` function: all answered after **%s ms** (half after %s "
                 "ms), %d of them OK, %d cold starts (= instances started)." % (
                     b["n"], label("static"), fmt(b["all_ms"], "", 0), fmt(b["p50_ms"], "", 0),
                     b["ok"], b["cold"]))
        L.append("")
    stop = res.get("stop")
    if stop:
        L.append("The daemon stopped on SIGTERM in %.2f s with exit status %s." % (
            stop[1], stop[0]))
        L.append("")
    L.append("### Targets and context")
    L.append("")
    L.append("- warm `provided.al2023` p50 ≤ 150 µs at 1 client; warm Python p50 ≤ 300 µs at "
             "1 client; ≥ 5,000 Python invokes/s with 16 clients.")
    L.append("- cold start, sandboxed: Python create-to-first-response p50 ≤ 40 ms; a static "
             "`provided` bootstrap's first Invoke ≤ 5 ms (its CreateFunction is bound by "
             "uploading and storing a ~700 KB package, fsync included; the binary stands for a "
             "Go or Rust custom runtime; the "
             "libcurl one also loads ~30 shared libraries, which costs ~20 ms of page faults "
             "on these machines).")
    L.append("- for context, on these machines: a bare HTTP echo round trip ~70 µs; the "
             "Python Runtime-API loop alone ~100 µs; serverless-offline ~350 µs warm.")
    return "\n".join(L)


def render_terminal(res):
    m = res["machine"]
    out = ["", "== Ignis benchmarks: %s%s, %s ==" % (m["commit"], "+dirty" if m["dirty"] else "",
                                                     m["date"]),
           "%-20s %3s %8s %8s %10s %10s %10s %7s  %s" % (
               "warm invoke", "c", "p50 µs", "p99 µs", "invokes/s", "daemon µs", "func µs",
               "other%", "target")]
    for f in res["warm"]:
        tgt, verd = target_of(f)
        flag = (" ERRORS=%d" % f["errors"] if f["errors"] else "") + \
            (" NOT-ECHO?" if f["odd_bytes"] else "")
        out.append("%-20s %3d %8.0f %8.0f %10.0f %10.1f %10s %5.0f%%%s %s%s" % (
            f["label"], f["clients"], f["p50"], f["p99"], f["rps"], f["daemon_us"],
            "%.1f" % f["runtime_us"] if f["key"] != "edge" else "-", f["other_pct"],
            "(!)" if f["noisy"] else "   ",
            ("%s: %s" % (tgt, verd.strip("*"))) if tgt else "", flag))
    out.append("")
    out.append("%-31s %10s %14s %16s %14s %7s" % ("cold start p50", "create ms",
                                                   "1st invoke ms", "create→resp ms",
                                                   "Init Dur. ms", "other%"))
    for key, rows in res["cold"].items():
        out.append("%-31s %10s %14s %16s %14s %6s%%" % (
            label(key), fmt(median([r["create_ms"] for r in rows]), "", 1),
            fmt(median([r["invoke_ms"] for r in rows]), "", 1),
            fmt(median([r["total_ms"] for r in rows]), "", 1),
            fmt(median([r["init_ms"] for r in rows]), "", 1),
            fmt(res["cold_other_pct"].get(key))))
    out.append("")
    if any(f["noisy"] for f in res["warm"]):
        out.append("(!) = no quiet round (other processes > %d%% of a CPU throughout)" % QUIET_PCT)
    b = res.get("burst")
    if b:
        out.append("burst: %d concurrent invokes on a cold function: all answered in %.0f ms "
                   "(p50 %.0f ms), %d ok, %d instances started" % (
                       b["n"], b["all_ms"], b["p50_ms"], b["ok"], b["cold"]))
    h = res.get("handoff")
    if h:
        out.append("hand-off probe (DryRun p50): %d µs on one CPU, %d µs across two CPUs" % (
            h["same"]["p50"], h["across"]["p50"]))
        if placement(res):
            out.append(placement(res))
    out.append("targets: provided p50 ≤ 150 µs @1, Python p50 ≤ 300 µs @1, Python ≥ 5,000/s "
               "@16; cold p50: Python create→first response ≤ 40 ms, static provided first invoke ≤ 5 ms")
    return "\n".join(out)


DOC_HEADER = """# Benchmarks

Figures from `make bench` (bench/run.py; bench/README.md says what each one
means and how it is measured). The section between the markers below is
rewritten by every full run; edit outside it.

"""


def write_docs(section):
    try:
        with open(DOCS) as f:
            text = f.read()
    except FileNotFoundError:
        text = DOC_HEADER + BEGIN + "\n" + END + "\n"
    block = BEGIN + "\n" + section.rstrip() + "\n" + END
    if BEGIN in text and END in text and text.index(BEGIN) < text.index(END):
        text = text[:text.index(BEGIN)] + block + text[text.index(END) + len(END):]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    os.makedirs(os.path.dirname(DOCS), exist_ok=True)
    tmp = DOCS + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, DOCS)


# --------------------------------------------------------------------------
# response streaming through a Function URL
# --------------------------------------------------------------------------

STREAM_BEGIN, STREAM_END = "<!-- bench:streaming:begin -->", "<!-- bench:streaming:end -->"
STREAM_FN = r'''
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export const handler = awslambda.streamifyResponse(async (event, stream) => {
  const [, what, arg] = (event.rawPath || "/").split("/");
  if (what === "ttfb") {          // one byte now, the end 100 ms later
    stream.write("x");
    await sleep(100);
  } else if (what === "bulk") {   // arg MB in 256 KB pieces, as fast as the reader takes them
    const piece = Buffer.alloc(256 * 1024, "b");
    for (let i = 0; i < Number(arg) * 4; i++)
      if (!stream.write(piece)) await new Promise((r) => stream.once("drain", r));
  }
  stream.end();
});
'''
STREAM_MB = 16  # per response: under Lambda's 20 MB streamed limit
BUFFERED_FN = 'export const handler = async () => "x";\n'  # the same harness, not streamed


def stream_get(port, path):
    """GET path; returns (seconds to the status line, to the first body byte, to the end,
    body bytes)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    t0 = time.perf_counter()
    conn.request("GET", path)
    r = conn.getresponse()
    t_head = time.perf_counter()
    if r.status != 200:
        raise RuntimeError("GET %s: HTTP %d %s" % (path, r.status, r.read()[:200]))
    first = r.read1(1 << 20)
    t_first = time.perf_counter()
    n = len(first)
    while True:
        b = r.read1(1 << 20)
        if not b:
            break
        n += len(b)
    t_end = time.perf_counter()
    conn.close()
    return t_head - t0, t_first - t0, t_end - t0, n


def node_url(lam, name, source, mode):
    """A nodejs20.x function with a Function URL in mode; returns the URL's path form."""
    body = json.dumps({"FunctionName": name, "Runtime": "nodejs20.x", "Handler": "index.handler",
                       "Role": ROLE, "Timeout": 60, "MemorySize": MEMORY_MB,
                       "Code": {"ZipFile": base64.b64encode(conftest.make_zip(
                           {"index.mjs": source})).decode()}}).encode()
    st, _, out = lam.call("POST", "/2015-03-31/functions", body, {"Content-Type": "application/json"})
    if st != 201:
        raise RuntimeError("CreateFunction %s: HTTP %d %s" % (name, st, out[:300]))
    for _ in range(200):
        st, _, out = lam.call("GET", "/2015-03-31/functions/%s" % name)
        if json.loads(out)["Configuration"]["State"] == "Active":
            break
        time.sleep(0.05)
    st, _, out = lam.call("POST", "/2021-10-31/functions/%s/url" % name,
                          json.dumps({"AuthType": "NONE", "InvokeMode": mode}).encode(),
                          {"Content-Type": "application/json"})
    if st != 201:
        raise RuntimeError("CreateFunctionUrlConfig %s: HTTP %d %s" % (name, st, out[:300]))
    return "/_ignis/url/%s" % json.loads(out)["FunctionUrl"].split("//")[1].split(".")[0]


def streaming(lam, port, samples):
    """Time to first byte and throughput of a streamed response through a Function URL."""
    base = node_url(lam, "bench-stream-node", STREAM_FN, "RESPONSE_STREAM")
    plain = node_url(lam, "bench-stream-buffered", BUFFERED_FN, "BUFFERED")
    stream_get(port, base + "/ttfb")  # the cold starts are not what is measured
    stream_get(port, plain + "/")
    ttfb, buffered = [], []
    for _ in range(samples):
        time.sleep(0.02)  # the instance is back in GET /next: a warm start, not a queued one
        ttfb.append(stream_get(port, base + "/ttfb"))
        time.sleep(0.02)
        buffered.append(stream_get(port, plain + "/"))
    stream_get(port, base + "/bulk/1")
    bulk = []
    for _ in range(max(3, samples // 4)):
        _, first, end, n = stream_get(port, base + "/bulk/%d" % STREAM_MB)
        if n != STREAM_MB << 20:
            raise RuntimeError("streamed %d bytes, not %d" % (n, STREAM_MB << 20))
        bulk.append(n / (end - first) / 1e6)
    lam.delete("bench-stream-node")
    lam.delete("bench-stream-buffered")
    return {"samples": samples, "head_ms": median([t[0] * 1e3 for t in ttfb]),
            "buffered_ms": median([t[2] * 1e3 for t in buffered]),
            "ttfb_ms": median([t[1] * 1e3 for t in ttfb]),
            "ttfb_p90_ms": sorted(t[1] * 1e3 for t in ttfb)[int(0.9 * (len(ttfb) - 1))],
            "end_ms": median([t[2] * 1e3 for t in ttfb]),
            "mb": STREAM_MB, "rounds": len(bulk), "mbps": median(bulk), "mbps_min": min(bulk),
            "load": os.getloadavg()[0]}


def render_streaming(r, machine_line):
    return "\n".join([
        "### Response streaming through a Function URL",
        "",
        "A warm `nodejs20.x` function wrapped in `awslambda.streamifyResponse` behind a "
        "`RESPONSE_STREAM` Function URL (path form, one client, a new connection per request, "
        "20 ms apart; %s). "
        "`bench/run.py --streaming` reruns this section alone." % machine_line,
        "",
        "| figure | median | |",
        "| --- | --- | --- |",
        "| status line (first write of a 1-byte stream) | %.2f ms | |" % r["head_ms"],
        "| time to first body byte | %.2f ms | p90 %.2f ms, %d requests |" % (
            r["ttfb_ms"], r["ttfb_p90_ms"], r["samples"]),
        "| end of that stream (the handler waits 100 ms) | %.1f ms | the first byte did not wait |"
        % r["end_ms"],
        "| for comparison: a buffered nodejs20.x answer (`BUFFERED` URL, same client) | %.2f ms "
        "| the whole answer |" % r["buffered_ms"],
        "| throughput, %d MB per response | %.0f MB/s | slowest of %d: %.0f MB/s |" % (
            r["mb"], r["mbps"], r["rounds"], r["mbps_min"]),
        "",
        "Load average during the run: %.1f (other work on the machine inflates every figure "
        "here alike; compare the first byte with the buffered answer of the same run)." % r["load"],
        "",
    ])


def write_streaming_docs(section):
    with open(DOCS) as f:
        text = f.read()
    block = STREAM_BEGIN + "\n" + section.rstrip() + "\n" + STREAM_END
    if STREAM_BEGIN in text and STREAM_END in text:
        text = text[:text.index(STREAM_BEGIN)] + block + text[text.index(STREAM_END) + len(STREAM_END):]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    tmp = DOCS + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, DOCS)


def streaming_only(args):
    """bench/run.py --streaming: the streaming section on a daemon of its own."""
    workdir = tempfile.mkdtemp(prefix="ignis-bench-")
    daemon = Daemon(args.ignis, workdir).start()
    failed = False
    try:
        r = streaming(Lambda(daemon.port), daemon.port, 10 if args.quick else 50)
        m = machine()
        section = render_streaming(r, m.get("cpu", platform.machine()))
        say(section)
        if not args.no_docs:
            write_streaming_docs(section)
            say("bench: wrote %s" % os.path.relpath(DOCS, os.getcwd()))
    except Exception as e:
        say("bench: FAILED: %s: %s" % (type(e).__name__, e))
        failed = True
    finally:
        rc, _ = daemon.stop()
        if rc != 0:
            say("bench: FAILED: ignis exited with %s on SIGTERM" % rc)
            failed = True
    shutil.rmtree(workdir, ignore_errors=True)
    return 1 if failed else 0


# --------------------------------------------------------------------------
# metering: the warm path with and without metrics and billing
# --------------------------------------------------------------------------

METER_BEGIN, METER_END = "<!-- bench:metering:begin -->", "<!-- bench:metering:end -->"


def metering_only(args):
    """bench/run.py --metering: the same warm invokes on two daemons, one with
    IGNIS_METRICS=0 (nothing recorded), one as shipped; interleaved rounds."""
    wrk = ensure_wrk()
    workdir = tempfile.mkdtemp(prefix="ignis-bench-")
    duration = args.duration or (1 if args.quick else 2)
    rounds = args.rounds or (1 if args.quick else 5)
    daemons, failed, rows = {}, False, []
    try:
        micro = meter_cost(args.ignis, workdir)
        say("bench: recording one invocation: %(ns_per_invoke).0f ns (through an alias "
            "%(ns_per_invoke_alias).0f ns); a flush %(flush_us).0f µs" % micro)
        zips = {k: make_zip(k, workdir) for k in ("provided", "python")}
        figs = {}
        for mode in ("off", "on"):
            os.makedirs(os.path.join(workdir, mode))
            d = Daemon(args.ignis, os.path.join(workdir, mode))
            if mode == "off":
                d.extra_env = {"IGNIS_METRICS": "0"}
            daemons[mode] = d.start()
            lam = Lambda(d.port)
            for key in ("provided", "python"):
                name = "bench-meter-%s" % key
                lam.create(name, key, zips[key])
                out, _ = lam.invoke(name)
                if not echoed(out):
                    raise RuntimeError("%s answered %r" % (name, out[:200]))
                for clients in (1, 16):
                    f = Figure("%s %s" % (label(key), mode), key, name, clients, 1)
                    f.prepare(lam, os.path.join(workdir, mode))
                    figs[(mode, key, clients)] = (f, "http://%s" % lam.host, CpuMeter(d.proc.pid))
        for f, url, _ in figs.values():
            run_wrk(wrk, url, f.script, f.clients, 1 if args.quick else 2)  # warm-up
        for r in range(rounds):
            say("bench: metering round %d/%d ..." % (r + 1, rounds))
            for key in ("provided", "python"):
                for clients in (1, 16):
                    for mode in (("off", "on") if r % 2 == 0 else ("on", "off")):
                        f, url, meter = figs[(mode, key, clients)]
                        f.run(wrk, url, duration, meter)
        for key in ("provided", "python"):
            for clients in (1, 16):
                off = figs[("off", key, clients)][0].summary()
                on = figs[("on", key, clients)][0].summary()
                if off["errors"] or on["errors"]:
                    failed = True
                rows.append((label(key), clients, off, on))
        section = render_metering(rows, micro, machine().get("cpu", platform.machine()),
                                  rounds, duration)
        say(section)
        if not args.no_docs and not failed and not args.quick:
            write_section(METER_BEGIN, METER_END, section)
            say("bench: wrote %s" % os.path.relpath(DOCS, os.getcwd()))
    except Exception as e:
        say("bench: FAILED: %s: %s" % (type(e).__name__, e))
        failed = True
    finally:
        for d in daemons.values():
            rc, _ = d.stop()
            if rc != 0:
                say("bench: FAILED: ignis exited with %s on SIGTERM" % rc)
                failed = True
    if not failed:
        shutil.rmtree(workdir, ignore_errors=True)
    return 1 if failed else 0


def meter_cost(ignis, workdir):
    """Builds bench/fixtures/meter_cost.c against the libignis.a next to the binary and
    runs it: the in-process cost of recording one invocation."""
    lib = os.path.join(os.path.dirname(os.path.abspath(ignis)), "libignis.a")
    out = os.path.join(workdir, "meter_cost")
    pkgs = ["libmicrohttpd", "jansson", "sqlite3", "libcrypto", "libzip", "libcurl",
            "libseccomp", "libxml-2.0", "zlib", "libcbor"]
    flags = subprocess.run(["pkg-config", "--cflags", "--libs"] + pkgs, capture_output=True,
                           text=True, check=True).stdout.split()
    cmd = [os.environ.get("CC", "cc"), "-O2", "-I", os.path.join(REPO, "src"), "-o", out,
           os.path.join(FIXTURES, "meter_cost.c"), lib] + flags + ["-lpthread", "-lm"]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError("cannot build meter_cost: %s" % p.stderr[-2000:])
    p = subprocess.run([out, workdir], capture_output=True, text=True, timeout=120, check=True)
    return json.loads(p.stdout)


def render_metering(rows, micro, machine_line, rounds, duration):
    def pct(a, b):
        return "%+.1f%%" % (100.0 * (b - a) / a) if a else "-"
    base = min((r[2]["daemon_us"] for r in rows if r[1] == 1), default=0)
    out = ["### Metering on the warm path",
           "",
           "Recording one invocation (`metrics_call_begin` + `metrics_call_end`: the "
           "AWS/Lambda datapoints under every dimension set, the Prometheus counters and the "
           "billing meter, all in memory) costs the loop thread **%.2f µs**, %.2f µs through an "
           "alias (two more dimension sets), measured in-process by "
           "`bench/fixtures/meter_cost.c` over a million calls; that is %.1f%% of the "
           "daemon's %.0f µs of CPU per warm invoke below (target: under 5%%). Writing them "
           "out is a timer's work, off the invoke path: %.0f µs per flush (every 5 s by "
           "default) for one function's series. Logging an invocation (its START, END and "
           "REPORT lines formatted, put into the log store and written: one write(2) per loop "
           "turn, charged here to every invoke) costs **%.2f µs**, %.1f%% (the same in-process "
           "harness; the lines are written whether or not metrics are)." % (
               micro["ns_per_invoke"] / 1e3, micro["ns_per_invoke_alias"] / 1e3,
               100.0 * micro["ns_per_invoke_alias"] / 1e3 / base if base else 0, base,
               micro["flush_us"], micro.get("log_ns_per_invoke", 0) / 1e3,
               100.0 * micro.get("log_ns_per_invoke", 0) / 1e3 / base if base else 0),
           "",
           "The same pre-signed synchronous invokes on two daemons side by side: one with "
           "`IGNIS_METRICS=0` (no CloudWatch metrics, no billing meter), one as shipped; "
           "%d interleaved rounds of %d s each, medians (%s). On a shared 2-core machine the "
           "end-to-end differences are mostly noise; the in-process figure above is the "
           "cost. "
           "`bench/run.py --metering` reruns this section alone." % (rounds, duration,
                                                                    machine_line),
           "",
           "| function | clients | p50 off | p50 on | | invokes/s off | invokes/s on | | "
           "daemon CPU/invoke off | on |",
           "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for lab, clients, off, on in rows:
        out.append("| %s | %d | %.0f µs | %.0f µs | %s | %.0f | %.0f | %s | %.1f µs | %.1f µs |" % (
            lab, clients, off["p50"], on["p50"], pct(off["p50"], on["p50"]), off["rps"],
            on["rps"], pct(off["rps"], on["rps"]), off["daemon_us"], on["daemon_us"]))
    out.append("")
    return "\n".join(out)


def write_section(begin, end, section):
    with open(DOCS) as f:
        text = f.read()
    block = begin + "\n" + section.rstrip() + "\n" + end
    if begin in text and end in text:
        text = text[:text.index(begin)] + block + text[text.index(end) + len(end):]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    tmp = DOCS + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, DOCS)


# --------------------------------------------------------------------------
# S3: large-object throughput and small-object operations, against dd
# --------------------------------------------------------------------------

S3_BEGIN, S3_END = "<!-- bench:s3:begin -->", "<!-- bench:s3:end -->"
S3_BIG_MB = 256


def _s3_send(port, headers, method, path, body_parts):
    """One raw request on a fresh connection, the body sent as given;
    returns (status, seconds from the first byte sent to the whole answer,
    bytes of answer body), the answer read and counted, not kept."""
    sock = socket.create_connection(("127.0.0.1", port))
    head = "%s %s HTTP/1.1\r\n%s\r\n" % (method, path, "".join(
        "%s: %s\r\n" % kv for kv in headers.items()))
    t0 = time.perf_counter()
    sock.sendall(head.encode())
    for part in body_parts:
        sock.sendall(part)
    f = sock.makefile("rb", buffering=1 << 20)
    status = int(f.readline().split()[1])
    length = 0
    while True:
        line = f.readline()
        if line in (b"\r\n", b""):
            break
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    got, buf = 0, bytearray(1 << 20)
    while got < length:
        n = f.readinto(memoryview(buf)[:min(len(buf), length - got)])
        if not n:
            break
        got += n
    secs = time.perf_counter() - t0
    sock.close()
    return status, secs, got


def _dd_mbs(args):
    p = subprocess.run(["dd"] + args, capture_output=True, text=True)
    m = re.search(r"copied, ([\d.]+) s, ", p.stderr)
    if p.returncode != 0 or not m:
        raise RuntimeError("dd %s failed: %s" % (" ".join(args), p.stderr))
    return S3_BIG_MB * 1024 * 1024 / float(m.group(1)) / 1e6


def s3_figures(daemon, workdir, rounds, seconds, wrk):
    """PUT/GET MB/s of a 256 MiB object (median of rounds, each on a fresh
    connection), dd to the same disk, and 4 KB PUT/GET ops/s with wrk."""
    import s3util  # tests/integration: the signing helpers
    bucket = "bench-s3"
    st, _, body = s3util.signed_request(daemon, "PUT", "/" + bucket)
    if st != 200:
        raise RuntimeError("CreateBucket answered %d: %r" % (st, body[:200]))
    size = S3_BIG_MB * 1024 * 1024
    block = os.urandom(1 << 20)
    data = [block] * S3_BIG_MB
    h = hashlib.sha256()
    for b in data:
        h.update(b)
    digest = h.hexdigest()
    res = {"size_mb": S3_BIG_MB, "put_unsigned": [], "put_signed": [], "get": []}
    for r in range(rounds):
        for kind, payload in (("put_unsigned", "UNSIGNED-PAYLOAD"), ("put_signed", digest)):
            hdr = s3util.sign(daemon, "PUT", "/%s/big" % bucket, payload,
                              {"Content-Length": str(size)})
            st, secs, _ = _s3_send(daemon.port, hdr, "PUT", "/%s/big" % bucket, data)
            if st != 200:
                raise RuntimeError("PUT of %d MiB answered %d" % (S3_BIG_MB, st))
            res[kind].append(size / secs / 1e6)
        hdr = s3util.sign(daemon, "GET", "/%s/big" % bucket, s3util.EMPTY_SHA)
        st, secs, got = _s3_send(daemon.port, hdr, "GET", "/%s/big" % bucket, [])
        if st != 200 or got != size:
            raise RuntimeError("GET of %d MiB answered %d with %d bytes" % (S3_BIG_MB, st, got))
        res["get"].append(size / secs / 1e6)
    ddfile = os.path.join(daemon.data_dir, "s3", "dd.bin")
    res["dd_write"] = median([_dd_mbs(["if=/dev/zero", "of=" + ddfile, "bs=1M",
                                       "count=%d" % S3_BIG_MB, "conv=fsync"])
                              for _ in range(rounds)])
    res["dd_read"] = median([_dd_mbs(["if=" + ddfile, "of=/dev/null", "bs=1M"])
                             for _ in range(rounds)])
    # what the disk gives 4 KB writes that each wait for the disk (a PUT's fsync)
    p = subprocess.run(["dd", "if=/dev/zero", "of=" + ddfile, "bs=4k", "count=200",
                        "oflag=dsync"], capture_output=True, text=True)
    m = re.search(r"copied, ([\d.]+) s, ", p.stderr)
    res["dd_sync_ops"] = 200 / float(m.group(1)) if m else None
    os.unlink(ddfile)
    # 4 KB objects: wrk replays one signed PUT (same key, body checked against
    # its SHA-256) and one signed GET
    small = b"x" * 4096
    put_path, get_path = "/%s/small" % bucket, "/%s/small" % bucket
    put_hdr = s3util.sign(daemon, "PUT", put_path, hashlib.sha256(small).hexdigest())
    get_hdr = s3util.sign(daemon, "GET", get_path, s3util.EMPTY_SHA)
    put_hdr.pop("host")
    get_hdr.pop("host")
    put_lua = os.path.join(workdir, "s3put.lua")
    get_lua = os.path.join(workdir, "s3get.lua")
    write_lua(put_lua, "PUT", put_path, small, put_hdr)
    write_lua(get_lua, "GET", get_path, b"", get_hdr)
    url = "http://127.0.0.1:%d" % daemon.port
    res["small"] = {}
    for name, script in (("put", put_lua), ("get", get_lua)):
        for clients in (1, 16):
            runs = [run_wrk(wrk, url, script, clients, seconds) for _ in range(rounds)]
            if any(x["errors"] for x in runs):
                raise RuntimeError("4 KB %s @%d: wrk saw errors: %r" % (name, clients, runs))
            res["small"][(name, clients)] = {
                "rps": median([x["rps"] for x in runs]),
                "p50": median([x["p50"] for x in runs])}
    for k in ("put_unsigned", "put_signed", "get"):
        res[k] = median(res[k])
    return res


def render_s3(r, machine_line, rounds, date=""):
    out = ["## S3 object storage%s" % (" (%s)" % date if date else ""),
           "",
           "One %d MiB object PUT and GET on a fresh connection each (raw HTTP from "
           "Python, body from memory, answer read and dropped), the median of %d rounds; "
           "`dd` with 1 MiB blocks to a file in the same data dir (the write with "
           "`conv=fsync`, as a PUT is fsync'd before it is acknowledged; the read, like the "
           "GET, from the page cache). 4 KB objects: wrk replaying one signed PUT (the same "
           "key overwritten; the body checked against its SHA-256) or GET over keep-alive "
           "connections (%s). `bench/run.py --s3` reruns this section alone." % (
               r["size_mb"], rounds, machine_line),
           "",
           "| %d MiB object | MB/s | `dd` MB/s |" % r["size_mb"],
           "| --- | --- | --- |",
           "| PUT, `UNSIGNED-PAYLOAD` (MD5 for the ETag) | %.0f | %.0f (write + fsync) |" % (
               r["put_unsigned"], r["dd_write"]),
           "| PUT, signed payload (MD5 + SHA-256 checked) | %.0f | |" % r["put_signed"],
           "| GET | %.0f | %.0f (read) |" % (r["get"], r["dd_read"]),
           "",
           "| 4 KB objects | clients | ops/s | p50 |",
           "| --- | --- | --- | --- |"]
    for (name, clients), v in sorted(r["small"].items()):
        out.append("| %s | %d | %.0f | %.0f µs |" % (name.upper(), clients, v["rps"], v["p50"]))
    out += ["", "Why: a PUT's bytes pass through the loop thread, which hashes them (MD5 for the "
            "ETag, SHA-256 when the payload is signed) and copies MHD's pieces of at most 32 KB "
            "into 1 MiB writes, so large PUTs are CPU-bound, well under the disk; a GET is "
            "sendfile() from the object's file. A 4 KB PUT is acknowledged only after its file "
            "and directory are fsync'd on the work queue and its row committed"]
    if r.get("dd_sync_ops"):
        out[-1] += ("; `dd bs=4k oflag=dsync` manages %.0f synchronous 4 KB writes/s on this "
                    "disk, and a PUT makes two" % r["dd_sync_ops"])
    out[-1] += "."
    out.append("")
    return "\n".join(out)


def s3_only(args):
    """bench/run.py --s3: the S3 section on a daemon of its own."""
    wrk = ensure_wrk()
    workdir = tempfile.mkdtemp(prefix="ignis-bench-")
    daemon = Daemon(args.ignis, workdir).start()
    failed = False
    rounds = args.rounds or (1 if args.quick else 3)
    try:
        r = s3_figures(daemon, workdir, rounds, args.duration or (1 if args.quick else 2), wrk)
        m = machine()
        section = render_s3(r, m.get("cpu", platform.machine()), rounds, m.get("date", ""))
        say(section)
        if not args.no_docs and (not args.quick or args.docs):
            write_section(S3_BEGIN, S3_END, section)
            say("bench: wrote %s" % os.path.relpath(DOCS, os.getcwd()))
    except Exception as e:
        say("bench: FAILED: %s: %s" % (type(e).__name__, e))
        failed = True
    finally:
        rc, _ = daemon.stop()
        if rc != 0:
            say("bench: FAILED: ignis exited with %s on SIGTERM" % rc)
            failed = True
    shutil.rmtree(workdir, ignore_errors=True)
    return 1 if failed else 0


def cold_only(args, samples):
    """bench/run.py --cold: the cold starts alone (each runtime, `samples` fresh functions),
    printed with their spread; docs/benchmarks.md is left to full runs. For comparing two
    builds, run it on each build in turn more than once: this machine's speed drifts."""
    workdir = tempfile.mkdtemp(prefix="ignis-bench-")
    daemon = Daemon(args.ignis, workdir).start()
    failed = False
    try:
        lam = Lambda(daemon.port)
        say("%-31s %18s %18s %18s" % ("cold start (p50, p10-p90)", "1st invoke ms",
                                      "create→resp ms", "Init Dur. ms"))
        for key in args.cold_runtimes.split(","):
            rows = cold(lam, key, make_zip(key, workdir), samples)

            def spread(k):
                v = sorted(r[k] for r in rows if r[k] is not None)
                return "%.2f (%.2f-%.2f)" % (median(v), v[len(v) // 10],
                                             v[min(len(v) - 1, len(v) * 9 // 10)])
            say("%-31s %18s %18s %18s" % (label(key), spread("invoke_ms"), spread("total_ms"),
                                          spread("init_ms")))
    except Exception as e:
        say("bench: FAILED: %s: %s" % (type(e).__name__, e))
        failed = True
    finally:
        rc, _ = daemon.stop()
        failed = failed or rc != 0
    shutil.rmtree(workdir, ignore_errors=True)
    return 1 if failed else 0


# --------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="short smoke run (< 20 s)")
    ap.add_argument("--duration", type=int, help="seconds per round of a warm figure")
    ap.add_argument("--rounds", type=int, help="interleaved rounds per warm figure")
    ap.add_argument("--warmup", type=int, help="seconds of warm-up per warm figure")
    ap.add_argument("--cold-samples", type=int, help="fresh functions per runtime")
    ap.add_argument("--no-docs", action="store_true", help="do not rewrite docs/benchmarks.md")
    ap.add_argument("--docs", action="store_true",
                    help="rewrite docs/benchmarks.md even after --quick")
    ap.add_argument("--json", metavar="FILE", help="also write the raw figures as JSON")
    ap.add_argument("--streaming", action="store_true",
                    help="only the response-streaming section (time to first byte, throughput)")
    ap.add_argument("--s3", action="store_true",
                    help="only the S3 section (object throughput against dd, 4 KB ops/s)")
    ap.add_argument("--metering", action="store_true",
                    help="only the metering section (warm invokes with and without metrics)")
    ap.add_argument("--cold", action="store_true",
                    help="only the cold starts, printed with their spread (docs untouched)")
    ap.add_argument("--cold-runtimes", default="python,node,provided,static",
                    help="with --cold: which of python,node,provided,static")
    ap.add_argument("--ignis", default=os.environ.get("IGNIS_BIN",
                                                      os.path.join(REPO, "build", "ignis")))
    args = ap.parse_args()
    duration = args.duration or (1 if args.quick else 2)  # wrk takes whole seconds
    rounds = args.rounds or (1 if args.quick else 4)
    # --quick: the single-client figures go without warm-up (each function has
    # answered once already); 16 clients always get time to scale out
    warmup = args.warmup if args.warmup is not None else (0 if args.quick else 2)
    samples = args.cold_samples or (3 if args.quick else 10)
    write_doc = not args.no_docs and (not args.quick or args.docs)

    if not os.access(args.ignis, os.X_OK):
        sys.exit("bench: %s is missing; run `make` first (or `make bench`)" % args.ignis)
    if args.streaming:
        return streaming_only(args)
    if args.metering:
        return metering_only(args)
    if args.s3:
        return s3_only(args)
    if args.cold:
        return cold_only(args, samples)
    wrk = ensure_wrk()
    t_start = time.perf_counter()
    workdir = tempfile.mkdtemp(prefix="ignis-bench-")
    daemon = None
    failed = False
    res = {"machine": machine(),
           "params": {"duration": duration, "rounds": rounds, "warmup": warmup,
                      "cold_samples": samples, "quick": args.quick},
           "warm": [], "cold": {}, "cold_other_pct": {}, "handoff": None, "burst": None}
    say("bench: %s" % ("quick smoke run (~15 s)" if args.quick else "full run (~%d s)" % (
        10 + 4 * warmup + 3 + 6 * rounds * duration)))
    try:
        zips = {k: make_zip(k, workdir) for k in RUNTIMES}
        daemon = Daemon(args.ignis, workdir).start()
        say("bench: ignis %s on 127.0.0.1:%d, data dir %s" % (args.ignis, daemon.port,
                                                              daemon.data_dir))
        lam = Lambda(daemon.port)

        # cold starts first, while no other function instance exists
        meter = CpuMeter(daemon.proc.pid)
        for key in ("python", "node", "provided", "static"):
            say("bench: cold start %s x%d ..." % (label(key), samples))
            meter.start()
            res["cold"][key] = cold(lam, key, zips[key], samples)
            res["cold_other_pct"][key] = meter.stop()["other_pct"]

        say("bench: burst of %d concurrent invokes on a cold %s function ..." % (
            BURST, label("static")))
        res["burst"] = burst(lam, "static", zips["static"])

        # the warm functions; each must answer with the event
        fns = {}
        for key in ("python", "node", "provided"):
            fns[key] = "bench-warm-%s" % key
            lam.create(fns[key], key, zips[key])
            out, _ = lam.invoke(fns[key])
            if not echoed(out):
                raise RuntimeError("%s answered %r, not the event" % (fns[key], out[:200]))

        w16 = max(2, warmup + 1)  # 16 clients: the scale-out to 16 instances takes longer
        urls = {k: lam.url_path(fns[k]) for k in ("provided", "python")}  # Function URLs
        figures = [
            Figure("edge only (DryRun)", "edge", fns["python"], 1, 0 if args.quick else 1,
                   {"X-Amz-Invocation-Type": "DryRun"}),
            Figure("provided.al2023", "provided", fns["provided"], 1, warmup),
            Figure("python3.11", "python", fns["python"], 1, warmup),
            Figure("nodejs20.x", "node", fns["node"], 1, warmup),
            Figure("provided.al2023", "provided", fns["provided"], 16, w16),
            Figure("python3.11", "python", fns["python"], 16, w16),
            Figure("provided.al2023", "provided", fns["provided"], 64, w16),
            Figure("python3.11", "python", fns["python"], 64, w16),
            Figure("provided via URL", "provided", fns["provided"], 1, warmup,
                   url_path=urls["provided"]),
            Figure("python3.11 via URL", "python", fns["python"], 1, warmup,
                   url_path=urls["python"]),
            Figure("provided via URL", "provided", fns["provided"], 16, w16,
                   url_path=urls["provided"]),
            Figure("python3.11 via URL", "python", fns["python"], 16, w16,
                   url_path=urls["python"]),
        ]
        url = "http://%s" % lam.host
        for f in figures:
            f.prepare(lam, workdir)  # signs once: valid for 15 minutes, the run takes ~2
        say("bench: cross-CPU hand-off probe (DryRun pinned to one CPU, then two) ...")
        res["handoff"] = handoff_probe(wrk, url, figures[0], daemon.proc.pid, duration,
                                       settle=not args.quick)
        say("bench: warming up (%s s) ..." % "+".join(str(f.warmup) for f in figures))
        for f in figures:
            if f.warmup:
                run_wrk(wrk, url, f.script, f.clients, f.warmup)
        for r in range(rounds):
            say("bench: warm round %d/%d ..." % (r + 1, rounds))
            for f in figures:
                f.run(wrk, url, duration, meter)
        for f in figures:
            s = f.summary()
            s.update(label=f.label, key=f.key, clients=f.clients, url=bool(f.url_path))
            res["warm"].append(s)
            if s["errors"] or s["odd_bytes"]:
                say("bench: WARNING: %s @%d: %d errors%s" % (
                    f.label, f.clients, s["errors"],
                    ", and wrk read a byte count that does not fit the echo answer"
                    if s["odd_bytes"] else ""))
                failed = True
        res["warm_rounds"] = {"%s@%d" % (f.label, f.clients): f.rounds for f in figures}
        say("bench: response streaming through a Function URL ...")
        res["streaming"] = streaming(lam, daemon.port, 10 if args.quick else 50)
        # still answering correctly after all that
        for key, name in fns.items():
            out, _ = lam.invoke(name)
            if not echoed(out):
                raise RuntimeError("%s answered %r after the warm runs" % (name, out[:200]))
    except Exception as e:  # report what we have, then fail
        say("bench: FAILED: %s: %s" % (type(e).__name__, e))
        failed = True
    finally:
        if daemon and daemon.proc:
            rc, secs = daemon.stop()
            res["stop"] = (rc, secs)
            say("bench: ignis stopped on SIGTERM in %.2f s, exit status %s" % (secs, rc))
            if rc != 0:
                say("bench: FAILED: ignis exited with %s on SIGTERM; log tail:\n%s" % (
                    rc, daemon.read_log()[-3000:]))
                failed = True
            warnings = [l for l in daemon.read_log().splitlines()
                        if re.search(r"ignis (warn|error)", l)]
            if warnings:
                say("bench: the daemon logged %d warnings/errors, e.g.:\n  %s" % (
                    len(warnings), "\n  ".join(warnings[:5])))

    if res["warm"] or res["cold"]:
        say(render_terminal(res))
        if write_doc and not failed:
            write_docs(render(res, args.quick))
            if res.get("streaming"):
                write_streaming_docs(render_streaming(res["streaming"],
                                                      res["machine"].get("cpu", "")))
            say("bench: wrote %s" % os.path.relpath(DOCS, os.getcwd()))
        elif write_doc:
            say("bench: not updating docs/benchmarks.md after a failed run")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2, default=str)
    say("bench: done in %.1f s" % (time.perf_counter() - t_start))
    if not failed:
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        say("bench: kept %s (daemon log: ignis.log)" % workdir)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
