"""End to end on the real parts: Tansu, a worker process, the embedded ClickHouse engine.

Records are produced with confluent-kafka, a client muster itself does not use.
"""

from __future__ import annotations

import json
import signal
import time
import urllib.request
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from sinks.queries import Scope, metrics
from sinks.reader import WorkerReader
from streams.sim import shanghai
from streams.sim.simulator import Plan, generate
from tests import reference
from tests.scenarios import (
    CUTOFFS,
    MAX,
    SCOPES,
    Scenario,
    at,
    cin,
    cout,
    edge_scenario,
    site,
    t,
)
from tests.workers import Worker, produce

pytestmark = pytest.mark.slow
ZONE = ZoneInfo("Asia/Shanghai")


def counters(reader: WorkerReader) -> dict[str, int]:
    with urllib.request.urlopen(f"{reader.url}/counters", timeout=10) as answer:
        return dict(json.loads(answer.read()))


def committed(worker: Worker, ends: dict[tuple[str, int], int]) -> dict[tuple[str, int], int]:
    """The pipeline's committed offset of each partition in `ends`."""
    consumer = Consumer(
        {"bootstrap.servers": worker.settings.kafka_bootstrap, "group.id": worker.group}
    )
    tps = consumer.committed([TopicPartition(t, p) for t, p in ends], timeout=10)
    consumer.close()
    return {(tp.topic, tp.partition): tp.offset for tp in tps}


def produce_all(worker: Worker, records: list) -> dict[tuple[str, int], int]:
    """Unthrottled (faster than a worker reads); returns each partition's end offset as the
    deliveries report it (Tansu's listed end offsets fall short, see streams/agents/recovery.py)."""
    ends: dict[tuple[str, int], int] = {}

    def delivered(err: object, msg: Any) -> None:
        assert err is None, err
        key = (msg.topic(), msg.partition())
        ends[key] = max(ends.get(key, 0), msg.offset() + 1)

    producer = Producer({"bootstrap.servers": worker.settings.kafka_bootstrap, "linger.ms": 20})
    for r in records:
        topic = worker.settings.topic(r.topic)
        while True:
            try:
                producer.produce(topic, key=r.key, value=r.value, on_delivery=delivered)
                break
            except BufferError:
                producer.poll(0.1)
    assert producer.flush(60) == 0
    return ends


def settle(
    reader, ref, cutoffs, scopes, timeout: float = 120, hours_tolerance=1e-9, every: float = 1
) -> list:
    """Poll every `every` s until every metric equals the reference; return the last
    mismatches."""
    want = {
        (cutoff, i): reference.metrics(ref, cutoff, ZONE, scope)
        for cutoff in cutoffs
        for i, scope in enumerate(scopes)
    }
    deadline = time.monotonic() + timeout
    while True:
        bad = []
        for (cutoff, i), wanted in want.items():
            got = metrics(reader, cutoff, ZONE, Scope(**scopes[i]))
            if not reference.agrees(got, wanted, hours_tolerance):
                bad.append((cutoff.isoformat(), scopes[i], got, wanted))
        if not bad or time.monotonic() > deadline:
            return bad
        time.sleep(every)


