"""CloudWatch Logs: the log groups and streams Ignis writes for functions,
read back through the JSON 1.1 API with boto3 and the real aws CLI v2
(describe-log-groups/streams, get-log-events and its f/ b/ tokens,
filter-log-events with patterns and pagination, `aws logs tail` and
`tail --follow`), group create/delete, and the error answers.
"""
import json
import os
import re
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid

import boto3
import botocore.auth
import botocore.awsrequest
import botocore.config
import botocore.credentials
import pytest
from botocore.exceptions import ClientError

from conftest import ACCESS_KEY, AWS, REGION, SECRET_KEY

ACCOUNT = "000000000000"

PRINTER = """
import time
def handler(event, context):
    time.sleep(event.get("sleep", 0))
    for line in event.get("lines", []):
        print(line, flush=True)
    return {"ok": True}
"""

STREAM_RE = re.compile(r"^\d{4}/\d{2}/\d{2}/\[\$LATEST\][0-9a-f]{32}$")


@pytest.fixture
def logs(server):
    return server.client("logs")


@pytest.fixture
def raw_logs(server):
    """A client that skips botocore's own parameter validation, to reach the
    server's."""
    cfg = botocore.config.Config(retries={"max_attempts": 0}, parameter_validation=False)
    return boto3.client("logs", endpoint_url=server.url, region_name=REGION,
                        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
                        config=cfg)


def client_error(excinfo):
    err = excinfo.value.response
    return (err["ResponseMetadata"]["HTTPStatusCode"], err["Error"]["Code"],
            err["Error"].get("Message", ""))


def invoke(lam, name, lines, **event):
    event["lines"] = lines
    r = lam.invoke(FunctionName=name, Payload=json.dumps(event).encode())
    assert r["StatusCode"] == 200
    assert json.loads(r["Payload"].read()) == {"ok": True}
    return r["ResponseMetadata"]["RequestId"]


def group_of(name):
    return "/aws/lambda/" + name


def all_events(logs, group, **kw):
    out, token = [], None
    while True:
        args = dict(logGroupName=group, **kw)
        if token:
            args["nextToken"] = token
        r = logs.filter_log_events(**args)
        out += r["events"]
        token = r.get("nextToken")
        if not token:
            return out


def wait_reports(logs, group, request_ids, timeout=10):
    """Polls until the REPORT line of every request is readable."""
    deadline = time.time() + timeout
    while True:
        try:
            events = all_events(logs, group)
        except ClientError:
            events = []
        reports = {e["message"].split()[2] for e in events if e["message"].startswith("REPORT ")}
        if all(rid in reports for rid in request_ids):
            return events
        if time.time() > deadline:
            raise AssertionError("no REPORT for %s in %s" % (request_ids, events))
        time.sleep(0.05)


def expected_lines(rid, lines):
    return ["START RequestId: %s Version: $LATEST" % rid, *lines, "END RequestId: %s" % rid,
            "REPORT RequestId: %s" % rid]


def same_lines(got, want):
    """REPORT lines carry durations: compare their head only."""
    assert len(got) == len(want), (got, want)
    for g, w in zip(got, want):
        if w.startswith("REPORT "):
            assert g.startswith(w + "\tDuration: "), (g, w)
        else:
            assert g == w


BATCH1 = ["alpha one", "beta ERROR two", "gamma three"]
BATCH2 = ["delta WARN four", "epsilon five"]


@pytest.fixture
def logged(lam, logs, create_function):
    """A function invoked twice (same warm instance, so one stream)."""
    name = create_function({"app.py": PRINTER})
    r1 = invoke(lam, name, BATCH1)
    r2 = invoke(lam, name, BATCH2)
    group = group_of(name)
    wait_reports(logs, group, [r1, r2])
    streams = logs.describe_log_streams(logGroupName=group)["logStreams"]
    assert len(streams) == 1
    return {"name": name, "group": group, "rids": [r1, r2],
            "stream": streams[0]["logStreamName"],
            "lines": expected_lines(r1, BATCH1) + expected_lines(r2, BATCH2)}


# --- groups and streams ------------------------------------------------------

