"""`make bench`: city-scale runs on the embedded profile, timed (never a test assertion).

Starts Tansu and one worker, produces a scenario unthrottled, and reports the produce rate,
the settle time and end-to-end records/s.

- `--scenario city` (default): a simulated city (45,000 volunteers, 800 sites, 3 days up to
  now); settled when every event is stored.
- `--scenario shanghai-2022-03-15`: the seed 002 bulletin (~217k records, 3% up to 48 h late,
  1% resent); settled when every metric at the bulletin's cutoff, city-wide and in a few
  scopes, equals the reference implementation; then prints `muster metrics` and
  `muster bulletin` as a user would run them.
"""

from __future__ import annotations

import argparse
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
from sinks.reader import WorkerReader
from streams.broker import start_tansu
from streams.launcher import wait_for_worker
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
    parser.add_argument("--timeout", type=float, default=1800, help="give up after (s)")
    args = parser.parse_args()
    data = Path(tempfile.mkdtemp(prefix="muster-bench-"))
    env = os.environ | {
        "MUSTER_KAFKA_BOOTSTRAP": f"127.0.0.1:{args.port}",
        "MUSTER_DATA_DIR": str(data),
        "MUSTER_WORKER_PORT": "26066",
    }
    settings = Settings(
        kafka_bootstrap=env["MUSTER_KAFKA_BOOTSTRAP"], data_dir=data, worker_port=26066
    )
    broker = start_tansu(settings)
    log = (data / "worker.log").open("wb")
    worker = subprocess.Popen(
        [sys.executable, "-m", "streams.cli", "worker"], env=env, stdout=log, stderr=log
    )
    try:
        started = time.monotonic()
        reader = WorkerReader(wait_for_worker(settings, worker, timeout=120))
        print(f"bench: worker ready in {time.monotonic() - started:.1f} s", flush=True)
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
        with urllib.request.urlopen(f"{reader.url}/counters", timeout=5) as answer:
            print(f"bench: worker counters {answer.read().decode()}")
        if args.scenario == "city":
            print(f"bench: {metrics(reader, datetime.now(settings.zone), settings.zone, Scope())}")
        else:
            at = shanghai.CUTOFF.isoformat()
            for command in (["metrics", "--at", at, "--json"], ["bulletin", "--at", at]):
                print(f"$ muster {' '.join(command)}", flush=True)
                subprocess.run([sys.executable, "-m", "streams.cli", *command], env=env, check=True)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        broker.terminate()


def _wait_stored(reader: WorkerReader, records: list[Any], deadline: float) -> None:
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


def _wait_exact(reader: WorkerReader, records: list[Any], deadline: float) -> None:
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
