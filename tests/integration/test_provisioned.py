"""Provisioned concurrency: PutProvisionedConcurrencyConfig, Get..., Delete...,
ListProvisionedConcurrencyConfigs on versions and aliases, with Lambda's rules
(a published version or an alias, never $LATEST; an alias and its version not
both; within the reservation, or leaving 100 unreserved) and its error names
and messages (as recorded against AWS in LocalStack's parity snapshots); and
what it does: instances started ahead of any invoke (IN_PROGRESS, then READY),
invokes served by them report no Init Duration and the function sees
AWS_LAMBDA_INITIALIZATION_TYPE=provisioned-concurrency, the config survives a
restart (READY again without an invoke), and goes with its version or alias.
"""
import re
import time

import boto3
import botocore.config
import pytest
from botocore.exceptions import ClientError

from conftest import (ACCESS_KEY, REGION, ROLE, SECRET_KEY, Server, code, invoke, log_messages,
                      make_zip, tail, unique)

# Prints a marker at import: each instance's init shows in the function's log.
APP = code("""
    import os
    print("INIT-MARK " + os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE", ""))
    def handler(event, context):
        return {"init": os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE"),
                "version": os.environ["AWS_LAMBDA_FUNCTION_VERSION"], "tag": "%s"}
""")

BROKEN = code("""
    raise RuntimeError("this init always fails")
    def handler(event, context):
        return {}
""")

UNPUBLISHED = "Provisioned Concurrency Configs cannot be applied to unpublished function versions."
NOT_PUBLISHED = "The function resource provided must be an alias or a published version."
NOT_FOUND = "No Provisioned Concurrency Config found for this function"
LAST_MODIFIED = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+0000$")


def error(e):
    r = e.value.response
    return r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Code"], r["Error"]["Message"]


def body(r):
    return {k: v for k, v in r.items() if k != "ResponseMetadata"}


def raw_client(server):
    """A client that sends what it is given (botocore checks some ranges itself)."""
    cfg = botocore.config.Config(retries={"max_attempts": 0}, parameter_validation=False)
    return boto3.client("lambda", endpoint_url=server.url, region_name=REGION,
                        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
                        config=cfg)


def create(lam, name=None, src=None, tag="one", publish=True, **kw):
    name = name or unique("prov")
    lam.create_function(FunctionName=name, Runtime="python3.12", Handler="app.handler", Role=ROLE,
                        Code={"ZipFile": make_zip({"app.py": src or APP % tag})},
                        Publish=publish, **kw)
    return name


def publish_new(lam, name, tag):
    lam.update_function_code(FunctionName=name, ZipFile=make_zip({"app.py": APP % tag}))
    lam.get_waiter("function_updated_v2").wait(FunctionName=name)
    return lam.publish_version(FunctionName=name)["Version"]


def wait_status(lam, name, qualifier, want="READY", timeout=30):
    deadline = time.time() + timeout
    seen = None
    while time.time() < deadline:
        seen = lam.get_provisioned_concurrency_config(FunctionName=name, Qualifier=qualifier)
        if seen["Status"] == want:
            return body(seen)
        time.sleep(0.1)
    raise AssertionError("status %s, not %s, after %ss" % (body(seen), want, timeout))


def init_marks(server, name):
    return [m for m in log_messages(server, name) if m.startswith("INIT-MARK")]


