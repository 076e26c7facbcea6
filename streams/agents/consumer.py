"""Faust's Kafka consumer, handing each fetched record to its stream for less, and handing
partitions over cleanly in a rebalance (`on_partitions_revoked`, streams/agents/context.py).

A rebalance sends every stream partition back to its committed offset, and Faust drops the
records fetched or queued meanwhile; a partition nothing was ever committed on has no such
offset, so the Kafka client stayed past the records it had dropped: they were lost for good
(a worker killed before its first commit left its partitions so to the next owners, which
then read nothing). `seek_to_committed` sends such a partition to its beginning instead.

Faust's fetch loop passes every record on with `wait_first(callback(message),
suspend_flow.wait())`: the hand-over races the flow being suspended (a rebalance), so that a
record waiting on a full stream buffer is dropped rather than put into a buffer the
rebalance clears. `Service.wait_first` makes four tasks per call, about 33 µs here: some 8 s
of the event loop for the Shanghai scenario's 217k records. `Consumer` runs the same race
on one task per record against one long-lived interruption (flow suspended, consumer
stopped or crashed), about 13 µs. Any other `wait_first` is Faust's own.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Mapping
from typing import Any, cast

from aiokafka import TopicPartition
from faust.transport.drivers import aiokafka
from faust.types import TP
from mode.services import WaitResults

from streams.agents.producer import Producer

log = logging.getLogger(__name__)


class Consumer(aiokafka.Consumer):
    _interrupt: asyncio.Future[Any] | None = None

    async def on_partitions_revoked(self, revoked: set[TP]) -> None:
        """The app's `hand_over` (store and commit what is held) first: Faust's own revoke
        forgets the revoked partitions' acks before it tells the app anything."""
        hand_over = getattr(self.app, "hand_over", None)
        if revoked and hand_over is not None and not self.app.should_stop:
            await hand_over(revoked)
        await super().on_partitions_revoked(revoked)

    async def seek_to_committed(self) -> Mapping[TP, int]:
        """Each partition to its committed offset, and a stream partition without one (or
        with 0, which the client does not seek to) to its beginning, as a first start is."""
        committed = await super().seek_to_committed()
        never = [
            TopicPartition(tp.topic, tp.partition)
            for tp in self.assignment()
            if not committed.get(tp) and not self._is_changelog_tp(tp)
        ]
        if never:
            await cast(Any, self)._thread.seek_to_beginning(*never)
            named = ", ".join(f"{tp.topic}[{tp.partition}]" for tp in sorted(never))
            log.info("no commit yet on %s: read from the beginning", named)
        return committed

    async def wait_first(self, *coros: Any, timeout: Any = None) -> WaitResults:
        if timeout is None and len(coros) == 2 and _waits_on(coros[1], self.suspend_flow):
            coros[1].close()
            return await self._hand_over(coros[0])
        return await super().wait_first(*coros, timeout=timeout)

    async def _hand_over(self, coro: Coroutine[Any, Any, Any]) -> WaitResults:
        """`coro` (the record's hand-over) unless the flow is suspended, or the consumer
        stops, first; then it is cancelled, as in Faust."""
        interrupt = self._interruption()
        if interrupt.done():
            coro.close()
            return self._interrupted_result()
        task = asyncio.ensure_future(coro)
        try:
            await asyncio.wait((task, interrupt), return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not task.done():
                task.cancel()
        if not task.done() or task.cancelled():
            return self._interrupted_result()
        return WaitResults([coro], [task.result()], False)  # raises what the hand-over raised

    def _interrupted_result(self) -> WaitResults:
        return WaitResults([], [], self._stopped.is_set() or self._crashed.is_set())

    def _interruption(self) -> asyncio.Future[Any]:
        held = self._interrupt
        if held is None or (held.done() and not self._interrupted()):
            held = self._interrupt = asyncio.ensure_future(self._until_interrupted())
        return held

    def _interrupted(self) -> bool:
        return self.suspend_flow.is_set() or self._stopped.is_set() or self._crashed.is_set()

    async def _until_interrupted(self) -> None:
        await super().wait_first(self.suspend_flow.wait())  # also returns on stop or crash


class Transport(aiokafka.Transport):
    Consumer = Consumer
    Producer = Producer  # streams/agents/producer.py


def _waits_on(coro: Any, event: Any) -> bool:
    """Whether `coro` is an unstarted `event.wait()`."""
    frame = getattr(coro, "cr_frame", None)
    return (
        frame is not None
        and getattr(coro, "cr_code", None) is type(event).wait.__code__
        and frame.f_locals.get("self") is event
    )
