"""What every agent and timer of the worker shares: the Faust app, its topics and tables,
the rows waiting for the store, the diffs waiting for their batch, and the counters.

`build` makes it; each agent module registers its agent on it (streams/agents/app.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

import faust
from aiokafka.partitioner import murmur2
from faust.types import TP, EventT, StreamT, TableT

from schemas.dlq import DeadLetter
from schemas.errors import InvalidEvent
from schemas.events import AnyEvent, parse_record
from sinks.writer import RowWriter
from streams.agents.consumer import Transport
from streams.agents.pending import PendingRows
from streams.agents.producer import LINGER, Producer
from streams.agents.recall import Recall
from streams.agents.recovery import ExactTableManager
from streams.agents.timetable import Timetable
from streams.broker import SITE_CHANGES
from streams.core.live import Diff, diffs_message
from streams.core.rows import dlq_row
from streams.settings import Settings

log = logging.getLogger(__name__)
HAND_OVER_SECONDS = 5.0  # the longest a rebalance waits for the records in hand

Event = EventT[bytes]
Stream = StreamT[bytes]
COUNTERS = ("accepted", "duplicate", "replayed", "dlq", "rows", "site_messages", "alerts")


def faust_settings(settings: Settings) -> dict[str, Any]:
    """Faust configuration; the embedded profile shortens group-join timeouts (6 s vs 31 s)."""
    conf: dict[str, Any] = {
        "broker": f"kafka://{settings.kafka_bootstrap}",
        "store": "memory://",
        "topic_partitions": settings.events_partitions,
        "topic_replication_factor": settings.replication_factor,
        "table_standby_replicas": 0,
        "consumer_auto_offset_reset": "earliest",
        "web_bind": settings.worker_host,
        "web_host": settings.worker_host,
        "web_port": settings.worker_port,
        "web_in_thread": False,
        "datadir": str((settings.data_dir / "faust").resolve()),
        # Every table write is a changelog message: fewer, larger produce requests cost the
        # event loop less per message (a flush before each store write sends what waits).
        "producer_linger_ms": round(LINGER * 1000),  # streams/agents/producer.py
        "producer_max_batch_size": 256 * 1024,
        "stream_buffer_maxsize": 16384,
        "TableManager": ExactTableManager,  # streams/agents/recovery.py: no record lost on restart
        # Faust's stop would wait for every delivered record to be acked, but records held in
        # PendingRows are acked only by a flush: `flush_on_stop` does it, then Faust commits.
        "stream_wait_empty": False,
    }
    if settings.kafka_security_protocol == "SSL":
        conf["broker_credentials"] = faust.SSLCredentials(settings.kafka_tls)
    elif settings.kafka_security_protocol.startswith("SASL"):
        conf["broker_credentials"] = faust.SASLCredentials(
            username=settings.kafka_username,
            password=settings.kafka_password,
            mechanism=settings.kafka_sasl_mechanism,
            ssl_context=settings.kafka_tls,
        )
    if settings.embedded:
        conf |= {
            "broker_rebalance_timeout": 5,
            "broker_session_timeout": 10,
            "broker_heartbeat_interval": 1,
            "stream_recovery_delay": 0,
        }
    return conf


@dataclass
class Context:
    app: faust.App
    settings: Settings
    writer: RowWriter
    store_thread: Executor
    events: faust.TopicT
    sites: faust.TopicT
    dlq: faust.TopicT
    site_changes: faust.TopicT  # shift diffs, site versions and ticks, keyed by site
    status_topic: faust.TopicT
    alerts_topic: faust.TopicT
    persons: TableT[str, Any]  # person_id → PersonState JSON
    site_ids: TableT[str, Any]  # site_id → the site's event ids (dedupe)
    live: TableT[str, Any]  # site_id → SiteLive JSON
    recall: Recall
    pending: PendingRows = field(init=False)
    counters: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTERS, 0))
    # Shift diffs wait here, per site, until the batch of the records that made them is
    # written: one message then carries every diff a site got meanwhile (a busy moment
    # touches most sites many times), and it is sent before those records are acked.
    outbox: dict[str, list[Diff]] = field(default_factory=dict)
    timetable: Timetable = field(default_factory=Timetable)
    handling: int = 0  # records an agent is in the middle of

    def owns(self, topic: faust.TopicT, partition: int) -> bool:
        """Whether this worker reads `partition` of `topic` now."""
        name = next(iter(topic.topics))
        return TP(name, partition) in self.app.consumer.assignment()

    def owned_keys(self, topic: faust.TopicT, keys: Iterable[str]) -> list[str]:
        """Those of `keys` whose records land on a partition of `topic` this worker reads
        (the producer's partitioner: murmur2 of the key, as Kafka's Java client)."""
        name = next(iter(topic.topics))
        mine = {tp.partition for tp in self.app.consumer.assignment() if tp.topic == name}
        count = topic.partitions or self.settings.events_partitions
        return [k for k in keys if (murmur2(k.encode()) & 0x7FFFFFFF) % count in mine]

    async def hand_over(self, revoked: set[TP]) -> None:
        """Before partitions move to another worker (a rebalance): stop taking records,
        let the ones in hand finish, store what is held and commit it. The next owner
        then starts where this worker stopped, from tables that hold all of it, and no
        record is written by two workers. (Faust forgets the acks of revoked partitions
        before it tells the app, so this runs before Faust's own revoke, streams/agents/
        consumer.py.)"""
        consumer = self.app.consumer
        consumer.stop_flow()
        self.app.flow_control.suspend()
        self.app.flow_control.clear()
        deadline = time.monotonic() + HAND_OVER_SECONDS
        while self.handling and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        await self.pending.flush()
        await consumer.commit()
        log.info("handed over %d partitions: held records stored and committed", len(revoked))

    def __post_init__(self) -> None:
        self.pending = PendingRows(
            self.writer,
            self.counters,
            self.store_thread,
            before_write=self.send_outbox,
            lag=self.lag,
        )

    async def send_outbox(self) -> None:
        """Before each store write: send the batch's diffs, then flush them and the tables'
        changelogs, so the store never holds a change a table or a site could miss. The
        messages until the next write linger as long as the worker is behind."""
        held = dict(self.outbox)  # taken before any await: exactly the diffs of this batch
        self.outbox.clear()
        for site_id, diffs in held.items():
            await self.site_changes.send(key=site_id.encode(), value=diffs_message(diffs))
        cast(Producer, self.app.producer).pace(self.pending.catching_up())
        await self.app.producer.flush()

    def lag(self, event: Event) -> int:
        """Records after this one on its partition, as the consumer last heard."""
        msg = event.message
        try:
            highwater = self.app.consumer.highwater(msg.tp)
        except Exception:  # e.g. not assigned in a rebalance: a hint, never an agent's fault
            return 0
        return (highwater or 0) - msg.offset - 1

    async def reject(self, stream: Stream, event: Event, error: str) -> None:
        """The record goes to the DLQ with its reason, and a dlq row to the store."""
        msg = event.message
        key = msg.key if isinstance(msg.key, bytes) else None
        letter = DeadLetter.of(error, msg.topic, msg.partition, msg.offset, msg.value)
        await self.dlq.send(key=key, value=letter.model_dump_json().encode())
        key_text = None if key is None else key.decode("utf-8", "replace")
        row = dlq_row(error, msg.topic, msg.partition, msg.offset, key_text, letter.raw)
        self.pending.add(stream, event, {"dlq": [row]})
        self.counters["dlq"] += 1

    async def validated(self, stream: Stream, event: Event, kind: str) -> AnyEvent | None:
        """The record's event, or None once it has gone to the DLQ."""
        try:
            return parse_record(event.message.value, kind, datetime.now(UTC))
        except InvalidEvent as exc:
            await self.reject(stream, event, str(exc))
            return None


