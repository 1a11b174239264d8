"""S3 at the wire: authentication errors (XML, not Lambda's JSON), payload
hashes, aws-chunked bodies with chunk signatures, presigned URLs (SigV4 and
the legacy form, GET and PUT, expiry), virtual-hosted addressing, hostile
keys, and a kill -9 in the middle of an upload."""
import glob
import hashlib
import os
import socket
import time
import urllib.parse

import botocore.auth
import botocore.awsrequest
import botocore.credentials
import pytest
from botocore.exceptions import ClientError

from conftest import ACCESS_KEY, REGION, SECRET_KEY
from s3util import (bucket_name, chunked_put, crc32_b64, error_of, raw, s3_client, sign,
                    signed_request, unsigned_trailer_put)


@pytest.fixture(scope="module")
def s3(server):
    return s3_client(server)


@pytest.fixture(scope="module")
def bucket(s3):
    name = bucket_name("wire")
    s3.create_bucket(Bucket=name)
    return name


def get(s3, bucket, key):
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def absent(s3, bucket, key):
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key=key)
    return e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


# Authentication -------------------------------------------------------------

def test_unsigned_requests_get_s3_xml_errors(server, bucket):
    for method, path in (("GET", f"/{bucket}/k"), ("PUT", f"/{bucket}/k"), ("GET", "/"),
                         ("DELETE", f"/{bucket}")):
        st, h, body = raw(server, method, path)
        assert st == 403, (method, path)
        err = error_of(body)
        assert err["Code"] == "AccessDenied" and err["RequestId"] == h["x-amz-request-id"]
        assert "x-amzn-errortype" not in h


def test_signature_errors(server, bucket):
    st, h, body = signed_request(server, "GET", f"/{bucket}", query="list-type=2",
                                 secret="wrong-secret")
    err = error_of(body)
    assert st == 403 and err["Code"] == "SignatureDoesNotMatch"
    assert err["AWSAccessKeyId"] == ACCESS_KEY
    st, h, body = signed_request(server, "GET", f"/{bucket}", query="list-type=2",
                                 key="AKIAUNKNOWNKEY000000")
    assert st == 403 and error_of(body)["Code"] == "InvalidAccessKeyId"
    s3 = s3_client(server)
    s3._request_signer._credentials = botocore.credentials.Credentials(ACCESS_KEY, "bad")
    with pytest.raises(ClientError) as e:
        s3.list_buckets()
    assert e.value.response["Error"]["Code"] == "SignatureDoesNotMatch"


def test_payload_hash_must_match_body(server, s3, bucket):
    # signed for one body, another sent: a streamed PUT and a whole-body POST
    st, h, body = signed_request(server, "PUT", f"/{bucket}/swap", body=b"signed body",
                                 send_body=b"other body!")
    err = error_of(body)
    assert st == 400 and err["Code"] == "XAmzContentSHA256Mismatch"
    assert err["ClientComputedContentSHA256"] == hashlib.sha256(b"signed body").hexdigest()
    assert absent(s3, bucket, "swap")
    doc = b"<Delete><Object><Key>a</Key></Object></Delete>"
    st, h, body = signed_request(server, "POST", f"/{bucket}", body=doc, query="delete=",
                                 send_body=doc.replace(b"a", b"b"))
    assert st == 400 and error_of(body)["Code"] == "XAmzContentSHA256Mismatch"
    # UNSIGNED-PAYLOAD is accepted; a bad x-amz-content-sha256 value is not
    st, h, body = signed_request(server, "PUT", f"/{bucket}/unsigned", body=b"free",
                                 payload_hash="UNSIGNED-PAYLOAD")
    assert st == 200 and get(s3, bucket, "unsigned") == b"free"
    st, h, body = signed_request(server, "PUT", f"/{bucket}/x", body=b"x", payload_hash="nope")
    assert st == 400 and error_of(body)["Code"] == "InvalidArgument"
    # Content-MD5 is checked
    st, h, body = signed_request(server, "PUT", f"/{bucket}/md5", body=b"abc",
                                 headers={"Content-MD5": "AAAAAAAAAAAAAAAAAAAAAA=="})
    assert st == 400 and error_of(body)["Code"] == "BadDigest"
    assert absent(s3, bucket, "md5")


def test_entity_too_large_and_method_not_allowed(server, bucket):
    st, h, body = signed_request(server, "PUT", f"/{bucket}/huge", payload_hash="UNSIGNED-PAYLOAD",
                                 headers={"Content-Length": str(5 * 1024 ** 3 + 1)},
                                 send_body=b"")
    assert st == 400 and error_of(body)["Code"] == "EntityTooLarge"
    st, h, body = signed_request(server, "PATCH", f"/{bucket}/k")
    assert st == 405 and error_of(body)["Code"] == "MethodNotAllowed"


