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
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from confluent_kafka import Producer

from sinks.reader import WorkerReader
from streams.launcher import wait_for_worker
from streams.settings import Settings
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
        try:
            with urllib.request.urlopen(self.url + path, timeout=30) as answer:
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())


def produce(worker: Worker, scenario: Scenario) -> None:
    producer = Producer({"bootstrap.servers": worker.settings.kafka_bootstrap})
    for kind, key, value in scenario.records:
        producer.produce(worker.settings.topic(kind), key=key, value=value)
    assert producer.flush(30) == 0
