"""Faust's table recovery with two fixes; without them a restarted worker lost records.

1. **Where a changelog ends.** Faust reads a changelog until the partition's end as the
   broker lists it (ListOffsets). Tansu lists the end as the last record batch's *first*
   offset + 1, so recovery stopped inside the last batch and the people whose latest state
   was in the rest of it came back as they were before (a check-out after a restart found
   no open shift). `changelog_ends` reads that last batch to find the real end; on Apache
   Kafka it finds the number the broker listed.
2. **Resume after the seek.** Faust 0.15's `on_recovery_completed` resumes the stream
   partitions, then seeks them to their committed offsets, then resumes flow control, which
   clears every stream queue. During the seek the fetcher already delivers the records it
   prefetched at the committed offset; the clear drops them, and the fetcher's read offset,
   left past them by the delivery still in progress, makes it drop them again when the seek
   fetches them anew. One fetch batch per partition was lost (about half the time, after a
   worker was killed while busy) and the partition's commits stopped there for good
   (faust-streaming/faust#596 describes the same loss). Here the stream partitions are
   sought while still paused, the queues cleared, and only then resumed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, cast

from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.tables import TableManager
from faust.tables.recovery import Recovery
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth
from faust.types import TP

TAIL_POLL_MS = 500


async def changelog_ends(
    bootstrap: str, listed: Mapping[TP, int | None], **options: Any
) -> dict[TP, int | None]:
    """Each partition's end (last offset + 1), reading from the first offset of the batch
    the broker's listed end points into until nothing more comes."""
    ends = dict(listed)
    tail = {tp: end for tp, end in listed.items() if end and end > 0}
    if not tail:
        return ends
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, **options)
    await consumer.start()
    try:
        consumer.assign([TopicPartition(tp.topic, tp.partition) for tp in tail])
        for tp, end in tail.items():
            consumer.seek(TopicPartition(tp.topic, tp.partition), end - 1)
        while batches := await consumer.getmany(timeout_ms=TAIL_POLL_MS):
            for ktp, records in batches.items():
                tp = TP(ktp.topic, ktp.partition)
                ends[tp] = max(ends[tp] or 0, records[-1].offset + 1)
    finally:
        await consumer.stop()
    return ends


class ExactRecovery(Recovery):
    async def _build_highwaters(
        self, consumer: Any, tps: set[TP], destination: Any, title: str
    ) -> None:
        """Upstream's, with the ends read by `changelog_ends`."""
        listed = await consumer.highwaters(*tps)
        bootstrap = ",".join(f"{url.host}:{url.port or 9092}" for url in self.app.conf.broker)
        conf = self.app.conf  # the worker's TLS and SASL settings, as Faust passes them
        auth = credentials_to_aiokafka_auth(conf.broker_credentials, conf.ssl_context)
        ends = await changelog_ends(bootstrap, listed, **auth)
        # Faust keeps the last offset to read, not the end ("because of the way we commit").
        # `destination` is a Counter: update() adds, so it is cleared first (as upstream
        # does); without that a worker's second recovery (a rebalance) doubled the ends.
        destination.clear()
        destination.update({tp: -1 if not end or end < 0 else end - 1 for tp, end in ends.items()})
        moved = {f"{tp.topic}[{tp.partition}]": (listed[tp], ends[tp]) for tp in ends}
        self.log.info("%s changelog ends (listed, read): %s", title, moved)

    async def on_recovery_completed(self, generation_id: int = 0) -> None:
        """Upstream's, with the stream partitions resumed after the seek and the clear, and
        nothing done for a recovery another rebalance has overtaken: one that finished just
        as the next assignment came went on to resume and clear the streams while the next
        recovery ran, and the worker took no more records."""
        app = self.app
        consumer = app.consumer
        if app.consumer_generation_id != generation_id:
            self.log.warning(
                "Recovery of generation %d overtaken: rebalancing again", generation_id
            )
            return
        self.log.info("Restore complete!")
        await app.on_rebalance_complete.send()
        self._set_recovery_ended()
        callbacks = [
            asyncio.ensure_future(
                table.on_recovery_completed(
                    self.actives_for_table[table], self.standbys_for_table[table]
                )
            )
            for table in self.tables.values()
        ]
        if callbacks:
            await asyncio.wait(callbacks)
        assignment = consumer.assignment()
        if app.consumer_generation_id != generation_id:
            self.log.warning("Recovery rebalancing again")
            return
        streams = {tp for tp in assignment if not self._is_changelog_tp(tp)}
        if streams:
            self.log.info("Seek stream partitions to committed offsets.")
            await self._wait(consumer.perform_seek(), timeout=app.conf.broker_request_timeout)
        self.completed.set()
        app.flow_control.resume()  # clears the stream queues: none holds a stream record yet
        consumer.resume_partitions(streams)
        consumer.resume_flow()
        await cast(Any, app)._fetcher.maybe_start()
        self.tables.on_actives_ready()
        if not app.assignor.assigned_standbys():
            self.tables.on_standbys_ready()
        app.on_rebalance_end()
        self.log.info("Worker ready")


class ExactTableManager(TableManager):
    """Faust's table manager with `ExactRecovery` (set as the app's `TableManager`)."""

    @property
    def recovery(self) -> Recovery:
        if self._recovery is None:
            self._recovery = ExactRecovery(self.app, self, beacon=self.beacon, loop=self.loop)
        return self._recovery
