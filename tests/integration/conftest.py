"""Fixtures for integration tests: a real `ignis serve` on a free port with a
temporary data dir, driven by the real aws CLI (/usr/bin/aws) and boto3.

IGNIS_BIN names the binary under test (make sets it; default build/ignis).
"""
import base64
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
import zipfile

import boto3
import botocore.config
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
IGNIS_BIN = os.environ.get("IGNIS_BIN", os.path.join(REPO, "build", "ignis"))
AWS = "/usr/bin/aws"
ACCESS_KEY = "AKIAIGNISTESTKEY0001"
SECRET_KEY = "ignis-test-secret-key-0000000000000000000"
REGION = "us-east-1"
ROLE = "arn:aws:iam::000000000000:role/lambda-role"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One ignis daemon. start()/stop()/kill9() keep the data dir."""

    def __init__(self, data_dir, port=None, env=None, args=(), binary=None, prefix=()):
        self.data_dir = data_dir
        self.binary = binary or IGNIS_BIN
        self.prefix = list(prefix)  # e.g. setpriv ... to run as another user (it execs)
        self.args = list(args)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.extra_env = env or {}
        self.proc = None
        self.log_path = os.path.join(data_dir + ".log")

    def env(self):
        e = dict(os.environ)
        e.update(
            IGNIS_ROOT_ACCESS_KEY_ID=ACCESS_KEY,
            IGNIS_ROOT_SECRET_ACCESS_KEY=SECRET_KEY,
            IGNIS_DATA_DIR=self.data_dir,
        )
        e.update(self.extra_env)
        return e

    def start(self, timeout=10):
        """Returns once the daemon says it is listening (the port opens earlier)."""
        ready_before = self.read_log().count("ignis: listening on")
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [*self.prefix, self.binary, "serve", "--listen", f"127.0.0.1:{self.port}", "--data-dir", self.data_dir,
             *self.args],
            env=self.env(), stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ignis exited with {self.proc.returncode}: {self.read_log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    pass
                if self.read_log().count("ignis: listening on") > ready_before:
                    return self
            except OSError:
                pass
            time.sleep(0.02)
        raise RuntimeError("ignis did not start listening: " + self.read_log())

    def read_log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def stop(self, timeout=10):
        """SIGTERM and wait; returns the exit status."""
        if not self.proc:
            return None
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
            raise AssertionError("ignis did not stop within %ss on SIGTERM" % timeout)
        finally:
            self.log.close()
        self.proc = None
        return rc

    def kill9(self):
        self.proc.kill()
        self.proc.wait()
        self.log.close()
        self.proc = None

    def restart(self):
        self.stop()
        return self.start()

    # clients -------------------------------------------------------------
    def client(self, service, **kw):
        cfg = botocore.config.Config(retries={"max_attempts": 0}, read_timeout=120,
                                     connect_timeout=5)
        return boto3.client(service, endpoint_url=self.url, region_name=REGION,
                            aws_access_key_id=kw.get("key", ACCESS_KEY),
                            aws_secret_access_key=kw.get("secret", SECRET_KEY), config=cfg)

    def aws(self, *args, check=True, parse=True, input=None, env=None):
        """Runs the real aws CLI against this server. Returns parsed JSON
        (or the CompletedProcess when parse=False)."""
        e = dict(os.environ)
        e.update(AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY,
                 AWS_DEFAULT_REGION=REGION, AWS_PAGER="", AWS_MAX_ATTEMPTS="1")
        e.pop("AWS_PROFILE", None)
        if env:
            e.update(env)
        cmd = [AWS, "--endpoint-url", self.url, "--output", "json", *args]
        p = subprocess.run(cmd, capture_output=True, text=True, env=e, input=input, timeout=120)
        if check and p.returncode != 0:
            raise AssertionError(f"aws {' '.join(args)} failed ({p.returncode}): {p.stderr}")
        if not parse:
            return p
        return json.loads(p.stdout) if p.stdout.strip() else None


def make_zip(files, modes=None):
    """files: {path: str|bytes}; modes: {path: 0o755}. Returns zip bytes."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, content in files.items():
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.create_system = 3
            mode = (modes or {}).get(name, 0o644)
            info.external_attr = (0o100000 | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, content)
    return buf.getvalue()


def unique(prefix="fn"):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


# Helpers shared by the test files ---------------------------------------------

def code(src):
    """Dedents a handler source."""
    lines = src.strip("\n").splitlines()
    indent = min((len(l) - len(l.lstrip()) for l in lines if l.strip()), default=0)
    return "\n".join(l[indent:] for l in lines) + "\n"


def invoke(lam, name, event=None, raw=None, **kw):
    """Invokes and returns the response dict with `body` (bytes) and `json`."""
    args = dict(FunctionName=name, **kw)
    if raw is not None:
        args["Payload"] = raw
    elif event is not None:
        args["Payload"] = json.dumps(event).encode()
    r = lam.invoke(**args)
    body = r["Payload"].read() if "Payload" in r else b""
    r["body"] = body
    try:
        r["json"] = json.loads(body) if body else None
    except ValueError:
        r["json"] = None
    return r


def request_id(r):
    return r["ResponseMetadata"]["RequestId"]


def tail(r):
    """The decoded LogType=Tail log of an invoke response."""
    return base64.b64decode(r["LogResult"]).decode("utf-8", "replace")


def instance_pids(stream):
    """Host pids of the live processes of the instance whose log stream is
    `stream` (every process of an instance inherits
    AWS_LAMBDA_LOG_STREAM_NAME; inside a sandbox its own pids mean nothing
    here, and every instance is pid 1)."""
    needle = ("AWS_LAMBDA_LOG_STREAM_NAME=" + stream).encode()
    pids = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open(f"/proc/{p}/environ", "rb") as f:
                if needle in f.read().split(b"\0"):
                    pids.append(int(p))
        except OSError:
            continue
    return pids


def instance_gone(stream, timeout=3):
    deadline = time.time() + timeout
    while time.time() < deadline and instance_pids(stream):
        time.sleep(0.02)
    return not instance_pids(stream)


def log_messages(server, name):
    """Every log message of function `name` so far (CloudWatch Logs API)."""
    logs = server.client("logs")
    try:
        pages = logs.get_paginator("filter_log_events").paginate(logGroupName="/aws/lambda/" + name)
        return [e["message"] for p in pages for e in p["events"]]
    except logs.exceptions.ResourceNotFoundException:
        return []


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """One daemon shared by the session's tests."""
    d = str(tmp_path_factory.mktemp("ignis") / "data")
    s = Server(d).start()
    yield s
    if s.proc:
        rc = s.stop()
        assert rc == 0, "ignis exited with %s on SIGTERM:\n%s" % (rc, s.read_log())


@pytest.fixture
def fresh_server(tmp_path):
    """A daemon of its own, for restart and crash tests."""
    s = Server(str(tmp_path / "data")).start()
    yield s
    if s.proc:
        s.stop()


@pytest.fixture
def lam(server):
    return server.client("lambda")


@pytest.fixture
def create_function(lam):
    """create_function(files, runtime=..., handler=..., **params) -> name;
    deletes the functions it made afterwards."""
    made = []

    def create(files, runtime="python3.11", handler="app.handler", name=None, modes=None,
               client=None, **params):
        name = name or unique()
        c = client or lam
        c.create_function(FunctionName=name, Runtime=runtime, Handler=handler, Role=ROLE,
                          Code={"ZipFile": make_zip(files, modes)}, **params)
        made.append((c, name))
        return name

    yield create
    for c, name in made:
        try:
            c.delete_function(FunctionName=name)
        except Exception:
            pass
