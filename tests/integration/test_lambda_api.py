"""Lambda control plane (CreateFunction ... ListTags), persistence and clean
shutdown, driven through boto3, the real aws CLI and raw signed HTTP.

The expected behaviour is AWS Lambda's. The botocore on this machine is old
and drops response members its model lacks (LoggingConfig, ...), so those are
checked on the raw JSON of a SigV4-signed request.
"""
import base64
import hashlib
import http.client
import json
import os
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import io

import botocore.config
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from conftest import (ACCESS_KEY, REGION, ROLE, SECRET_KEY, instance_gone, instance_pids,
                      make_zip, unique)

ECHO = {"app.py": "def handler(event, context):\n    return event\n"}

# A function whose behaviour shows which code, handler and configuration run.
PROBE_SRC = """import os
VERSION = {version!r}

def handler(event, context):
    return {{"version": VERSION, "handler": "handler"}}

def other(event, context):
    return {{
        "version": VERSION,
        "handler": "other",
        "greeting": os.environ.get("GREETING"),
        "memory": context.memory_limit_in_mb,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "function_name": context.function_name,
    }}
"""


def probe(version):
    return {"app.py": PROBE_SRC.format(version=version)}


ARN_RE = re.compile(r"^arn:aws:lambda:us-east-1:(\d{12}):function:([A-Za-z0-9_-]+)$")
LAST_MODIFIED_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}\+0000$")
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


# helpers -------------------------------------------------------------------

def b64sha256(data):
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def signed(server, method, path, body=None, headers=None):
    """Sends a SigV4-signed request for service lambda; returns
    (status, {lower-case header: value}, parsed JSON body or None)."""
    if isinstance(body, (dict, list)):
        data = json.dumps(body).encode()
    else:
        data = body or b""
    hdrs = dict(headers or {})
    if data and not any(k.lower() == "content-type" for k in hdrs):
        hdrs["Content-Type"] = "application/json"
    req = AWSRequest(method=method, url=server.url + path, data=data, headers=hdrs)
    SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "lambda", REGION).add_auth(req)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        conn.request(method, path, body=data, headers=dict(req.headers.items()))
        resp = conn.getresponse()
        raw = resp.read()
        got = {k.lower(): v for k, v in resp.getheaders()}
    finally:
        conn.close()
    return resp.status, got, (json.loads(raw) if raw.strip() else None)


def raw_create(server, name, files=ECHO, **params):
    body = {"FunctionName": name, "Runtime": "python3.11", "Handler": "app.handler",
            "Role": ROLE, "Code": {"ZipFile": base64.b64encode(make_zip(files)).decode()}}
    body.update(params)
    return signed(server, "POST", "/2015-03-31/functions", body)


def quiet_client(server):
    """boto3 client without client-side parameter validation, so out-of-range
    values reach the daemon as they would from any other SDK."""
    import boto3
    cfg = botocore.config.Config(retries={"max_attempts": 0}, parameter_validation=False,
                                 read_timeout=60, connect_timeout=5)
    return boto3.client("lambda", endpoint_url=server.url, region_name=REGION,
                        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
                        config=cfg)


def check_error(exc, code, status, message=None, contains=()):
    """Checks a ClientError's code, HTTP status, x-amzn-ErrorType header and message."""
    err = exc.response["Error"]
    meta = exc.response["ResponseMetadata"]
    assert err["Code"] == code, exc.response
    assert meta["HTTPStatusCode"] == status, exc.response
    header = meta["HTTPHeaders"].get("x-amzn-errortype", "")
    assert header.split(":")[0] == code, meta["HTTPHeaders"]
    if message is not None:
        assert err["Message"] == message
    for part in contains:
        assert part in err["Message"], err["Message"]
    return err["Message"]


def expect_error(call, code, status, message=None, contains=()):
    with pytest.raises(ClientError) as ei:
        call()
    return check_error(ei.value, code, status, message, contains)


def account_of(lam, name):
    arn = lam.get_function_configuration(FunctionName=name)["FunctionArn"]
    return ARN_RE.match(arn).group(1)


def not_found_message(account, name):
    return f"Function not found: arn:aws:lambda:us-east-1:{account}:function:{name}"


def invoke(lam, name, event=None):
    r = lam.invoke(FunctionName=name, Payload=json.dumps(event if event is not None else {}))
    body = r["Payload"].read()
    assert r["StatusCode"] == 200, r
    assert "FunctionError" not in r, body
    return json.loads(body)


def assert_missing(lam, name):
    with pytest.raises(ClientError) as ei:
        lam.get_function(FunctionName=name)
    assert ei.value.response["Error"]["Code"] == "ResourceNotFoundException"


def list_all_names(lam):
    names = []
    for page in lam.get_paginator("list_functions").paginate():
        names += [f["FunctionName"] for f in page["Functions"]]
    return names


def write_zip(tmp_path, files, name="code.zip"):
    data = make_zip(files)
    path = tmp_path / name
    path.write_bytes(data)
    return data, f"fileb://{path}"


def wait_updated(lam, name, timeout=10):
    deadline = time.time() + timeout
    while True:
        c = lam.get_function_configuration(FunctionName=name)
        if c.get("LastUpdateStatus") == "Successful" and c.get("State") == "Active":
            return c
        assert time.time() < deadline, c
        time.sleep(0.05)


