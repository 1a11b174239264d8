"""Lambda resource-based policies: AddPermission, GetPolicy, RemovePermission
with the aws CLI and boto3 (statements as Lambda renders them, errors, per
version/alias policies, revision ids, persistence, gone with the function)."""
import json

import pytest

from conftest import REGION, code, unique

ACCOUNT = "000000000000"
HANDLER = {"app.py": code("""
    def handler(event, context):
        return event
""")}


def arn(name, qualifier=None):
    a = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"
    return f"{a}:{qualifier}" if qualifier else a


def error_code(excinfo):
    return excinfo.value.response["Error"]["Code"], excinfo.value.response["Error"]["Message"]


def test_add_get_remove_with_cli(server, create_function):
    name = create_function(HANDLER)
    out = server.aws("lambda", "add-permission", "--function-name", name, "--statement-id",
                     "s3invoke", "--action", "lambda:InvokeFunction", "--principal",
                     "s3.amazonaws.com", "--source-arn", "arn:aws:s3:::my-bucket",
                     "--source-account", "123456789012")
    st = json.loads(out["Statement"])
    assert st == {
        "Sid": "s3invoke", "Effect": "Allow", "Principal": {"Service": "s3.amazonaws.com"},
        "Action": "lambda:InvokeFunction", "Resource": arn(name),
        "Condition": {"StringEquals": {"AWS:SourceAccount": "123456789012"},
                      "ArnLike": {"AWS:SourceArn": "arn:aws:s3:::my-bucket"}},
    }
    # AWS's order of members, not just the same members
    assert list(st) == ["Sid", "Effect", "Principal", "Action", "Resource", "Condition"]
    assert list(st["Condition"]) == ["StringEquals", "ArnLike"]

    got = server.aws("lambda", "get-policy", "--function-name", name)
    policy = json.loads(got["Policy"])
    assert policy == {"Version": "2012-10-17", "Id": "default", "Statement": [st]}
    assert got["RevisionId"]

    server.aws("lambda", "remove-permission", "--function-name", name, "--statement-id",
               "s3invoke")
    p = server.aws("lambda", "get-policy", "--function-name", name, check=False, parse=False)
    assert p.returncode != 0
    assert "ResourceNotFoundException" in p.stderr
    assert "No policy is associated with the given resource." in p.stderr


def test_principals_and_conditions(lam, create_function):
    name = create_function(HANDLER)
    r = lam.add_permission(FunctionName=name, StatementId="xaccount",
                           Action="lambda:InvokeFunction", Principal="123456789012")
    assert json.loads(r["Statement"])["Principal"] == {"AWS": "arn:aws:iam::123456789012:root"}
    r = lam.add_permission(FunctionName=name, StatementId="url", Action="lambda:InvokeFunctionUrl",
                           Principal="*", FunctionUrlAuthType="NONE")
    st = json.loads(r["Statement"])
    assert st["Principal"] == "*"
    assert st["Condition"] == {"StringEquals": {"lambda:FunctionUrlAuthType": "NONE"}}
    r = lam.add_permission(FunctionName=name, StatementId="org", Action="lambda:GetFunction",
                           Principal="*", PrincipalOrgID="o-a1b2c3d4e5")
    assert json.loads(r["Statement"])["Condition"] == {
        "StringEquals": {"aws:PrincipalOrgID": "o-a1b2c3d4e5"}}
    r = lam.add_permission(FunctionName=name, StatementId="role", Action="lambda:*",
                           Principal="arn:aws:iam::123456789012:role/r")
    st = json.loads(r["Statement"])
    assert st["Principal"] == {"AWS": "arn:aws:iam::123456789012:role/r"}
    assert "Condition" not in st
    policy = json.loads(lam.get_policy(FunctionName=name)["Policy"])
    assert [s["Sid"] for s in policy["Statement"]] == ["xaccount", "url", "org", "role"]


