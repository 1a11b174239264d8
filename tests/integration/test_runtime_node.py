"""The Node.js runtime (nodejs20.x) as function code sees it: handler styles
(async, callback, ESM with top-level await, subdirectories), errors, init
errors, console format, context and environment.
"""
import base64
import json
import os
import re

from conftest import code, invoke, request_id, tail, unique

RUNTIME = "nodejs20.x"










def ok(r):
    assert r["StatusCode"] == 200, r
    assert "FunctionError" not in r, r["body"]
    return r["json"]


def node_fn(create_function, files, handler="index.handler", **kw):
    return create_function(files, runtime=RUNTIME, handler=handler, **kw)


def test_commonjs_async_handler(lam, create_function):
    name = node_fn(create_function, {"index.js": code("""
        let count = 0;
        exports.handler = async (event, context) => {
            count += 1;
            await new Promise((r) => setTimeout(r, 10));
            return { got: event, count, pid: process.env.AWS_LAMBDA_LOG_STREAM_NAME };
        };
    """)})
    a = ok(invoke(lam, name, {"x": 1}))
    b = ok(invoke(lam, name, {"x": 2}))
    assert a["got"] == {"x": 1} and b["got"] == {"x": 2}
    # warm state persists in the one process
    assert (a["count"], b["count"]) == (1, 2)
    assert a["pid"] == b["pid"]


def test_callback_handler(lam, create_function):
    name = node_fn(create_function, {"index.js": code("""
        exports.handler = function (event, context, callback) {
            if (event.fail) {
                callback(new Error("callback failure"));
                return;
            }
            setTimeout(() => callback(null, { doubled: event.n * 2 }), 5);
        };
    """)})
    assert ok(invoke(lam, name, {"n": 21})) == {"doubled": 42}
    r = invoke(lam, name, {"fail": True})
    assert r["FunctionError"] == "Unhandled"
    assert r["json"]["errorType"] == "Error"
    assert r["json"]["errorMessage"] == "callback failure"


def test_esm_mjs_top_level_await(lam, create_function):
    name = node_fn(create_function, {"index.mjs": code("""
        import { setTimeout as sleep } from "node:timers/promises";
        const config = await sleep(10, { loaded: "at init" });
        export const handler = async (event) => ({ config, event, esm: typeof require === "undefined" });
    """)})
    out = ok(invoke(lam, name, {"k": "v"}))
    assert out == {"config": {"loaded": "at init"}, "event": {"k": "v"}, "esm": True}


def test_handler_in_subdirectory(lam, create_function):
    name = node_fn(create_function, {
        "src/index.js": code("""
            const lib = require("../lib/util");
            exports.handler = async () => ({ where: __filename, msg: lib.msg() });
        """),
        "lib/util.js": "exports.msg = () => 'from lib';\n",
    }, handler="src/index.handler")
    out = ok(invoke(lam, name))
    assert out["msg"] == "from lib"
    assert out["where"].endswith("/src/index.js")


def test_thrown_error(lam, create_function):
    name = node_fn(create_function, {"index.js": code("""
        class ValidationError extends Error {
            constructor(msg) { super(msg); this.name = "ValidationError"; }
        }
        exports.handler = async (event) => {
            if (event.custom) throw new ValidationError("bad input");
            throw new TypeError("node boom");
        };
    """)})
    r = invoke(lam, name, LogType="Tail")
    assert r["StatusCode"] == 200
    assert r["FunctionError"] == "Unhandled"
    err = r["json"]
    assert err["errorType"] == "TypeError"
    assert err["errorMessage"] == "node boom"
    assert isinstance(err["trace"], list) and err["trace"]
    assert err["trace"][0] == "TypeError: node boom"
    assert any("index.js" in line for line in err["trace"][1:])
    rid = request_id(r)
    assert re.search(r"\t%s\tERROR\tInvoke Error \t" % re.escape(rid), tail(r)), tail(r)

    r = invoke(lam, name, {"custom": True})
    assert r["json"]["errorType"] == "ValidationError"
    assert r["json"]["errorMessage"] == "bad input"


