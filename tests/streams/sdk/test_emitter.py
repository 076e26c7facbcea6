"""The site SDK end to end: events emitted while the broker is down wait in the spool, the
process is killed, and a new one on the same spool sends them, in order, once the broker is
up; a worker then counts exactly what was emitted."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from streams.broker import start_tansu
from streams.sdk import Emitter, Refused, event_id_for
from streams.settings import Settings
from tests import reference
from tests.scenarios import cin, cout, site
from tests.workers import Gateway, Worker, free_port

pytestmark = pytest.mark.slow
ZONE = ZoneInfo("Asia/Shanghai")

# A site app: emit the events of a JSON file, say so, then keep trying to send.
APP = """
import json, sys
from streams.sdk import Emitter, Refused, event_id_for
spool, bootstrap, prefix, events, wait = sys.argv[1:6]
out = Emitter(spool, bootstrap=bootstrap, topic_prefix=prefix, timeout=1, retry_seconds=0.2)
ids = out.emit_many(json.load(open(events)))
print("spooled", len(ids), out.pending, flush=True)
left = out.flush(timeout=float(wait))
print("left", left, "sent", out.sent, flush=True)
"""


def app(
    spool: Path, bootstrap: str, prefix: str, events: list[dict[str, Any]], wait: float, tmp: Path
) -> subprocess.Popen[str]:
    path = tmp / f"events-{time.monotonic_ns()}.json"
    path.write_text(json.dumps(events, ensure_ascii=False))
    return subprocess.Popen(
        [sys.executable, "-c", APP, str(spool), bootstrap, prefix, str(path), str(wait)],
        stdout=subprocess.PIPE,
        text=True,
    )


@pytest.fixture
def address() -> Iterator[str]:
    """host:port where no broker runs yet."""
    yield f"127.0.0.1:{free_port()}"


def test_spooled_while_down_killed_restarted_resent_in_order(address: str, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    h = lambda hours: (now - timedelta(hours=hours)).astimezone(ZONE).isoformat()  # noqa: E731
    first = [site("S1", h(20), "s1", requirements={"marshal": 1})]
    first += [cin(f"P{i}", h(3), f"in-{i}", role="marshal") for i in range(30)]
    q = {k: v for k, v in cin("Q", h(2), "unused").items() if k != "event_id"}
    first.append(q)
    second = [cout(f"P{i}", h(1), f"out-{i}") for i in range(0, 30, 2)]
    spool = tmp_path / "site.spool"
    prefix = "sdk."

    down = app(spool, address, prefix, first, 3600, tmp_path)
    assert down.stdout is not None
    line = down.stdout.readline().split()
    assert line == ["spooled", str(len(first)), str(len(first))], line
    time.sleep(1.5)  # it tries, and fails: nobody listens
    assert down.poll() is None
    down.send_signal(signal.SIGKILL)
    down.wait(timeout=10)
    with sqlite3.connect(spool) as db:
        assert db.execute("SELECT count(*) FROM spool").fetchone()[0] == len(first)

    broker = start_tansu(Settings(kafka_bootstrap=address, broker_storage="memory"))
    (tmp_path / "worker").mkdir()
    worker = Worker(address, tmp_path / "worker", MUSTER_TOPIC_PREFIX=prefix)
    try:
        worker.start()
        up = app(spool, address, prefix, second, 60, tmp_path)
        out, _ = up.communicate(timeout=120)
        assert up.returncode == 0 and f"left 0 sent {len(first) + len(second)}" in out, out

        by_partition = read_events(address, prefix)
        sent = [e for events in by_partition.values() for e in events]
        emitted = [e.get("event_id") or event_id_for(e) for e in first[1:] + second]
        for events in by_partition.values():  # each partition holds its events in emit order
            ids = [e["event_id"] for e in events]
            assert ids == [i for i in emitted if i in ids]
        assert len(sent) == len(first) - 1 + len(second)  # nothing lost, nothing twice
        no_id = [e for e in sent if e["person_id"] == "Q"]
        assert [e["event_id"] for e in no_id] == [event_id_for(q)]  # derived from its content

        records = [("sites", json.dumps(first[0]).encode())]
        records += [("events", json.dumps(e, ensure_ascii=False).encode()) for e in sent]
        ref = reference.build(records, timedelta(hours=12), now)
        cutoff = datetime.now(UTC)
        want = reference.metrics(ref, cutoff, ZONE)
        assert want["on_post_now"] == 16 and want["person_times"] == 31
        worker.metrics_settle(cutoff, want)
    finally:
        if worker.proc is not None and worker.proc.poll() is None:
            worker.stop()
        broker.terminate()
        broker.wait(timeout=10)
    with Emitter(spool, bootstrap=address, background=False) as again:
        assert again.pending == 0


def read_events(bootstrap: str, prefix: str) -> dict[int, list[dict[str, Any]]]:
    """Every event on the events topic, by partition, in offset order."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "check-sdk"})
    parts = range(Settings().events_partitions)
    consumer.assign([TopicPartition(f"{prefix}events", p, OFFSET_BEGINNING) for p in parts])
    found: dict[int, list[dict[str, Any]]] = {}
    quiet = time.monotonic() + 3
    while time.monotonic() < quiet:
        msg = consumer.poll(0.3)
        if msg is not None and not msg.error():
            found.setdefault(msg.partition(), []).append(json.loads(msg.value()))
            quiet = time.monotonic() + 2
    consumer.close()
    return found


def test_through_a_gateway_that_is_down_then_up(
    door: tuple[Worker, Gateway], tmp_path: Path
) -> None:
    """Against an unreachable gateway the events wait; a refused token keeps them; the
    right token sends them, in order, and the worker counts exactly them."""
    w, g = door
    token = g.token("--name", "site-1", "--site", "S1")
    now = datetime.now(UTC)
    h = lambda hours: (now - timedelta(hours=hours)).astimezone(ZONE).isoformat()  # noqa: E731
    events = [cin(f"P{i}", h(3), f"in-{i}", role="marshal") for i in range(10)]
    events += [cout(f"P{i}", h(1), f"out-{i}") for i in range(5)]
    spool = tmp_path / "app.spool"
    nowhere = f"http://127.0.0.1:{free_port()}"
    with Emitter(spool, url=nowhere, token=token, background=False, timeout=1) as out:
        out.emit_many(events)
        assert out.flush(timeout=1) == len(events) and out.last_error is not None
    with Emitter(spool, url=g.url, token="mst_wrong", background=False) as out:
        with pytest.raises(Refused, match="401"):
            out.flush(timeout=5)
        assert out.pending == len(events)
    rejected: list[str] = []
    with Emitter(
        spool,
        url=g.url,
        token=token,
        background=False,
        retry_seconds=60,
        on_rejected=lambda v, why: rejected.append(why),
    ) as out:
        out.emit(late := cin("late", h(0.5), "late-1", role="marshal"))
        # more than 1 MiB spooled: sent in several requests, none of them an error
        big = [cout(f"Z{i}", h(0.2), f"z{i}") | {"note": "x" * 3000} for i in range(400)]
        out.emit_many(big)
        assert out.flush(timeout=0) == 0 and out.sent == len(events) + 1 + len(big)  # one go
        assert out.last_error is None
    assert rejected == []

    records = [("events", json.dumps(e).encode()) for e in [*events, late, *big]]
    ref = reference.build(records, timedelta(hours=12), now)
    want = reference.metrics(ref, now, ZONE)
    assert want["on_post_now"] == 6 and want["orphan_checkouts"] == 400
    w.metrics_settle(now, want)