def wait_marks(server, name, n, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline and len(init_marks(server, name)) < n:
        time.sleep(0.05)
    return init_marks(server, name)


def unreserved(lam):
    return lam.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"]


@pytest.fixture
def fn(lam):
    made = []

    def make(**kw):
        made.append(create(lam, **kw))
        return made[-1]

    yield make
    for name in made:
        try:
            lam.delete_function(FunctionName=name)
        except ClientError:
            pass


# --- on a version ---------------------------------------------------------------------

def test_version_lifecycle(lam, server, fn):
    name = fn()
    before = unreserved(lam)
    put = lam.put_provisioned_concurrency_config(FunctionName=name, Qualifier="1",
                                                 ProvisionedConcurrentExecutions=2)
    assert put["ResponseMetadata"]["HTTPStatusCode"] == 202
    got = body(put)
    assert LAST_MODIFIED.match(got.pop("LastModified")), put
    assert got == {"RequestedProvisionedConcurrentExecutions": 2,
                   "AvailableProvisionedConcurrentExecutions": 0,
                   "AllocatedProvisionedConcurrentExecutions": 0, "Status": "IN_PROGRESS"}
    ready = wait_status(lam, name, "1")
    assert ready["RequestedProvisionedConcurrentExecutions"] == 2
    assert ready["AvailableProvisionedConcurrentExecutions"] == 2
    assert ready["AllocatedProvisionedConcurrentExecutions"] == 2
    assert ready["LastModified"] == put["LastModified"]
    assert "StatusReason" not in ready
    # both instances started and ran their init before any invoke
    marks = wait_marks(server, name, 2)
    assert marks == ["INIT-MARK provisioned-concurrency"] * 2, marks
    streams = server.client("logs").describe_log_streams(logGroupName="/aws/lambda/" + name)
    assert len(streams["logStreams"]) == 2
    # it counts against the account's unreserved concurrency
    assert unreserved(lam) == before - 2

    # an invoke of the version is served warm by a provisioned instance
    r = invoke(lam, name, {}, Qualifier="1", LogType="Tail")
    assert r["json"] == {"init": "provisioned-concurrency", "version": "1", "tag": "one"}
    report = [l for l in tail(r).splitlines() if l.startswith("REPORT")]
    assert report and "Init Duration" not in report[0], tail(r)
    assert len(init_marks(server, name)) == 2  # no new instance
    # $LATEST is not provisioned: a cold, on-demand start
    r = invoke(lam, name, {}, LogType="Tail")
    assert r["json"]["init"] == "on-demand"
    assert "Init Duration" in [l for l in tail(r).splitlines() if l.startswith("REPORT")][0]

    listed = lam.list_provisioned_concurrency_configs(FunctionName=name)
    arn = lam.get_function_configuration(FunctionName=name)["FunctionArn"]
    assert [c["FunctionArn"] for c in listed["ProvisionedConcurrencyConfigs"]] == [arn + ":1"]
    assert listed["ProvisionedConcurrencyConfigs"][0]["Status"] == "READY"
    assert "NextMarker" not in listed

    # a new Put replaces the config
    lam.put_provisioned_concurrency_config(FunctionName=name, Qualifier="1",
                                           ProvisionedConcurrentExecutions=1)
    assert wait_status(lam, name, "1")["AvailableProvisionedConcurrentExecutions"] == 1
    assert unreserved(lam) == before - 1

    deleted = lam.delete_provisioned_concurrency_config(FunctionName=name, Qualifier="1")
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(ClientError) as e:
        lam.get_provisioned_concurrency_config(FunctionName=name, Qualifier="1")
    assert error(e) == (404, "ProvisionedConcurrencyConfigNotFoundException", NOT_FOUND)
    assert lam.list_provisioned_concurrency_configs(
        FunctionName=name)["ProvisionedConcurrencyConfigs"] == []
    assert unreserved(lam) == before
    # deleting again is fine, as on Lambda
    lam.delete_provisioned_concurrency_config(FunctionName=name, Qualifier="1")


def test_aws_cli(server, fn, lam):
    name = fn()
    put = server.aws("lambda", "put-provisioned-concurrency-config", "--function-name", name,
                     "--qualifier", "1", "--provisioned-concurrent-executions", "1")
    assert put["RequestedProvisionedConcurrentExecutions"] == 1
    wait_status(lam, name, "1")
    got = server.aws("lambda", "get-provisioned-concurrency-config", "--function-name", name,
                     "--qualifier", "1")
    assert got["Status"] == "READY" and got["AvailableProvisionedConcurrentExecutions"] == 1
    listed = server.aws("lambda", "list-provisioned-concurrency-configs", "--function-name", name)
    assert len(listed["ProvisionedConcurrencyConfigs"]) == 1
    server.aws("lambda", "delete-provisioned-concurrency-config", "--function-name", name,
               "--qualifier", "1")


def test_list_pages(lam, fn):
    name = fn()
    for tag in ("two", "three"):
        publish_new(lam, name, tag)
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion="3")
    for q in ("2", "live", "1"):
        lam.put_provisioned_concurrency_config(FunctionName=name, Qualifier=q,
                                               ProvisionedConcurrentExecutions=1)
    arn = lam.get_function_configuration(FunctionName=name)["FunctionArn"]
    page = lam.list_provisioned_concurrency_configs(FunctionName=name, MaxItems=2)
    assert [c["FunctionArn"] for c in page["ProvisionedConcurrencyConfigs"]] == [
        arn + ":1", arn + ":2"]
    rest = lam.list_provisioned_concurrency_configs(FunctionName=name, Marker=page["NextMarker"])
    assert [c["FunctionArn"] for c in rest["ProvisionedConcurrencyConfigs"]] == [arn + ":live"]
    assert "NextMarker" not in rest
    everything = lam.get_paginator("list_provisioned_concurrency_configs").paginate(
        FunctionName=name, PaginationConfig={"PageSize": 1})
    assert sum(len(p["ProvisionedConcurrencyConfigs"]) for p in everything) == 3


