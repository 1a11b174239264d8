"""Aliases: CreateAlias, GetAlias, UpdateAlias, DeleteAlias, ListAliases, an
alias as a qualifier (Get, Invoke, qualified ARNs), weighted routing, and the
rules that tie aliases to versions. Error names and messages are Lambda's, as
recorded against AWS (LocalStack's parity snapshots of these calls)."""
import boto3
import botocore.config
import pytest
from botocore.exceptions import ClientError

from conftest import ACCESS_KEY, REGION, ROLE, SECRET_KEY, code, invoke, make_zip, unique

V = code("""
    import os
    def handler(event, context):
        return {"code": "%s", "env": os.environ.get("COLOR"),
                "version": os.environ["AWS_LAMBDA_FUNCTION_VERSION"],
                "arn": context.invoked_function_arn}
""")


def zipped(tag):
    return make_zip({"app.py": V % tag})


def error(e):
    r = e.value.response
    return r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Code"], r["Error"]["Message"]


def raw_client(server):
    """A client that sends what it is given (botocore checks some ranges itself)."""
    cfg = botocore.config.Config(retries={"max_attempts": 0}, parameter_validation=False)
    return boto3.client("lambda", endpoint_url=server.url, region_name=REGION,
                        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
                        config=cfg)


def two_versions(lam, name):
    """$LATEST plus versions 1 (code one, red) and 2 (code two, blue)."""
    lam.create_function(FunctionName=name, Runtime="python3.12", Handler="app.handler", Role=ROLE,
                        Code={"ZipFile": zipped("one")}, Publish=True,
                        Environment={"Variables": {"COLOR": "red"}})
    lam.update_function_code(FunctionName=name, ZipFile=zipped("two"))
    lam.get_waiter("function_updated_v2").wait(FunctionName=name)
    lam.update_function_configuration(FunctionName=name,
                                      Environment={"Variables": {"COLOR": "blue"}})
    v2 = lam.publish_version(FunctionName=name)
    assert v2["Version"] == "2"
    return lam.get_function_configuration(FunctionName=name)["FunctionArn"]


@pytest.fixture
def fn(lam):
    name = unique("alias")
    yield name
    try:
        lam.delete_function(FunctionName=name)
    except ClientError:
        pass


