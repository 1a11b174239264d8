"""S3 object storage through /usr/bin/aws (s3 and s3api) and boto3: buckets,
objects, ranges and conditions, copies, listings, multipart uploads, folder
trees, and S3's XML errors. Wire-level forms (signatures, presigned URLs,
aws-chunked, hostile keys, crashes) are in test_s3_wire.py."""
import hashlib
import json
import os
import time

import pytest
from botocore.exceptions import ClientError

from s3util import bucket_name, error_of, raw, s3_client, signed_request

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def s3(server):
    return s3_client(server)


@pytest.fixture
def bucket(s3):
    name = bucket_name()
    s3.create_bucket(Bucket=name)
    yield name
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name):
            for o in page.get("Contents", []):
                s3.delete_object(Bucket=name, Key=o["Key"])
        for u in s3.list_multipart_uploads(Bucket=name).get("Uploads", []):
            s3.abort_multipart_upload(Bucket=name, Key=u["Key"], UploadId=u["UploadId"])
        s3.delete_bucket(Bucket=name)
    except ClientError:
        pass


def code(exc):
    return exc.value.response["Error"]["Code"]


def status(exc):
    return exc.value.response["ResponseMetadata"]["HTTPStatusCode"]


# Buckets ------------------------------------------------------------------

def test_bucket_lifecycle_with_cli(server):
    name = bucket_name()
    p = server.aws("s3", "mb", f"s3://{name}", parse=False)
    assert f"make_bucket: {name}" in p.stdout
    names = [b["Name"] for b in server.aws("s3api", "list-buckets")["Buckets"]]
    assert name in names
    assert server.aws("s3api", "head-bucket", "--bucket", name) is None
    assert server.aws("s3api", "get-bucket-location", "--bucket", name) == {
        "LocationConstraint": None}
    again = server.aws("s3api", "create-bucket", "--bucket", name, check=False, parse=False)
    assert again.returncode != 0 and "BucketAlreadyOwnedByYou" in again.stderr
    server.aws("s3", "cp", "-", f"s3://{name}/k", input="x", parse=False)
    full = server.aws("s3", "rb", f"s3://{name}", check=False, parse=False)
    assert full.returncode != 0 and "BucketNotEmpty" in full.stderr
    server.aws("s3", "rm", f"s3://{name}/k", parse=False)
    server.aws("s3", "rb", f"s3://{name}", parse=False)
    gone = server.aws("s3api", "head-bucket", "--bucket", name, check=False, parse=False)
    assert gone.returncode != 0 and "404" in gone.stderr


def test_bucket_errors(s3):
    for bad in ("ab", "UpperCase", "under_score", "-lead", "trail-", "a..b", "192.168.1.1",
                "x" * 64):
        with pytest.raises(ClientError) as e:
            s3.create_bucket(Bucket=bad)
        assert code(e) == "InvalidBucketName", bad
        assert status(e) == 400
    missing = bucket_name("missing")
    with pytest.raises(ClientError) as e:
        s3.delete_bucket(Bucket=missing)
    assert code(e) == "NoSuchBucket" and status(e) == 404
    with pytest.raises(ClientError) as e:
        s3.list_objects_v2(Bucket=missing)
    assert code(e) == "NoSuchBucket"
    assert e.value.response["Error"]["BucketName"] == missing
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=missing, Key="k", Body=b"x")
    assert code(e) == "NoSuchBucket"


def test_location_constraint(s3):
    name = bucket_name()
    s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    try:
        assert s3.get_bucket_location(Bucket=name)["LocationConstraint"] == "eu-west-1"
        h = s3.head_bucket(Bucket=name)
        assert h["ResponseMetadata"]["HTTPHeaders"]["x-amz-bucket-region"] == "eu-west-1"
        assert any(b["Name"] == name for b in s3.list_buckets()["Buckets"])
    finally:
        s3.delete_bucket(Bucket=name)
    with pytest.raises(ClientError) as e:
        s3.create_bucket(Bucket=bucket_name(),
                         CreateBucketConfiguration={"LocationConstraint": "us-east-1"})
    assert code(e) == "InvalidLocationConstraint"


