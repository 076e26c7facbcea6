"""Batches for the store: larger while a worker catches up; written while agents read on."""

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from sinks.writer import RowWriter
from streams.agents import pending as module
from streams.agents.pending import PendingRows
from tests.scenarios import edge_scenario, run_core

NOW = datetime(2022, 3, 20, tzinfo=UTC)


class Stream:
    """Faust's stream as PendingRows uses it: acks, here in order."""

    def __init__(self) -> None:
        self.acked: list[int] = []

    async def ack(self, event: Any) -> bool:
        self.acked.append(event.message.offset)
        return True


def record(offset: int, partition: int = 0) -> Any:
    return SimpleNamespace(message=SimpleNamespace(tp=("events", partition), offset=offset))


def test_batches_are_larger_while_a_partition_is_far_behind():
    behind = {0: module.CATCH_UP_LAG + 1, 1: 0}
    held = PendingRows(
        None, {}, None, max_records=10, max_age=60, lag=lambda e: behind[e.message.tp[1]]
    )  # type: ignore[arg-type]
    stream = Stream()
    for offset in range(10):
        held.add(stream, record(offset, partition=0), {})  # type: ignore[arg-type]
    assert not held.due()  # 10 records: a batch for a worker keeping up, not one catching up
    for offset in range(10, module.CATCH_UP_RECORDS):
        held.add(stream, record(offset, partition=1), {})  # type: ignore[arg-type]
    assert held.due()  # partition 0 is still behind: the larger batch is full

    keeping_up = PendingRows(None, {}, None, max_records=10, max_age=60, lag=lambda e: 0)  # type: ignore[arg-type]
    for offset in range(10):
        keeping_up.add(stream, record(offset), {})  # type: ignore[arg-type]
    assert keeping_up.due()

    # A partition not read for a while (revoked, say) no longer holds the worker back.
    held.behind[("events", 0)] = (10**6, time.monotonic() - module.LAG_FRESH_SECONDS - 1)
    held.behind[("events", 1)] = (0, time.monotonic())
    held.records = held.records[:10]
    assert held.due()


def test_agents_read_on_while_a_batch_is_written_and_wait_at_twice_a_batch(store, tmp_path):
    rows = run_core(edge_scenario(), NOW).rows
    store_thread = ThreadPoolExecutor(max_workers=1)
    busy = threading.Event()
    store_thread.submit(busy.wait, 30)  # the store thread is busy (a long query, say)
    written: list[int] = []
    log: list[tuple[str, Any]] = []
    outbox: list[int] = []  # what the agents send the site agent, per record

    class Writer(RowWriter):
        def write(self, tables: Any) -> int:
            written.append(sum(map(len, tables.values())))
            log.append(("write", written[-1]))
            return super().write(tables)

    def before_write() -> Any:
        taken = list(outbox)  # the batch's own, taken as it is cut
        outbox.clear()

        async def send() -> None:
            log.append(("send", taken))

        return send()

    counters = {"rows": 0}
    held = PendingRows(
        Writer(store, journal=tmp_path / "j.json"),
        counters,
        store_thread,
        max_records=2,
        before_write=before_write,
        lag=lambda e: 0,
    )
    stream = Stream()

    def add(offset: int, rows: Any) -> None:
        held.add(stream, record(offset), rows)  # type: ignore[arg-type]
        outbox.append(offset)

    async def run() -> None:
        add(0, rows)
        add(1, {})
        await asyncio.wait_for(held.flush_if_due(), 1)  # the write starts; the agent goes on
        for offset in (2, 3, 4):
            add(offset, {"events": []})
            await asyncio.wait_for(held.flush_if_due(), 1)  # 3 held: still reading
        add(5, {})
        waiting = asyncio.ensure_future(held.flush_if_due())  # 4 held: twice a batch
        await asyncio.sleep(0.2)
        assert not waiting.done() and stream.acked == [] and written == []
        busy.set()
        await asyncio.wait_for(waiting, 60)
        await asyncio.wait_for(held.flush(), 60)

    asyncio.run(run())
    store_thread.shutdown()
    assert stream.acked == [0, 1, 2, 3, 4, 5]  # every record, in order, after its rows
    assert written == [sum(map(len, rows.values())), 0]
    # each batch's messages go out before its write, and only its own
    assert log == [("send", [0, 1]), ("write", written[0]), ("send", [2, 3, 4, 5]), ("write", 0)]
    assert counters["rows"] == written[0]
    stored = store.query("SELECT count() FROM shifts FINAL").result_rows[0][0]
    assert stored == len({row["shift_id"] for row in rows["shifts"]})


def test_a_write_that_failed_raises_in_the_next_agent_that_looks_and_acks_nothing(store):
    class Broken(RowWriter):
        def write(self, tables: Any) -> int:
            raise RuntimeError("disk full")

    store_thread = ThreadPoolExecutor(max_workers=1)
    held = PendingRows(Broken(store), {"rows": 0}, store_thread, max_records=1, lag=lambda e: 0)
    stream = Stream()

    async def run() -> None:
        held.add(stream, record(0), {})  # type: ignore[arg-type]
        await held.flush_if_due()  # the write starts, and fails on the store thread
        await asyncio.sleep(0.2)
        try:
            await held.flush_if_due()  # nothing new held: the failure still surfaces
        except RuntimeError as exc:
            assert str(exc) == "disk full"
        else:
            raise AssertionError("the failed write went unnoticed")

    asyncio.run(run())
    store_thread.shutdown()
    assert stream.acked == []


def test_a_finished_write_is_acked_but_the_next_batch_waits_until_it_is_due(store):
    """Starting the next write as soon as one finishes would cut a catching-up worker's
    batches to what one write takes (the Shanghai scenario: 100k site messages, not 13k)."""
    written: list[int] = []

    class Writer(RowWriter):
        def write(self, tables: Any) -> int:
            written.append(len(tables.get("events", [])))
            return 0

    store_thread = ThreadPoolExecutor(max_workers=1)
    held = PendingRows(Writer(store), {"rows": 0}, store_thread, max_records=3, max_age=60)
    stream = Stream()

    async def run() -> None:
        for offset in range(3):
            held.add(stream, record(offset), {"events": [{}]})  # type: ignore[arg-type]
        await held.flush_if_due()  # due: the write starts
        assert held.writing is not None
        await asyncio.wait_for(asyncio.shield(held.writing), 5)  # written and acked
        held.add(stream, record(3), {"events": [{}]})  # type: ignore[arg-type]
        await held.flush_if_due()  # the write has finished: acked; one record is not a batch
        assert stream.acked == [0, 1, 2] and written == [3] and len(held.records) == 1
        for offset in (4, 5):
            held.add(stream, record(offset), {"events": [{}]})  # type: ignore[arg-type]
        await held.flush_if_due()
        await held.flush()

    asyncio.run(run())
    store_thread.shutdown()
    assert written == [3, 3] and stream.acked == list(range(6))
