"""Concurrency as Lambda limits it: GetAccountSettings with real numbers,
Put/Get/DeleteFunctionConcurrency (and GetFunction's Concurrency), and
throttling: a synchronous invoke over a function's reservation or over the
account's unreserved pool is answered 429 TooManyRequestsException with
Lambda's Reason; asynchronous events wait for a slot instead of failing.
"""
import threading
import time

import boto3
import botocore.config
import pytest
from botocore.exceptions import ClientError

from conftest import ACCESS_KEY, REGION, ROLE, SECRET_KEY, Server, code, invoke, make_zip, unique

SLOW = code("""
    import time
    def handler(event, context):
        print("begin %s %.3f" % (event.get("tag", ""), time.time()))
        time.sleep(event.get("sleep", 0))
        print("end %s %.3f" % (event.get("tag", ""), time.time()))
        return {"slept": event.get("sleep", 0)}
""")


def error(e):
    r = e.value.response
    return r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Code"], r["Error"]["Message"]


def raw_client(server):
    cfg = botocore.config.Config(retries={"max_attempts": 0}, parameter_validation=False,
                                 read_timeout=60)
    return boto3.client("lambda", endpoint_url=server.url, region_name=REGION,
                        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
                        config=cfg)


def create(lam, name=None, src=SLOW, **kw):
    name = name or unique("conc")
    lam.create_function(FunctionName=name, Runtime="python3.12", Handler="app.handler", Role=ROLE,
                        Code={"ZipFile": make_zip({"app.py": src})}, Timeout=30, **kw)
    return name


def wait_for(predicate, timeout=15, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = predicate()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


def messages(server, name):
    logs = server.client("logs")
    try:
        pages = logs.get_paginator("filter_log_events").paginate(
            logGroupName="/aws/lambda/" + name)
        return [e["message"] for p in pages for e in p["events"]]
    except logs.exceptions.ResourceNotFoundException:
        return []


def in_background(fn, *args, **kw):
    out = {}

    def run():
        try:
            out["result"] = fn(*args, **kw)
        except Exception as e:  # noqa: BLE001 - the test looks at it
            out["error"] = e

    t = threading.Thread(target=run)
    t.start()
    return t, out


def settings_body(r):
    return {k: v for k, v in r.items() if k != "ResponseMetadata"}


# --- API ------------------------------------------------------------------------------

def test_account_settings_are_real_numbers(tmp_path):
    s = Server(str(tmp_path / "data"), env={"IGNIS_ACCOUNT_CONCURRENCY": "500"}).start()
    try:
        lam = s.client("lambda")
        empty = lam.get_account_settings()
        assert settings_body(empty) == {
            "AccountLimit": {"TotalCodeSize": 80530636800, "CodeSizeUnzipped": 262144000,
                             "CodeSizeZipped": 52428800, "ConcurrentExecutions": 500,
                             "UnreservedConcurrentExecutions": 500},
            "AccountUsage": {"TotalCodeSize": 0, "FunctionCount": 0}}
        a = create(lam)
        b = create(lam, src=SLOW + "\n# a bigger package\n" + "#" * 5000 + "\n")
        lam.publish_version(FunctionName=a)
        sizes = [lam.get_function_configuration(FunctionName=n)["CodeSize"] for n in (a, b)]
        lam.put_function_concurrency(FunctionName=a, ReservedConcurrentExecutions=150)
        got = lam.get_account_settings()
        assert got["AccountLimit"]["ConcurrentExecutions"] == 500
        assert got["AccountLimit"]["UnreservedConcurrentExecutions"] == 350
        # $LATEST of both and version 1 of a
        assert got["AccountUsage"] == {"TotalCodeSize": 2 * sizes[0] + sizes[1],
                                       "FunctionCount": 2}
        # a deleted function's reservation goes back to the pool
        lam.delete_function(FunctionName=a)
        got = lam.get_account_settings()
        assert got["AccountLimit"]["UnreservedConcurrentExecutions"] == 500
        assert got["AccountUsage"] == {"TotalCodeSize": sizes[1], "FunctionCount": 1}
        # through the aws CLI too
        cli = s.aws("lambda", "get-account-settings")
        assert cli["AccountLimit"]["ConcurrentExecutions"] == 500
        assert s.stop() == 0, s.read_log()[-5000:]
    finally:
        if s.proc:
            s.stop()


def test_function_concurrency_lifecycle(lam, server, create_function):
    name = create_function({"app.py": SLOW})
    assert settings_body(lam.get_function_concurrency(FunctionName=name)) == {}
    assert "Concurrency" not in lam.get_function(FunctionName=name)
    put = lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=7)
    assert put["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert settings_body(put) == {"ReservedConcurrentExecutions": 7}
    assert settings_body(lam.get_function_concurrency(FunctionName=name)) == {
        "ReservedConcurrentExecutions": 7}
    assert lam.get_function(FunctionName=name)["Concurrency"] == {
        "ReservedConcurrentExecutions": 7}
    unreserved = lam.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"]
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=2)
    assert lam.get_account_settings()["AccountLimit"][
        "UnreservedConcurrentExecutions"] == unreserved + 5
    # the function still runs under its reservation
    assert invoke(lam, name, {"sleep": 0})["json"] == {"slept": 0}
    deleted = lam.delete_function_concurrency(FunctionName=name)
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert settings_body(lam.get_function_concurrency(FunctionName=name)) == {}
    assert "Concurrency" not in lam.get_function(FunctionName=name)
    lam.delete_function_concurrency(FunctionName=name)  # nothing to delete: fine


