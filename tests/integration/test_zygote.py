"""Python instances start by forking a zygote (runtimes/python/zygote.py) that has the
interpreter and the runtime loaded (issue 3: Python cold starts). What a user could notice
must not change: each instance is its own sandboxed process with its own random state and
environment, looks exec'd from inside (/proc), functions whose environment shapes the
interpreter's start still get it, and a dead zygote costs speed, never an invocation.
The sandbox's isolation tests (test_sandbox.py) run their Python functions through the
zygote too."""
import concurrent.futures
import json
import os
import signal
import time

import pytest

from conftest import ROLE, Server, code, invoke, make_zip, unique

PROBE = code("""
    import os, random, sys
    def handler(event, context):
        return {
            "forked": "bootstrap" in sys.modules,   # imported as a module only by the zygote
            "random": random.random(),
            "argv": sys.argv,
            "cmdline": open("/proc/self/cmdline").read().split("\\0")[:-1],
            "stream": os.environ["AWS_LAMBDA_LOG_STREAM_NAME"],
            "env_mine": os.environ.get("MINE"),
            "pythonpath": os.environ.get("PYTHONPATH"),
            "uid": os.getuid(),
            "pid": os.getpid(),
            "lib": __import__("helper").VALUE if os.environ.get("PYTHONPATH") else None,
            "sleep": event.get("sleep") and __import__("time").sleep(event["sleep"]),
        }
""")


def deploy(lam, env=None, memory=1769):
    name = unique("zy")
    files = {"app.py": PROBE, "lib/helper.py": "VALUE = 'from lib'\n"}
    lam.create_function(FunctionName=name, Runtime="python3.12", Handler="app.handler",
                        Role=ROLE, MemorySize=memory, Timeout=30,
                        Environment={"Variables": env or {"MINE": "yes"}},
                        Code={"ZipFile": make_zip(files)})
    return name


def run(lam, name, event=None):
    r = invoke(lam, name, event or {})
    assert "FunctionError" not in r, r["body"]
    return r["json"]


def zygote_pids(server):
    """Host pids of the daemon's Python zygote(s)."""
    pids = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open(f"/proc/{p}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{p}/cmdline", "rb") as f:
                cmd = f.read().split(b"\0")
        except OSError:
            continue
        if ppid == server.proc.pid and any(c.endswith(b"/zygote.py") for c in cmd):
            pids.append(int(p))
    return pids


def wait_for(pred, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(0.1)
    return False


def zygote_serves(lam):
    """Whether a new function's first instance is forked: the zygote process exists a little
    before it is ready (instances start exec'd meanwhile)."""
    name = deploy(lam)
    try:
        return run(lam, name)["forked"]
    finally:
        lam.delete_function(FunctionName=name)


def test_instances_are_forked_and_look_exec_d(server, lam):
    name = deploy(lam)
    assert wait_for(lambda: zygote_pids(server)), "no zygote running"
    assert wait_for(lambda: zygote_serves(lam)), "the zygote never served"
    # two instances at once: each its own process with its own random state
    with concurrent.futures.ThreadPoolExecutor(2) as ex:
        a, b = ex.map(lambda _: run(lam, name, {"sleep": 1.0}), range(2))
    for r in (a, b):
        assert r["forked"] is True, r
        assert r["argv"] == ["/var/runtime/python/bootstrap.py"]
        assert r["cmdline"] == ["/usr/bin/python3", "-S", "/var/runtime/python/bootstrap.py"]
        assert r["env_mine"] == "yes"
        assert r["uid"] == 993 and r["pid"] == 2  # under ignis-init
    assert a["stream"] != b["stream"]
    assert a["random"] != b["random"]
    lam.delete_function(FunctionName=name)


def test_environment_that_shapes_start_up_is_exec_d(server, lam):
    name = deploy(lam, env={"PYTHONPATH": "/var/task/lib"})
    r = run(lam, name)
    assert r["forked"] is False
    assert r["pythonpath"] == "/var/task/lib"
    assert r["lib"] == "from lib"
    lam.delete_function(FunctionName=name)


def test_a_dead_zygote_costs_speed_not_invocations(fresh_server):
    lam = fresh_server.client("lambda")
    name = deploy(lam)
    assert wait_for(lambda: zygote_pids(fresh_server)), "no zygote running"
    old = zygote_pids(fresh_server)
    for pid in old:
        os.kill(pid, signal.SIGKILL)
    # the next cold starts still work (exec'd meanwhile)...
    lam.update_function_configuration(FunctionName=name, Description="again")
    assert run(lam, name)["env_mine"] == "yes"
    # ...and a new zygote takes over within a few seconds of the next cold start
    deadline = time.time() + 20
    forked = False
    while time.time() < deadline and not forked:
        lam.update_function_configuration(FunctionName=name, Description=str(time.time()))
        forked = run(lam, name)["forked"]
        if not forked:
            time.sleep(1)
    assert forked, fresh_server.read_log()
    assert set(zygote_pids(fresh_server)).isdisjoint(old)


def test_zygote_can_be_turned_off(tmp_path):
    s = Server(str(tmp_path / "data"), env={"IGNIS_ZYGOTE": "0"}).start()
    try:
        lam = s.client("lambda")
        name = deploy(lam)
        r = run(lam, name)
        assert r["forked"] is False and r["env_mine"] == "yes"
        assert not zygote_pids(s)
    finally:
        s.stop()
