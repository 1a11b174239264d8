"""CloudWatch metric alarms: PutMetricAlarm / DescribeAlarms / DeleteAlarms /
SetAlarmState / DescribeAlarmHistory through the aws CLI and boto3, state
changes on data (OK, ALARM, INSUFFICIENT_DATA), a Lambda function as the
alarm action receiving CloudWatch's alarm event, an alarm on a function's
own Errors metric, and alarms surviving a restart.

Alarms are evaluated every 200 ms here (IGNIS_ALARM_EVAL_MS); each alarm
looks at its last EvaluationPeriods periods, the newest one in progress."""
import json
import time

import pytest

from conftest import ROLE, Server, code, invoke, log_messages, make_zip, unique

ENV = {"IGNIS_METRICS_FLUSH_MS": "200", "IGNIS_ALARM_EVAL_MS": "200"}

RECORDER = code("""
    import json
    def handler(event, context):
        print("ALARM-EVENT " + json.dumps(event))
        return "ok"
""")

FAILER = code("""
    def handler(event, context):
        raise RuntimeError("always")
""")


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    s = Server(str(tmp_path_factory.mktemp("alarms") / "data"), env=ENV).start()
    yield s
    if s.proc:
        assert s.stop() == 0, s.read_log()


@pytest.fixture(scope="module")
def cw(srv):
    return srv.client("cloudwatch")


@pytest.fixture(scope="module")
def lam(srv):
    return srv.client("lambda")


def function(lam, src):
    name = unique("al")
    lam.create_function(FunctionName=name, Runtime="python3.12", Handler="app.handler",
                        Role=ROLE, Code={"ZipFile": make_zip({"app.py": src})})
    return name, lam.get_function(FunctionName=name)["Configuration"]["FunctionArn"]


def alarm(cw, name):
    got = cw.describe_alarms(AlarmNames=[name])["MetricAlarms"]
    return got[0] if got else None


