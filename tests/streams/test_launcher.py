"""Processes that start others stop them on SIGTERM as on Ctrl-C: `muster broker` (Tansu)
and `muster up` (broker, store, worker, gateway)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from streams.broker import is_listening
from tests.workers import free_port

pytestmark = pytest.mark.slow


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "streams.cli", *args], env=env, stdout=out, stderr=out
        )


def until(seconds: float, probe: object) -> None:
    deadline = time.monotonic() + seconds
    while not probe():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"not within {seconds} s"
        time.sleep(0.2)


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1):
            return True
    except OSError:
        return False


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_broker_stops_tansu(sig: int, tmp_path: Path) -> None:
    address = f"127.0.0.1:{free_port()}"
    env = os.environ | {"MUSTER_KAFKA_BOOTSTRAP": address, "MUSTER_DATA_DIR": str(tmp_path)}
    proc = start(["broker"], env, tmp_path / "broker.log")
    until(30, lambda: b"topics created" in (tmp_path / "broker.log").read_bytes())
    proc.send_signal(sig)
    assert proc.wait(timeout=20) == 0
    until(5, lambda: not is_listening(address))


def test_up_starts_the_gateway_and_sigterm_stops_everything(tmp_path: Path) -> None:
    ports = {name: free_port() for name in ("kafka", "store", "worker", "gateway")}
    env = os.environ | {
        "MUSTER_KAFKA_BOOTSTRAP": f"127.0.0.1:{ports['kafka']}",
        "MUSTER_STORE_PORT": str(ports["store"]),
        "MUSTER_WORKER_PORT": str(ports["worker"]),
        "MUSTER_GATEWAY_PORT": str(ports["gateway"]),
        "MUSTER_DATA_DIR": str(tmp_path),
    }
    log = tmp_path / "up.log"
    proc = start(["up", "--no-simulator"], env, log)
    until(120, lambda: b"up: running" in log.read_bytes() or proc.poll() is not None)
    assert proc.poll() is None, log.read_text()[-3000:]
    assert b"ingest gateway at" in log.read_bytes()
    assert answers(f"http://127.0.0.1:{ports['gateway']}/healthz")
    assert answers(f"http://127.0.0.1:{ports['store']}/ping")  # the store every process reads
    assert answers(f"http://127.0.0.1:{ports['worker']}/api/metrics")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0
    for port in ports.values():
        assert not is_listening(f"127.0.0.1:{port}"), port