def test_unimplemented_subresources(s3, bucket):
    with pytest.raises(ClientError) as e:
        s3.get_bucket_acl(Bucket=bucket)
    assert code(e) == "NotImplemented" and status(e) == 501
    with pytest.raises(ClientError) as e:
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    assert code(e) == "NotImplemented"
    with pytest.raises(ClientError) as e:
        s3.get_bucket_policy(Bucket=bucket)
    assert code(e) == "NotImplemented"
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    with pytest.raises(ClientError) as e:
        s3.put_object_tagging(Bucket=bucket, Key="k", Tagging={"TagSet": []})
    assert code(e) == "NotImplemented"


# Objects ------------------------------------------------------------------

def test_put_get_head_with_metadata(server, s3, bucket):
    body = os.urandom(100_000)
    r = s3.put_object(Bucket=bucket, Key="dir/obj.bin", Body=body, ContentType="image/png",
                      Metadata={"Color": "blue", "n": "1"}, ContentEncoding="identity",
                      ContentDisposition="attachment; filename=x.png", CacheControl="max-age=60",
                      ContentLanguage="fr", Expires="Wed, 21 Oct 2037 07:28:00 GMT")
    md5 = hashlib.md5(body).hexdigest()
    assert r["ETag"] == f'"{md5}"'
    g = s3.get_object(Bucket=bucket, Key="dir/obj.bin")
    assert g["Body"].read() == body
    assert g["ContentType"] == "image/png"
    assert g["Metadata"] == {"color": "blue", "n": "1"}
    assert g["ContentEncoding"] == "identity"
    assert g["ContentDisposition"] == "attachment; filename=x.png"
    assert g["CacheControl"] == "max-age=60"
    assert g["ContentLanguage"] == "fr"
    assert g["ETag"] == f'"{md5}"'
    assert g["ContentLength"] == len(body)
    h = s3.head_object(Bucket=bucket, Key="dir/obj.bin")
    assert h["ContentLength"] == len(body) and h["ETag"] == f'"{md5}"'
    headers = h["ResponseMetadata"]["HTTPHeaders"]
    # RFC 1123, as S3 sends it
    time.strptime(headers["last-modified"], "%a, %d %b %Y %H:%M:%S GMT")
    assert len(headers["x-amz-request-id"]) == 16 and headers["x-amz-id-2"]
    assert headers["expires"] == "Wed, 21 Oct 2037 07:28:00 GMT"
    # defaults; overwrite replaces
    s3.put_object(Bucket=bucket, Key="dir/obj.bin", Body=b"second")
    g = s3.get_object(Bucket=bucket, Key="dir/obj.bin")
    assert g["Body"].read() == b"second" and g["Metadata"] == {}
    assert g["ContentType"] == "binary/octet-stream"
    # empty object
    s3.put_object(Bucket=bucket, Key="empty", Body=b"")
    g = s3.get_object(Bucket=bucket, Key="empty")
    assert g["Body"].read() == b"" and g["ETag"] == '"d41d8cd98f00b204e9800998ecf8427e"'


def test_missing_key_errors(server, s3, bucket):
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="nope/x")
    assert code(e) == "NoSuchKey" and status(e) == 404
    assert e.value.response["Error"]["Key"] == "nope/x"
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="nope")
    assert status(e) == 404
    # HEAD errors carry no body; GET errors are S3's XML with Resource and RequestId
    st, h, body = signed_request(server, "HEAD", f"/{bucket}/nope")
    assert st == 404 and body == b""
    st, h, body = signed_request(server, "GET", f"/{bucket}/nope")
    err = error_of(body)
    assert st == 404 and err["Code"] == "NoSuchKey"
    assert err["Resource"] == f"/{bucket}/nope" and err["RequestId"] == h["x-amz-request-id"]
    assert h["content-type"] == "application/xml"


