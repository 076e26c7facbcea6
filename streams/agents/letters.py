"""ingest-letters: the DLQ records of the gateway and of `muster import` (they have no
store) are stored here, where their place on the DLQ topic identifies them; the
pipeline's own were stored when it sent them."""

from __future__ import annotations

from schemas.dlq import DeadLetter
from streams.agents.context import Context, Event, Stream, agent
from streams.core.rows import Row, dlq_row


async def handle(ctx: Context, stream: Stream, event: Event) -> None:
    msg = event.message
    rows: dict[str, list[Row]] = {}
    if letter := DeadLetter.from_gateway(msg.value):
        key = msg.key.decode("utf-8", "replace") if isinstance(msg.key, bytes) else None
        rows["dlq"] = [
            dlq_row(letter.error, letter.topic, msg.partition, msg.offset, key, letter.raw)
        ]
        ctx.counters["dlq"] += 1
    ctx.pending.add(stream, event, rows)  # acked with the batch, rows or not


def register(ctx: Context) -> None:
    agent(ctx, ctx.dlq, "ingest-letters", handle)
