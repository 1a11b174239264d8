"""Function URLs: the config API (boto3, the aws CLI) and the URLs themselves
on the edge port, called with raw HTTP (http.client) in the Host form
(<url-id>.lambda-url.<region>.localhost:<port>) and the path form
(/_ignis/url/<url-id>/...): payload format 2.0 events, response mapping,
errors, CORS and AWS_IAM auth.
"""
import base64
import http.client
import json
import re
import time

import botocore.auth
import botocore.awsrequest
import botocore.credentials
import pytest
from botocore.exceptions import ClientError

from conftest import ACCESS_KEY, REGION, ROLE, SECRET_KEY, Server, code, make_zip, unique

ECHO = code('''
import base64, json, time
def handler(event, context):
    path = event["rawPath"]
    if path == "/string":
        return "hello world"
    if path == "/dict":
        return {"a": 1, "b": [1, 2]}
    if path == "/error":
        raise ValueError("boom")
    if path == "/sleep":
        time.sleep(5)
    if path == "/split":
        return {"statusCode": 200, "headers": {"X-A": "v\\r\\nSet-Cookie: evil=1"}, "body": "x"}
    if path == "/noname":
        return {"statusCode": 200, "headers": {"": "v"}, "body": "x"}
    if path == "/badcookie":
        return {"statusCode": 200, "cookies": ["a=1\\r\\nX-Evil: 1"], "body": "x"}
    if path == "/binary":
        return {"statusCode": 200, "headers": {"content-type": "application/octet-stream"},
                "body": base64.b64encode(bytes(range(256))).decode(), "isBase64Encoded": True}
    if path == "/cookies":
        return {"statusCode": 201, "cookies": ["a=1; Path=/", "b=2"],
                "headers": {"X-Custom": "v", "content-type": "text/plain"}, "body": "made"}
    if path == "/len":
        body = event.get("body", "")
        data = base64.b64decode(body) if event["isBase64Encoded"] else body.encode()
        return {"statusCode": 200, "body": json.dumps({"len": len(data), "b64": event["isBase64Encoded"],
                                                         "head": data[:4].hex()})}
    return {"statusCode": 200, "headers": {"content-type": "application/json"},
            "body": json.dumps(event)}
''')


def client_error(excinfo):
    err = excinfo.value.response
    return err["ResponseMetadata"]["HTTPStatusCode"], err["Error"]["Code"], err["Error"].get("Message", "")


def url_id(cfg):
    m = re.fullmatch(r"http://([a-z0-9]{32})\.lambda-url\.us-east-1\.localhost:(\d+)/", cfg["FunctionUrl"])
    assert m, cfg["FunctionUrl"]
    return m.group(1)


