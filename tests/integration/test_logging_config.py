"""LoggingConfig honoured as Lambda does it (issue 7): with LogFormat JSON the platform's
lines are JSON records (platform.start, platform.report with its metrics, runtimeDone at
DEBUG, initReport) kept from SystemLogLevel up, and a function's own JSON lines carrying a
"level" below ApplicationLogLevel are dropped (the runtimes filter their own logging too).
Debian's botocore predates LoggingConfig, so the configuration is sent as raw signed JSON,
as any newer SDK sends it."""
import http.client
import json
import time

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from conftest import ACCESS_KEY, REGION, ROLE, SECRET_KEY, code, invoke, log_messages, make_zip, unique

PRINTS = code("""
    import json
    def handler(event, context):
        print(json.dumps({"level": "debug", "msg": "debug line"}))
        print(json.dumps({"level": "ERROR", "msg": "error line"}))
        print("plain line")
        return "ok"
""")


def signed(server, method, path, body):
    data = json.dumps(body).encode()
    req = AWSRequest(method=method, url=server.url + path, data=data,
                     headers={"Content-Type": "application/json"})
    SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "lambda", REGION).add_auth(req)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    conn.request(method, path, body=data, headers=dict(req.headers.items()))
    resp = conn.getresponse()
    got = resp.read()
    conn.close()
    return resp.status, json.loads(got) if got else None


def configure(server, lam, name, logging):
    status, doc = signed(server, "PUT", "/2015-03-31/functions/%s/configuration" % name,
                         {"LoggingConfig": logging})
    assert status == 200, doc
    lam.get_waiter("function_updated").wait(FunctionName=name)
    return doc


def records(server, name):
    out = []
    for m in log_messages(server, name):
        try:
            out.append(json.loads(m))
        except ValueError:
            out.append(m)
    return out


def wait_for(pred, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = pred()
        if got:
            return got
        time.sleep(0.2)
    return pred()


@pytest.fixture
def fn(server, lam):
    name = unique("logcfg")
    lam.create_function(FunctionName=name, Runtime="python3.12", Handler="app.handler",
                        Role=ROLE, MemorySize=1769, Code={"ZipFile": make_zip({"app.py": PRINTS})})
    yield name
    lam.delete_function(FunctionName=name)


def test_json_platform_records(server, lam, fn):
    doc = configure(server, lam, fn, {"LogFormat": "JSON"})
    assert doc["LoggingConfig"]["SystemLogLevel"] == "INFO"
    r = invoke(lam, fn)
    rid = r["ResponseMetadata"]["RequestId"]

    def done():
        recs = records(server, fn)
        return recs if any(isinstance(x, dict) and x.get("type") == "platform.report"
                           for x in recs) else None
    recs = wait_for(done)
    platform = [x for x in recs if isinstance(x, dict) and "type" in x]
    types = [x["type"] for x in platform]
    assert types == ["platform.start", "platform.report"], recs
    start, report = platform
    assert start["record"] == {"requestId": rid, "version": "$LATEST"}
    assert start["time"].endswith("Z") and "T" in start["time"]
    m = report["record"]["metrics"]
    assert report["record"]["requestId"] == rid and report["record"]["status"] == "success"
    assert m["memorySizeMB"] == 1769 and m["billedDurationMs"] >= 1
    assert m["durationMs"] > 0 and m["maxMemoryUsedMB"] >= 1 and m["initDurationMs"] > 0
    text = [x for x in recs if isinstance(x, str)]
    assert not any(t.startswith(("START", "END", "REPORT")) for t in text), text
    # ApplicationLogLevel INFO (the default): the debug JSON line is dropped
    assert "plain line" in text
    levels = [x.get("level") for x in recs if isinstance(x, dict) and "msg" in x]
    assert levels == ["ERROR"], recs


def test_system_log_level(server, lam, fn):
    configure(server, lam, fn, {"LogFormat": "JSON", "SystemLogLevel": "DEBUG",
                                "ApplicationLogLevel": "TRACE"})
    invoke(lam, fn)
    recs = wait_for(lambda: [x for x in records(server, fn) if isinstance(x, dict)
                             and x.get("type") == "platform.report"] and records(server, fn))
    types = [x["type"] for x in recs if isinstance(x, dict) and "type" in x]
    assert types == ["platform.start", "platform.runtimeDone", "platform.report"], recs
    assert [x.get("level") for x in recs if isinstance(x, dict) and "msg" in x] == ["debug", "ERROR"]
    # WARN: neither start nor report
    configure(server, lam, fn, {"SystemLogLevel": "WARN"})
    before = len(records(server, fn))
    invoke(lam, fn)
    time.sleep(1.0)
    new = records(server, fn)[before:]
    assert not [x for x in new if isinstance(x, dict) and "type" in x], new
    assert "plain line" in new


def test_levels_are_validated_and_text_stays_text(server, lam, fn):
    status, doc = signed(server, "PUT", "/2015-03-31/functions/%s/configuration" % fn,
                         {"LoggingConfig": {"LogFormat": "JSON", "SystemLogLevel": "TRACE"}})
    assert status == 400 and "[DEBUG, INFO, WARN]" in doc["message"], doc
    invoke(lam, fn)
    msgs = wait_for(lambda: [m for m in log_messages(server, fn) if m.startswith("REPORT")]
                    and log_messages(server, fn))
    assert any(m.startswith("START RequestId:") for m in msgs)
    assert "plain line" in msgs and any('"debug line"' in m for m in msgs)  # no filtering
