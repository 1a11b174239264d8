"""SigV4 authentication at the edge, as AWS Lambda answers it: wrong secret,
unknown key, no signature, stale or future X-Amz-Date, tampered requests, and
valid signatures over percent-encoded ARN paths."""
import base64
import contextlib
import datetime
import http.client
import json
import types
import urllib.error
import urllib.request
from unittest import mock

import botocore.auth
import botocore.config
import pytest
from botocore import UNSIGNED
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from conftest import ACCESS_KEY, REGION, ROLE, SECRET_KEY, make_zip, unique

ECHO = {"app.py": "def handler(event, context):\n    return event\n"}
UNKNOWN_KEY = "AKIAIGNISUNKNOWN0009"


def check_error(exc, code, status, message=None, contains=()):
    err = exc.response["Error"]
    meta = exc.response["ResponseMetadata"]
    assert err["Code"] == code, exc.response
    assert meta["HTTPStatusCode"] == status, exc.response
    assert meta["HTTPHeaders"].get("x-amzn-errortype", "").split(":")[0] == code, meta
    if message is not None:
        assert err["Message"] == message
    for part in contains:
        assert part in err["Message"], err["Message"]


def expect_error(call, code, status, message=None, contains=()):
    with pytest.raises(ClientError) as ei:
        call()
    check_error(ei.value, code, status, message, contains)


def send(server, method, path, body=b"", headers=None):
    """Sends exactly this request; returns (status, lower-case headers, JSON or None)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        raw = resp.read()
        hdrs = {k.lower(): v for k, v in resp.getheaders()}
    finally:
        conn.close()
    try:
        doc = json.loads(raw) if raw.strip() else None
    except ValueError:
        doc = raw
    return resp.status, hdrs, doc


def sign(server, method, path, body=b"", headers=None, key=ACCESS_KEY, secret=SECRET_KEY):
    """Returns the headers botocore's SigV4 signer produces for this request."""
    req = AWSRequest(method=method, url=server.url + path, data=body,
                     headers=dict(headers or {}))
    SigV4Auth(Credentials(key, secret), "lambda", REGION).add_auth(req)
    return dict(req.headers.items())


def error_type(headers):
    return headers.get("x-amzn-errortype", "").split(":")[0]


def message_of(doc):
    return doc.get("message") or doc.get("Message") if isinstance(doc, dict) else None


@contextlib.contextmanager
def skewed_clock(delta):
    """Patches botocore's signers' clock (the pure-Python one and, when awscrt
    is installed, the CRT one boto3 then uses) to now + delta."""
    fixed = datetime.datetime.utcnow() + delta

    class Clock(datetime.datetime):
        @classmethod
        def utcnow(cls):
            return fixed

    fake = types.SimpleNamespace(datetime=Clock, timedelta=datetime.timedelta,
                                 timezone=datetime.timezone)
    modules = [botocore.auth]
    try:
        from botocore.crt import auth as crt_auth
        modules.append(crt_auth)
    except ImportError:
        pass
    with contextlib.ExitStack() as stack:
        for m in modules:
            stack.enter_context(mock.patch.object(m, "datetime", fake))
        yield


def create_body(name):
    return json.dumps({"FunctionName": name, "Runtime": "python3.11",
                       "Handler": "app.handler", "Role": ROLE,
                       "Code": {"ZipFile": base64.b64encode(make_zip(ECHO)).decode()}}).encode()


def assert_missing(lam, name):
    with pytest.raises(ClientError) as ei:
        lam.get_function(FunctionName=name)
    assert ei.value.response["Error"]["Code"] == "ResourceNotFoundException"


# wrong credentials ------------------------------------------------------------

def test_wrong_secret_is_invalid_signature(server, lam):
    bad = server.client("lambda", secret="not-the-" + SECRET_KEY)
    expect_error(bad.list_functions, "InvalidSignatureException", 403,
                 contains=["The request signature we calculated does not match the signature "
                           "you provided."])
    name = unique("badsig")
    expect_error(lambda: bad.create_function(
        FunctionName=name, Runtime="python3.11", Handler="app.handler", Role=ROLE,
        Code={"ZipFile": make_zip(ECHO)}), "InvalidSignatureException", 403)
    assert_missing(lam, name)
    p = server.aws("lambda", "list-functions", check=False, parse=False,
                   env={"AWS_SECRET_ACCESS_KEY": "wrong-secret"})
    assert p.returncode == 254
    assert "(InvalidSignatureException)" in p.stderr


