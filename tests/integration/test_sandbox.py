"""Function code is untrusted: each instance runs in its own sandbox
(namespaces, a minimal read-only root, no capabilities, seccomp, loopback-only
network with the Runtime API at 127.0.0.1:9001). Without a sandbox the daemon
refuses to start unless told --no-sandbox, and says so loudly."""
import os
import pathlib
import shutil
import socket
import subprocess
import tempfile
import time

import pytest

from conftest import IGNIS_BIN, ROLE, Server, code, free_port, invoke, make_zip, unique

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="sandboxing needs root here")

PROBE = code("""
    import ctypes, json, os, socket
    def unshare_mount_ns():
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.unshare(0x00020000) != 0:  # CLONE_NEWNS
            e = ctypes.get_errno()
            raise OSError(e, os.strerror(e))
        return "unshared"
    def attempt(f):
        try:
            return "ok: %s" % (f(),)
        except Exception as e:
            return "%s: %s" % (type(e).__name__, e)
    def connect(port):
        s = socket.create_connection(("127.0.0.1", port), timeout=1)
        s.close()
        return "connected"
    def write(path):
        with open(path, "w") as f:
            f.write("x")
        return "written"
    def handler(event, context):
        return {
            "uid": os.getuid(),
            "pid": os.getpid(),
            "task_root": os.environ["LAMBDA_TASK_ROOT"],
            "runtime_api": os.environ["AWS_LAMBDA_RUNTIME_API"],
            "shadow": attempt(lambda: open("/etc/shadow").read()),
            "data_dir": os.path.exists(event["data_dir"]),
            "write_task": attempt(lambda: write("/var/task/evil")),
            "write_tmp": attempt(lambda: write("/tmp/scratch")),
            "host_port": attempt(lambda: connect(event["port"])),
            "signal_daemon": attempt(lambda: os.kill(event["daemon_pid"], 0)),
            "unshare": attempt(unshare_mount_ns),
        }
""")


def probe(server, lam, name, port):
    r = invoke(lam, name, {"data_dir": server.data_dir, "port": port,
                           "daemon_pid": server.proc.pid})
    assert "FunctionError" not in r, r["body"]
    return r["json"]


@pytest.fixture
def host_listener():
    s = socket.socket()
    s.bind(("127.0.0.1", free_port()))
    s.listen(8)
    yield s.getsockname()[1]
    s.close()


def test_instance_is_isolated(server, lam, create_function, host_listener):
    name = create_function({"app.py": PROBE}, runtime="python3.12")
    got = probe(server, lam, name, host_listener)
    assert got["uid"] not in (0, os.getuid())
    assert got["pid"] == 2                       # own PID namespace, under ignis-init
    assert got["task_root"] == "/var/task"
    assert got["runtime_api"] == "127.0.0.1:9001"
    assert not got["shadow"].startswith("ok"), got["shadow"]
    assert got["data_dir"] is False              # nothing of the daemon's data
    assert "Read-only file system" in got["write_task"], got["write_task"]
    assert got["write_tmp"] == "ok: written"
    assert not got["host_port"].startswith("ok"), got["host_port"]   # no network
    assert got["signal_daemon"].startswith("ProcessLookupError"), got["signal_daemon"]
    assert got["unshare"].startswith("PermissionError"), got["unshare"]


def test_no_sandbox_runs_functions_as_plain_processes(tmp_path, host_listener):
    s = Server(str(tmp_path / "data"), args=["--no-sandbox"]).start()
    try:
        assert "WITHOUT isolation" in s.read_log()
        lam = s.client("lambda")
        name = unique("plain")
        lam.create_function(FunctionName=name, Runtime="python3.12", Handler="app.handler",
                            Role=ROLE, Code={"ZipFile": make_zip({"app.py": PROBE})})
        got = probe(s, lam, name, host_listener)
        assert got["task_root"] != "/var/task" and got["pid"] != 1
        assert got["host_port"] == "ok: connected"
    finally:
        s.stop()


# Runs argv (sys.argv[1:]) as uid 1000 of a user namespace in which no further
# user namespace may be made: a host that forbids unprivileged user namespaces.
NO_USERNS = """
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
uid, gid = os.getuid(), os.getgid()
assert libc.unshare(0x10000000) == 0, ctypes.get_errno()    # CLONE_NEWUSER
for path, text in (("/proc/self/uid_map", "1000 %d 1" % uid),
                   ("/proc/self/setgroups", "deny"),
                   ("/proc/self/gid_map", "1000 %d 1" % gid),
                   ("/proc/sys/user/max_user_namespaces", "0")):
    with open(path, "w") as f:
        f.write(text)
os.execv(sys.argv[1], sys.argv[1:])
"""


