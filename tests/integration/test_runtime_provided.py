"""Custom runtimes (provided.al2023 / provided.al2): the zip's executable
`bootstrap` talks to the Runtime API itself, here as AWS's tutorial does it
(a bash script with curl) or as a Python script with a shebang.
"""
import base64
import json
import os
import re
import time
import uuid

import pytest

from conftest import code, instance_gone, instance_pids, invoke, request_id


X = {"bootstrap": 0o755}








def ok(r):
    assert r["StatusCode"] == 200, r
    assert "FunctionError" not in r, r["body"]
    return r["json"]


def provided_fn(create_function, bootstrap, runtime="provided.al2023", modes=X, extra=None, **kw):
    files = {"bootstrap": bootstrap}
    files.update(extra or {})
    # A shell bootstrap starts several processes per invoke (curl, grep, sed...): at 128 MB's
    # 10% of a CPU that takes most of a second on a slow machine, as it would on Lambda. These
    # tests are about the Runtime API, not the CPU share: give them a whole vCPU.
    kw.setdefault("MemorySize", 1769)
    return create_function(files, runtime=runtime, handler="function.handler", modes=modes, **kw)


# The loop of AWS's custom runtime tutorial, echoing what it received.
SHELL_PRELUDE = code(r"""
    #!/bin/bash
    set -euo pipefail
    API="http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime"
    hdr() { grep -i "^$1:" "$HEADERS" | head -n1 | cut -d: -f2- | tr -d '\r' | sed 's/^ *//'; }
""")

ECHO_BOOTSTRAP = SHELL_PRELUDE + code(r"""
    COUNT=0
    while true; do
      HEADERS="$(mktemp)"
      EVENT_DATA=$(curl -sS -LD "$HEADERS" "$API/invocation/next")
      REQUEST_ID=$(hdr Lambda-Runtime-Aws-Request-Id)
      COUNT=$((COUNT + 1))
      echo "bootstrap handling $REQUEST_ID"
      RESPONSE=$(printf '{"event":%s,"request_id":"%s","deadline":"%s","arn":"%s","trace":"%s","count":%d,"handler":"%s","cwd":"%s","task_root":"%s","exec_env":"%s","pid":%d}' \
        "$EVENT_DATA" "$REQUEST_ID" "$(hdr Lambda-Runtime-Deadline-Ms)" \
        "$(hdr Lambda-Runtime-Invoked-Function-Arn)" "$(hdr Lambda-Runtime-Trace-Id)" \
        "$COUNT" "$_HANDLER" "$PWD" "$LAMBDA_TASK_ROOT" "${AWS_EXECUTION_ENV:-}" "$$")
      curl -sS -o /dev/null -X POST "$API/invocation/$REQUEST_ID/response" --data-binary "$RESPONSE"
      rm -f "$HEADERS"
    done
""")


@pytest.mark.parametrize("runtime", ["provided.al2023", "provided.al2"])
def test_shell_bootstrap_loop(lam, create_function, runtime):
    name = provided_fn(create_function, ECHO_BOOTSTRAP, runtime=runtime, Timeout=9)
    arn = lam.get_function_configuration(FunctionName=name)["FunctionArn"]
    before = int(time.time() * 1000)
    r = invoke(lam, name, {"hello": "custom"}, LogType="Tail")
    after = int(time.time() * 1000)
    out = ok(r)
    rid = request_id(r)
    assert out["event"] == {"hello": "custom"}
    assert out["request_id"] == rid
    assert out["arn"] == arn
    deadline = int(out["deadline"])
    assert before + 8000 <= deadline <= after + 9000 + 50, (before, deadline, after)
    assert re.fullmatch(r"Root=1-[0-9a-f]{8}-[0-9a-f]{24}(;.*)?", out["trace"]), out["trace"]
    assert out["handler"] == "function.handler"
    assert os.path.realpath(out["cwd"]) == os.path.realpath(out["task_root"])
    assert out["exec_env"] == ""  # custom runtimes have no AWS_EXECUTION_ENV
    assert out["count"] == 1
    log = base64.b64decode(r["LogResult"]).decode()
    assert "bootstrap handling %s" % rid in log.split("\n")
    assert "START RequestId: %s Version: $LATEST" % rid in log
    # the same process serves the next invocation
    out2 = ok(invoke(lam, name, {"second": True}))
    assert out2["count"] == 2 and out2["pid"] == out["pid"]
    assert out2["event"] == {"second": True}
    assert out2["request_id"] != rid
    assert out2["trace"] != out["trace"]