def fetch(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.status, r.read()


# CreateFunction --------------------------------------------------------------

def test_create_raw_response_has_every_zip_function_field(server, lam):
    name = unique("create")
    files = ECHO
    zip_bytes = make_zip(files)
    body = {"FunctionName": name, "Runtime": "python3.11", "Handler": "app.handler",
            "Role": ROLE, "Code": {"ZipFile": base64.b64encode(zip_bytes).decode()}}
    status, headers, doc = signed(server, "POST", "/2015-03-31/functions", body)
    try:
        assert status == 201, doc
        assert headers.get("content-type", "").startswith("application/json")
        assert UUID_RE.match(headers.get("x-amzn-requestid", "")), headers
        assert doc["FunctionName"] == name
        m = ARN_RE.match(doc["FunctionArn"])
        assert m and m.group(2) == name, doc["FunctionArn"]
        assert doc["Runtime"] == "python3.11"
        assert doc["Role"] == ROLE
        assert doc["Handler"] == "app.handler"
        assert doc["CodeSize"] == len(zip_bytes)
        assert doc["CodeSha256"] == b64sha256(zip_bytes)
        assert doc["Description"] == ""
        assert doc["Timeout"] == 3
        assert doc["MemorySize"] == 128
        assert LAST_MODIFIED_RE.match(doc["LastModified"]), doc["LastModified"]
        assert doc["Version"] == "$LATEST"
        assert doc["TracingConfig"] == {"Mode": "PassThrough"}
        assert UUID_RE.match(doc["RevisionId"]), doc["RevisionId"]
        assert doc["State"] == "Pending"
        assert doc["StateReason"] == "The function is being created."
        assert doc["StateReasonCode"] == "Creating"
        assert doc["PackageType"] == "Zip"
        assert doc["Architectures"] == ["x86_64"]
        assert doc["EphemeralStorage"] == {"Size": 512}
        assert doc["LoggingConfig"] == {"LogFormat": "Text", "LogGroup": f"/aws/lambda/{name}"}
        # not set, so not returned
        assert "Environment" not in doc
    finally:
        lam.delete_function(FunctionName=name)


def test_create_with_boto3_sets_every_parameter(lam, create_function):
    name = unique("params")
    zip_bytes = make_zip(probe("v1"))
    r = lam.create_function(
        FunctionName=name, Runtime="python3.12", Handler="app.other", Role=ROLE,
        Code={"ZipFile": zip_bytes}, Timeout=42, MemorySize=512,
        Environment={"Variables": {"GREETING": "hello", "EMPTY": ""}},
        Description="a test function", Tags={"team": "core", "cost-center": "42"})
    try:
        assert r["ResponseMetadata"]["HTTPStatusCode"] == 201
        assert r["Timeout"] == 42
        assert r["MemorySize"] == 512
        assert r["Runtime"] == "python3.12"
        assert r["Handler"] == "app.other"
        assert r["Description"] == "a test function"
        assert r["Environment"] == {"Variables": {"GREETING": "hello", "EMPTY": ""}}
        assert r["CodeSize"] == len(zip_bytes)
        assert r["CodeSha256"] == b64sha256(zip_bytes)

        got = lam.get_function(FunctionName=name)
        c = got["Configuration"]
        assert c["State"] == "Active" and c["LastUpdateStatus"] == "Successful"
        for key in ("Timeout", "MemorySize", "Environment", "Description", "Handler",
                    "Runtime", "CodeSha256", "CodeSize", "RevisionId", "FunctionArn"):
            assert c[key] == r[key], key
        assert got["Tags"] == {"team": "core", "cost-center": "42"}
        out = invoke(lam, name)
        assert out["greeting"] == "hello"
        assert out["memory"] == "512" or out["memory"] == 512
        assert out["remaining_ms"] > 30000
    finally:
        lam.delete_function(FunctionName=name)


def test_create_with_cli_then_wait_function_active(server, lam, tmp_path):
    name = unique("cli")
    zip_bytes, ref = write_zip(tmp_path, ECHO)
    r = server.aws("lambda", "create-function", "--function-name", name, "--runtime",
                   "python3.11", "--handler", "app.handler", "--role", ROLE, "--zip-file", ref,
                   "--timeout", "7", "--memory-size", "256", "--description", "from the cli",
                   "--environment", "Variables={COLOR=blue}", "--tags", "owner=cli")
    try:
        assert r["FunctionName"] == name
        assert r["State"] == "Pending"
        assert r["StateReasonCode"] == "Creating"
        assert r["CodeSha256"] == b64sha256(zip_bytes)
        assert r["CodeSize"] == len(zip_bytes)
        assert r["Timeout"] == 7 and r["MemorySize"] == 256
        assert r["Environment"] == {"Variables": {"COLOR": "blue"}}
        t0 = time.time()
        p = server.aws("lambda", "wait", "function-active-v2", "--function-name", name,
                       parse=False)
        assert p.returncode == 0, p.stderr
        assert time.time() - t0 < 10
        got = server.aws("lambda", "get-function", "--function-name", name)
        assert got["Configuration"]["State"] == "Active"
        assert got["Configuration"]["LastUpdateStatus"] == "Successful"
        assert got["Tags"] == {"owner": "cli"}
        assert got["Code"]["RepositoryType"] == "S3"
        assert invoke(lam, name, {"x": 1}) == {"x": 1}
    finally:
        lam.delete_function(FunctionName=name)


@pytest.mark.parametrize("field,value", [("Timeout", 1), ("Timeout", 900),
                                         ("MemorySize", 128), ("MemorySize", 10240)])
def test_create_accepts_limits(lam, create_function, field, value):
    name = create_function(ECHO, **{field: value})
    assert lam.get_function_configuration(FunctionName=name)[field] == value


def test_create_function_name_as_arn_stores_plain_name(lam, create_function):
    name = unique("byarn")
    other = create_function(ECHO)
    account = account_of(lam, other)
    arn = f"arn:aws:lambda:us-east-1:{account}:function:{name}"
    r = lam.create_function(FunctionName=arn, Runtime="python3.11", Handler="app.handler",
                            Role=ROLE, Code={"ZipFile": make_zip(ECHO)})
    try:
        assert r["FunctionName"] == name
        assert r["FunctionArn"] == arn
        assert lam.get_function(FunctionName=name)["Configuration"]["FunctionArn"] == arn
    finally:
        lam.delete_function(FunctionName=name)


# GetFunction / Code.Location -----------------------------------------------

def test_get_function_shape_and_configuration_match(lam, create_function):
    name = create_function(ECHO, Description="desc")
    got = lam.get_function(FunctionName=name)
    conf = lam.get_function_configuration(FunctionName=name)
    c = got["Configuration"]
    assert set(got) >= {"Configuration", "Code"}
    assert "Tags" not in got  # no tags set
    assert got["Code"]["RepositoryType"] == "S3"
    assert got["Code"]["Location"].startswith("http")
    for d in (c, conf):
        d.pop("ResponseMetadata", None)
    assert c == conf
    assert c["State"] == "Active"
    assert c["LastUpdateStatus"] == "Successful"
    assert "StateReasonCode" not in c
    assert c["Description"] == "desc"


def test_get_function_raw_configuration_has_logging_config(server, create_function):
    name = create_function(ECHO)
    status, _, doc = signed(server, "GET", f"/2015-03-31/functions/{name}")
    assert status == 200
    assert doc["Configuration"]["LoggingConfig"] == {"LogFormat": "Text",
                                                     "LogGroup": f"/aws/lambda/{name}"}
    status, _, conf = signed(server, "GET", f"/2015-03-31/functions/{name}/configuration")
    assert status == 200
    assert conf == doc["Configuration"]


def test_code_location_downloads_exact_zip_without_auth(lam, create_function):
    files = {"app.py": ECHO["app.py"], "data/blob.bin": os.urandom(3000)}
    name = create_function(files)
    zip_bytes = make_zip(files)  # make_zip is deterministic: the bytes uploaded
    got = lam.get_function(FunctionName=name)
    loc = got["Code"]["Location"]
    assert urllib.parse.urlsplit(loc).scheme in ("http", "https")
    status, data = fetch(loc)  # plain urllib, no credentials
    assert status == 200
    assert data == zip_bytes
    assert b64sha256(data) == got["Configuration"]["CodeSha256"]
    assert len(data) == got["Configuration"]["CodeSize"]


def _tamper(url, **changes):
    parts = urllib.parse.urlsplit(url)
    q = dict(urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
    for k, v in changes.items():
        if v is None:
            q.pop(k, None)
        else:
            q[k] = v
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(q)))


