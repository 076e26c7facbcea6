"""`muster import FILE.jsonl`: history exported from another volunteer system, one event
per line, through the validation every event meets (schemas/events.py, as the gateway
reads a request): each valid line goes to its topic with its key, each invalid one to the
DLQ with its reason and its line, so the workers derive and store it as they do live
events and nothing of the file is lost. Progress once a second; the file may be large.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from schemas.dlq import IMPORT, DeadLetter
from schemas.errors import MusterError
from streams.core.ingest import NotEvents, Record, read_body
from streams.sdk.transport import Unreachable, reliable_producer, send_all
from streams.settings import Settings

BATCH = 5_000  # lines sent, then waited for (acks=all), at a time
SHOWN = 5  # rejected lines named on the way


class ImportFailed(MusterError):
    """The file could not be read or Kafka did not take its records."""


@dataclass
class ImportReport:
    lines: int = 0
    sent: dict[str, int] = field(default_factory=dict)  # topic kind -> records
    rejected: int = 0
    seconds: float = 0.0


def run_import(settings: Settings, path: Path, say: Callable[[str], None] = print) -> ImportReport:
    """Send every line of `path` ('-': stdin) to its topic, or to the DLQ with its reason."""
    report = ImportReport()
    started = shown = time.monotonic()
    name = "stdin" if str(path) == "-" else path.name
    with _opened(path) as lines:
        try:
            producer = reliable_producer(
                settings.kafka_bootstrap, "muster-import", timeout=10, **settings.kafka_options()
            )
        except Unreachable as exc:
            raise ImportFailed(str(exc)) from exc
        try:
            for batch in _batches(lines):
                out = []
                for number, line in batch:
                    record = _record(line)
                    report.lines += 1
                    if record.error is None:
                        kind = record.topic_kind
                        out.append((settings.topic(kind), record.key, record.raw))
                        report.sent[kind] = report.sent.get(kind, 0) + 1
                        continue
                    report.rejected += 1
                    error = f"{name} line {number}: {record.error}"
                    if report.rejected <= SHOWN:
                        say(f"import: {error}")
                    letter = DeadLetter.of(error, IMPORT, None, None, record.raw)
                    dead = letter.model_dump_json().encode()
                    out.append((settings.topic("dlq"), record.key, dead))
                _send(producer, out, settings)
                if time.monotonic() - shown >= 1:
                    shown = time.monotonic()
                    rate = report.lines / (shown - started)
                    say(f"import: {report.lines:,} lines sent ({rate:,.0f}/s)")
        finally:
            producer.close(timeout=10)
    report.seconds = time.monotonic() - started
    return report


class _opened:
    """The file's lines as bytes, or stdin's; a missing file is an error naming it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.handle: BinaryIO | None = None

    def __enter__(self) -> BinaryIO:
        if str(self.path) == "-":
            return sys.stdin.buffer
        try:
            self.handle = self.path.open("rb")
        except OSError as exc:
            raise ImportFailed(f"cannot read {self.path}: {exc.strerror}") from exc
        return self.handle

    def __exit__(self, *exc: object) -> None:
        if self.handle is not None:
            self.handle.close()


def _batches(lines: BinaryIO) -> Iterator[list[tuple[int, bytes]]]:
    """(line number, line) of the non-blank lines, `BATCH` at a time."""
    batch: list[tuple[int, bytes]] = []
    for number, line in enumerate(lines, 1):
        if line.strip():
            batch.append((number, line.strip()))
            if len(batch) == BATCH:
                yield batch
                batch = []
    if batch:
        yield batch


def _record(line: bytes) -> Record:
    """One line as the gateway reads a one-event request: the event, or why it is none."""
    try:
        (record,) = read_body(line, datetime.now(UTC))
    except NotEvents as exc:  # not JSON at all
        return Record(0, line, None, str(exc), None)
    return record


def _send(
    producer: Any, records: list[tuple[str, bytes | None, bytes]], settings: Settings
) -> None:
    """Produce and wait until Kafka has every record (acks=all)."""
    from kafka.errors import KafkaError

    try:
        send_all(producer, records, timeout=60)
    except KafkaError as exc:
        raise ImportFailed(
            f"Kafka at {settings.kafka_bootstrap} did not take the records ({exc}); "
            "the lines before this batch were sent: import the file again (its valid lines "
            "sent before are ignored as repeats; its invalid ones go to the DLQ again)"
        ) from exc
