"""Invoke: the data-plane API as AWS Lambda answers it (RequestResponse, Event,
DryRun, LogType Tail, errors, limits, timeouts, crashes, warm state, updates,
concurrency), driven through boto3 and the real aws CLI.
"""
import base64
import json
import os
import re
import threading
import time
import uuid

import pytest
from botocore.exceptions import ClientError

from conftest import code, instance_gone, invoke, log_messages, make_zip, request_id, tail


SYNC_PAYLOAD_MAX = 6291456










def client_error(excinfo):
    err = excinfo.value.response
    return err["ResponseMetadata"]["HTTPStatusCode"], err["Error"]["Code"], err["Error"].get("Message", "")


def wait_updated(lam, name, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        cfg = lam.get_function_configuration(FunctionName=name)
        if cfg.get("LastUpdateStatus", "Successful") == "Successful" and cfg.get("State", "Active") == "Active":
            return cfg
        time.sleep(0.05)
    raise AssertionError("function %s did not finish updating" % name)


ECHO = code("""
    import os
    def handler(event, context):
        return {"event": event, "request_id": context.aws_request_id, "pid": os.environ["AWS_LAMBDA_LOG_STREAM_NAME"]}
""")

SLEEPER = code("""
    import os, time
    def handler(event, context):
        print("sleeping", event.get("sleep", 0))
        time.sleep(event.get("sleep", 0))
        return {"slept": event.get("sleep", 0), "pid": os.environ["AWS_LAMBDA_LOG_STREAM_NAME"]}
""")


# --- RequestResponse -------------------------------------------------------------

def test_request_response_returns_handler_json(lam, create_function):
    name = create_function({"app.py": ECHO})
    r = invoke(lam, name, {"hello": "world", "n": [1, 2, 3]})
    assert r["StatusCode"] == 200
    assert "FunctionError" not in r
    assert r["json"]["event"] == {"hello": "world", "n": [1, 2, 3]}
    assert r["ExecutedVersion"] == "$LATEST"
    headers = r["ResponseMetadata"]["HTTPHeaders"]
    assert headers["x-amz-executed-version"] == "$LATEST"
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", request_id(r))
    # the request id the handler saw is the one the caller gets back
    assert r["json"]["request_id"] == request_id(r)
    # LogType None: no log in the answer
    assert "LogResult" not in r


def test_handler_exception_is_unhandled_function_error(lam, create_function):
    name = create_function({"app.py": code("""
        def helper(x):
            raise ValueError("boom " + x)
        def handler(event, context):
            helper("now")
    """)})
    r = invoke(lam, name, {}, LogType="Tail")
    assert r["StatusCode"] == 200
    assert r["FunctionError"] == "Unhandled"
    assert r["ResponseMetadata"]["HTTPHeaders"]["x-amz-function-error"] == "Unhandled"
    assert r["ExecutedVersion"] == "$LATEST"
    err = r["json"]
    assert err["errorMessage"] == "boom now"
    assert err["errorType"] == "ValueError"
    assert err["requestId"] == request_id(r)
    assert isinstance(err["stackTrace"], list) and err["stackTrace"]
    joined = "".join(err["stackTrace"])
    assert "app.py" in joined and "helper" in joined and "raise ValueError" in joined
    # the runtime's own frames are not shown
    assert "bootstrap" not in joined
    log = tail(r)
    assert "[ERROR] ValueError: boom now" in log
    # the instance survives a handled-by-runtime exception
    r2 = invoke(lam, name, {})
    assert r2["FunctionError"] == "Unhandled"
    assert r2["json"]["errorMessage"] == "boom now"


# --- LogType Tail ------------------------------------------------------------------

REPORT_RE = (r"REPORT RequestId: {id}\tDuration: (\d+\.\d+) ms\tBilled Duration: (\d+) ms\t"
             r"Memory Size: 128 MB\tMax Memory Used: (\d+) MB(\tInit Duration: (\d+\.\d+) ms)?\t?")


def check_log(log, rid, printed):
    lines = [l for l in log.split("\n") if l.strip()]
    start = "START RequestId: %s Version: $LATEST" % rid
    assert start in lines, log
    assert printed in lines, log
    assert "END RequestId: %s" % rid in lines, log
    i_start, i_print, i_end = lines.index(start), lines.index(printed), lines.index("END RequestId: %s" % rid)
    assert i_start < i_print < i_end, log
    report = lines[-1]
    m = re.fullmatch(REPORT_RE.format(id=re.escape(rid)), report)
    assert m, "bad REPORT line %r in\n%s" % (report, log)
    assert lines.index(report) == i_end + 1, log
    duration, billed, max_mem = float(m.group(1)), int(m.group(2)), int(m.group(3))
    assert billed >= 1 and billed >= int(duration)
    assert billed <= duration + 1
    assert max_mem >= 1
    return m


def test_log_tail_cold_then_warm(lam, create_function):
    name = create_function({"app.py": code("""
        print("module loaded")
        def handler(event, context):
            print("hello from", event["who"])
            return 1
    """)})
    r = invoke(lam, name, {"who": "cold"}, LogType="Tail")
    assert r["StatusCode"] == 200 and "FunctionError" not in r
    log = tail(r)
    m = check_log(log, request_id(r), "hello from cold")
    assert m.group(4), "cold start REPORT has no Init Duration:\n" + log
    assert float(m.group(5)) > 0

    r = invoke(lam, name, {"who": "warm"}, LogType="Tail")
    log = tail(r)
    m = check_log(log, request_id(r), "hello from warm")
    assert m.group(4) is None, "warm REPORT has an Init Duration:\n" + log
    assert "Init Duration" not in log
    # only this invocation's log
    assert "hello from cold" not in log


def test_log_tail_is_last_4kb(lam, create_function):
    name = create_function({"app.py": code("""
        def handler(event, context):
            for i in range(400):
                print("line %04d %s" % (i, "x" * 40))
            return "ok"
    """)})
    r = invoke(lam, name, {}, LogType="Tail")
    assert r["json"] == "ok"
    raw = base64.b64decode(r["LogResult"])
    assert 3000 < len(raw) <= 4096
    log = raw.decode("utf-8", "replace")
    assert "line 0399" in log
    assert "line 0000" not in log
    last = [l for l in log.split("\n") if l.strip()][-1]
    assert last.startswith("REPORT RequestId: %s\t" % request_id(r))


# --- invocation types -------------------------------------------------------------

def test_dry_run_returns_204(lam, create_function):
    name = create_function({"app.py": ECHO})
    r = invoke(lam, name, {"a": 1}, InvocationType="DryRun")
    assert r["StatusCode"] == 204
    assert r["body"] == b""
    assert "FunctionError" not in r


def test_dry_run_unknown_function_is_404(lam):
    with pytest.raises(ClientError) as e:
        lam.invoke(FunctionName="nope-" + uuid.uuid4().hex[:8], InvocationType="DryRun")
    status, code_, _ = client_error(e)
    assert (status, code_) == (404, "ResourceNotFoundException")


def test_event_invocation_returns_202_and_runs(server, lam, create_function):
    """The function runs: its log line (with the request id the 202 carried)
    shows up in its log group."""
    name = create_function({"app.py": code("""
        def handler(event, context):
            print("event ran", event["mark"], context.aws_request_id)
            return None
    """)})
    mark = uuid.uuid4().hex
    r = invoke(lam, name, {"mark": mark}, InvocationType="Event")
    assert r["StatusCode"] == 202
    assert r["body"] == b""
    rid = request_id(r)
    assert rid
    want = "event ran %s %s" % (mark, rid)
    deadline = time.time() + 15
    while time.time() < deadline and want not in log_messages(server, name):
        time.sleep(0.05)
    assert want in log_messages(server, name), "the Event invocation never ran"


# --- request validation -------------------------------------------------------------

def test_payload_over_6mb_is_413(lam, create_function):
    name = create_function({"app.py": ECHO})
    payload = b'"' + b"a" * (SYNC_PAYLOAD_MAX - 1) + b'"'  # 6291457 bytes of valid JSON
    assert len(payload) == SYNC_PAYLOAD_MAX + 1
    with pytest.raises(ClientError) as e:
        lam.invoke(FunctionName=name, Payload=payload)
    status, code_, _ = client_error(e)
    assert (status, code_) == (413, "RequestTooLargeException")
    # the daemon is fine afterwards
    assert invoke(lam, name, {"ok": 1})["json"]["event"] == {"ok": 1}


def test_invalid_json_payload_is_400(lam, create_function):
    name = create_function({"app.py": ECHO})
    with pytest.raises(ClientError) as e:
        lam.invoke(FunctionName=name, Payload=b"{not json")
    status, code_, msg = client_error(e)
    assert (status, code_) == (400, "InvalidRequestContentException")
    assert msg.startswith("Could not parse request body into json")


def test_empty_payload_is_empty_object(lam, create_function):
    name = create_function({"app.py": ECHO})
    r = invoke(lam, name)  # no Payload at all
    assert r["StatusCode"] == 200
    assert r["json"]["event"] == {}
    r = invoke(lam, name, raw=b"")
    assert r["json"]["event"] == {}


def test_non_object_json_payloads_pass_through(lam, create_function):
    name = create_function({"app.py": ECHO})
    for value in ([1, "two", None], "just a string", 42, None, True):
        r = invoke(lam, name, raw=json.dumps(value).encode())
        assert r["StatusCode"] == 200 and "FunctionError" not in r
        assert r["json"]["event"] == value


def test_unknown_function_is_404(lam):
    name = "missing-" + uuid.uuid4().hex[:8]
    with pytest.raises(ClientError) as e:
        lam.invoke(FunctionName=name, Payload=b"{}")
    status, code_, msg = client_error(e)
    assert (status, code_) == (404, "ResourceNotFoundException")
    assert msg.startswith("Function not found: arn:aws:lambda:us-east-1:")
    assert msg.endswith(":function:" + name)


def test_qualifier_latest_and_unknown_version(lam, create_function):
    name = create_function({"app.py": code("""
        def handler(event, context):
            return {"arn": context.invoked_function_arn, "version": context.function_version}
    """)})
    arn = lam.get_function_configuration(FunctionName=name)["FunctionArn"]
    r = invoke(lam, name, {}, Qualifier="$LATEST")
    assert r["StatusCode"] == 200 and "FunctionError" not in r
    assert r["ExecutedVersion"] == "$LATEST"
    assert r["json"]["version"] == "$LATEST"
    # the invoked ARN is the one named in the invocation (qualified here)
    assert r["json"]["arn"] == arn + ":$LATEST"
    r = invoke(lam, name, {})
    assert r["json"]["arn"] == arn
    # qualifier in the name
    r = invoke(lam, name + ":$LATEST", {})
    assert r["StatusCode"] == 200 and r["ExecutedVersion"] == "$LATEST"
    with pytest.raises(ClientError) as e:
        lam.invoke(FunctionName=name, Qualifier="7", Payload=b"{}")
    status, code_, msg = client_error(e)
    assert (status, code_) == (404, "ResourceNotFoundException")
    assert msg == "Function not found: %s:7" % arn


def test_client_context_reaches_handler(lam, create_function):
    name = create_function({"app.py": code("""
        def handler(event, context):
            cc = context.client_context
            return {"custom": cc.custom, "env": cc.env,
                    "app_title": cc.client.app_title if cc.client else None}
    """)})
    ctx = {"custom": {"tenant": "acme", "n": 7}, "env": {"platform": "linux"},
           "client": {"app_title": "ignis-tests", "installation_id": "i-1"}}
    cc = base64.b64encode(json.dumps(ctx).encode()).decode()
    r = invoke(lam, name, {}, ClientContext=cc)
    assert r["StatusCode"] == 200 and "FunctionError" not in r, r["body"]
    assert r["json"] == {"custom": {"tenant": "acme", "n": 7}, "env": {"platform": "linux"},
                         "app_title": "ignis-tests"}


def test_invalid_client_context_is_400(lam, create_function):
    name = create_function({"app.py": ECHO})
    for bad in ("not base64!!", base64.b64encode(b"{not json").decode()):
        with pytest.raises(ClientError) as e:
            lam.invoke(FunctionName=name, Payload=b"{}", ClientContext=bad)
        status, code_, msg = client_error(e)
        assert (status, code_) == (400, "InvalidParameterValueException")
        assert msg == "Client context must be a valid Base64-encoded JSON object."


def test_function_name_forms(lam, create_function):
    name = create_function({"app.py": ECHO})
    arn = lam.get_function_configuration(FunctionName=name)["FunctionArn"]
    partial = arn.split(":", 4)[4]  # 123456789012:function:name
    for ref in (arn, partial, arn + ":$LATEST"):
        r = invoke(lam, ref, {"via": ref})
        assert r["StatusCode"] == 200 and "FunctionError" not in r, (ref, r["body"])
        assert r["json"]["event"] == {"via": ref}


def test_large_request_and_response_within_limits(lam, create_function):
    name = create_function({"app.py": code("""
        def handler(event, context):
            if "size" in event:
                return "y" * (event["size"] - 2)
            return len(event["blob"])
    """)})
    blob = "z" * (SYNC_PAYLOAD_MAX - 100)
    r = invoke(lam, name, {"blob": blob})
    assert r["StatusCode"] == 200 and "FunctionError" not in r, r["body"][:300]
    assert r["json"] == len(blob)
    r = invoke(lam, name, {"size": SYNC_PAYLOAD_MAX})
    assert r["StatusCode"] == 200 and "FunctionError" not in r, r["body"][:300]
    assert len(r["body"]) == SYNC_PAYLOAD_MAX
    assert r["body"] == b'"' + b"y" * (SYNC_PAYLOAD_MAX - 2) + b'"'


def test_many_event_invocations_all_run(server, lam, create_function):
    name = create_function({"app.py": code("""
        import time
        def handler(event, context):
            time.sleep(0.05)
            print("event ran", event["mark"], context.aws_request_id)
    """)})
    marks = [uuid.uuid4().hex for _ in range(12)]
    want = set()
    for m in marks:
        r = invoke(lam, name, {"mark": m}, InvocationType="Event")
        assert r["StatusCode"] == 202
        want.add("event ran %s %s" % (m, request_id(r)))
    assert len(want) == len(marks)
    deadline = time.time() + 20
    while time.time() < deadline and not want <= set(log_messages(server, name)):
        time.sleep(0.05)
    missing = want - set(log_messages(server, name))
    assert not missing, "%d of %d Event invocations never ran" % (len(missing), len(marks))


# --- timeouts and crashes -------------------------------------------------------------

def test_timeout(lam, create_function):
    name = create_function({"app.py": SLEEPER}, Timeout=1)
    warm = invoke(lam, name, {"sleep": 0})
    assert warm["StatusCode"] == 200 and "FunctionError" not in warm
    old_pid = warm["json"]["pid"]

    t0 = time.monotonic()
    r = invoke(lam, name, {"sleep": 3}, LogType="Tail")
    elapsed = time.monotonic() - t0
    assert r["StatusCode"] == 200
    assert r["FunctionError"] == "Unhandled"
    rid = request_id(r)
    assert r["json"]["errorType"] == "Sandbox.Timedout"
    assert r["json"]["errorMessage"] == "RequestId: %s Error: Task timed out after 1.00 seconds" % rid
    assert 0.9 <= elapsed < 2.5, "timeout answered after %.2fs" % elapsed
    log = tail(r)
    assert "sleeping 3" in log.split("\n"), log
    assert re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z %s Task timed out after 1\.00 seconds"
                     % re.escape(rid), log), log
    assert re.search(r"REPORT RequestId: %s\t.*Status: timeout" % re.escape(rid), log), log
    # the timed-out instance is gone, the next invoke gets a new one
    assert instance_gone(old_pid), "timed-out instance %s still running" % old_pid
    r = invoke(lam, name, {"sleep": 0})
    assert r["StatusCode"] == 200 and "FunctionError" not in r, r["body"]
    assert r["json"]["pid"] != old_pid