def wait_state(cw, name, state, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        a = alarm(cw, name)
        if a and a["StateValue"] == state:
            return a
        time.sleep(0.1)
    raise AssertionError(f"alarm {name} never reached {state}: {alarm(cw, name)}")


def alarm_events(srv, fn, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        evs = [json.loads(m.split("ALARM-EVENT ", 1)[1]) for m in log_messages(srv, fn)
               if "ALARM-EVENT " in m]
        if evs:
            return evs
        time.sleep(0.2)
    return []


def test_alarm_goes_to_alarm_and_invokes_its_function(srv, cw, lam):
    fn, arn = function(lam, RECORDER)
    ns, name = unique("App"), unique("alarm")
    srv.aws("cloudwatch", "put-metric-alarm", "--alarm-name", name, "--namespace", ns,
            "--metric-name", "Load", "--dimensions", "Name=Host,Value=h1", "--statistic",
            "Maximum", "--period", "60", "--evaluation-periods", "2", "--datapoints-to-alarm",
            "1", "--threshold", "50", "--comparison-operator", "GreaterThanThreshold",
            "--alarm-actions", arn, "--alarm-description", "load too high")
    a = srv.aws("cloudwatch", "describe-alarms", "--alarm-names", name)["MetricAlarms"][0]
    assert a["StateValue"] == "INSUFFICIENT_DATA"
    assert a["AlarmArn"] == f"arn:aws:cloudwatch:us-east-1:000000000000:alarm:{name}"
    assert a["AlarmActions"] == [arn] and a["ActionsEnabled"] is True
    assert a["Threshold"] == 50.0 and a["Period"] == 60 and a["EvaluationPeriods"] == 2
    assert a["Dimensions"] == [{"Name": "Host", "Value": "h1"}]

    cw.put_metric_data(Namespace=ns, MetricData=[
        {"MetricName": "Load", "Value": 20, "Dimensions": [{"Name": "Host", "Value": "h1"}]}])
    ok = wait_state(cw, name, "OK")
    assert "was not greater than" in ok["StateReason"] or "were not greater than" in ok["StateReason"]
    cw.put_metric_data(Namespace=ns, MetricData=[
        {"MetricName": "Load", "Value": 90, "Dimensions": [{"Name": "Host", "Value": "h1"}]}])
    a = wait_state(cw, name, "ALARM")
    assert a["StateReason"].startswith("Threshold Crossed: 1 out of the last 2 datapoints [90")
    data = json.loads(a["StateReasonData"])
    assert data["statistic"] == "Maximum" and data["threshold"] == 50.0
    assert 90.0 in data["recentDatapoints"]

    evs = alarm_events(srv, fn)
    assert len(evs) == 1, evs
    ev = evs[0]
    assert ev["source"] == "aws.cloudwatch" and ev["alarmArn"] == a["AlarmArn"]
    assert ev["accountId"] == "000000000000" and ev["region"] == "us-east-1"
    d = ev["alarmData"]
    assert d["alarmName"] == name
    assert d["state"]["value"] == "ALARM" and d["previousState"]["value"] == "OK"
    assert d["state"]["reason"] == a["StateReason"]
    assert d["configuration"]["description"] == "load too high"
    m = d["configuration"]["metrics"][0]["metricStat"]
    assert m["metric"] == {"namespace": ns, "name": "Load", "dimensions": {"Host": "h1"}}
    assert m["period"] == 60 and m["stat"] == "Maximum"

    hist = cw.describe_alarm_history(AlarmName=name)["AlarmHistoryItems"]
    kinds = [h["HistoryItemType"] for h in hist]
    assert "StateUpdate" in kinds and "ConfigurationUpdate" in kinds and "Action" in kinds
    upd = [h for h in hist if h["HistoryItemType"] == "StateUpdate"]
    assert upd[0]["HistorySummary"] == "Alarm updated from OK to ALARM"  # newest first
    only = cw.describe_alarm_history(AlarmName=name, HistoryItemType="Action")
    assert [h["HistoryItemType"] for h in only["AlarmHistoryItems"]] == ["Action"]
    assert "Successfully executed action" in only["AlarmHistoryItems"][0]["HistorySummary"]


def test_alarm_on_a_functions_errors(srv, cw, lam):
    failing, _ = function(lam, FAILER)
    rec, rec_arn = function(lam, RECORDER)
    name = unique("errors")
    cw.put_metric_alarm(AlarmName=name, Namespace="AWS/Lambda", MetricName="Errors",
                        Dimensions=[{"Name": "FunctionName", "Value": failing}], Statistic="Sum",
                        Period=60, EvaluationPeriods=2, DatapointsToAlarm=1, Threshold=1,
                        ComparisonOperator="GreaterThanOrEqualToThreshold",
                        TreatMissingData="notBreaching", AlarmActions=[rec_arn])
    wait_state(cw, name, "OK")  # missing data is not breaching
    r = invoke(lam, failing, {})
    assert r.get("FunctionError") == "Unhandled"
    wait_state(cw, name, "ALARM")
    evs = alarm_events(srv, rec)
    assert evs and evs[0]["alarmData"]["configuration"]["metrics"][0]["metricStat"]["metric"][
        "dimensions"] == {"FunctionName": failing}


def test_set_alarm_state_and_metrics_form(cw, lam):
    rec, rec_arn = function(lam, RECORDER)
    ns, name = unique("App"), unique("m")
    cw.put_metric_alarm(AlarmName=name, EvaluationPeriods=1, Threshold=5,
                        ComparisonOperator="LessThanThreshold", OKActions=[rec_arn],
                        Metrics=[{"Id": "m1", "ReturnData": True, "MetricStat": {
                            "Metric": {"Namespace": ns, "MetricName": "Free"}, "Period": 60,
                            "Stat": "Minimum"}}])
    a = alarm(cw, name)
    assert a["Metrics"][0]["MetricStat"]["Stat"] == "Minimum" and "MetricName" not in a
    cw.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="testing",
                       StateReasonData='{"why": "test"}')
    a = alarm(cw, name)
    assert a["StateValue"] == "ALARM" and a["StateReason"] == "testing"
    assert json.loads(a["StateReasonData"]) == {"why": "test"}
    cw.put_metric_data(Namespace=ns, MetricData=[{"MetricName": "Free", "Value": 10}])
    wait_state(cw, name, "OK")
    assert cw.describe_alarms(StateValue="OK", AlarmNamePrefix=name)["MetricAlarms"]
    assert not cw.describe_alarms(StateValue="ALARM", AlarmNamePrefix=name)["MetricAlarms"]


def test_validation_and_delete(srv, cw):
    base = dict(Namespace="App", MetricName="X", Statistic="Sum", Period=60,
                EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanThreshold")
    with pytest.raises(cw.exceptions.ClientError) as e:
        cw.put_metric_alarm(AlarmName="bad", **{**base, "ComparisonOperator": "Bigger"})
    assert e.value.response["Error"]["Code"] == "ValidationError"
    with pytest.raises(cw.exceptions.ClientError) as e:
        cw.put_metric_alarm(AlarmName="bad", AlarmActions=["arn:aws:sns:us-east-1:000000000000:t"],
                            **base)
    assert e.value.response["Error"]["Code"] == "ValidationError"
    with pytest.raises(cw.exceptions.ClientError) as e:
        cw.put_metric_alarm(AlarmName="bad", DatapointsToAlarm=2, **base)
    assert e.value.response["Error"]["Code"] == "ValidationError"
    p = srv.aws("cloudwatch", "put-metric-alarm", "--alarm-name", "bad", "--metric-name", "X",
                "--namespace", "App", "--statistic", "Sum", "--period", "60",
                "--threshold", "1", "--comparison-operator", "GreaterThanThreshold",
                check=False, parse=False)
    assert p.returncode != 0  # --evaluation-periods is required
    names = [unique("d") for _ in range(3)]
    for n in names:
        cw.put_metric_alarm(AlarmName=n, **base)
    got = cw.describe_alarms(AlarmNames=names, MaxRecords=2)
    assert [a["AlarmName"] for a in got["MetricAlarms"]] == sorted(names)[:2]
    rest = cw.describe_alarms(AlarmNames=names, MaxRecords=2, NextToken=got["NextToken"])
    assert [a["AlarmName"] for a in rest["MetricAlarms"]] == sorted(names)[2:]
    assert "NextToken" not in rest
    with pytest.raises(cw.exceptions.ResourceNotFound):
        cw.delete_alarms(AlarmNames=[names[0], "no-such-alarm"])
    assert len(cw.describe_alarms(AlarmNames=names)["MetricAlarms"]) == 3  # nothing deleted
    srv.aws("cloudwatch", "delete-alarms", "--alarm-names", *names)
    assert cw.describe_alarms(AlarmNames=names)["MetricAlarms"] == []
    assert cw.describe_alarms(AlarmTypes=["CompositeAlarm"])["MetricAlarms"] == []


def test_alarms_survive_restart(tmp_path):
    s = Server(str(tmp_path / "data"), env=ENV).start()
    try:
        cw = s.client("cloudwatch")
        cw.put_metric_alarm(AlarmName="keep", Namespace="App", MetricName="X", Statistic="Sum",
                            Period=60, EvaluationPeriods=1, Threshold=1,
                            ComparisonOperator="GreaterThanThreshold")
        cw.set_alarm_state(AlarmName="keep", StateValue="ALARM", StateReason="before the crash")
        s.kill9()
        s.extra_env = {"IGNIS_ALARM_EVAL_MS": "600000"}  # no evaluation: the state is as stored
        s.start()
        a = s.client("cloudwatch").describe_alarms(AlarmNames=["keep"])["MetricAlarms"][0]
        assert a["StateValue"] == "ALARM" and a["StateReason"] == "before the crash"
        assert a["Threshold"] == 1.0
    finally:
        if s.proc:
            s.stop()
