"""Lambda response streaming: Node handlers wrapped in awslambda.streamifyResponse
(and a `provided` bootstrap posting with curl) streamed through a RESPONSE_STREAM
Function URL (raw chunked HTTP, http.client) and through InvokeWithResponseStream
(the AWS SDK for JavaScript v3 in tests/js; boto3 1.26 predates the operation):
first bytes before the handler finishes, HttpResponseStream.from's status and
headers, an error in the middle, a function that does not stream, the timeout,
a client that goes away, and a response above the buffered 6 MB limit.
"""
import base64
import http.client
import json
import os
import re
import socket
import subprocess
import time

import botocore.auth
import botocore.awsrequest
import botocore.credentials
import pytest

from conftest import (ACCESS_KEY, REGION, REPO, ROLE, SECRET_KEY, Server, code, invoke, log_messages,
                      make_zip, unique)

JS_DIR = os.path.join(REPO, "tests", "js")

STREAMER = code('''
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const MB = 1024 * 1024;
export const handler = awslambda.streamifyResponse(async (event, stream, context) => {
  const mode = event.mode || (event.rawPath || "/slow").slice(1);
  if (mode === "slow") {
    stream.write("first\\n");
    await sleep(1500);
    stream.write("second\\n");
    stream.end();
  } else if (mode === "http") {
    stream = awslambda.HttpResponseStream.from(stream, {
      statusCode: 418, headers: { "X-Stream": "yes", "Content-Type": "text/plain" },
      cookies: ["a=1", "b=2"] });
    stream.write("short and stout");
    await sleep(50);
    stream.write(", here is my spout");
    stream.end();
  } else if (mode === "typed") {
    stream.setContentType("text/event-stream");
    stream.write("data: 1\\n\\n");
    stream.end();
  } else if (mode === "fail") {
    stream.write("partial");
    await sleep(50);
    throw new TypeError("boom mid-stream");
  } else if (mode === "early") {
    throw new RangeError("nothing written yet");
  } else if (mode === "huge") {  // over the 20 MB a stream may carry
    const piece = Buffer.alloc(1024 * 1024, "h");
    for (let i = 0; i < 21; i++) {
      if (!stream.write(piece)) await new Promise((r) => stream.once("drain", r));
    }
    stream.end();
  } else if (mode === "hang") {
    stream.write("x");
    await sleep(100000);
  } else if (mode === "big") {
    const piece = Buffer.alloc(64 * 1024, "z");
    for (let i = 0; i < 7 * 16; i++) {
      if (!stream.write(piece)) await new Promise((r) => stream.once("drain", r));
    }
    stream.end();
  } else if (mode === "paced") {  // 19 MB as fast as the reader takes it
    const piece = Buffer.alloc(256 * 1024, "p");
    for (let i = 0; i < 19 * 4; i++) {
      if (!stream.write(piece)) await new Promise((r) => stream.once("drain", r));
    }
    stream.end();
  } else if (mode === "long") {
    const piece = Buffer.alloc(64 * 1024, "y");
    let n = 0;
    for (; n < 150; n++) {
      if (!stream.write(piece)) await new Promise((r) => stream.once("drain", r));
      await sleep(10);
    }
    console.log("long stream finished after " + n + " pieces");
    stream.end();
  }
});
''')

BUFFERED = code('''
def handler(event, context):
    return {"hello": "world", "got": event}
''')

# A provided runtime that streams with curl's chunked upload from a pipe.
CURL_BOOTSTRAP = code('''
#!/bin/sh
api="http://$AWS_LAMBDA_RUNTIME_API/2018-06-01/runtime/invocation"
while true; do
  id=$(curl -sS -D - -o /dev/null "$api/next" | tr -d '\\r' |
       sed -n 's/^[Ll]ambda-[Rr]untime-[Aa]ws-[Rr]equest-[Ii]d: //p')
  (printf 'one\\n'; sleep 1.5; printf 'two\\n') |
    curl -sS -o /dev/null -X POST -H 'Lambda-Runtime-Function-Response-Mode: streaming' \\
      -H 'Transfer-Encoding: chunked' -H 'Content-Type: text/plain' -T - "$api/$id/response"
done
''')


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """This module's own daemon, whose streams stop at 20 MB (IGNIS_STREAM_MAX_MB; Lambda's
    limit, the default, is 200 MB): the limit is tested without pushing 200 MB through."""
    s = Server(str(tmp_path_factory.mktemp("stream") / "data"),
               env={"IGNIS_STREAM_MAX_MB": "20"}).start()
    yield s
    assert s.stop() == 0, s.read_log()