def test_exit_in_handler_is_runtime_exit_error(lam, create_function):
    name = create_function({"app.py": code("""
        import os
        def handler(event, context):
            if event.get("exit"):
                os._exit(3)
            return {"pid": os.environ["AWS_LAMBDA_LOG_STREAM_NAME"]}
    """)})
    first = invoke(lam, name, {})
    assert "FunctionError" not in first
    r = invoke(lam, name, {"exit": True})
    assert r["StatusCode"] == 200
    assert r["FunctionError"] == "Unhandled"
    assert r["json"]["errorType"] == "Runtime.ExitError"
    assert r["json"]["errorMessage"] == (
        "RequestId: %s Error: Runtime exited with error: exit status 3" % request_id(r))
    r = invoke(lam, name, {})
    assert r["StatusCode"] == 200 and "FunctionError" not in r, r["body"]
    assert r["json"]["pid"] != first["json"]["pid"]


def test_warm_state_persists(lam, create_function):
    name = create_function({"app.py": code("""
        import os
        COUNT = 0
        def handler(event, context):
            global COUNT
            COUNT += 1
            return {"count": COUNT, "pid": os.environ["AWS_LAMBDA_LOG_STREAM_NAME"]}
    """)})
    results = [invoke(lam, name, {})["json"] for _ in range(4)]
    assert [r["count"] for r in results] == [1, 2, 3, 4]
    assert len({r["pid"] for r in results}) == 1


