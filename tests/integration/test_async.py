"""Asynchronous invocation (InvocationType Event) as Lambda does it: the event
invoke config API (Put/Update/Get/Delete/ListFunctionEventInvokeConfigs),
retries with backoff and the same request id, MaximumRetryAttempts,
MaximumEventAgeInSeconds, OnSuccess/OnFailure destinations with Lambda's
invocation record, and durability: events accepted before a kill -9 are all
delivered after the restart. Error names and messages are Lambda's (as
recorded against AWS in LocalStack's parity snapshots), except where Ignis
refuses what it does not have (SQS, SNS, EventBridge, S3 destinations).

The daemon here retries after IGNIS_ASYNC_RETRY_BASE_MS=300 (Lambda: a minute).
"""
import datetime
import json
import os
import re
import sqlite3
import threading
import time
import uuid

import boto3
import botocore.config
import pytest
from botocore.exceptions import ClientError

from conftest import (ACCESS_KEY, REGION, ROLE, SECRET_KEY, Server, code, invoke, make_zip,
                      request_id, unique)

BASE_MS = 300

RECORDER = code("""
    import json
    def handler(event, context):
        print("RECORD " + json.dumps(event))
""")

# fails its first event["fail"] attempts of a request (counted per request id)
FLAKY = code("""
    counts = {}
    def handler(event, context):
        rid = context.aws_request_id
        counts[rid] = counts.get(rid, 0) + 1
        print("attempt %s %d" % (rid, counts[rid]))
        if counts[rid] <= event.get("fail", 0):
            raise RuntimeError("failing attempt %d" % counts[rid])
        return {"ok": counts[rid], "echo": event}
""")

CRASHER = code("""
    import os, sys
    def handler(event, context):
        print("crashing %s" % context.aws_request_id)
        sys.stdout.flush()
        os._exit(3)
""")


@pytest.fixture(scope="module")
def aserver(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("ignis-async") / "data")
    s = Server(d, env={"IGNIS_ASYNC_RETRY_BASE_MS": str(BASE_MS)}).start()
    yield s
    if s.proc:
        assert s.stop() == 0, s.read_log()


@pytest.fixture
def alam(aserver):
    return aserver.client("lambda")


@pytest.fixture
def make_fn(alam):
    made = []

    def make(src, name=None, client=None, **params):
        name = name or unique("async")
        c = client or alam
        c.create_function(FunctionName=name, Runtime="python3.12", Handler="app.handler",
                          Role=ROLE, Code={"ZipFile": make_zip({"app.py": src})}, **params)
        made.append((c, name))
        return name

    yield make
    for c, name in made:
        try:
            c.delete_function(FunctionName=name)
        except ClientError:
            pass


def raw_client(server):
    """A client that sends what it is given (botocore checks ranges itself)."""
    cfg = botocore.config.Config(retries={"max_attempts": 0}, parameter_validation=False)
    return boto3.client("lambda", endpoint_url=server.url, region_name=REGION,
                        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
                        config=cfg)


def error(e):
    r = e.value.response
    return r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Code"], r["Error"]["Message"]


def log_events(server, name):
    """(timestamp ms, message) of every log event of function `name`."""
    logs = server.client("logs")
    try:
        pages = logs.get_paginator("filter_log_events").paginate(
            logGroupName="/aws/lambda/" + name)
        return [(e["timestamp"], e["message"]) for p in pages for e in p["events"]]
    except logs.exceptions.ResourceNotFoundException:
        return []


def messages(server, name):
    return [m for _, m in log_events(server, name)]


