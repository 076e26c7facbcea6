"""Rows waiting for the store, and the input records they came from.

The ingest agents read with manual acks: a record's offset may be committed only once the
rows it produced are in the store. Rows are written in batches (up to `max_records` records
or `max_age` seconds), then every record of the batch is acked. A worker that dies before
that re-reads the records; the person table already holds them, so they come back as
"replayed" and their rows are written again, which the store's upsert keys make harmless.

Before each write the tables' changelogs are flushed (`before_write`): the store then never
holds a change the person table could forget in a crash, so a record read again is either
new to both or a replay whose previous version the store holds (sinks/writer.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor

from faust.types import EventT, StreamT

from sinks.writer import RetryLater, RowWriter
from streams.core.rows import Row

log = logging.getLogger(__name__)

STORE_RETRY_SECONDS = 5


class PendingRows:
    def __init__(
        self,
        writer: RowWriter,
        counters: dict[str, int],
        executor: Executor,
        max_records: int = 2000,
        max_age: float = 0.5,
        before_write: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.writer = writer
        self.before_write = before_write
        self.counters = counters
        self.max_records = max_records
        self.max_age = max_age
        self.tables: dict[str, list[Row]] = defaultdict(list)
        self.records: list[tuple[StreamT[bytes], EventT]] = []
        self.oldest = 0.0
        self.lock = asyncio.Lock()
        self.executor = executor

    def add(self, stream: StreamT[bytes], event: EventT, rows: dict[str, list[Row]]) -> None:
        """Hold `rows` (possibly none) until the next flush; `event` is acked after it."""
        if not self.records:
            self.oldest = time.monotonic()
        self.records.append((stream, event))
        for table, table_rows in rows.items():
            self.tables[table].extend(table_rows)

    def due(self) -> bool:
        return len(self.records) >= self.max_records or (
            bool(self.records) and time.monotonic() - self.oldest >= self.max_age
        )

    async def flush_if_due(self) -> None:
        if self.due():
            await self.flush()

    async def flush(self) -> None:
        """Store every held row, retrying for as long as the store refuses, then ack."""
        async with self.lock:
            if not self.records:
                return
            tables, records = dict(self.tables), self.records
            self.tables, self.records = defaultdict(list), []
            if self.before_write is not None:
                await self.before_write()
            loop = asyncio.get_running_loop()
            while True:  # never ack rows the store has not taken
                try:
                    written = await loop.run_in_executor(self.executor, self.writer.write, tables)
                    break
                except RetryLater as exc:
                    log.error("%s; the pipeline waits for the store", exc)
                    await asyncio.sleep(STORE_RETRY_SECONDS)
            for stream, event in records:
                await stream.ack(event)
            self.counters["rows"] += written