def test_update_code_takes_effect_immediately(lam, create_function):
    v1 = code("""
        def handler(event, context):
            return "v1"
    """)
    v2 = code("""
        def handler(event, context):
            return "v2"
    """)
    name = create_function({"app.py": v1})
    assert invoke(lam, name, {})["json"] == "v1"
    assert invoke(lam, name, {})["json"] == "v1"  # warm instance with v1
    lam.update_function_code(FunctionName=name, ZipFile=make_zip({"app.py": v2}))
    wait_updated(lam, name)
    assert invoke(lam, name, {})["json"] == "v2"
    assert invoke(lam, name, {})["json"] == "v2"


def test_update_code_during_inflight_invocation(server, lam, create_function):
    src = code("""
        import time
        def handler(event, context):
            time.sleep(event.get("sleep", 0))
            return "%s"
    """)
    name = create_function({"app.py": src % "v1"})
    assert invoke(lam, name, {})["json"] == "v1"
    result = {}

    def slow():
        result["r"] = invoke(server.client("lambda"), name, {"sleep": 0.8})

    t = threading.Thread(target=slow)
    t.start()
    time.sleep(0.2)
    lam.update_function_code(FunctionName=name, ZipFile=make_zip({"app.py": src % "v2"}))
    wait_updated(lam, name)
    assert invoke(lam, name, {})["json"] == "v2"
    t.join(10)
    # the invocation that was running finishes normally, on the code it started with
    r = result["r"]
    assert r["StatusCode"] == 200 and "FunctionError" not in r, r["body"]
    assert r["json"] == "v1"
    assert invoke(lam, name, {})["json"] == "v2"