def test_alias_lifecycle(lam, fn):
    arn = two_versions(lam, fn)
    live = lam.create_alias(FunctionName=fn, Name="live", FunctionVersion="1",
                            Description="production")
    assert live["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert {k: v for k, v in live.items() if k != "ResponseMetadata"} == {
        "AliasArn": arn + ":live", "Name": "live", "FunctionVersion": "1",
        "Description": "production", "RevisionId": live["RevisionId"]}
    got = lam.get_alias(FunctionName=fn, Name="live")
    assert got["RevisionId"] == live["RevisionId"] and "RoutingConfig" not in got
    # by ARN too, and with no description the alias has an empty one
    beta = lam.create_alias(FunctionName=arn, Name="beta-1_x", FunctionVersion="2",
                            RoutingConfig={"AdditionalVersionWeights": {}})
    assert beta["Description"] == "" and "RoutingConfig" not in beta
    lam.create_alias(FunctionName=fn, Name="canary", FunctionVersion="1",
                     RoutingConfig={"AdditionalVersionWeights": {"2": 0.25}})
    assert lam.get_alias(FunctionName=fn, Name="canary")["RoutingConfig"] == {
        "AdditionalVersionWeights": {"2": 0.25}}
    lam.create_alias(FunctionName=fn, Name="edge", FunctionVersion="$LATEST")

    names = [a["Name"] for a in lam.list_aliases(FunctionName=fn)["Aliases"]]
    assert names == ["beta-1_x", "canary", "edge", "live"]
    pages = lam.get_paginator("list_aliases").paginate(FunctionName=fn,
                                                       PaginationConfig={"PageSize": 1})
    assert [a["Name"] for p in pages for a in p["Aliases"]] == names
    first = lam.list_aliases(FunctionName=fn, MaxItems=3)
    assert len(first["Aliases"]) == 3 and "NextMarker" in first
    rest = lam.list_aliases(FunctionName=fn, Marker=first["NextMarker"])
    assert [a["Name"] for a in rest["Aliases"]] == ["live"] and "NextMarker" not in rest
    only1 = lam.list_aliases(FunctionName=fn, FunctionVersion="1")["Aliases"]
    assert [a["Name"] for a in only1] == ["canary", "live"]
    assert only1[0]["RoutingConfig"] == {"AdditionalVersionWeights": {"2": 0.25}}

    # update: only what is sent changes, and every update is a new revision
    up = lam.update_alias(FunctionName=fn, Name="live", FunctionVersion="2")
    assert up["FunctionVersion"] == "2" and up["Description"] == "production"
    assert up["RevisionId"] != live["RevisionId"]
    same = lam.update_alias(FunctionName=fn, Name="live")
    assert same["RevisionId"] != up["RevisionId"] and same["FunctionVersion"] == "2"
    with pytest.raises(ClientError) as e:
        lam.update_alias(FunctionName=fn, Name="live", Description="x",
                         RevisionId=live["RevisionId"])
    assert error(e) == (412, "PreconditionFailedException",
                        "The Revision Id provided does not match the latest Revision Id. Call "
                        "the GetFunction/GetAlias API to retrieve the latest Revision Id")
    ok = lam.update_alias(FunctionName=fn, Name="live", Description="",
                          RevisionId=same["RevisionId"])
    assert ok["Description"] == ""
    # an empty routing removes it
    cleared = lam.update_alias(FunctionName=fn, Name="canary",
                               RoutingConfig={"AdditionalVersionWeights": {}})
    assert "RoutingConfig" not in cleared
    assert "RoutingConfig" not in lam.get_alias(FunctionName=fn, Name="canary")

    assert lam.delete_alias(FunctionName=fn, Name="canary")[
        "ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(ClientError) as e:
        lam.get_alias(FunctionName=fn, Name="canary")
    assert error(e) == (404, "ResourceNotFoundException",
                        f"Cannot find alias arn: {arn}:canary")
    # deleting what is not there succeeds, updating it does not
    lam.delete_alias(FunctionName=fn, Name="canary")
    with pytest.raises(ClientError) as e:
        lam.update_alias(FunctionName=fn, Name="canary", FunctionVersion="1")
    assert error(e) == (404, "ResourceNotFoundException", f"Alias not found: {arn}:canary")
    assert [a["Name"] for a in lam.list_aliases(FunctionName=fn)["Aliases"]] == [
        "beta-1_x", "edge", "live"]


def test_create_alias_errors(lam, fn, server):
    arn = two_versions(lam, fn)
    raw = raw_client(server)

    def fails(status, code_, message, **kw):
        args = dict(FunctionName=fn, Name="custom", FunctionVersion="1")
        args.update(kw)
        with pytest.raises(ClientError) as e:
            raw.create_alias(**args)
        assert error(e) == (status, code_, message)

    weights = "routingConfig.additionalVersionWeights"
    fails(400, "ValidationException",
          "1 validation error detected: Value '123' at 'name' failed to satisfy constraint: "
          "Member must satisfy regular expression pattern: (?!^[0-9]+$)([a-zA-Z0-9-_]+)",
          Name="123")
    fails(400, "ValidationException",
          "1 validation error detected: Value 'a.b' at 'name' failed to satisfy constraint: "
          "Member must satisfy regular expression pattern: (?!^[0-9]+$)([a-zA-Z0-9-_]+)",
          Name="a.b")
    fails(400, "ValidationException",
          "1 validation error detected: Value '%s' at 'name' failed to satisfy constraint: "
          "Member must have length less than or equal to 128" % ("a" * 129), Name="a" * 129)
    fails(400, "ValidationException",
          "1 validation error detected: Value 'one' at 'functionVersion' failed to satisfy "
          "constraint: Member must satisfy regular expression pattern: (\\$LATEST|[0-9]+)",
          FunctionVersion="one")
    fails(404, "ResourceNotFoundException", f"Function not found: {arn}:10", FunctionVersion="10")
    fails(404, "ResourceNotFoundException", f"Function not found: {arn}-unknown:1",
          FunctionName=fn + "-unknown", RoutingConfig={"AdditionalVersionWeights": {"2": 0.5}})
    fails(400, "InvalidParameterValueException",
          "Number of items in AdditionalVersionWeights cannot be greater than 1",
          RoutingConfig={"AdditionalVersionWeights": {"1": 0.8, "2": 0.2}})
    fails(400, "ValidationException",
          f"1 validation error detected: Value '{{2=2.0}}' at '{weights}' failed to satisfy "
          "constraint: Map value must satisfy constraint: [Member must have value less than or "
          "equal to 1.0, Member must have value greater than or equal to 0.0, Member must not be "
          "null]", RoutingConfig={"AdditionalVersionWeights": {"2": 2}})
    fails(400, "ValidationException",
          f"1 validation error detected: Value '{{2=-1.0}}' at '{weights}' failed to satisfy "
          "constraint: Map value must satisfy constraint: [Member must have value less than or "
          "equal to 1.0, Member must have value greater than or equal to 0.0, Member must not be "
          "null]", RoutingConfig={"AdditionalVersionWeights": {"2": -1}})
    fails(400, "InvalidParameterValueException",
          "Invalid function version 1. Function version 1 is already included in routing "
          "configuration.", RoutingConfig={"AdditionalVersionWeights": {"1": 0.5}})
    fails(404, "ResourceNotFoundException", f"Function not found: {arn}:10",
          RoutingConfig={"AdditionalVersionWeights": {"10": 0.5}})
    fails(400, "InvalidParameterValueException",
          "$LATEST is not supported for an alias pointing to more than 1 version",
          FunctionVersion="$LATEST", RoutingConfig={"AdditionalVersionWeights": {"1": 0.5}})
    fails(400, "ValidationException",
          f"1 validation error detected: Value '{{$LATEST=0.5}}' at '{weights}' failed to "
          "satisfy constraint: Map keys must satisfy constraint: [Member must have length less "
          "than or equal to 1024, Member must have length greater than or equal to 1, Member "
          "must satisfy regular expression pattern: [0-9]+, Member must not be null]",
          RoutingConfig={"AdditionalVersionWeights": {"$LATEST": 0.5}})
    # the edges of the weight range are weights
    lam.create_alias(FunctionName=fn, Name="all", FunctionVersion="1",
                     RoutingConfig={"AdditionalVersionWeights": {"2": 1.0}})
    lam.create_alias(FunctionName=fn, Name="none", FunctionVersion="1",
                     RoutingConfig={"AdditionalVersionWeights": {"2": 0}})
    lam.create_alias(FunctionName=fn, Name="custom", FunctionVersion="1",
                     RoutingConfig={"AdditionalVersionWeights": {"2": 0.5}})
    fails(409, "ResourceConflictException", f"Alias already exists: {arn}:custom")
    # an update is checked against what the alias becomes
    with pytest.raises(ClientError) as e:
        lam.update_alias(FunctionName=fn, Name="custom", FunctionVersion="2")
    assert error(e) == (400, "InvalidParameterValueException",
                        "Invalid function version 2. Function version 2 is already included in "
                        "routing configuration.")
    with pytest.raises(ClientError) as e:
        lam.update_alias(FunctionName=fn, Name="custom", FunctionVersion="$LATEST")
    assert error(e)[1] == "InvalidParameterValueException"
    with pytest.raises(ClientError) as e:
        lam.update_alias(FunctionName=fn, Name="custom", FunctionVersion="7")
    assert error(e) == (404, "ResourceNotFoundException", f"Function not found: {arn}:7")
    assert lam.get_alias(FunctionName=fn, Name="custom")["FunctionVersion"] == "1"
    # the path's name is checked too, and the function must exist
    with pytest.raises(ClientError) as e:
        raw.get_alias(FunctionName=fn, Name="42")
    assert error(e)[:2] == (400, "ValidationException")
    with pytest.raises(ClientError) as e:
        lam.list_aliases(FunctionName=fn + "-unknown")
    assert error(e) == (404, "ResourceNotFoundException", f"Function not found: {arn}-unknown")


def test_alias_as_qualifier_in_get(lam, fn):
    arn = two_versions(lam, fn)
    alias_arn = lam.create_alias(FunctionName=fn, Name="live", FunctionVersion="1")["AliasArn"]
    v1 = lam.get_function_configuration(FunctionName=fn, Qualifier="1")
    # the version's configuration, shown with the alias's ARN
    for config in (lam.get_function_configuration(FunctionName=fn, Qualifier="live"),
                   lam.get_function(FunctionName=fn, Qualifier="live")["Configuration"],
                   lam.get_function(FunctionName=alias_arn)["Configuration"],
                   lam.get_function_configuration(FunctionName=fn + ":live")):
        assert config["FunctionArn"] == alias_arn
        assert config["Version"] == "1"
        assert config["CodeSha256"] == v1["CodeSha256"]
        assert config["Environment"] == {"Variables": {"COLOR": "red"}}
        assert config["RevisionId"] == v1["RevisionId"]
    # and the version's code (the download URL names the package)
    location = lam.get_function(FunctionName=fn, Qualifier="live")["Code"]["Location"]
    v1_location = lam.get_function(FunctionName=fn, Qualifier="1")["Code"]["Location"]
    assert location.split("?")[0] == v1_location.split("?")[0]
    lam.create_alias(FunctionName=fn, Name="edge", FunctionVersion="$LATEST")
    edge = lam.get_function_configuration(FunctionName=fn, Qualifier="edge")
    assert edge["Version"] == "$LATEST" and edge["FunctionArn"] == arn + ":edge"
    with pytest.raises(ClientError) as e:
        lam.get_function(FunctionName=fn, Qualifier="nope")
    assert error(e) == (404, "ResourceNotFoundException", f"Function not found: {arn}:nope")
    with pytest.raises(ClientError) as e:
        lam.get_function(FunctionName=arn + ":nope")
    assert error(e) == (404, "ResourceNotFoundException", f"Function not found: {arn}:nope")


def test_invoke_through_alias(lam, fn):
    arn = two_versions(lam, fn)
    lam.create_alias(FunctionName=fn, Name="live", FunctionVersion="1")
    for name, kw in ((fn, {"Qualifier": "live"}), (fn + ":live", {}), (arn + ":live", {})):
        r = invoke(lam, name, {}, **kw)
        assert r["ExecutedVersion"] == "1"
        assert r["json"] == {"code": "one", "env": "red", "version": "1", "arn": arn + ":live"}
    # moving the alias moves what runs
    lam.update_alias(FunctionName=fn, Name="live", FunctionVersion="2")
    r = invoke(lam, fn, {}, Qualifier="live")
    assert r["ExecutedVersion"] == "2" and r["json"]["code"] == "two"
    assert r["json"]["env"] == "blue"
    lam.create_alias(FunctionName=fn, Name="edge", FunctionVersion="$LATEST")
    lam.update_function_configuration(FunctionName=fn,
                                      Environment={"Variables": {"COLOR": "green"}})
    lam.get_waiter("function_updated_v2").wait(FunctionName=fn)
    r = invoke(lam, fn, {}, Qualifier="edge")
    assert r["ExecutedVersion"] == "$LATEST"
    assert r["json"] == {"code": "two", "env": "green", "version": "$LATEST",
                         "arn": arn + ":edge"}
    assert lam.invoke(FunctionName=fn, Qualifier="live", InvocationType="Event",
                      Payload=b"{}")["StatusCode"] == 202
    with pytest.raises(ClientError) as e:
        lam.invoke(FunctionName=fn, Qualifier="gone", Payload=b"{}")
    assert error(e) == (404, "ResourceNotFoundException", f"Function not found: {arn}:gone")


def test_weighted_routing(lam, fn):
    arn = two_versions(lam, fn)
    lam.create_alias(FunctionName=fn, Name="canary", FunctionVersion="1",
                     RoutingConfig={"AdditionalVersionWeights": {"2": 0.3}})
    runs = {"1": 0, "2": 0}
    for _ in range(200):
        r = invoke(lam, fn, {}, Qualifier="canary")
        v = r["ExecutedVersion"]
        # the header names the version that ran, and the function saw the alias
        assert r["json"]["version"] == v and r["json"]["code"] == {"1": "one", "2": "two"}[v]
        assert r["json"]["arn"] == arn + ":canary"
        runs[v] += 1
    # mean 60, standard deviation 6.5: 30..90 is more than 4.6 sigma either way
    assert 30 <= runs["2"] <= 90, runs
    # weights 0 and 1 are certain
    lam.update_alias(FunctionName=fn, Name="canary",
                     RoutingConfig={"AdditionalVersionWeights": {"2": 0.0}})
    assert {invoke(lam, fn, {}, Qualifier="canary")["ExecutedVersion"] for _ in range(20)} == {"1"}
    lam.update_alias(FunctionName=fn, Name="canary",
                     RoutingConfig={"AdditionalVersionWeights": {"2": 1.0}})
    assert {invoke(lam, fn, {}, Qualifier="canary")["ExecutedVersion"] for _ in range(20)} == {"2"}
    # reading the alias's function shows its primary version
    assert lam.get_function_configuration(FunctionName=fn, Qualifier="canary")["Version"] == "1"


def test_versions_in_use_and_function_delete(lam, fn):
    arn = two_versions(lam, fn)
    lam.create_alias(FunctionName=fn, Name="live", FunctionVersion="1")
    lam.create_alias(FunctionName=fn, Name="stable", FunctionVersion="1",
                     RoutingConfig={"AdditionalVersionWeights": {"2": 0.1}})
    with pytest.raises(ClientError) as e:
        lam.delete_function(FunctionName=fn, Qualifier="1")
    assert error(e) == (409, "ResourceConflictException",
                        "Unable to delete version because the following aliases reference it: "
                        "[live, stable]")
    # a version an alias routes to is in use too
    with pytest.raises(ClientError) as e:
        lam.delete_function(FunctionName=fn, Qualifier="2")
    assert error(e)[:2] == (409, "ResourceConflictException")
    # DeleteFunction never deletes an alias
    with pytest.raises(ClientError) as e:
        lam.delete_function(FunctionName=fn, Qualifier="live")
    assert error(e) == (400, "InvalidParameterValueException",
                        "Deletion of aliases is not supported.")
    assert lam.get_alias(FunctionName=fn, Name="live")["FunctionVersion"] == "1"
    lam.update_alias(FunctionName=fn, Name="stable", RoutingConfig={})
    lam.delete_function(FunctionName=fn, Qualifier="2")
    lam.delete_alias(FunctionName=fn, Name="live")
    lam.delete_alias(FunctionName=fn, Name="stable")
    lam.delete_function(FunctionName=fn, Qualifier="1")
    # deleting the function deletes its aliases
    lam.create_alias(FunctionName=fn, Name="edge", FunctionVersion="$LATEST")
    lam.delete_function(FunctionName=fn)
    lam.create_function(FunctionName=fn, Runtime="python3.12", Handler="app.handler", Role=ROLE,
                        Code={"ZipFile": zipped("again")})
    assert lam.list_aliases(FunctionName=fn)["Aliases"] == []
    with pytest.raises(ClientError) as e:
        lam.get_alias(FunctionName=fn, Name="edge")
    assert error(e) == (404, "ResourceNotFoundException", f"Cannot find alias arn: {arn}:edge")


def test_aliases_survive_restart(fresh_server):
    lam = fresh_server.client("lambda")
    name = unique("alias")
    arn = two_versions(lam, name)
    canary = lam.create_alias(FunctionName=name, Name="canary", FunctionVersion="1",
                              Description="d",
                              RoutingConfig={"AdditionalVersionWeights": {"2": 0.5}})
    fresh_server.kill9()
    fresh_server.start()
    lam = fresh_server.client("lambda")
    got = lam.get_alias(FunctionName=name, Name="canary")
    del got["ResponseMetadata"], canary["ResponseMetadata"]
    assert got == canary
    r = invoke(lam, name, {}, Qualifier="canary")
    assert r["ExecutedVersion"] in ("1", "2") and r["json"]["arn"] == arn + ":canary"
    # a restart after a graceful stop keeps them too
    lam.update_alias(FunctionName=name, Name="canary", FunctionVersion="2", RoutingConfig={})
    fresh_server.restart()
    lam = fresh_server.client("lambda")
    assert invoke(lam, name, {}, Qualifier="canary")["ExecutedVersion"] == "2"


def test_aws_cli(server, lam, fn):
    arn = two_versions(lam, fn)
    out = server.aws("lambda", "create-alias", "--function-name", fn, "--name", "live",
                     "--function-version", "1", "--description", "from the CLI",
                     "--routing-config", "AdditionalVersionWeights={2=0.25}")
    assert out["AliasArn"] == arn + ":live" and out["FunctionVersion"] == "1"
    assert out["Description"] == "from the CLI"
    assert out["RoutingConfig"] == {"AdditionalVersionWeights": {"2": 0.25}}
    listed = server.aws("lambda", "list-aliases", "--function-name", fn)
    assert [a["Name"] for a in listed["Aliases"]] == ["live"]
    got = server.aws("lambda", "get-alias", "--function-name", fn, "--name", "live")
    assert got["RevisionId"] == out["RevisionId"]
    up = server.aws("lambda", "update-alias", "--function-name", fn, "--name", "live",
                    "--function-version", "2", "--routing-config", "AdditionalVersionWeights={}",
                    "--revision-id", out["RevisionId"])
    assert up["FunctionVersion"] == "2" and "RoutingConfig" not in up
    p = server.aws("lambda", "create-alias", "--function-name", fn, "--name", "live",
                   "--function-version", "1", check=False, parse=False)
    assert p.returncode != 0 and "ResourceConflictException" in p.stderr
    assert "Alias already exists: " + arn + ":live" in p.stderr
    server.aws("lambda", "delete-alias", "--function-name", fn, "--name", "live")
    assert server.aws("lambda", "list-aliases", "--function-name", fn)["Aliases"] == []
