"""CloudWatch metrics (service `monitoring`) as `aws cloudwatch` v2 and boto3 use
them (query protocol), and as newer SDKs call them (JSON 1.0, rpc-v2-cbor): custom metrics
with PutMetricData, the AWS/Lambda metrics every invoke records, ListMetrics,
GetMetricStatistics and GetMetricData, their errors, persistence across a
kill -9, and the Prometheus endpoint GET /metrics.

The daemon flushes metrics every 200 ms here (IGNIS_METRICS_FLUSH_MS)."""
import datetime
import http.client
import json
import time
import urllib.parse
import xml.etree.ElementTree as ET

import botocore.auth
import cbor2
import botocore.awsrequest
import botocore.credentials
import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import ACCESS_KEY, REGION, ROLE, SECRET_KEY, Server, code, invoke, make_zip, unique

ENV = {"IGNIS_METRICS_FLUSH_MS": "200", "IGNIS_ALARM_EVAL_MS": "200"}


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    s = Server(str(tmp_path_factory.mktemp("metrics") / "data"), env=ENV).start()
    yield s
    if s.proc:
        assert s.stop() == 0, s.read_log()


@pytest.fixture(scope="module")
def cw(srv):
    return srv.client("cloudwatch")


@pytest.fixture(scope="module")
def lam(srv):
    return srv.client("lambda")


def utc(delta_s=0):
    return datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=delta_s)


def iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def stats(cw, ns, name, dims, statistics=("Sum",), extended=(), period=60, span=600):
    kw = dict(Namespace=ns, MetricName=name, Dimensions=dims, StartTime=utc(-span),
              EndTime=utc(120), Period=period)
    if statistics:
        kw["Statistics"] = list(statistics)
    if extended:
        kw["ExtendedStatistics"] = list(extended)
    return cw.get_metric_statistics(**kw)["Datapoints"]


def total(points, stat="Sum"):
    return sum(p[stat] for p in points)