def test_code_location_tampered_or_expired_is_refused(lam, create_function):
    a = create_function(ECHO)
    b = create_function({"app.py": "def handler(e, c):\n    return 2\n"})
    loc = lam.get_function(FunctionName=a)["Code"]["Location"]
    loc_b = lam.get_function(FunctionName=b)["Code"]["Location"]
    q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(loc).query))
    sig = next(v for k, v in q.items() if "signature" in k.lower())
    sig_key = next(k for k in q if "signature" in k.lower())
    exp_key = next((k for k in q if "expires" in k.lower()), None)
    flipped = sig[:-1] + ("0" if sig[-1] != "0" else "1")
    bad = [
        _tamper(loc, **{sig_key: flipped}),
        _tamper(loc, **{sig_key: None}),
        _tamper(loc, **{sig_key: ""}),
        # b's object with a's signature
        urllib.parse.urlunsplit(urllib.parse.urlsplit(loc_b)._replace(
            query=urllib.parse.urlsplit(loc).query)),
    ]
    if exp_key:
        bad += [_tamper(loc, **{exp_key: "1"}),                     # long expired
                _tamper(loc, **{exp_key: str(int(time.time()) - 60)}),
                _tamper(loc, **{exp_key: str(int(q[exp_key]) + 3600)})]
    for url in bad:
        with pytest.raises(urllib.error.HTTPError) as ei:
            fetch(url)
        assert ei.value.code == 403, url
        assert b"PK\x03\x04" not in ei.value.read()
    # the genuine URL still works
    assert fetch(loc)[0] == 200


def test_get_function_tags_present_when_set(lam, create_function):
    name = create_function(ECHO, Tags={"a": "1", "b": ""})
    assert lam.get_function(FunctionName=name)["Tags"] == {"a": "1", "b": ""}


# ListFunctions ----------------------------------------------------------------

def test_list_functions_sorted_paginated_each_once(server, lam, create_function):
    prefix = unique("lst")
    names = [create_function(ECHO, name=f"{prefix}-{i:02d}") for i in (3, 0, 4, 1, 2)]
    ours = sorted(names)

    # boto3 paginator with a small page size
    seen = []
    pages = 0
    for page in lam.get_paginator("list_functions").paginate(
            PaginationConfig={"PageSize": 2}):
        pages += 1
        assert len(page["Functions"]) <= 2
        seen += [f["FunctionName"] for f in page["Functions"]]
    assert len(seen) == len(set(seen)), "a function was listed twice"
    assert [n for n in seen if n.startswith(prefix)] == ours
    assert pages >= 3
    # the listing is ordered by name
    assert seen == sorted(seen)

    # manual MaxItems + Marker walk
    walked, marker = [], None
    for _ in range(1000):
        kw = {"MaxItems": 2}
        if marker:
            kw["Marker"] = marker
        r = lam.list_functions(**kw)
        assert len(r["Functions"]) <= 2
        walked += [f["FunctionName"] for f in r["Functions"]]
        marker = r.get("NextMarker")
        if not marker:
            break
    assert walked == seen

    # the CLI's auto-pagination lists everything exactly once
    out = server.aws("lambda", "list-functions", "--page-size", "2")
    cli = [f["FunctionName"] for f in out["Functions"]]
    assert len(cli) == len(set(cli))
    assert [n for n in cli if n.startswith(prefix)] == ours
    assert "NextMarker" not in out


def test_list_functions_entries_match_configuration(lam, create_function):
    name = create_function(ECHO, Description="listed", Timeout=9)
    entry = None
    for page in lam.get_paginator("list_functions").paginate():
        for f in page["Functions"]:
            if f["FunctionName"] == name:
                entry = f
    assert entry is not None
    conf = lam.get_function_configuration(FunctionName=name)
    for key in ("FunctionArn", "Runtime", "Role", "Handler", "CodeSize", "CodeSha256",
                "Description", "Timeout", "MemorySize", "LastModified", "Version",
                "RevisionId", "PackageType", "Architectures"):
        assert entry[key] == conf[key], key


def test_list_functions_returns_at_most_50_per_page(lam, create_function):
    total = len(list_all_names(lam))
    prefix = unique("cap")
    for i in range(max(0, 55 - total)):
        create_function(ECHO, name=f"{prefix}-{i:03d}")
    r = lam.list_functions(MaxItems=1000)
    assert len(r["Functions"]) == 50
    assert r.get("NextMarker")
    r = lam.list_functions()
    assert len(r["Functions"]) == 50
    assert r.get("NextMarker")


def test_list_functions_bad_marker_is_an_error(lam):
    with pytest.raises(ClientError) as ei:
        lam.list_functions(Marker="!!not-a-marker!!")
    code = ei.value.response["Error"]["Code"]
    assert code in ("InvalidParameterValueException", "ValidationException")
    check_error(ei.value, code, 400)


def test_list_functions_max_items_zero_rejected(server):
    status, headers, doc = signed(server, "GET", "/2015-03-31/functions/?MaxItems=0")
    assert status == 400
    assert headers.get("x-amzn-errortype", "").split(":")[0] == "ValidationException"


# UpdateFunctionCode -------------------------------------------------------------

def test_update_function_code_boto3(lam, create_function):
    name = create_function(probe("v1"))
    before = lam.get_function_configuration(FunctionName=name)
    assert invoke(lam, name)["version"] == "v1"  # warm instance on the old code
    new_zip = make_zip(probe("v2-longer-source"))
    r = lam.update_function_code(FunctionName=name, ZipFile=new_zip)
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert r["CodeSha256"] == b64sha256(new_zip) != before["CodeSha256"]
    assert r["CodeSize"] == len(new_zip)
    assert r["RevisionId"] != before["RevisionId"]
    assert UUID_RE.match(r["RevisionId"])
    assert r["LastUpdateStatus"] == "InProgress"
    assert r["State"] == "Active"
    assert r["FunctionName"] == name
    after = wait_updated(lam, name)
    assert after["LastUpdateStatus"] == "Successful"
    assert after["CodeSha256"] == r["CodeSha256"]
    assert after["RevisionId"] == r["RevisionId"]
    assert "LastUpdateStatusReasonCode" not in after
    assert invoke(lam, name)["version"] == "v2-longer-source"
    loc = lam.get_function(FunctionName=name)["Code"]["Location"]
    assert fetch(loc)[1] == new_zip


