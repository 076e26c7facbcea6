"""What each shift follows, per person scope: the facts that make distinct-people counts sums.

SPEC §4 counts distinct persons (`cumulative_people`, `on_post_today`, `recruited`) under
any combination of the person scopes `org`, `role` and `team_id`. Counting distinct values
at query time means grouping millions of rows. Instead, for each of the eight combinations
("scope keys", k = org + 2 * role + 4 * team) its own org/role/team fall in, a shift is
told the end of the same person's previous shift under that key (0 when there is none),
and keeps two bits per key. A person's shifts never overlap, so under key k:

- `firsts` bit k: the shift follows nothing. `cumulative_people` at T counts k-shifts with
  start <= T and this bit.
- `day_firsts` bit k: the shift follows a shift ended by the local midnight of its own
  start, and itself reaches past it. `on_post_today` at T (D its local midnight) counts
  the k-shifts on post at D, plus the k-shifts started in [D, T] with this bit: exactly
  one per person with a k-shift reaching past D, their first.

Both are plain sums over rows, kept per hour and per day (sinks/migrations/006_sums.sql).
The local day is the pipeline's time zone: a store keeps the zone it was written with.
Registrations carry the same idea: the person's first registration per org/team key.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, time
from functools import lru_cache
from zoneinfo import ZoneInfo

from streams.core.rows import to_micros
from streams.core.shifts import Shift

SEP = "\x1f"

# The eight combinations of the person scopes; a key's index (its bit) is
# org + 2 * role + 4 * team, each 0 or 1.
SHIFT_KEYS: tuple[tuple[bool, bool, bool], ...] = tuple(
    (bool(i & 1), bool(i & 2), bool(i & 4)) for i in range(8)
)
# Registrations honour org and team only: a, o, t, ot.
RECRUIT_KEYS: tuple[tuple[bool, bool, bool], ...] = tuple(k for k in SHIFT_KEYS if not k[1])


def scope_key(org: str, role: str, team_id: str) -> str:
    """The key of a scope: its org, role and team, '' where not narrowed (SQL: concat)."""
    return f"{org}{SEP}{role}{SEP}{team_id}"


@lru_cache(maxsize=1 << 16)  # a city has a few thousand (org, role, team) triples
def keys_of(
    org: str, role: str, team_id: str, combos: Sequence[tuple[bool, bool, bool]] = SHIFT_KEYS
) -> tuple[str, ...]:
    """The scope keys a shift (or registration) with these attributes falls in."""
    return tuple(
        scope_key(org if o else "", role if r else "", team_id if t else "") for o, r, t in combos
    )


def shift_keys(shift: Shift) -> tuple[str, ...]:
    return keys_of(shift.org, shift.role, shift.team_id or "")


def follows(shifts: Iterable[Shift], tail: Mapping[str, int]) -> dict[str, tuple[int, ...]]:
    """For each shift (in order, as derived), the end in microseconds of the person's
    previous shift under each of its eight scope keys (0: none). `tail` holds the ends of
    the latest shifts already forgotten, per key."""
    last = dict(tail)
    return {shift.shift_id: step(shift, last) for shift in shifts}


def step(shift: Shift, last: dict[str, int]) -> tuple[int, ...]:
    """What `shift` follows given `last` (per key, the end of the person's latest earlier
    shift); `last` then ends with `shift`."""
    keys = shift_keys(shift)
    out = tuple(last.get(k, 0) for k in keys)
    end = to_micros(shift.end)
    for k in keys:
        last[k] = end
    return out


def forget(shifts: Iterable[Shift], tail: dict[str, int]) -> None:
    """Fold shifts about to be forgotten (oldest first) into `tail`."""
    for shift in shifts:
        step(shift, tail)


def bits(shift: Shift, follows: tuple[int, ...], zone: ZoneInfo) -> tuple[int, int]:
    """The shift's `firsts` and `day_firsts` bit masks (module docstring) given what it
    follows under each key."""
    local = shift.start.astimezone(zone)
    midnight = to_micros(datetime.combine(local.date(), time(0), tzinfo=zone))
    past_midnight = to_micros(shift.end) > midnight
    firsts = day_firsts = 0
    for k, end in enumerate(follows):
        if end == 0:
            firsts |= 1 << k
        if end <= midnight and past_midnight:
            day_firsts |= 1 << k
    return firsts, day_firsts
