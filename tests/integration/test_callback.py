"""Calling back from a function (issue 6): a function's environment carries credentials and
an endpoint, so SDK clients made without arguments reach the Ignis that runs it, as on
Lambda they reach AWS; Debian's boto3 predates AWS_ENDPOINT_URL, the Python runtime
applies it. A sandboxed function has no network, yet reaches the daemon at 127.0.0.1."""
import json

import botocore.exceptions
import pytest

from conftest import REGION, code, invoke

CALLER = code("""
    import json, os
    import boto3
    def handler(event, context):
        lam = boto3.client("lambda")   # no endpoint, region or keys given
        me = lam.get_function(FunctionName=context.function_name)["Configuration"]
        out = {"me": me["FunctionName"],
               "key": os.environ["AWS_ACCESS_KEY_ID"],
               "token": bool(os.environ.get("AWS_SESSION_TOKEN")),
               "endpoint": os.environ.get("AWS_ENDPOINT_URL")}
        if event.get("other"):
            r = lam.invoke(FunctionName=event["other"], Payload=json.dumps({"n": 41}))
            out["other"] = json.loads(r["Payload"].read())
        return out
""")

ADDER = code("""
    def handler(event, context):
        return event["n"] + 1
""")


def test_boto3_without_arguments_reaches_ignis(server, lam, create_function):
    other = create_function({"app.py": ADDER})
    name = create_function({"app.py": CALLER}, Timeout=30, MemorySize=1769)
    r = invoke(lam, name, {"other": other})
    assert "FunctionError" not in r, r["body"]
    got = r["json"]
    assert got["me"] == name
    assert got["other"] == 42
    assert got["key"].startswith("ASIA") and len(got["key"]) == 20 and got["token"]
    assert got["endpoint"].startswith("http://127.0.0.1:")


def test_function_credentials_are_real_and_not_forgeable(server, lam, create_function):
    name = create_function({"app.py": code("""
        import os
        def handler(event, context):
            return {k: os.environ[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                                               "AWS_SESSION_TOKEN")}
    """)})
    creds = invoke(lam, name)["json"]
    import boto3
    as_fn = boto3.client("lambda", endpoint_url=server.url, region_name=REGION,
                         aws_access_key_id=creds["AWS_ACCESS_KEY_ID"],
                         aws_secret_access_key=creds["AWS_SECRET_ACCESS_KEY"],
                         aws_session_token=creds["AWS_SESSION_TOKEN"])
    assert as_fn.get_function(FunctionName=name)["Configuration"]["FunctionName"] == name
    forged = boto3.client("lambda", endpoint_url=server.url, region_name=REGION,
                          aws_access_key_id=creds["AWS_ACCESS_KEY_ID"],
                          aws_secret_access_key="x" * 40)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        forged.get_function(FunctionName=name)
    assert e.value.response["Error"]["Code"] == "InvalidSignatureException"
    # another name's key pattern with a made-up secret is refused too
    made_up = boto3.client("lambda", endpoint_url=server.url, region_name=REGION,
                           aws_access_key_id="ASIAAAAAAAAAAAAAAAAA",
                           aws_secret_access_key=creds["AWS_SECRET_ACCESS_KEY"])
    with pytest.raises(botocore.exceptions.ClientError):
        made_up.get_function(FunctionName=name)


def test_function_with_host_network_and_own_endpoint(server, lam, create_function):
    name = create_function({"app.py": CALLER}, Timeout=30, MemorySize=1769,
                           Tags={"ignis:network": "host"})
    r = invoke(lam, name)
    assert "FunctionError" not in r, r["body"]
    assert r["json"]["me"] == name
    # a function's own AWS_ENDPOINT_URL wins over the one Ignis sets
    lam.update_function_configuration(
        FunctionName=name, Environment={"Variables": {"AWS_ENDPOINT_URL": "http://127.0.0.1:9"}})
    lam.get_waiter("function_updated").wait(FunctionName=name)
    r = invoke(lam, name)
    assert r.get("FunctionError") == "Unhandled"
    assert "127.0.0.1:9" in json.loads(r["body"])["errorMessage"]
