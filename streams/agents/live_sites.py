"""live-sites: SPEC §6 at now. Fold a site's shift diffs, versions and ticks into its live
state (streams/core/live.py), publish its status and alerts when they change, hold their
rows for the store, and schedule the site's next moment."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from streams.agents.context import Context, Event, Stream, agent
from streams.core.live import SiteLive, apply_message
from streams.core.rows import Row, alert_row, on_post_rows, status_row, to_micros
from streams.core.status import iso_micros


async def handle(ctx: Context, stream: Stream, event: Event) -> None:
    msg = event.message
    assert isinstance(msg.key, bytes) and isinstance(msg.value, bytes)  # keyed by site
    site_id = msg.key.decode()
    held = ctx.live.get(site_id)
    now = to_micros(datetime.now(UTC))
    recalled = held is None and await ctx.recall.holds("sites", site_id)
    if recalled:  # this worker's table lost it: what the store holds, said again
        state = await ctx.recall.site(site_id, now)
    else:
        state = SiteLive.from_json(site_id, held)
    republish = apply_message(state, msg.value, now) or recalled
    step = state.step(now, ctx.settings.zone, republish)
    data = state.to_json()
    if data != held:
        ctx.live[site_id] = data
    rows: dict[str, list[Row]] = {}
    if step.status is not None:
        at = iso_micros(now, ctx.settings.zone)
        body = json.dumps(step.status | {"at": at}, ensure_ascii=False).encode()
        await ctx.status_topic.send(key=msg.key, value=body)
        rows["site_status"] = [status_row(step.status, now)]
    if step.on_post_by:
        rows["on_post_minutely"] = on_post_rows(site_id, step.on_post_by, now)
    for alert in step.alerts:
        body = json.dumps(alert, ensure_ascii=False).encode()
        await ctx.alerts_topic.send(key=msg.key, value=body)
        rows.setdefault("alerts", []).append(alert_row(alert, now))
    ctx.counters["site_messages"] += 1
    ctx.counters["alerts"] += len(step.alerts)
    ctx.pending.add(stream, event, rows)
    ctx.timetable.set(site_id, state.next_due(now))


def register(ctx: Context) -> None:
    agent(ctx, ctx.site_changes, "live-sites", handle)