def call(server, uid, method="GET", path="/", body=None, headers=None, form="host", timeout=60):
    """Raw HTTP to a function URL; returns (status, headers list, body bytes)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=timeout)
    hdrs = dict(headers or {})
    if form == "host":
        conn.putrequest(method, path, skip_host=True)
        conn.putheader("Host", f"{uid}.lambda-url.{REGION}.localhost:{server.port}")
    else:
        conn.putrequest(method, f"/_ignis/url/{uid}{path}")
    items = hdrs.items() if isinstance(hdrs, dict) else hdrs
    for k, v in items:
        conn.putheader(k, v)
    if body is not None:
        conn.putheader("Content-Length", str(len(body)))
    conn.endheaders(body)
    r = conn.getresponse()
    data = r.read()
    out = (r.status, r.getheaders(), data)
    conn.close()
    return out


def header(headers, name):
    vals = [v for k, v in headers if k.lower() == name.lower()]
    return vals[0] if vals else None


def event_of(resp):
    status, _, body = resp
    assert status == 200, resp
    return json.loads(body)


def signed_headers(server, uid, method, path, body=b"", secret=SECRET_KEY, form="host", service="lambda"):
    if form == "host":
        url = f"http://{uid}.lambda-url.{REGION}.localhost:{server.port}{path}"
    else:
        url = f"http://127.0.0.1:{server.port}/_ignis/url/{uid}{path}"
    req = botocore.awsrequest.AWSRequest(method=method, url=url, data=body)
    botocore.auth.SigV4Auth(botocore.credentials.Credentials(ACCESS_KEY, secret), service, REGION).add_auth(req)
    return [(k, v) for k, v in req.headers.items() if k.lower() != "host"]


@pytest.fixture
def echo(create_function):
    return create_function({"app.py": ECHO})


@pytest.fixture
def url(lam, echo):
    cfg = lam.create_function_url_config(FunctionName=echo, AuthType="NONE")
    return echo, url_id(cfg), cfg


# --- config API ---------------------------------------------------------------

def test_config_lifecycle(lam, server, echo):
    before = time.time()
    r = lam.create_function_url_config(
        FunctionName=echo, AuthType="NONE",
        Cors={"AllowOrigins": ["https://a.example"], "AllowMethods": ["GET", "POST"], "MaxAge": 60})
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 201
    uid = url_id(r)
    assert r["FunctionUrl"] == f"http://{uid}.lambda-url.{REGION}.localhost:{server.port}/"
    assert r["FunctionArn"] == f"arn:aws:lambda:{REGION}:000000000000:function:{echo}" or \
        r["FunctionArn"].endswith(":function:" + echo)
    assert r["AuthType"] == "NONE"
    assert r["Cors"] == {"AllowOrigins": ["https://a.example"], "AllowMethods": ["GET", "POST"], "MaxAge": 60}
    assert "LastModifiedTime" not in r
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", r["CreationTime"])
    assert r["CreationTime"][:4] == time.strftime("%Y", time.gmtime(before))

    g = lam.get_function_url_config(FunctionName=echo)
    assert g["FunctionUrl"] == r["FunctionUrl"] and g["AuthType"] == "NONE"
    assert g["CreationTime"] == r["CreationTime"] and g["LastModifiedTime"] == r["CreationTime"]

    u = lam.update_function_url_config(FunctionName=echo, AuthType="AWS_IAM", Cors={"AllowOrigins": ["*"]})
    assert u["AuthType"] == "AWS_IAM" and u["Cors"] == {"AllowOrigins": ["*"]}
    assert u["FunctionUrl"] == r["FunctionUrl"]  # the url-id is stable
    assert u["LastModifiedTime"] >= u["CreationTime"]

    listed = lam.list_function_url_configs(FunctionName=echo)["FunctionUrlConfigs"]
    assert [c["FunctionUrl"] for c in listed] == [r["FunctionUrl"]]
    assert listed[0]["AuthType"] == "AWS_IAM"

    d = lam.delete_function_url_config(FunctionName=echo)
    assert d["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(ClientError) as e:
        lam.get_function_url_config(FunctionName=echo)
    assert client_error(e) == (404, "ResourceNotFoundException", "The resource you requested does not exist.")
    assert lam.list_function_url_configs(FunctionName=echo)["FunctionUrlConfigs"] == []


def test_config_errors(lam, server, echo):
    with pytest.raises(ClientError) as e:
        lam.create_function_url_config(FunctionName="no-such-fn-" + unique(), AuthType="NONE")
    assert client_error(e) == (404, "ResourceNotFoundException", "Function does not exist")
    with pytest.raises(ClientError) as e:
        lam.create_function_url_config(FunctionName=echo, AuthType="BASIC")
    assert client_error(e)[:2] == (400, "ValidationException")
    assert "Member must satisfy enum value set: [NONE, AWS_IAM]" in client_error(e)[2]
    # a version number is no URL qualifier, nor an explicit $LATEST (as AWS)
    lam.publish_version(FunctionName=echo)
    with pytest.raises(ClientError) as e:
        lam.create_function_url_config(FunctionName=echo, AuthType="NONE", Qualifier="1")
    code_, err, msg = client_error(e)
    assert (code_, err) == (400, "ValidationException")
    assert msg.startswith("1 validation error detected: Value '1' at 'qualifier' failed to satisfy constraint")
    with pytest.raises(ClientError) as e:
        lam.create_function_url_config(FunctionName=echo, AuthType="NONE", Qualifier="$LATEST")
    assert client_error(e)[:2] == (400, "ValidationException")
    with pytest.raises(ClientError) as e:
        lam.create_function_url_config(FunctionName=echo, AuthType="NONE", Qualifier="nosuchalias")
    assert client_error(e) == (404, "ResourceNotFoundException", "Function does not exist")
    with pytest.raises(ClientError) as e:
        lam.create_function_url_config(FunctionName=echo, AuthType="NONE",
                                       Cors={"AllowMethods": ["OPTIONS"], "MaxAge": 10})
    assert client_error(e)[:2] == (400, "ValidationException")
    assert "cors.allowMethods" in client_error(e)[2]
    with pytest.raises(ClientError) as e:
        lam.create_function_url_config(FunctionName=echo, AuthType="NONE", Cors={"MaxAge": 86401})
    assert "cors.maxAge" in client_error(e)[2]

    lam.create_function_url_config(FunctionName=echo, AuthType="NONE")
    with pytest.raises(ClientError) as e:
        lam.create_function_url_config(FunctionName=echo, AuthType="NONE")
    arn = lam.get_function(FunctionName=echo)["Configuration"]["FunctionArn"]
    assert client_error(e) == (409, "ResourceConflictException",
                               f"Failed to create function url config for [functionArn = {arn}]. "
                               "Error message:  FunctionUrlConfig exists for this Lambda function")
    with pytest.raises(ClientError) as e:
        lam.update_function_url_config(FunctionName=echo, Qualifier="nosuchalias", AuthType="NONE")
    assert client_error(e) == (404, "ResourceNotFoundException", "Function does not exist")
    with pytest.raises(ClientError) as e:
        lam.delete_function_url_config(FunctionName=echo, Qualifier="nosuchalias")
    assert client_error(e) == (404, "ResourceNotFoundException", "The resource you requested does not exist.")
    with pytest.raises(ClientError) as e:
        lam.list_function_url_configs(FunctionName="no-such-fn-" + unique())
    assert client_error(e) == (404, "ResourceNotFoundException", "Function does not exist")


def test_response_stream_accepted(server, echo):
    """InvokeMode (which boto3 1.26 does not know) is stored and returned; serving it is
    test_streaming.py's."""
    body = json.dumps({"AuthType": "NONE", "InvokeMode": "RESPONSE_STREAM"}).encode()
    req = botocore.awsrequest.AWSRequest(
        method="POST", url=f"{server.url}/2021-10-31/functions/{echo}/url", data=body,
        headers={"Content-Type": "application/json"})
    botocore.auth.SigV4Auth(botocore.credentials.Credentials(ACCESS_KEY, SECRET_KEY), "lambda", REGION).add_auth(req)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("POST", f"/2021-10-31/functions/{echo}/url", body=body, headers=dict(req.headers))
    r = conn.getresponse()
    doc = json.loads(r.read())
    assert r.status == 201
    assert doc["InvokeMode"] == "RESPONSE_STREAM"