def test_group_and_stream_are_described(server, logs, logged):
    group = logged["group"]
    r = logs.describe_log_groups(logGroupNamePrefix=group)
    assert [g["logGroupName"] for g in r["logGroups"]] == [group]
    g = r["logGroups"][0]
    assert g["arn"] == "arn:aws:logs:%s:%s:log-group:%s:*" % (REGION, ACCOUNT, group)
    assert g["metricFilterCount"] == 0
    assert g["storedBytes"] > 0
    assert abs(g["creationTime"] - time.time() * 1000) < 120000

    r = logs.describe_log_streams(logGroupName=group)
    [s] = r["logStreams"]
    assert STREAM_RE.match(s["logStreamName"]), s
    assert s["arn"] == "arn:aws:logs:%s:%s:log-group:%s:log-stream:%s" % (
        REGION, ACCOUNT, group, s["logStreamName"])
    assert s["creationTime"] <= s["firstEventTimestamp"] <= s["lastEventTimestamp"]
    assert s["lastIngestionTime"] >= s["lastEventTimestamp"] - 1000
    assert s["storedBytes"] == g["storedBytes"]

    # the CLI sees the same
    out = server.aws("logs", "describe-log-groups", "--log-group-name-prefix", group)
    assert [x["logGroupName"] for x in out["logGroups"]] == [group]
    out = server.aws("logs", "describe-log-streams", "--log-group-name", group)
    assert [x["logStreamName"] for x in out["logStreams"]] == [logged["stream"]]
    # logGroupIdentifier takes a name or an ARN
    arn = "arn:aws:logs:%s:%s:log-group:%s" % (REGION, ACCOUNT, group)
    out = server.aws("logs", "describe-log-streams", "--log-group-identifier", arn)
    assert [x["logStreamName"] for x in out["logStreams"]] == [logged["stream"]]


def test_describe_log_groups_pages(server, logs):
    prefix = "/ignis/test/" + uuid.uuid4().hex[:8] + "/"
    names = [prefix + n for n in ("a", "b", "c")]
    for n in reversed(names):
        logs.create_log_group(logGroupName=n)
    r = logs.describe_log_groups(logGroupNamePrefix=prefix, limit=2)
    assert [g["logGroupName"] for g in r["logGroups"]] == names[:2]
    r2 = logs.describe_log_groups(logGroupNamePrefix=prefix, limit=2, nextToken=r["nextToken"])
    assert [g["logGroupName"] for g in r2["logGroups"]] == names[2:]
    assert "nextToken" not in r2
    # the CLI follows the tokens itself
    out = server.aws("logs", "describe-log-groups", "--log-group-name-prefix", prefix,
                     "--page-size", "1")
    assert [g["logGroupName"] for g in out["logGroups"]] == names
    pat = logs.describe_log_groups(logGroupNamePattern=prefix.upper() + "B")
    assert [g["logGroupName"] for g in pat["logGroups"]] == [names[1]]
    for n in names:
        logs.delete_log_group(logGroupName=n)


def test_two_instances_two_streams(server, lam, logs, create_function):
    name = create_function({"app.py": PRINTER})
    group = group_of(name)
    rids = [None, None]

    def run(i):
        rids[i] = invoke(lam, name, ["from call %d" % i], sleep=0.5)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rids.append(invoke(lam, name, ["after both"]))  # lands on one of the two
    wait_reports(logs, group, rids)

    streams = logs.describe_log_streams(logGroupName=group)["logStreams"]
    assert len(streams) == 2
    names = sorted(s["logStreamName"] for s in streams)
    assert [s["logStreamName"] for s in streams] == names  # LogStreamName order

    # pages of one, both orders
    p1 = logs.describe_log_streams(logGroupName=group, limit=1)
    p2 = logs.describe_log_streams(logGroupName=group, limit=1, nextToken=p1["nextToken"])
    assert [p1["logStreams"][0]["logStreamName"], p2["logStreams"][0]["logStreamName"]] == names
    assert "nextToken" not in p2
    newest = logs.describe_log_streams(logGroupName=group, orderBy="LastEventTime",
                                       descending=True, limit=1)
    older = logs.describe_log_streams(logGroupName=group, orderBy="LastEventTime",
                                      descending=True, limit=1, nextToken=newest["nextToken"])
    n, o = newest["logStreams"][0], older["logStreams"][0]
    assert n["lastEventTimestamp"] >= o["lastEventTimestamp"]
    assert {n["logStreamName"], o["logStreamName"]} == set(names)
    # the stream that served the last call is the newest
    last = logs.filter_log_events(logGroupName=group, filterPattern='"after both"')["events"]
    assert last[0]["logStreamName"] == n["logStreamName"]
    out = server.aws("logs", "describe-log-streams", "--log-group-name", group,
                     "--order-by", "LastEventTime", "--descending", "--page-size", "1")
    assert [s["logStreamName"] for s in out["logStreams"]] == [n["logStreamName"],
                                                             o["logStreamName"]]

    # events interleave across the streams in time order
    events = all_events(logs, group)
    assert {e["logStreamName"] for e in events} == set(names)
    ts = [e["timestamp"] for e in events]
    assert ts == sorted(ts)
    # a prefix or names narrow the streams
    only = all_events(logs, group, logStreamNames=[names[0]])
    assert only and {e["logStreamName"] for e in only} == {names[0]}
    pre = all_events(logs, group, logStreamNamePrefix=names[1][:-4])
    assert {e["logStreamName"] for e in pre} == {names[1]}


