"""The Python runtime speaks the Runtime API through libcurl (pycurl) when it
is installed, else through http.client; both must behave the same. A
function's own modules must never replace the runtime's."""
import json
import os
import shutil

import pytest

from conftest import REPO, ROLE, Server, code, invoke, make_zip, tail, unique

FN = code("""
    import sys
    def handler(event, context):
        print("transport check", event["n"])
        if event.get("fail"):
            raise ValueError("boom")
        return {"n": event["n"], "curl": "pycurl" in sys.modules}
""")


@pytest.fixture
def stdlib_server(tmp_path):
    """A daemon whose Python runtime cannot import pycurl."""
    rt = tmp_path / "runtimes"
    shutil.copytree(os.path.join(REPO, "runtimes"), rt,
                    ignore=shutil.ignore_patterns("node_modules", "__pycache__"))
    (rt / "python" / "pycurl.py").write_text("raise ImportError('hidden for this test')\n")
    s = Server(str(tmp_path / "data"), env={"IGNIS_RUNTIME_DIR": str(rt)}).start()
    yield s
    s.stop()


def exercise(lam, name):
    for n in range(3):  # warm invokes reuse the connection
        r = invoke(lam, name, {"n": n}, LogType="Tail")
        assert "FunctionError" not in r, r["body"]
        assert f"transport check {n}" in tail(r)
        assert r["json"]["n"] == n
    r = invoke(lam, name, {"n": 9, "fail": True})
    assert r["FunctionError"] == "Unhandled"
    assert r["json"]["errorType"] == "ValueError" and r["json"]["errorMessage"] == "boom"
    big = "x" * 3_000_000
    r = invoke(lam, name, {"n": 5, "pad": big})
    assert r["json"]["n"] == 5
    return r["json"]["curl"]


def test_stdlib_transport(stdlib_server):
    lam = stdlib_server.client("lambda")
    name = unique("py")
    lam.create_function(FunctionName=name, Runtime="python3.12", Handler="app.handler",
                        Role=ROLE, Code={"ZipFile": make_zip({"app.py": FN})})
    assert exercise(lam, name) is False


def test_curl_transport(lam, create_function):
    name = create_function({"app.py": FN}, runtime="python3.12")
    try:
        import pycurl  # noqa: F401
    except ImportError:
        pytest.skip("python3-pycurl is not installed (scripts/install-deps.sh installs it)")
    assert exercise(lam, name) is True


def test_function_module_cannot_replace_the_runtime_client(lam, create_function):
    name = create_function({"app.py": FN,
                            "pycurl.py": "raise RuntimeError('function module loaded')\n"},
                           runtime="python3.12")
    r = invoke(lam, name, {"n": 1})
    assert "FunctionError" not in r, r["body"]
    assert r["json"]["n"] == 1