def test_unknown_access_key_is_unrecognized_client(server, lam, create_function):
    name = create_function(ECHO)
    bad = server.client("lambda", key=UNKNOWN_KEY)
    msg = "The security token included in the request is invalid."
    expect_error(bad.list_functions, "UnrecognizedClientException", 403, msg)
    expect_error(lambda: bad.get_function(FunctionName=name), "UnrecognizedClientException",
                 403, msg)
    expect_error(lambda: bad.invoke(FunctionName=name, Payload=b"{}"),
                 "UnrecognizedClientException", 403, msg)
    expect_error(lambda: bad.delete_function(FunctionName=name),
                 "UnrecognizedClientException", 403, msg)
    assert lam.get_function(FunctionName=name)["Configuration"]["FunctionName"] == name
    p = server.aws("lambda", "list-functions", check=False, parse=False,
                   env={"AWS_ACCESS_KEY_ID": UNKNOWN_KEY})
    assert p.returncode == 254
    assert "(UnrecognizedClientException)" in p.stderr


# no signature -------------------------------------------------------------------

def test_unsigned_list_is_missing_authentication_token(server):
    with pytest.raises(urllib.error.HTTPError) as ei:
        urllib.request.urlopen(server.url + "/2015-03-31/functions/", timeout=10)
    e = ei.value
    assert e.code == 403
    assert error_type(dict((k.lower(), v) for k, v in e.headers.items())) == \
        "MissingAuthenticationTokenException"
    doc = json.loads(e.read())
    assert message_of(doc) == "Missing Authentication Token"


def test_unsigned_create_and_invoke_refused(server, lam, create_function):
    name = unique("unsigned")
    status, headers, doc = send(server, "POST", "/2015-03-31/functions", create_body(name),
                                {"Content-Type": "application/json"})
    assert status == 403
    assert error_type(headers) == "MissingAuthenticationTokenException"
    assert_missing(lam, name)
    existing = create_function(ECHO)
    status, headers, _ = send(server, "POST",
                              f"/2015-03-31/functions/{existing}/invocations", b"{}")
    assert status == 403
    assert error_type(headers) == "MissingAuthenticationTokenException"
    status, headers, _ = send(server, "DELETE", f"/2015-03-31/functions/{existing}")
    assert status == 403
    assert lam.get_function(FunctionName=existing)


def test_unsigned_boto3_client(server):
    import boto3
    c = boto3.client("lambda", endpoint_url=server.url, region_name=REGION,
                     config=botocore.config.Config(signature_version=UNSIGNED,
                                                   retries={"max_attempts": 0}))
    expect_error(c.list_functions, "MissingAuthenticationTokenException", 403,
                 "Missing Authentication Token")


def test_malformed_authorization_header(server):
    status, headers, _ = send(server, "GET", "/2015-03-31/functions/", headers={
        "Authorization": "AWS4-HMAC-SHA256 garbage",
        "X-Amz-Date": datetime.datetime.utcnow().strftime("%Y%m%dT%H%M%SZ")})
    assert status == 403
    assert error_type(headers) in ("IncompleteSignatureException",
                                   "InvalidSignatureException")


# clock skew ----------------------------------------------------------------------

def test_x_amz_date_20_minutes_old_is_refused(server, lam):
    c = server.client("lambda")
    with skewed_clock(-datetime.timedelta(minutes=20)):
        expect_error(c.list_functions, "InvalidSignatureException", 403,
                     contains=["Signature expired"])
        name = unique("old")
        expect_error(lambda: c.create_function(
            FunctionName=name, Runtime="python3.11", Handler="app.handler", Role=ROLE,
            Code={"ZipFile": make_zip(ECHO)}), "InvalidSignatureException", 403)
    assert_missing(lam, name)
    # the same client with the right clock works
    assert "Functions" in c.list_functions()


def test_x_amz_date_20_minutes_ahead_is_refused(server):
    c = server.client("lambda")
    with skewed_clock(datetime.timedelta(minutes=20)):
        expect_error(c.list_functions, "InvalidSignatureException", 403,
                     contains=["Signature not yet current"])


@pytest.mark.parametrize("minutes", [-10, 10])
def test_x_amz_date_within_15_minutes_is_accepted(server, minutes):
    c = server.client("lambda")
    with skewed_clock(datetime.timedelta(minutes=minutes)):
        r = c.list_functions(MaxItems=1)
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 200


# tampering -----------------------------------------------------------------------

def test_body_changed_after_signing_is_refused(server, lam):
    name = unique("tamper")
    signed_body = create_body(unique("other"))
    headers = sign(server, "POST", "/2015-03-31/functions", signed_body,
                   {"Content-Type": "application/json"})
    status, got, _ = send(server, "POST", "/2015-03-31/functions", create_body(name), headers)
    assert status == 403
    assert error_type(got) == "InvalidSignatureException"
    assert_missing(lam, name)


