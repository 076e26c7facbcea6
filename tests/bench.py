"""`make bench`: a city-scale run on the embedded profile, timed (never a test assertion).

Starts Tansu and one worker, produces a simulated city (default 45,000 volunteers, 800
sites, 3 days), and reports produce rate, settle time and end-to-end events/s.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from sinks.queries import Scope, metrics
from sinks.reader import WorkerReader
from streams.broker import start_tansu
from streams.launcher import wait_for_worker
from streams.settings import Settings
from streams.simulator import Plan, generate, produce


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, default=45_000)
    parser.add_argument("--sites", type=int, default=800)
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--port", type=int, default=29092)
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
        [sys.executable, "-m", "streams.cli", "worker"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        started = time.monotonic()
        reader = WorkerReader(wait_for_worker(settings, worker, timeout=120))
        print(f"bench: worker ready in {time.monotonic() - started:.1f} s")
        records = generate(Plan(args.people, args.sites, args.days, zone=settings.zone))
        t0 = time.monotonic()
        produce(settings, records, rate=0, label="bench")
        produced = time.monotonic() - t0
        expected = sum(1 for r in records if r.topic == "events")
        while True:
            n = reader.query(
                "SELECT (SELECT count() FROM events FINAL) + (SELECT count() FROM dlq FINAL "
                "WHERE topic LIKE '%events')"
            ).rows[0][0]
            if n >= expected * 0.98:  # resends are not stored twice
                last = n
                time.sleep(3)
                n2 = reader.query(
                    "SELECT (SELECT count() FROM events FINAL) + (SELECT count() FROM dlq "
                    "FINAL WHERE topic LIKE '%events')"
                ).rows[0][0]
                if n2 == last:
                    break
            time.sleep(1)
        settle = time.monotonic() - t0
        m = metrics(reader, datetime.now(settings.zone), settings.zone, Scope())
        print(
            f"bench: {len(records):,} records produced in {produced:.1f} s "
            f"({len(records) / produced:,.0f}/s); settled in {settle:.1f} s "
            f"({len(records) / settle:,.0f} records/s end to end)"
        )
        print(f"bench: {m}")
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        broker.terminate()


if __name__ == "__main__":
    main()
