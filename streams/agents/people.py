"""ingest-people: validate a person event, drop a repeat, derive the person's shifts
(streams/core/person.py), and hold the rows for the store and the shift diffs for the
sites they touch."""

from __future__ import annotations

from schemas.events import SiteUpserted
from sinks.writer import prev_from_store
from streams.agents.context import Context, Event, Stream, agent
from streams.core.live import diffs_by_site
from streams.core.person import PersonState, apply


async def handle(ctx: Context, stream: Stream, event: Event) -> None:
    msg = event.message
    parsed = await ctx.validated(stream, event, "events")
    if parsed is None:
        return
    assert not isinstance(parsed, SiteUpserted)
    key = parsed.person_id  # table keys are JSON-coded in the changelog: str
    held = ctx.persons.get(key)
    recalled = held is None and await ctx.recall.holds("people", key)
    state = await ctx.recall.person(key) if recalled else PersonState.from_json(held)
    settings = ctx.settings
    outcome = apply(state, parsed, msg.partition, msg.offset, settings.max_shift, settings.zone)
    if recalled or outcome.status == "accepted":
        ctx.persons[key] = state.to_json()
    if outcome.status == "too_late":
        await ctx.reject(stream, event, outcome.reason)
        return
    ctx.counters[outcome.status] += 1
    # a recalled person's rows replace what the store holds, whatever it is
    ctx.pending.add(stream, event, prev_from_store(outcome.rows) if recalled else outcome.rows)
    for site_id, diffs in diffs_by_site(key, outcome.changes).items():
        ctx.outbox.setdefault(site_id, []).extend(diffs)


def register(ctx: Context) -> None:
    agent(ctx, ctx.events, "ingest-people", handle)