def test_edge_scenario_end_to_end_with_dlq_restart_and_offline_reads(worker: Worker):
    reader = worker.start()
    scenario = edge_scenario()
    produce(worker, scenario)
    now = datetime.now(UTC)
    ref = reference.build(scenario.topic_order(), MAX, now)
    assert settle(reader, ref, CUTOFFS, SCOPES) == []

    # Every rejected record is on the DLQ topic with a reason and its original value.
    consumer = Consumer(
        {
            "bootstrap.servers": worker.settings.kafka_bootstrap,
            "group.id": "dlq-check",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([worker.settings.topic("dlq")])
    letters = []
    deadline = time.monotonic() + 30
    while len(letters) < ref.dlq and time.monotonic() < deadline:
        msg = consumer.poll(1)
        if msg is not None and not msg.error():
            letters.append(json.loads(msg.value()))
    consumer.close()
    assert len(letters) == ref.dlq
    assert {"error", "topic", "partition", "offset", "raw"} <= set(letters[0])
    assert any(letter["raw"] == "not json" for letter in letters)
    assert any("role" in letter["error"] and "Guide" in letter["error"] for letter in letters)

    # A killed worker restarted later resumes with exact numbers.
    worker.stop(signal.SIGKILL)
    more = Scenario()
    more.add("events", cin("P8", t("09:00"), "f1", sid="S1", role="registrar"))
    more.add("events", cout("P8", t("15:00"), "f2"))
    more.add("events", cin("甲", t("08:00"), "a1"))  # a resend across the restart
    produce(worker, more)
    reader = worker.start()
    ref = reference.build(scenario.topic_order() + more.topic_order(), MAX, now)
    assert settle(reader, ref, CUTOFFS, SCOPES[:4]) == []

    # The CLI reads through the running worker, and from the store once it stopped.
    cutoff = "2022-03-15T19:00:00+08:00"
    want = reference.metrics(ref, datetime.fromisoformat(cutoff), ZONE, {})
    live = json.loads(worker.cli("metrics", "--at", cutoff, "--json"))
    worker.stop()
    offline = json.loads(worker.cli("metrics", "--at", cutoff, "--json"))
    assert live == offline
    assert set(live) == {"at", *want}
    assert {k: live[k] for k in want} == pytest.approx(want)
    assert f"招募志愿者{want['recruited']}名" in worker.cli("bulletin", "--at", cutoff)
    rows = worker.cli("sql", "SELECT count() AS n FROM shifts_current", "--format", "json")
    assert json.loads(rows) == {"n": len(ref.shifts)}


def test_seed_bulletin_at_city_scale(worker: Worker):
    """The seed 002 scenario (~217k records, produced at full speed) gives the published
    figures and equals the reference at three cutoffs in three scopes."""
    records = shanghai.generate()
    ref = reference.build([(r.topic, r.value) for r in records], shanghai.MAX_SHIFT)
    scopes: list[dict[str, str]] = [{}, {"district": "浦东新区"}, {"org": "union"}]
    cutoffs = [shanghai.CUTOFF, shanghai.CUTOFF.replace(hour=23), shanghai.day(8, 12)]
    reader = worker.start()
    produce_all(worker, records)
    assert settle(reader, ref, cutoffs, scopes, timeout=900, hours_tolerance=1e-6, every=3) == []

    at = shanghai.CUTOFF.isoformat()
    live = json.loads(worker.cli("metrics", "--at", at, "--json"))
    assert {k: live[k] for k in shanghai.PUBLISHED} == shanghai.PUBLISHED
    assert round(live["hours"] * 3600, 3) == shanghai.SERVICE_SECONDS
    assert "上岗总时长52.5万余小时" in worker.cli("bulletin", "--at", at)


def test_worker_stopped_and_killed_while_busy_loses_no_record(worker: Worker):
    """Stopped (SIGTERM) and later killed (SIGKILL) while working through a backlog, and
    restarted each time. A stop stores and commits what the worker holds, so little is read
    again (it used to hang: Faust waited for acks that only a flush gives); a kill leaves
    records to re-read after the person table is recovered from its changelog. Every record
    must be processed (each partition's commits reach its end) and the numbers exact. Faust's
    own recovery lost one fetch batch per partition here about half the time
    (streams/agents/recovery.py)."""
    records = generate(Plan(20_000, 400, 2, zone=ZONE))
    now = datetime.now(UTC)
    events = sum(1 for r in records if r.topic == "events")
    reader = worker.start()
    ends = produce_all(worker, records)
    while counters(reader)["accepted"] < events // 4:
        time.sleep(0.2)
    worker.stop()  # waits at most 30 s
    reader = worker.start()
    while (seen := counters(reader))["accepted"] < events // 4:
        time.sleep(0.2)
    assert seen["replayed"] < 100  # a few records in flight at the stop, not a batch
    worker.stop(signal.SIGKILL)
    reader = worker.start()
    ref = reference.build([(r.topic, r.value) for r in records], MAX, now)
    # About 50 s on a quiet machine; CI's shared machines have run four times slower.
    assert settle(reader, ref, [now], [{}, {"org": "union"}], timeout=600) == []
    assert counters(reader)["replayed"] > 0  # the kill did land mid-stream

    deadline = time.monotonic() + 60  # commits follow acks within a few seconds
    while (got := committed(worker, ends)) != ends and time.monotonic() < deadline:
        time.sleep(1)
    assert got == ends


def test_restart_recovers_every_person_from_the_changelog(worker: Worker):
    """Tansu reports a partition's end as the last batch's first offset + 1, so Faust's table
    recovery stopped before the rest of the changelog's last batch: those people came back
    without their open shifts. Check-ins, a clean stop, a restart, then the check-outs: every
    shift must close."""
    first, then = Scenario(), Scenario()
    first.add("sites", site("S1", t("00:00", 14), "s1"))
    for n in range(400):
        first.add("events", cin(f"V{n}", t("08:00"), f"in{n}"))
        then.add("events", cout(f"V{n}", t("12:00"), f"out{n}"))
    reader = worker.start()
    produce(worker, first)
    now = datetime.now(UTC)
    ref = reference.build(first.topic_order(), MAX, now)
    assert settle(reader, ref, [at("10:00")], [{}]) == []
    worker.stop()

    reader = worker.start()
    produce(worker, then)
    ref = reference.build(first.topic_order() + then.topic_order(), MAX, now)
    assert settle(reader, ref, [at("10:00"), at("13:00")], [{}], timeout=180) == []
    assert metrics(reader, at("13:00"), ZONE, Scope())["person_times"] == 400