def test_function_concurrency_survives_restart(tmp_path):
    s = Server(str(tmp_path / "data")).start()
    try:
        lam = s.client("lambda")
        name = create(lam)
        lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=40)
        s.kill9()
        s.start()
        lam = s.client("lambda")
        assert lam.get_function_concurrency(FunctionName=name)[
            "ReservedConcurrentExecutions"] == 40
        assert lam.get_account_settings()["AccountLimit"][
            "UnreservedConcurrentExecutions"] == 960
        assert s.stop() == 0, s.read_log()[-5000:]
    finally:
        if s.proc:
            s.stop()


def test_function_concurrency_errors(lam, server, create_function):
    name = create_function({"app.py": SLOW})
    raw = raw_client(server)
    arn = lam.get_function_configuration(FunctionName=name)["FunctionArn"]
    unreserved = lam.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"]

    def fails(status, code_, message, op="put_function_concurrency", **kw):
        with pytest.raises(ClientError) as e:
            getattr(raw, op)(**kw)
        assert error(e) == (status, code_, message)

    fails(400, "InvalidParameterValueException",
          "Specified ReservedConcurrentExecutions for function decreases account's "
          "UnreservedConcurrentExecution below its minimum value of [100].",
          FunctionName=name, ReservedConcurrentExecutions=unreserved - 99)
    fails(400, "ValidationException",
          "1 validation error detected: Value '-1' at 'reservedConcurrentExecutions' failed to "
          "satisfy constraint: Member must have value greater than or equal to 0",
          FunctionName=name, ReservedConcurrentExecutions=-1)
    fails(404, "ResourceNotFoundException", f"Function not found: {arn}-nope",
          FunctionName=name + "-nope", ReservedConcurrentExecutions=1)
    fails(404, "ResourceNotFoundException", f"Function not found: {arn}-nope",
          op="get_function_concurrency", FunctionName=name + "-nope")
    fails(404, "ResourceNotFoundException", f"Function not found: {arn}-nope",
          op="delete_function_concurrency", FunctionName=name + "-nope")
    # exactly what leaves 100 unreserved is allowed
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=unreserved - 100)
    assert lam.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"] == 100
    lam.delete_function_concurrency(FunctionName=name)


# --- throttling -----------------------------------------------------------------------

