"""Instance lifecycle (issue 4): warm instances are kept for a while and then
retired, and retired early when the host runs short of memory; a retired
function cold-starts again (Init Duration in its REPORT)."""
import pytest

from conftest import ROLE, Server, code, instance_gone, instance_pids, invoke, make_zip, tail

WHO = code("""
    import os
    def handler(event, context):
        return os.environ["AWS_LAMBDA_LOG_STREAM_NAME"]
""")


def deploy(lam, name="who"):
    lam.create_function(FunctionName=name, Runtime="python3.11", Handler="app.handler",
                        Role=ROLE, Code={"ZipFile": make_zip({"app.py": WHO})})
    return name


def first_invoke(lam, name):
    r = invoke(lam, name, LogType="Tail")
    assert "FunctionError" not in r, r["body"]
    return r["json"], "Init Duration" in tail(r)


@pytest.fixture
def server_with(tmp_path):
    servers = []

    def start(**env):
        s = Server(str(tmp_path / ("data%d" % len(servers))), env=env).start()
        servers.append(s)
        return s
    yield start
    for s in servers:
        s.stop()


def test_idle_instances_retire_after_the_keep_alive(server_with):
    lam = server_with(IGNIS_IDLE_TIMEOUT_S="2").client("lambda")
    name = deploy(lam)
    stream, cold = first_invoke(lam, name)
    assert cold and instance_pids(stream)
    again, cold = first_invoke(lam, name)          # warm: the same instance
    assert again == stream and not cold
    assert instance_gone(stream, timeout=8)        # 2 s idle, swept once a second
    later, cold = first_invoke(lam, name)
    assert later != stream and cold                # a new instance, a cold start


def test_default_keep_alive_keeps_instances_warm(server_with):
    lam = server_with().client("lambda")
    name = deploy(lam)
    stream, _ = first_invoke(lam, name)
    assert not instance_gone(stream, timeout=3)    # default: 10 minutes
    assert first_invoke(lam, name) == (stream, False)


def test_memory_pressure_retires_idle_instances(server_with):
    # a floor above any machine's memory: the host is always "short"
    s = server_with(IGNIS_MIN_FREE_MB=str(1 << 30))
    lam = s.client("lambda")
    name = deploy(lam)
    stream, _ = first_invoke(lam, name)
    assert instance_gone(stream, timeout=8)
    assert "memory pressure" in s.read_log()
    assert first_invoke(lam, name)[1]              # and it still runs, cold
