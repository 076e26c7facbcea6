"""A worker that lost its state, on the real parts: `make up` twice on one data directory.

The store is kept; the embedded broker comes back empty (topics, changelogs and committed
offsets gone: a new topic prefix stands for it); the same history is sent again. Before
the store was read back, every number doubled and every understaffed site got a second
open alert. And a history produced in one burst (a worker catching up) opened each site's
alert at its registration instead of where it last lost cover.
"""

from __future__ import annotations

import json
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import pytest

from tests import reference
from tests.scenarios import MAX, Scenario, cin, cout, reg, site
from tests.workers import Worker, produce

pytestmark = pytest.mark.slow
ZONE = ZoneInfo("Asia/Shanghai")
SITES = 6
API = {"site_id": "site", "org": "org", "team_id": "team"}  # the read API's parameter names


def iso(ts: datetime) -> str:
    return ts.astimezone(ZONE).isoformat()


def two_days(today: datetime) -> tuple[Scenario, dict[str, datetime]]:
    """Six sites needing a marshal each, registered two days before `today` (local
    midnight); each day marshal A<k> is on post 08:00-17:00, and yesterday B<k> from 16:00
    to 17:00 + k half hours. Returns the records and when each site last lost cover."""
    days = [today - timedelta(days=2), today - timedelta(days=1)]
    s, lost = Scenario(), {}
    for k in range(SITES):
        sid = f"S{k}"
        s.add("sites", site(sid, iso(days[0]), f"{sid}v1", requirements={"marshal": 1}))
    for k in range(SITES):
        sid, a, b = f"S{k}", f"A{k}", f"B{k}"
        s.add("events", reg(a, iso(days[0]), f"{a}r", org="union", team=f"T{k % 2}"))
        for n, day in enumerate(days):
            on, off = day + timedelta(hours=8), day + timedelta(hours=17)
            s.add("events", cin(a, iso(on), f"{a}i{n}", sid, "marshal", "union", f"T{k % 2}"))
            s.add("events", cout(a, iso(off), f"{a}o{n}"))
        on, off = days[1] + timedelta(hours=16), days[1] + timedelta(hours=17 + k / 2)
        s.add("events", cin(b, iso(on), f"{b}i", sid, "marshal", "party", None))
        s.add("events", cout(b, iso(off), f"{b}o"))
        lost[sid] = off
    return s, lost


def counters(worker: Worker) -> dict[str, int]:
    with urllib.request.urlopen(f"{worker.url}/counters", timeout=10) as answer:
        return dict(json.loads(answer.read()))


def read_all(worker: Worker, records: int, seconds: float = 60) -> None:
    """Until the worker has taken every record (accepted, duplicate or replayed)."""
    deadline = time.monotonic() + seconds
    while sum(counters(worker)[k] for k in ("accepted", "duplicate", "replayed")) < records:
        assert time.monotonic() < deadline, counters(worker)
        time.sleep(0.2)


def alerts(worker: Worker, seconds: float = 20) -> list[dict[str, Any]]:
    """Every alert, once two reads a second apart agree."""
    deadline, last = time.monotonic() + seconds, None
    while (now := worker.get("/api/alerts?state=all")[1]["alerts"]) != last:
        assert time.monotonic() < deadline
        last = now
        time.sleep(1)
    return now


def metrics_at_every_cutoff(worker: Worker, ref: Any, cutoffs: list[datetime]) -> None:
    for cutoff in cutoffs:
        for scope in ({}, {"site_id": "S3"}, {"org": "union"}, {"team_id": "T1"}):
            want = reference.metrics(ref, cutoff, ZONE, scope)
            query = "&".join(f"{API[k]}={quote(v)}" for k, v in scope.items())
            path = f"/api/metrics?at={quote(cutoff.isoformat())}&{query}"
            deadline = time.monotonic() + 30
            while not reference.agrees(got := worker.get(path)[1], want, 1e-9):
                assert time.monotonic() < deadline, (cutoff, scope, got, want)
                time.sleep(0.3)


def test_a_kept_store_and_a_forgetful_broker_count_a_resent_history_once(
    bootstrap: str, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    today = datetime.now(ZONE).replace(hour=0, minute=0, second=0, microsecond=0)
    scenario, lost = two_days(today)
    ref = reference.build(scenario.topic_order(), MAX, now)
    cutoffs = [now, today - timedelta(hours=7), today - timedelta(days=1, hours=12)]

    first = Worker(bootstrap, tmp_path)
    again = Worker(bootstrap, tmp_path)  # same data directory, a broker that forgot it all
    try:
        resend(first, again, scenario, ref, cutoffs, lost, now, today)
    finally:
        for w in (first, again):
            if w.proc is not None and w.proc.poll() is None:
                w.stop()


def resend(first, again, scenario, ref, cutoffs, lost, now, today) -> None:
    first.start()
    produce(first, scenario)  # in one burst: the worker catches up
    read_all(first, len(scenario.records))
    metrics_at_every_cutoff(first, ref, cutoffs)
    before = alerts(first)
    open_now = {a["site_id"]: a for a in before if a["resolved_at"] is None}
    assert {sid: a["opened_at"] for sid, a in open_now.items()} == {
        sid: iso(t) for sid, t in lost.items()
    }
    # each site: open at registration, covered at 08:00, lost at 17:00, covered at 08:00,
    # lost for good; three alerts each
    assert len(before) == 3 * SITES
    first.stop()

    again.start()
    produce(again, scenario)
    read_all(again, len(scenario.records))
    # at the positions they had (a new broker numbers them alike): read as replays
    assert counters(again)["accepted"] == 0, counters(again)
    metrics_at_every_cutoff(again, ref, cutoffs)
    after = alerts(again)
    assert sorted(after, key=lambda a: a["alert_id"]) == sorted(before, key=lambda a: a["alert_id"])
    # the alerts as they stood: yesterday 03:00 each site's second was open, at noon none
    night = today - timedelta(hours=21)
    stood = again.get(f"/api/alerts?at={quote(night.isoformat())}")[1]["alerts"]
    assert sorted((a["alert_id"], a["resolved_at"], a["short"]) for a in stood) == [
        (f"understaffed:S{k}:2", None, {"marshal": 1}) for k in range(SITES)
    ]
    noon = night + timedelta(hours=9)
    assert again.get(f"/api/alerts?at={quote(noon.isoformat())}")[1] == {"alerts": []}
    assert len(again.get(f"/api/alerts?state=all&at={quote(noon.isoformat())}")[1]["alerts"]) == 12
    out = again.cli("metrics", "--json", "--at", now.isoformat())
    assert reference.agrees(json.loads(out), reference.metrics(ref, now, ZONE, {}), 1e-9)