def test_update_configuration_environment_takes_effect(lam, create_function):
    name = create_function({"app.py": code("""
        import os
        def handler(event, context):
            return {"color": os.environ.get("COLOR"), "timeout": context.get_remaining_time_in_millis()}
    """)}, Environment={"Variables": {"COLOR": "red"}})
    assert invoke(lam, name, {})["json"]["color"] == "red"
    lam.update_function_configuration(FunctionName=name, Environment={"Variables": {"COLOR": "blue"}},
                                      Timeout=30)
    wait_updated(lam, name)
    r = invoke(lam, name, {})["json"]
    assert r["color"] == "blue"
    assert 3000 < r["timeout"] <= 30000


def test_concurrent_invokes(server, create_function):
    name = create_function({"app.py": SLEEPER})
    n, results, errors = 8, [None] * 8, []

    def worker(i):
        try:
            c = server.client("lambda")
            results[i] = invoke(c, name, {"sleep": 0.3})
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    elapsed = time.monotonic() - t0
    assert not errors, errors
    for r in results:
        assert r["StatusCode"] == 200 and "FunctionError" not in r, r["body"]
        assert r["json"]["slept"] == 0.3
    assert len({request_id(r) for r in results}) == n
    assert len({r["json"]["pid"] for r in results}) > 1, "invocations were serialized on one instance"
    assert elapsed < 0.6 * n * 0.3 + 0.5, "8 concurrent 0.3s invokes took %.2fs" % elapsed