def test_configuration_during_code_update_shows_in_progress(lam, create_function):
    """While UpdateFunctionCode is being applied (another update is refused
    with 409 for that reason), GetFunctionConfiguration must not claim
    LastUpdateStatus Successful for the old code: function-updated waiters
    and deploy scripts poll exactly that."""
    name = create_function(ECHO)
    arn = lam.get_function_configuration(FunctionName=name)["FunctionArn"]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        z.writestr("app.py", ECHO["app.py"])
        z.writestr("big.bin", os.urandom(30_000_000))
    big = buf.getvalue()
    new_sha = b64sha256(big)
    result = {}

    def update():
        try:
            result["r"] = lam.update_function_code(FunctionName=name, ZipFile=big)
        except Exception as e:
            result["e"] = e

    th = threading.Thread(target=update)
    th.start()
    seen_conflict, wrong = 0, []
    deadline = time.time() + 30
    while th.is_alive() and time.time() < deadline:
        try:
            lam.update_function_configuration(FunctionName=name, Description="poke")
        except ClientError as e:
            check_error(e, "ResourceConflictException", 409,
                        contains=[f"An update is in progress for resource: {arn}"])
            seen_conflict += 1
            c = lam.get_function_configuration(FunctionName=name)
            if c["CodeSha256"] != new_sha and c.get("LastUpdateStatus") != "InProgress":
                wrong.append((c.get("LastUpdateStatus"), c["CodeSha256"]))
    th.join(30)
    assert "e" not in result, result
    assert result["r"]["CodeSha256"] == new_sha
    assert seen_conflict, "never observed the update in progress"
    assert not wrong, (f"{len(wrong)} GetFunctionConfiguration answers during the update "
                       f"said {wrong[0][0]} with the old code")
    assert wait_updated(lam, name)["CodeSha256"] == new_sha


def test_update_function_code_cli_and_wait_updated(server, lam, create_function, tmp_path):
    name = create_function(probe("v1"))
    new_zip, ref = write_zip(tmp_path, probe("v3"))
    r = server.aws("lambda", "update-function-code", "--function-name", name,
                   "--zip-file", ref)
    assert r["CodeSha256"] == b64sha256(new_zip)
    assert r["LastUpdateStatus"] == "InProgress"
    p = server.aws("lambda", "wait", "function-updated-v2", "--function-name", name,
                   parse=False)
    assert p.returncode == 0, p.stderr
    assert invoke(lam, name)["version"] == "v3"


def test_update_function_code_bad_zip_keeps_old_code(lam, create_function):
    name = create_function(probe("v1"))
    before = lam.get_function_configuration(FunctionName=name)
    expect_error(lambda: lam.update_function_code(FunctionName=name, ZipFile=b"not a zip"),
                 "InvalidParameterValueException", 400)
    after = lam.get_function_configuration(FunctionName=name)
    assert after["CodeSha256"] == before["CodeSha256"]
    assert after["RevisionId"] == before["RevisionId"]
    assert invoke(lam, name)["version"] == "v1"


def test_update_function_code_stale_revision_412(lam, create_function):
    name = create_function(probe("v1"))
    old_rev = lam.get_function_configuration(FunctionName=name)["RevisionId"]
    lam.update_function_configuration(FunctionName=name, Description="bump")
    wait_updated(lam, name)
    expect_error(lambda: lam.update_function_code(FunctionName=name,
                                                  ZipFile=make_zip(probe("v2")),
                                                  RevisionId=old_rev),
                 "PreconditionFailedException", 412)
    assert invoke(lam, name)["version"] == "v1"


# UpdateFunctionConfiguration ----------------------------------------------------

def test_update_function_configuration(lam, create_function):
    name = create_function(probe("v1"))
    assert invoke(lam, name)["handler"] == "handler"  # warm instance, old config
    before = lam.get_function_configuration(FunctionName=name)
    r = lam.update_function_configuration(
        FunctionName=name, Timeout=30, MemorySize=1024, Description="updated",
        Handler="app.other", Environment={"Variables": {"GREETING": "bonjour"}})
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert r["Timeout"] == 30 and r["MemorySize"] == 1024
    assert r["Description"] == "updated" and r["Handler"] == "app.other"
    assert r["Environment"] == {"Variables": {"GREETING": "bonjour"}}
    assert r["RevisionId"] != before["RevisionId"]
    assert r["LastUpdateStatus"] == "InProgress"
    assert r["CodeSha256"] == before["CodeSha256"]
    after = wait_updated(lam, name)
    for key in ("Timeout", "MemorySize", "Description", "Handler", "Environment",
                "RevisionId"):
        assert after[key] == r[key], key
    out = invoke(lam, name)
    assert out["handler"] == "other"
    assert out["greeting"] == "bonjour"
    assert int(out["memory"]) == 1024
    assert 3000 < out["remaining_ms"] <= 30000
    # fields not sent are left alone
    r2 = lam.update_function_configuration(FunctionName=name, Description="again")
    assert r2["Timeout"] == 30 and r2["Handler"] == "app.other"
    assert r2["Environment"] == {"Variables": {"GREETING": "bonjour"}}


def test_update_function_configuration_with_cli(server, lam, create_function):
    name = create_function(probe("v1"))
    r = server.aws("lambda", "update-function-configuration", "--function-name", name,
                   "--timeout", "11", "--environment", "Variables={GREETING=salut}",
                   "--handler", "app.other")
    assert r["Timeout"] == 11 and r["Handler"] == "app.other"
    p = server.aws("lambda", "wait", "function-updated-v2", "--function-name", name,
                   parse=False)
    assert p.returncode == 0, p.stderr
    assert invoke(lam, name)["greeting"] == "salut"


def test_update_configuration_revision_id(lam, create_function):
    name = create_function(ECHO)
    rev = lam.get_function_configuration(FunctionName=name)["RevisionId"]
    expect_error(lambda: lam.update_function_configuration(
        FunctionName=name, Timeout=5, RevisionId="00000000-0000-4000-8000-000000000000"),
        "PreconditionFailedException", 412)
    assert lam.get_function_configuration(FunctionName=name)["Timeout"] == 3
    r = lam.update_function_configuration(FunctionName=name, Timeout=5, RevisionId=rev)
    assert r["Timeout"] == 5
    wait_updated(lam, name)
    # the revision just used is now stale
    expect_error(lambda: lam.update_function_configuration(
        FunctionName=name, Timeout=6, RevisionId=rev), "PreconditionFailedException", 412)
    assert lam.get_function_configuration(FunctionName=name)["Timeout"] == 5


