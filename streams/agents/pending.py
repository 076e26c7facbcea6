"""Rows waiting for the store, and the input records they came from.

The ingest agents read with manual acks: a record's offset may be committed only once the
rows it produced are in the store. Rows are written in batches (up to `max_records` records
or `max_age` seconds), then every record of the batch is acked. A worker that dies before
that re-reads the records; the person table already holds them, so they come back as
"replayed" and their rows are written again, which the store's upsert keys make harmless.

Before each write the tables' changelogs are flushed (`before_write`): the store then never
holds a change the person table could forget in a crash, so a record read again is either
new to both or a replay whose previous version the store holds (sinks/writer.py).

One batch is written at a time, on the store thread, while the agents go on reading into
the next (chdb leaves the interpreter free meanwhile); they wait only when twice a batch is
held. While a worker is catching up (a partition it reads has more than `CATCH_UP_LAG`
records still to read) batches are larger (`CATCH_UP_RECORDS`, `CATCH_UP_AGE`): the costs
paid per batch, one insert per table and one message per site touched, are then shared by
more records. A worker keeping up writes every `max_age`, so alerts stay prompt.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from typing import Any

from faust.types import EventT, StreamT

from sinks.writer import RetryLater, RowWriter
from streams.core.rows import Row

log = logging.getLogger(__name__)

STORE_RETRY_SECONDS = 5
CATCH_UP_LAG = 2000  # records still to read on the partition: the worker is behind
CATCH_UP_RECORDS = 20_000
CATCH_UP_AGE = 5.0
LAG_FRESH_SECONDS = 10.0  # a partition not read for this long (revoked, say) no longer counts


class PendingRows:
    def __init__(
        self,
        writer: RowWriter,
        counters: dict[str, int],
        executor: Executor,
        max_records: int = 2000,
        max_age: float = 0.5,
        before_write: Callable[[], Awaitable[None]] | None = None,
        lag: Callable[[EventT[Any]], int] | None = None,
    ) -> None:
        self.writer = writer
        self.before_write = before_write
        self.counters = counters
        self.max_records = max_records
        self.max_age = max_age
        self.tables: dict[str, list[Row]] = defaultdict(list)
        self.records: list[tuple[StreamT[bytes], EventT[Any]]] = []
        self.oldest = 0.0
        self.lock = asyncio.Lock()
        self.executor = executor
        self.lag = lag
        # per partition read: records after the last one taken, and when that was
        self.behind: dict[object, tuple[int, float]] = {}
        self.writing: asyncio.Future[None] | None = None  # the batch being written

    def add(self, stream: StreamT[bytes], event: EventT[Any], rows: dict[str, list[Row]]) -> None:
        """Hold `rows` (possibly none) until the next flush; `event` is acked after it."""
        if not self.records:
            self.oldest = time.monotonic()
        self.records.append((stream, event))
        if self.lag is not None:
            self.behind[event.message.tp] = (self.lag(event), time.monotonic())
        for table, table_rows in rows.items():
            self.tables[table].extend(table_rows)

    def catching_up(self) -> bool:
        """A partition read lately had more than CATCH_UP_LAG records still to read."""
        fresh = time.monotonic() - LAG_FRESH_SECONDS
        return any(lag > CATCH_UP_LAG and at > fresh for lag, at in self.behind.values())

    def due(self) -> bool:
        if not self.records:
            return False
        most, age = self._limits()
        return len(self.records) >= most or time.monotonic() - self.oldest >= age

    def _limits(self) -> tuple[int, float]:
        if self.catching_up():
            return CATCH_UP_RECORDS, CATCH_UP_AGE
        return self.max_records, self.max_age

    async def flush_if_due(self) -> None:
        """Start writing the held batch if it is due. While the previous batch is still being
        written the agents read on, unless twice a batch is already held. A finished write
        is awaited here (its error raises), but the next batch still waits until it is due:
        starting it at once would cut a catching-up worker's batches to what one write
        takes, and every batch costs the event loop a message per site touched."""
        if self.due() or (self.writing is not None and self.writing.done()):
            await self._start(wait=False)

    async def flush(self) -> None:
        """Store every held row, retrying for as long as the store refuses, then ack."""
        await self._start(wait=True)

    async def _start(self, wait: bool) -> None:
        async with self.lock:
            if self.writing is not None:
                if not (wait or self.writing.done() or len(self.records) >= 2 * self._limits()[0]):
                    return
                task, self.writing = self.writing, None
                await task  # a write that failed raises here, in the agent
            if not self.records or not (wait or self.due()):
                return
            tables, records = dict(self.tables), self.records
            self.tables, self.records = defaultdict(list), []
            if self.before_write is not None:
                await self.before_write()
            self.writing = asyncio.ensure_future(self._write(tables, records))
            if wait:
                task, self.writing = self.writing, None
                await task

    async def _write(
        self, tables: dict[str, list[Row]], records: list[tuple[StreamT[bytes], EventT[Any]]]
    ) -> None:
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