# --- errors ---------------------------------------------------------------------------

def test_errors(lam, server, fn):
    name = fn()
    arn = lam.get_function_configuration(FunctionName=name)["FunctionArn"]
    other = "arn:aws:lambda:%s:%s:function:doesnotexist" % (REGION, arn.split(":")[4])
    raw = raw_client(server)

    with pytest.raises(ClientError) as e:
        lam.get_provisioned_concurrency_config(FunctionName=name, Qualifier="1")
    assert error(e) == (404, "ProvisionedConcurrencyConfigNotFoundException", NOT_FOUND)
    cases = [
        (lambda: lam.get_provisioned_concurrency_config(FunctionName="doesnotexist",
                                                        Qualifier="noalias"),
         (404, "ResourceNotFoundException", "Cannot find alias arn: %s:noalias" % other)),
        (lambda: lam.get_provisioned_concurrency_config(FunctionName=name, Qualifier="noalias"),
         (404, "ResourceNotFoundException", "Cannot find alias arn: %s:noalias" % arn)),
        (lambda: lam.get_provisioned_concurrency_config(FunctionName=name, Qualifier="10"),
         (404, "ResourceNotFoundException", "Function not found: %s:10" % arn)),
        (lambda: lam.get_provisioned_concurrency_config(FunctionName=name, Qualifier="$LATEST"),
         (400, "InvalidParameterValueException", NOT_PUBLISHED)),
        (lambda: lam.list_provisioned_concurrency_configs(FunctionName="doesnotexist"),
         (404, "ResourceNotFoundException", "Function not found: %s" % other)),
        (lambda: lam.delete_provisioned_concurrency_config(FunctionName="doesnotexist",
                                                           Qualifier="1"),
         (404, "ResourceNotFoundException", "Function not found: %s:1" % other)),
        (lambda: lam.delete_provisioned_concurrency_config(FunctionName=name,
                                                           Qualifier="noalias"),
         (404, "ResourceNotFoundException", "Cannot find alias arn: %s:noalias" % arn)),
        (lambda: lam.delete_provisioned_concurrency_config(FunctionName=name, Qualifier="10"),
         (404, "ResourceNotFoundException", "Function not found: %s:10" % arn)),
        (lambda: lam.delete_provisioned_concurrency_config(FunctionName=name,
                                                           Qualifier="$LATEST"),
         (400, "InvalidParameterValueException", NOT_PUBLISHED)),
        (lambda: raw.put_provisioned_concurrency_config(FunctionName=name, Qualifier="1",
                                                        ProvisionedConcurrentExecutions=0),
         (400, "ValidationException",
          "1 validation error detected: Value '0' at 'provisionedConcurrentExecutions' failed "
          "to satisfy constraint: Member must have value greater than or equal to 1")),
        (lambda: lam.put_provisioned_concurrency_config(FunctionName="doesnotexist",
                                                        Qualifier="noalias",
                                                        ProvisionedConcurrentExecutions=1),
         (404, "ResourceNotFoundException", "Cannot find alias arn: %s:noalias" % other)),
        (lambda: lam.put_provisioned_concurrency_config(FunctionName="doesnotexist",
                                                        Qualifier="1",
                                                        ProvisionedConcurrentExecutions=1),
         (404, "ResourceNotFoundException", "Function not found: %s:1" % other)),
        (lambda: lam.put_provisioned_concurrency_config(FunctionName=name,
                                                        Qualifier="doesnotexist",
                                                        ProvisionedConcurrentExecutions=1),
         (404, "ResourceNotFoundException", "Cannot find alias arn: %s:doesnotexist" % arn)),
        (lambda: lam.put_provisioned_concurrency_config(FunctionName=name, Qualifier="10",
                                                        ProvisionedConcurrentExecutions=1),
         (404, "ResourceNotFoundException", "Function not found: %s:10" % arn)),
        (lambda: lam.put_provisioned_concurrency_config(FunctionName=name, Qualifier="$LATEST",
                                                        ProvisionedConcurrentExecutions=1),
         (400, "InvalidParameterValueException", UNPUBLISHED)),
        (lambda: raw.put_provisioned_concurrency_config(FunctionName=name + ":1",
                                                        Qualifier="2",
                                                        ProvisionedConcurrentExecutions=1),
         (400, "InvalidParameterValueException",
          "The derived qualifier from the function name does not match the specified "
          "qualifier.")),
    ]
    for call, want in cases:
        with pytest.raises(ClientError) as e:
            call()
        assert error(e) == want
    # Lambda's errors carry Type User
    assert e.value.response["Type"] == "User"
    # deleting a config that does not exist succeeds
    assert lam.delete_provisioned_concurrency_config(
        FunctionName=name, Qualifier="1")["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert lam.list_provisioned_concurrency_configs(
        FunctionName=name)["ProvisionedConcurrencyConfigs"] == []
    # the qualifier may come with the name (a qualified ARN)
    put = raw.put_provisioned_concurrency_config(FunctionName=arn + ":1", Qualifier="1",
                                                 ProvisionedConcurrentExecutions=1)
    assert put["ResponseMetadata"]["HTTPStatusCode"] == 202
    lam.delete_provisioned_concurrency_config(FunctionName=arn + ":1", Qualifier="1")