@pytest.mark.parametrize("params,code,contains", [
    ({"Timeout": 0}, "ValidationException",
     ["Value '0' at 'timeout' failed to satisfy constraint",
      "greater than or equal to 1"]),
    ({"Timeout": 901}, "ValidationException",
     ["Value '901' at 'timeout' failed to satisfy constraint", "less than or equal to 900"]),
    ({"MemorySize": 64}, "ValidationException",
     ["Value '64' at 'memorySize'", "greater than or equal to 128"]),
    ({"MemorySize": 20000}, "ValidationException",
     ["Value '20000' at 'memorySize'", "less than or equal to 10240"]),
    ({"Runtime": "python2.7"}, "InvalidParameterValueException",
     ["python2.7", "no longer supported"]),
    ({"Environment": {"Variables": {"AWS_REGION": "eu-west-1"}}},
     "InvalidParameterValueException", ["reserved keys", "AWS_REGION"]),
])
def test_update_configuration_invalid_leaves_config(server, lam, create_function, params,
                                                   code, contains):
    name = create_function(ECHO)
    before = lam.get_function_configuration(FunctionName=name)
    expect_error(lambda: quiet_client(server).update_function_configuration(
        FunctionName=name, **params), code, 400, contains=contains)
    after = lam.get_function_configuration(FunctionName=name)
    before.pop("ResponseMetadata")
    after.pop("ResponseMetadata")
    assert after == before


# DeleteFunction -------------------------------------------------------------------

def test_delete_function(server, lam):
    name = unique("del")
    lam.create_function(FunctionName=name, Runtime="python3.11", Handler="app.handler",
                        Role=ROLE, Code={"ZipFile": make_zip(ECHO)})
    assert invoke(lam, name, {"k": 1}) == {"k": 1}
    account = account_of(lam, name)
    r = lam.delete_function(FunctionName=name)
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 204
    msg = not_found_message(account, name)
    expect_error(lambda: lam.get_function(FunctionName=name), "ResourceNotFoundException",
                 404, msg)
    expect_error(lambda: lam.get_function_configuration(FunctionName=name),
                 "ResourceNotFoundException", 404, msg)
    expect_error(lambda: lam.invoke(FunctionName=name, Payload=b"{}"),
                 "ResourceNotFoundException", 404, msg)
    expect_error(lambda: lam.delete_function(FunctionName=name),
                 "ResourceNotFoundException", 404, msg)
    assert name not in list_all_names(lam)
    # the name can be used again, with fresh code
    lam.create_function(FunctionName=name, Runtime="python3.11", Handler="app.handler",
                        Role=ROLE, Code={"ZipFile": make_zip(probe("again"))})
    try:
        assert invoke(lam, name)["version"] == "again"
    finally:
        lam.delete_function(FunctionName=name)


def test_delete_function_raw_204_and_cli(server, lam):
    name = unique("delraw")
    status, _, _ = raw_create(server, name)
    assert status == 201
    status, headers, body = signed(server, "DELETE", f"/2015-03-31/functions/{name}")
    assert status == 204
    assert body is None
    name2 = unique("delcli")
    lam.create_function(FunctionName=name2, Runtime="python3.11", Handler="app.handler",
                        Role=ROLE, Code={"ZipFile": make_zip(ECHO)})
    p = server.aws("lambda", "delete-function", "--function-name", name2, parse=False)
    assert p.returncode == 0, p.stderr
    p = server.aws("lambda", "get-function", "--function-name", name2, check=False,
                   parse=False)
    assert p.returncode == 254
    assert "ResourceNotFoundException" in p.stderr
    assert f"function:{name2}" in p.stderr


# Tags --------------------------------------------------------------------------------

def test_tag_untag_list_tags_boto3(lam, create_function):
    name = create_function(ECHO, Tags={"team": "core"})
    arn = lam.get_function_configuration(FunctionName=name)["FunctionArn"]
    assert lam.list_tags(Resource=arn)["Tags"] == {"team": "core"}
    r = lam.tag_resource(Resource=arn, Tags={"env": "prod", "with space/and:colon": "v=1&2"})
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert lam.list_tags(Resource=arn)["Tags"] == {
        "team": "core", "env": "prod", "with space/and:colon": "v=1&2"}
    lam.tag_resource(Resource=arn, Tags={"env": "staging"})  # overwrite
    assert lam.list_tags(Resource=arn)["Tags"]["env"] == "staging"
    r = lam.untag_resource(Resource=arn, TagKeys=["team", "with space/and:colon", "absent"])
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert lam.list_tags(Resource=arn)["Tags"] == {"env": "staging"}
    assert lam.get_function(FunctionName=name)["Tags"] == {"env": "staging"}


def test_tags_with_cli(server, lam, create_function):
    name = create_function(ECHO)
    arn = lam.get_function_configuration(FunctionName=name)["FunctionArn"]
    p = server.aws("lambda", "tag-resource", "--resource", arn, "--tags", "a=1,b=2",
                   parse=False)
    assert p.returncode == 0, p.stderr
    assert server.aws("lambda", "list-tags", "--resource", arn)["Tags"] == {"a": "1", "b": "2"}
    p = server.aws("lambda", "untag-resource", "--resource", arn, "--tag-keys", "a",
                   parse=False)
    assert p.returncode == 0, p.stderr
    assert server.aws("lambda", "list-tags", "--resource", arn)["Tags"] == {"b": "2"}
    assert server.aws("lambda", "get-function", "--function-name", name)["Tags"] == {"b": "2"}


def test_tags_on_missing_function_404(lam, create_function):
    name = create_function(ECHO)
    account = account_of(lam, name)
    missing = unique("notag")
    arn = f"arn:aws:lambda:us-east-1:{account}:function:{missing}"
    msg = not_found_message(account, missing)
    expect_error(lambda: lam.list_tags(Resource=arn), "ResourceNotFoundException", 404, msg)
    expect_error(lambda: lam.tag_resource(Resource=arn, Tags={"a": "b"}),
                 "ResourceNotFoundException", 404, msg)
    expect_error(lambda: lam.untag_resource(Resource=arn, TagKeys=["a"]),
                 "ResourceNotFoundException", 404, msg)


# Errors ---------------------------------------------------------------------------------

def test_missing_function_404_boto3_raw_and_cli(server, lam, create_function):
    account = account_of(lam, create_function(ECHO))
    name = unique("missing")
    msg = not_found_message(account, name)
    expect_error(lambda: lam.get_function(FunctionName=name), "ResourceNotFoundException",
                 404, msg)
    expect_error(lambda: lam.update_function_configuration(FunctionName=name, Timeout=5),
                 "ResourceNotFoundException", 404, msg)
    expect_error(lambda: lam.update_function_code(FunctionName=name, ZipFile=make_zip(ECHO)),
                 "ResourceNotFoundException", 404, msg)
    status, headers, doc = signed(server, "GET", f"/2015-03-31/functions/{name}")
    assert status == 404
    assert headers["x-amzn-errortype"].split(":")[0] == "ResourceNotFoundException"
    assert doc.get("Type") == "User"
    assert (doc.get("Message") or doc.get("message")) == msg
    p = server.aws("lambda", "get-function", "--function-name", name, check=False,
                   parse=False)
    assert p.returncode == 254
    assert "(ResourceNotFoundException)" in p.stderr and msg in p.stderr