@pytest.fixture(scope="module")
def streamer(server):
    lam = server.client("lambda")
    name = unique("stream")
    lam.create_function(FunctionName=name, Runtime="nodejs20.x", Handler="index.handler", Role=ROLE,
                        Code={"ZipFile": make_zip({"index.mjs": STREAMER})}, Timeout=3)
    wait_active(lam, name)
    cfg = url_config(server, name, "POST", {"AuthType": "NONE", "InvokeMode": "RESPONSE_STREAM"})
    assert cfg["InvokeMode"] == "RESPONSE_STREAM"
    yield name, url_id(cfg)
    lam.delete_function(FunctionName=name)


def wait_active(lam, name):
    for _ in range(200):
        if lam.get_function(FunctionName=name)["Configuration"]["State"] == "Active":
            return
        time.sleep(0.05)
    raise AssertionError("function did not become Active")


def url_config(server, name, method, doc):
    """Create (POST) or Update (PUT) FunctionUrlConfig, signed by hand: boto3 1.26 and the
    aws CLI here predate InvokeMode."""
    body = json.dumps(doc).encode()
    path = f"/2021-10-31/functions/{name}/url"
    req = botocore.awsrequest.AWSRequest(method=method, url=server.url + path, data=body,
                                         headers={"Content-Type": "application/json"})
    botocore.auth.SigV4Auth(botocore.credentials.Credentials(ACCESS_KEY, SECRET_KEY), "lambda",
                            REGION).add_auth(req)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request(method, path, body=body, headers=dict(req.headers))
    r = conn.getresponse()
    out = json.loads(r.read())
    conn.close()
    assert r.status in (200, 201), out
    return out


def url_id(cfg):
    m = re.fullmatch(r"http://([a-z0-9]{32})\.lambda-url\.us-east-1\.localhost:(\d+)/", cfg["FunctionUrl"])
    assert m, cfg["FunctionUrl"]
    return m.group(1)


def open_url(server, uid, path, timeout=30):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=timeout)
    conn.putrequest("GET", path, skip_host=True)
    conn.putheader("Host", f"{uid}.lambda-url.{REGION}.localhost:{server.port}")
    conn.endheaders()
    return conn, conn.getresponse()


def read_timed(resp):
    """Reads the body piece by piece: [(seconds since first byte asked, bytes)]."""
    t0 = time.monotonic()
    pieces = []
    while True:
        b = resp.read1(65536)
        if not b:
            return pieces
        pieces.append((time.monotonic() - t0, b))


def stream_invoke(server, name, payload, log_type="", qualifier=""):
    """InvokeWithResponseStream through the JS SDK: the lines the driver printed."""
    p = subprocess.run(["node", "stream_sdk.mjs", server.url, ACCESS_KEY, SECRET_KEY, name,
                        json.dumps(payload), log_type, qualifier],
                       cwd=JS_DIR, capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, NODE_NO_WARNINGS="1"))
    assert p.returncode == 0, p.stdout + p.stderr
    return [json.loads(line) for line in p.stdout.splitlines()]


def chunks(lines):
    return b"".join(base64.b64decode(l["chunk"]) for l in lines if "chunk" in l)


# Function URLs ----------------------------------------------------------------

def test_url_first_bytes_arrive_before_the_handler_finishes(server, streamer):
    name, uid = streamer
    conn, resp = open_url(server, uid, "/slow")
    assert resp.status == 200
    assert resp.getheader("Transfer-Encoding") == "chunked"
    assert resp.getheader("Content-Type") == "application/octet-stream"
    assert re.fullmatch(r"[0-9a-f-]{36}", resp.getheader("x-amzn-RequestId"))
    pieces = read_timed(resp)
    conn.close()
    body = b"".join(b for _, b in pieces)
    assert body == b"first\nsecond\n"
    # "first" was readable while the handler still slept its 1.5 s
    assert pieces[0][1].startswith(b"first")
    assert pieces[-1][0] - pieces[0][0] >= 1.0, pieces