def test_invoked_arn_header_with_qualifier(lam, create_function):
    name = provided_fn(create_function, ECHO_BOOTSTRAP)
    arn = lam.get_function_configuration(FunctionName=name)["FunctionArn"]
    out = ok(invoke(lam, name, {}, Qualifier="$LATEST"))
    assert out["arn"] == arn + ":$LATEST"


PY_BOOTSTRAP = code(r"""
    #!/usr/bin/python3
    import json, os, sys, urllib.request
    API = "http://%s/2018-06-01/runtime" % os.environ["AWS_LAMBDA_RUNTIME_API"]
    while True:
        with urllib.request.urlopen(API + "/invocation/next") as resp:
            rid = resp.headers["Lambda-Runtime-Aws-Request-Id"]
            cc = resp.headers.get("Lambda-Runtime-Client-Context")
            event = json.loads(resp.read())
        if event.get("mode") == "text":
            body = ("SUCCESS " + str(event.get("n"))).encode()
        else:
            body = json.dumps({"client_context": json.loads(cc) if cc else None}).encode()
        req = urllib.request.Request(API + "/invocation/%s/response" % rid, data=body, method="POST")
        urllib.request.urlopen(req).read()
""")


def test_python_shebang_bootstrap_non_json_response(lam, create_function):
    name = provided_fn(create_function, PY_BOOTSTRAP)
    r = invoke(lam, name, {"mode": "text", "n": 7})
    assert r["StatusCode"] == 200 and "FunctionError" not in r
    # whatever the runtime posts is the invoke's payload, byte for byte
    assert r["body"] == b"SUCCESS 7"


def test_client_context_header(lam, create_function):
    name = provided_fn(create_function, PY_BOOTSTRAP)
    ctx = {"custom": {"user": "u1"}, "env": {"locale": "en"}}
    cc = base64.b64encode(json.dumps(ctx).encode()).decode()
    out = ok(invoke(lam, name, {}, ClientContext=cc))
    assert out["client_context"] == ctx
    assert ok(invoke(lam, name, {}))["client_context"] is None


def test_invocation_error(lam, create_function):
    name = provided_fn(create_function, SHELL_PRELUDE + code(r"""
        while true; do
          HEADERS="$(mktemp)"
          EVENT_DATA=$(curl -sS -LD "$HEADERS" "$API/invocation/next")
          REQUEST_ID=$(hdr Lambda-Runtime-Aws-Request-Id)
          if [ "$EVENT_DATA" = '{"fail": true}' ]; then
            ERROR='{"errorMessage":"Error parsing event data.","errorType":"InvalidEventDataException","extra":[1,2]}'
            curl -sS -o /dev/null -X POST "$API/invocation/$REQUEST_ID/error" \
              -H "Lambda-Runtime-Function-Error-Type: InvalidEventDataException" --data-binary "$ERROR"
          else
            curl -sS -o /dev/null -X POST "$API/invocation/$REQUEST_ID/response" --data-binary '"fine"'
          fi
          rm -f "$HEADERS"
        done
    """))
    r = invoke(lam, name, {"fail": True})
    assert r["StatusCode"] == 200
    assert r["FunctionError"] == "Unhandled"
    assert r["json"] == {"errorMessage": "Error parsing event data.",
                         "errorType": "InvalidEventDataException", "extra": [1, 2]}
    # the runtime goes on serving
    assert ok(invoke(lam, name, {"fail": False})) == "fine"