def test_create_duplicate_409(server, lam, create_function, tmp_path):
    name = create_function(ECHO)
    rev = lam.get_function_configuration(FunctionName=name)["RevisionId"]
    expect_error(lambda: lam.create_function(
        FunctionName=name, Runtime="python3.12", Handler="app.handler", Role=ROLE,
        Code={"ZipFile": make_zip(probe("x"))}), "ResourceConflictException", 409,
        f"Function already exist: {name}")
    _, ref = write_zip(tmp_path, ECHO)
    p = server.aws("lambda", "create-function", "--function-name", name, "--runtime",
                   "python3.11", "--handler", "app.handler", "--role", ROLE, "--zip-file",
                   ref, check=False, parse=False)
    assert p.returncode == 254
    assert "ResourceConflictException" in p.stderr
    c = lam.get_function_configuration(FunctionName=name)
    assert c["Runtime"] == "python3.11" and c["RevisionId"] == rev


LONG_ENV = {"Variables": {"BIG": "x" * 4200}}

INVALID_CREATE = [
    ("timeout-0", {"Timeout": 0}, "ValidationException",
     ["Value '0' at 'timeout' failed to satisfy constraint",
      "Member must have value greater than or equal to 1"]),
    ("timeout-901", {"Timeout": 901}, "ValidationException",
     ["Value '901' at 'timeout' failed to satisfy constraint",
      "Member must have value less than or equal to 900"]),
    ("memory-64", {"MemorySize": 64}, "ValidationException",
     ["Value '64' at 'memorySize' failed to satisfy constraint",
      "Member must have value greater than or equal to 128"]),
    ("memory-20000", {"MemorySize": 20000}, "ValidationException",
     ["Value '20000' at 'memorySize' failed to satisfy constraint",
      "Member must have value less than or equal to 10240"]),
    ("bad-role", {"Role": "lambda-role"}, "ValidationException",
     ["Value 'lambda-role' at 'role' failed to satisfy constraint"]),
    ("bad-role-account", {"Role": "arn:aws:iam::123:role/x"}, "ValidationException",
     ["at 'role' failed to satisfy constraint"]),
    ("bad-name", {"FunctionName": "bad name!"}, "ValidationException",
     ["Value 'bad name!' at 'functionName' failed to satisfy constraint"]),
    ("unknown-runtime", {"Runtime": "python9.9"}, "ValidationException",
     ["Value 'python9.9' at 'runtime' failed to satisfy constraint",
      "Member must satisfy enum value set"]),
    ("deprecated-runtime", {"Runtime": "python2.7"}, "InvalidParameterValueException",
     ["The runtime parameter of python2.7 is no longer supported"]),
    ("reserved-env", {"Environment": {"Variables": {"AWS_REGION": "eu-west-1"}}},
     "InvalidParameterValueException",
     ["Lambda was unable to configure your environment variables because the environment "
      "variables you have provided contains reserved keys that are currently not supported "
      "for modification. Reserved keys used in this request: AWS_REGION"]),
    ("description-257", {"Description": "d" * 257}, "ValidationException",
     ["at 'description' failed to satisfy constraint",
      "Member must have length less than or equal to 256"]),
    ("handler-with-space", {"Handler": "app handler"}, "ValidationException",
     ["Value 'app handler' at 'handler' failed to satisfy constraint"]),
    ("env-over-4kb", {"Environment": LONG_ENV}, "InvalidParameterValueException",
     ["Lambda was unable to configure your environment variables because the environment "
      "variables you have provided exceeded the 4KB limit."]),
]


@pytest.mark.parametrize("params,code,contains", [c[1:] for c in INVALID_CREATE],
                         ids=[c[0] for c in INVALID_CREATE])
def test_create_invalid_parameters(server, lam, params, code, contains):
    name = unique("inv")
    kw = dict(FunctionName=name, Runtime="python3.11", Handler="app.handler", Role=ROLE,
              Code={"ZipFile": make_zip(ECHO)})
    kw.update(params)
    expect_error(lambda: quiet_client(server).create_function(**kw), code, 400,
                 contains=contains)
    assert_missing(lam, name)
    assert name not in list_all_names(lam)


def test_create_env_just_under_4kb_is_accepted(lam, create_function):
    name = create_function(ECHO, Environment={"Variables": {"BIG": "y" * 3800}})
    c = lam.get_function_configuration(FunctionName=name)
    assert c["Environment"]["Variables"]["BIG"] == "y" * 3800


def test_create_invalid_with_cli(server, lam, tmp_path):
    _, ref = write_zip(tmp_path, ECHO)
    name = unique("invcli")
    p = server.aws("lambda", "create-function", "--function-name", name, "--runtime",
                   "python2.7", "--handler", "app.handler", "--role", ROLE, "--zip-file",
                   ref, check=False, parse=False)
    assert p.returncode == 254
    assert "(InvalidParameterValueException)" in p.stderr
    p = server.aws("lambda", "create-function", "--function-name", name, "--runtime",
                   "python3.11", "--handler", "app.handler", "--role", "not-a-role",
                   "--zip-file", ref, check=False, parse=False)
    assert p.returncode == 254
    assert "(ValidationException)" in p.stderr
    assert_missing(lam, name)


def test_create_not_a_zip(server, lam):
    name = unique("notzip")
    expect_error(lambda: lam.create_function(
        FunctionName=name, Runtime="python3.11", Handler="app.handler", Role=ROLE,
        Code={"ZipFile": b"this is not a zip file at all"}),
        "InvalidParameterValueException", 400,
        "Could not unzip uploaded file. Please check your file, then try to upload again.")
    assert_missing(lam, name)
    # a truncated zip is no better
    expect_error(lambda: lam.create_function(
        FunctionName=name, Runtime="python3.11", Handler="app.handler", Role=ROLE,
        Code={"ZipFile": make_zip(ECHO)[:40]}), "InvalidParameterValueException", 400)
    assert_missing(lam, name)
    assert name not in list_all_names(lam)


def _hostile_zip(entry, content=b"pwned"):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("app.py", ECHO["app.py"])
        z.writestr(zipfile.ZipInfo(entry, date_time=(2024, 1, 1, 0, 0, 0)), content)
    return buf.getvalue()


