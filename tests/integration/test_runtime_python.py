"""The Python runtime (python3.11) as function code sees it: environment,
context object, handler lookup, init errors, logging, installed packages.
"""
import base64
import datetime
import json
import os
import re

from conftest import code, invoke, request_id, tail, unique










def ok(r):
    assert r["StatusCode"] == 200, r
    assert "FunctionError" not in r, r["body"]
    return r["json"]


ENV_DUMP = code("""
    import os
    def handler(event, context):
        return {"env": dict(os.environ), "cwd": os.getcwd()}
""")


def test_lambda_environment_variables(lam, create_function):
    name = unique("pyenv")
    create_function({"app.py": ENV_DUMP}, name=name, MemorySize=256,
                    Environment={"Variables": {"MY_VAR": "hello", "OTHER": "a=b c"}})
    out = ok(invoke(lam, name))
    env, cwd = out["env"], out["cwd"]
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == name
    assert env["AWS_LAMBDA_FUNCTION_VERSION"] == "$LATEST"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
    assert re.fullmatch(r"127\.0\.0\.1:\d+|localhost:\d+|[\d.]+:\d+", env["AWS_LAMBDA_RUNTIME_API"])
    assert env["_HANDLER"] == "app.handler"
    assert env["AWS_REGION"] == "us-east-1"
    assert env["AWS_DEFAULT_REGION"] == "us-east-1"
    assert env["AWS_EXECUTION_ENV"] == "AWS_Lambda_python3.11"
    assert env["AWS_LAMBDA_LOG_GROUP_NAME"] == "/aws/lambda/" + name
    m = re.fullmatch(r"(\d{4}/\d{2}/\d{2})/\[\$LATEST\][0-9a-f]{32}", env["AWS_LAMBDA_LOG_STREAM_NAME"])
    assert m, env["AWS_LAMBDA_LOG_STREAM_NAME"]
    today = datetime.datetime.now(datetime.timezone.utc)
    assert m.group(1) in {(today - datetime.timedelta(days=d)).strftime("%Y/%m/%d") for d in (0, 1)}
    assert env["TZ"] == ":UTC"
    assert env["LANG"] == "en_US.UTF-8"
    assert env["MY_VAR"] == "hello"
    assert env["OTHER"] == "a=b c"
    task_root = env["LAMBDA_TASK_ROOT"]
    assert task_root == "/var/task"         # as on AWS: the sandbox mounts the code there
    assert os.path.realpath(cwd) == task_root
    assert "/usr/bin" in env["PATH"].split(":")
    # the trace header is exposed to the function as _X_AMZN_TRACE_ID
    assert env.get("_X_AMZN_TRACE_ID", "").startswith("Root=1-"), env.get("_X_AMZN_TRACE_ID")
    # nothing of the daemon's own environment leaks into functions
    leaked = [k for k in env if k.startswith("IGNIS_")]
    assert not leaked, leaked
    assert "ignis-test-secret-key" not in json.dumps(env)


def test_context_attributes(lam, create_function):
    name = unique("pyctx")
    create_function({"app.py": code("""
        import time
        def handler(event, context):
            first = context.get_remaining_time_in_millis()
            time.sleep(0.05)
            second = context.get_remaining_time_in_millis()
            return {
                "function_name": context.function_name,
                "function_version": context.function_version,
                "invoked_function_arn": context.invoked_function_arn,
                "memory_limit_in_mb": context.memory_limit_in_mb,
                "aws_request_id": context.aws_request_id,
                "log_group_name": context.log_group_name,
                "log_stream_name": context.log_stream_name,
                "first": first, "second": second,
                "identity": [context.identity.cognito_identity_id,
                             context.identity.cognito_identity_pool_id],
                "client_context": context.client_context,
            }
    """)}, name=name, Timeout=7)
    arn = lam.get_function_configuration(FunctionName=name)["FunctionArn"]
    r = invoke(lam, name)
    out = ok(r)
    assert out["function_name"] == name
    assert out["function_version"] == "$LATEST"
    assert out["invoked_function_arn"] == arn
    assert out["memory_limit_in_mb"] == "128"  # awslambdaric hands the env string through
    assert out["aws_request_id"] == request_id(r)
    assert out["log_group_name"] == "/aws/lambda/" + name
    assert re.fullmatch(r"\d{4}/\d{2}/\d{2}/\[\$LATEST\][0-9a-f]{32}", out["log_stream_name"])
    assert 6000 < out["first"] <= 7000
    assert out["second"] < out["first"]
    assert out["first"] - out["second"] >= 40
    assert out["identity"] == [None, None]
    assert out["client_context"] is None
    # the stream name is the one of this instance: same on the next (warm) invoke
    assert ok(invoke(lam, name))["log_stream_name"] == out["log_stream_name"]