# --- GetLogEvents --------------------------------------------------------------

def test_get_log_events_in_order(server, logs, logged):
    group, stream = logged["group"], logged["stream"]
    r = logs.get_log_events(logGroupName=group, logStreamName=stream, startFromHead=True)
    same_lines([e["message"] for e in r["events"]], logged["lines"])
    ts = [e["timestamp"] for e in r["events"]]
    assert ts == sorted(ts)
    assert all(e["ingestionTime"] >= e["timestamp"] for e in r["events"])
    assert r["nextForwardToken"].startswith("f/")
    assert r["nextBackwardToken"].startswith("b/")

    # without startFromHead: the newest `limit`
    r = logs.get_log_events(logGroupName=group, logStreamName=stream, limit=2)
    same_lines([e["message"] for e in r["events"]], logged["lines"][-2:])

    # the CLI
    out = server.aws("logs", "get-log-events", "--log-group-name", group, "--log-stream-name",
                     stream, "--start-from-head")
    same_lines([e["message"] for e in out["events"]], logged["lines"])

    # time bounds: [ts of "gamma three", ts of "END" of the second call)
    full = logs.get_log_events(logGroupName=group, logStreamName=stream,
                               startFromHead=True)["events"]
    start = full[3]["timestamp"]
    end = full[-1]["timestamp"] + 1
    r = logs.get_log_events(logGroupName=group, logStreamName=stream, startFromHead=True,
                            startTime=start, endTime=end)
    want = [e["message"] for e in full if start <= e["timestamp"] < end]
    assert [e["message"] for e in r["events"]] == want
    r = logs.get_log_events(logGroupName=group, logStreamName=stream, startTime=end)
    assert r["events"] == []


def test_get_log_events_tokens(lam, logs, logged):
    group, stream = logged["group"], logged["stream"]
    lines = logged["lines"]
    # forward in pages of 3 from the head
    got, token = [], None
    for _ in range(10):
        args = dict(logGroupName=group, logStreamName=stream, limit=3, startFromHead=True)
        if token:
            args["nextToken"] = token
        r = logs.get_log_events(**args)
        got += [e["message"] for e in r["events"]]
        if not r["events"]:
            assert r["nextForwardToken"] == token  # the end: the same token back
            break
        token = r["nextForwardToken"]
    same_lines(got, lines)

    # backward from the end in pages of 4
    got, btoken = [], None
    for _ in range(10):
        args = dict(logGroupName=group, logStreamName=stream, limit=4)
        if btoken:
            args["nextToken"] = btoken
        r = logs.get_log_events(**args)
        if not r["events"]:
            assert r["nextBackwardToken"] == btoken
            break
        got = [e["message"] for e in r["events"]] + got
        btoken = r["nextBackwardToken"]
    same_lines(got, lines)

    # polling forward from the last token sees exactly what came after
    rid = invoke(lam, logged["name"], ["zeta six"])
    wait_reports(logs, group, [rid])
    r = logs.get_log_events(logGroupName=group, logStreamName=stream, nextToken=token)
    same_lines([e["message"] for e in r["events"]], expected_lines(rid, ["zeta six"]))
    again = logs.get_log_events(logGroupName=group, logStreamName=stream,
                                nextToken=r["nextForwardToken"])
    assert again["events"] == []
    assert again["nextForwardToken"] == r["nextForwardToken"]
    # and a backward token from that page goes back to the previous call's lines
    back = logs.get_log_events(logGroupName=group, logStreamName=stream, limit=1,
                               nextToken=r["nextBackwardToken"])
    same_lines([e["message"] for e in back["events"]], lines[-1:])