def test_init_error(lam, create_function):
    name = provided_fn(create_function, SHELL_PRELUDE + code(r"""
        ERROR='{"errorMessage":"Failed to load function.","errorType":"InvalidFunctionException"}'
        curl -sS -o /dev/null -X POST "$API/init/error" \
          -H "Lambda-Runtime-Function-Error-Type: InvalidFunctionException" --data-binary "$ERROR"
        exit 1
    """))
    for _ in range(2):
        r = invoke(lam, name, {})
        assert r["StatusCode"] == 200
        assert r["FunctionError"] == "Unhandled"
        assert r["json"]["errorType"] == "InvalidFunctionException"
        assert r["json"]["errorMessage"] == "Failed to load function."


def test_response_for_wrong_request_id_is_400(lam, create_function):
    name = provided_fn(create_function, SHELL_PRELUDE + code(r"""
        PREV=0
        while true; do
          HEADERS="$(mktemp)"
          EVENT_DATA=$(curl -sS -LD "$HEADERS" "$API/invocation/next")
          REQUEST_ID=$(hdr Lambda-Runtime-Aws-Request-Id)
          WRONG=$(curl -s -o /dev/null -w '%{http_code}' -X POST \
            "$API/invocation/00000000-0000-0000-0000-000000000000/response" --data-binary '"wrong"')
          WRONG_ERR=$(curl -s -o /dev/null -w '%{http_code}' -X POST \
            "$API/invocation/not-a-request-id/error" --data-binary '{"errorMessage":"x","errorType":"y"}')
          PREV=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$API/invocation/$REQUEST_ID/response" \
            --data-binary "{\"wrong\":$WRONG,\"wrong_error\":$WRONG_ERR,\"prev\":$PREV}")
          rm -f "$HEADERS"
        done
    """))
    out = ok(invoke(lam, name, {}))
    assert out["wrong"] == 400
    assert out["wrong_error"] == 400
    out = ok(invoke(lam, name, {}))
    assert out["prev"] == 202  # the right id was accepted


def test_response_over_limit_is_413_to_runtime(lam, create_function):
    name = provided_fn(create_function, SHELL_PRELUDE + code(r"""
        PREV=0
        BIG="$(mktemp)"
        head -c 7000000 /dev/zero | tr '\0' 'x' | sed 's/^/"/; s/$/"/' > "$BIG"
        while true; do
          HEADERS="$(mktemp)"
          EVENT_DATA=$(curl -sS -LD "$HEADERS" "$API/invocation/next")
          REQUEST_ID=$(hdr Lambda-Runtime-Aws-Request-Id)
          if [ "$EVENT_DATA" = '{"big": true}' ]; then
            PREV=$(curl -s -o /dev/null -w '%{http_code}' -X POST \
              "$API/invocation/$REQUEST_ID/response" --data-binary "@$BIG")
          else
            curl -sS -o /dev/null -X POST "$API/invocation/$REQUEST_ID/response" \
              --data-binary "{\"prev\":$PREV}"
          fi
          rm -f "$HEADERS"
        done
    """))
    r = invoke(lam, name, {"big": True})
    assert r["StatusCode"] == 200
    assert r["FunctionError"] == "Unhandled"
    assert r["json"]["errorType"] == "Function.ResponseSizeTooLarge"
    assert r["json"]["errorMessage"] == (
        "Response payload size exceeded maximum allowed payload size (6291556 bytes).")
    out = ok(invoke(lam, name, {}))
    assert out["prev"] == 413


def test_bootstrap_exits_immediately(lam, create_function):
    name = provided_fn(create_function, "#!/bin/sh\necho starting up\nexit 2\n")
    for _ in range(2):
        r = invoke(lam, name, {}, LogType="Tail")
        assert r["StatusCode"] == 200
        assert r["FunctionError"] == "Unhandled"
        assert r["json"]["errorType"] == "Runtime.ExitError"
        assert r["json"]["errorMessage"] == (
            "RequestId: %s Error: Runtime exited with error: exit status 2" % request_id(r))