def test_handler_in_subdirectory(lam, create_function):
    name = create_function({
        "src/app.py": code("""
            from helper import VALUE
            def handler(event, context):
                return {"value": VALUE, "file": __file__}
        """),
        "helper.py": "VALUE = 'from task root'\n",
    }, handler="src/app.handler")
    out = ok(invoke(lam, name))
    assert out["value"] == "from task root"
    assert out["file"].endswith("/src/app.py")


def test_handler_in_package(lam, create_function):
    name = create_function({
        "pkg/__init__.py": "",
        "pkg/mod.py": "def handler(event, context):\n    return 'pkg ok'\n",
    }, handler="pkg.mod.handler")
    assert ok(invoke(lam, name)) == "pkg ok"


def init_error(lam, name):
    r = invoke(lam, name)
    assert r["StatusCode"] == 200
    assert r["FunctionError"] == "Unhandled", r["body"]
    return r["json"]


def test_init_error_missing_module(lam, create_function):
    name = create_function({"app.py": "def handler(e, c):\n    return 1\n"}, handler="nope.handler")
    err = init_error(lam, name)
    assert err["errorType"] == "Runtime.ImportModuleError"
    assert err["errorMessage"] == "Unable to import module 'nope': No module named 'nope'"
    # every invoke retries init and reports it again; the daemon keeps serving
    err = init_error(lam, name)
    assert err["errorType"] == "Runtime.ImportModuleError"


def test_init_error_import_inside_module(lam, create_function):
    name = create_function({"app.py": "import not_installed_xyz\ndef handler(e, c):\n    return 1\n"})
    err = init_error(lam, name)
    assert err["errorType"] == "Runtime.ImportModuleError"
    assert err["errorMessage"] == "Unable to import module 'app': No module named 'not_installed_xyz'"


def test_init_error_missing_handler(lam, create_function):
    name = create_function({"app.py": "def other(e, c):\n    return 1\n"})
    err = init_error(lam, name)
    assert err["errorType"] == "Runtime.HandlerNotFound"
    assert err["errorMessage"] == "Handler 'handler' missing on module 'app'"


def test_init_error_syntax_error(lam, create_function):
    name = create_function({"app.py": "def handler(e, c)\n    return 1\n"})
    err = init_error(lam, name)
    assert err["errorType"] == "Runtime.UserCodeSyntaxError"
    assert err["errorMessage"].startswith("Syntax error in module 'app': ")
    assert "line 1" in err["errorMessage"]


def test_init_error_exception_at_import(lam, create_function):
    name = create_function({"app.py": "raise KeyError('cfg')\ndef handler(e, c):\n    return 1\n"})
    err = init_error(lam, name)
    assert err["errorType"] == "KeyError"
    assert err["errorMessage"] == "'cfg'"


def test_logging_format_in_tail(lam, create_function):
    name = create_function({"app.py": code("""
        import logging
        logger = logging.getLogger()
        def handler(event, context):
            logger.info("not shown at the default level")
            logger.warning("careful %s", "now")
            logging.getLogger("child").error("child error")
            print("plain print")
            return "ok"
    """)})
    r = invoke(lam, name, LogType="Tail")
    assert ok(r) == "ok"
    rid = request_id(r)
    lines = tail(r).split("\n")
    ts = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
    assert any(re.fullmatch(r"\[WARNING\]\t%s\t%s\tcareful now" % (ts, re.escape(rid)), l) for l in lines), lines
    assert any(re.fullmatch(r"\[ERROR\]\t%s\t%s\tchild error" % (ts, re.escape(rid)), l) for l in lines), lines
    assert "plain print" in lines
    assert not any("not shown" in l for l in lines)


