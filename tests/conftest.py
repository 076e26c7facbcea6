"""Session fixtures: one embedded ClickHouse engine per test process (a chdb path can be opened
once per process), a fresh database per test; the real broker for slow tests."""

from __future__ import annotations

import signal
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from clickhouse_connect.driver.client import Client

from sinks.coverage import settle
from sinks.store import connect, migrate
from sinks.writer import RowWriter
from streams.broker import start_tansu
from streams.settings import Settings
from streams.sim.simulator import Plan, generate
from tests.scenarios import Core, fold, merged
from tests.workers import Gateway, StoreProcess, Worker, free_port

CITY_ZONE = ZoneInfo("Asia/Shanghai")
CITY_NOW = datetime(2022, 3, 20, 5, 30, tzinfo=UTC)


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
    proc = start_tansu(Settings(kafka_bootstrap=address, broker_storage="memory"))
    yield address
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture(scope="session")
def served_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`muster store` as a process, once per test session: its URL."""
    store = StoreProcess(tmp_path_factory.mktemp("served"))
    yield store.start()
    store.stop()


@pytest.fixture
def worker(bootstrap: str, tmp_path: Path) -> Iterator[Worker]:
    w = Worker(bootstrap, tmp_path)
    yield w
    if w.proc and w.proc.poll() is None:
        w.stop(signal.SIGKILL)


@pytest.fixture
def door(worker: Worker) -> Iterator[tuple[Worker, Gateway]]:
    """A started worker and an ingest gateway in front of it (same broker, prefix, data dir)."""
    gateway = Gateway(worker)
    worker.start()
    gateway.start()
    yield worker, gateway
    gateway.stop()


@pytest.fixture(scope="session")
def city(store_url: str) -> Iterator[Client]:
    """A store holding a simulated city: two days up to CITY_NOW (13:30 in Shanghai), with
    late and resent deliveries, written as the pipeline writes it."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    client = connect(store_url, name)
    migrate(client)
    plan = Plan(people=1500, sites=30, days=2, end=CITY_NOW, seed=11, zone=CITY_ZONE)
    records = [(r.topic, r.key, r.value) for r in generate(plan)]
    out = fold(Core(), records, CITY_NOW, zone=CITY_ZONE)
    writer = RowWriter(client)
    for i in range(0, len(out), 1000):
        writer.write(merged(out[i : i + 1000]))
    # the first day's hours settled (sinks/coverage.py), as a worker would have: metrics
    # read coverage from them there, and from the shifts on post after
    assert settle(client, before=CITY_NOW - timedelta(hours=18)) > 0
    yield client
    client.command(f"DROP DATABASE IF EXISTS {name}")