def test_cli_object_commands(server, bucket, tmp_path):
    f = tmp_path / "hello.txt"
    f.write_text("hello world\n")
    server.aws("s3", "cp", str(f), f"s3://{bucket}/a/hello.txt", parse=False)
    h = server.aws("s3api", "head-object", "--bucket", bucket, "--key", "a/hello.txt")
    assert h["ContentType"] == "text/plain" and h["ContentLength"] == 12
    out = tmp_path / "out.txt"
    server.aws("s3api", "get-object", "--bucket", bucket, "--key", "a/hello.txt", str(out))
    assert out.read_text() == "hello world\n"
    server.aws("s3api", "put-object", "--bucket", bucket, "--key", "meta",
               "--body", str(f), "--metadata", "k1=v1", "--content-type", "text/x-test")
    h = server.aws("s3api", "head-object", "--bucket", bucket, "--key", "meta")
    assert h["Metadata"] == {"k1": "v1"} and h["ContentType"] == "text/x-test"
    ls = server.aws("s3", "ls", f"s3://{bucket}/", parse=False).stdout
    assert "PRE a/" in ls and "meta" in ls
    server.aws("s3", "mv", f"s3://{bucket}/meta", f"s3://{bucket}/moved", parse=False)
    keys = [o["Key"] for o in server.aws("s3api", "list-objects-v2", "--bucket", bucket)
            ["Contents"]]
    assert keys == ["a/hello.txt", "moved"]


def test_ranges(server, s3, bucket):
    body = bytes(range(256)) * 4
    s3.put_object(Bucket=bucket, Key="r", Body=body)
    for rng, first, last in (("bytes=0-9", 0, 9), ("bytes=1000-", 1000, 1023),
                             ("bytes=-24", 1000, 1023), ("bytes=10-5000", 10, 1023),
                             ("bytes=-5000", 0, 1023)):
        g = s3.get_object(Bucket=bucket, Key="r", Range=rng)
        assert g["ResponseMetadata"]["HTTPStatusCode"] == 206, rng
        assert g["ContentRange"] == f"bytes {first}-{last}/1024"
        assert g["Body"].read() == body[first:last + 1]
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="r", Range="bytes=1024-")
    assert code(e) == "InvalidRange" and status(e) == 416
    assert e.value.response["Error"]["ActualObjectSize"] == "1024"
    h = s3.head_object(Bucket=bucket, Key="r", Range="bytes=0-9")
    assert h["ResponseMetadata"]["HTTPStatusCode"] == 206 and h["ContentLength"] == 10
    assert h["ResponseMetadata"]["HTTPHeaders"]["content-range"] == "bytes 0-9/1024"
    # unparsable ranges are ignored: the whole object
    g = s3.get_object(Bucket=bucket, Key="r", Range="lines=1-2")
    assert g["ResponseMetadata"]["HTTPStatusCode"] == 200 and g["ContentLength"] == 1024


def test_conditional_requests(s3, bucket):
    r = s3.put_object(Bucket=bucket, Key="c", Body=b"conditional")
    etag = r["ETag"]
    modified = s3.head_object(Bucket=bucket, Key="c")["LastModified"]
    assert s3.get_object(Bucket=bucket, Key="c", IfMatch=etag)["Body"].read() == b"conditional"
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="c", IfMatch='"0123"')
    assert status(e) == 412 and code(e) == "PreconditionFailed"
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="c", IfNoneMatch=etag)
    assert status(e) == 304
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="c", IfModifiedSince=modified)
    assert status(e) == 304
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="c", IfUnmodifiedSince="Mon, 01 Jan 2001 00:00:00 GMT")
    assert status(e) == 412
    g = s3.get_object(Bucket=bucket, Key="c", IfModifiedSince="Mon, 01 Jan 2001 00:00:00 GMT")
    assert g["Body"].read() == b"conditional"
    # If-Match wins over If-Unmodified-Since, as S3 documents
    g = s3.get_object(Bucket=bucket, Key="c", IfMatch=etag,
                      IfUnmodifiedSince="Mon, 01 Jan 2001 00:00:00 GMT")
    assert g["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_delete_object_and_objects(server, s3, bucket):
    for k in ("a", "b", "c", "d"):
        s3.put_object(Bucket=bucket, Key=k, Body=k.encode())
    r = s3.delete_object(Bucket=bucket, Key="a")
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 204
    s3.delete_object(Bucket=bucket, Key="never-there")  # 204 too
    r = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "b"}, {"Key": "zz"}]})
    assert sorted(d["Key"] for d in r["Deleted"]) == ["b", "zz"]
    r = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "c"}], "Quiet": True})
    assert "Deleted" not in r and "Errors" not in r
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["d"]
    st, h, body = signed_request(server, "POST", f"/{bucket}", body=b"<Delete><Object>",
                                 query="delete=")
    assert st == 400 and error_of(body)["Code"] == "MalformedXML"