def test_query_or_path_changed_after_signing_is_refused(server, create_function):
    a = create_function(ECHO)
    b = create_function(ECHO)
    headers = sign(server, "GET", "/2015-03-31/functions/?MaxItems=1")
    status, got, _ = send(server, "GET", "/2015-03-31/functions/?MaxItems=2", b"", headers)
    assert status == 403 and error_type(got) == "InvalidSignatureException"
    # the untouched request goes through
    status, _, doc = send(server, "GET", "/2015-03-31/functions/?MaxItems=1", b"", headers)
    assert status == 200 and len(doc["Functions"]) == 1
    headers = sign(server, "GET", f"/2015-03-31/functions/{a}")
    status, got, _ = send(server, "GET", f"/2015-03-31/functions/{b}", b"", headers)
    assert status == 403 and error_type(got) == "InvalidSignatureException"
    status, _, doc = send(server, "GET", f"/2015-03-31/functions/{a}", b"", headers)
    assert status == 200 and doc["Configuration"]["FunctionName"] == a


def test_signed_header_changed_after_signing_is_refused(server, create_function):
    name = create_function(ECHO)
    path = f"/2015-03-31/functions/{name}/invocations"
    headers = sign(server, "POST", path, b"{}", {"X-Amz-Invocation-Type": "RequestResponse"})
    headers["X-Amz-Invocation-Type"] = "Event"
    status, got, _ = send(server, "POST", path, b"{}", headers)
    assert status == 403 and error_type(got) == "InvalidSignatureException"


# percent-encoded ARN paths -------------------------------------------------------

def test_arn_in_path_percent_encoded_by_clients(server, lam, create_function):
    name = create_function(ECHO)
    arn = lam.get_function_configuration(FunctionName=name)["FunctionArn"]
    account = arn.split(":")[4]
    # boto3 sends /2015-03-31/functions/arn%3Aaws%3Alambda%3A... and signs it
    # (the canonical URI encodes it once more, %253A).
    for ref in (arn, f"{account}:function:{name}", f"{name}:$LATEST", f"{arn}:$LATEST"):
        got = lam.get_function(FunctionName=ref)
        assert got["Configuration"]["FunctionName"] == name, ref
        r = lam.invoke(FunctionName=ref, Payload=b'{"via": "arn"}')
        assert json.loads(r["Payload"].read()) == {"via": "arn"}
    assert lam.list_tags(Resource=arn)["Tags"] == {}
    lam.tag_resource(Resource=arn, Tags={"k": "v"})
    assert lam.list_tags(Resource=arn)["Tags"] == {"k": "v"}
    got = server.aws("lambda", "get-function", "--function-name", arn)
    assert got["Configuration"]["FunctionArn"] == arn
    got = server.aws("lambda", "list-tags", "--resource", arn)
    assert got["Tags"] == {"k": "v"}


@pytest.mark.parametrize("encode", [True, False], ids=["encoded", "literal-colons"])
def test_raw_signed_arn_path(server, lam, create_function, encode):
    name = create_function(ECHO)
    arn = lam.get_function_configuration(FunctionName=name)["FunctionArn"]
    seg = arn.replace(":", "%3A") if encode else arn
    path = f"/2015-03-31/functions/{seg}/configuration"
    headers = sign(server, "GET", path)
    status, _, doc = send(server, "GET", path, b"", headers)
    assert status == 200, doc
    assert doc["FunctionName"] == name


def test_declared_body_hash_is_checked_against_the_body(server, create_function):
    """x-amz-content-sha256 is covered by the signature, so a request signed for
    one body must not be accepted with another body and the old hash."""
    import hashlib
    name = create_function({"app.py": "def handler(event, context):\n    return event\n"})
    path = f"/2015-03-31/functions/{name}/invocations"
    signed_body = b'{"amount": 1}'
    declared = hashlib.sha256(signed_body).hexdigest()
    headers = sign(server, "POST", path, signed_body, {"x-amz-content-sha256": declared})
    assert "x-amz-content-sha256" in headers["Authorization"]

    status, _, doc = send(server, "POST", path, signed_body, headers)
    assert status == 200 and doc == {"amount": 1}      # the honest request works

    status, hdrs, doc = send(server, "POST", path, b'{"amount": 1000000}', headers)
    assert status == 403, (status, doc)
    assert error_type(hdrs) == "InvalidSignatureException"
