"""The Faust app: a factory that wires topics, tables and agents to the pure core.

    events --(ingest_people: validate, dedupe, derive shifts)--> rows --(batched)--> store
    sites  --(ingest_sites:  validate, dedupe)-----------------> rows --(batched)--> store
    bad records ------------------------------------------------> dlq (+ a dlq row)

Agents only wire: the rules live in schemas/ (validation), streams/person.py (dedupe and
SPEC §3) and sinks/ (the store). Records are acked by hand, only after the rows they produced
are in the store (streams/pending.py); Faust flushes the changelog before every commit. So
offsets never run ahead of the store or the person table: at-least-once end to end, made
exact by idempotent upserts and replay detection.
"""

from __future__ import annotations

from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import faust
from faust.types import EventT, StreamT

from schemas.dlq import DeadLetter
from schemas.errors import InvalidEvent
from schemas.events import AnyEvent, SiteUpserted, parse_record
from sinks.writer import RowWriter
from streams.pending import PendingRows
from streams.person import PersonState, apply
from streams.recovery import ExactTableManager
from streams.rows import dlq_row
from streams.settings import Settings
from streams.sites import apply_site


@dataclass
class Pipeline:
    app: faust.App
    settings: Settings
    counters: dict[str, int]


def faust_settings(settings: Settings) -> dict[str, Any]:
    """Faust configuration; the embedded profile shortens group-join timeouts (6 s vs 31 s)."""
    conf: dict[str, Any] = {
        "broker": f"kafka://{settings.kafka_bootstrap}",
        "store": "memory://",
        "topic_partitions": settings.events_partitions,
        "topic_replication_factor": 1,
        "table_standby_replicas": 0,
        "consumer_auto_offset_reset": "earliest",
        "web_bind": "127.0.0.1",
        "web_host": "127.0.0.1",
        "web_port": settings.worker_port,
        "web_in_thread": False,
        "datadir": str((settings.data_dir / "faust").resolve()),
        "producer_linger_ms": 5,
        "stream_buffer_maxsize": 16384,
        "TableManager": ExactTableManager,  # streams/recovery.py: no record lost on restart
        # Faust's stop would wait for every delivered record to be acked, but records held in
        # PendingRows are acked only by a flush: `flush_on_stop` does it, then Faust commits.
        "stream_wait_empty": False,
    }
    if settings.embedded:
        conf |= {
            "broker_rebalance_timeout": 5,
            "broker_session_timeout": 10,
            "broker_heartbeat_interval": 1,
            "stream_recovery_delay": 0,
        }
    return conf


def create_app(settings: Settings, writer: RowWriter, store_thread: Executor) -> Pipeline:
    """Build the app; every row goes to the store through `writer`, run on `store_thread`."""
    app = faust.App(f"{settings.topic_prefix}pipeline", **faust_settings(settings))
    counters = {"accepted": 0, "duplicate": 0, "replayed": 0, "dlq": 0, "rows": 0}
    pipeline = Pipeline(app, settings, counters)
    pending = PendingRows(writer, counters, store_thread)

    raw = {"key_serializer": "raw", "value_serializer": "raw"}
    events = app.topic(settings.topic("events"), partitions=settings.events_partitions, **raw)
    sites = app.topic(settings.topic("sites"), partitions=1, **raw)
    dlq = app.topic(settings.topic("dlq"), partitions=1, **raw)
    persons = app.Table("persons", default=None, partitions=settings.events_partitions)
    site_ids = app.Table("site-event-ids", default=None, partitions=1)
    max_shift = settings.max_shift

    async def reject(stream: StreamT[bytes], event: EventT, error: str) -> None:
        msg = event.message
        key = msg.key if isinstance(msg.key, bytes) else None
        letter = DeadLetter.of(error, msg.topic, msg.partition, msg.offset, msg.value)
        await dlq.send(key=key, value=letter.model_dump_json().encode())
        key_text = None if key is None else key.decode("utf-8", "replace")
        row = dlq_row(error, msg.topic, msg.partition, msg.offset, key_text, letter.raw)
        pending.add(stream, event, {"dlq": [row]})
        counters["dlq"] += 1

    async def validated(stream: StreamT[bytes], event: EventT, kind: str) -> AnyEvent | None:
        """The record's event, or None once it has gone to the DLQ."""
        try:
            return parse_record(event.message.value, kind, datetime.now(UTC))
        except InvalidEvent as exc:
            await reject(stream, event, str(exc))
            return None

    @app.agent(events, name="ingest-people")
    async def ingest_people(stream: StreamT[bytes]) -> None:
        stream = stream.noack()
        async for event in stream.events():
            msg = event.message
            parsed = await validated(stream, event, "events")
            if parsed is not None:
                assert not isinstance(parsed, SiteUpserted)
                key = parsed.person_id  # table keys are JSON-coded in the changelog: str
                state = PersonState.from_json(persons.get(key))
                outcome = apply(state, parsed, msg.partition, msg.offset, max_shift)
                if outcome.status == "too_late":
                    await reject(stream, event, outcome.reason)
                else:
                    if outcome.status == "accepted":
                        persons[key] = state.to_json()
                    counters[outcome.status] += 1
                    pending.add(stream, event, outcome.rows)
            await pending.flush_if_due()

    @app.agent(sites, name="ingest-sites")
    async def ingest_sites(stream: StreamT[bytes]) -> None:
        stream = stream.noack()
        async for event in stream.events():
            msg = event.message
            parsed = await validated(stream, event, "sites")
            if parsed is not None:
                assert isinstance(parsed, SiteUpserted)
                key = parsed.site_id
                seen: dict[str, str] = dict(site_ids.get(key) or {})
                outcome = apply_site(seen, parsed, msg.partition, msg.offset)
                if outcome.status == "accepted":
                    site_ids[key] = seen
                counters[outcome.status] += 1
                pending.add(stream, event, outcome.rows)
            await pending.flush_if_due()

    @app.timer(pending.max_age / 2)
    async def flush_when_quiet() -> None:
        await pending.flush_if_due()

    @app.on_before_shutdown.connect
    async def flush_on_stop(app: faust.App, **kwargs: Any) -> None:
        """Fetching has stopped; store what is held and ack it before the last commit."""
        await pending.flush()

    return pipeline
