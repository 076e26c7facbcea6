"""One pipeline worker: migrate the store, then run the Faust app and answer queries.

While it runs, the worker holds the embedded store and serves `POST /query` (read-only
SQL) so that `muster metrics` and `muster sql` work alongside it.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any

import faust
from aiokafka import TopicPartition
from faust.web import Request, Response, View

from schemas.errors import MusterError
from sinks.queries import warm_up
from sinks.reader import helped_reader, run_query, write_worker_file
from sinks.store import connect, lock_embedded, migrate
from sinks.writer import RowWriter
from streams.agents.app import create_app
from streams.agents.context import Context
from streams.broker import create_topics, events_partitions, is_listening
from streams.settings import Settings
from streams.web.api import add_api
from streams.web.wall import add_wall

log = logging.getLogger(__name__)


def build_worker(settings: Settings) -> Context:
    """Open and migrate the store, create the input topics, and wire the app."""
    if settings.store_is_embedded:
        lock_embedded(settings.data_dir)
    client = connect(settings.store_url, settings.database)
    applied = migrate(client)
    if applied:
        log.info("store migrated: %s", ", ".join(applied))
    create_topics(settings)
    if (partitions := events_partitions(settings)) != settings.events_partitions:
        log.info(
            "the events topic has %d partitions (MUSTER_EVENTS_PARTITIONS=%d only sets them "
            "when muster creates it): this worker uses %d",
            partitions,
            settings.events_partitions,
            partitions,
        )
        settings = settings.model_copy(update={"events_partitions": partitions})
    # One thread does all store work: chdb hung here once with writes and reads on several
    # threads sharing a client (chdb-io/chdb issue 426 is alike: a SELECT that never
    # returned). The one exception is below, read-only.
    store_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store")
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    journal = settings.data_dir / f"store-journal-{settings.worker_port}.json"
    writer = RowWriter(client, journal=journal)
    if completed := writer.recover():
        log.info("completed the store write a stop cut short (%d rows)", completed)
    pipeline = create_app(settings, writer, store_thread)
    reads = connect(settings.store_url, settings.database, create=False)
    add_query_view(pipeline, reads, store_thread)
    # a metrics call's independent SELECTs run at once on helper clients, each its own chdb
    # handle, while the store thread waits for them (sinks/reader.py), so never beside a
    # write (100M bench store: 10,840 batches of 2-6 SELECTs at once on 4 clients, no hang)
    reader = helped_reader(reads, settings.store_url, settings.database)
    add_api(pipeline.app, reader, store_thread, settings.zone, not_ready(pipeline))
    add_wall(pipeline.app, reader, store_thread, settings.zone, settings.coverage_target)
    started = time.monotonic()
    try:  # before the web server answers: /readyz says ready only after
        if asked := warm_up(reader, settings.zone):
            log.info("store warmed up: %d questions in %.1f s", asked, time.monotonic() - started)
    except MusterError as exc:  # only slower first answers
        log.warning("warming the store up failed: %s", exc)
    return pipeline


def not_ready(pipeline: Context) -> Callable[[], list[str]]:
    """SPEC §7 /readyz, besides the store: the broker answers and table recovery is done."""
    app, bootstrap = pipeline.app, pipeline.settings.kafka_bootstrap

    def reasons() -> list[str]:
        out = []
        if not is_listening(bootstrap):
            out.append(f"the broker at {bootstrap} does not answer")
        if not app.tables.recovery.completed.is_set():  # type: ignore[attr-defined]
            out.append("table recovery is not done")
        return out

    return reasons


def add_query_view(pipeline: Context, client: Any, executor: Executor) -> None:
    app = pipeline.app

    @app.page("/query")
    class QueryView(View):
        async def post(self, request: Request) -> Response:
            body = await request.json()
            loop = asyncio.get_running_loop()
            try:
                result = await loop.run_in_executor(
                    executor, run_query, client, body["sql"], body.get("parameters")
                )
            except MusterError as exc:
                return self.json({"error": str(exc)}, status=400)
            return self.json({"columns": result.columns, "rows": result.rows})

    @app.page("/counters")
    class CountersView(View):
        async def get(self, request: Request) -> Response:
            return self.json(pipeline.counters)

    @app.page("/partitions")
    class PartitionsView(View):
        async def get(self, request: Request) -> Response:
            """The input partitions this worker reads now, per topic (several workers
            share them, and a rebalance moves them)."""
            if request.query.get("detail"):
                return self.json(reading(app))
            mine: dict[str, list[int]] = {}
            for tp in app.consumer.assignment():
                mine.setdefault(tp.topic, []).append(tp.partition)
            return self.json({topic: sorted(parts) for topic, parts in sorted(mine.items())})


def reading(app: faust.App) -> dict[str, dict[str, object]]:
    """Where this worker reads each input partition: Faust's read and committed offsets,
    whether it is paused or waits on a full stream buffer, the Kafka client's position and
    prefetched batch (`/partitions?detail=1`: what a stalled partition is waiting on)."""
    consumer: Any = app.consumer
    thread = getattr(consumer, "_thread", None)
    client = getattr(thread, "_consumer", None)
    assigned = getattr(getattr(client, "_subscription", None), "subscription", None)
    fetched = getattr(getattr(client, "_fetcher", None), "_records", {})
    found: dict[str, dict[str, object]] = {}
    for tp in sorted(consumer.assignment()):
        if consumer._is_changelog_tp(tp):
            continue
        ktp = TopicPartition(tp.topic, tp.partition)
        state = assigned.assignment.state_value(ktp) if assigned and assigned.assignment else None
        found[f"{tp.topic}[{tp.partition}]"] = {
            "read": consumer._read_offset.get(tp),
            "committed": consumer._committed_offset.get(tp),
            "paused": tp in consumer._paused_partitions,
            "buffer_full": tp in consumer._buffered_partitions,
            "position": state.position if state is not None and state.has_valid_position else None,
            "client_paused": state.paused if state is not None else None,
            "prefetched": ktp in fetched,
        }
    return found


def collect_less() -> None:
    """Python's default collector thresholds (700, 10, 10) cost a busy worker dearly: the
    Shanghai scenario made 42 full collections of the whole heap (the person table, the
    held rows), ~0.3 s each, 15% of the run. The modules and app loaded so far are moved
    out of the collector's sight, and it runs less often: young collections every 50k
    allocations (~30 ms each there), full ones rarely (the 25%-growth rule still holds)."""
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def run_worker(settings: Settings, loglevel: str = "info") -> None:
    # Faust warns "producer buffer full" each time a burst of changelog writes makes it wait
    # for the producer: its flow control working, not a fault, but dozens of lines a second
    # at full speed. Errors still show.
    logging.getLogger("faust.transport.producer").setLevel(logging.ERROR)
    pipeline = build_worker(settings)
    collect_less()
    url = f"http://127.0.0.1:{settings.worker_port}"
    write_worker_file(settings.data_dir, url, os.getpid())
    worker = faust.Worker(pipeline.app, loglevel=loglevel, quiet=True)
    worker.execute_from_commandline()
