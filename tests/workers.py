"""Real pipeline workers for end-to-end tests: a worker process per test on the session's
Tansu broker, its own data directory, topic prefix and HTTP port.

Records are produced with confluent-kafka, a client muster itself does not use.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from confluent_kafka import Producer

from sinks.reader import WorkerReader
from streams.launcher import start_store, stop_child, wait_for_gateway, wait_for_worker
from streams.settings import Settings
from tests import reference
from tests.scenarios import Scenario


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Worker:
    def __init__(self, bootstrap: str, data_dir: Path, **env: str) -> None:
        self.env = os.environ | {
            "MUSTER_KAFKA_BOOTSTRAP": bootstrap,
            "MUSTER_DATA_DIR": str(data_dir),
            "MUSTER_TOPIC_PREFIX": f"t{uuid.uuid4().hex[:8]}.",
            "MUSTER_WORKER_PORT": str(free_port()),
        }
        self.env |= env
        self.settings = Settings(
            **{k[7:].lower(): v for k, v in self.env.items() if k.startswith("MUSTER_")}
        )
        self.group = f"{self.settings.topic_prefix}pipeline"  # Faust's group id is the app id
        self.log = data_dir / "worker.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"http://127.0.0.1:{self.settings.worker_port}"

    def start(self) -> WorkerReader:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "streams.cli", "worker"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return WorkerReader(wait_for_worker(self.settings, self.proc, timeout=90))

    def stop(self, sig: int = signal.SIGTERM) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)
        self.proc.wait(timeout=30)

    def metrics_settle(
        self, cutoff: datetime, want: dict[str, Any], seconds: float = 30
    ) -> dict[str, Any]:
        """/api/metrics at `cutoff` once it agrees with `want` (the reference); fail after
        `seconds` showing both."""
        deadline = time.monotonic() + seconds
        path = f"/api/metrics?at={quote(cutoff.isoformat())}"
        while not reference.agrees(got := self.get(path)[1], want, 1e-9):
            assert time.monotonic() < deadline, (got, want)
            time.sleep(0.3)
        return dict(got)

    def cli(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "streams.cli", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout

    def get(self, path: str) -> tuple[int, Any]:
        """GET one read-API path: (status, decoded JSON body)."""
        return get_json(self.url + path)


def get_json(url: str) -> tuple[int, Any]:
    """GET a URL: (status, decoded JSON body), also for 4xx and 5xx answers."""
    try:
        with urllib.request.urlopen(url, timeout=30) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def produce(worker: Worker, scenario: Scenario) -> None:
    producer = Producer({"bootstrap.servers": worker.settings.kafka_bootstrap})
    for kind, key, value in scenario.records:
        producer.produce(worker.settings.topic(kind), key=key, value=value)
    assert producer.flush(30) == 0


class StoreProcess:
    """`muster store` on its own data directory and a free port, as `muster up` starts it."""

    def __init__(self, data_dir: Path) -> None:
        self.settings = Settings(data_dir=data_dir, store_port=free_port())
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> str:
        self.proc, url = start_store(self.settings, self.settings.data_dir / "store.log")
        return url

    def stop(self) -> None:
        if self.proc is not None:
            stop_child(self.proc)


class Gateway:
    """`muster gateway` as a process, with the worker's settings (broker, prefix, data dir)."""

    def __init__(self, worker: Worker) -> None:
        self.env = worker.env | {"MUSTER_GATEWAY_PORT": str(free_port())}
        self.settings = worker.settings.model_copy(
            update={"gateway_port": int(self.env["MUSTER_GATEWAY_PORT"])}
        )
        self.url = f"http://127.0.0.1:{self.env['MUSTER_GATEWAY_PORT']}"
        self.log = Path(worker.env["MUSTER_DATA_DIR"]) / "gateway.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "streams.cli", "gateway"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_for_gateway(self.settings, self.proc, timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=20)

    def token(self, *args: str) -> str:
        """`muster token add ...`: the token, alone on the last line of its output."""
        done = subprocess.run(
            [sys.executable, "-m", "streams.cli", "token", "add", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        lines = done.stdout.splitlines()
        assert lines and lines[-1].startswith("mst_"), done.stdout
        return lines[-1]

    def post(
        self, body: bytes, token: str | None, content_type: str = "application/x-ndjson"
    ) -> tuple[int, Any]:
        headers = {"Content-Type": content_type}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        request = urllib.request.Request(
            self.url + "/api/events", data=body, headers=headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    def get(self, path: str) -> tuple[int, Any]:
        return get_json(self.url + path)