def test_init_error_missing_module(lam, create_function):
    name = node_fn(create_function, {"other.js": "exports.handler = async () => 1;\n"})
    for _ in range(2):  # every invoke retries init; the daemon keeps serving
        r = invoke(lam, name)
        assert r["StatusCode"] == 200
        assert r["FunctionError"] == "Unhandled"
        assert r["json"]["errorType"] == "Runtime.ImportModuleError"
        assert "Cannot find module 'index'" in r["json"]["errorMessage"]


def test_init_error_missing_handler(lam, create_function):
    name = node_fn(create_function, {"index.js": "exports.other = async () => 1;\n"})
    r = invoke(lam, name)
    assert r["FunctionError"] == "Unhandled"
    assert r["json"]["errorType"] == "Runtime.HandlerNotFound"
    assert r["json"]["errorMessage"] == "index.handler is undefined or not exported"


def test_init_error_thrown_at_load(lam, create_function):
    name = node_fn(create_function, {"index.js": "throw new RangeError('init blew up');\n"})
    r = invoke(lam, name)
    assert r["FunctionError"] == "Unhandled"
    assert r["json"]["errorType"] == "RangeError"
    assert r["json"]["errorMessage"] == "init blew up"


def test_console_format_in_tail(lam, create_function):
    name = node_fn(create_function, {"index.js": code("""
        exports.handler = async () => {
            console.log("hello", "node", 42);
            console.warn("warned");
            console.error("errored");
            return "ok";
        };
    """)})
    r = invoke(lam, name, LogType="Tail")
    assert ok(r) == "ok"
    rid = re.escape(request_id(r))
    lines = tail(r).split("\n")
    ts = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
    for level, msg in (("INFO", "hello node 42"), ("WARN", "warned"), ("ERROR", "errored")):
        pat = r"%s\t%s\t%s\t%s" % (ts, rid, level, re.escape(msg))
        assert any(re.fullmatch(pat, l) for l in lines), (pat, lines)
    assert "START RequestId: %s Version: $LATEST" % request_id(r) in lines


def test_context_and_remaining_time(lam, create_function):
    name = unique("nodectx")
    node_fn(create_function, {"index.js": code("""
        exports.handler = async (event, context) => {
            const first = context.getRemainingTimeInMillis();
            await new Promise((r) => setTimeout(r, 50));
            const second = context.getRemainingTimeInMillis();
            return {
                first, second,
                functionName: context.functionName,
                functionVersion: context.functionVersion,
                invokedFunctionArn: context.invokedFunctionArn,
                memoryLimitInMB: context.memoryLimitInMB,
                awsRequestId: context.awsRequestId,
                logGroupName: context.logGroupName,
                logStreamName: context.logStreamName,
            };
        };
    """)}, name=name, Timeout=5)
    arn = lam.get_function_configuration(FunctionName=name)["FunctionArn"]
    r = invoke(lam, name)
    out = ok(r)
    assert 4000 < out["first"] <= 5000
    assert out["second"] <= out["first"] - 40
    assert out["functionName"] == name
    assert out["functionVersion"] == "$LATEST"
    assert out["invokedFunctionArn"] == arn
    assert str(out["memoryLimitInMB"]) == "128"
    assert out["awsRequestId"] == request_id(r)
    assert out["logGroupName"] == "/aws/lambda/" + name
    assert re.fullmatch(r"\d{4}/\d{2}/\d{2}/\[\$LATEST\][0-9a-f]{32}", out["logStreamName"])


def test_environment_variables(lam, create_function):
    name = unique("nodeenv")
    node_fn(create_function, {"index.js": code("""
        exports.handler = async () => ({ env: process.env, cwd: process.cwd() });
    """)}, name=name, Environment={"Variables": {"GREETING": "hi"}})
    out = ok(invoke(lam, name))
    env = out["env"]
    assert env["AWS_EXECUTION_ENV"] == "AWS_Lambda_nodejs20.x"
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == name
    assert env["AWS_LAMBDA_FUNCTION_VERSION"] == "$LATEST"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "128"
    assert env["AWS_LAMBDA_LOG_GROUP_NAME"] == "/aws/lambda/" + name
    assert re.fullmatch(r"\d{4}/\d{2}/\d{2}/\[\$LATEST\][0-9a-f]{32}", env["AWS_LAMBDA_LOG_STREAM_NAME"])
    assert env["_HANDLER"] == "index.handler"
    assert env["AWS_REGION"] == "us-east-1" and env["AWS_DEFAULT_REGION"] == "us-east-1"
    assert re.fullmatch(r"[\w.\-]+:\d+", env["AWS_LAMBDA_RUNTIME_API"])
    assert env["TZ"] == ":UTC" and env["LANG"] == "en_US.UTF-8"
    assert env["GREETING"] == "hi"
    assert os.path.realpath(out["cwd"]) == os.path.realpath(env["LAMBDA_TASK_ROOT"])
    assert env.get("_X_AMZN_TRACE_ID", "").startswith("Root=1-")
    assert not [k for k in env if k.startswith("IGNIS_")]


