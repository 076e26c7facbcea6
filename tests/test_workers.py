"""Several workers, one store: workers reach `muster store` by URL and share the partitions
of an 8-partition events topic; one is SIGKILLed mid-stream and another joins. Every live
worker's read API must then equal the reference, the open alerts must be the active
uncovered sites once each, and every partition's commits must reach its end."""

from __future__ import annotations

import json
import signal
import time
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import clickhouse_connect

from streams.broker import create_topics
from streams.settings import Settings
from streams.sim.simulator import Plan, generate
from tests import reference
from tests.test_pipeline import MAX, committed, produce_all
from tests.workers import Worker

ZONE = ZoneInfo("Asia/Shanghai")


def counters(worker: Worker) -> dict[str, int]:
    try:
        with urllib.request.urlopen(f"{worker.url}/counters", timeout=10) as answer:
            found: dict[str, int] = json.load(answer)
            return found
    except OSError:
        return {}


def mismatches(workers: list[Worker], want: dict[tuple[str, int], Any], scopes: list) -> list:
    bad = []
    for w in workers:
        for (at, i), wanted in want.items():
            status, got = w.get("/api/metrics?" + urlencode({"at": at} | scopes[i]))
            if status != 200 or not reference.agrees(got, wanted, 1e-9):
                bad.append((w.url, at, scopes[i], got, wanted))
    return bad


def how_they_stand(workers: list[Worker]) -> str:
    """What each worker reads, has counted and last logged: the failure names the stall."""
    lines = []
    for w in workers:
        log = w.log.read_text(errors="replace").splitlines()
        said = [x for x in log if "WARNING" in x or "ERROR" in x or "ready" in x][-4:]
        try:
            reads = w.get("/partitions?detail=1")[1]
        except OSError as exc:
            reads = exc
        lines.append(f"{w.url} reads {reads} counted {counters(w)}")
        lines += [f"  {x[:200]}" for x in said]
    return "\n".join(lines)


def test_workers_killed_and_joining_mid_stream_stay_exact(
    bootstrap: str, served_store: str, tmp_path: Path
) -> None:
    shared = {
        "MUSTER_TOPIC_PREFIX": f"t{uuid.uuid4().hex[:8]}.",
        "MUSTER_CLICKHOUSE_URL": served_store,
        "MUSTER_DATABASE": f"t_{uuid.uuid4().hex[:12]}",
    }
    # the topics made with 8 partitions, as `muster broker` does with
    # MUSTER_EVENTS_PARTITIONS=8; the workers, not told, find them
    prefix = shared["MUSTER_TOPIC_PREFIX"]
    create_topics(Settings(kafka_bootstrap=bootstrap, topic_prefix=prefix, events_partitions=8))
    workers = []
    for n in range(4):
        (tmp_path / f"w{n}").mkdir()
        workers.append(Worker(bootstrap, tmp_path / f"w{n}", **shared))
    try:
        for w in workers[:3]:  # the first migrates the new database; then the others join
            w.start()
        events_topic = workers[0].settings.topic("events")
        deadline = time.monotonic() + 120
        while sorted(
            p for w in workers[:3] for p in w.get("/partitions")[1].get(events_topic, [])
        ) != list(range(8)):
            assert time.monotonic() < deadline, "the three did not share the partitions"
            time.sleep(0.5)
        records = generate(Plan(8000, 160, 2, zone=ZONE))
        now = datetime.now(UTC)
        ends = produce_all(workers[0], records)
        # one is killed as soon as all three work, before it has committed anything: its
        # partitions, taken over by running workers, once lost every record those fetched
        # while recovering its tables (streams/agents/consumer.py)
        deadline = time.monotonic() + 300
        while not all(counters(w).get("accepted", 0) > 0 for w in workers[:3]):
            assert time.monotonic() < deadline, "the three workers did not all start work"
            time.sleep(0.05)
        workers[1].stop(signal.SIGKILL)
        workers[3].start()
        live = [workers[0], workers[2], workers[3]]

        ref = reference.build([(r.topic, r.value) for r in records], MAX, now)
        site = next(json.loads(r.value)["site_id"] for r in records if r.topic == "sites")
        scopes = [{}, {"city": "上海市"}, {"org": "union"}, {"site": site}]
        at = now.astimezone(ZONE).isoformat()
        want = {
            (at, i): reference.metrics(ref, now, ZONE, scope)
            for i, scope in enumerate([{}, {"city": "上海市"}, {"org": "union"}, {"site_id": site}])
        }
        deadline = time.monotonic() + 600
        while bad := mismatches(live, want, scopes):
            assert time.monotonic() < deadline, f"{bad[:1]}\n{how_they_stand(live)}"
            time.sleep(2)
        # the fourth joined: it reads partitions now (the others may have read every
        # record before it came)
        assert workers[3].get("/partitions")[1].get(events_topic)
        # `muster metrics` reaches the store by the same URL; clickhouse-connect's own client too
        cli = json.loads(workers[2].cli("metrics", "--at", at, "--org", "union", "--json"))
        assert reference.agrees(cli, want[(at, 2)], 1e-9)
        ch = clickhouse_connect.get_client(dsn=f"{served_store}/{shared['MUSTER_DATABASE']}")
        people = ch.query("SELECT uniqExact(person_id) FROM shifts_current").result_rows[0][0]
        assert people == len({s.person_id for s in ref.shifts})

        # open alerts: the active sites uncovered now, one each, the same on every worker
        current = reference.site_statuses(ref, datetime.now(UTC), ZONE)
        uncovered = {sid for sid, x in current.items() if x["active"] and not x["covered"]}
        seen = [w.get("/api/alerts")[1]["alerts"] for w in live]
        assert seen[0] == seen[1] == seen[2]
        assert sorted(a["site_id"] for a in seen[0]) == sorted(uncovered)

        deadline = time.monotonic() + 60  # commits follow acks within a few seconds
        while (got := committed(workers[0], ends)) != ends and time.monotonic() < deadline:
            time.sleep(1)
        assert got == ends
    finally:
        for w in workers:
            if w.proc is not None and w.proc.poll() is None:
                w.stop(signal.SIGKILL)
