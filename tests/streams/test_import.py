"""`muster import FILE.jsonl`: a file of history, one event per line, through the validation
every event meets: each valid line to its topic, each invalid one to the DLQ with its line
and reason; the workers then derive what the reference derives from the same lines."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from schemas.errors import InvalidEvent
from schemas.events import parse_record
from tests import reference
from tests.scenarios import CUTOFFS, MAX, edge_scenario
from tests.workers import Worker

pytestmark = pytest.mark.slow


def routed(value: bytes) -> str:
    """The topic `muster import` sends a line to: sites for a site version, else events."""
    try:
        event = json.loads(value)
    except ValueError:
        return "events"
    return "sites" if isinstance(event, dict) and event.get("type") == "site_upserted" else "events"


def valid(value: bytes, kind: str) -> bool:
    try:
        parse_record(value, kind, datetime.now(UTC))
    except InvalidEvent:
        return False
    return True


def test_a_file_of_history_is_derived_as_the_reference_derives_it(
    worker: Worker, tmp_path: Path
) -> None:
    values = [value for _, _, value in edge_scenario().records]
    path = tmp_path / "history.jsonl"
    path.write_bytes(b"\n".join(values) + b"\n\n")  # a blank line too: skipped
    worker.start()
    done = subprocess.run(
        [sys.executable, "-m", "streams.cli", "import", str(path)],
        env=worker.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    invalid = [i for i, v in enumerate(values, 1) if not valid(v, routed(v))]
    assert invalid, "the edge scenario holds invalid lines"
    assert f"{len(invalid)} invalid to {worker.settings.topic('dlq')}" in done.stdout
    assert f"imported {len(values)} lines" in done.stdout
    assert f"history.jsonl line {invalid[0]}: " in done.stderr  # named on the way

    ref = reference.build([(routed(v), v) for v in values], MAX, datetime.now(UTC))
    for cutoff in CUTOFFS:
        worker.metrics_settle(cutoff, reference.metrics(ref, cutoff, worker.settings.zone))
    stored = worker.cli(
        "sql", "SELECT error FROM dlq WHERE topic = 'import' ORDER BY error", "--format", "json"
    )
    errors = [row["error"] for row in map(json.loads, stored.splitlines())]
    lines = sorted(int(e.split(" line ")[1].split(":")[0]) for e in errors)
    assert lines == invalid, errors


def test_a_missing_file_and_a_file_of_nothing_valid_are_errors(
    worker: Worker, tmp_path: Path
) -> None:
    def run(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [sys.executable, "-m", "streams.cli", "import", *args],
            env=worker.env,
            input=stdin,
            capture_output=True,
            timeout=120,
        )

    missing = run(str(tmp_path / "nope.jsonl"))
    assert missing.returncode == 1 and b"cannot read" in missing.stderr
    assert b"nope.jsonl" in missing.stderr
    nothing = run("-", stdin=b"not json\n{}\n")  # from stdin
    assert nothing.returncode == 1, nothing.stderr
    assert b"stdin line 1: " in nothing.stderr and b"stdin line 2: " in nothing.stderr
    assert b"2 invalid" in nothing.stdout
