"""`make bench`: city-scale runs on the embedded profile, timed (never a test assertion).

Starts Tansu, `muster store` and `--workers` workers (or, with `--store in-process`, one
worker holding the embedded store itself), waits until they share the events topic's
partitions, produces a scenario unthrottled, and reports the produce rate, the settle time
and end-to-end records/s.

- `--scenario city` (default): a simulated city (45,000 volunteers, 800 sites, 3 days up to
  now); settled when every event is stored.
- `--scenario shanghai-2022-03-15`: the seed 002 bulletin (~217k records, 3% up to 48 h late,
  1% resent); settled when every metric at the bulletin's cutoff, city-wide and in a few
  scopes, equals the reference implementation; then prints `muster metrics` and
  `muster bulletin` as a user would run them.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

from sinks.queries import Scope, metrics
from sinks.reader import LocalReader, Reader, WorkerReader
from sinks.store import connect
from streams.broker import start_tansu
from streams.launcher import child_env, start_store, stop_together, wait_for_worker, worker_settings
from streams.settings import Settings
from streams.sim import shanghai
from streams.sim.simulator import SCENARIOS, Plan, generate, produce
from tests import reference

STORED = (
    "SELECT (SELECT count() FROM events FINAL) + (SELECT count() FROM dlq FINAL "
    "WHERE topic LIKE '%events')"
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scenario", choices=SCENARIOS, default="city")
    parser.add_argument("--people", type=int, default=45_000)
    parser.add_argument("--sites", type=int, default=800)
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--port", type=int, default=29092)
    parser.add_argument("--workers", type=int, default=1, help="workers sharing the partitions")
    parser.add_argument("--partitions", type=int, default=4, help="of the events topic")
    parser.add_argument(
        "--store",
        choices=("served", "in-process"),
        default="served",
        help="workers reach `muster store` by URL (as `muster up` runs them), or one worker "
        "holds the embedded store itself",
    )
    parser.add_argument("--timeout", type=float, default=1800, help="give up after (s)")
    args = parser.parse_args()
    if args.workers > 1 and args.store == "in-process":
        parser.error("several workers need the served store (--store served)")
    data = Path(tempfile.mkdtemp(prefix="muster-bench-"))
    env = os.environ | {
        "MUSTER_KAFKA_BOOTSTRAP": f"127.0.0.1:{args.port}",
        "MUSTER_DATA_DIR": str(data),
        "MUSTER_EVENTS_PARTITIONS": str(args.partitions),
        "MUSTER_STORE_PORT": str(args.port + 1),
    }
    settings = Settings(
        kafka_bootstrap=env["MUSTER_KAFKA_BOOTSTRAP"],
        data_dir=data,
        events_partitions=args.partitions,
        store_port=args.port + 1,
    )
    broker = start_tansu(settings)
    children: list[subprocess.Popen[bytes]] = []
    try:
        started = time.monotonic()
        url = ""
        if args.store == "served":
            store, url = start_store(settings, data / "store.log")
            assert store is not None
            children.append(store)
        workers = []
        for n in range(args.workers):
            mine = worker_settings(settings, url, n) if url else settings
            mine = mine.model_copy(update={"worker_port": 26066 + n})
            mine.data_dir.mkdir(parents=True, exist_ok=True)
            log = (mine.data_dir / "worker.log").open("wb")
            worker = subprocess.Popen(
                [sys.executable, "-m", "streams.cli", "worker"],
                env=env | (child_env(mine) if url else {"MUSTER_WORKER_PORT": "26066"}),
                stdout=log,
                stderr=log,
            )
            children.append(worker)
            workers.append(wait_for_worker(mine, worker, timeout=120))
        reader: Reader = (
            LocalReader(connect(url, settings.database, create=False))
            if url
            else WorkerReader(workers[0])
        )
        _wait_shared(workers, settings.topic("events"), args.partitions)
        print(
            f"bench: {args.workers} worker(s) ready in {time.monotonic() - started:.1f} s, "
            f"store {args.store}, {args.partitions} partitions",
            flush=True,
        )
        if args.scenario == "city":
            plan = Plan(args.people, args.sites, args.days, zone=settings.zone)
            records = generate(plan)
        else:
            records = shanghai.generate()
        t0 = time.monotonic()
        produce(settings, records, rate=0, label="bench")
        produced = time.monotonic() - t0
        if args.scenario == "city":
            _wait_stored(reader, records, t0 + args.timeout)
        else:
            _wait_exact(reader, records, t0 + args.timeout)
        settle = time.monotonic() - t0
        print(
            f"bench: {len(records):,} records produced in {produced:.1f} s "
            f"({len(records) / produced:,.0f}/s); settled in {settle:.1f} s "
            f"({len(records) / settle:,.0f} records/s end to end)"
        )
        for where in workers:
            with urllib.request.urlopen(f"{where}/counters", timeout=5) as answer:
                print(f"bench: worker {where} counters {answer.read().decode()}")
        if args.scenario == "city":
            print(f"bench: {metrics(reader, datetime.now(settings.zone), settings.zone, Scope())}")
        else:
            at = shanghai.CUTOFF.isoformat()
            shown = env | ({"MUSTER_CLICKHOUSE_URL": url} if url else {})
            for command in (["metrics", "--at", at, "--json"], ["bulletin", "--at", at]):
                print(f"$ muster {' '.join(command)}", flush=True)
                subprocess.run(
                    [sys.executable, "-m", "streams.cli", *command], env=shown, check=True
                )
    finally:
        stop_together(children[1:] if url else children)
        stop_together(children[:1] if url else [])
        broker.terminate()


def _wait_shared(workers: list[str], topic: str, partitions: int) -> None:
    """Until the workers together read every partition of `topic`."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        held = []
        for where in workers:
            with urllib.request.urlopen(f"{where}/partitions", timeout=5) as answer:
                held += json.load(answer).get(topic, [])
        if sorted(held) == list(range(partitions)):
            return
        time.sleep(0.5)
    raise TimeoutError(f"the workers did not share the {partitions} partitions of {topic}")


def _wait_stored(reader: Reader, records: list[Any], deadline: float) -> None:
    """Until every event record is stored (resends once) and the count holds for 3 s."""
    expected = sum(1 for r in records if r.topic == "events")
    last = -1
    while time.monotonic() < deadline:
        n = reader.query(STORED).rows[0][0]
        if n >= expected * 0.98 and n == last:
            return
        last = n
        time.sleep(3)
    raise TimeoutError(f"only {last:,} of ~{expected:,} events stored")


def _wait_exact(reader: Reader, records: list[Any], deadline: float) -> None:
    """Until the pipeline's metrics equal the reference's at the cutoff, in every scope."""
    ref = reference.build([(r.topic, r.value) for r in records], shanghai.MAX_SHIFT)
    scopes = [Scope(), Scope(district="浦东新区"), Scope(org="union"), Scope(role="marshal")]
    want = [reference.metrics(ref, shanghai.CUTOFF, shanghai.ZONE, _plain(s)) for s in scopes]
    got: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        got = [metrics(reader, shanghai.CUTOFF, shanghai.ZONE, s) for s in scopes]
        if all(reference.agrees(g, w, 1e-6) for g, w in zip(got, want, strict=True)):
            return
        time.sleep(2)
    raise TimeoutError(f"not exact yet: got {got[0]}, want {want[0]}")


def _plain(scope: Scope) -> dict[str, str]:
    return {k: v for k, v in asdict(scope).items() if v}


if __name__ == "__main__":
    main()