def signed(srv, body, headers, path="/"):
    """Sends a SigV4-signed POST (service monitoring) with http.client; returns
    (status, headers, body)."""
    req = botocore.awsrequest.AWSRequest(method="POST", url=srv.url + path, data=body,
                                         headers=headers)
    botocore.auth.SigV4Auth(botocore.credentials.Credentials(ACCESS_KEY, SECRET_KEY),
                            "monitoring", REGION).add_auth(req)
    u = urllib.parse.urlparse(srv.url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    conn.request("POST", path, body=body, headers=dict(req.headers.items()))
    r = conn.getresponse()
    data = r.read()
    conn.close()
    return r.status, {k.lower(): v for k, v in r.getheaders()}, data


def json10(srv, op, doc):
    return signed(srv, json.dumps(doc).encode(), {
        "Content-Type": "application/x-amz-json-1.0",
        "X-Amz-Target": "GraniteServiceVersion20100801." + op})


# --- custom metrics ------------------------------------------------------------------

def test_put_and_get_statistics_with_the_aws_cli(srv):
    ns = unique("App")
    srv.aws("cloudwatch", "put-metric-data", "--namespace", ns, "--metric-name", "Latency",
            "--value", "10", "--unit", "Milliseconds", "--dimensions", "Service=api")
    srv.aws("cloudwatch", "put-metric-data", "--namespace", ns, "--metric-data", json.dumps([
        {"MetricName": "Latency", "Dimensions": [{"Name": "Service", "Value": "api"}],
         "Values": [20, 30, 400], "Counts": [1, 2, 1], "Unit": "Milliseconds"}]))
    out = srv.aws("cloudwatch", "get-metric-statistics", "--namespace", ns, "--metric-name",
                  "Latency", "--dimensions", "Name=Service,Value=api", "--start-time",
                  iso(utc(-600)), "--end-time", iso(utc(120)), "--period", "60", "--statistics",
                  "Sum", "SampleCount", "Minimum", "Maximum", "Average")
    assert out["Label"] == "Latency"
    pts = out["Datapoints"]
    assert total(pts) == 490 and total(pts, "SampleCount") == 5
    assert min(p["Minimum"] for p in pts) == 10 and max(p["Maximum"] for p in pts) == 400
    assert all(p["Unit"] == "Milliseconds" for p in pts)
    # other dimensions are another metric; no dimensions too
    assert stats(srv.client("cloudwatch"), ns, "Latency", [{"Name": "Service", "Value": "web"}]) == []
    assert stats(srv.client("cloudwatch"), ns, "Latency", []) == []


def test_percentiles_and_statistic_sets_with_boto3(cw):
    ns = unique("App")
    minute = utc(-120).replace(second=0, microsecond=0)
    cw.put_metric_data(Namespace=ns, MetricData=[
        {"MetricName": "T", "Values": [float(v) for v in range(1, 101)], "Unit": "Seconds",
         "Timestamp": minute}])
    pts = stats(cw, ns, "T", [], statistics=(), extended=("p50", "p90", "p99", "p100"))
    assert len(pts) == 1 and pts[0]["Timestamp"] == minute
    e = pts[0]["ExtendedStatistics"]
    assert e["p50"] == pytest.approx(50, rel=0.02)
    assert e["p90"] == pytest.approx(90, rel=0.02)
    assert e["p99"] == pytest.approx(99, rel=0.02)
    assert e["p100"] == 100
    cw.put_metric_data(Namespace=ns, MetricData=[
        {"MetricName": "S", "StatisticValues": {"SampleCount": 4, "Sum": 10, "Minimum": 1,
                                                "Maximum": 4}, "Unit": "Count"}])
    pts = stats(cw, ns, "S", [], statistics=("Average", "SampleCount", "Maximum"))
    assert len(pts) == 1
    assert pts[0]["Average"] == 2.5 and pts[0]["SampleCount"] == 4 and pts[0]["Maximum"] == 4


def test_timestamps_in_the_past_land_in_their_minute(cw):
    ns = unique("App")
    past = utc(-300).replace(second=30, microsecond=0)
    cw.put_metric_data(Namespace=ns, MetricData=[
        {"MetricName": "Old", "Value": 7, "Timestamp": past}])
    pts = stats(cw, ns, "Old", [])
    assert [p["Sum"] for p in pts] == [7]
    assert pts[0]["Timestamp"] == past.replace(second=0)


def test_get_metric_data(cw):
    ns = unique("App")
    cw.put_metric_data(Namespace=ns, MetricData=[
        {"MetricName": "A", "Value": 1, "Dimensions": [{"Name": "K", "Value": "v"}]},
        {"MetricName": "A", "Value": 5, "Dimensions": [{"Name": "K", "Value": "v"}]},
        {"MetricName": "B", "Value": 3}])
    r = cw.get_metric_data(StartTime=utc(-600), EndTime=utc(60), MetricDataQueries=[
        {"Id": "a", "MetricStat": {"Metric": {"Namespace": ns, "MetricName": "A",
                                              "Dimensions": [{"Name": "K", "Value": "v"}]},
                                   "Period": 60, "Stat": "Maximum"}, "Label": "max of A"},
        {"Id": "b", "MetricStat": {"Metric": {"Namespace": ns, "MetricName": "B"},
                                   "Period": 60, "Stat": "SampleCount"}},
        {"Id": "hidden", "ReturnData": False,
         "MetricStat": {"Metric": {"Namespace": ns, "MetricName": "B"}, "Period": 60,
                        "Stat": "Sum"}},
    ])
    res = {m["Id"]: m for m in r["MetricDataResults"]}
    assert set(res) == {"a", "b"}
    assert res["a"]["Label"] == "max of A" and res["a"]["StatusCode"] == "Complete"
    assert res["a"]["Values"] == [5.0] and len(res["a"]["Timestamps"]) == 1
    assert res["b"]["Label"] == "B" and res["b"]["Values"] == [1.0]
    with pytest.raises(cw.exceptions.ClientError) as e:
        cw.get_metric_data(StartTime=utc(-600), EndTime=utc(60), MetricDataQueries=[
            {"Id": "e", "Expression": "SUM(METRICS())"}])
    assert "not supported" in str(e.value)


def test_list_metrics_filters(srv, cw):
    ns = unique("App")
    cw.put_metric_data(Namespace=ns, MetricData=[
        {"MetricName": "M1", "Value": 1, "Dimensions": [{"Name": "Env", "Value": "prod"}]},
        {"MetricName": "M1", "Value": 1, "Dimensions": [{"Name": "Env", "Value": "dev"}]},
        {"MetricName": "M2", "Value": 1}])
    got = srv.aws("cloudwatch", "list-metrics", "--namespace", ns)["Metrics"]
    assert sorted((m["MetricName"], json.dumps(m["Dimensions"])) for m in got) == [
        ("M1", json.dumps([{"Name": "Env", "Value": "dev"}])),
        ("M1", json.dumps([{"Name": "Env", "Value": "prod"}])),
        ("M2", json.dumps([]))]
    got = cw.list_metrics(Namespace=ns, Dimensions=[{"Name": "Env", "Value": "prod"}])["Metrics"]
    assert [m["Dimensions"] for m in got] == [[{"Name": "Env", "Value": "prod"}]]
    got = cw.list_metrics(Namespace=ns, Dimensions=[{"Name": "Env"}])["Metrics"]
    assert len(got) == 2
    got = cw.list_metrics(Namespace=ns, MetricName="M2", RecentlyActive="PT3H")["Metrics"]
    assert len(got) == 1


def test_errors_in_the_query_protocol(srv, cw):
    p = srv.aws("cloudwatch", "put-metric-data", "--namespace", "AWS/Lambda", "--metric-name",
                "X", "--value", "1", check=False, parse=False)
    assert p.returncode != 0 and "InvalidParameterValue" in p.stderr
    with pytest.raises(cw.exceptions.ClientError) as e:
        cw.put_metric_data(Namespace="App", MetricData=[
            {"MetricName": "X", "Value": 1, "StatisticValues": {
                "SampleCount": 1, "Sum": 1, "Minimum": 1, "Maximum": 1}}])
    assert e.value.response["Error"]["Code"] == "InvalidParameterCombination"
    with pytest.raises(cw.exceptions.ClientError) as e:
        cw.get_metric_statistics(Namespace="App", MetricName="X", StartTime=utc(-60),
                                 EndTime=utc(), Period=60)
    assert e.value.response["Error"]["Code"] == "InvalidParameterCombination"
    with pytest.raises(cw.exceptions.ClientError) as e:
        cw.get_metric_statistics(Namespace="App", MetricName="X", StartTime=utc(-86400 * 14),
                                 EndTime=utc(), Period=60, Statistics=["Sum"])
    assert "exceeds the limit of 1440" in e.value.response["Error"]["Message"]
    with pytest.raises(cw.exceptions.ClientError) as e:
        cw.put_metric_data(Namespace="App", MetricData=[
            {"MetricName": "X", "Value": 1, "Timestamp": utc(-86400 * 15)}])
    assert e.value.response["Error"]["Code"] == "InvalidParameterValue"
    # the raw answer: CloudWatch's XML error document
    status, headers, body = signed(srv, b"Action=GetMetricStatistics&Version=2010-08-01",
                                   {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 400 and headers["content-type"].startswith("text/xml")
    doc = ET.fromstring(body)
    ns = "{http://monitoring.amazonaws.com/doc/2010-08-01/}"
    assert doc.tag == ns + "ErrorResponse"
    assert doc.find(f"{ns}Error/{ns}Type").text == "Sender"
    assert doc.find(f"{ns}Error/{ns}Code").text == "MissingParameter"
    assert "Namespace" in doc.find(f"{ns}Error/{ns}Message").text
    assert doc.find(f"{ns}RequestId").text
    status, _, body = signed(srv, b"Action=PutDashboard&Version=2010-08-01",
                             {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 400 and b"<Code>InvalidAction</Code>" in body


# --- the JSON 1.0 protocol and rpc-v2-cbor -------------------------------------------

def test_json_protocol(srv, cw):
    ns = unique("App")
    status, headers, body = json10(srv, "PutMetricData", {
        "Namespace": ns, "MetricData": [{"MetricName": "J", "Value": 4.5, "Unit": "Count",
                                          "Timestamp": time.time()}]})
    assert status == 200, body
    assert headers["content-type"] == "application/x-amz-json-1.0"
    status, _, body = json10(srv, "GetMetricStatistics", {
        "Namespace": ns, "MetricName": "J", "StartTime": time.time() - 600,
        "EndTime": time.time() + 60, "Period": 60, "Statistics": ["Sum"]})
    assert status == 200, body
    doc = json.loads(body)
    assert doc["Label"] == "J" and len(doc["Datapoints"]) == 1
    p = doc["Datapoints"][0]
    assert p["Sum"] == 4.5 and p["Unit"] == "Count"
    assert isinstance(p["Timestamp"], (int, float)) and abs(p["Timestamp"] - time.time()) < 120
    # what JSON clients see of an error: the query protocol's code in x-amzn-query-error
    status, headers, body = json10(srv, "PutMetricData", {"Namespace": "AWS/EC2", "MetricData": [
        {"MetricName": "J", "Value": 1}]})
    assert status == 400
    assert headers["x-amzn-query-error"] == "InvalidParameterValue;Sender"
    assert json.loads(body)["__type"] == "InvalidParameterValue"
    status, _, body = json10(srv, "ListMetrics", {"Namespace": ns})
    assert status == 200 and json.loads(body)["Metrics"][0]["MetricName"] == "J"


def cbor_call(srv, op, doc=None, raw=None):
    body = raw if raw is not None else cbor2.dumps(doc or {}, datetime_as_timestamp=True,
                                                  timezone=datetime.timezone.utc)
    status, headers, data = signed(srv, body, {
        "Content-Type": "application/cbor", "Accept": "application/cbor",
        "smithy-protocol": "rpc-v2-cbor"},
        path="/service/GraniteServiceVersion20100801/operation/" + op)
    return status, headers, cbor2.loads(data) if data else None


def test_rpc_v2_cbor_protocol(srv):
    ns = unique("App")
    now = utc().replace(microsecond=0)
    status, headers, doc = cbor_call(srv, "PutMetricData", {"Namespace": ns, "MetricData": [
        {"MetricName": "C", "Values": [1.5, 2.5], "Timestamp": now, "Unit": "Count",
         "Dimensions": [{"Name": "K", "Value": "v"}]}]})
    assert status == 200, doc
    assert headers["smithy-protocol"] == "rpc-v2-cbor"
    assert headers["content-type"] == "application/cbor"
    status, _, doc = cbor_call(srv, "GetMetricStatistics", {
        "Namespace": ns, "MetricName": "C", "Dimensions": [{"Name": "K", "Value": "v"}],
        "StartTime": utc(-600), "EndTime": utc(60), "Period": 60,
        "Statistics": ["Sum", "SampleCount"]})
    assert status == 200, doc
    (p,) = doc["Datapoints"]
    assert p["Sum"] == 4.0 and p["SampleCount"] == 2.0
    assert p["Timestamp"] == now.replace(second=0)  # tag 1: a datetime to cbor2
    status, headers, doc = cbor_call(srv, "PutMetricData", {"Namespace": "AWS/S3", "MetricData": [
        {"MetricName": "C", "Value": 1}]})
    assert status == 400 and doc["__type"] == "InvalidParameterValue" and doc["message"]
    assert headers["x-amzn-query-error"] == "InvalidParameterValue;Sender"
    status, _, doc = cbor_call(srv, "ListMetrics", raw=b"\xbf\x61")  # truncated
    assert status == 400 and doc["__type"] == "SerializationException"
    status, _, doc = cbor_call(srv, "ListMetrics", raw=b"\x9b\x10\x00\x00\x00\x00\x00\x00\x00")
    assert status == 400  # claims 2^60 items: refused, nothing allocated


# --- AWS/Lambda metrics --------------------------------------------------------------

HANDLER = code("""
    import time
    def handler(event, context):
        time.sleep(event.get("sleep", 0))
        if event.get("fail"):
            raise RuntimeError("asked to fail")
        return "ok"
""")


def make_function(lam, **kw):
    name = unique("m")
    lam.create_function(FunctionName=name, Runtime="python3.12", Handler="app.handler",
                        Role=ROLE, Code={"ZipFile": make_zip({"app.py": HANDLER})}, **kw)
    return name


def wait_for(fn, timeout=10):
    deadline = time.time() + timeout
    while True:
        v = fn()
        if v or time.time() > deadline:
            return v
        time.sleep(0.1)


def lambda_sum(cw, metric, dims, stat="Sum"):
    return total(stats(cw, "AWS/Lambda", metric, dims, statistics=(stat,)), stat)


def test_lambda_metrics_per_function_resource_and_version(cw, lam):
    name = make_function(lam)
    for ev in ({}, {"sleep": 0.05}, {"fail": True}):
        invoke(lam, name, ev)
    v = lam.publish_version(FunctionName=name)["Version"]
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion=v)
    invoke(lam, name, {}, Qualifier="live")
    invoke(lam, name, {}, Qualifier=v)
    fn = [{"Name": "FunctionName", "Value": name}]
    assert lambda_sum(cw, "Invocations", fn) == 5
    assert lambda_sum(cw, "Errors", fn) == 1
    assert lambda_sum(cw, "Invocations", fn, "SampleCount") == 5
    dur = stats(cw, "AWS/Lambda", "Duration", fn, statistics=("Maximum", "Minimum"),
                extended=("p99",))
    assert max(p["Maximum"] for p in dur) >= 50
    assert all(p["Unit"] == "Milliseconds" for p in dur)
    alias = fn + [{"Name": "Resource", "Value": f"{name}:live"}]
    assert lambda_sum(cw, "Invocations", alias) == 1
    assert lambda_sum(cw, "Invocations", fn + [{"Name": "Resource", "Value": f"{name}:{v}"}]) == 1
    executed = alias + [{"Name": "ExecutedVersion", "Value": v}]
    assert lambda_sum(cw, "Invocations", executed) == 1
    # account-wide, without dimensions
    assert lambda_sum(cw, "Invocations", []) >= 5
    names = {json.dumps(m["Dimensions"], sort_keys=True) for m in cw.list_metrics(
        Namespace="AWS/Lambda", MetricName="Invocations",
        Dimensions=[{"Name": "FunctionName", "Value": name}])["Metrics"]}
    assert len(names) == 4  # function, two resources, alias's executed version
    assert lambda_sum(cw, "ConcurrentExecutions", fn, "Maximum") >= 1


def test_throttles(cw, lam):
    name = make_function(lam)
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
    with pytest.raises(lam.exceptions.TooManyRequestsException):
        lam.invoke(FunctionName=name, Payload=b"{}")
    fn = [{"Name": "FunctionName", "Value": name}]
    assert lambda_sum(cw, "Throttles", fn) == 1
    assert lambda_sum(cw, "Invocations", fn) == 0


def test_async_metrics(cw, lam):
    name = make_function(lam)
    lam.invoke(FunctionName=name, InvocationType="Event", Payload=b"{}")
    fn = [{"Name": "FunctionName", "Value": name}]
    assert wait_for(lambda: lambda_sum(cw, "Invocations", fn) == 1)
    assert lambda_sum(cw, "AsyncEventsReceived", fn) == 1
    age = stats(cw, "AWS/Lambda", "AsyncEventAge", fn, statistics=("SampleCount", "Maximum"))
    assert total(age, "SampleCount") == 1 and age[0]["Maximum"] >= 0


# --- Prometheus ----------------------------------------------------------------------

def scrape(srv):
    u = urllib.parse.urlparse(srv.url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    conn.request("GET", "/metrics")
    r = conn.getresponse()
    body = r.read().decode()
    conn.close()
    assert r.status == 200 and r.getheader("Content-Type").startswith("text/plain; version=0.0.4")
    samples = {}
    for fam in text_string_to_metric_families(body):
        for s in fam.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def test_prometheus_endpoint(srv, lam):
    name = make_function(lam)
    for ev in ({}, {}, {"fail": True}):
        invoke(lam, name, ev)
    s = scrape(srv)
    f = (("function", name),)
    assert s[("ignis_lambda_invocations_total", f)] == 3
    assert s[("ignis_lambda_errors_total", f)] == 1
    assert s[("ignis_lambda_duration_seconds_count", f)] == 3
    assert s[("ignis_lambda_duration_seconds_bucket", f + (("le", "+Inf"),))] == 3
    assert 0 < s[("ignis_lambda_duration_seconds_sum", f)] < 30
    assert s[("ignis_instances", (("state", "idle"),))] >= 1
    assert s[("ignis_cold_starts_total", ())] >= 1
    assert s[("ignis_invocations_waiting", ())] == 0
    assert ("ignis_async_queue_depth", ()) in s
    assert s[("process_resident_memory_bytes", ())] > 1 << 20
    # unsigned and public, but only that path
    u = urllib.parse.urlparse(srv.url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    conn.request("GET", "/metricsx")
    assert conn.getresponse().status == 404


# --- persistence ---------------------------------------------------------------------

def test_metrics_survive_kill9(tmp_path):
    s = Server(str(tmp_path / "data"), env=ENV).start()
    try:
        cw = s.client("cloudwatch")
        cw.put_metric_data(Namespace="Crash", MetricData=[{"MetricName": "C", "Value": 3}])
        time.sleep(1.0)  # five flush intervals
        s.kill9()
        s.start()
        cw = s.client("cloudwatch")
        assert total(stats(cw, "Crash", "C", [])) == 3
        assert [m["MetricName"] for m in cw.list_metrics(Namespace="Crash")["Metrics"]] == ["C"]
    finally:
        if s.proc:
            s.stop()