def test_aws_cli_create(server, echo):
    out = server.aws("lambda", "create-function-url-config", "--function-name", echo, "--auth-type", "NONE",
                     "--cors", '{"AllowOrigins":["*"]}')
    uid = url_id(out)
    assert out["Cors"] == {"AllowOrigins": ["*"]}
    assert event_of(call(server, uid, path="/hi"))["rawPath"] == "/hi"


# --- the URL: requests and events --------------------------------------------

@pytest.mark.parametrize("form", ["host", "path"])
@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "DELETE"])
def test_methods_and_event(server, url, form, method):
    _, uid, _ = url
    body = b'{"x": 1}' if method in ("POST", "PUT") else None
    hdrs = {"Content-Type": "application/json"} if body else {}
    ev = event_of(call(server, uid, method, "/some/path?a=1&b=two%20x", body=body, headers=hdrs, form=form))
    assert ev["version"] == "2.0" and ev["routeKey"] == "$default"
    assert ev["rawPath"] == "/some/path"
    assert ev["rawQueryString"] == "a=1&b=two%20x"
    assert ev["queryStringParameters"] == {"a": "1", "b": "two x"}
    rc = ev["requestContext"]
    assert rc["http"]["method"] == method and rc["http"]["path"] == "/some/path"
    assert rc["http"]["protocol"] == "HTTP/1.1" and rc["http"]["sourceIp"] == "127.0.0.1"
    assert rc["accountId"] == "anonymous" and rc["apiId"] == uid and rc["domainPrefix"] == uid
    assert rc["domainName"] == f"{uid}.lambda-url.{REGION}.localhost"
    assert rc["stage"] == "$default" and rc["routeKey"] == "$default"
    assert re.fullmatch(r"\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d \+0000", rc["time"])
    assert abs(rc["timeEpoch"] / 1000 - time.time()) < 60
    assert "authorizer" not in rc
    if body:
        assert ev["body"] == '{"x": 1}' and ev["isBase64Encoded"] is False
    else:
        assert "body" not in ev and ev["isBase64Encoded"] is False