def test_refuses_to_start_without_isolation():
    """As an unprivileged user where user namespaces are not allowed (no
    namespaces, no cgroups) the daemon will not run functions unisolated
    unless told to. (Where they are: test_rootless.py.)"""
    data = pathlib.Path(tempfile.mkdtemp(prefix="ignis-nobody-"))
    os.chmod(data, 0o777)
    as_nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    port = free_port()
    env = dict(os.environ, IGNIS_ROOT_ACCESS_KEY_ID="AKIAIGNISTESTKEY0001",
               IGNIS_ROOT_SECRET_ACCESS_KEY="x" * 40, HOME=str(data))
    p = subprocess.run([*as_nobody, "/usr/bin/python3", "-c", NO_USERNS, IGNIS_BIN, "serve",
                        "--listen", f"127.0.0.1:{port}", "--data-dir", str(data / "d")],
                       capture_output=True, text=True, timeout=20, env=env)
    assert p.returncode == 1, p.stderr
    assert "refusing to start" in p.stderr and "--no-sandbox" in p.stderr

    proc = subprocess.Popen([*as_nobody, IGNIS_BIN, "serve", "--listen", f"127.0.0.1:{port}",
                             "--data-dir", str(data / "d"), "--no-sandbox"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        else:
            raise AssertionError("ignis --no-sandbox did not start as an ordinary user")
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
    shutil.rmtree(data, ignore_errors=True)
    assert proc.returncode == 0, out
    assert "WITHOUT isolation" in out


def test_network_is_granted_per_function_by_tag(server, lam, create_function, host_listener):
    """Tag ignis:network=host (the counterpart of Lambda's VPC config) keeps
    the host's network for that function's instances; untagging takes it away
    from the next instance."""
    granted = create_function({"app.py": PROBE}, runtime="python3.12",
                              Tags={"ignis:network": "host"})
    got = probe(server, lam, granted, host_listener)
    assert got["host_port"] == "ok: connected"
    assert got["pid"] == 2 and not got["shadow"].startswith("ok")  # otherwise still sandboxed
    assert got["runtime_api"].startswith("127.0.0.1:")

    arn = lam.get_function(FunctionName=granted)["Configuration"]["FunctionArn"]
    lam.untag_resource(Resource=arn, TagKeys=["ignis:network"])
    assert not probe(server, lam, granted, host_listener)["host_port"].startswith("ok")

    plain = create_function({"app.py": PROBE}, runtime="python3.12")
    assert not probe(server, lam, plain, host_listener)["host_port"].startswith("ok")
    arn = lam.get_function(FunctionName=plain)["Configuration"]["FunctionArn"]
    lam.tag_resource(Resource=arn, Tags={"ignis:network": "host"})
    assert probe(server, lam, plain, host_listener)["host_port"] == "ok: connected"


ATTACKS = code("""
    import ctypes, os, subprocess, time
    def fork_bomb():
        pids, err = [], None
        try:
            for _ in range(5000):
                pid = os.fork()
                if pid == 0:
                    time.sleep(5)
                    os._exit(0)
                pids.append(pid)
        except OSError as e:
            err = e.errno
        for p in pids:
            os.kill(p, 9)
        return {"forked": len(pids), "errno": err}
    def many_files():
        fds, err = [], None
        try:
            for _ in range(10000):
                fds.append(os.open("/dev/null", os.O_RDONLY))
        except OSError as e:
            err = e.errno
        for fd in fds:
            os.close(fd)
        return {"opened": len(fds), "errno": err}
    def fill_tmp():
        written, err = 0, None
        try:
            with open("/tmp/fill", "wb") as f:
                chunk = b"x" * (1 << 20)
                for _ in range(2048):
                    f.write(chunk)
                    f.flush()
                    written += 1
        except OSError as e:
            err = e.errno
        os.unlink("/tmp/fill")
        return {"mb": written, "errno": err}
    def ptrace_parent():
        libc = ctypes.CDLL(None, use_errno=True)
        rc = libc.ptrace(16, os.getppid() or 1, 0, 0)   # PTRACE_ATTACH
        return {"rc": rc, "errno": ctypes.get_errno()}
    def handler(event, context):
        return globals()[event["attack"]]()
""")


# Memory is sized so that the limit under test trips first: forked Pythons
# dirty ~1 MB each. /tmp is on disk, so filling it needs no memory.
@pytest.mark.parametrize("attack,memory", [("fork_bomb", 3008), ("many_files", 256),
                                           ("fill_tmp", 128), ("ptrace_parent", 256)])
def test_attacks_are_contained(server, lam, create_function, attack, memory):
    import errno
    name = create_function({"app.py": ATTACKS}, runtime="python3.12", Timeout=30,
                           MemorySize=memory, EphemeralStorage={"Size": 512})
    r = invoke(lam, name, {"attack": attack})
    assert "FunctionError" not in r, r["body"]
    got = r["json"]
    if attack == "fork_bomb":
        assert got["errno"] == errno.EAGAIN and got["forked"] < 1024, got   # pids limit
    elif attack == "many_files":
        assert got["errno"] == errno.EMFILE and got["opened"] < 1024, got   # RLIMIT_NOFILE
    elif attack == "fill_tmp":
        assert got["errno"] == errno.ENOSPC and got["mb"] <= 512, got       # /tmp size
    else:
        assert got["rc"] == -1 and got["errno"] in (errno.EPERM, errno.ESRCH), got
    # the daemon still answers, and this and other functions still run
    assert invoke(lam, name, {"attack": "many_files"})["json"]["errno"] == errno.EMFILE
    other = create_function({"app.py": "def handler(e, c):\n    return 'fine'\n"},
                            runtime="python3.12")
    assert invoke(lam, other)["json"] == "fine"


TMP_WRITER = code("""
    import os
    def handler(event, context):
        path = "/tmp/big"
        if event.get("write_mb"):
            chunk = b"x" * (1 << 20)
            with open(path, "wb") as f:
                for _ in range(event["write_mb"]):
                    f.write(chunk)
        st = os.statvfs("/tmp")
        return {"size_mb": st.f_blocks * st.f_frsize >> 20,
                "file_mb": os.path.getsize(path) >> 20 if os.path.exists(path) else None,
                "entries": sorted(os.listdir("/tmp")) if not event.get("write_mb") else None}
""")


def test_tmp_is_disk_backed_not_memory(server, lam, create_function):
    """As on Lambda, /tmp is ephemeral storage of its own: a 128 MB function
    can keep 300 MB there, and files stay for the instance's next invokes."""
    name = create_function({"app.py": TMP_WRITER}, runtime="python3.12", Timeout=60,
                           MemorySize=128)
    first = invoke(lam, name, {})
    assert "FunctionError" not in first, first["body"]
    assert first["json"]["entries"] == []              # empty, no lost+found
    assert 480 <= first["json"]["size_mb"] <= 512       # EphemeralStorage default: 512 MB
    r = invoke(lam, name, {"write_mb": 300})
    assert "FunctionError" not in r, r["body"]
    assert r["json"]["file_mb"] == 300
    again = invoke(lam, name, {})                       # the same warm instance
    assert again["json"]["file_mb"] == 300


def test_tmp_size_follows_ephemeral_storage(server, lam, create_function):
    name = create_function({"app.py": TMP_WRITER}, runtime="python3.12",
                           EphemeralStorage={"Size": 1024})
    r = invoke(lam, name, {})
    assert 990 <= r["json"]["size_mb"] <= 1024, r["json"]
    lam.update_function_configuration(FunctionName=name, EphemeralStorage={"Size": 600})
    lam.get_waiter("function_updated_v2").wait(FunctionName=name)
    r = invoke(lam, name, {})                           # a new instance, a new /tmp
    assert 580 <= r["json"]["size_mb"] <= 600, r["json"]


# Each invoke leaves an orphan behind: the shell's background job outlives the shell and is
# reparented to PID 1. Under ignis-init (PID 1, as Lambda's init) it is reaped once it ends;
# a runtime that were PID 1 itself would pile up zombies until the instance's process limit.
ORPHANS_PY = code("""
    import os, subprocess
    def processes():
        out = {}
        for pid in os.listdir("/proc"):
            if pid.isdigit():
                try:
                    with open("/proc/%s/stat" % pid) as f:
                        stat = f.read()
                except FileNotFoundError:
                    continue
                out[int(pid)] = (stat[stat.index("(") + 1:stat.rindex(")")],
                                 stat[stat.rindex(")") + 2])
        return out
    def handler(event, context):
        subprocess.run(["/bin/sh", "-c", "sleep 0.05 &"], check=True)
        procs = processes()
        try:
            init_fds = "listed %d" % len(os.listdir("/proc/1/fd"))
        except PermissionError:
            init_fds = "denied"
        return {"pid": os.getpid(), "init": procs.get(1, ["?"])[0], "init_fds": init_fds,
                "zombies": sum(1 for c, state in procs.values() if state == "Z")}
""")

ORPHANS_JS = """
const fs = require('fs');
const { execFileSync } = require('child_process');
exports.handler = async () => {
  execFileSync('/bin/sh', ['-c', 'sleep 0.05 &']);
  let init = '?', zombies = 0;
  for (const pid of fs.readdirSync('/proc').filter((p) => /^[0-9]+$/.test(p))) {
    let stat;
    try { stat = fs.readFileSync('/proc/' + pid + '/stat', 'utf8'); } catch (e) { continue; }
    const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    if (pid === '1') init = comm;
    if (stat[stat.lastIndexOf(')') + 2] === 'Z') zombies++;
  }
  return { pid: process.pid, init, zombies };
};
"""


@pytest.mark.parametrize("runtime", ["python3.12", "nodejs20.x"])  # zygote child, exec'd
def test_orphans_are_reaped(lam, create_function, runtime):
    if runtime.startswith("python"):
        name = create_function({"app.py": ORPHANS_PY}, runtime=runtime)
    else:
        name = create_function({"index.js": ORPHANS_JS}, runtime=runtime,
                               handler="index.handler")
    for _ in range(8):
        got = invoke(lam, name, {})["json"]
        time.sleep(0.1)  # the orphan ends meanwhile
    assert got["init"] == "ignis-init", got
    assert got["pid"] == 2, got
    assert got["zombies"] == 0, got
    if "init_fds" in got:  # same uid as init, which is not dumpable: its status pipe is out of reach
        assert got["init_fds"] == "denied", got
