"""CloudWatch Logs retention (issue 7) and the log store's bound: PutRetentionPolicy /
DeleteRetentionPolicy with the aws CLI and boto3, retentionInDays in DescribeLogGroups,
expired events never read and their streams deleted, the whole store kept under
IGNIS_LOG_MAX_MB by dropping the oldest streams. A retention "day" is shortened for the
test daemon (IGNIS_LOGS_DAY_MS) so nothing waits a real day."""
import time

import pytest
from botocore.exceptions import ClientError

from conftest import Server, code, invoke, make_zip, ROLE, unique

DAY_MS = 2000  # one retention day of the test daemon

PRINTER = code("""
    def handler(event, context):
        print(event.get("line", "hello"), flush=True)
        print("x" * event.get("pad", 0), flush=True)
        return "ok"
""")


@pytest.fixture
def daemon(tmp_path):
    s = Server(str(tmp_path / "data"),
               env={"IGNIS_LOGS_DAY_MS": str(DAY_MS), "IGNIS_LOG_MAX_MB": "1"}).start()
    yield s
    s.stop()


def deploy(lam):
    name = unique("ret")
    lam.create_function(FunctionName=name, Runtime="python3.12", Handler="app.handler",
                        Role=ROLE, MemorySize=1769, Code={"ZipFile": make_zip({"app.py": PRINTER})})
    return name


def messages(logs, group):
    return [e["message"] for e in logs.filter_log_events(logGroupName=group)["events"]]


def test_retention_policy_round_trip_and_errors(daemon):
    logs = daemon.client("logs")
    logs.create_log_group(logGroupName="/app/one")
    (g,) = logs.describe_log_groups(logGroupNamePrefix="/app/one")["logGroups"]
    assert "retentionInDays" not in g
    daemon.aws("logs", "put-retention-policy", "--log-group-name", "/app/one",
               "--retention-in-days", "7", parse=False)
    (g,) = logs.describe_log_groups(logGroupNamePrefix="/app/one")["logGroups"]
    assert g["retentionInDays"] == 7
    with pytest.raises(ClientError) as e:
        logs.put_retention_policy(logGroupName="/app/one", retentionInDays=2)
    assert e.value.response["Error"]["Code"] == "InvalidParameterException"
    assert "Member must satisfy enum value set: [1, 3, 5, 7," in e.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as e:
        logs.put_retention_policy(logGroupName="/app/none", retentionInDays=1)
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"
    logs.delete_retention_policy(logGroupName="/app/one")
    (g,) = logs.describe_log_groups(logGroupNamePrefix="/app/one")["logGroups"]
    assert "retentionInDays" not in g
    # kept across a restart
    logs.put_retention_policy(logGroupName="/app/one", retentionInDays=30)
    daemon.restart()
    (g,) = daemon.client("logs").describe_log_groups(logGroupNamePrefix="/app/one")["logGroups"]
    assert g["retentionInDays"] == 30


def test_expired_events_are_gone(daemon):
    lam, logs = daemon.client("lambda"), daemon.client("logs")
    name = deploy(lam)
    group = "/aws/lambda/" + name
    invoke(lam, name, {"line": "old line"})
    logs.put_retention_policy(logGroupName=group, retentionInDays=1)
    assert "old line" in "".join(messages(logs, group))
    # the instance's stream is still being written: its old events hide, the file stays
    time.sleep(DAY_MS / 1000 * 1.5)
    invoke(lam, name, {"line": "new line"})
    text = "".join(messages(logs, group))
    assert "new line" in text and "old line" not in text
    # once its instance is gone and a day has passed, the stream itself is deleted
    lam.delete_function(FunctionName=name)
    deadline = time.time() + 15
    while time.time() < deadline and logs.describe_log_streams(logGroupName=group)["logStreams"]:
        time.sleep(0.3)
    assert logs.describe_log_streams(logGroupName=group)["logStreams"] == []


def test_store_stays_under_its_bound(daemon):
    lam, logs = daemon.client("lambda"), daemon.client("logs")
    names = [deploy(lam) for _ in range(3)]
    for n in names:  # ~600 KB of log each, three instances: over the 1 MB bound
        invoke(lam, n, {"pad": 600 * 1024, "line": "from " + n})
        lam.delete_function(FunctionName=n)  # its instance goes, its stream can be dropped
    deadline = time.time() + 15

    def stored():
        return sum(g["storedBytes"] for g in logs.describe_log_groups()["logGroups"])
    while time.time() < deadline and stored() > 1024 * 1024:
        time.sleep(0.3)
    assert stored() <= 1024 * 1024
    # the newest survives: oldest streams go first
    assert "from " + names[-1] in "".join(messages(logs, "/aws/lambda/" + names[-1]))
