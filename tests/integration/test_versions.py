"""Published versions: the Publish flag of CreateFunction and UpdateFunctionCode,
PublishVersion, ListVersionsByFunction, qualifiers on Get/Invoke/Delete. A
version is an immutable snapshot: invoking it runs the code and configuration
it was published with, whatever $LATEST becomes."""
import json

import pytest
from botocore.exceptions import ClientError

from conftest import ROLE, code, invoke, make_zip, unique

V = code("""
    import os
    def handler(event, context):
        return {"code": "%s", "env": os.environ.get("COLOR"),
                "version": os.environ["AWS_LAMBDA_FUNCTION_VERSION"],
                "arn": context.invoked_function_arn}
""")


def zipped(tag):
    return make_zip({"app.py": V % tag})


@pytest.fixture
def fn(lam):
    name = unique("ver")
    yield name
    try:
        lam.delete_function(FunctionName=name)
    except ClientError:
        pass


def test_create_with_publish_answers_version_1(lam, fn):
    r = lam.create_function(FunctionName=fn, Runtime="python3.12", Handler="app.handler",
                            Role=ROLE, Code={"ZipFile": zipped("one")}, Publish=True,
                            Environment={"Variables": {"COLOR": "red"}})
    assert r["Version"] == "1"
    assert r["FunctionArn"].endswith(f":function:{fn}:1")
    out = invoke(lam, fn, {}, Qualifier="1")
    assert out["ExecutedVersion"] == "1"
    assert out["json"] == {"code": "one", "env": "red", "version": "1",
                           "arn": r["FunctionArn"]}


def test_versions_are_snapshots(lam, fn):
    lam.create_function(FunctionName=fn, Runtime="python3.12", Handler="app.handler", Role=ROLE,
                        Code={"ZipFile": zipped("one")},
                        Environment={"Variables": {"COLOR": "red"}})
    v1 = lam.publish_version(FunctionName=fn, Description="first")
    assert v1["Version"] == "1" and v1["Description"] == "first"
    assert v1["ResponseMetadata"]["HTTPStatusCode"] == 201
    # nothing changed: publishing again returns the same version
    assert lam.publish_version(FunctionName=fn)["Version"] == "1"

    up = lam.update_function_code(FunctionName=fn, ZipFile=zipped("two"), Publish=True)
    assert up["Version"] == "2" and up["FunctionArn"].endswith(":2")
    lam.update_function_configuration(FunctionName=fn, Environment={"Variables": {"COLOR": "blue"}})

    assert invoke(lam, fn, {}, Qualifier="1")["json"]["code"] == "one"
    assert invoke(lam, fn, {}, Qualifier="1")["json"]["env"] == "red"
    assert invoke(lam, fn, {}, Qualifier="2")["json"]["env"] == "red"
    latest = invoke(lam, fn, {})
    assert latest["ExecutedVersion"] == "$LATEST"
    assert latest["json"]["code"] == "two" and latest["json"]["env"] == "blue"

    assert lam.get_function_configuration(FunctionName=fn, Qualifier="1")["CodeSha256"] \
        == v1["CodeSha256"]
    g = lam.get_function(FunctionName=f"{fn}:2")
    assert g["Configuration"]["Version"] == "2"

    versions = [v["Version"] for v in lam.list_versions_by_function(FunctionName=fn)["Versions"]]
    assert versions == ["$LATEST", "1", "2"]
    pages = lam.get_paginator("list_versions_by_function").paginate(
        FunctionName=fn, PaginationConfig={"PageSize": 1})
    assert [v["Version"] for p in pages for v in p["Versions"]] == ["$LATEST", "1", "2"]


def test_qualifier_errors_and_version_delete(lam, fn, server):
    lam.create_function(FunctionName=fn, Runtime="python3.12", Handler="app.handler", Role=ROLE,
                        Code={"ZipFile": zipped("one")}, Publish=True)
    with pytest.raises(ClientError) as e:
        lam.invoke(FunctionName=fn, Qualifier="9")
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert e.value.response["Error"]["Message"].endswith(f"function:{fn}:9")
    with pytest.raises(ClientError) as e:
        lam.delete_function(FunctionName=fn, Qualifier="$LATEST")
    assert e.value.response["Error"]["Code"] == "InvalidParameterValueException"
    with pytest.raises(ClientError) as e:
        lam.publish_version(FunctionName=fn, CodeSha256="bm90LXRoZS1oYXNo")
    assert e.value.response["Error"]["Code"] == "PreconditionFailedException"

    lam.delete_function(FunctionName=fn, Qualifier="1")
    with pytest.raises(ClientError) as e:
        lam.get_function(FunctionName=fn, Qualifier="1")
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert lam.get_function(FunctionName=fn)["Configuration"]["Version"] == "$LATEST"
    # numbers are never reused
    lam.update_function_code(FunctionName=fn, ZipFile=zipped("three"))
    lam.get_waiter("function_updated_v2").wait(FunctionName=fn)
    assert lam.publish_version(FunctionName=fn)["Version"] == "2"
    # the CLI sees the same
    out = server.aws("lambda", "list-versions-by-function", "--function-name", fn)
    assert [v["Version"] for v in out["Versions"]] == ["$LATEST", "2"]


def test_versions_survive_restart(fresh_server):
    lam = fresh_server.client("lambda")
    name = unique("ver")
    lam.create_function(FunctionName=name, Runtime="python3.12", Handler="app.handler",
                        Role=ROLE, Code={"ZipFile": zipped("one")}, Publish=True)
    lam.update_function_code(FunctionName=name, ZipFile=zipped("two"))
    fresh_server.kill9()
    fresh_server.start()
    lam = fresh_server.client("lambda")
    assert invoke(lam, name, {}, Qualifier="1")["json"]["code"] == "one"
    assert invoke(lam, name, {})["json"]["code"] == "two"