def test_copy_object(s3, bucket):
    s3.put_object(Bucket=bucket, Key="src", Body=b"copy me", ContentType="text/x-a",
                  Metadata={"a": "1"})
    r = s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"})
    assert r["CopyObjectResult"]["ETag"] == '"%s"' % hashlib.md5(b"copy me").hexdigest()
    g = s3.get_object(Bucket=bucket, Key="dst")
    assert g["Body"].read() == b"copy me"
    assert g["ContentType"] == "text/x-a" and g["Metadata"] == {"a": "1"}
    other = bucket_name()
    s3.create_bucket(Bucket=other)
    try:
        s3.copy_object(Bucket=other, Key="x y/é", CopySource=f"{bucket}/src",
                       MetadataDirective="REPLACE", ContentType="text/x-b",
                       Metadata={"b": "2"})
        g = s3.get_object(Bucket=other, Key="x y/é")
        assert g["ContentType"] == "text/x-b" and g["Metadata"] == {"b": "2"}
        s3.delete_object(Bucket=other, Key="x y/é")
    finally:
        s3.delete_bucket(Bucket=other)
    with pytest.raises(ClientError) as e:
        s3.copy_object(Bucket=bucket, Key="src", CopySource=f"{bucket}/src")
    assert code(e) == "InvalidRequest"
    s3.copy_object(Bucket=bucket, Key="src", CopySource=f"{bucket}/src",
                   MetadataDirective="REPLACE", Metadata={"new": "yes"})
    assert s3.head_object(Bucket=bucket, Key="src")["Metadata"] == {"new": "yes"}
    with pytest.raises(ClientError) as e:
        s3.copy_object(Bucket=bucket, Key="x", CopySource=f"{bucket}/missing")
    assert code(e) == "NoSuchKey"
    with pytest.raises(ClientError) as e:
        s3.copy_object(Bucket=bucket, Key="x", CopySource=f"{bucket}/src",
                       CopySourceIfMatch='"nope"')
    assert code(e) == "PreconditionFailed"


# Listings -----------------------------------------------------------------