def test_unhandled_error_logged(lam, create_function):
    name = create_function({"app.py": code("""
        class CustomError(Exception):
            pass
        def handler(event, context):
            raise CustomError("custom failure")
    """)})
    r = invoke(lam, name, LogType="Tail")
    assert r["FunctionError"] == "Unhandled"
    assert r["json"]["errorType"] == "CustomError"
    assert r["json"]["errorMessage"] == "custom failure"
    log = tail(r)
    assert "[ERROR] CustomError: custom failure" in log
    assert "Traceback (most recent call last):" in log


def test_debian_packages_importable(lam, create_function):
    # imported at init, which runs at full speed (in the handler, a 128 MB
    # function's 10% of a CPU makes importing boto3 take seconds, as on Lambda)
    name = create_function({"app.py": code("""
        import boto3, botocore
        def handler(event, context):
            return {"boto3": boto3.__version__, "botocore": botocore.__version__}
    """)})
    import boto3
    out = ok(invoke(lam, name))
    assert out["boto3"] == boto3.__version__


def test_bundled_dependency_wins(lam, create_function):
    """Code shipped in the zip is imported before anything installed on the host."""
    name = create_function({
        "app.py": "import boto3\ndef handler(e, c):\n    return boto3.MARK\n",
        "boto3.py": "MARK = 'bundled boto3'\n",
    })
    assert ok(invoke(lam, name)) == "bundled boto3"


def test_return_types(lam, create_function):
    name = create_function({"app.py": code("""
        import decimal
        def handler(event, context):
            kind = event["kind"]
            if kind == "none":
                return None
            if kind == "str":
                return "text"
            if kind == "list":
                return [1, 2.5, "x", None, True]
            if kind == "decimal":
                return {"d": decimal.Decimal("1.10")}
            if kind == "unserializable":
                return {"s": {1, 2}}
    """)})
    assert invoke(lam, name, {"kind": "none"})["body"] == b"null"
    assert ok(invoke(lam, name, {"kind": "str"})) == "text"
    assert ok(invoke(lam, name, {"kind": "list"})) == [1, 2.5, "x", None, True]
    assert invoke(lam, name, {"kind": "decimal"})["body"].replace(b" ", b"") == b'{"d":1.10}'
    r = invoke(lam, name, {"kind": "unserializable"})
    assert r["FunctionError"] == "Unhandled"
    assert r["json"]["errorType"] == "Runtime.MarshalError"
    assert r["json"]["errorMessage"].startswith("Unable to marshal response: ")


def test_trace_id_changes_per_invoke(lam, create_function):
    name = create_function({"app.py": code("""
        import os
        def handler(event, context):
            return os.environ.get("_X_AMZN_TRACE_ID")
    """)})
    a, b = ok(invoke(lam, name)), ok(invoke(lam, name))
    assert a and b and a != b
    assert re.match(r"Root=1-[0-9a-f]{8}-[0-9a-f]{24}", a)


def test_init_time_not_counted_against_timeout(lam, create_function):
    """Init (module import) has its own 10 s budget; the function's Timeout
    covers the handler only."""
    name = create_function({"app.py": code("""
        import time
        time.sleep(1.2)
        def handler(event, context):
            return context.get_remaining_time_in_millis()
    """)}, Timeout=1)
    r = invoke(lam, name)
    remaining = ok(r)
    assert 500 < remaining <= 1000


def test_event_is_json_decoded(lam, create_function):
    name = create_function({"app.py": code("""
        def handler(event, context):
            return {"type": type(event).__name__, "event": event}
    """)})
    for value, typ in (({"a": [1, 2]}, "dict"), ([1, 2], "list"), ("s", "str"), (3.5, "float"), (None, "NoneType")):
        r = lam.invoke(FunctionName=name, Payload=json.dumps(value).encode())
        out = json.loads(r["Payload"].read())
        assert out == {"type": typ, "event": value}
    r = lam.invoke(FunctionName=name, Payload='{"u": "h\u00e9llo \u2713"}'.encode())
    assert json.loads(r["Payload"].read())["event"] == {"u": "h\u00e9llo \u2713"}