def test_root_path_and_no_query(server, url):
    _, uid, _ = url
    for form in ("host", "path"):
        ev = event_of(call(server, uid, "GET", "/", form=form))
        assert ev["rawPath"] == "/" and ev["rawQueryString"] == ""
        assert "queryStringParameters" not in ev and "cookies" not in ev
    ev = event_of(call(server, uid, "GET", "", form="path"))
    assert ev["rawPath"] == "/"


def test_repeated_query_keys_headers_and_cookies(server, url):
    _, uid, _ = url
    ev = event_of(call(server, uid, "GET", "/q?k=1&k=2&flag&e=", headers=[
        ("X-Multi", "one"), ("x-multi", "two"), ("X-CaSe", "Value"),
        ("Cookie", "a=1; b=2"), ("User-Agent", "ignis-test/1")]))
    assert ev["rawQueryString"] == "k=1&k=2&flag&e="
    assert ev["queryStringParameters"] == {"k": "1,2", "flag": "", "e": ""}
    assert ev["headers"]["x-multi"] == "one,two"
    assert ev["headers"]["x-case"] == "Value"
    assert all(k == k.lower() for k in ev["headers"])
    assert ev["cookies"] == ["a=1", "b=2"]
    assert "cookie" not in ev["headers"]
    assert ev["requestContext"]["http"]["userAgent"] == "ignis-test/1"
    assert ev["headers"]["x-forwarded-proto"] == "http"


def test_cookies_and_headers_out(server, url):
    _, uid, _ = url
    status, headers, body = call(server, uid, "GET", "/cookies")
    assert status == 201 and body == b"made"
    assert [v for k, v in headers if k.lower() == "set-cookie"] == ["a=1; Path=/", "b=2"]
    assert header(headers, "X-Custom") == "v"
    assert header(headers, "Content-Type") == "text/plain"
    assert header(headers, "x-amzn-RequestId")


@pytest.mark.parametrize("path", ["/split", "/noname", "/badcookie"])
def test_response_headers_cannot_split_the_response(server, url, path):
    """A header name that is not a token, or a CR/LF in a value or cookie, makes
    the function's answer malformed: 502, nothing of it reaches the client."""
    _, uid, _ = url
    status, headers, body = call(server, uid, "GET", path)
    assert (status, body) == (502, b"Internal Server Error")
    assert not any(k.lower() in ("x-a", "x-evil") or "evil" in v for k, v in headers)


def test_binary_upload_and_download(server, url):
    _, uid, _ = url
    data = bytes(range(256)) * 4
    status, _, body = call(server, uid, "POST", "/len", body=data, headers={"Content-Type": "application/octet-stream"})
    assert status == 200 and json.loads(body) == {"len": 1024, "b64": True, "head": "00010203"}
    # no Content-Type is binary too; text types are not
    assert json.loads(call(server, uid, "POST", "/len", body=b"abc")[2])["b64"] is True
    assert json.loads(call(server, uid, "POST", "/len", body=b"abc",
                           headers={"Content-Type": "text/plain; charset=utf-8"})[2])["b64"] is False
    status, headers, body = call(server, uid, "GET", "/binary")
    assert status == 200 and body == bytes(range(256))
    assert header(headers, "Content-Type") == "application/octet-stream"