Handle = Callable[["Context", Stream, Event], Awaitable[None]]


def agent(ctx: Context, topic: faust.TopicT, name: str, handle: Handle) -> None:
    """Register the agent `name` on `topic`: each record goes to `handle`, unacked (its
    rows' batch acks it once stored, ctx.pending), and a due batch is written after it."""

    async def process(stream: Stream) -> None:
        stream = stream.noack()  # type: ignore[attr-defined]
        async for event in stream.events():
            ctx.handling += 1
            try:
                await handle(ctx, stream, event)
            finally:
                ctx.handling -= 1
            await ctx.pending.flush_if_due()

    process.__name__ = process.__qualname__ = name.replace("-", "_")
    ctx.app.agent(topic, name=name)(process)


def build(settings: Settings, writer: RowWriter, store_thread: Executor) -> Context:
    """The app with its topics and tables; every row goes to the store through `writer`,
    run on `store_thread`."""
    app = faust.App(f"{settings.topic_prefix}pipeline", **faust_settings(settings))
    app.transport = Transport(app.conf.broker_consumer, app)  # streams/agents/consumer.py
    app.producer_transport = Transport(app.conf.broker_producer, app)  # and producer.py
    parts = settings.events_partitions

    def topic(name: str, partitions: int) -> faust.TopicT:
        return app.topic(
            settings.topic(name),
            partitions=partitions,
            key_serializer="raw",
            value_serializer="raw",
        )

    ctx = Context(
        app=app,
        settings=settings,
        writer=writer,
        store_thread=store_thread,
        events=topic("events", parts),
        sites=topic("sites", 1),
        dlq=topic("dlq", 1),
        site_changes=topic(SITE_CHANGES, parts),
        status_topic=topic("site_status", parts),
        alerts_topic=topic("alerts", parts),
        persons=app.Table("persons", default=None, partitions=parts),
        site_ids=app.Table("site-event-ids", default=None, partitions=1),
        live=app.Table("site-live", default=None, partitions=parts),
        recall=Recall(writer.client, store_thread, settings),
    )
    ctx.recall.know("people", lambda: list(ctx.persons.keys()))
    ctx.recall.know("site ids", lambda: list(ctx.site_ids.keys()))
    ctx.recall.know("sites", lambda: list(ctx.live.keys()))
    app.hand_over = ctx.hand_over  # type: ignore[attr-defined]  # streams/agents/consumer.py
    return ctx
