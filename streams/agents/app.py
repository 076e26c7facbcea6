"""The Faust app: a factory that wires topics, tables and agents to the pure core.

    events --(ingest_people: validate, dedupe, derive shifts)--> rows --(batched)--> store
                    | shift diffs (-old, +new), keyed by site
                    v
    site-changes --(live_sites: SPEC §6 at now)--> rows, site_status and alerts topics
                    ^                  ^
                    | site versions    | ticks (timers: a shift starts or ends unprompted)
    sites  --(ingest_sites:  validate, dedupe)--> rows --(batched)--> store
    bad records -------------------------------------------------> dlq (+ a dlq row)
    dlq --(ingest_letters: the gateway's records only)------------> dlq rows

Agents only wire: the rules live in schemas/ (validation), streams/core/person.py (dedupe,
SPEC §3), streams/core/live.py (SPEC §6) and sinks/ (the store). The site agent sees every
shift of its sites, whichever partition derived them, because diffs are keyed by site_id; a
timer sends a site a tick when a shift starts or reaches its end with no event.

Records are acked by hand, only after the rows they produced are in the store
(streams/agents/pending.py). Before each store write the batch's shift diffs are sent, one
message per site, and they and the tables' changelogs are flushed; Faust flushes again
before every commit. So offsets never run ahead of the store or the tables: at-least-once
end to end, made exact by idempotent upserts, replay detection, and site diffs that carry
whole shift versions.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import faust
from faust.types import EventT, StreamT

from schemas.dlq import INGEST, DeadLetter
from schemas.errors import InvalidEvent
from schemas.events import AnyEvent, SiteUpserted, parse_record
from sinks.coverage import settle
from sinks.store import StoreError
from sinks.writer import RowWriter, prev_from_store
from streams.agents.consumer import Transport
from streams.agents.pending import PendingRows
from streams.agents.recall import Recall
from streams.agents.recovery import ExactTableManager
from streams.agents.timetable import Timetable
from streams.broker import SITE_CHANGES
from streams.core.live import (
    REPUBLISH,
    TICK,
    Diff,
    SiteLive,
    apply_message,
    diffs_by_site,
    diffs_message,
    site_message,
    site_version,
)
from streams.core.person import PersonState, apply
from streams.core.rows import (
    Row,
    alert_row,
    dlq_row,
    on_post_rows,
    status_row,
    to_micros,
)
from streams.core.sites import apply_site
from streams.core.status import iso_micros
from streams.settings import Settings

RESCAN_SECONDS = 60  # every site's next moment is looked up again this often
SETTLE_SECONDS = 30  # finished hours' coverage is settled this often,
SETTLE_BUDGET = 1.0  # an hour at a time for about this long (a national hour: ~1.5 s)

log = logging.getLogger(__name__)


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
        # Every table write is a changelog message: fewer, larger produce requests cost the
        # event loop less per message (a flush before each store write sends what waits).
        "producer_linger_ms": 20,
        "producer_max_batch_size": 256 * 1024,
        "stream_buffer_maxsize": 16384,
        "TableManager": ExactTableManager,  # streams/agents/recovery.py: no record lost on restart
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
    app.transport = Transport(app.conf.broker_consumer, app)  # streams/agents/consumer.py
    counters = {
        "accepted": 0,
        "duplicate": 0,
        "replayed": 0,
        "dlq": 0,
        "rows": 0,
        "site_messages": 0,
        "alerts": 0,
    }
    pipeline = Pipeline(app, settings, counters)

    # Shift diffs wait here, per site, until the batch of the records that made them is
    # written: one message then carries every diff a site got meanwhile (a busy moment
    # touches most sites many times), and it is sent before those records are acked.
    outbox: dict[str, list[Diff]] = {}

    async def before_write() -> None:
        """Send the batch's diffs, then flush them and the tables' changelogs."""
        held = dict(outbox)  # taken before any await: exactly the diffs of this batch
        outbox.clear()
        for site_id, diffs in held.items():
            await site_changes.send(key=site_id.encode(), value=diffs_message(diffs))
        await app.producer.flush()

    def lag(event: EventT) -> int:
        """Records after this one on its partition, as the consumer last heard."""
        msg = event.message
        try:
            highwater = app.consumer.highwater(msg.tp)
        except Exception:  # e.g. not assigned in a rebalance: a hint, never an agent's fault
            return 0
        return (highwater or 0) - msg.offset - 1

    pending = PendingRows(writer, counters, store_thread, before_write=before_write, lag=lag)

    recall = Recall(writer.client, store_thread, settings)
    recall.know("people", lambda: list(persons.keys()))
    recall.know("site ids", lambda: list(site_ids.keys()))
    recall.know("sites", lambda: list(live.keys()))

    raw = {"key_serializer": "raw", "value_serializer": "raw"}
    events = app.topic(settings.topic("events"), partitions=settings.events_partitions, **raw)
    sites = app.topic(settings.topic("sites"), partitions=1, **raw)
    dlq = app.topic(settings.topic("dlq"), partitions=1, **raw)
    parts = settings.events_partitions
    site_changes = app.topic(settings.topic(SITE_CHANGES), partitions=parts, **raw)
    status_topic = app.topic(settings.topic("site_status"), partitions=parts, **raw)
    alerts_topic = app.topic(settings.topic("alerts"), partitions=parts, **raw)
    persons = app.Table("persons", default=None, partitions=parts)
    site_ids = app.Table("site-event-ids", default=None, partitions=1)
    live = app.Table("site-live", default=None, partitions=parts)
    timetable = Timetable()
    max_shift, zone = settings.max_shift, settings.zone

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
                held = persons.get(key)
                recalled = held is None and await recall.holds("people", key)
                state = await recall.person(key) if recalled else PersonState.from_json(held)
                outcome = apply(state, parsed, msg.partition, msg.offset, max_shift, zone)
                if recalled or outcome.status == "accepted":
                    persons[key] = state.to_json()
                if outcome.status == "too_late":
                    await reject(stream, event, outcome.reason)
                else:
                    counters[outcome.status] += 1
                    # a recalled person's rows replace what the store holds, whatever it is
                    pending.add(
                        stream, event, prev_from_store(outcome.rows) if recalled else outcome.rows
                    )
                    for site_id, diffs in diffs_by_site(key, outcome.changes).items():
                        outbox.setdefault(site_id, []).extend(diffs)
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
                held = site_ids.get(key)
                recalled = held is None and await recall.holds("site ids", key)
                seen: dict[str, str] = await recall.site_ids(key) if recalled else dict(held or {})
                outcome = apply_site(seen, parsed, msg.partition, msg.offset)
                if outcome.status == "accepted" or recalled:
                    site_ids[key] = seen
                counters[outcome.status] += 1
                pending.add(stream, event, outcome.rows)
                if outcome.status != "duplicate":
                    version = site_version(parsed, msg.partition, msg.offset)
                    await site_changes.send(key=key.encode(), value=site_message(*version))
            await pending.flush_if_due()

    @app.agent(dlq, name="ingest-letters")
    async def count_gateway_letters(stream: StreamT[bytes]) -> None:
        """The gateway's DLQ records (it has no store) are stored here, where their place on
        the DLQ topic identifies them; the pipeline's own were stored when it sent them."""
        stream = stream.noack()
        async for event in stream.events():
            msg = event.message
            rows: dict[str, list[Row]] = {}
            if letter := DeadLetter.from_gateway(msg.value):
                key = msg.key.decode("utf-8", "replace") if isinstance(msg.key, bytes) else None
                row = dlq_row(letter.error, INGEST, msg.partition, msg.offset, key, letter.raw)
                rows["dlq"] = [row]
                counters["dlq"] += 1
            pending.add(stream, event, rows)
            await pending.flush_if_due()

    @app.agent(site_changes, name="live-sites")
    async def live_sites(stream: StreamT[bytes]) -> None:
        """SPEC §6 at now: fold diffs, versions and ticks into the site; publish changes."""
        stream = stream.noack()
        async for event in stream.events():
            msg = event.message
            site_id = msg.key.decode()
            held = live.get(site_id)
            now = to_micros(datetime.now(UTC))
            recalled = held is None and await recall.holds("sites", site_id)
            if recalled:  # this worker's table lost it: what the store holds, said again
                state = await recall.site(site_id, now)
            else:
                state = SiteLive.from_json(site_id, held)
            republish = apply_message(state, msg.value, now) or recalled
            step = state.step(now, zone, republish)
            data = state.to_json()
            if data != held:
                live[site_id] = data
            rows: dict[str, list[Row]] = {}
            if step.status is not None:
                at = iso_micros(now, zone)
                body = json.dumps(step.status | {"at": at}, ensure_ascii=False).encode()
                await status_topic.send(key=msg.key, value=body)
                rows["site_status"] = [status_row(step.status, now)]
            if step.on_post_by:
                rows["on_post_minutely"] = on_post_rows(site_id, step.on_post_by, now)
            for alert in step.alerts:
                body = json.dumps(alert, ensure_ascii=False).encode()
                await alerts_topic.send(key=msg.key, value=body)
                rows.setdefault("alerts", []).append(alert_row(alert, now))
            counters["site_messages"] += 1
            counters["alerts"] += len(step.alerts)
            pending.add(stream, event, rows)
            timetable.set(site_id, state.next_due(now))
            await pending.flush_if_due()

    @app.timer(0.25)
    async def tick_due_sites() -> None:
        """A shift starting or reaching its end with no event: the site looks again."""
        for site_id in timetable.pop_due(to_micros(datetime.now(UTC))):
            await site_changes.send(key=site_id.encode(), value=TICK)

    scanned = {"generation": -1, "at": 0.0}

    @app.timer(5.0)
    async def rescan_sites() -> None:
        """After every (re)start or rebalance, each site of this worker republishes (what a
        crash kept from the store is written again) and its next moment is scheduled; the
        moments are looked up again every RESCAN_SECONDS in case a tick was lost."""
        if not app.tables.recovery.completed.is_set():
            return
        generation = app.consumer_generation_id
        fresh = generation != scanned["generation"]
        if not fresh and time.monotonic() - scanned["at"] < RESCAN_SECONDS:
            return
        scanned.update(generation=generation, at=time.monotonic())
        now = to_micros(datetime.now(UTC))
        for site_id, data in list(live.items()):
            if fresh:
                await site_changes.send(key=site_id.encode(), value=REPUBLISH)
            else:
                timetable.set(site_id, SiteLive.from_json(site_id, data).next_due(now))
        if fresh:  # sites the store holds and the table lost: read back, then scheduled
            for site_id in sorted(await recall.forgotten("sites")):
                await site_changes.send(key=site_id.encode(), value=REPUBLISH)

    @app.timer(SETTLE_SECONDS)
    async def settle_coverage() -> None:
        """Finished hours whose settled coverage is missing or stale (a late record) are
        settled (sinks/coverage.py): metrics then read them instead of every shift on post.
        On the store's thread, between writes, an hour at a time for about a second."""
        before = datetime.now(UTC) - timedelta(minutes=1)
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(
                store_thread,
                lambda: settle(writer.client, before=before, budget=SETTLE_BUDGET, chunk=1),
            )
        except StoreError as exc:  # readers count from the shifts meanwhile: nothing is lost
            log.warning("%s; trying again in %d s", exc, SETTLE_SECONDS)

    @app.timer(pending.max_age / 2)
    async def flush_when_quiet() -> None:
        await pending.flush_if_due()

    @app.on_before_shutdown.connect
    async def flush_on_stop(app: faust.App, **kwargs: Any) -> None:
        """Fetching has stopped; store what is held and ack it before the last commit."""
        await pending.flush()

    return pipeline
