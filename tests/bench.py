"""`make bench`: city-scale runs on the embedded profile, timed (never a test assertion).

Starts Tansu, produces a scenario unthrottled, then starts `muster store` and `--workers`
workers at once (or, with `--store in-process`, one worker holding the embedded store
itself) and times the drain: until every record is read, and until the numbers settle.
Reports CPU seconds per process.

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
from streams.broker import create_topics, start_tansu
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
        create_topics(settings)
        if args.scenario == "city":
            records = generate(Plan(args.people, args.sites, args.days, zone=settings.zone))
        else:
            records = shanghai.generate()
        t0 = time.monotonic()
        produce(settings, records, rate=0, label="bench")
        produced = time.monotonic() - t0
        print(
            f"bench: {len(records):,} records produced in {produced:.1f} s "
            f"({len(records) / produced:,.0f}/s), before any worker starts",
            flush=True,
        )
        want = _wanted(records) if args.scenario != "city" else []
        url = ""
        if args.store == "served":
            store, url = start_store(settings, data / "store.log")
            assert store is not None
            children.append(store)
        started = time.monotonic()  # the drain: from the workers' start until exact
        broker_before = _broker_cpu(broker.pid)
        mine = [
            (worker_settings(settings, url, n) if url else settings).model_copy(
                update={"worker_port": 26066 + n}
            )
            for n in range(args.workers)
        ]
        for one in mine:  # all at once, as `muster up --workers N` starts them
            one.data_dir.mkdir(parents=True, exist_ok=True)
            log = (one.data_dir / "worker.log").open("wb")
            children.append(
                subprocess.Popen(
                    [sys.executable, "-m", "streams.cli", "worker"],
                    env=env | (child_env(one) if url else {"MUSTER_WORKER_PORT": "26066"}),
                    stdout=log,
                    stderr=log,
                )
            )
        procs = children[1:] if url else children
        workers = [wait_for_worker(one, p, 120) for one, p in zip(mine, procs, strict=True)]
        reader: Reader = (
            LocalReader(connect(url, settings.database, create=False))
            if url
            else WorkerReader(workers[0])
        )
        deadline = started + args.timeout
        _wait_read(workers, len(records), deadline)
        read = time.monotonic() - started
        if args.scenario == "city":
            _wait_stored(reader, records, deadline)
        else:
            _wait_exact(reader, want, deadline)
        settle = time.monotonic() - started
        print(
            f"bench: {args.workers} worker(s), store {args.store}, {args.partitions} "
            f"partitions: every record read in {read:.1f} s, settled in {settle:.1f} s after "
            f"the workers started ({len(records) / settle:,.0f} records/s drained)"
        )
        for where in workers:
            with urllib.request.urlopen(f"{where}/counters", timeout=5) as answer:
                print(f"bench: worker {where} counters {answer.read().decode()}")
        busy = ", ".join(
            f"{name} {cpu_seconds(pid):.0f}" for name, pid in _processes(children, url)
        )
        spent = zip(_broker_cpu(broker.pid), broker_before, strict=True)
        busy += f", broker {' + '.join(f'{a - b:.0f}' for a, b in spent)} (object store + Tansu)"
        own = cpu_seconds(os.getpid())
        print(f"bench: CPU seconds by the end: {busy}; this bench process {own:.0f}")
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


def cpu_seconds(pid: int) -> float:
    """User and system CPU time a process has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _broker_cpu(pid: int) -> list[float]:
    """CPU seconds of the broker's process and of those it started (Tansu under the
    object store that keeps its topics)."""
    found = Path(f"/proc/{pid}/task/{pid}/children")
    started = [int(p) for p in found.read_text().split()] if found.exists() else []
    return [cpu_seconds(pid), sum(cpu_seconds(p) for p in started)]


def _processes(children: list[subprocess.Popen[bytes]], url: str) -> list[tuple[str, int]]:
    named = [("store", children[0].pid)] if url else []
    workers = children[1:] if url else children
    return named + [(f"worker {n + 1}", w.pid) for n, w in enumerate(workers)]


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


SCOPES = [Scope(), Scope(district="浦东新区"), Scope(org="union"), Scope(role="marshal")]


def _wanted(records: list[Any]) -> list[dict[str, Any]]:
    """The reference's metrics at the cutoff in each of SCOPES."""
    ref = reference.build([(r.topic, r.value) for r in records], shanghai.MAX_SHIFT)
    return [reference.metrics(ref, shanghai.CUTOFF, shanghai.ZONE, _plain(s)) for s in SCOPES]


def _wait_read(workers: list[str], total: int, deadline: float) -> None:
    """Until the workers together have taken every record (each counted once, as
    accepted, duplicate, replayed or sent to the DLQ)."""
    while time.monotonic() < deadline:
        seen = 0
        for where in workers:
            with urllib.request.urlopen(f"{where}/counters", timeout=5) as answer:
                counts = json.load(answer)
            seen += sum(counts[k] for k in ("accepted", "duplicate", "replayed", "dlq"))
        if seen >= total:
            return
        time.sleep(1)
    raise TimeoutError("the workers did not read every record in time")


def _wait_exact(reader: Reader, want: list[dict[str, Any]], deadline: float) -> None:
    """Until the pipeline's metrics equal the reference's at the cutoff, in every scope."""
    scopes = SCOPES
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