def test_create_zip_with_dotdot_refused_and_nothing_written(server, lam):
    marker = unique("escape")
    deep = "../" * 24  # enough to climb from anywhere to /
    entries = [f"../../{marker}.txt", f"lib/../../../{marker}.txt",
               f"{deep}tmp/{marker}.txt", f"/tmp/{marker}-abs.txt"]
    for entry in entries:
        name = unique("dotdot")
        expect_error(lambda: lam.create_function(
            FunctionName=name, Runtime="python3.11", Handler="app.handler", Role=ROLE,
            Code={"ZipFile": _hostile_zip(entry)}), "InvalidParameterValueException", 400)
        assert_missing(lam, name)
        assert name not in list_all_names(lam)
    # nothing landed next to the data dir, in the test's temp tree, or in /tmp
    base = os.path.dirname(os.path.dirname(server.data_dir))
    for dirpath, _, files in os.walk(base):
        assert not any(marker in f for f in files), (dirpath, files)
    assert not [f for f in os.listdir("/tmp") if marker in f]


def test_malformed_json_body_is_an_error(server):
    status, headers, doc = signed(server, "POST", "/2015-03-31/functions", b"{not json",
                                  {"Content-Type": "application/json"})
    assert status == 400
    assert headers["x-amzn-errortype"].split(":")[0] in (
        "InvalidRequestContentException", "SerializationException")


# Function references ----------------------------------------------------------------

def _refs(lam, name):
    account = account_of(lam, name)
    return {
        "name": name,
        "arn": f"arn:aws:lambda:us-east-1:{account}:function:{name}",
        "partial": f"{account}:function:{name}",
    }