RAW_BYTES = (b"caf\xc3\xa9 \xff\xfe tab\there quote\" back\\slash bell\x07 nul\x00 del\x7f "
             b"emoji \xf0\x9f\x94\xa5 surrogate \xed\xa0\x80 cut \xe2\x82 end /slash")

BYTE_PRINTER = """
import sys
def handler(event, context):
    sys.stdout.buffer.write(%r + b"\\n")
    sys.stdout.flush()
    return {"ok": True}
""" % RAW_BYTES


def test_messages_are_json_safe(lam, logs, create_function):
    """Whatever bytes a function prints come back as valid JSON strings, with
    U+FFFD where they are not UTF-8 (as Python's 'replace' decodes them)."""
    name = create_function({"app.py": BYTE_PRINTER})
    r = lam.invoke(FunctionName=name, Payload=b"{}")
    rid = r["ResponseMetadata"]["RequestId"]
    group = group_of(name)
    events = wait_reports(logs, group, [rid])
    want = RAW_BYTES.decode("utf-8", "replace")
    assert want.count("\ufffd") == 6
    assert [e["message"] for e in events][1] == want
    [stream] = {e["logStreamName"] for e in events}
    got = logs.get_log_events(logGroupName=group, logStreamName=stream, startFromHead=True)
    assert got["events"][1]["message"] == want
    back = logs.get_log_events(logGroupName=group, logStreamName=stream, limit=3)
    assert back["events"][0]["message"] == want


# --- FilterLogEvents -------------------------------------------------------------

@pytest.mark.parametrize("pattern,want", [
    ("ERROR", ["beta ERROR two"]),
    ('"ERROR two"', ["beta ERROR two"]),
    ('"ERROR three"', []),
    ("alpha one", ["alpha one"]),
    ("one alpha", ["alpha one"]),
    ("Alpha", []),  # case-sensitive
    ("?WARN ?ERROR", ["beta ERROR two", "delta WARN four"]),
    ("e -ERROR -WARN -RequestId", ["alpha one", "gamma three", "epsilon five"]),
    ('RequestId -"START" -END -REPORT', []),
    ('"RequestId:" -END -REPORT', ["START"] * 2),
])
def test_filter_patterns(logs, logged, pattern, want):
    events = all_events(logs, logged["group"], filterPattern=pattern)
    got = [e["message"] for e in events]
    if want == ["START"] * 2:
        assert [m.split()[0] for m in got] == want
    else:
        assert got == want


def test_filter_log_events(server, logs, logged):
    group = logged["group"]
    events = all_events(logs, group)
    same_lines([e["message"] for e in events], logged["lines"])
    ids = [e["eventId"] for e in events]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"\d{56}", i) for i in ids)
    assert {e["logStreamName"] for e in events} == {logged["stream"]}
    # event ids are stable across calls
    assert [e["eventId"] for e in all_events(logs, group)] == ids
    # empty pattern: everything
    assert [e["eventId"] for e in all_events(logs, group, filterPattern="")] == ids
    # time bounds
    start = events[2]["timestamp"]
    got = all_events(logs, group, startTime=start)
    assert [e["eventId"] for e in got] == [e["eventId"] for e in events if e["timestamp"] >= start]
    got = all_events(logs, group, endTime=start)
    assert [e["eventId"] for e in got] == [e["eventId"] for e in events if e["timestamp"] < start]
    # unknown stream names match nothing
    assert all_events(logs, group, logStreamNames=["nope"]) == []

    # pages of 2 by hand
    got, token, pages = [], None, 0
    while True:
        args = dict(logGroupName=group, limit=2)
        if token:
            args["nextToken"] = token
        r = logs.filter_log_events(**args)
        assert len(r["events"]) <= 2
        got += [e["eventId"] for e in r["events"]]
        pages += 1
        token = r.get("nextToken")
        if not token:
            break
    assert got == ids
    assert pages >= len(ids) // 2
    # the CLI's own pagination, and boto3's paginator
    out = server.aws("logs", "filter-log-events", "--log-group-name", group, "--page-size", "3")
    assert [e["eventId"] for e in out["events"]] == ids
    pag = logs.get_paginator("filter_log_events")
    got = [e["eventId"] for page in pag.paginate(logGroupName=group, PaginationConfig={
        "PageSize": 4}) for e in page["events"]]
    assert got == ids
    out = server.aws("logs", "filter-log-events", "--log-group-name", group, "--filter-pattern",
                     "?five ?four")
    assert [e["message"] for e in out["events"]] == ["delta WARN four", "epsilon five"]


