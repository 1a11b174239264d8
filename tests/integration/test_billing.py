"""Billing: every invoke metered as Lambda bills it (requests, billed duration
x memory), persisted per function and hour, and `ignis bill` pricing it. The
bill of a known workload is checked against a hand computation from the
REPORT lines the invocations printed; 100 ms rounding (as Lambda billed
before 2020) is an option; metering survives kill -9 once flushed."""
import json
import math
import os
import re
import subprocess
import time

import pytest

from conftest import ACCESS_KEY, IGNIS_BIN, ROLE, SECRET_KEY, Server, code, invoke, make_zip, \
    tail, unique

FLUSH = {"IGNIS_METRICS_FLUSH_MS": "200"}
PRICE_REQ, PRICE_GBS = 0.20, 0.0000166667

SLEEPER = code("""
    import time
    def handler(event, context):
        time.sleep(event.get("sleep", 0))
        return "done"
""")


def ignis_bill(server, *args):
    e = dict(os.environ)
    for k in ("IGNIS_ROOT_ACCESS_KEY_ID", "IGNIS_ROOT_SECRET_ACCESS_KEY", "IGNIS_LISTEN"):
        e.pop(k, None)
    e.update(IGNIS_ENDPOINT=server.url, AWS_ACCESS_KEY_ID=ACCESS_KEY,
             AWS_SECRET_ACCESS_KEY=SECRET_KEY)
    p = subprocess.run([IGNIS_BIN, "bill", *args], capture_output=True, text=True, env=e,
                       timeout=60)
    assert p.returncode == 0, p.stderr
    return p.stdout


def bill_json(server, *args):
    return json.loads(ignis_bill(server, "--json", *args))


def run_workload(lam, name, n, sleep):
    """n invokes; returns the REPORT lines' (Duration ms, Billed Duration ms)."""
    reports = []
    for _ in range(n):
        r = invoke(lam, name, {"sleep": sleep}, LogType="Tail")
        assert r["json"] == "done"
        m = re.search(r"Duration: ([\d.]+) ms\tBilled Duration: (\d+) ms", tail(r))
        reports.append((float(m.group(1)), int(m.group(2))))
    return reports


def create(lam, memory):
    name = unique("bill")
    lam.create_function(FunctionName=name, Runtime="python3.12", Handler="app.handler",
                        Role=ROLE, MemorySize=memory, Code={"ZipFile": make_zip({"app.py": SLEEPER})})
    return name


@pytest.fixture
def srv(tmp_path):
    s = Server(str(tmp_path / "data"), env=FLUSH).start()
    yield s
    if s.proc:
        s.stop()


def test_bill_matches_a_hand_computation(srv):
    lam = srv.client("lambda")
    big, small = create(lam, 1024), create(lam, 256)
    reports_big = run_workload(lam, big, 5, 0.05)
    reports_small = run_workload(lam, small, 3, 0.01)
    assert all(b >= 50 for _, b in reports_big)
    gbs_big = sum(b for _, b in reports_big) / 1000 * 1024 / 1024
    gbs_small = sum(b for _, b in reports_small) / 1000 * 256 / 1024
    b = bill_json(srv, "--by", "function", "--free-requests", "0", "--free-gb-seconds", "0")
    fns = {f["function"]: f for f in b["functions"]}
    assert set(fns) == {big, small}
    assert fns[big]["requests"] == 5 and fns[big]["gb_seconds"] == pytest.approx(gbs_big, abs=1e-9)
    assert fns[small]["requests"] == 3
    assert fns[small]["gb_seconds"] == pytest.approx(gbs_small, abs=1e-9)
    assert b["requests"] == 8
    want = 8 / 1e6 * PRICE_REQ + (gbs_big + gbs_small) * PRICE_GBS
    assert b["cost"] == pytest.approx(want, rel=1e-9) and b["gross_cost"] == b["cost"]
    assert fns[big]["cost"] == pytest.approx(5 / 1e6 * PRICE_REQ + gbs_big * PRICE_GBS)
    assert b["billing_granularity_ms"] == 1
    # with AWS's default free tier this workload costs nothing
    b = bill_json(srv)
    assert b["gross_cost"] == pytest.approx(want, rel=1e-9) and b["cost"] == 0
    assert b["free_tier"]["requests"] == 8 and "functions" not in b
    # a range after the workload is empty
    assert bill_json(srv, "--since", str(int(time.time()) + 7200),
                     "--until", str(int(time.time()) + 10800))["requests"] == 0
    # the table
    out = ignis_bill(srv, "--by", "function", "--price-requests", "1000000")
    lines = {l.split()[0]: l.split() for l in out.splitlines() if l.split()}
    assert lines[big][1] == "5" and float(lines[big][2]) == pytest.approx(gbs_big, abs=1e-4)
    assert lines["total"][1] == "8"
    assert "due" in lines


def test_free_tier_is_used_up_in_order(srv):
    lam = srv.client("lambda")
    name = create(lam, 128)
    run_workload(lam, name, 4, 0)
    b = bill_json(srv, "--free-requests", "3", "--free-gb-seconds", "0")
    assert b["free_tier"]["requests"] == 3
    assert b["cost"] == pytest.approx(1 / 1e6 * PRICE_REQ + b["gb_seconds"] * PRICE_GBS)


def test_100ms_rounding(tmp_path):
    s = Server(str(tmp_path / "data"), env={**FLUSH, "IGNIS_BILLING_GRANULARITY_MS": "100"}).start()
    try:
        lam = s.client("lambda")
        name = create(lam, 512)
        reports = run_workload(lam, name, 3, 0.02)
        billed = sum(max(1, math.ceil(d / 100)) * 100 for d, _ in reports)
        b = bill_json(s, "--by", "function")
        assert b["billing_granularity_ms"] == 100
        assert b["functions"][0]["gb_seconds"] == pytest.approx(billed / 1000 * 512 / 1024)
    finally:
        s.stop()


def test_metering_survives_kill9(srv):
    lam = srv.client("lambda")
    name = create(lam, 1024)
    reports = run_workload(lam, name, 2, 0)
    time.sleep(1.0)  # five flush intervals
    srv.kill9()
    srv.start()
    b = bill_json(srv, "--by", "function")
    assert b["functions"][0]["requests"] == 2
    assert b["functions"][0]["gb_seconds"] == pytest.approx(sum(x for _, x in reports) / 1000)