@pytest.mark.parametrize("form", ["name", "arn", "partial"])
def test_function_reference_forms(lam, create_function, form):
    name = create_function(probe("v1"))
    ref = _refs(lam, name)[form]
    got = lam.get_function(FunctionName=ref)
    assert got["Configuration"]["FunctionName"] == name
    assert lam.get_function_configuration(FunctionName=ref)["FunctionName"] == name
    assert invoke(lam, ref)["version"] == "v1"
    r = lam.update_function_configuration(FunctionName=ref, Description=f"via {form}")
    assert r["FunctionName"] == name
    wait_updated(lam, name)
    assert lam.get_function_configuration(FunctionName=name)["Description"] == f"via {form}"
    r = lam.update_function_code(FunctionName=ref, ZipFile=make_zip(probe(form)))
    assert r["FunctionName"] == name
    wait_updated(lam, name)
    assert invoke(lam, name)["version"] == form
    assert lam.delete_function(FunctionName=ref)["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert_missing(lam, name)


def test_function_reference_forms_cli_and_missing(server, lam, create_function):
    name = create_function(ECHO)
    refs = _refs(lam, name)
    for ref in refs.values():
        got = server.aws("lambda", "get-function-configuration", "--function-name", ref)
        assert got["FunctionName"] == name
    account = account_of(lam, name)
    missing = unique("nofn")
    msg = not_found_message(account, missing)
    for ref in (missing, f"arn:aws:lambda:us-east-1:{account}:function:{missing}",
                f"{account}:function:{missing}"):
        expect_error(lambda: lam.get_function(FunctionName=ref),
                     "ResourceNotFoundException", 404, msg)
    # $LATEST qualifier works, an unknown version does not
    assert lam.get_function(FunctionName=name, Qualifier="$LATEST")[
        "Configuration"]["FunctionName"] == name
    expect_error(lambda: lam.get_function(FunctionName=name, Qualifier="7"),
                 "ResourceNotFoundException", 404)


# Persistence -------------------------------------------------------------------------

def _snapshot(lam, names):
    out = {}
    for n in names:
        g = lam.get_function(FunctionName=n)
        g.pop("ResponseMetadata")
        g["Code"].pop("Location")  # a fresh pre-signed URL each time
        out[n] = g
    return out


def test_restart_keeps_functions(fresh_server):
    lam = fresh_server.client("lambda")
    names = []
    zips = {}
    for i, extra in enumerate([
            {},
            {"Timeout": 17, "MemorySize": 300, "Description": "second",
             "Environment": {"Variables": {"GREETING": "persisted"}}, "Tags": {"k": "v"}},
            {"Handler": "app.other", "Runtime": "python3.12"}]):
        name = f"persist-{i}"
        files = probe(f"p{i}")
        zips[name] = make_zip(files)
        kw = dict(FunctionName=name, Runtime="python3.11", Handler="app.handler", Role=ROLE,
                  Code={"ZipFile": zips[name]})
        kw.update(extra)
        lam.create_function(**kw)
        names.append(name)
    gone = "persist-deleted"
    lam.create_function(FunctionName=gone, Runtime="python3.11", Handler="app.handler",
                        Role=ROLE, Code={"ZipFile": make_zip(ECHO)})
    lam.delete_function(FunctionName=gone)
    assert invoke(lam, "persist-1")["version"] == "p1"  # warm instance before restart
    before = _snapshot(lam, names)
    listed = list_all_names(lam)

    fresh_server.restart()
    lam = fresh_server.client("lambda")
    assert _snapshot(lam, names) == before
    assert list_all_names(lam) == listed
    assert_missing(lam, gone)
    assert invoke(lam, "persist-0")["version"] == "p0"
    assert invoke(lam, "persist-1")["version"] == "p1"
    out = invoke(lam, "persist-2")
    assert out["handler"] == "other" and out["version"] == "p2"
    lam.update_function_configuration(FunctionName="persist-1", Handler="app.other")
    wait_updated(lam, "persist-1")
    assert invoke(lam, "persist-1")["greeting"] == "persisted"
    for n in names:
        loc = lam.get_function(FunctionName=n)["Code"]["Location"]
        assert fetch(loc)[1] == zips[n]
    # the restarted daemon still accepts new functions and still 409s on old names
    expect_error(lambda: lam.create_function(
        FunctionName="persist-0", Runtime="python3.11", Handler="app.handler", Role=ROLE,
        Code={"ZipFile": make_zip(ECHO)}), "ResourceConflictException", 409)


def test_kill9_keeps_created_and_updated_functions(fresh_server):
    lam = fresh_server.client("lambda")
    lam.create_function(FunctionName="crash-a", Runtime="python3.11", Handler="app.handler",
                        Role=ROLE, Code={"ZipFile": make_zip(probe("a1"))})
    lam.create_function(FunctionName="crash-b", Runtime="python3.11", Handler="app.handler",
                        Role=ROLE, Code={"ZipFile": make_zip(probe("b1"))},
                        Tags={"t": "1"})
    new_zip = make_zip(probe("b2"))
    lam.update_function_code(FunctionName="crash-b", ZipFile=new_zip)
    wait_updated(lam, "crash-b")
    lam.update_function_configuration(FunctionName="crash-b", Timeout=12)
    wait_updated(lam, "crash-b")
    lam.tag_resource(Resource=lam.get_function(FunctionName="crash-b")["Configuration"][
        "FunctionArn"], Tags={"u": "2"})
    assert invoke(lam, "crash-a")["version"] == "a1"
    before = _snapshot(lam, ["crash-a", "crash-b"])

    fresh_server.kill9()
    fresh_server.start()
    lam = fresh_server.client("lambda")
    assert _snapshot(lam, ["crash-a", "crash-b"]) == before
    c = lam.get_function_configuration(FunctionName="crash-b")
    assert c["CodeSha256"] == b64sha256(new_zip) and c["Timeout"] == 12
    assert c["State"] == "Active" and c["LastUpdateStatus"] == "Successful"
    assert invoke(lam, "crash-a")["version"] == "a1"
    assert invoke(lam, "crash-b")["version"] == "b2"
    assert lam.get_function(FunctionName="crash-b")["Tags"] == {"t": "1", "u": "2"}


# Clean shutdown -------------------------------------------------------------------------

def _proc_children(pid):
    kids = set()
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/children") as f:
                kids |= {int(x) for x in f.read().split()}
        except OSError:
            pass
    return kids


def _descendants(pid):
    out, todo = set(), [pid]
    while todo:
        p = todo.pop()
        try:
            kids = _proc_children(p)
        except OSError:
            continue
        for k in kids - out:
            out.add(k)
            todo.append(k)
    return out


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except OSError:
        return False


def _procs_using(data_dir):
    """Live processes whose cwd or environment points into data_dir."""
    found = []
    for p in os.listdir("/proc"):
        if not p.isdigit() or int(p) == os.getpid():
            continue
        try:
            cwd = os.readlink(f"/proc/{p}/cwd")
        except OSError:
            cwd = ""
        try:
            with open(f"/proc/{p}/environ", "rb") as f:
                env = f.read()
        except OSError:
            env = b""
        if (cwd.startswith(data_dir) or data_dir.encode() in env) and _alive(int(p)):
            found.append(int(p))
    return found


SPAWNER = {"app.py": """import os, subprocess, time
def handler(event, context):
    if event.get("sleep"):
        time.sleep(event["sleep"])
    child = subprocess.Popen(["sleep", "300"])
    return {"child": child.pid, "instance": os.environ["AWS_LAMBDA_LOG_STREAM_NAME"]}
"""}


def test_sigterm_with_warm_instances_exits_0_and_leaves_nothing(fresh_server):
    lam = fresh_server.client("lambda")
    for n in ("warm-a", "warm-b"):
        lam.create_function(FunctionName=n, Runtime="python3.11", Handler="app.handler",
                            Role=ROLE, Code={"ZipFile": make_zip(SPAWNER)})
    instances = [invoke(lam, n)["instance"] for n in ("warm-a", "warm-b")]
    pid = fresh_server.proc.pid
    runtimes = _descendants(pid)
    assert runtimes, "no runtime processes under the daemon after invokes"
    # each instance: its runtime and the `sleep` it started (host pids)
    assert all(len(instance_pids(i)) >= 2 for i in instances)

    t0 = time.time()
    rc = fresh_server.stop(timeout=5)
    took = time.time() - t0
    assert rc == 0, fresh_server.read_log()
    assert took < 5
    deadline = time.time() + 2
    while time.time() < deadline and (
            any(_alive(p) for p in runtimes) or _procs_using(fresh_server.data_dir)):
        time.sleep(0.05)
    assert [p for p in runtimes if _alive(p)] == []
    assert all(instance_gone(i) for i in instances), "a function's process outlived ignis"
    assert _procs_using(fresh_server.data_dir) == []


def test_sigterm_during_inflight_invoke(fresh_server):
    lam = fresh_server.client("lambda")
    lam.create_function(FunctionName="busy", Runtime="python3.11", Handler="app.handler",
                        Role=ROLE, Code={"ZipFile": make_zip(SPAWNER)}, Timeout=120)
    result = {}

    def call():
        try:
            result["r"] = lam.invoke(FunctionName="busy", Payload=json.dumps({"sleep": 60}))
        except Exception as e:  # the daemon going away may end the call either way
            result["e"] = e

    th = threading.Thread(target=call, daemon=True)
    th.start()
    pid = fresh_server.proc.pid
    deadline = time.time() + 10
    while time.time() < deadline and not _descendants(pid):
        time.sleep(0.05)
    runtimes = _descendants(pid)
    assert runtimes
    time.sleep(0.3)
    t0 = time.time()
    rc = fresh_server.stop(timeout=5)
    assert rc == 0, fresh_server.read_log()
    assert time.time() - t0 < 5
    th.join(10)
    assert not th.is_alive(), "the in-flight Invoke was left hanging after shutdown"
    deadline = time.time() + 2
    while time.time() < deadline and any(_alive(p) for p in runtimes):
        time.sleep(0.05)
    assert [p for p in runtimes if _alive(p)] == []
    assert _procs_using(fresh_server.data_dir) == []


def test_sigterm_during_create_is_all_or_nothing(fresh_server):
    lam = fresh_server.client("lambda")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        z.writestr("app.py", ECHO["app.py"])
        z.writestr("big.bin", os.urandom(30_000_000))
    big = buf.getvalue()
    result = {}

    def create():
        try:
            result["r"] = lam.create_function(FunctionName="midway", Runtime="python3.11",
                                              Handler="app.handler", Role=ROLE,
                                              Code={"ZipFile": big})
        except Exception as e:
            result["e"] = e

    th = threading.Thread(target=create)
    th.start()
    deadline = time.time() + 20
    while time.time() < deadline and th.is_alive():
        try:
            lam.get_function_configuration(FunctionName="midway")
            break  # the create is under way
        except ClientError:
            time.sleep(0.01)
    t0 = time.time()
    rc = fresh_server.stop(timeout=5)
    assert rc == 0, fresh_server.read_log()
    assert time.time() - t0 < 5
    th.join(10)
    assert not th.is_alive()
    fresh_server.start()
    lam = fresh_server.client("lambda")
    if "r" in result:  # reported created: it must be there, whole
        c = lam.get_function_configuration(FunctionName="midway")
        assert c["CodeSha256"] == b64sha256(big) and c["State"] == "Active"
        assert invoke(lam, "midway", {"a": 1}) == {"a": 1}
    else:  # reported failed: no trace of it
        assert_missing(lam, "midway")
        assert "midway" not in list_all_names(lam)
        lam.create_function(FunctionName="midway", Runtime="python3.11",
                            Handler="app.handler", Role=ROLE,
                            Code={"ZipFile": make_zip(ECHO)})
        assert invoke(lam, "midway", {"a": 2}) == {"a": 2}
