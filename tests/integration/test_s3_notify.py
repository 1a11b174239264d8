"""S3 event notifications to Lambda: Put/GetBucketNotificationConfiguration with
boto3 and the aws CLI, S3's errors for bad configurations, and uploads
(`aws s3 cp`) and deletes reaching the function with S3's event record,
durably (a kill -9 right after the upload loses nothing).

Needs the S3 service: every test is skipped, saying so, while the daemon does
not answer S3's ListBuckets."""
import hashlib
import json
import time

import botocore.exceptions
import pytest

from conftest import REGION, ROLE, code, log_messages, make_zip, unique

ACCOUNT = "000000000000"
HANDLER = {"app.py": code("""
    import json
    def handler(event, context):
        print("EVENT " + json.dumps(event))
        return "ok"
""")}


def fn_arn(name):
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"


def s3_answers(server):
    try:
        server.client("s3").list_buckets()
        return True
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError, ValueError):
        return False


@pytest.fixture
def s3(server):
    if not s3_answers(server):
        pytest.skip("the daemon does not answer S3 (ListBuckets) yet: no S3 service to notify from")
    return server.client("s3")


def make_function(server):
    lam = server.client("lambda")
    name = unique("s3fn")
    lam.create_function(FunctionName=name, Runtime="python3.11", Handler="app.handler",
                        Role=ROLE, Code={"ZipFile": make_zip(HANDLER)})
    return name


def make_bucket(s3):
    bucket = unique("bkt")
    s3.create_bucket(Bucket=bucket)
    return bucket


def events_of(server, name, want, timeout=60):
    """The S3 event documents function `name` printed, once there are `want` of them."""
    deadline = time.time() + timeout
    while True:
        got = [json.loads(m.split("EVENT ", 1)[1]) for m in log_messages(server, name)
               if "EVENT " in m]
        if len(got) >= want or time.time() > deadline:
            return got
        time.sleep(0.2)


def lambda_config(name, events, prefix=None, suffix=None, id=None):
    c = {"LambdaFunctionArn": fn_arn(name), "Events": events}
    if id:
        c["Id"] = id
    rules = []
    if prefix is not None:
        rules.append({"Name": "prefix", "Value": prefix})
    if suffix is not None:
        rules.append({"Name": "suffix", "Value": suffix})
    if rules:
        c["Filter"] = {"Key": {"FilterRules": rules}}
    return c


def test_put_and_get_configuration(server, s3):
    name = make_function(server)
    bucket = make_bucket(s3)
    assert "LambdaFunctionConfigurations" not in s3.get_bucket_notification_configuration(
        Bucket=bucket)
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={
        "LambdaFunctionConfigurations": [
            lambda_config(name, ["s3:ObjectCreated:*"], prefix="images/", suffix=".jpg",
                          id="thumbs"),
            lambda_config(name, ["s3:ObjectRemoved:*"]),
        ]})
    got = s3.get_bucket_notification_configuration(Bucket=bucket)["LambdaFunctionConfigurations"]
    assert got[0] == {"Id": "thumbs", "LambdaFunctionArn": fn_arn(name),
                      "Events": ["s3:ObjectCreated:*"],
                      "Filter": {"Key": {"FilterRules": [{"Name": "Prefix", "Value": "images/"},
                                                         {"Name": "Suffix", "Value": ".jpg"}]}}}
    assert got[1]["Events"] == ["s3:ObjectRemoved:*"]
    assert got[1]["Id"]  # generated, as S3 does
    # the CLI sees the same document
    out = server.aws("s3api", "get-bucket-notification-configuration", "--bucket", bucket)
    assert out["LambdaFunctionConfigurations"] == got
    # an empty configuration removes them
    server.aws("s3api", "put-bucket-notification-configuration", "--bucket", bucket,
               "--notification-configuration", "{}")
    assert "LambdaFunctionConfigurations" not in s3.get_bucket_notification_configuration(
        Bucket=bucket)