def test_five_megabyte_body(server, url):
    _, uid, _ = url
    data = b"x" * (5 * 1024 * 1024)
    status, _, body = call(server, uid, "POST", "/len", body=data, headers={"Content-Type": "text/plain"})
    assert status == 200, body[:300]
    assert json.loads(body)["len"] == len(data)
    status, headers, body = call(server, uid, "POST", "/len", body=b"x" * (6291456 + 1),
                                 headers={"Content-Type": "text/plain"})
    assert status == 413


def test_inferred_responses(server, url):
    _, uid, _ = url
    status, headers, body = call(server, uid, "GET", "/string")
    assert (status, body) == (200, b"hello world")
    assert header(headers, "Content-Type") == "application/json"
    status, headers, body = call(server, uid, "GET", "/dict")
    assert status == 200 and json.loads(body) == {"a": 1, "b": [1, 2]}
    assert header(headers, "Content-Type") == "application/json"


def test_function_error_and_timeout(server, lam, create_function, url):
    _, uid, _ = url
    status, headers, body = call(server, uid, "GET", "/error")
    assert (status, body) == (502, b"Internal Server Error")
    slow = create_function({"app.py": ECHO}, Timeout=1)
    sid = url_id(lam.create_function_url_config(FunctionName=slow, AuthType="NONE"))
    t0 = time.time()
    status, _, body = call(server, sid, "GET", "/sleep")
    assert (status, body) == (502, b"Internal Server Error")
    assert time.time() - t0 < 4


def test_throttled(server, lam, url):
    name, uid, _ = url
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
    status, headers, body = call(server, uid, "GET", "/")
    assert status == 429
    assert json.loads(body) == {"Message": "Rate Exceeded."}
    lam.delete_function_concurrency(FunctionName=name)
    assert call(server, uid, "GET", "/")[0] == 200


def test_unknown_and_deleted_url(server, lam, url):
    name, uid, _ = url
    for form in ("host", "path"):
        status, headers, body = call(server, "a" * 32, "GET", "/", form=form)
        assert status == 403 and json.loads(body) == {"Message": None}
        assert header(headers, "x-amzn-ErrorType") == "AccessDeniedException"
    assert call(server, uid, "GET", "/")[0] == 200
    lam.delete_function_url_config(FunctionName=name)
    for form in ("host", "path"):
        status, _, body = call(server, uid, "GET", "/", form=form)
        assert status == 403 and json.loads(body) == {"Message": None}


def test_alias_url(server, lam, echo):
    lam.publish_version(FunctionName=echo)
    lam.create_alias(FunctionName=echo, Name="live", FunctionVersion="1")
    cfg = lam.create_function_url_config(FunctionName=echo, AuthType="NONE", Qualifier="live")
    assert cfg["FunctionArn"].endswith(f":function:{echo}:live")
    uid = url_id(cfg)
    assert lam.get_function_url_config(FunctionName=echo, Qualifier="live")["FunctionUrl"] == cfg["FunctionUrl"]
    with pytest.raises(ClientError):
        lam.get_function_url_config(FunctionName=echo)  # $LATEST has none
    status, _, body = call(server, uid, "GET", "/x")
    assert status == 200 and json.loads(body)["rawPath"] == "/x"
    lam.delete_alias(FunctionName=echo, Name="live")  # the URL goes with its alias
    assert lam.list_function_url_configs(FunctionName=echo)["FunctionUrlConfigs"] == []
    assert call(server, uid, "GET", "/")[0] == 403


# --- CORS --------------------------------------------------------------------