def test_reserved_concurrency_1_throttles_the_second_invoke(lam, server, create_function):
    name = create_function({"app.py": SLOW}, Timeout=30)
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=1)
    invoke(lam, name, {"sleep": 0})  # warm
    t, out = in_background(invoke, server.client("lambda"), name, {"sleep": 2, "tag": "first"})
    wait_for(lambda: any(m.startswith("begin first") for m in messages(server, name)),
             what="the first invoke to run")
    with pytest.raises(ClientError) as e:
        invoke(lam, name, {"sleep": 0, "tag": "second"})
    assert error(e) == (429, "TooManyRequestsException", "Rate Exceeded.")
    r = e.value.response
    assert r["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"
    assert r["Type"] == "User"
    assert r["ResponseMetadata"]["HTTPHeaders"]["x-amzn-errortype"] == "TooManyRequestsException"
    t.join()
    assert "error" not in out and out["result"]["json"] == {"slept": 2}
    # the slot is free again
    assert invoke(lam, name, {"sleep": 0})["StatusCode"] == 200
    assert not any(m.startswith("begin second") for m in messages(server, name))


def test_reserved_concurrency_0_throttles_everything(lam, server, create_function):
    name = create_function({"app.py": SLOW})
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
    for _ in range(3):
        with pytest.raises(ClientError) as e:
            invoke(lam, name, {"sleep": 0})
        assert error(e)[:2] == (429, "TooManyRequestsException")
        assert e.value.response["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"
    # the aws CLI sees the same error
    p = server.aws("lambda", "invoke", "--function-name", name, "/dev/null", check=False,
                   parse=False)
    assert p.returncode != 0 and "TooManyRequestsException" in p.stderr
    assert "Rate Exceeded." in p.stderr
    # an Event is still accepted (it goes to failure, see test_async)
    assert invoke(lam, name, {"sleep": 0}, InvocationType="Event")["StatusCode"] == 202
    # DryRun runs nothing and is not throttled
    assert invoke(lam, name, InvocationType="DryRun")["StatusCode"] == 204
    lam.delete_function_concurrency(FunctionName=name)
    assert invoke(lam, name, {"sleep": 0})["StatusCode"] == 200
    assert sum(m.startswith("begin ") for m in messages(server, name)) == 1


def test_account_limit_throttles_unreserved_functions(tmp_path):
    s = Server(str(tmp_path / "data"), env={"IGNIS_ACCOUNT_CONCURRENCY": "1"}).start()
    try:
        lam = s.client("lambda")
        a, b = create(lam), create(lam)
        # nothing can be reserved when the whole account is 1
        with pytest.raises(ClientError) as e:
            lam.put_function_concurrency(FunctionName=a, ReservedConcurrentExecutions=1)
        assert error(e) == (400, "InvalidParameterValueException",
                            "Specified ReservedConcurrentExecutions for function decreases "
                            "account's UnreservedConcurrentExecution below its minimum value "
                            "of [1].")
        t, out = in_background(invoke, s.client("lambda"), a, {"sleep": 2, "tag": "a"})
        wait_for(lambda: any(m.startswith("begin a") for m in messages(s, a)),
                 what="the first invoke to run")
        with pytest.raises(ClientError) as e:
            invoke(lam, b, {"sleep": 0})
        assert error(e) == (429, "TooManyRequestsException", "Rate Exceeded.")
        assert e.value.response["Reason"] == "ConcurrentInvocationLimitExceeded"
        t.join()
        assert out["result"]["StatusCode"] == 200
        assert invoke(lam, b, {"sleep": 0})["StatusCode"] == 200
        assert s.stop() == 0, s.read_log()[-5000:]
    finally:
        if s.proc:
            s.stop()


def test_async_events_wait_for_a_slot(lam, server, create_function):
    """Events over the reservation are not failed: they run one at a time."""
    name = create_function({"app.py": SLOW}, Timeout=30)
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=1)
    for i in range(4):
        assert invoke(lam, name, {"sleep": 0.3, "tag": "e%d" % i},
                      InvocationType="Event")["StatusCode"] == 202
    # a sync invoke meanwhile is throttled, as the events hold the one slot
    time.sleep(0.2)
    with pytest.raises(ClientError) as e:
        invoke(lam, name, {"sleep": 0})
    assert e.value.response["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"
    wait_for(lambda: sum(m.startswith("end e") for m in messages(server, name)) == 4,
             what="the four events")
    spans = {}
    for m in messages(server, name):
        kind, tag, ts = m.split() if m.startswith(("begin e", "end e")) else (None, None, None)
        if kind:
            spans.setdefault(tag, {})[kind] = float(ts)
    ordered = sorted(spans.values(), key=lambda s: s["begin"])
    assert len(ordered) == 4
    for prev, nxt in zip(ordered, ordered[1:]):
        assert nxt["begin"] >= prev["end"], "two events ran at once under a reservation of 1"


def test_delete_function_while_it_runs(lam, server):
    """The in-flight count holds the function: deleting it mid-invoke is safe,
    the invoke still answers, and its reservation returns to the pool."""
    name = create(lam)
    before = lam.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"]
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=3)
    lam.publish_version(FunctionName=name)
    t1, sync = in_background(invoke, server.client("lambda"), name, {"sleep": 1, "tag": "s"})
    t2, ver = in_background(invoke, server.client("lambda"), name, {"sleep": 1, "tag": "v"},
                            Qualifier="1")
    wait_for(lambda: sum(m.startswith("begin ") for m in messages(server, name)) == 2,
             what="both invokes to run")
    lam.delete_function(FunctionName=name)
    t1.join()
    t2.join()
    assert sync["result"]["json"] == {"slept": 1}
    assert ver["result"]["json"] == {"slept": 1} and ver["result"]["ExecutedVersion"] == "1"
    assert lam.get_account_settings()["AccountLimit"][
        "UnreservedConcurrentExecutions"] == before