def test_list_objects_v2_pagination_and_delimiter(s3, bucket):
    keys = [f"logs/{d}/f{i}" for d in ("a", "b", "c") for i in range(5)] + \
           [f"top{i}" for i in range(7)] + ["z", "é", "ü/x", "b"]
    for k in keys:
        s3.put_object(Bucket=bucket, Key=k, Body=b".")
    want = sorted(keys, key=lambda k: k.encode())  # UTF-8 byte order
    got, token, pages = [], None, 0
    while True:
        args = dict(Bucket=bucket, MaxKeys=7)
        if token:
            args["ContinuationToken"] = token
        r = s3.list_objects_v2(**args)
        pages += 1
        got += [o["Key"] for o in r.get("Contents", [])]
        assert r["KeyCount"] == len(r.get("Contents", []))
        if not r["IsTruncated"]:
            break
        token = r["NextContinuationToken"]
    assert got == want and pages == (len(keys) + 6) // 7
    r = s3.list_objects_v2(Bucket=bucket, Delimiter="/")
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["logs/", "ü/"]
    assert [o["Key"] for o in r["Contents"]] == [k for k in want if "/" not in k]
    r = s3.list_objects_v2(Bucket=bucket, Prefix="logs/", Delimiter="/")
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["logs/a/", "logs/b/", "logs/c/"]
    assert "Contents" not in r
    # prefixes count toward max-keys and paginate too
    r = s3.list_objects_v2(Bucket=bucket, Prefix="logs/", Delimiter="/", MaxKeys=2)
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["logs/a/", "logs/b/"]
    assert r["IsTruncated"]
    r = s3.list_objects_v2(Bucket=bucket, Prefix="logs/", Delimiter="/", MaxKeys=2,
                           ContinuationToken=r["NextContinuationToken"])
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["logs/c/"] and not r["IsTruncated"]
    r = s3.list_objects_v2(Bucket=bucket, StartAfter="top3")
    assert [o["Key"] for o in r["Contents"]] == [k for k in want if k.encode() > b"top3"]
    r = s3.list_objects_v2(Bucket=bucket, Prefix="logs/b/")
    assert [o["Key"] for o in r["Contents"]] == [f"logs/b/f{i}" for i in range(5)]
    c = r["Contents"][0]
    assert c["Size"] == 1 and c["StorageClass"] == "STANDARD" and "Owner" not in c
    r = s3.list_objects_v2(Bucket=bucket, Prefix="logs/b/", FetchOwner=True)
    assert r["Contents"][0]["Owner"]["DisplayName"]
    with pytest.raises(ClientError) as e:
        s3.list_objects_v2(Bucket=bucket, ContinuationToken="!!!")
    assert code(e) == "InvalidArgument"


def test_list_objects_v1_and_paginators(s3, bucket):
    for k in ["a/1", "a/2", "b/1", "c", "d"]:
        s3.put_object(Bucket=bucket, Key=k, Body=b".")
    r = s3.list_objects(Bucket=bucket, Delimiter="/", MaxKeys=2)
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["a/", "b/"]
    assert r["IsTruncated"] and r["NextMarker"] == "b/"
    r = s3.list_objects(Bucket=bucket, Delimiter="/", Marker="b/")
    assert [o["Key"] for o in r["Contents"]] == ["c", "d"] and not r["IsTruncated"]
    r = s3.list_objects(Bucket=bucket, Marker="a/2")
    assert [o["Key"] for o in r["Contents"]] == ["b/1", "c", "d"]
    assert r["Contents"][0]["Owner"]["ID"]
    keys = [o["Key"] for p in s3.get_paginator("list_objects").paginate(
        Bucket=bucket, PaginationConfig={"PageSize": 2}) for o in p.get("Contents", [])]
    assert keys == ["a/1", "a/2", "b/1", "c", "d"]


def test_list_encoding_type_url(server, s3, bucket):
    key = "sp ace/plus+/amp&/new\nline"
    s3.put_object(Bucket=bucket, Key=key, Body=b".")
    # boto3 asks for encoding-type=url and decodes it
    r = s3.list_objects_v2(Bucket=bucket)
    assert [o["Key"] for o in r["Contents"]] == [key]
    st, h, body = signed_request(server, "GET", f"/{bucket}",
                                 query="list-type=2&encoding-type=url")
    assert st == 200 and b"<Key>sp+ace/plus%2B/amp%26/new%0Aline</Key>" in body
    assert b"<EncodingType>url</EncodingType>" in body
    out = server.aws("s3api", "list-objects-v2", "--bucket", bucket)
    assert [o["Key"] for o in out["Contents"]] == [key]


# Multipart ----------------------------------------------------------------

