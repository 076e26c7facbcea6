"""`muster emit` as a new user runs it: one event from arguments through Kafka, a JSONL file
through the gateway with a token, and what it says when something is wrong."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests import reference
from tests.scenarios import cin, cout
from tests.workers import Gateway, Worker

pytestmark = pytest.mark.slow
ZONE = ZoneInfo("Asia/Shanghai")


def emit(g: Gateway, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streams.cli", "emit", *args],
        env=g.env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_emit_from_arguments_and_from_a_file(door: tuple[Worker, Gateway], tmp_path: Path) -> None:
    w, g = door
    now = datetime.now(UTC)
    h = lambda hours: (now - timedelta(hours=hours)).astimezone(ZONE).isoformat()  # noqa: E731
    seen: list[tuple[str, bytes]] = []

    args = ["site", "--site", "S1", "--name", "一号点", "--city", "上海市"]
    args += ["--district", "浦东新区", "--require", "marshal=2", "--ts", h(30), "--id", "s1"]
    done = emit(g, *args)
    assert done.returncode == 0 and "1 event sent to Kafka" in done.stderr, done.stderr
    posted = {"type": "site_upserted", "ts": h(30), "event_id": "s1", "site_id": "S1"}
    posted |= {"name": "一号点", "city": "上海市", "district": "浦东新区"}
    seen.append(("sites", json.dumps(posted | {"requirements": {"marshal": 2}}).encode()))

    done = emit(
        g,
        "check-in",
        "--person",
        "A",
        "--site",
        "S1",
        "--role",
        "marshal",
        "--org",
        "union",
        "--ts",
        h(2),
        "--id",
        "a1",
    )
    assert done.returncode == 0, done.stderr
    seen.append(
        (
            "events",
            json.dumps(cin("A", h(2), "a1", role="marshal", org="union", team=None)).encode(),
        )
    )

    token = g.token("--name", "site-1", "--site", "S1")
    lines = [cin(f"P{i}", h(3), f"p{i}", role="marshal") for i in range(1200)]
    lines += [cout(f"P{i}", h(1), f"p{i}-out") for i in range(0, 1200, 3)]
    body = [json.dumps(e, ensure_ascii=False) for e in lines]
    body.insert(5, '{"event_id": "bad", "type": "check_in"}')
    body.insert(9, "not json at all")
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(body) + "\n", encoding="utf-8")
    done = emit(g, "--file", str(path), "--url", g.url, "--token", token)
    assert done.returncode == 1, done.stderr  # two lines were invalid: said, and not sent
    assert f"{path}:6: " in done.stderr and "person_id: required field is missing" in done.stderr
    assert f"{path}:10: " in done.stderr and "2 invalid lines not sent" in done.stderr
    assert f"{len(lines):,} events sent to {g.url}" in done.stderr
    assert "lines read" in done.stderr  # progress
    seen += [("events", json.dumps(e).encode()) for e in lines]

    wrong = emit(g, "--file", str(path), "--url", g.url, "--token", "mst_nope")
    assert wrong.returncode == 1 and "401" in wrong.stderr
    assert "wait in" in wrong.stderr  # spooled, not lost; the right token sends them later
    again = emit(
        g,
        "check-out",
        "--person",
        "A",
        "--url",
        g.url,
        "--token",
        token,
        "--ts",
        h(1.5),
        "--id",
        "a2",
    )
    assert again.returncode == 0 and "earlier run" in again.stderr, again.stderr
    seen.append(("events", json.dumps(cout("A", h(1.5), "a2")).encode()))

    ref = reference.build(seen, timedelta(hours=12), now)
    cutoff = datetime.now(UTC)
    want = reference.metrics(ref, cutoff, ZONE)
    got = w.metrics_settle(cutoff, want)
    assert got["on_post_now"] == 800 and got["sites_covered"] == 1


def test_emit_says_what_is_missing(door: tuple[Worker, Gateway]) -> None:
    _, g = door
    done = emit(g, "check-in", "--person", "A", "--site", "S1")
    assert done.returncode == 1 and "--role, --org" in done.stderr
    done = emit(g, "check-in", "--person", "A", "--site", "S1", "--role", "Marshal", "--org", "u")
    assert done.returncode == 1 and "'Marshal'" in done.stderr
    done = emit(g, "check-out", "--person", "A", "--url", g.url)
    assert done.returncode == 1 and "--token" in done.stderr