def wait_for(predicate, timeout=15, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = predicate()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


def records(server, name):
    return [json.loads(m[len("RECORD "):]) for m in messages(server, name)
            if m.startswith("RECORD ")]


def event(lam, name, payload, **kw):
    r = invoke(lam, name, payload, InvocationType="Event", **kw)
    assert r["StatusCode"] == 202 and r["body"] == b""
    return request_id(r)


def fn_arn(lam, name):
    return lam.get_function_configuration(FunctionName=name)["FunctionArn"]


# --- event invoke config API ----------------------------------------------------------

def test_event_invoke_config_lifecycle(alam, make_fn):
    name = make_fn(RECORDER)
    dest = make_fn(RECORDER)
    arn, dest_arn = fn_arn(alam, name), fn_arn(alam, dest)

    put = alam.put_function_event_invoke_config(FunctionName=name, MaximumRetryAttempts=0)
    assert put["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert isinstance(put["LastModified"], datetime.datetime)
    age = datetime.datetime.now(datetime.timezone.utc) - put["LastModified"]
    assert abs(age.total_seconds()) < 60
    body = {k: v for k, v in put.items() if k not in ("ResponseMetadata", "LastModified")}
    assert body == {"FunctionArn": arn + ":$LATEST", "MaximumRetryAttempts": 0,
                    "DestinationConfig": {"OnSuccess": {}, "OnFailure": {}}}

    # put replaces: what is not sent is gone
    put = alam.put_function_event_invoke_config(FunctionName=name, MaximumEventAgeInSeconds=60)
    assert "MaximumRetryAttempts" not in put and put["MaximumEventAgeInSeconds"] == 60
    # update merges
    up = alam.update_function_event_invoke_config(
        FunctionName=name, MaximumRetryAttempts=1,
        DestinationConfig={"OnFailure": {"Destination": dest_arn}})
    assert (up["MaximumRetryAttempts"], up["MaximumEventAgeInSeconds"]) == (1, 60)
    assert up["DestinationConfig"] == {"OnSuccess": {}, "OnFailure": {"Destination": dest_arn}}
    got = alam.get_function_event_invoke_config(FunctionName=name)
    assert {k: v for k, v in got.items() if k != "ResponseMetadata"} == \
        {k: v for k, v in up.items() if k != "ResponseMetadata"}
    assert alam.get_function_event_invoke_config(FunctionName=name, Qualifier="$LATEST")[
        "FunctionArn"] == arn + ":$LATEST"

    # per version and alias; the list pages in order
    alam.publish_version(FunctionName=name)
    alam.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
    with pytest.raises(ClientError) as e:
        alam.get_function_event_invoke_config(FunctionName=name, Qualifier="1")
    assert error(e) == (404, "ResourceNotFoundException",
                        f"The function {arn}:1 doesn't have an EventInvokeConfig")
    v1 = alam.put_function_event_invoke_config(FunctionName=name, Qualifier="1",
                                               MaximumEventAgeInSeconds=120)
    assert v1["FunctionArn"] == arn + ":1"
    live = alam.put_function_event_invoke_config(FunctionName=f"{name}:live",
                                                 MaximumRetryAttempts=2)
    assert live["FunctionArn"] == arn + ":live"
    listed = alam.list_function_event_invoke_configs(FunctionName=name)
    assert [c["FunctionArn"] for c in listed["FunctionEventInvokeConfigs"]] == [
        arn + ":$LATEST", arn + ":1", arn + ":live"]
    assert "NextMarker" not in listed
    first = alam.list_function_event_invoke_configs(FunctionName=name, MaxItems=1)
    assert len(first["FunctionEventInvokeConfigs"]) == 1 and "NextMarker" in first
    pages = alam.get_paginator("list_function_event_invoke_configs").paginate(
        FunctionName=name, PaginationConfig={"PageSize": 1})
    assert [c["FunctionArn"] for p in pages for c in p["FunctionEventInvokeConfigs"]] == [
        arn + ":$LATEST", arn + ":1", arn + ":live"]

    # deleting the alias deletes its config; delete answers 204
    alam.delete_alias(FunctionName=name, Name="live")
    deleted = alam.delete_function_event_invoke_config(FunctionName=name)
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert [c["FunctionArn"] for c in alam.list_function_event_invoke_configs(
        FunctionName=name)["FunctionEventInvokeConfigs"]] == [arn + ":1"]
    with pytest.raises(ClientError) as e:
        alam.delete_function_event_invoke_config(FunctionName=name)
    assert error(e) == (404, "ResourceNotFoundException",
                        f"The function {arn}:$LATEST doesn't have an EventInvokeConfig")


def test_event_invoke_configs_survive_restart(tmp_path):
    s = Server(str(tmp_path / "data")).start()
    try:
        lam = s.client("lambda")
        name = unique("persist")
        lam.create_function(FunctionName=name, Runtime="python3.12", Handler="app.handler",
                            Role=ROLE, Code={"ZipFile": make_zip({"app.py": RECORDER})})
        lam.put_function_event_invoke_config(FunctionName=name, MaximumRetryAttempts=1,
                                             MaximumEventAgeInSeconds=600)
        before = lam.get_function_event_invoke_config(FunctionName=name)
        s.kill9()
        s.start()
        after = s.client("lambda").get_function_event_invoke_config(FunctionName=name)
        for k in ("FunctionArn", "MaximumRetryAttempts", "MaximumEventAgeInSeconds",
                  "DestinationConfig", "LastModified"):
            assert after[k] == before[k], k
        assert s.stop() == 0, s.read_log()[-5000:]
    finally:
        if s.proc:
            s.stop()


def test_event_invoke_config_errors(alam, aserver, make_fn):
    name = make_fn(RECORDER)
    other = make_fn(RECORDER)
    arn, other_arn = fn_arn(alam, name), fn_arn(alam, other)
    raw = raw_client(aserver)
    missing_arn = arn.rsplit(":", 1)[0] + ":doesnotexist"

    def fails(status, code_, message, op="put_function_event_invoke_config", **kw):
        args = dict(FunctionName=name)
        args.update(kw)
        with pytest.raises(ClientError) as e:
            getattr(raw, op)(**args)
        assert error(e) == (status, code_, message)

    fails(400, "InvalidParameterValueException",
          "You must specify at least one of error handling or destination setting.")
    fails(400, "InvalidParameterValueException",
          "You must specify at least one of error handling or destination setting.",
          FunctionName="doesnotexist")
    fails(404, "ResourceNotFoundException", "The function doesn't exist.",
          FunctionName="doesnotexist", MaximumRetryAttempts=1)
    fails(404, "ResourceNotFoundException", "The function doesn't exist.",
          Qualifier="nosuchalias", MaximumRetryAttempts=1)
    fails(400, "ValidationException",
          "1 validation error detected: Value '3' at 'maximumRetryAttempts' failed to satisfy "
          "constraint: Member must have value less than or equal to 2", MaximumRetryAttempts=3)
    fails(400, "ValidationException",
          "1 validation error detected: Value '59' at 'maximumEventAgeInSeconds' failed to "
          "satisfy constraint: Member must have value greater than or equal to 60",
          MaximumEventAgeInSeconds=59)
    fails(400, "ValidationException",
          "1 validation error detected: Value '21601' at 'maximumEventAgeInSeconds' failed to "
          "satisfy constraint: Member must have value less than or equal to 21600",
          MaximumEventAgeInSeconds=21601)
    fails(400, "InvalidParameterValueException",
          f"The destination ARN {missing_arn} is invalid.",
          DestinationConfig={"OnSuccess": {"Destination": missing_arn}})
    fails(400, "InvalidParameterValueException",
          "You can't specify the function as a destination for itself.",
          DestinationConfig={"OnSuccess": {"Destination": arn}})
    bad = arn.replace(":lambda:", ":_-/!lambda:")
    fails(400, "ValidationException",
          f"1 validation error detected: Value '{bad}' at 'destinationConfig.onFailure."
          "destination' failed to satisfy constraint: Member must satisfy regular expression "
          "pattern: ^$|arn:(aws[a-zA-Z0-9-]*):([a-zA-Z0-9\\-])+:([a-z]{2}((-gov)|(-iso(b?)))?-"
          "[a-z]+-\\d{1})?:(\\d{12})?:(.*)",
          DestinationConfig={"OnFailure": {"Destination": bad}})
    iam = other_arn.replace(":lambda:", ":iam:")
    fails(400, "InvalidParameterValueException",
          f"The provided destination config DestinationConfig(onSuccess=OnSuccess(destination="
          f"{iam}), onFailure=null) is invalid.",
          DestinationConfig={"OnSuccess": {"Destination": iam}})
    # what Ignis does not have is refused, not accepted and ignored
    for arn_, what in (("arn:aws:sqs:us-east-1:000000000000:q", "SQS queues"),
                       ("arn:aws:sns:us-east-1:000000000000:t", "SNS topics"),
                       ("arn:aws:events:us-east-1:000000000000:event-bus/default",
                        "EventBridge event buses"),
                       ("arn:aws:s3:::bucket", "S3 buckets")):
        fails(400, "InvalidParameterValueException",
              f"The destination ARN {arn_} is not supported by Ignis: it has no {what} yet. "
              "Use a Lambda function ARN as the destination.",
              DestinationConfig={"OnFailure": {"Destination": arn_}})
    fails(400, "InvalidParameterValueException",
          "The derived qualifier from the function name does not match the specified qualifier.",
          FunctionName=f"{name}:$LATEST", Qualifier="1", MaximumRetryAttempts=1)
    # update, get and delete of what does not exist
    fails(404, "ResourceNotFoundException",
          f"The function {arn}:$LATEST doesn't have an EventInvokeConfig",
          op="update_function_event_invoke_config", MaximumRetryAttempts=1)
    fails(404, "ResourceNotFoundException", "The function doesn't exist.",
          op="update_function_event_invoke_config", FunctionName="doesnotexist",
          MaximumRetryAttempts=1)
    fails(404, "ResourceNotFoundException",
          f"The function {missing_arn}:$LATEST doesn't have an EventInvokeConfig",
          op="get_function_event_invoke_config", FunctionName="doesnotexist")
    fails(404, "ResourceNotFoundException", "The function doesn't exist.",
          op="list_function_event_invoke_configs", FunctionName="doesnotexist")
    # nothing was stored by the failures
    assert raw.list_function_event_invoke_configs(FunctionName=name)[
        "FunctionEventInvokeConfigs"] == []
    # an empty destination is no destination
    ok = raw.put_function_event_invoke_config(
        FunctionName=name, DestinationConfig={"OnSuccess": {"Destination": other_arn},
                                              "OnFailure": {}})
    assert ok["DestinationConfig"] == {"OnSuccess": {"Destination": other_arn}, "OnFailure": {}}


def test_dead_letter_queue_is_refused(alam, make_fn, aserver):
    with pytest.raises(ClientError) as e:
        make_fn(RECORDER, DeadLetterConfig={"TargetArn": "arn:aws:sqs:us-east-1:000000000000:q"})
    assert error(e) == (400, "InvalidParameterValueException",
                        "DeadLetterConfig is not supported by Ignis yet.")
    name = make_fn(RECORDER)
    # an empty TargetArn is how clients say "none": accepted
    alam.update_function_configuration(FunctionName=name, DeadLetterConfig={"TargetArn": ""})
    assert "DeadLetterConfig" not in alam.get_function_configuration(FunctionName=name)


# --- delivery -------------------------------------------------------------------------

def test_event_runs_once_with_its_request_id(alam, aserver, make_fn):
    name = make_fn(FLAKY)
    rid = event(alam, name, {"fail": 0})
    wait_for(lambda: f"attempt {rid} 1" in messages(aserver, name), what="the event")
    time.sleep(3 * BASE_MS / 1000)
    msgs = messages(aserver, name)
    assert [m for m in msgs if m.startswith("attempt ")] == [f"attempt {rid} 1"]
    assert [m for m in msgs if m.startswith("START ")] == [
        f"START RequestId: {rid} Version: $LATEST"]


def test_retries_with_backoff_and_the_same_request_id(alam, aserver, make_fn):
    name = make_fn(FLAKY)
    rid = event(alam, name, {"fail": 2})
    wait_for(lambda: f"attempt {rid} 3" in messages(aserver, name), what="the third attempt")
    time.sleep(3 * BASE_MS / 1000)
    evs = log_events(aserver, name)
    attempts = [(t, m) for t, m in evs if m.startswith("attempt ")]
    assert [m for _, m in attempts] == [f"attempt {rid} {i}" for i in (1, 2, 3)]
    starts = [m for _, m in evs if m.startswith("START ")]
    assert starts == [f"START RequestId: {rid} Version: $LATEST"] * 3
    # Lambda's backoff, scaled: base before the 2nd attempt, twice that before the 3rd
    gap1, gap2 = attempts[1][0] - attempts[0][0], attempts[2][0] - attempts[1][0]
    assert BASE_MS <= gap1 < BASE_MS + 1500, gap1
    assert 2 * BASE_MS <= gap2 < 2 * BASE_MS + 1500, gap2


def test_maximum_retry_attempts_0_and_loud_drop(alam, aserver, make_fn):
    name = make_fn(FLAKY)
    alam.put_function_event_invoke_config(FunctionName=name, MaximumRetryAttempts=0)
    rid = event(alam, name, {"fail": 5, "mark": "zero-retries"})
    wait_for(lambda: f"attempt {rid} 1" in messages(aserver, name), what="the attempt")
    # no destination: the drop is logged loudly by the daemon
    wait_for(lambda: re.search(f"asynchronous invocation {rid} of {name} DROPPED: "
                               "RetriesExhausted after 1 attempt", aserver.read_log()),
             what="the drop in the daemon's log")
    time.sleep(4 * BASE_MS / 1000)
    assert [m for m in messages(aserver, name) if m.startswith("attempt ")] == [
        f"attempt {rid} 1"]
    assert "zero-retries" in aserver.read_log()


def test_default_is_two_retries(alam, aserver, make_fn):
    name = make_fn(FLAKY)
    rid = event(alam, name, {"fail": 5})
    wait_for(lambda: re.search(f"asynchronous invocation {rid} of {name} DROPPED: "
                               "RetriesExhausted after 3 attempt", aserver.read_log()),
             what="the drop after three attempts")
    assert [m for m in messages(aserver, name) if m.startswith("attempt ")] == [
        f"attempt {rid} {i}" for i in (1, 2, 3)]


def test_events_of_a_deleted_function_are_dropped_loudly(alam, aserver):
    name = unique("gone")
    alam.create_function(FunctionName=name, Runtime="python3.12", Handler="app.handler",
                         Role=ROLE, Code={"ZipFile": make_zip({"app.py": FLAKY})})
    rid = event(alam, name, {"fail": 5})
    wait_for(lambda: f"attempt {rid} 1" in messages(aserver, name), what="the first attempt")
    alam.delete_function(FunctionName=name)  # its retry is due after BASE_MS
    wait_for(lambda: re.search(f"asynchronous invocation {rid} of {name} DROPPED after 1 "
                               "attempt\\(s\\): its function no longer exists",
                               aserver.read_log()),
             what="the drop in the daemon's log")


TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def test_on_success_destination_gets_the_record(alam, aserver, make_fn):
    dest = make_fn(RECORDER)
    name = make_fn(FLAKY)
    alam.put_function_event_invoke_config(
        FunctionName=name, DestinationConfig={"OnSuccess": {"Destination": fn_arn(alam, dest)}})
    rid = event(alam, name, {"fail": 1, "n": 7})
    recs = wait_for(lambda: records(aserver, dest), what="the destination's record")
    assert len(recs) == 1
    rec = recs[0]
    assert list(rec) == ["version", "timestamp", "requestContext", "requestPayload",
                         "responseContext", "responsePayload"]
    assert rec["version"] == "1.0" and TS.match(rec["timestamp"]), rec["timestamp"]
    assert rec["requestContext"] == {"requestId": rid,
                                     "functionArn": fn_arn(alam, name) + ":$LATEST",
                                     "condition": "Success", "approximateInvokeCount": 2}
    assert rec["requestPayload"] == {"fail": 1, "n": 7}
    assert rec["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST"}
    assert rec["responsePayload"] == {"ok": 2, "echo": {"fail": 1, "n": 7}}
    # the destination ran asynchronously, under a request id of its own
    starts = [m for m in messages(aserver, dest) if m.startswith("START ")]
    assert len(starts) == 1 and rid not in starts[0]


def test_on_failure_destination_after_crashes(alam, aserver, make_fn):
    dest = make_fn(RECORDER)
    name = make_fn(CRASHER)
    alam.publish_version(FunctionName=name)
    alam.create_alias(FunctionName=name, Name="prod", FunctionVersion="1")
    alam.put_function_event_invoke_config(
        FunctionName=name, Qualifier="prod", MaximumRetryAttempts=1,
        DestinationConfig={"OnFailure": {"Destination": fn_arn(alam, dest)}})
    rid = event(alam, name, {"k": "v"}, Qualifier="prod")
    recs = wait_for(lambda: records(aserver, dest), what="the destination's record")
    rec = recs[0]
    assert rec["requestContext"] == {"requestId": rid,
                                     "functionArn": fn_arn(alam, name) + ":prod",
                                     "condition": "RetriesExhausted",
                                     "approximateInvokeCount": 2}
    assert rec["requestPayload"] == {"k": "v"}
    assert rec["responseContext"] == {"statusCode": 200, "executedVersion": "1",
                                      "functionError": "Unhandled"}
    assert rec["responsePayload"]["errorType"] == "Runtime.ExitError"
    assert rec["responsePayload"]["errorMessage"] == (
        f"RequestId: {rid} Error: Runtime exited with error: exit status 3")
    assert [m for m in messages(aserver, name) if m.startswith("crashing")] == [
        f"crashing {rid}"] * 2
    # a destination is not a drop
    assert f"asynchronous invocation {rid} of {name} DROPPED" not in aserver.read_log()


def test_reserved_concurrency_0_sends_events_to_on_failure(alam, aserver, make_fn):
    """Lambda: with reserved concurrency 0, new events go to the on-failure
    destination without retries."""
    dest = make_fn(RECORDER)
    name = make_fn(FLAKY)
    alam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
    alam.put_function_event_invoke_config(
        FunctionName=name, DestinationConfig={"OnFailure": {"Destination": fn_arn(alam, dest)}})
    rid = event(alam, name, {"z": 0})
    rec = wait_for(lambda: records(aserver, dest), what="the record")[0]
    assert rec["requestContext"]["requestId"] == rid
    assert rec["requestContext"]["condition"] == "RetriesExhausted"
    assert rec["requestContext"]["approximateInvokeCount"] == 0
    assert rec["requestPayload"] == {"z": 0}
    assert "responseContext" not in rec
    assert messages(aserver, name) == []


def test_event_age_exceeded(tmp_path):
    """An event older than MaximumEventAgeInSeconds goes to OnFailure with
    condition EventAgeExceeded. Its age is made by editing the stored event
    while the daemon is down (a real wait would take a minute)."""
    s = Server(str(tmp_path / "data"), env={"IGNIS_ASYNC_RETRY_BASE_MS": "600000"}).start()
    try:
        lam = s.client("lambda")
        dest, name = unique("dest"), unique("old")
        for n, src in ((dest, RECORDER), (name, FLAKY)):
            lam.create_function(FunctionName=n, Runtime="python3.12", Handler="app.handler",
                                Role=ROLE, Code={"ZipFile": make_zip({"app.py": src})})
        lam.put_function_event_invoke_config(
            FunctionName=name, MaximumEventAgeInSeconds=60,
            DestinationConfig={"OnFailure": {"Destination": fn_arn(lam, dest)}})
        rid = event(lam, name, {"fail": 9})
        # REPORT is logged once the attempt's outcome is in (and stored)
        wait_for(lambda: any(m.startswith(f"REPORT RequestId: {rid}") for m in messages(s, name)),
                 what="the first attempt's end")
        assert s.stop() == 0  # its retry is due in 10 minutes
        db = sqlite3.connect(os.path.join(s.data_dir, "ignis.db"))
        row = db.execute("SELECT attempts, received_ms, due_ms FROM async_events WHERE id = ?",
                         (rid,)).fetchone()
        assert row is not None and row[0] == 1 and row[2] - row[1] >= 590000, row
        now = int(time.time() * 1000)
        db.execute("UPDATE async_events SET received_ms = ?, due_ms = ? WHERE id = ?",
                   (now - 61000, now, rid))
        db.commit()
        db.close()
        s.start()
        rec = wait_for(lambda: records(s, dest), what="the record")[0]
        assert rec["requestContext"] == {"requestId": rid,
                                         "functionArn": fn_arn(lam, name) + ":$LATEST",
                                         "condition": "EventAgeExceeded",
                                         "approximateInvokeCount": 1}
        assert rec["requestPayload"] == {"fail": 9}
        assert [m for m in messages(s, name) if m.startswith("attempt ")] == [
            f"attempt {rid} 1"]
        wait_for(lambda: not sqlite3.connect(os.path.join(s.data_dir, "ignis.db")).execute(
            "SELECT 1 FROM async_events WHERE id = ?", (rid,)).fetchone(),
            what="the event's deletion")
        assert s.stop() == 0, s.read_log()[-5000:]
    finally:
        if s.proc:
            s.stop()


# --- durability ------------------------------------------------------------------------

WORKER = code("""
    import time
    def handler(event, context):
        time.sleep(0.02)
        print("done %d %s" % (event["i"], context.aws_request_id))
""")


def test_kill_9_loses_no_event(tmp_path):
    """1,000 events, kill -9 while they are being processed, restart: every
    event ran at least once, under the request id its 202 carried."""
    s = Server(str(tmp_path / "data")).start()
    try:
        lam = s.client("lambda")
        name = unique("crash")
        lam.create_function(FunctionName=name, Runtime="python3.12", Handler="app.handler",
                            Role=ROLE, Code={"ZipFile": make_zip({"app.py": WORKER})})
        lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=4)
        total = 1000
        ids = [None] * total
        errors = []

        def send(part):
            c = s.client("lambda")
            try:
                for i in range(part, total, 4):
                    ids[i] = event(c, name, {"i": i})
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(e)

        threads = [threading.Thread(target=send, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors[:3]
        done = lambda: {int(m.split()[1]) for m in messages(s, name) if m.startswith("done ")}
        before = len(done())
        s.kill9()
        assert before < total, "every event ran before the kill: nothing was tested"
        s.start()
        want = set(range(total))
        wait_for(lambda: done() >= want, timeout=60, what="every event after the restart")
        # each ran under its own request id, the one its 202 carried
        seen = {}
        for m in messages(s, name):
            if m.startswith("done "):
                _, i, rid = m.split()
                seen.setdefault(int(i), set()).add(rid)
        assert all(seen[i] == {ids[i]} for i in range(total))
        stored = re.search(r"(\d+) asynchronous invocation\(s\) stored", s.read_log())
        assert stored and 0 < int(stored.group(1)) <= total, "the restart found no events"
        # and the queue is empty once they are done
        wait_for(lambda: sqlite3.connect(os.path.join(s.data_dir, "ignis.db")).execute(
            "SELECT COUNT(*) FROM async_events").fetchone()[0] == 0, what="an empty queue")
        assert s.stop() == 0, s.read_log()[-5000:]
    finally:
        if s.proc:
            s.stop()