# aws-chunked ----------------------------------------------------------------

def test_aws_chunked_upload(server, s3, bucket):
    data = os.urandom(200_000)
    st, h, body = chunked_put(server, f"/{bucket}/chunked", data, chunk=65536)
    assert st == 200, body
    assert h["etag"] == '"%s"' % hashlib.md5(data).hexdigest()
    assert get(s3, bucket, "chunked") == data
    # Content-Encoding aws-chunked is the transfer's, not stored
    assert "ContentEncoding" not in s3.head_object(Bucket=bucket, Key="chunked")
    # one bad signature in the chain: refused, nothing kept
    st, h, body = chunked_put(server, f"/{bucket}/tampered", data, chunk=65536, tamper_chunk=2)
    assert st == 403 and error_of(body)["Code"] == "SignatureDoesNotMatch"
    assert absent(s3, bucket, "tampered")
    st, h, body = chunked_put(server, f"/{bucket}/tampered", data, tamper_chunk=4)  # final chunk
    assert st == 403 and absent(s3, bucket, "tampered")
    # decoded length that does not add up
    st, h, body = chunked_put(server, f"/{bucket}/short", data,
                              extra={"x-amz-decoded-content-length": str(len(data) + 1)})
    assert st == 400 and absent(s3, bucket, "short")


def test_aws_chunked_with_trailers(server, s3, bucket):
    data = os.urandom(100_000)
    crc = crc32_b64(data)
    st, h, body = chunked_put(server, f"/{bucket}/trailer", data,
                              trailer={"x-amz-checksum-crc32": crc})
    assert st == 200, body
    assert h["x-amz-checksum-crc32"] == crc and get(s3, bucket, "trailer") == data
    st, h, body = chunked_put(server, f"/{bucket}/bad-trailer-sig", data,
                              trailer={"x-amz-checksum-crc32": crc}, tamper_chunk="trailer")
    assert st == 403 and error_of(body)["Code"] == "SignatureDoesNotMatch"
    st, h, body = chunked_put(server, f"/{bucket}/bad-crc", data,
                              trailer={"x-amz-checksum-crc32": crc32_b64(b"other")})
    assert st == 400 and error_of(body)["Code"] == "BadDigest"
    assert absent(s3, bucket, "bad-trailer-sig") and absent(s3, bucket, "bad-crc")
    st, h, body = unsigned_trailer_put(server, f"/{bucket}/unsigned-trailer", data, crc)
    assert st == 200, body
    assert get(s3, bucket, "unsigned-trailer") == data
    st, h, body = unsigned_trailer_put(server, f"/{bucket}/unsigned-bad", data, crc32_b64(b""))
    assert st == 400 and absent(s3, bucket, "unsigned-bad")


# Presigned URLs ---------------------------------------------------------------

def _http(method, url, body=None, headers=None):
    p = urllib.parse.urlsplit(url)
    c = __import__("http.client").client.HTTPConnection(p.hostname, p.port, timeout=30)
    c.request(method, p.path + ("?" + p.query if p.query else ""), body=body,
              headers=headers or {})
    r = c.getresponse()
    return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()


@pytest.mark.parametrize("version", [None, "s3v4"])
def test_presigned_get_and_put(server, s3, bucket, version):
    cfg = {"signature_version": version} if version else {}
    signer = s3_client(server, **cfg)
    key = f"presigned/{version} é"
    put = signer.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": key},
                                        ExpiresIn=60)
    st, h, body = _http("PUT", put, body=b"via presigned PUT")
    assert st == 200, body
    assert get(s3, bucket, key) == b"via presigned PUT"
    url = signer.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": key,
                              "ResponseContentDisposition": "attachment"}, ExpiresIn=60)
    st, h, body = _http("GET", url)
    assert st == 200 and body == b"via presigned PUT"
    assert h["content-disposition"] == "attachment"
    # the signature covers the method and the key
    st, h, body = _http("DELETE", url)
    assert st == 403 and error_of(body)["Code"] == "SignatureDoesNotMatch"
    st, h, body = _http("GET", url.replace("presigned", "presigneD", 1))
    assert st == 403
    expired = signer.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key},
                                            ExpiresIn=1)
    time.sleep(2.1)
    st, h, body = _http("GET", expired)
    err = error_of(body)
    assert st == 403 and err["Code"] == "AccessDenied" and err["Message"] == "Request has expired"