def test_configuration_errors(server, s3):
    name = make_function(server)
    bucket = make_bucket(s3)

    def put(cfg):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            s3.put_bucket_notification_configuration(Bucket=bucket,
                                                     NotificationConfiguration=cfg)
        return e.value.response["Error"]["Code"], e.value.response["Error"]["Message"]

    code_, msg = put({"LambdaFunctionConfigurations": [
        lambda_config(unique("nosuch"), ["s3:ObjectCreated:*"])]})
    assert (code_, msg) == ("InvalidArgument",
                            "Unable to validate the following destination configurations")
    code_, msg = put({"LambdaFunctionConfigurations": [
        lambda_config(name, ["s3:ObjectCreated:*"], prefix="a/"),
        lambda_config(name, ["s3:ObjectCreated:Put"], prefix="a/b")]})
    assert code_ == "InvalidArgument"
    assert msg.startswith("Configurations overlap.")
    code_, _ = put({"QueueConfigurations": [
        {"QueueArn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:q", "Events": ["s3:ObjectCreated:*"]}]})
    assert code_ == "InvalidArgument"
    # nothing of the refused configurations was kept
    assert "LambdaFunctionConfigurations" not in s3.get_bucket_notification_configuration(
        Bucket=bucket)


def test_upload_and_delete_invoke_the_function(server, s3, tmp_path):
    name = make_function(server)
    server.client("lambda").add_permission(
        FunctionName=name, StatementId="s3", Action="lambda:InvokeFunction",
        Principal="s3.amazonaws.com", SourceArn="arn:aws:s3:::*")
    bucket = make_bucket(s3)
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={
        "LambdaFunctionConfigurations": [
            lambda_config(name, ["s3:ObjectCreated:*"], prefix="in/", suffix=".jpg", id="up"),
            lambda_config(name, ["s3:ObjectRemoved:*"], prefix="in/", id="gone")]})
    body = b"\xff\xd8 not really a jpeg " * 100
    f = tmp_path / "photo.jpg"
    f.write_bytes(body)
    # first one that does not match (suffix), then one that does: events of a function are
    # delivered in order, so if the first had been sent it would be there first
    server.aws("s3", "cp", str(f), f"s3://{bucket}/in/skip.txt", parse=False)
    server.aws("s3", "cp", str(f), f"s3://{bucket}/in/my photo.jpg", parse=False)
    got = events_of(server, name, 1)
    assert len(got) == 1, got
    rec = got[0]["Records"][0]
    assert rec["eventVersion"] == "2.1"
    assert rec["eventSource"] == "aws:s3"
    assert rec["awsRegion"] == REGION
    assert rec["eventName"] == "ObjectCreated:Put"
    assert rec["eventTime"].endswith("Z")
    s3doc = rec["s3"]
    assert s3doc["configurationId"] == "up"
    assert s3doc["bucket"]["name"] == bucket
    assert s3doc["bucket"]["arn"] == f"arn:aws:s3:::{bucket}"
    assert s3doc["object"]["key"] == "in/my+photo.jpg"
    assert s3doc["object"]["size"] == len(body)
    assert s3doc["object"]["eTag"] == hashlib.md5(body).hexdigest()
    int(s3doc["object"]["sequencer"], 16)
    assert rec["responseElements"]["x-amz-request-id"]

    server.aws("s3", "rm", f"s3://{bucket}/in/my photo.jpg", parse=False)
    got = events_of(server, name, 2)
    assert len(got) == 2, got
    rec = got[1]["Records"][0]
    assert rec["eventName"].startswith("ObjectRemoved:")
    assert rec["s3"]["configurationId"] == "gone"
    assert rec["s3"]["object"]["key"] == "in/my+photo.jpg"
    assert "size" not in rec["s3"]["object"] and "eTag" not in rec["s3"]["object"]


def test_event_survives_kill9(fresh_server, tmp_path):
    if not s3_answers(fresh_server):
        pytest.skip("the daemon does not answer S3 (ListBuckets) yet: no S3 service to notify from")
    s3 = fresh_server.client("s3")
    name = make_function(fresh_server)
    bucket = make_bucket(s3)
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={
        "LambdaFunctionConfigurations": [lambda_config(name, ["s3:ObjectCreated:Put"])]})
    s3.put_object(Bucket=bucket, Key="k1", Body=b"one")
    fresh_server.kill9()
    fresh_server.start()
    # delivered before the kill or again after it: at least once, never lost
    got = events_of(fresh_server, name, 1)
    assert got and got[0]["Records"][0]["s3"]["object"]["key"] == "k1"
    # and the configuration itself survived
    s3 = fresh_server.client("s3")
    cfg = s3.get_bucket_notification_configuration(Bucket=bucket)
    assert cfg["LambdaFunctionConfigurations"][0]["LambdaFunctionArn"] == fn_arn(name)
