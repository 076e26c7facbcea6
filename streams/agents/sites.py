"""ingest-sites: validate a site version, drop a repeat, hold its rows, and send the
version to the site's live agent."""

from __future__ import annotations

from schemas.events import SiteUpserted
from streams.agents.context import Context, Event, Stream, agent
from streams.core.live import site_message, site_version
from streams.core.sites import apply_site


async def handle(ctx: Context, stream: Stream, event: Event) -> None:
    msg = event.message
    parsed = await ctx.validated(stream, event, "sites")
    if parsed is None:
        return
    assert isinstance(parsed, SiteUpserted)
    key = parsed.site_id
    held = ctx.site_ids.get(key)
    recalled = held is None and await ctx.recall.holds("site ids", key)
    seen: dict[str, str] = await ctx.recall.site_ids(key) if recalled else dict(held or {})
    outcome = apply_site(seen, parsed, msg.partition, msg.offset)
    if outcome.status == "accepted" or recalled:
        ctx.site_ids[key] = seen
    ctx.counters[outcome.status] += 1
    ctx.pending.add(stream, event, outcome.rows)
    if outcome.status != "duplicate":
        version = site_version(parsed, msg.partition, msg.offset)
        await ctx.site_changes.send(key=key.encode(), value=site_message(*version))


def register(ctx: Context) -> None:
    agent(ctx, ctx.sites, "ingest-sites", handle)