def test_cli_presign(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="cli-presign", Body=b"from the cli")
    url = server.aws("s3", "presign", f"s3://{bucket}/cli-presign", "--expires-in", "60",
                     parse=False).stdout.strip()
    st, h, body = _http("GET", url)
    assert st == 200 and body == b"from the cli"


# Virtual-hosted addressing --------------------------------------------------------

def _vhost(server, method, bucket, key="", body=b"", host_fmt="{b}.s3.localhost:{p}"):
    host = host_fmt.format(b=bucket, p=server.port)
    req = botocore.awsrequest.AWSRequest(method=method, url=f"http://{host}/{key}", data=body)
    creds = botocore.credentials.Credentials(ACCESS_KEY, SECRET_KEY)
    botocore.auth.S3SigV4Auth(creds, "s3", REGION).add_auth(req)
    headers = dict(req.headers.items())
    headers["Host"] = host
    return raw(server, method, f"/{key}", body, headers)


def test_virtual_hosted_style(server, s3, bucket):
    st, h, body = _vhost(server, "PUT", bucket, "vh/obj", b"virtual")
    assert st == 200, body
    assert get(s3, bucket, "vh/obj") == b"virtual"
    st, h, body = _vhost(server, "GET", bucket, "vh/obj",
                         host_fmt="{b}.s3.us-east-1.localhost:{p}")
    assert st == 200 and body == b"virtual"
    st, h, body = _vhost(server, "GET", bucket, "?list-type=2&prefix=vh%2F")
    assert st == 200 and b"<Key>vh/obj</Key>" in body
    st, h, body = raw(server, "GET", "/vh/obj", headers={"Host": f"{bucket}.s3.localhost"})
    assert st == 403 and error_of(body)["Code"] == "AccessDenied"
    st, h, body = _vhost(server, "GET", bucket_name("none"), "k")
    assert st == 404 and error_of(body)["Code"] == "NoSuchBucket"


# Hostile keys -------------------------------------------------------------------------

def test_hostile_keys_stay_in_the_store(server, s3, bucket):
    keys = ["../../../../etc/passwd", "a/../../b", "/leading/slash", "./dot", "..",
            "k" * 1024, "ü/日本語/🙂", "tab\tand\rcr", "%2F%2e%2e", "question?mark#hash",
            "trailing/"]
    for k in keys:
        s3.put_object(Bucket=bucket, Key=k, Body=k.encode())
    for k in keys:
        assert get(s3, bucket, k) == k.encode(), k
    listed = [o["Key"] for p in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
              for o in p.get("Contents", [])]
    for k in keys:
        assert k in listed
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="k" * 1025, Body=b"x")
    assert e.value.response["Error"]["Code"] == "KeyTooLongError"
    # every file the store holds is one of its own, named by id, under s3/objects
    root = os.path.join(server.data_dir, "s3")
    for path in glob.glob(os.path.join(root, "**"), recursive=True):
        rel = os.path.relpath(path, root)
        parts = rel.split(os.sep)
        assert parts[0] in (".", "objects", "tmp"), rel
        if parts[0] == "objects" and len(parts) == 3:
            assert len(parts[2]) == 32 and parts[2].startswith(parts[1]), rel
    assert not os.path.exists(os.path.join(server.data_dir, "etc"))
    for k in keys:
        s3.delete_object(Bucket=bucket, Key=k)


# Crashes ------------------------------------------------------------------------------

def test_kill9_during_upload_leaves_nothing(fresh_server):
    s3 = s3_client(fresh_server)
    name = bucket_name()
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="big", Body=b"old version")
    # a 64 MB PUT that stops after 8 MB, then the daemon dies
    total = 64 * 1024 * 1024
    headers = sign(fresh_server, "PUT", f"/{name}/big", "UNSIGNED-PAYLOAD",
                   {"Content-Length": str(total)})
    sock = socket.create_connection(("127.0.0.1", fresh_server.port))
    head = f"PUT /{name}/big HTTP/1.1\r\n" + "".join(
        f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    sock.sendall(head.encode())
    chunk = os.urandom(1024 * 1024)
    for _ in range(8):
        sock.sendall(chunk)
    tmp = os.path.join(fresh_server.data_dir, "s3", "tmp")
    deadline = time.time() + 10
    while time.time() < deadline and not any(
            os.path.getsize(os.path.join(tmp, f)) > 0 for f in os.listdir(tmp)):
        time.sleep(0.05)
    assert os.listdir(tmp), "the upload should be on disk, in a temp file"
    fresh_server.kill9()
    sock.close()
    fresh_server.start()
    s3 = s3_client(fresh_server)
    assert get(s3, name, "big") == b"old version"
    assert os.listdir(tmp) == []
    assert "removed 1 unfinished" in fresh_server.read_log()