def test_url_http_response_stream_prelude_sets_status_and_headers(server, streamer):
    name, uid = streamer
    conn, resp = open_url(server, uid, "/http")
    assert resp.status == 418
    assert resp.getheader("X-Stream") == "yes"
    assert resp.getheader("Content-Type") == "text/plain"
    assert sorted(v for k, v in resp.getheaders() if k.lower() == "set-cookie") == ["a=1", "b=2"]
    assert resp.read() == b"short and stout, here is my spout"
    conn.close()


def test_url_content_type_set_by_the_function(server, streamer):
    name, uid = streamer
    conn, resp = open_url(server, uid, "/typed")
    assert resp.status == 200
    assert resp.getheader("Content-Type") == "text/event-stream"
    assert resp.read() == b"data: 1\n\n"
    conn.close()


def test_url_error_mid_stream_cuts_the_stream(server, streamer):
    name, uid = streamer
    conn, resp = open_url(server, uid, "/fail")
    assert resp.status == 200
    with pytest.raises(http.client.IncompleteRead) as e:
        resp.read()
    assert e.value.partial == b"partial"
    conn.close()


def test_url_error_before_the_first_byte_is_a_502(server, streamer):
    name, uid = streamer
    conn, resp = open_url(server, uid, "/early")
    assert resp.status == 502
    assert resp.read() == b"Internal Server Error"
    conn.close()


def test_url_stream_over_20_mb_is_cut(server, streamer):
    name, uid = streamer
    conn, resp = open_url(server, uid, "/huge")
    assert resp.status == 200
    with pytest.raises(http.client.IncompleteRead) as e:
        resp.read()
    assert len(e.value.partial) <= 20 * 1024 * 1024
    conn.close()


def test_url_stream_cors(server, create_function, lam):
    name = create_function({"index.mjs": STREAMER}, runtime="nodejs20.x", handler="index.handler")
    wait_active(lam, name)
    uid = url_id(url_config(server, name, "POST", {
        "AuthType": "NONE", "InvokeMode": "RESPONSE_STREAM",
        "Cors": {"AllowOrigins": ["https://app.example"], "ExposeHeaders": ["x-stream"]}}))
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    conn.request("GET", f"/_ignis/url/{uid}/http", headers={"Origin": "https://app.example"})
    resp = conn.getresponse()
    assert resp.status == 418
    assert resp.getheader("Access-Control-Allow-Origin") == "https://app.example"
    assert resp.getheader("Access-Control-Expose-Headers") == "x-stream"
    assert resp.read() == b"short and stout, here is my spout"
    conn.close()


def test_url_timeout_while_streaming(server, streamer):
    name, uid = streamer
    t0 = time.monotonic()
    conn, resp = open_url(server, uid, "/hang")
    assert resp.status == 200
    with pytest.raises(http.client.IncompleteRead) as e:
        resp.read()
    assert e.value.partial == b"x"
    assert time.monotonic() - t0 < 20  # the 3 s timeout ended it
    conn.close()
    deadline = time.time() + 10
    while time.time() < deadline:
        if any("Task timed out after 3.00 seconds" in m for m in log_messages(server, name)):
            break
        time.sleep(0.2)
    else:
        raise AssertionError("no timeout line in the log")


def test_url_streams_more_than_the_buffered_limit(server, streamer):
    name, uid = streamer
    conn, resp = open_url(server, uid, "/big")
    assert resp.status == 200
    body = resp.read()
    conn.close()
    assert len(body) == 7 * 1024 * 1024
    assert body == b"z" * len(body)


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))


def test_slow_client_holds_the_function_back(server, streamer):
    """A client that stops reading makes the daemon stop reading the runtime (backpressure),
    instead of buffering the function's 19 MB."""
    name, uid = streamer
    before = rss_kb(server.proc.pid)
    conn, resp = open_url(server, uid, "/paced")
    assert resp.status == 200
    got = len(resp.read1(65536))
    time.sleep(2)  # the function could have written everything by now
    grown_mb = (rss_kb(server.proc.pid) - before) / 1024
    while True:
        b = resp.read1(1 << 20)
        if not b:
            break
        got += len(b)
    conn.close()
    assert got == 19 * 1024 * 1024
    assert grown_mb < 8, "the daemon buffered %.1f MB for a stalled client" % grown_mb