def test_latest_refused_even_through_an_alias(lam, fn):
    name = fn(publish=False)
    lam.create_alias(FunctionName=name, Name="head", FunctionVersion="$LATEST")
    for q in ("$LATEST", "head"):
        with pytest.raises(ClientError) as e:
            lam.put_provisioned_concurrency_config(FunctionName=name, Qualifier=q,
                                                   ProvisionedConcurrentExecutions=1)
        assert error(e) == (400, "InvalidParameterValueException", UNPUBLISHED)


# --- aliases --------------------------------------------------------------------------

def test_alias(lam, server, fn):
    name = fn()
    arn = lam.get_function_configuration(FunctionName=name)["FunctionArn"]
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
    put = lam.put_provisioned_concurrency_config(FunctionName=name, Qualifier="live",
                                                 ProvisionedConcurrentExecutions=1)
    assert put["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert put["Status"] == "IN_PROGRESS"
    assert wait_status(lam, name, "live")["AvailableProvisionedConcurrentExecutions"] == 1
    assert wait_marks(server, name, 1) == ["INIT-MARK provisioned-concurrency"]
    # the alias's version cannot have a config of its own
    with pytest.raises(ClientError) as e:
        lam.put_provisioned_concurrency_config(FunctionName=name, Qualifier="1",
                                               ProvisionedConcurrentExecutions=1)
    assert error(e) == (409, "ResourceConflictException",
                        "Version is pointed by a Provisioned Concurrency alias")
    r = invoke(lam, name, {}, Qualifier="live", LogType="Tail")
    assert r["json"] == {"init": "provisioned-concurrency", "version": "1", "tag": "one"}
    assert "Init Duration" not in tail(r)
    # the version itself runs on the same provisioned instances
    assert invoke(lam, name, {}, Qualifier="1")["json"]["init"] == "provisioned-concurrency"
    listed = lam.list_provisioned_concurrency_configs(FunctionName=name)
    assert [c["FunctionArn"] for c in listed["ProvisionedConcurrencyConfigs"]] == [
        arn + ":live"]

    # pointing the alias at another version moves its provisioned instances along
    v2 = publish_new(lam, name, "two")
    lam.update_alias(FunctionName=name, Name="live", FunctionVersion=v2)
    wait_status(lam, name, "live")
    r = invoke(lam, name, {}, Qualifier="live", LogType="Tail")
    assert r["json"] == {"init": "provisioned-concurrency", "version": "2", "tag": "two"}
    assert "Init Duration" not in tail(r)
    # ... and it cannot point at $LATEST while it has provisioned concurrency
    with pytest.raises(ClientError) as e:
        lam.update_alias(FunctionName=name, Name="live", FunctionVersion="$LATEST")
    assert error(e) == (400, "InvalidParameterValueException", UNPUBLISHED)

    # deleting the alias deletes its config
    before = unreserved(lam)
    lam.delete_alias(FunctionName=name, Name="live")
    with pytest.raises(ClientError) as e:
        lam.get_provisioned_concurrency_config(FunctionName=name, Qualifier="live")
    assert error(e) == (404, "ResourceNotFoundException", "Cannot find alias arn: %s:live" % arn)
    assert lam.list_provisioned_concurrency_configs(
        FunctionName=name)["ProvisionedConcurrencyConfigs"] == []
    assert unreserved(lam) == before + 1


def test_alias_on_a_provisioned_version(lam, fn):
    name = fn()
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
    lam.put_provisioned_concurrency_config(FunctionName=name, Qualifier="1",
                                           ProvisionedConcurrentExecutions=1)
    with pytest.raises(ClientError) as e:
        lam.put_provisioned_concurrency_config(FunctionName=name, Qualifier="live",
                                               ProvisionedConcurrentExecutions=1)
    assert error(e) == (409, "ResourceConflictException",
                        "Alias can't be used for Provisioned Concurrency configuration on an "
                        "already Provisioned version")
    # once the version's config is gone the alias can have one
    lam.delete_provisioned_concurrency_config(FunctionName=name, Qualifier="1")
    lam.put_provisioned_concurrency_config(FunctionName=name, Qualifier="live",
                                           ProvisionedConcurrentExecutions=1)
    wait_status(lam, name, "live")


# --- limits ---------------------------------------------------------------------------

def test_reserved_concurrency_bounds_it(lam, fn):
    name = fn()
    publish_new(lam, name, "two")
    before = unreserved(lam)
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=2)
    with pytest.raises(ClientError) as e:
        lam.put_provisioned_concurrency_config(FunctionName=name, Qualifier="1",
                                               ProvisionedConcurrentExecutions=3)
    assert error(e) == (400, "InvalidParameterValueException",
                        "Requested Provisioned Concurrency should not be greater than the "
                        "reservedConcurrentExecution for function")
    lam.put_provisioned_concurrency_config(FunctionName=name, Qualifier="1",
                                           ProvisionedConcurrentExecutions=1)
    # the sum over versions and aliases counts
    with pytest.raises(ClientError) as e:
        lam.put_provisioned_concurrency_config(FunctionName=name, Qualifier="2",
                                               ProvisionedConcurrentExecutions=2)
    assert error(e)[1] == "InvalidParameterValueException"
    lam.put_provisioned_concurrency_config(FunctionName=name, Qualifier="2",
                                           ProvisionedConcurrentExecutions=1)
    wait_status(lam, name, "1")
    wait_status(lam, name, "2")
    # inside the reservation: the account's numbers only see the reservation
    assert unreserved(lam) == before - 2
    assert body(lam.get_function_concurrency(FunctionName=name)) == {
        "ReservedConcurrentExecutions": 2}
    # the reservation cannot shrink below what is provisioned
    with pytest.raises(ClientError) as e:
        lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=1)
    assert error(e)[:2] == (400, "InvalidParameterValueException")
    # without the reservation the provisioned 2 come out of the unreserved pool
    lam.delete_function_concurrency(FunctionName=name)
    assert unreserved(lam) == before - 2
    # replacing its runners (a change of the reservation) keeps it provisioned
    wait_status(lam, name, "1")
    r = invoke(lam, name, {}, Qualifier="2", LogType="Tail")
    assert r["json"]["init"] == "provisioned-concurrency"
    lam.delete_function(FunctionName=name)
    assert unreserved(lam) == before