def test_multipart_upload_boto3(s3, bucket):
    up = s3.create_multipart_upload(Bucket=bucket, Key="mp", ContentType="text/x-mp",
                                    Metadata={"m": "1"})
    uid = up["UploadId"]
    assert [u["UploadId"] for u in s3.list_multipart_uploads(Bucket=bucket)["Uploads"]] == [uid]
    p1 = os.urandom(5 * MiB)
    p2 = b"tail" * 1000
    e1 = s3.upload_part(Bucket=bucket, Key="mp", UploadId=uid, PartNumber=1, Body=p1)["ETag"]
    e2 = s3.upload_part(Bucket=bucket, Key="mp", UploadId=uid, PartNumber=2, Body=p2)["ETag"]
    parts = s3.list_parts(Bucket=bucket, Key="mp", UploadId=uid)["Parts"]
    assert [(p["PartNumber"], p["Size"], p["ETag"]) for p in parts] == \
        [(1, len(p1), e1), (2, len(p2), e2)]
    with pytest.raises(ClientError) as e:
        s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=uid, MultipartUpload={
            "Parts": [{"PartNumber": 2, "ETag": e2}, {"PartNumber": 1, "ETag": e1}]})
    assert code(e) == "InvalidPartOrder"
    with pytest.raises(ClientError) as e:
        s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=uid, MultipartUpload={
            "Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": '"abc"'}]})
    assert code(e) == "InvalidPart"
    with pytest.raises(ClientError) as e:
        s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=uid, MultipartUpload={
            "Parts": [{"PartNumber": 2, "ETag": e2}, {"PartNumber": 3, "ETag": e2}]})
    assert code(e) == "InvalidPart"
    r = s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=uid, MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]})
    digest = hashlib.md5(hashlib.md5(p1).digest() + hashlib.md5(p2).digest()).hexdigest()
    assert r["ETag"] == f'"{digest}-2"' and r["Key"] == "mp" and r["Bucket"] == bucket
    g = s3.get_object(Bucket=bucket, Key="mp")
    assert g["Body"].read() == p1 + p2 and g["ETag"] == f'"{digest}-2"'
    assert g["ContentType"] == "text/x-mp" and g["Metadata"] == {"m": "1"}
    with pytest.raises(ClientError) as e:
        s3.list_parts(Bucket=bucket, Key="mp", UploadId=uid)
    assert code(e) == "NoSuchUpload" and status(e) == 404
    assert "Uploads" not in s3.list_multipart_uploads(Bucket=bucket)


def test_multipart_errors_and_abort(s3, bucket):
    uid = s3.create_multipart_upload(Bucket=bucket, Key="small")["UploadId"]
    e1 = s3.upload_part(Bucket=bucket, Key="small", UploadId=uid, PartNumber=1,
                        Body=b"a" * 100)["ETag"]
    e2 = s3.upload_part(Bucket=bucket, Key="small", UploadId=uid, PartNumber=2,
                        Body=b"b" * 100)["ETag"]
    with pytest.raises(ClientError) as e:
        s3.complete_multipart_upload(Bucket=bucket, Key="small", UploadId=uid, MultipartUpload={
            "Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]})
    assert code(e) == "EntityTooSmall"
    assert e.value.response["Error"]["MinSizeAllowed"] == str(5 * MiB)
    with pytest.raises(ClientError) as e:
        s3.upload_part(Bucket=bucket, Key="small", UploadId=uid, PartNumber=10001, Body=b"x")
    assert code(e) == "InvalidArgument"
    with pytest.raises(ClientError) as e:
        s3.upload_part(Bucket=bucket, Key="other-key", UploadId=uid, PartNumber=1, Body=b"x")
    assert code(e) == "NoSuchUpload"
    # a single small part is fine (the last part may be small)
    r = s3.complete_multipart_upload(Bucket=bucket, Key="small", UploadId=uid,
                                     MultipartUpload={"Parts": [{"PartNumber": 2, "ETag": e2}]})
    assert s3.get_object(Bucket=bucket, Key="small")["Body"].read() == b"b" * 100
    assert r["ETag"].endswith('-1"')
    uid = s3.create_multipart_upload(Bucket=bucket, Key="ab")["UploadId"]
    s3.upload_part(Bucket=bucket, Key="ab", UploadId=uid, PartNumber=1, Body=b"x")
    s3.abort_multipart_upload(Bucket=bucket, Key="ab", UploadId=uid)
    with pytest.raises(ClientError) as e:
        s3.abort_multipart_upload(Bucket=bucket, Key="ab", UploadId=uid)
    assert code(e) == "NoSuchUpload"
    with pytest.raises(ClientError) as e:
        s3.complete_multipart_upload(Bucket=bucket, Key="ab", UploadId=uid,
                                     MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e1}]})
    assert code(e) == "NoSuchUpload"