def test_response_too_large(lam, create_function):
    name = create_function({"app.py": code("""
        def handler(event, context):
            if event.get("big"):
                return "x" * (7 * 1024 * 1024)
            return "small"
    """)})
    r = invoke(lam, name, {"big": True})
    assert r["StatusCode"] == 200
    assert r["FunctionError"] == "Unhandled"
    assert r["json"]["errorType"] == "Function.ResponseSizeTooLarge"
    assert r["json"]["errorMessage"] == (
        "Response payload size exceeded maximum allowed payload size (6291556 bytes).")
    r = invoke(lam, name, {})
    assert r["StatusCode"] == 200 and "FunctionError" not in r
    assert r["json"] == "small"


def test_aws_cli_invoke(server, create_function, tmp_path):
    name = create_function({"app.py": ECHO})
    out = tmp_path / "out.json"
    res = server.aws("lambda", "invoke", "--function-name", name,
                     "--payload", '{"from": "cli"}', "--cli-binary-format", "raw-in-base64-out",
                     str(out))
    assert res["StatusCode"] == 200
    assert res["ExecutedVersion"] == "$LATEST"
    assert "FunctionError" not in res
    assert json.loads(out.read_text())["event"] == {"from": "cli"}
    # --invocation-type Event / DryRun through the CLI
    res = server.aws("lambda", "invoke", "--function-name", name, "--invocation-type", "Event",
                     "--payload", '{"from": "cli"}', "--cli-binary-format", "raw-in-base64-out",
                     str(tmp_path / "event.out"))
    assert res["StatusCode"] == 202
    res = server.aws("lambda", "invoke", "--function-name", name, "--invocation-type", "DryRun",
                     str(tmp_path / "dry.out"))
    assert res["StatusCode"] == 204
    # unknown function: the CLI fails with the service's error
    p = server.aws("lambda", "invoke", "--function-name", name + "-missing", str(tmp_path / "x.out"),
                   check=False, parse=False)
    assert p.returncode != 0
    assert "ResourceNotFoundException" in p.stderr


def test_aws_cli_invoke_log_tail_and_error(server, create_function, tmp_path):
    name = create_function({"app.py": code("""
        def handler(event, context):
            print("cli says hi")
            raise RuntimeError("cli boom")
    """)})
    out = tmp_path / "out.json"
    res = server.aws("lambda", "invoke", "--function-name", name, "--log-type", "Tail", str(out))
    assert res["StatusCode"] == 200
    assert res["FunctionError"] == "Unhandled"
    log = base64.b64decode(res["LogResult"]).decode()
    assert "cli says hi" in log
    body = json.loads(out.read_text())
    assert body["errorType"] == "RuntimeError" and body["errorMessage"] == "cli boom"
