"""The live layer end to end: Tansu, a worker process, the embedded store, the read API.

A short maximum shift (18 s) lets a shift reach MAX while the test watches.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from sinks.coverage import fresh_sql
from sinks.reader import WorkerReader
from tests import reference
from tests.scenarios import Scenario, cin, cout, site
from tests.workers import Worker, produce

pytestmark = pytest.mark.slow
ZONE = ZoneInfo("Asia/Shanghai")
MAX = timedelta(hours=0.005)  # 18 s
ALERT_SECONDS = 5  # SPEC §6: an alert opens or resolves within 5 s of its cause


@pytest.fixture
def live_worker(bootstrap: str, tmp_path: Path) -> Iterator[Worker]:
    w = Worker(bootstrap, tmp_path, MUSTER_MAX_SHIFT_HOURS=str(MAX.total_seconds() / 3600))
    yield w
    if w.proc and w.proc.poll() is None:
        w.stop()


def iso(ts: datetime) -> str:
    return ts.astimezone(ZONE).isoformat()


def within(seconds: float, probe: Callable[[], Any]) -> Any:
    """Poll `probe` every 50 ms until it returns something truthy; fail after `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if found := probe():
            return found
        time.sleep(0.05)
    raise AssertionError(f"not within {seconds} s")


def open_alert(w: Worker, site_id: str) -> dict[str, Any] | None:
    alerts = w.get("/api/alerts")[1]["alerts"]
    return next((a for a in alerts if a["site_id"] == site_id), None)


def test_alerts_follow_check_outs_check_ins_and_time_alone(live_worker: Worker) -> None:
    w = live_worker
    w.start()
    now = datetime.now(UTC)
    born = now - timedelta(hours=1)
    produce(w, scenario_of(("sites", site("S1", iso(born), "s1", requirements={"marshal": 1}))))
    first = within(10, lambda: open_alert(w, "S1"))
    assert first["opened_at"] == iso(born)  # uncovered since it opened: nobody came
    produce(
        w, scenario_of(("events", cin("M1", iso(now - timedelta(seconds=5)), "m1", role="marshal")))
    )
    within(ALERT_SECONDS, lambda: open_alert(w, "S1") is None)
    resolved = [a for a in w.get("/api/alerts?state=all")[1]["alerts"] if a["resolved_at"]]
    assert resolved and resolved[0]["opened_at"] == iso(now - timedelta(hours=1))
    assert resolved[0]["resolved_at"] == iso(now - timedelta(seconds=5))

    # The last marshal checks out: the alert opens at the check-out's time.
    out = datetime.now(UTC)
    produce(w, scenario_of(("events", cout("M1", iso(out), "m1x"))))
    alert = within(ALERT_SECONDS, lambda: open_alert(w, "S1"))
    assert alert["opened_at"] == iso(out) and alert["resolved_at"] is None
    assert alert["short"] == {"marshal": 1} and alert["people"] == 0

    # A marshal checks in: resolved at the check-in's time.
    start = datetime.now(UTC)
    produce(w, scenario_of(("events", cin("M2", iso(start), "m2", role="marshal"))))
    within(ALERT_SECONDS, lambda: open_alert(w, "S1") is None)
    closed = next(
        a for a in w.get("/api/alerts?state=all")[1]["alerts"] if a["alert_id"] == alert["alert_id"]
    )
    assert closed["resolved_at"] == iso(start)

    # ...and never checks out: at start + MAX the shift leaves post with no event.
    due = start + MAX
    time.sleep(max(0.0, (due - datetime.now(UTC)).total_seconds() - 1))
    assert open_alert(w, "S1") is None
    alert = within(ALERT_SECONDS + 1, lambda: open_alert(w, "S1"))
    assert datetime.now(UTC) - due < timedelta(seconds=ALERT_SECONDS)
    assert alert["opened_at"] == iso(due)

    # Every change went out on the site_status and alerts topics too.
    statuses = read_topic(w, "site_status", lambda m: m["site_id"] == "S1" and m["people"] == 0, 3)
    assert statuses[-1]["short"] == {"marshal": 1}
    alerts = read_topic(w, "alerts", lambda m: m["site_id"] == "S1", 5)
    assert alerts[-1]["opened_at"] == iso(due) and alerts[-1]["resolved_at"] is None


def scenario_of(*records: tuple[str, dict[str, Any]]) -> Scenario:
    s = Scenario()
    for kind, event in records:
        s.add(kind, event)
    return s


def read_topic(w: Worker, name: str, keep: Callable[[dict[str, Any]], bool], n: int) -> list[Any]:
    """Every message of topic `name` that `keep` accepts, in order (at least `n`)."""
    consumer = Consumer(
        {
            "bootstrap.servers": w.settings.kafka_bootstrap,
            "group.id": f"check-{name}",
            "auto.offset.reset": "earliest",
        }
    )
    topic = w.settings.topic(name)  # assigned, not subscribed: no group join to wait for
    parts = range(w.settings.events_partitions)
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
    found: list[Any] = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:  # to the topic's end: at least n, then 2 s of quiet
        msg = consumer.poll(0.5 if len(found) < n else 2)
        if msg is None and len(found) >= n:
            break
        if msg is not None and not msg.error():
            body = json.loads(msg.value())
            if keep(body):
                found.append(body)
    consumer.close()
    assert len(found) >= n, found
    return found


def test_read_api_equals_spec_and_the_cli(worker: Worker) -> None:
    """/api/sites and /api/metrics against the reference, now and at a past cutoff; the
    open alerts are exactly the active uncovered sites; bad parameters get a 400."""
    w = worker
    w.start()
    now = datetime.now(UTC)
    h = lambda hours: now - timedelta(hours=hours)  # noqa: E731
    s = Scenario()
    s.add(
        "sites",
        site("S1", iso(h(30)), "s1", requirements={"guide": 1, "marshal": 1}, lat=31.2, lon=121.5),
    )
    s.add("sites", site("S2", iso(h(30)), "s2", district="黄浦区", requirements={}))
    s.add("sites", site("S3", iso(h(30)), "s3", requirements={"supplies": 1}))
    s.add("sites", site("S3", iso(h(2)), "s3b", requirements={"supplies": 1}, active=False))
    s.add("sites", site("S4", iso(now + timedelta(minutes=5)), "s4"))  # not yet in force
    s.add("events", cin("A", iso(h(26)), "a1", role="guide"))
    s.add("events", cout("A", iso(h(20)), "a2"))
    s.add("events", cin("A", iso(h(3)), "a3", role="guide"))
    s.add("events", cin("B", iso(h(1)), "b1", role="marshal", org="union"))
    s.add("events", cin("C", iso(h(5)), "c1", sid="S2", role="marshal"))
    s.add("events", cin("C", iso(h(4)), "c2", sid="S3", role="supplies"))  # transfer
    s.add("events", cout("C", iso(h(2.5)), "c3"))
    s.add("events", cin("D", iso(h(28)), "d1", sid="S3", role="supplies"))  # auto after 12 h
    s.add("events", cin("A", iso(h(26)), "a1", role="guide"))  # resent
    produce(w, s)
    ref = reference.build(s.topic_order(), timedelta(hours=12), now)
    past = h(24)
    for cutoff in (past, now):
        q = quote(cutoff.isoformat())
        want = sorted(reference.site_statuses(ref, cutoff, ZONE).values(), key=by_site)
        got = within(20, lambda q=q, want=want: same_sites(w.get(f"/api/sites?at={q}")[1], want))
        assert got["at"] == iso(cutoff)
        district = w.get(f"/api/sites?at={q}&district={quote('黄浦区')}")[1]["sites"]
        assert [x["site_id"] for x in district] == ["S2"]
        api = w.get(f"/api/metrics?at={q}&org=youth_league")[1]
        assert api == json.loads(
            w.cli("metrics", "--at", cutoff.isoformat(), "--org", "youth_league", "--json")
        )
        assert reference.agrees(
            api, reference.metrics(ref, cutoff, ZONE, {"org": "youth_league"}), 1e-9
        )
        # a site scope: the CLI asks the worker's store through /query, array parameters too
        area = w.get(f"/api/metrics?at={q}&district={quote('黄浦区')}")[1]
        assert area == json.loads(
            w.cli("metrics", "--at", cutoff.isoformat(), "--district", "黄浦区", "--json")
        )
        assert reference.agrees(
            area, reference.metrics(ref, cutoff, ZONE, {"district": "黄浦区"}), 1e-9
        )

    # the worker settles finished hours in the background (sinks/coverage.py); the past
    # cutoff then reads coverage from its settled hour, and still equals SPEC
    hour = past.replace(minute=0, second=0, microsecond=0)
    probe = {"hour": hour.strftime("%Y-%m-%d %H:%M:%S")}
    reader = WorkerReader(w.url)
    within(60, lambda: reader.query(fresh_sql(), probe).dicts()[0]["fresh"])
    want = reference.metrics(ref, past, ZONE, {})
    assert want["sites_covered"] == 1 and want["sites_active"] == 3
    assert reference.agrees(w.get(f"/api/metrics?at={quote(past.isoformat())}")[1], want, 1e-9)

    current = reference.site_statuses(ref, datetime.now(UTC), ZONE)
    uncovered = {sid for sid, x in current.items() if x["active"] and not x["covered"]}
    assert uncovered == {"S2"}  # nobody since C's transfer; S3 inactive; S4 not yet
    within(10, lambda: {a["site_id"] for a in w.get("/api/alerts")[1]["alerts"]} == uncovered)
    state_all = w.get("/api/alerts?state=all")[1]["alerts"]
    assert [a["opened_at"] for a in state_all] == sorted(
        (a["opened_at"] for a in state_all), reverse=True
    )

    assert w.get("/healthz") == (200, {"status": "ok"})
    assert w.get("/readyz") == (200, {"status": "ready"})
    for path, culprit in [
        ("/api/metrics?at=2022-03-15T08:00:00", "at"),
        ("/api/metrics?sity=x", "sity"),
        ("/api/sites?org=union", "org"),
        ("/api/alerts?state=closed", "state"),
    ]:
        status, body = w.get(path)
        assert status == 400 and culprit in body["error"], (path, body)


def by_site(status: dict[str, Any]) -> str:
    return str(status["site_id"])


def same_sites(body: dict[str, Any], want: list[dict[str, Any]]) -> dict[str, Any] | None:
    return body if body["sites"] == want else None