def test_missing_bootstrap(lam, create_function):
    name = create_function({"function.sh": "echo hi\n"}, runtime="provided.al2023", handler="function.handler")
    r = invoke(lam, name, {})
    assert r["StatusCode"] == 200
    assert r["FunctionError"] == "Unhandled"
    assert r["json"]["errorType"] == "Runtime.InvalidEntrypoint"
    assert r["json"]["errorMessage"].startswith("RequestId: %s Error: Couldn't find valid bootstrap(s): ["
                                                % request_id(r))


def test_non_executable_bootstrap(lam, create_function):
    bad = provided_fn(create_function, ECHO_BOOTSTRAP, modes={"bootstrap": 0o644})
    good = provided_fn(create_function, ECHO_BOOTSTRAP)
    for _ in range(2):
        r = invoke(lam, bad, {})
        assert r["StatusCode"] == 200
        assert r["FunctionError"] == "Unhandled"
        assert r["json"]["errorType"] == "Runtime.InvalidEntrypoint"
        # AWS: "RequestId: <id> Error: fork/exec /var/task/bootstrap: permission denied"
        assert re.fullmatch(r"RequestId: %s Error: fork/exec /\S*bootstrap: permission denied"
                            % re.escape(request_id(r)), r["json"]["errorMessage"]), r["json"]
    # the daemon keeps serving
    assert ok(invoke(lam, good, {"still": "alive"}))["event"] == {"still": "alive"}


def test_bootstrap_exec_format_error(lam, create_function):
    """An executable bootstrap the kernel cannot run (no shebang, not ELF)."""
    name = provided_fn(create_function, "this is not a program\n")
    r = invoke(lam, name, {})
    assert r["StatusCode"] == 200
    assert r["FunctionError"] == "Unhandled"
    assert r["json"]["errorType"] == "Runtime.InvalidEntrypoint"
    # AWS: "RequestId: <id> Error: fork/exec /var/task/bootstrap: exec format error"
    assert re.fullmatch(r"RequestId: %s Error: fork/exec /\S*bootstrap: exec format error"
                        % re.escape(request_id(r)), r["json"]["errorMessage"]), r["json"]


def test_timeout_kills_bootstrap_and_children(lam, create_function):
    """A timed-out instance is killed whole: the bootstrap and what it started."""
    name = provided_fn(create_function, SHELL_PRELUDE + code(r"""
        while true; do
          HEADERS="$(mktemp)"
          EVENT_DATA=$(curl -sS -LD "$HEADERS" "$API/invocation/next")
          REQUEST_ID=$(hdr Lambda-Runtime-Aws-Request-Id)
          case "$EVENT_DATA" in
            *hang*) sleep 30 & wait ;;
          esac
          curl -sS -o /dev/null -X POST "$API/invocation/$REQUEST_ID/response" \
            --data-binary "\"$AWS_LAMBDA_LOG_STREAM_NAME\""
          rm -f "$HEADERS"
        done
    """), Timeout=1)
    instance = ok(invoke(lam, name, {}))
    assert len(instance_pids(instance)) >= 1
    t0 = time.monotonic()
    r = invoke(lam, name, {"hang": True})
    elapsed = time.monotonic() - t0
    assert r["FunctionError"] == "Unhandled"
    assert r["json"]["errorType"] == "Sandbox.Timedout"
    assert r["json"]["errorMessage"] == (
        "RequestId: %s Error: Task timed out after 1.00 seconds" % request_id(r))
    assert elapsed < 2.5
    assert instance_gone(instance), "processes of the timed-out instance survived"
    # a new instance answers the next invoke
    assert ok(invoke(lam, name, {})) != instance
