"""Rootless mode (issue 3): an ordinary user runs Ignis where unprivileged
user namespaces are allowed, as bubblewrap does. Each instance still gets its
own user, mount, PID, IPC, UTS, network and cgroup namespaces, runs as uid 993
inside with no capabilities and the seccomp filter; without a delegated cgroup
its limits are rlimits, and the daemon says so. The daemon runs here as
`nobody`, from a copy of the binary and runtimes that user can read."""
import errno
import os
import shutil
import socket
import subprocess

import pytest

from conftest import IGNIS_BIN, REPO, ROLE, Server, code, invoke, make_zip, unique

AS_NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def userns_allowed():
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        return False
    r = subprocess.run(AS_NOBODY + ["unshare", "-U", "-r", "true"], capture_output=True)
    return r.returncode == 0


pytestmark = pytest.mark.skipif(not userns_allowed(),
                                reason="needs root (to become nobody) and unprivileged userns")


@pytest.fixture(scope="module")
def rootless(tmp_path_factory):
    base = tmp_path_factory.mktemp("rootless")
    os.chmod(base, 0o755)
    for p in base.parents:  # pytest's temp dirs are private to root
        if str(p).startswith("/tmp/"):
            os.chmod(p, os.stat(p).st_mode | 0o755)
    shutil.copy2(IGNIS_BIN, base / "ignis")
    shutil.copytree(os.path.join(REPO, "runtimes"), base / "runtimes")
    subprocess.run(["chmod", "-R", "a+rX", str(base)], check=True)
    data = base / "data"
    data.mkdir()
    os.chown(data, 65534, 65534)
    s = Server(str(data), binary=str(base / "ignis"), prefix=AS_NOBODY).start()
    yield s
    rc = s.stop()
    assert rc == 0, s.read_log()


def test_daemon_says_it_is_rootless_and_which_limits_hold(rootless):
    log = rootless.read_log()
    assert "functions run sandboxed: rootless" in log, log
    assert "RLIMIT_DATA" in log or "through cgroup" in log, log


PROBE = code("""
    import errno, os, socket
    def attempt(f):
        try:
            return "ok: " + str(f())
        except OSError as e:
            return errno.errorcode.get(e.errno, str(e.errno))
    def handler(event, context):
        if event.get("mb"):
            held = [bytearray(1 << 20) for _ in range(event["mb"])]
            return {"held": len(held)}
        if event.get("fork"):
            pids, err = [], None
            try:
                for _ in range(2000):
                    pid = os.fork()
                    if pid == 0:
                        import time; time.sleep(5); os._exit(0)
                    pids.append(pid)
            except OSError as e:
                err = e.errno
            for p in pids:
                os.kill(p, 9)
                os.waitpid(p, 0)
            return {"forked": len(pids), "errno": err}
        def connect():
            s = socket.create_connection(("127.0.0.1", event["port"]), timeout=1)
            s.close()
        return {
            "uid": os.getuid(), "gid": os.getgid(), "pid": os.getpid(),
            "procs": len([p for p in os.listdir("/proc") if p.isdigit()]),
            "hostname": socket.gethostname(),
            "shadow": attempt(lambda: open("/etc/shadow").read()),
            "write_task": attempt(lambda: open("/var/task/x", "w")),
            "write_tmp": attempt(lambda: open("/tmp/x", "w").write("x")),
            "host_port": attempt(connect),
            "caps": open("/proc/self/status").read().split("CapEff:")[1].split()[0],
        }
""")


@pytest.fixture(scope="module")
def lam(rootless):
    return rootless.client("lambda")


@pytest.fixture(scope="module")
def probe_fn(lam):
    name = unique("rootless")
    lam.create_function(FunctionName=name, Runtime="python3.12", Handler="app.handler",
                        Role=ROLE, Code={"ZipFile": make_zip({"app.py": PROBE})},
                        MemorySize=128, Timeout=30)
    return name


def test_isolated_like_as_root(lam, probe_fn):
    host = socket.socket()
    host.bind(("127.0.0.1", 0))
    host.listen()
    got = invoke(lam, probe_fn, {"port": host.getsockname()[1]})["json"]
    host.close()
    assert (got["uid"], got["gid"]) == (993, 993), got
    assert got["pid"] <= 3 and got["procs"] <= 3, got      # its own PID namespace
    assert got["hostname"] == "sandbox"
    assert got["shadow"] == "ENOENT"
    assert got["write_task"] in ("EROFS", "EACCES"), got
    assert got["write_tmp"] == "ok: 1"
    assert got["host_port"] in ("ECONNREFUSED", "ENETUNREACH"), got  # loopback of its own
    assert int(got["caps"], 16) == 0, got


def test_memory_and_processes_are_limited_by_rlimits(lam, probe_fn):
    r = invoke(lam, probe_fn, {"mb": 400})      # MemorySize 128
    assert r.get("FunctionError") == "Unhandled", r["body"]
    assert r["json"]["errorType"] == "MemoryError", r["json"]
    forked = invoke(lam, probe_fn, {"fork": True})["json"]
    assert forked["errno"] == errno.EAGAIN and forked["forked"] < 1024, forked
    # and the function still answers
    assert invoke(lam, probe_fn, {"port": 1})["json"]["uid"] == 993


def test_function_calls_back_without_network(lam):
    """The daemon's endpoint inside a rootless sandbox's own network namespace (the sandbox
    makes that listener itself: a rootless daemon cannot enter the namespace and come back)."""
    name = unique("rootless-cb")
    lam.create_function(FunctionName=name, Runtime="python3.12", Handler="app.handler",
                        Role=ROLE, MemorySize=1769, Timeout=30, Code={"ZipFile": make_zip({"app.py": code("""
        import boto3
        def handler(event, context):
            return boto3.client("lambda").get_function(
                FunctionName=context.function_name)["Configuration"]["FunctionName"]
    """)})})
    r = invoke(lam, name)
    assert "FunctionError" not in r, r["body"]
    assert r["json"] == name
