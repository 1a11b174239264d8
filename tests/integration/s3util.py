"""Helpers for the S3 tests: clients, raw signed requests (SigV4 header and
aws-chunked forms, signed by hand so a test can tamper with any part), and
XML error parsing."""
import base64
import datetime
import hashlib
import hmac
import http.client
import urllib.parse
import uuid
import xml.etree.ElementTree as ET
import zlib

import boto3
import botocore.config

from conftest import ACCESS_KEY, REGION, SECRET_KEY

EMPTY_SHA = hashlib.sha256(b"").hexdigest()


def s3_client(server, **cfg):
    config = botocore.config.Config(retries={"max_attempts": 0}, read_timeout=120,
                                    connect_timeout=5, **cfg)
    return boto3.client("s3", endpoint_url=server.url, region_name=REGION,
                        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
                        config=config)


def bucket_name(prefix="bkt"):
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def error_of(body):
    """{'Code':..., 'Message':..., ...} of an S3 <Error> document."""
    root = ET.fromstring(body)
    assert root.tag == "Error", body
    return {child.tag: (child.text or "") for child in root}


def _key(secret, date, service="s3"):
    k = hmac.new(("AWS4" + secret).encode(), date.encode(), hashlib.sha256).digest()
    for part in (REGION, service, "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    return k


def _sign(secret, amz_date, creq):
    scope = f"{amz_date[:8]}/{REGION}/s3/aws4_request"
    sts = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                     hashlib.sha256(creq.encode()).hexdigest()])
    key = _key(secret, amz_date[:8])
    return key, scope, hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()


def sign(server, method, path, payload_hash, headers=None, key=ACCESS_KEY, secret=SECRET_KEY,
         query="", host=None):
    """The headers of a SigV4-signed request (path already percent-encoded)."""
    amz_date = datetime.datetime.utcnow().strftime("%Y%m%dT%H%M%SZ")
    host = host or f"127.0.0.1:{server.port}"
    h = {"host": host, "x-amz-date": amz_date, "x-amz-content-sha256": payload_hash}
    for k, v in (headers or {}).items():
        h[k.lower()] = v
    names = sorted(h)
    canon_query = "&".join(sorted(
        f"{urllib.parse.quote(k, safe='-_.~')}={urllib.parse.quote(v, safe='-_.~')}"
        for k, v in urllib.parse.parse_qsl(query, keep_blank_values=True)))
    creq = "\n".join([method, path, canon_query] + [f"{n}:{h[n]}" for n in names] +
                     ["", ";".join(names), h["x-amz-content-sha256"]])
    _, scope, sig = _sign(secret, amz_date, creq)
    h["authorization"] = (f"AWS4-HMAC-SHA256 Credential={key}/{scope}, "
                          f"SignedHeaders={';'.join(names)}, Signature={sig}")
    return h


def signed_request(server, method, path, body=b"", headers=None, payload_hash=None,
                   key=ACCESS_KEY, secret=SECRET_KEY, query="", host=None, send_body=None):
    """Sends a SigV4-signed request (path already percent-encoded) and
    returns (status, headers dict (lower-case names), body)."""
    h = sign(server, method, path, payload_hash or hashlib.sha256(body).hexdigest(), headers,
             key, secret, query, host)
    return raw(server, method, path + ("?" + query if query else ""),
               body if send_body is None else send_body, h)


def raw(server, method, path, body=b"", headers=None):
    c = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, {k.lower(): v for k, v in r.getheaders()}, data


def chunked_body(data, amz_date, key, seed, chunk=65536, tamper_chunk=None, trailer=None):
    """aws-chunked framing of data with each chunk signed in the chain; with
    trailer ({name: value}), the trailing headers and their signature."""
    scope = f"{amz_date[:8]}/{REGION}/s3/aws4_request"
    out, prev = [], seed
    pieces = [data[i:i + chunk] for i in range(0, len(data), chunk)] + [b""]
    for n, piece in enumerate(pieces):
        sts = "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", amz_date, scope, prev, EMPTY_SHA,
                         hashlib.sha256(piece).hexdigest()])
        sig = hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()
        prev = sig
        if n == tamper_chunk:
            sig = ("0" if sig[0] != "0" else "1") + sig[1:]
        out.append(b"%x;chunk-signature=%s\r\n" % (len(piece), sig.encode()))
        if piece:
            out.append(piece + b"\r\n")
    if trailer is not None:
        text = "".join(f"{k}:{v}\n" for k, v in trailer.items())
        sts = "\n".join(["AWS4-HMAC-SHA256-TRAILER", amz_date, scope, prev,
                         hashlib.sha256(text.encode()).hexdigest()])
        sig = hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()
        if tamper_chunk == "trailer":
            sig = ("0" if sig[0] != "0" else "1") + sig[1:]
        out.append(text.replace("\n", "\r\n").encode())
        out.append(b"x-amz-trailer-signature:%s\r\n" % sig.encode())
    out.append(b"\r\n")
    return b"".join(out)


def crc32_b64(data):
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


def chunked_put(server, path, data, chunk=65536, tamper_chunk=None, extra=None, trailer=None):
    """PUT with STREAMING-AWS4-HMAC-SHA256-PAYLOAD (or -TRAILER with trailer)."""
    amz_date = datetime.datetime.utcnow().strftime("%Y%m%dT%H%M%SZ")
    form = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD" + ("-TRAILER" if trailer is not None else "")
    h = {"host": f"127.0.0.1:{server.port}", "x-amz-date": amz_date,
         "x-amz-content-sha256": form,
         "content-encoding": "aws-chunked", "x-amz-decoded-content-length": str(len(data))}
    if trailer is not None:
        h["x-amz-trailer"] = ",".join(trailer)
    h.update(extra or {})
    names = sorted(h)
    creq = "\n".join(["PUT", path, ""] + [f"{n}:{h[n]}" for n in names] +
                     ["", ";".join(names), h["x-amz-content-sha256"]])
    key, scope, seed = _sign(SECRET_KEY, amz_date, creq)
    h["authorization"] = (f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/{scope}, "
                          f"SignedHeaders={';'.join(names)}, Signature={seed}")
    body = chunked_body(data, amz_date, key, seed, chunk, tamper_chunk, trailer)
    return raw(server, "PUT", path, body, h)


def unsigned_trailer_put(server, path, data, crc, chunk=65536):
    """PUT with STREAMING-UNSIGNED-PAYLOAD-TRAILER and an x-amz-checksum-crc32 trailer."""
    pieces = [data[i:i + chunk] for i in range(0, len(data), chunk)]
    body = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces)
    body += b"0\r\nx-amz-checksum-crc32:%s\r\n\r\n" % crc.encode()
    h = sign(server, "PUT", path, "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
             {"content-encoding": "aws-chunked", "x-amz-trailer": "x-amz-checksum-crc32",
              "x-amz-decoded-content-length": str(len(data))})
    return raw(server, "PUT", path, body, h)
