"""ingest-letters: the DLQ records of the gateway and of `muster import` (they have no
store) are stored here, where their place on the DLQ topic identifies them; the
pipeline's own were stored when it sent them."""

from __future__ import annotations

from streams.agents.context import Context, Event, Stream, agent
from streams.core.rows import Row, letter_row


async def handle(ctx: Context, stream: Stream, event: Event) -> None:
    msg = event.message
    rows: dict[str, list[Row]] = {}
    key = msg.key.decode("utf-8", "replace") if isinstance(msg.key, bytes) else None
    if row := letter_row(msg.value, msg.partition, msg.offset, key):
        rows["dlq"] = [row]
        ctx.counters["dlq"] += 1
    ctx.pending.add(stream, event, rows)  # acked with the batch, rows or not


def register(ctx: Context) -> None:
    agent(ctx, ctx.dlq, "ingest-letters", handle)