def test_process_exit_is_runtime_exit_error(lam, create_function):
    name = node_fn(create_function, {"index.js": code("""
        exports.handler = async (event) => {
            if (event.exit) process.exit(5);
            return process.env.AWS_LAMBDA_LOG_STREAM_NAME;
        };
    """)})
    pid = ok(invoke(lam, name))
    r = invoke(lam, name, {"exit": True})
    assert r["FunctionError"] == "Unhandled"
    assert r["json"]["errorType"] == "Runtime.ExitError"
    assert r["json"]["errorMessage"] == (
        "RequestId: %s Error: Runtime exited with error: exit status 5" % request_id(r))
    assert ok(invoke(lam, name)) != pid


def test_node_timeout(lam, create_function):
    name = node_fn(create_function, {"index.js": code("""
        exports.handler = async (event) => {
            await new Promise((r) => setTimeout(r, event.ms));
            return "done";
        };
    """)}, Timeout=1)
    r = invoke(lam, name, {"ms": 3000})
    assert r["FunctionError"] == "Unhandled"
    assert r["json"]["errorType"] == "Sandbox.Timedout"
    assert r["json"]["errorMessage"] == (
        "RequestId: %s Error: Task timed out after 1.00 seconds" % request_id(r))
    assert ok(invoke(lam, name, {"ms": 1})) == "done"


def test_callback_waits_for_empty_event_loop(lam, create_function):
    name = node_fn(create_function, {"index.js": code("""
        exports.handler = (event, context, callback) => {
            context.callbackWaitsForEmptyEventLoop = event.wait;
            setTimeout(() => {}, 300);
            callback(null, { wait: event.wait });
        };
    """)})
    import time
    assert ok(invoke(lam, name, {"wait": True})) == {"wait": True}  # cold start out of the way
    t0 = time.monotonic()
    assert ok(invoke(lam, name, {"wait": False})) == {"wait": False}
    fast = time.monotonic() - t0
    t0 = time.monotonic()
    assert ok(invoke(lam, name, {"wait": True})) == {"wait": True}
    slow = time.monotonic() - t0
    # by default the response is sent once the event loop is empty
    assert fast < 0.25, fast
    assert slow >= 0.29, slow


def test_result_values(lam, create_function):
    name = node_fn(create_function, {"index.js": code("""
        exports.handler = async (event) => {
            if (event.k === "undef") return undefined;
            if (event.k === "str") return "text";
            if (event.k === "throwstr") throw "plain string";
            return [1, "two", null];
        };
    """)})
    assert invoke(lam, name, {"k": "undef"})["body"] == b"null"
    assert ok(invoke(lam, name, {"k": "str"})) == "text"
    assert ok(invoke(lam, name, {"k": "list"})) == [1, "two", None]
    r = invoke(lam, name, {"k": "throwstr"})
    assert r["FunctionError"] == "Unhandled"
    assert r["json"] == {"errorType": "string", "errorMessage": "plain string", "trace": []}


def test_unhandled_rejection(lam, create_function):
    name = node_fn(create_function, {"index.js": code("""
        exports.handler = async (event) => {
            if (event.reject) {
                Promise.reject(new Error("floating"));
                await new Promise((r) => setTimeout(r, 50));
            }
            return "fine";
        };
    """)})
    r = invoke(lam, name, {"reject": True})
    assert r["FunctionError"] == "Unhandled"
    assert r["json"]["errorType"] == "Runtime.UnhandledPromiseRejection"
    assert r["json"]["errorMessage"] == "Error: floating"
    # the runtime restarts; the next invoke works
    assert ok(invoke(lam, name, {})) == "fine"
