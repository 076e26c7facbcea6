"""`muster replay`: shifts, rollups, site status and alerts rebuilt from the accepted events
the store holds, into a fresh database, then swapped in.

What a worker derived from a record is a pure function of the person's or the site's
records (streams/core/person.py, streams/core/live.py), so a replay runs those functions
over the stored inputs without the broker:

1. a fresh database `<MUSTER_DATABASE>_replay`, created from the current schema;
2. the inputs copied as they are: site versions (`site_versions`) and rejected records
   (`dlq`), which nothing derives, and the alerts raised so far (`alerts`), a history;
3. every person's accepted events (`events`), in the order the worker read them (a
   person's events share a partition: by offset), folded by the person core; of each
   shift, check-out and registration only the last version is written, as new, so the
   rollups count each once;
4. every site's state rebuilt from its versions, the shifts as they now stand and its
   stored alerts, as a worker that forgot its tables rebuilds it (`recall_site`), and
   stepped to now: its status, and its alerts going on from the stored ones (a resolved
   alert is never rewritten; the open one follows the rebuilt shifts);
5. coverage settled for every finished hour;
6. the rebuilt tables exchanged with the live ones (`EXCHANGE TABLES`, atomic per table):
   the live database's views and materialized views now read the rebuilt data, and
   `<MUSTER_DATABASE>_replay` keeps the tables replaced, until the next replay drops it.

From the topics (`source="topic"`, `muster replay --from topic`), steps 2 and 3 read
every record on the input topics from their beginning instead: each validated as the
worker validates it (against the time it was written to the topic), repeats dropped,
invalid and too-late records made DLQ rows again, the gateway's and `muster import`'s
letters on the DLQ topic kept; only the alerts come from the store.

Workers must be stopped while it runs: what they wrote meanwhile would be in the tables
replaced. On the embedded store the lock sees to that. It rebuilds a single-node store;
on a ClickHouse cluster (Distributed tables) it refuses.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import groupby
from operator import itemgetter
from pathlib import Path
from typing import Any

from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError

from schemas.dlq import raw_text
from schemas.errors import InvalidEvent, MusterError
from schemas.events import CheckIn, CheckOut, Registered, SiteUpserted, parse_record
from sinks.coverage import settle
from sinks.reader import WORKER_FILE, read_worker_file
from sinks.store import (
    StoreError,
    connect,
    first_line,
    lock_embedded,
    migrate,
    quote_ident,
    redact,
    schema_objects,
    table_engine,
)
from sinks.writer import NOTHING, VERSIONED, RowWriter
from streams.core.live import recall_since, recall_site
from streams.core.person import PersonState, apply
from streams.core.rows import (
    Row,
    alert_row,
    dlq_row,
    event_row,
    from_micros,
    letter_row,
    on_post_rows,
    status_row,
    to_micros,
)
from streams.core.sites import apply_site
from streams.settings import Settings

PAGE = 100_000  # events read at a time
BATCH_ROWS = 200_000  # rows written at a time
SUFFIX = "_replay"
IDLE_POLLS = 3  # empty polls in a row that end the reading of a topic

# a person's events in the order the worker reads them; from the store's accepted events,
# or from the records read off the topics (with what a rejection to the DLQ needs)
EVENTS_SQL = (
    "SELECT person_id, event_id, type, toUnixTimestamp64Micro(ts), site_id, role, org, "
    "team_id, partition, offset, {extra} FROM {source} WHERE {where} "
    "ORDER BY person_id, partition, offset"
)
FROM_STORE = {"source": "events FINAL", "extra": "'', '', ''"}
FROM_TOPIC = {"source": "replay_events", "extra": "topic, key, raw"}
STAGING = """CREATE TABLE replay_events
(
    person_id String, event_id String, type String, ts DateTime64(6, 'UTC'), site_id String,
    role String, org String, team_id String, partition UInt32, offset UInt64,
    topic String, key String, raw String
)
ENGINE = MergeTree ORDER BY (person_id, partition, offset)"""
SOURCES = ("store", "topic")


class ReplayError(MusterError):
    """The replay could not be done; the live tables are as they were."""


@dataclass
class Report:
    events: int = 0
    people: int = 0
    rows: int = 0
    sites: int = 0
    alerts: int = 0
    hours_settled: int = 0
    records: int = 0  # read off the topics
    staged: int = 0  # their person events, held for `_people` (not in the rebuilt store)
    duplicates: int = 0
    rejected: int = 0  # to the DLQ: invalid records, and events too late for their person
    not_accepted: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    swapped: bool = False


def replay(
    settings: Settings,
    swap: bool = True,
    say: Callable[[str], None] = print,
    source: str = "store",
) -> Report:
    """Rebuild the store's derived tables from its accepted events (module docstring), or
    from the records on the topics (`source="topic"`)."""
    if source not in SOURCES:
        raise ReplayError(f"replay from {source!r}? from one of {', '.join(SOURCES)}")
    started = time.monotonic()
    if running := _running_workers(settings.data_dir):
        raise ReplayError(
            f"workers are running on {settings.data_dir} (pid {', '.join(map(str, running))}): "
            "stop them first (Ctrl-C on muster up); what they wrote during the replay would "
            "be lost with the tables it replaces"
        )
    if settings.store_is_embedded:
        lock_embedded(settings.data_dir)
    url, live = settings.store_url, settings.database
    fresh = f"{live}{SUFFIX}"
    old = connect(url, live, create=source == "topic")
    if source == "store" and not table_engine(old, live, "events"):
        raise ReplayError(f"database {live} at {redact(url)} holds no events to replay")
    if table_engine(old, live, "shifts") == "Distributed":
        raise ReplayError(
            f"database {live} at {redact(url)} is on a ClickHouse cluster (its tables are "
            "Distributed): muster replay rebuilds a single-node store only"
        )
    applied = migrate(old)
    if applied and table_engine(old, live, "events"):
        say(f"replay: {live} brought up to date first ({', '.join(applied)})")
    old.command(f"DROP DATABASE IF EXISTS {quote_ident(fresh)} SYNC")
    new = connect(url, fresh)
    migrate(new)
    say(f"replay: rebuilding {live} in {fresh} at {redact(url)}, from the {source}")
    report = Report()
    writer = RowWriter(new)
    if source == "store":
        _copy_inputs(new, live, ("site_versions", "dlq", "alerts"), say)
        _people(old, FROM_STORE, writer, settings, report, say)
    else:
        _copy_inputs(new, live, ("alerts",), say)
        new.command(STAGING)
        _read_topics(settings, new, writer, report, say)
        _people(new, FROM_TOPIC, writer, settings, report, say)
        new.command("DROP TABLE replay_events SYNC")
    now = to_micros(datetime.now(UTC))
    _sites(old, new, writer, settings, now, report, say)
    report.hours_settled = settle(new, before=from_micros(now), say=say)
    report.rows = writer.rows_written - report.staged
    if swap:
        _swap(old, live, fresh)
        report.swapped = True
        say(f"replay: {live} now holds the rebuilt tables; the replaced ones are in {fresh}")
    report.seconds = time.monotonic() - started
    return report


def _running_workers(data_dir: Path) -> list[int]:
    """The live processes of the workers started on `data_dir` (`muster worker`, or
    `muster up`'s under workers/N), by the worker file each writes."""
    running = []
    for path in [data_dir / WORKER_FILE, *sorted(data_dir.glob(f"workers/*/{WORKER_FILE}"))]:
        info = read_worker_file(path.parent)
        try:
            pid = int((info or {})["pid"])
            os.kill(pid, 0)
            command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (KeyError, TypeError, ValueError, OSError):
            continue
        if b"worker" in command:  # not another process that took a dead worker's pid
            running.append(pid)
    return running


def _copy_inputs(new: Client, live: str, tables: Sequence[str], say: Callable[[str], None]) -> None:
    """From the live tables, as they are: site versions and rejected records, which
    nothing derives, and the alerts, whose history is never rewritten (contract §6)."""
    for table in tables:
        new.command(f"INSERT INTO {table} SELECT * FROM {quote_ident(live)}.{table} FINAL")
        count = new.query(f"SELECT count() FROM {table}").result_rows[0][0]
        say(f"replay: {count:,} rows of {table} copied")


def _read_topics(
    settings: Settings, new: Client, writer: RowWriter, report: Report, say: Callable[[str], None]
) -> None:
    """The input topics from their beginning to their end, each record
    validated as the worker validates it (against the clock when it was written): person
    events staged for `_people`, the first version of each site event and rejected
    records written; the DLQ's letters of the gateway and `muster import` kept."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=None,
        enable_auto_commit=False,
        client_id="muster-replay",
        **settings.kafka_options(),
    )
    seen: dict[str, dict[str, str]] = {}  # site_id -> event_id -> first position
    started = shown = time.monotonic()
    try:
        for kind in ("sites", "events", "dlq"):
            topic = settings.topic(kind)
            numbers = consumer.partitions_for_topic(topic)
            if not numbers:
                raise ReplayError(f"no topic {topic} at {settings.kafka_bootstrap}")
            parts = [TopicPartition(topic, n) for n in sorted(numbers)]
            consumer.assign(parts)
            consumer.seek_to_beginning(*parts)
            ends = consumer.end_offsets(parts)
            rows: dict[str, list[Row]] = {}
            idle = 0
            # to the end: past the end offsets the broker gave (Tansu's can lag the records
            # it serves), until it has nothing more to give
            while idle < IDLE_POLLS or any(consumer.position(tp) < ends[tp] for tp in parts):
                polled = consumer.poll(timeout_ms=500, max_records=20_000)
                idle = 0 if polled else idle + 1
                for messages in polled.values():
                    for message in messages:
                        _stage(kind, message, rows, seen, report)
                if sum(map(len, rows.values())) >= BATCH_ROWS:
                    writer.write(rows)
                    rows = {}
                if time.monotonic() - shown >= 1:
                    shown = time.monotonic()
                    rate = report.records / (shown - started)
                    say(f"replay: {report.records:,} records read off {topic} ({rate:,.0f}/s)")
            writer.write(rows)
    finally:
        consumer.close()
    say(f"replay: {report.records:,} records read off the topics, {report.rejected:,} rejected")


def _stage(
    kind: str, message: Any, rows: dict[str, list[Row]], seen: dict[str, dict[str, str]],
    report: Report,
) -> None:  # fmt: skip
    """One record of the `kind` topic, as the worker's agent for it takes it."""
    report.records += 1
    key = None if message.key is None else message.key.decode("utf-8", "replace")
    if kind == "dlq":  # the worker's own letters are made again, from their records
        if row := letter_row(message.value, message.partition, message.offset, key):
            rows.setdefault("dlq", []).append(row)
        return
    written = message.timestamp / 1000 if message.timestamp and message.timestamp > 0 else None
    clock = datetime.now(UTC) if written is None else datetime.fromtimestamp(written, UTC)
    try:
        event = parse_record(message.value, kind, clock)
    except InvalidEvent as exc:
        report.rejected += 1
        rows.setdefault("dlq", []).append(
            dlq_row(str(exc), message.topic, message.partition, message.offset, key,
                    raw_text(message.value))
        )  # fmt: skip
        return
    if isinstance(event, SiteUpserted):
        outcome = apply_site(seen.setdefault(event.site_id, {}), event, message.partition,
                             message.offset)  # fmt: skip
        if outcome.status == "duplicate":
            report.duplicates += 1
            return
        rows.setdefault("site_versions", []).extend(outcome.rows["site_versions"])
        return
    where = {"topic": message.topic, "key": key or "", "raw": raw_text(message.value) or ""}
    row = event_row(event, message.partition, message.offset) | where
    rows.setdefault("replay_events", []).append(row)
    report.staged += 1


def _people(
    old: Client,
    source: dict[str, str],
    writer: RowWriter,
    settings: Settings,
    report: Report,
    say: Callable[[str], None],
) -> None:
    """Every person's events folded by the person core; the last version of each row."""
    total = int(old.query(f"SELECT count() FROM {source['source']}").result_rows[0][0])
    pending: dict[str, dict[Any, Row]] = {}  # versioned rows: the last of each key
    plain: dict[str, list[Row]] = {}  # the events themselves, once each
    started = time.monotonic()
    for person_id, rows in _by_person(old, source):
        report.people += 1
        state = PersonState()
        for row in rows:
            outcome = apply(state, _event(row), row[8], row[9], settings.max_shift, settings.zone)
            report.events += 1
            if outcome.status == "duplicate":
                report.duplicates += 1
                continue
            if outcome.status == "too_late" and row[10]:  # read off the topic: to the DLQ
                report.rejected += 1
                key = row[11] or None
                letter = dlq_row(outcome.reason, row[10], row[8], row[9], key, row[12])
                plain.setdefault("dlq", []).append(letter)
                continue
            if outcome.status != "accepted":  # from the store, which holds accepted ones
                report.not_accepted[outcome.status] = report.not_accepted.get(outcome.status, 0) + 1
                continue
            for table, written in outcome.rows.items():
                if table not in VERSIONED:
                    plain.setdefault(table, []).extend(written)
                    continue
                key = VERSIONED[table][0]
                last = pending.setdefault(table, {})
                for one in written:
                    last[(person_id, one[key])] = one
        if sum(map(len, plain.values())) + sum(map(len, pending.values())) >= BATCH_ROWS:
            _write_people(writer, plain, pending)
            rate = report.events / max(time.monotonic() - started, 1e-9)
            say(
                f"replay: {report.events:,}/{total:,} events of {report.people:,} people "
                f"({rate:,.0f}/s)"
            )
    _write_people(writer, plain, pending)
    say(f"replay: {report.events:,} events of {report.people:,} people folded")


def _write_people(
    writer: RowWriter, plain: dict[str, list[Row]], pending: dict[str, dict[Any, Row]]
) -> None:
    """The batch: each versioned row as the first version of its key (nothing replaced)."""
    batch = {table: list(rows) for table, rows in plain.items()}
    for table, last in pending.items():
        previous = VERSIONED[table][2]
        blank = dict(zip(previous, NOTHING[table], strict=True))
        batch[table] = [row | blank for row in last.values()]
    writer.write(batch)
    plain.clear()
    pending.clear()


def _by_person(
    old: Client, source: dict[str, str]
) -> Iterator[tuple[str, Sequence[Sequence[Any]]]]:
    """(person_id, their stored events in partition and offset order), person by person,
    read a page at a time."""
    after = ""
    while True:
        rows = _query(
            old,
            EVENTS_SQL.format(where="person_id > {after:String}", **source) + " LIMIT {n:UInt32}",
            {"after": after, "n": PAGE},
        )
        if not rows:
            return
        if len(rows) == PAGE:  # the page may end inside a person: theirs come whole next
            cut = rows[-1][0]
            if rows[0][0] == cut:  # one person beyond a page
                one = EVENTS_SQL.format(where="person_id = {p:String}", **source)
                rows = _query(old, one, {"p": cut})
            else:
                rows = [r for r in rows if r[0] != cut]
        for person_id, group in groupby(rows, key=itemgetter(0)):
            yield person_id, list(group)
        after = rows[-1][0]


def _event(row: Sequence[Any]) -> Registered | CheckIn | CheckOut:
    """A stored event as the pipeline parsed it (validated when it was accepted)."""
    person_id, event_id, kind, ts, site_id, role, org, team_id = row[:8]
    common = {"event_id": event_id, "ts": from_micros(ts), "person_id": person_id}
    if kind == "registered":
        return Registered.model_construct(type=kind, org=org, team_id=team_id or None, **common)
    if kind == "check_in":
        return CheckIn.model_construct(
            type=kind, site_id=site_id, role=role, org=org, team_id=team_id or None, **common
        )
    return CheckOut.model_construct(type="check_out", site_id=site_id or None, **common)


def _sites(
    old: Client,
    new: Client,
    writer: RowWriter,
    settings: Settings,
    now: int,
    report: Report,
    say: Callable[[str], None],
) -> None:
    """Each site's live state from its versions, the shifts as they now stand and the
    alerts it had, stepped to now, as a worker that forgot its tables rebuilds it: its
    status, people on post, and its alerts going on from the stored ones (the open one
    stays open, a new one takes the next number)."""
    max_shift = int(settings.max_shift.total_seconds() * 1e6)
    since = recall_since(now, max_shift)
    versions = _grouped(
        new,
        "SELECT site_id, toUnixTimestamp64Micro(ts), partition, offset, name, city, district, "
        "street, community, kind, requirements, active, lat, lon FROM site_versions FINAL "
        "ORDER BY site_id, ts, partition, offset",
        {},
    )
    shifts = _grouped(
        new,
        "SELECT site_id, shift_id, person_id, role, org, toUnixTimestamp64Micro(started_at), "
        "toUnixTimestamp64Micro(ended_at), reason FROM shifts FINAL "
        "WHERE started_at >= fromUnixTimestamp64Micro({since:Int64}) ORDER BY site_id",
        {"since": since},
    )
    # the latest activity of each site (contract §6): a start, or an end by check-out or
    # transfer; older shifts than `since` are known to the site by it alone
    last: dict[str, int] = {
        row[0]: row[1]
        for row in _query(
            new,
            "SELECT site_id, toUnixTimestamp64Micro(max(if(reason IN ('check_out', 'transfer') "
            "AND ended_at <= fromUnixTimestamp64Micro({now:Int64}), ended_at, started_at))) "
            "FROM shifts FINAL GROUP BY site_id",
            {"now": now},
        )
    }
    alerts = _grouped(
        new,
        "SELECT site_id, alert_id, toUnixTimestamp64Micro(opened_at), short, people, "
        "toUnixTimestamp64Micro(resolved_at) FROM alerts FINAL "
        "WHERE startsWith(alert_id, concat('understaffed:', site_id, ':'))",
        {},
    )
    # when each site's status was last worked out: its alerts follow coverage from there
    stepped: dict[str, int] = {
        row[0]: row[1]
        for row in _query(
            old, "SELECT site_id, toUnixTimestamp64Micro(at) FROM site_status FINAL", {}
        )
    }
    rows: dict[str, list[Row]] = {"site_status": [], "on_post_minutely": [], "alerts": []}
    for site_id, site_versions in versions.items():
        activity = last.get(site_id)
        status = (stepped.get(site_id, 0), None if activity is None else int(activity))
        state = recall_site(
            site_id,
            site_versions,
            shifts.get(site_id, []),
            alerts.get(site_id, []),
            status,
            now,
            settings.zone,
        )
        step = state.step(now, settings.zone)
        report.sites += 1
        if step.status is not None:
            rows["site_status"].append(status_row(step.status, now))
        if step.on_post_by:
            rows["on_post_minutely"].extend(on_post_rows(site_id, step.on_post_by, now))
        rows["alerts"].extend(alert_row(alert, now) for alert in step.alerts)
    report.alerts = len(rows["alerts"])
    writer.write(rows)
    say(
        f"replay: {report.sites:,} sites stepped to now, {report.alerts:,} alerts opened or changed"
    )


def _grouped(
    client: Client, sql: str, parameters: dict[str, Any]
) -> dict[str, list[tuple[Any, ...]]]:
    """Rows by their first column, the rest of each row kept."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    for row in _query(client, sql, parameters):
        out.setdefault(row[0], []).append(tuple(row[1:]))
    return out


def _query(client: Client, sql: str, parameters: dict[str, Any]) -> Sequence[Sequence[Any]]:
    try:
        return client.query(sql, parameters=parameters).result_rows
    except ClickHouseError as exc:
        raise StoreError(f"replay: reading the store failed: {first_line(exc)}") from exc


def _swap(client: Client, live: str, fresh: str) -> None:
    """Every table of the schema exchanged between the live and the rebuilt database."""
    for item in schema_objects():
        if item.kind != "tables":
            continue
        a, b = quote_ident(live), quote_ident(fresh)
        name = quote_ident(item.name)
        try:
            client.command(f"EXCHANGE TABLES {a}.{name} AND {b}.{name}")
        except ClickHouseError as exc:
            raise ReplayError(
                f"exchanging {item.name} failed: {first_line(exc)}; the tables before it "
                f"hold the rebuilt data, the rest the old: run muster replay again"
            ) from exc