def test_account_unreserved_minimum(tmp_path):
    s = Server(str(tmp_path / "data"), env={"IGNIS_ACCOUNT_CONCURRENCY": "102"}).start()
    try:
        lam = s.client("lambda")
        a, b = create(lam), create(lam)
        with pytest.raises(ClientError) as e:
            lam.put_provisioned_concurrency_config(FunctionName=a, Qualifier="1",
                                                   ProvisionedConcurrentExecutions=103)
        assert error(e) == (400, "InvalidParameterValueException",
                            "Specified ConcurrentExecutions for function is greater than "
                            "account's unreserved concurrency [102].")
        with pytest.raises(ClientError) as e:
            lam.put_provisioned_concurrency_config(FunctionName=a, Qualifier="1",
                                                   ProvisionedConcurrentExecutions=3)
        assert error(e) == (400, "InvalidParameterValueException",
                            "Specified ConcurrentExecutions for function decreases account's "
                            "UnreservedConcurrentExecution below its minimum value of [100].")
        lam.put_provisioned_concurrency_config(FunctionName=a, Qualifier="1",
                                               ProvisionedConcurrentExecutions=2)
        assert unreserved(lam) == 100
        # the pool is full: no reservation elsewhere, no more provisioned concurrency
        with pytest.raises(ClientError) as e:
            lam.put_function_concurrency(FunctionName=b, ReservedConcurrentExecutions=1)
        assert error(e) == (400, "InvalidParameterValueException",
                            "Specified ReservedConcurrentExecutions for function decreases "
                            "account's UnreservedConcurrentExecution below its minimum value "
                            "of [100].")
        with pytest.raises(ClientError) as e:
            lam.put_provisioned_concurrency_config(FunctionName=b, Qualifier="1",
                                                   ProvisionedConcurrentExecutions=1)
        assert error(e)[1] == "InvalidParameterValueException"
        # replacing a's own config counts it once
        lam.put_provisioned_concurrency_config(FunctionName=a, Qualifier="1",
                                               ProvisionedConcurrentExecutions=1)
        assert unreserved(lam) == 101
        lam.delete_provisioned_concurrency_config(FunctionName=a, Qualifier="1")
        assert unreserved(lam) == 102
        assert s.stop() == 0, s.read_log()[-5000:]
    finally:
        if s.proc:
            s.stop()