@pytest.mark.parametrize("pattern,words", [
    ('{ $.level = "ERROR" ', "expected '}'"),
    ("{ $.latency > fast }", "compares numbers"),
    ("{ level = 1 }", "selector"),
    ("[ip, user, status]", "space-delimited"),
    ("%ERR.R%", "regular expression"),
    ('"unterminated', "unterminated"),
    ("level=ERROR", "invalid character"),
    ("? x", "must be followed by a term"),
])
def test_unsupported_filter_patterns(logs, logged, pattern, words):
    with pytest.raises(ClientError) as e:
        logs.filter_log_events(logGroupName=logged["group"], filterPattern=pattern)
    status, code, msg = client_error(e)
    assert (status, code) == (400, "InvalidParameterException")
    assert words in msg


JSON_LINES = [
    '{"level": "ERROR", "user": "bob-1", "latency": 250, "ok": false, "tags": ["a", "b"]}',
    '{"level": "WARN", "user": "alice", "latency": 90, "ok": true, "err": null}',
    '{"level": "INFO", "user": "bob-2", "latency": 12.5, "ok": true, "tags": ["c"]}',
    "plain ERROR text, not JSON",
]


@pytest.mark.parametrize("pattern,want", [
    ('{ $.level = "ERROR" }', [0]),
    ("{ $.level = ERR* }", [0]),
    ("{ $.level != \"INFO\" }", [0, 1]),
    ("{ $.latency > 100 }", [0]),
    ("{ $.latency <= 90 }", [1, 2]),
    ('{ ($.level = "WARN" || $.level = "ERROR") && $.user = "bob*" }', [0]),
    ("{ $.ok IS FALSE }", [0]),
    ("{ $.err IS NULL }", [1]),
    ("{ $.tags NOT EXISTS }", [1]),
    ('{ $.tags[1] = "b" }', [0]),
])
def test_json_filter_patterns(server, lam, logs, create_function, pattern, want):
    """CloudWatch's JSON filter patterns over the function's JSON lines (plain lines never
    match), through the real aws CLI."""
    name = json_logger(lam, create_function)
    out = server.aws("logs", "filter-log-events", "--log-group-name", "/aws/lambda/" + name,
                     "--filter-pattern", pattern)
    assert [e["message"] for e in out["events"]] == [JSON_LINES[i] for i in want]


_json_logger = {}


def json_logger(lam, create_function):
    """One function (per session) that has printed JSON_LINES once."""
    if "name" not in _json_logger:
        name = create_function({"app.py": PRINTER}, MemorySize=1769)
        r = lam.invoke(FunctionName=name, Payload=json.dumps({"lines": JSON_LINES}))
        assert "FunctionError" not in r
        _json_logger["name"] = name
    return _json_logger["name"]


# --- aws logs tail -----------------------------------------------------------------

def tail_lines(text):
    """`--format short` lines: drop the timestamp."""
    return [l.split(" ", 1)[1] for l in text.splitlines() if l.strip()]


