"""Session fixtures: one embedded ClickHouse engine per test process (a chdb path can be opened
once per process), a fresh database per test; the real broker for slow tests."""

from __future__ import annotations

import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client

from sinks.store import connect, migrate
from streams.broker import start_tansu
from streams.settings import Settings
from tests.workers import Worker, free_port


@pytest.fixture(scope="session")
def store_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"chdb://{tmp_path_factory.mktemp('chdb')}"


@pytest.fixture
def store(store_url: str) -> Iterator[Client]:
    """A migrated, empty database on the real engine, dropped after the test."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    client = connect(store_url, name)
    migrate(client)
    yield client
    client.command(f"DROP DATABASE IF EXISTS {name}")


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def bootstrap() -> Iterator[str]:
    """The real broker (Tansu), once per test session."""
    address = f"127.0.0.1:{free_port()}"
    proc = start_tansu(Settings(kafka_bootstrap=address))
    yield address
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def worker(bootstrap: str, tmp_path: Path) -> Iterator[Worker]:
    w = Worker(bootstrap, tmp_path)
    yield w
    if w.proc and w.proc.poll() is None:
        w.stop(signal.SIGKILL)