def test_client_going_away_mid_stream(server, streamer):
    name, uid = streamer
    conn, resp = open_url(server, uid, "/long")
    assert resp.status == 200
    assert resp.read1(65536)  # started
    # vanish without reading the rest (RST, nothing more is read)
    conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    conn.sock.close()
    conn.close()
    # the function runs to its end anyway, and the daemon keeps serving
    deadline = time.time() + 20
    while time.time() < deadline:
        if any("long stream finished after 150 pieces" in m for m in log_messages(server, name)):
            break
        time.sleep(0.2)
    else:
        raise AssertionError("the function did not run to its end")
    conn, resp = open_url(server, uid, "/typed")
    assert resp.status == 200 and resp.read() == b"data: 1\n\n"
    conn.close()


def test_url_buffered_function_in_stream_mode(server, create_function, lam):
    name = create_function({"app.py": BUFFERED})
    wait_active(lam, name)
    uid = url_id(url_config(server, name, "POST", {"AuthType": "NONE", "InvokeMode": "RESPONSE_STREAM"}))
    conn, resp = open_url(server, uid, "/x")
    assert resp.status == 200
    doc = json.loads(resp.read())  # the function's answer as it returned it
    assert doc["hello"] == "world" and doc["got"]["rawPath"] == "/x"
    conn.close()
    # and back to BUFFERED: the 2.0 response mapping again
    assert url_config(server, name, "PUT", {"InvokeMode": "BUFFERED"})["InvokeMode"] == "BUFFERED"
    conn, resp = open_url(server, uid, "/x")
    assert resp.status == 200 and resp.getheader("Transfer-Encoding") is None
    conn.close()


def test_provided_runtime_streams_with_curl(server, create_function, lam):
    name = create_function({"bootstrap": CURL_BOOTSTRAP}, runtime="provided.al2023",
                           handler="x", modes={"bootstrap": 0o755})
    wait_active(lam, name)
    uid = url_id(url_config(server, name, "POST", {"AuthType": "NONE", "InvokeMode": "RESPONSE_STREAM"}))
    conn, resp = open_url(server, uid, "/")
    assert resp.status == 200
    assert resp.getheader("Content-Type") == "text/plain"
    pieces = read_timed(resp)
    conn.close()
    assert b"".join(b for _, b in pieces) == b"one\ntwo\n"
    assert pieces[-1][0] - pieces[0][0] >= 1.0, pieces


# InvokeWithResponseStream -------------------------------------------------------

def test_invoke_with_response_stream_first_bytes_early(server, streamer):
    name, _ = streamer
    lines = stream_invoke(server, name, {"mode": "slow"}, log_type="Tail")
    head = lines[0]
    assert head["status"] == 200 and head["version"] == "$LATEST"
    assert head["contentType"] == "application/vnd.amazon.eventstream"
    got = [l for l in lines if "chunk" in l]
    assert chunks(lines) == b"first\nsecond\n"
    assert base64.b64decode(got[0]["chunk"]).startswith(b"first")
    assert got[-1]["t"] - got[0]["t"] >= 1000, lines
    complete = lines[-1]["complete"]
    assert "ErrorCode" not in complete
    log = base64.b64decode(complete["LogResult"]).decode()
    assert re.search(r"^REPORT RequestId: [0-9a-f-]{36}\tDuration: ", log, re.M), log


def test_invoke_with_response_stream_error_mid_stream(server, streamer):
    name, _ = streamer
    lines = stream_invoke(server, name, {"mode": "fail"})
    assert chunks(lines) == b"partial"
    complete = lines[-1]["complete"]
    assert complete["ErrorCode"] == "TypeError"
    assert complete["ErrorDetails"] == "boom mid-stream"


def test_invoke_with_response_stream_error_before_the_first_byte(server, streamer):
    name, _ = streamer
    lines = stream_invoke(server, name, {"mode": "early"})
    assert lines[0]["status"] == 200  # function errors come in the stream, as on Lambda
    assert chunks(lines) == b""
    assert lines[-1]["complete"]["ErrorCode"] == "RangeError"
    assert lines[-1]["complete"]["ErrorDetails"] == "nothing written yet"