def test_upload_part_copy(s3, bucket):
    src = os.urandom(6 * MiB)
    s3.put_object(Bucket=bucket, Key="src", Body=src)
    uid = s3.create_multipart_upload(Bucket=bucket, Key="joined")["UploadId"]
    r1 = s3.upload_part_copy(Bucket=bucket, Key="joined", UploadId=uid, PartNumber=1,
                             CopySource={"Bucket": bucket, "Key": "src"},
                             CopySourceRange=f"bytes=0-{5 * MiB - 1}")
    r2 = s3.upload_part_copy(Bucket=bucket, Key="joined", UploadId=uid, PartNumber=2,
                             CopySource={"Bucket": bucket, "Key": "src"})
    e1, e2 = r1["CopyPartResult"]["ETag"], r2["CopyPartResult"]["ETag"]
    assert e1 == '"%s"' % hashlib.md5(src[:5 * MiB]).hexdigest()
    s3.complete_multipart_upload(Bucket=bucket, Key="joined", UploadId=uid, MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]})
    assert s3.get_object(Bucket=bucket, Key="joined")["Body"].read() == src[:5 * MiB] + src


def test_cli_multipart_file_and_folder_tree(server, bucket, tmp_path):
    big = tmp_path / "big.bin"
    data = os.urandom(40 * 1000 * 1000)
    big.write_bytes(data)
    server.aws("s3", "cp", str(big), f"s3://{bucket}/big.bin", "--only-show-errors", parse=False)
    h = server.aws("s3api", "head-object", "--bucket", bucket, "--key", "big.bin")
    ps = 8 * MiB
    md5s = b"".join(hashlib.md5(data[i:i + ps]).digest() for i in range(0, len(data), ps))
    assert h["ETag"] == '"%s-5"' % hashlib.md5(md5s).hexdigest()
    assert h["ContentLength"] == len(data)
    back = tmp_path / "back.bin"
    server.aws("s3", "cp", f"s3://{bucket}/big.bin", str(back), "--only-show-errors", parse=False)
    assert back.read_bytes() == data

    tree = tmp_path / "tree"
    files = {"a/1.txt": b"one", "a/b/2.txt": b"two", "c d/3 + 4.txt": b"three",
             "é/ü.txt": b"unicode", "empty": b""}
    for rel, content in files.items():
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        (tree / rel).write_bytes(content)
    server.aws("s3", "sync", str(tree), f"s3://{bucket}/tree", "--only-show-errors", parse=False)
    listed = server.aws("s3api", "list-objects-v2", "--bucket", bucket, "--prefix", "tree/")
    assert sorted(o["Key"] for o in listed["Contents"]) == sorted(f"tree/{k}" for k in files)
    # a second sync has nothing to do
    p = server.aws("s3", "sync", str(tree), f"s3://{bucket}/tree", parse=False)
    assert "upload:" not in p.stdout
    down = tmp_path / "down"
    server.aws("s3", "sync", f"s3://{bucket}/tree", str(down), "--only-show-errors", parse=False)
    for rel, content in files.items():
        assert (down / rel).read_bytes() == content
    server.aws("s3", "rm", f"s3://{bucket}/tree", "--recursive", "--only-show-errors",
               parse=False)
    left = server.aws("s3api", "list-objects-v2", "--bucket", bucket, "--prefix", "tree/")
    assert not (left or {}).get("Contents")


def test_objects_survive_restart(fresh_server):
    s3 = s3_client(fresh_server)
    name = bucket_name()
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="k", Body=b"durable", Metadata={"x": "y"})
    fresh_server.kill9()
    fresh_server.start()
    s3 = s3_client(fresh_server)
    g = s3.get_object(Bucket=name, Key="k")
    assert g["Body"].read() == b"durable" and g["Metadata"] == {"x": "y"}
    fresh_server.restart()
    assert s3_client(fresh_server).get_object(Bucket=name, Key="k")["Body"].read() == b"durable"
    assert json.loads(json.dumps([b["Name"] for b in s3.list_buckets()["Buckets"]])) == [name]
