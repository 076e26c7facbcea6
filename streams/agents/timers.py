"""The worker's timers: what happens with no record to prompt it.

- `tick_due_sites` (0.25 s): a shift starting or reaching its end with no event; the site
  gets a tick through its own topic, since Faust lets a table change only while a record
  is processed.
- `rescan_sites` (5 s): after every (re)start or rebalance each site republishes and is
  scheduled again; sites the store holds and the table lost are read back.
- `settle_coverage` (30 s): finished hours' coverage is settled (sinks/coverage.py).
- `flush_when_quiet`: a batch is written when it is due even if no record comes.
- `flush_on_stop`: what is held is stored and acked before Faust's last commit.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from sinks.coverage import settle
from sinks.store import StoreError
from streams.agents.context import Context
from streams.core.live import REPUBLISH, TICK, SiteLive
from streams.core.rows import to_micros

RESCAN_SECONDS = 60  # every site's next moment is looked up again this often
SETTLE_SECONDS = 30  # finished hours' coverage is settled this often,
SETTLE_BUDGET = 1.0  # an hour at a time for about this long (a national hour: ~1.5 s)

log = logging.getLogger(__name__)


async def tick_due_sites(ctx: Context) -> None:
    for site_id in ctx.timetable.pop_due(to_micros(datetime.now(UTC))):
        await ctx.site_changes.send(key=site_id.encode(), value=TICK)


class Rescan:
    """After every (re)start or rebalance, each site of this worker republishes (what a
    crash kept from the store is written again) and its next moment is scheduled; the
    moments are looked up again every RESCAN_SECONDS in case a tick was lost."""

    def __init__(self) -> None:
        self.generation = -1
        self.at = 0.0

    async def __call__(self, ctx: Context) -> None:
        app = ctx.app
        if not app.tables.recovery.completed.is_set():  # type: ignore[attr-defined]
            return
        generation = app.consumer_generation_id
        fresh = generation != self.generation
        if not fresh and time.monotonic() - self.at < RESCAN_SECONDS:
            return
        self.generation, self.at = generation, time.monotonic()
        now = to_micros(datetime.now(UTC))
        for site_id, data in list(ctx.live.items()):
            if fresh:
                await ctx.site_changes.send(key=site_id.encode(), value=REPUBLISH)
            else:
                ctx.timetable.set(site_id, SiteLive.from_json(site_id, data).next_due(now))
        if fresh:  # sites of this worker the store holds and the table lost: read back
            forgotten = ctx.owned_keys(ctx.site_changes, await ctx.recall.forgotten("sites"))
            for site_id in sorted(forgotten):
                await ctx.site_changes.send(key=site_id.encode(), value=REPUBLISH)


async def settle_coverage(ctx: Context) -> None:
    """Finished hours whose settled coverage is missing or stale (a late record) are
    settled: metrics then read them instead of every shift on post. On the store's thread,
    between writes, an hour at a time for about a second; by one worker of several, the
    one reading partition 0 of the events."""
    if not ctx.owns(ctx.events, 0):
        return
    before = datetime.now(UTC) - timedelta(minutes=1)
    client = ctx.writer.client
    loop = asyncio.get_running_loop()
    try:
        await loop.run_in_executor(
            ctx.store_thread,
            lambda: settle(client, before=before, budget=SETTLE_BUDGET, chunk=1),
        )
    except StoreError as exc:  # readers count from the shifts meanwhile: nothing is lost
        log.warning("%s; trying again in %d s", exc, SETTLE_SECONDS)


def register(ctx: Context) -> None:
    app, rescan = ctx.app, Rescan()

    @app.timer(0.25)  # type: ignore[untyped-decorator]
    async def tick() -> None:
        await tick_due_sites(ctx)

    @app.timer(5.0)  # type: ignore[untyped-decorator]
    async def rescan_sites() -> None:
        await rescan(ctx)

    @app.timer(SETTLE_SECONDS)  # type: ignore[untyped-decorator]
    async def settled() -> None:
        await settle_coverage(ctx)

    @app.timer(ctx.pending.max_age / 2)  # type: ignore[untyped-decorator]
    async def flush_when_quiet() -> None:
        await ctx.pending.flush_if_due()

    async def flush_on_stop(app: Any, **kwargs: Any) -> None:
        """Fetching has stopped; store what is held and ack it before the last commit."""
        await ctx.pending.flush()

    app.on_before_shutdown.connect(flush_on_stop)  # type: ignore[arg-type]