def test_invoke_with_response_stream_timeout(server, streamer):
    name, _ = streamer
    lines = stream_invoke(server, name, {"mode": "hang"})
    assert chunks(lines) == b"x"
    complete = lines[-1]["complete"]
    assert complete["ErrorCode"] == "Sandbox.Timedout"
    assert "Task timed out after 3.00 seconds" in complete["ErrorDetails"]


def test_invoke_with_response_stream_of_a_buffered_function(server, create_function, lam):
    name = create_function({"app.py": BUFFERED})
    wait_active(lam, name)
    lines = stream_invoke(server, name, {"k": 1})
    assert lines[0]["status"] == 200
    assert json.loads(chunks(lines)) == {"hello": "world", "got": {"k": 1}}
    assert lines[-1]["complete"] == {} or "ErrorCode" not in lines[-1]["complete"]


def test_invoke_with_response_stream_through_an_alias(server, create_function, lam):
    name = create_function({"app.py": BUFFERED})
    wait_active(lam, name)
    version = lam.publish_version(FunctionName=name)["Version"]
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion=version)
    lines = stream_invoke(server, name, {"k": 2}, qualifier="live")
    assert lines[0]["version"] == version
    assert json.loads(chunks(lines))["got"] == {"k": 2}


def test_invoke_with_response_stream_errors_before_the_stream(server, streamer):
    lines = stream_invoke(server, unique("missing"), {})
    assert lines[0]["error"] == "ResourceNotFoundException" and lines[0]["status"] == 404


def signed_stream_invoke(server, name, headers):
    path = f"/2021-11-15/functions/{name}/response-streaming-invocations"
    req = botocore.awsrequest.AWSRequest(method="POST", url=server.url + path, data=b"{}",
                                         headers=headers)
    botocore.auth.SigV4Auth(botocore.credentials.Credentials(ACCESS_KEY, SECRET_KEY), "lambda",
                            REGION).add_auth(req)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    conn.request("POST", path, body=b"{}", headers=dict(req.headers))
    r = conn.getresponse()
    out = r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    conn.close()
    return out


def test_invoke_with_response_stream_invocation_types(server, streamer):
    name, _ = streamer
    status, headers, body = signed_stream_invoke(server, name, {"X-Amz-Invocation-Type": "DryRun"})
    assert status == 204 and body == b""
    status, headers, body = signed_stream_invoke(server, name, {"X-Amz-Invocation-Type": "Event"})
    assert status == 400 and headers["x-amzn-errortype"] == "ValidationException"
    assert "[RequestResponse, DryRun]" in json.loads(body)["message"]
    status, headers, body = signed_stream_invoke(server, name, {"X-Amz-Log-Type": "Everything"})
    assert status == 400 and headers["x-amzn-errortype"] == "ValidationException"


def test_plain_invoke_of_a_streaming_function_is_buffered(server, streamer, lam):
    name, _ = streamer
    r = invoke(lam, name, {"mode": "slow"})
    assert r["StatusCode"] == 200 and "FunctionError" not in r
    assert r["body"] == b"first\nsecond\n"
    # over the buffered limit: Lambda's size error, not 7 MB
    r = invoke(lam, name, {"mode": "big"})
    assert r["FunctionError"] == "Unhandled"
    assert r["json"]["errorType"] == "Function.ResponseSizeTooLarge"


def test_shutdown_in_the_middle_of_a_stream(fresh_server):
    """SIGTERM while a function streams: the client sees the stream cut, the daemon exits 0
    (and, under ASan, without leaks)."""
    lam = fresh_server.client("lambda")
    name = unique("stream")
    lam.create_function(FunctionName=name, Runtime="nodejs20.x", Handler="index.handler", Role=ROLE,
                        Code={"ZipFile": make_zip({"index.mjs": STREAMER})}, Timeout=30)
    wait_active(lam, name)
    uid = url_id(url_config(fresh_server, name, "POST",
                            {"AuthType": "NONE", "InvokeMode": "RESPONSE_STREAM"}))
    conn, resp = open_url(fresh_server, uid, "/hang")
    assert resp.status == 200 and resp.read1(10) == b"x"
    assert fresh_server.stop() == 0
    with pytest.raises(http.client.IncompleteRead):
        resp.read()
    conn.close()
