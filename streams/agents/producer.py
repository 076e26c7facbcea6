"""Faust's Kafka producer, whose messages wait longer to share a produce request while the
worker catches up, and whose flush does not wait that out.

Every table write is one changelog message, and each batch of a partition in a produce
request costs the broker a write (the embedded broker: two, to the object store that keeps
its topics). Draining the Shanghai scenario with two workers, the broker spent some 35 s of
CPU on 55,000 object writes and reads, 26,000 of them for the person table's changelog, on
a machine whose two cores the workers and the store needed. While a worker is catching up
(`PendingRows.catching_up`) its messages therefore wait up to `CATCH_UP_LINGER` for others
of their partition; once it keeps up, `LINGER`, so a live site's status and alerts stay
prompt. A flush (before each store write, before Faust commits, in a rebalance) sends every
batch at once instead of waiting for the linger to end.

The linger is aiokafka's (`MessageAccumulator`), read by each new batch; Faust has no
setting that changes while the worker runs.
"""

from __future__ import annotations

from typing import Any

from faust.transport.drivers import aiokafka

LINGER = 0.02  # seconds a message waits for others while the worker keeps up
CATCH_UP_LINGER = 0.25  # while it catches up


class Producer(aiokafka.Producer):
    def pace(self, catching_up: bool) -> None:
        """New batches wait `CATCH_UP_LINGER` while catching up, else `LINGER`."""
        batches = self._batches()
        if batches is not None:
            batches._linger_time = CATCH_UP_LINGER if catching_up else LINGER

    async def flush(self) -> None:
        """Send every message held, lingering or not, and wait until the broker has it."""
        await self.buffer.flush()  # Faust's own queue (changelog writes) into the batches
        batches = self._batches()
        if batches is not None:
            for queued in list(batches._batches.values()):
                for batch in queued:
                    batch._linger_time = 0.0  # ready: the sender takes it on its next pass
            if not batches._waiter_future.done():
                batches._waiter_future.set_result(None)  # and passes now
        await super().flush()

    def _batches(self) -> Any | None:
        """aiokafka's batches being filled, or None before the producer has started."""
        return getattr(self._producer, "_message_accumulator", None)
