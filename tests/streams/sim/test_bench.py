"""`muster bench` end to end on a small month: built through the pipeline's writer, settled,
merged, timed, and its answers checked against a full re-read of every shift.

The bench opens its own embedded store, so it runs as its own process (one chdb data
directory per process)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def test_a_small_bench_month_reads_what_a_full_re_read_does(tmp_path: Path) -> None:
    data = tmp_path / "bench"
    options = ["--scale", "20000", "--days", "2", "--data-dir", str(data)]
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "streams.cli",
            "bench",
            *options,
            "--cutoffs",
            "2",
            "--verify",
            "10",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert "coverage settled for" in run.stderr and "merged city_shifts in" in run.stderr
    info = json.loads((data / "bench.json").read_text())
    assert info["built"]["shifts"] > 15_000
    assert len(info["checked"]) == 10 and all(c["equal"] for c in info["checked"])
    assert set(info["timings"]) == {
        "national",
        "city",
        "district",
        "site",
        "org",
        "role",
        "team",
        "combined",
    }