# --- persistence, deletion, failure ----------------------------------------------------

def test_survives_restart(fresh_server):
    s = fresh_server
    lam = s.client("lambda")
    name = create(lam)
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
    v2 = publish_new(lam, name, "two")
    lam.put_provisioned_concurrency_config(FunctionName=name, Qualifier="live",
                                           ProvisionedConcurrentExecutions=1)
    lam.put_provisioned_concurrency_config(FunctionName=name, Qualifier=v2,
                                           ProvisionedConcurrentExecutions=1)
    modified = wait_status(lam, name, "live")["LastModified"]
    wait_status(lam, name, v2)
    assert len(wait_marks(s, name, 2)) == 2
    assert unreserved(lam) == 998
    s.restart()
    lam = s.client("lambda")
    got = body(lam.get_provisioned_concurrency_config(FunctionName=name, Qualifier="live"))
    assert got["RequestedProvisionedConcurrentExecutions"] == 1
    assert got["LastModified"] == modified
    assert unreserved(lam) == 998
    # warm again with no invoke: two more instances ran their init
    wait_status(lam, name, "live")
    wait_status(lam, name, v2)
    assert wait_marks(s, name, 4) == ["INIT-MARK provisioned-concurrency"] * 4
    for q, version in (("live", "1"), (v2, v2)):
        r = invoke(lam, name, {}, Qualifier=q, LogType="Tail")
        assert r["json"]["init"] == "provisioned-concurrency"
        assert r["json"]["version"] == version
        assert "Init Duration" not in tail(r)
    assert s.stop() == 0, s.read_log()[-5000:]


def test_deleting_a_version_or_the_function_drops_its_config(lam, fn):
    name = fn()
    publish_new(lam, name, "two")
    before = unreserved(lam)
    lam.put_provisioned_concurrency_config(FunctionName=name, Qualifier="1",
                                           ProvisionedConcurrentExecutions=1)
    lam.put_provisioned_concurrency_config(FunctionName=name, Qualifier="2",
                                           ProvisionedConcurrentExecutions=1)
    assert unreserved(lam) == before - 2
    lam.delete_function(FunctionName=name, Qualifier="1")
    arn = lam.get_function_configuration(FunctionName=name)["FunctionArn"]
    with pytest.raises(ClientError) as e:
        lam.get_provisioned_concurrency_config(FunctionName=name, Qualifier="1")
    assert error(e) == (404, "ResourceNotFoundException", "Function not found: %s:1" % arn)
    assert [c["FunctionArn"] for c in lam.list_provisioned_concurrency_configs(
        FunctionName=name)["ProvisionedConcurrencyConfigs"]] == [arn + ":2"]
    assert unreserved(lam) == before - 1
    lam.delete_function(FunctionName=name)
    assert unreserved(lam) == before


def test_failed_init(lam, fn):
    name = fn(src=BROKEN)
    lam.put_provisioned_concurrency_config(FunctionName=name, Qualifier="1",
                                           ProvisionedConcurrentExecutions=1)
    assert lam.get_provisioned_concurrency_config(FunctionName=name,
                                                  Qualifier="1")["Status"] == "IN_PROGRESS"
    got = wait_status(lam, name, "1", want="FAILED", timeout=30)
    assert got["StatusReason"] == "FUNCTION_ERROR_INIT_FAILURE"
    assert got["AvailableProvisionedConcurrentExecutions"] == 0
    lam.delete_provisioned_concurrency_config(FunctionName=name, Qualifier="1")