def test_errors(lam, create_function):
    name = create_function(HANDLER)
    lam.add_permission(FunctionName=name, StatementId="one", Action="lambda:InvokeFunction",
                       Principal="s3.amazonaws.com")
    with pytest.raises(lam.exceptions.ResourceConflictException) as e:
        lam.add_permission(FunctionName=name, StatementId="one", Action="lambda:InvokeFunction",
                           Principal="sns.amazonaws.com")
    assert error_code(e)[1] == ("The statement id (one) provided already exists. Please provide "
                                "a new statement id, or remove the existing statement.")
    with pytest.raises(lam.exceptions.ResourceNotFoundException) as e:
        lam.remove_permission(FunctionName=name, StatementId="nope")
    assert error_code(e)[1] == "Statement nope is not found in resource policy."
    with pytest.raises(lam.exceptions.ResourceNotFoundException) as e:
        lam.get_policy(FunctionName=unique("missing"))
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.add_permission(FunctionName=unique("missing"), StatementId="a",
                           Action="lambda:InvokeFunction", Principal="s3.amazonaws.com")
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.remove_permission(FunctionName=unique("missing"), StatementId="a")
    with pytest.raises(lam.exceptions.ClientError) as e:
        lam.add_permission(FunctionName=name, StatementId="bad", Action="s3:GetObject",
                           Principal="s3.amazonaws.com")
    assert error_code(e)[0] == "ValidationException"
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as e:
        lam.add_permission(FunctionName=name, StatementId="bad", Action="lambda:InvokeFunction",
                           Principal="not a principal")
    with pytest.raises(lam.exceptions.InvalidParameterValueException) as e:
        lam.add_permission(FunctionName=name, StatementId="latest", Qualifier="$LATEST",
                           Action="lambda:InvokeFunction", Principal="s3.amazonaws.com")
    with pytest.raises(lam.exceptions.PreconditionFailedException):
        lam.add_permission(FunctionName=name, StatementId="two", Action="lambda:InvokeFunction",
                           Principal="s3.amazonaws.com",
                           RevisionId="00000000-0000-0000-0000-000000000000")
    # nothing of the failed calls was stored
    policy = json.loads(lam.get_policy(FunctionName=name)["Policy"])
    assert [s["Sid"] for s in policy["Statement"]] == ["one"]


def test_revision_ids(lam, create_function):
    name = create_function(HANDLER)
    before = lam.get_function_configuration(FunctionName=name)["RevisionId"]
    lam.add_permission(FunctionName=name, StatementId="a", Action="lambda:InvokeFunction",
                       Principal="s3.amazonaws.com", RevisionId=before)
    rev = lam.get_policy(FunctionName=name)["RevisionId"]
    assert rev != before
    assert lam.get_function_configuration(FunctionName=name)["RevisionId"] == rev
    with pytest.raises(lam.exceptions.PreconditionFailedException):
        lam.remove_permission(FunctionName=name, StatementId="a", RevisionId=before)
    lam.remove_permission(FunctionName=name, StatementId="a", RevisionId=rev)


def test_versions_and_aliases_have_their_own(lam, create_function):
    name = create_function(HANDLER)
    v = lam.publish_version(FunctionName=name)["Version"]
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion=v)
    lam.add_permission(FunctionName=name, StatementId="ver", Qualifier=v,
                       Action="lambda:InvokeFunction", Principal="s3.amazonaws.com")
    lam.add_permission(FunctionName=f"{name}:live", StatementId="ali",
                       Action="lambda:InvokeFunction", Principal="s3.amazonaws.com")
    pv = json.loads(lam.get_policy(FunctionName=name, Qualifier=v)["Policy"])
    assert [(s["Sid"], s["Resource"]) for s in pv["Statement"]] == [("ver", arn(name, v))]
    pa = lam.get_policy(FunctionName=name, Qualifier="live")
    assert [(s["Sid"], s["Resource"]) for s in json.loads(pa["Policy"])["Statement"]] == [
        ("ali", arn(name, "live"))]
    assert pa["RevisionId"] == lam.get_alias(FunctionName=name, Name="live")["RevisionId"]
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_policy(FunctionName=name)
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_policy(FunctionName=name, Qualifier="nosuch")
    # an alias deleted and made again starts without the old policy
    lam.delete_alias(FunctionName=name, Name="live")
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion=v)
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_policy(FunctionName=name, Qualifier="live")


def test_survives_kill9_and_goes_with_function(fresh_server):
    lam = fresh_server.client("lambda")
    name = unique()
    from conftest import ROLE, make_zip
    lam.create_function(FunctionName=name, Runtime="python3.11", Handler="app.handler", Role=ROLE,
                        Code={"ZipFile": make_zip(HANDLER)})
    lam.add_permission(FunctionName=name, StatementId="keep", Action="lambda:InvokeFunction",
                       Principal="s3.amazonaws.com", SourceArn="arn:aws:s3:::b")
    before = lam.get_policy(FunctionName=name)
    fresh_server.kill9()
    fresh_server.start()
    lam = fresh_server.client("lambda")
    after = lam.get_policy(FunctionName=name)
    assert after["Policy"] == before["Policy"]
    assert after["RevisionId"] == before["RevisionId"]
    lam.delete_function(FunctionName=name)
    lam.create_function(FunctionName=name, Runtime="python3.11", Handler="app.handler", Role=ROLE,
                        Code={"ZipFile": make_zip(HANDLER)})
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_policy(FunctionName=name)