def test_cors(server, lam, echo):
    cfg = lam.create_function_url_config(
        FunctionName=echo, AuthType="NONE",
        Cors={"AllowOrigins": ["https://app.example"], "AllowMethods": ["GET", "POST"],
              "AllowHeaders": ["x-custom"], "ExposeHeaders": ["x-out"], "MaxAge": 300,
              "AllowCredentials": True})
    uid = url_id(cfg)
    status, headers, body = call(server, uid, "OPTIONS", "/", headers={
        "Origin": "https://app.example", "Access-Control-Request-Method": "POST"})
    assert status == 200 and body == b""
    assert header(headers, "Access-Control-Allow-Origin") == "https://app.example"
    assert header(headers, "Access-Control-Allow-Methods") == "GET,POST"
    assert header(headers, "Access-Control-Allow-Headers") == "x-custom"
    assert header(headers, "Access-Control-Max-Age") == "300"
    assert header(headers, "Access-Control-Allow-Credentials") == "true"
    # an origin not allowed gets no CORS headers
    status, headers, _ = call(server, uid, "OPTIONS", "/", headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
    assert header(headers, "Access-Control-Allow-Origin") is None
    # actual requests carry them too
    status, headers, _ = call(server, uid, "GET", "/", headers={"Origin": "https://app.example"})
    assert status == 200
    assert header(headers, "Access-Control-Allow-Origin") == "https://app.example"
    assert header(headers, "Access-Control-Expose-Headers") == "x-out"
    status, headers, _ = call(server, uid, "GET", "/")
    assert header(headers, "Access-Control-Allow-Origin") is None
    lam.update_function_url_config(FunctionName=echo, Cors={"AllowOrigins": ["*"]})
    status, headers, _ = call(server, uid, "GET", "/", headers={"Origin": "https://any.example"})
    assert header(headers, "Access-Control-Allow-Origin") == "*"


# --- AWS_IAM -------------------------------------------------------------------

@pytest.mark.parametrize("form", ["host", "path"])
def test_iam_auth(server, lam, echo, form):
    uid = url_id(lam.create_function_url_config(FunctionName=echo, AuthType="AWS_IAM"))
    forbidden = {"Message": "Forbidden. For troubleshooting Function URL authorization issues, see: "
                            "https://docs.aws.amazon.com/lambda/latest/dg/urls-auth.html"}
    status, headers, body = call(server, uid, "GET", "/p?x=1", form=form)
    assert status == 403 and json.loads(body) == forbidden
    assert header(headers, "x-amzn-ErrorType") == "AccessDeniedException"

    hdrs = signed_headers(server, uid, "GET", "/p?x=1", form=form)
    status, _, body = call(server, uid, "GET", "/p?x=1", headers=hdrs, form=form)
    assert status == 200, body
    ev = json.loads(body)
    assert ev["requestContext"]["authorizer"]["iam"]["accessKey"] == ACCESS_KEY
    assert ev["requestContext"]["accountId"] != "anonymous"

    data = b'{"signed": true}'
    hdrs = signed_headers(server, uid, "POST", "/p", body=data, form=form) + [("Content-Type", "application/json")]
    status, _, body = call(server, uid, "POST", "/p", body=data, headers=hdrs, form=form)
    assert status == 200 and json.loads(body)["body"] == '{"signed": true}'
    # the signature covers the body
    status, _, _ = call(server, uid, "POST", "/p", body=b'{"signed": false}', headers=hdrs, form=form)
    assert status == 403

    hdrs = signed_headers(server, uid, "GET", "/p", secret="wrong-secret", form=form)
    status, _, body = call(server, uid, "GET", "/p", headers=hdrs, form=form)
    assert status == 403 and json.loads(body) == forbidden
    hdrs = signed_headers(server, uid, "GET", "/p", form=form, service="s3")
    assert call(server, uid, "GET", "/p", headers=hdrs, form=form)[0] == 403


# --- persistence ---------------------------------------------------------------

def test_config_survives_restart(fresh_server):
    lam = fresh_server.client("lambda")
    name = unique()
    lam.create_function(FunctionName=name, Runtime="python3.11", Handler="app.handler", Role=ROLE,
                        Code={"ZipFile": make_zip({"app.py": ECHO})})
    cfg = lam.create_function_url_config(FunctionName=name, AuthType="NONE", Cors={"AllowOrigins": ["*"]})
    uid = url_id(cfg)
    fresh_server.restart()
    lam = fresh_server.client("lambda")
    got = lam.get_function_url_config(FunctionName=name)
    assert got["FunctionUrl"] == cfg["FunctionUrl"] and got["Cors"] == {"AllowOrigins": ["*"]}
    assert got["CreationTime"] == cfg["CreationTime"]
    assert event_of(call(fresh_server, uid, "GET", "/after"))["rawPath"] == "/after"
