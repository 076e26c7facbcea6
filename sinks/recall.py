"""What the store already holds of a person or site, for a worker whose tables lack them.

The store's rollups are fed with diffs: each shift row says which version it replaces,
and the person agent takes that from its table (streams/core/person.py). A worker that
lost its table (an empty changelog: the embedded broker restarted, a new Kafka cluster, a
changelog deleted) would derive a stored person's shifts anew and assert them a second
time. So before it handles a person its table does not hold, it asks here whether the
store holds them, and if so rebuilds their state from their stored events
(`streams.core.person.rebuild`): what the store reflects is then a duplicate or a replay,
and every new row replaces the version the rollups counted.

Asking the store about every new person would cost a query each (the Shanghai scenario
has 20,000 people, all new to an empty store). So the worker first reads, once, every
person the store holds that its table lacks (`forgotten_people`): empty in a normal
start, the whole store after a loss; only those people are then read one by one, the
first time an event of theirs arrives.

Sites likewise: the site agent's table holds each site's recent shifts, open alert and
alert count. A lost one would open every understaffed site's alert a second time (with
the next id) and count on post only what arrives anew; a forgotten site is rebuilt from
its stored versions, alerts, last status and recent shifts (`streams.core.live.recall_site`)
at its first message, and every forgotten site gets one at the worker's start, so its
time-alone changes (a shift reaching MAX) are scheduled again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError

from sinks.store import StoreError, first_line
from streams.core.rows import Row

EVENT_COLUMNS: tuple[str, ...] = ("person_id", "event_id", "type", "ts", "site_id", "role")
EVENT_COLUMNS += ("org", "team_id", "partition", "offset")


def forgotten_people(client: Client, known: Iterable[str]) -> set[str]:
    """The people the store holds events of, less those in `known` (the table's keys)."""
    return _forgotten(client, "SELECT DISTINCT person_id FROM events", known, "people")


def forgotten_site_ids(client: Client, known: Iterable[str]) -> set[str]:
    """The sites the store holds versions of, less those in `known`."""
    return _forgotten(client, "SELECT DISTINCT site_id FROM site_versions", known, "sites")


def forgotten_sites(client: Client, known: Iterable[str]) -> set[str]:
    """The sites a site agent wrote a status of (so held in its table), less `known`."""
    return _forgotten(client, "SELECT DISTINCT site_id FROM site_status", known, "sites")


def _forgotten(client: Client, sql: str, known: Iterable[str], what: str) -> set[str]:
    stored = {row[0] for row in _rows(client, sql, {}, f"the stored {what}")}
    stored.difference_update(known)
    return stored


def person_history(client: Client, person_id: str) -> tuple[list[Row], int]:
    """A person's accepted events as stored (`events` rows, times in microseconds) and the
    highest version of any row written for them."""
    parameters = {"person": person_id}
    what = f"person {person_id!r}'s stored events"
    columns = ", ".join(
        "toUnixTimestamp64Micro(ts) AS ts" if c == "ts" else f"`{c}`" for c in EVENT_COLUMNS
    )
    events = _rows(
        client,
        f"SELECT {columns} FROM events FINAL WHERE person_id = {{person:String}}",
        parameters,
        what,
    )
    version = _rows(
        client,
        "SELECT max(v) FROM ("
        " SELECT max(version) AS v FROM shifts WHERE person_id = {person:String}"
        " UNION ALL SELECT max(version) FROM checkouts WHERE person_id = {person:String}"
        " UNION ALL SELECT max(version) FROM recruit_firsts WHERE person_id = {person:String})",
        parameters,
        what,
    )
    rows = [dict(zip(EVENT_COLUMNS, r, strict=True)) for r in events]
    return rows, int(version[0][0] or 0)


def site_event_ids(client: Client, site_id: str) -> dict[str, str]:
    """A site's stored `site_upserted` event ids and the record position each was read at
    (the site agent's dedupe memory, streams/core/sites.py)."""
    rows = _rows(
        client,
        "SELECT event_id, concat(toString(partition), ':', toString(offset)) FROM site_versions"
        " FINAL WHERE site_id = {site:String}",
        {"site": site_id},
        f"site {site_id!r}'s stored versions",
    )
    return {event_id: position for event_id, position in rows}


@dataclass(frozen=True)
class StoredSite:
    """What the store holds of a site's live state (streams.core.live.recall_site)."""

    versions: list[tuple[Any, ...]]  # (ts, partition, offset, name, … lon) per version
    shifts: list[tuple[Any, ...]]  # (shift_id, person_id, role, org, start, end, reason)
    alerts: list[tuple[Any, ...]]  # (alert_id, opened, short, people, resolved or None)
    status: tuple[int, int | None] | None  # (at, last_activity) of the last status written


def stored_site(client: Client, site_id: str, shifts_since: int) -> StoredSite:
    """A site's versions, its alerts, its last published status, and its shifts started at
    or after `shifts_since` (microseconds) as they stand: each shift's latest version is
    the one whose +1 the time-ordered diffs (`shift_deltas`) have not taken back."""
    site = {"site": site_id}
    what = f"site {site_id!r}'s stored state"
    versions = _rows(
        client,
        "SELECT toUnixTimestamp64Micro(ts), partition, offset, name, city, district, street,"
        " community, kind, requirements, active, lat, lon FROM site_versions FINAL"
        " WHERE site_id = {site:String}",
        site,
        what,
    )
    shifts = _rows(
        client,
        "SELECT shift_id, person_id, role, org, toUnixTimestamp64Micro(started_at),"
        " toUnixTimestamp64Micro(ended_at), reason FROM shift_deltas"
        " WHERE site_id = {site:String} AND started_at >= fromUnixTimestamp64Micro({since:Int64})"
        " GROUP BY shift_id, person_id, role, org, started_at, ended_at, reason"
        " HAVING sum(sign) > 0",
        site | {"since": shifts_since},
        what,
    )
    alerts = _rows(
        client,
        "SELECT alert_id, toUnixTimestamp64Micro(opened_at), short, people,"
        " toUnixTimestamp64Micro(resolved_at) FROM alerts FINAL"
        " WHERE startsWith(alert_id, {prefix:String}) AND site_id = {site:String}",
        site | {"prefix": f"understaffed:{site_id}:"},
        what,
    )
    status = _rows(
        client,
        "SELECT toUnixTimestamp64Micro(at), toUnixTimestamp64Micro(last_activity)"
        " FROM site_status FINAL WHERE site_id = {site:String}",
        site,
        what,
    )
    return StoredSite(versions, shifts, alerts, status[0] if status else None)


def _rows(client: Client, sql: str, parameters: dict[str, Any], what: str) -> list[tuple[Any, ...]]:
    try:
        result = client.query(sql, parameters=parameters or None)
        return [tuple(row) for row in result.result_rows]
    except ClickHouseError as exc:
        raise StoreError(f"reading {what} failed: {first_line(exc)}") from exc