def test_tail(server, logged):
    p = server.aws("logs", "tail", logged["group"], "--format", "short", parse=False)
    assert p.returncode == 0, p.stderr
    got = tail_lines(p.stdout)
    # tail strips trailing whitespace; REPORT lines carry tabs inside
    same_lines(got, logged["lines"])
    p = server.aws("logs", "tail", logged["group"], "--since", "1h", "--filter-pattern", "ERROR",
                   parse=False)
    assert p.returncode == 0, p.stderr
    [line] = p.stdout.splitlines()
    assert line.endswith(" %s beta ERROR two" % logged["stream"])
    # nothing in range: no output, success
    p = server.aws("logs", "tail", logged["group"], "--since", "2099-01-01T00:00:00Z",
                   parse=False)
    assert (p.returncode, p.stdout) == (0, "")


def test_tail_follow(server, lam, logged):
    env = dict(os.environ, AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY,
               AWS_DEFAULT_REGION=REGION, AWS_PAGER="", AWS_MAX_ATTEMPTS="1",
               PYTHONUNBUFFERED="1")
    env.pop("AWS_PROFILE", None)
    proc = subprocess.Popen([AWS, "--endpoint-url", server.url, "logs", "tail", logged["group"],
                             "--follow", "--format", "short"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    out = []
    reader = threading.Thread(target=lambda: out.extend(iter(proc.stdout.readline, "")),
                              daemon=True)
    reader.start()
    try:
        def wait_for(text, timeout):
            deadline = time.time() + timeout
            while time.time() < deadline:
                if any(text in l for l in list(out)):
                    return
                if proc.poll() is not None:
                    raise AssertionError("tail exited: %s" % proc.stderr.read())
                time.sleep(0.05)
            raise AssertionError("%r not printed; got %r" % (text, out))

        wait_for("epsilon five", 15)
        marker = "followed " + uuid.uuid4().hex
        rid = invoke(lam, logged["name"], [marker])
        # tail --follow polls every 5 s
        wait_for("REPORT RequestId: " + rid, 15)
        lines = tail_lines("".join(out))
        same_lines(lines, logged["lines"] + expected_lines(rid, [marker]))  # each once
    finally:
        proc.kill()
        proc.wait()


# --- create, delete -----------------------------------------------------------------

def test_create_and_delete_log_group(server, logs):
    name = "/ignis/test/" + uuid.uuid4().hex
    logs.create_log_group(logGroupName=name)
    with pytest.raises(ClientError) as e:
        logs.create_log_group(logGroupName=name)
    assert client_error(e)[:2] == (400, "ResourceAlreadyExistsException")
    [g] = logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"]
    assert g["storedBytes"] == 0
    assert logs.describe_log_streams(logGroupName=name)["logStreams"] == []
    assert logs.filter_log_events(logGroupName=name)["events"] == []
    server.aws("logs", "delete-log-group", "--log-group-name", name)
    assert logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"] == []
    with pytest.raises(ClientError) as e:
        logs.delete_log_group(logGroupName=name)
    assert client_error(e) == (400, "ResourceNotFoundException",
                               "The specified log group does not exist.")


def test_deleted_function_group_comes_back(lam, logs, logged):
    group = logged["group"]
    logs.delete_log_group(logGroupName=group)
    with pytest.raises(ClientError) as e:
        logs.describe_log_streams(logGroupName=group)
    assert client_error(e)[1] == "ResourceNotFoundException"
    rid = invoke(lam, logged["name"], ["reborn"])  # the same warm instance writes on
    events = wait_reports(logs, group, [rid])
    same_lines([e["message"] for e in events], expected_lines(rid, ["reborn"]))


# --- errors ---------------------------------------------------------------------------

def test_not_found(logs, logged):
    cases = [
        (lambda: logs.get_log_events(logGroupName="/aws/lambda/nope-" + uuid.uuid4().hex,
                                     logStreamName="x"),
         "The specified log group does not exist."),
        (lambda: logs.get_log_events(logGroupName=logged["group"], logStreamName="nope"),
         "The specified log stream does not exist."),
        (lambda: logs.describe_log_streams(logGroupName="/nope/" + uuid.uuid4().hex),
         "The specified log group does not exist."),
        (lambda: logs.filter_log_events(logGroupName="/nope/" + uuid.uuid4().hex),
         "The specified log group does not exist."),
    ]
    for call, message in cases:
        with pytest.raises(ClientError) as e:
            call()
        assert client_error(e) == (400, "ResourceNotFoundException", message)


def test_invalid_parameters(raw_logs, logged):
    group, stream = logged["group"], logged["stream"]
    cases = [
        dict(op="get_log_events", logGroupName=group, logStreamName=stream, limit=0),
        dict(op="get_log_events", logGroupName=group, logStreamName=stream, limit=10001),
        dict(op="get_log_events", logGroupName=group, logStreamName=stream, nextToken="garbage"),
        dict(op="get_log_events", logGroupName=group, logStreamName=stream, nextToken="f/3"),
        dict(op="get_log_events", logGroupName=group),
        dict(op="get_log_events", logGroupName="bad name!", logStreamName=stream),
        dict(op="filter_log_events", logGroupName=group, nextToken="n/123"),
        dict(op="filter_log_events", logGroupName=group, logStreamNames=[stream],
             logStreamNamePrefix="2"),
        dict(op="filter_log_events", logGroupName=group, logStreamNames=[]),
        dict(op="filter_log_events", logGroupName=group, startTime=-1),
        dict(op="describe_log_streams", logGroupName=group, orderBy="LastEventTime",
             logStreamNamePrefix="2"),
        dict(op="describe_log_streams", logGroupName=group, orderBy="Size"),
        dict(op="describe_log_streams", logGroupName=group, limit=51),
        dict(op="describe_log_streams", logGroupName=group, nextToken="zz"),
        dict(op="describe_log_groups", logGroupNamePrefix="a", logGroupNamePattern="b"),
        dict(op="create_log_group", logGroupName="has space"),
        dict(op="create_log_group", logGroupName="x" * 513),
    ]
    for case in cases:
        args = dict(case)
        op = args.pop("op")
        with pytest.raises(ClientError) as e:
            getattr(raw_logs, op)(**args)
        status, code, msg = client_error(e)
        assert (status, code) == (400, "InvalidParameterException"), (case, msg)
        assert msg, case


def signed(server, target, body, content_type="application/x-amz-json-1.1", send=None):
    """Sends a hand-made request signed for body (but carrying send if given);
    returns (status, json)."""
    req = botocore.awsrequest.AWSRequest(
        method="POST", url=server.url + "/", data=body,
        headers={"Content-Type": content_type, **({"X-Amz-Target": target} if target else {})})
    botocore.auth.SigV4Auth(botocore.credentials.Credentials(ACCESS_KEY, SECRET_KEY), "logs",
                            REGION).add_auth(req)
    prepared = req.prepare()
    r = urllib.request.Request(prepared.url, data=body if send is None else send, method="POST",
                               headers=dict(prepared.headers.items()))
    try:
        with urllib.request.urlopen(r, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_protocol_errors(server, logged):
    st, doc = signed(server, "Logs_20140328.NoSuchOperation", b"{}")
    assert (st, doc["__type"]) == (400, "UnknownOperationException")
    st, doc = signed(server, None, b"{}")
    assert (st, doc["__type"]) == (400, "UnknownOperationException")
    st, doc = signed(server, "Logs_20140328.DescribeLogGroups", b"{not json")
    assert (st, doc["__type"]) == (400, "SerializationException")
    st, doc = signed(server, "Logs_20140328.DescribeLogGroups", b"[1]")
    assert (st, doc["__type"]) == (400, "SerializationException")
    st, doc = signed(server, "Logs_20140328.GetLogEvents", json.dumps(
        {"logGroupName": logged["group"], "logStreamName": logged["stream"],
         "limit": "3"}).encode())
    assert (st, doc["__type"]) == (400, "SerializationException")
    st, doc = signed(server, "Logs_20140328.DescribeLogGroups",
                     json.dumps({"logGroupNamePrefix": logged["group"]}).encode())
    assert st == 200
    assert [g["logGroupName"] for g in doc["logGroups"]] == [logged["group"]]
    # a bad signature is answered in this protocol's error shape
    st, doc = signed(server, "Logs_20140328.DescribeLogGroups", b"{}", send=b"{ }")
    assert (st, doc["__type"]) == (403, "InvalidSignatureException")
