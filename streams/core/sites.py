"""Site events (SPEC §2 `site_upserted`): deduplicated by event_id per site, kept as versions."""

from __future__ import annotations

from schemas.events import SiteUpserted
from streams.core.person import Outcome, Status
from streams.core.rows import site_row


def apply_site(seen: dict[str, str], event: SiteUpserted, partition: int, offset: int) -> Outcome:
    """Record `event` in `seen` (event_id -> first record position, mutated); rows to upsert.

    Every version is stored; "attributes at T" is resolved at query time (sites_at view).
    """
    position = f"{partition}:{offset}"
    first = seen.get(event.event_id)
    if first is not None and first != position:
        return Outcome("duplicate", {}, f"event_id first seen at {first}")
    seen[event.event_id] = position
    status: Status = "replayed" if first == position else "accepted"
    return Outcome(status, {"site_versions": [site_row(event, partition, offset)]})
