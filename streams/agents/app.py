"""The worker's Faust app: topics, tables, agents and timers over one shared context.

    events --(ingest_people: validate, dedupe, derive shifts)--> rows --(batched)--> store
                    | shift diffs (-old, +new), keyed by site
                    v
    site-changes --(live_sites: SPEC §6 at now)--> rows, site_status and alerts topics
                    ^                  ^
                    | site versions    | ticks (timers: a shift starts or ends unprompted)
    sites  --(ingest_sites:  validate, dedupe)--> rows --(batched)--> store
    bad records -------------------------------------------------> dlq (+ a dlq row)
    dlq --(ingest_letters: the gateway's records only)------------> dlq rows

One module per agent (people.py, sites.py, letters.py, live_sites.py), the timers in
timers.py, what they share in context.py. Agents only wire: the rules live in schemas/
(validation), streams/core/person.py (dedupe, SPEC §3), streams/core/live.py (SPEC §6)
and sinks/ (the store). The site agent sees every shift of its sites, whichever partition
derived them, because diffs are keyed by site_id.

Records are acked by hand, only after the rows they produced are in the store
(streams/agents/pending.py). Before each store write the batch's shift diffs are sent, one
message per site, and they and the tables' changelogs are flushed; Faust flushes again
before every commit. So offsets never run ahead of the store or the tables: at-least-once
end to end, made exact by idempotent upserts, replay detection, and site diffs that carry
whole shift versions.
"""

from __future__ import annotations

from concurrent.futures import Executor

from sinks.writer import RowWriter
from streams.agents import letters, live_sites, people, sites, timers
from streams.agents.context import Context, build
from streams.settings import Settings


def create_app(settings: Settings, writer: RowWriter, store_thread: Executor) -> Context:
    """The worker's app with every agent and timer registered."""
    ctx = build(settings, writer, store_thread)
    for module in (people, sites, letters, live_sites, timers):
        module.register(ctx)
    return ctx
