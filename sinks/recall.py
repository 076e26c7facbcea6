"""What the store already holds of a person, for a worker whose tables do not know them.

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
"""

from __future__ import annotations

from collections.abc import Iterable

from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError

from sinks.store import StoreError, first_line
from streams.core.rows import Row

EVENT_COLUMNS = ("person_id", "event_id", "type", "ts", "site_id", "role", "org", "team_id")
EVENT_COLUMNS += ("partition", "offset")


def forgotten_people(client: Client, known: Iterable[str]) -> set[str]:
    """The people the store holds events of, less those in `known` (the table's keys)."""
    try:
        result = client.query("SELECT DISTINCT person_id FROM events")
    except ClickHouseError as exc:
        raise StoreError(f"reading the stored people failed: {first_line(exc)}") from exc
    stored = {row[0] for row in result.result_rows}
    stored.difference_update(known)
    return stored


def person_history(client: Client, person_id: str) -> tuple[list[Row], int]:
    """A person's accepted events as stored (`events` rows, times in microseconds) and the
    highest version of any row written for them."""
    parameters = {"person": person_id}
    columns = ", ".join(
        "toUnixTimestamp64Micro(ts) AS ts" if c == "ts" else f"`{c}`" for c in EVENT_COLUMNS
    )
    try:
        events = client.query(
            f"SELECT {columns} FROM events FINAL WHERE person_id = {{person:String}}",
            parameters=parameters,
        )
        version = client.query(
            "SELECT max(v) FROM ("
            " SELECT max(version) AS v FROM shifts WHERE person_id = {person:String}"
            " UNION ALL SELECT max(version) FROM checkouts WHERE person_id = {person:String}"
            " UNION ALL SELECT max(version) FROM recruit_firsts"
            " WHERE person_id = {person:String})",
            parameters=parameters,
        )
    except ClickHouseError as exc:
        raise StoreError(
            f"reading person {person_id!r}'s stored events failed: {first_line(exc)}"
        ) from exc
    rows = [dict(zip(EVENT_COLUMNS, r, strict=True)) for r in events.result_rows]
    return rows, int(version.result_rows[0][0] or 0)
