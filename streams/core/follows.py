"""What each shift follows, per person scope: the facts that make distinct-people counts sums.

SPEC §4 counts distinct persons (`cumulative_people`, `on_post_today`, `recruited`) under
any combination of the person scopes `org`, `role` and `team_id`. Counting distinct values
at query time means grouping millions of rows; instead, each shift carries, for each of the
eight combinations ("scope keys") its own org/role/team fall in, the end of the same
person's previous shift in that combination (0 when there is none). A person's shifts never
overlap, so under a scope key K:

- `cumulative_people` at T counts K-shifts with start <= T that follow nothing (0);
- `on_post_today` at T counts K-shifts with start <= T, end > D, that follow a shift
  ended at or before D: exactly one per person with a K-shift reaching past D, the first.

Both are plain sums over rows, so the store keeps them per day (sinks/migrations).
Registrations carry the same idea: the person's first registration per org/team key.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from streams.core.rows import to_micros
from streams.core.shifts import Shift

SEP = "\x1f"

# The eight combinations of the person scopes, in the order of the `follows` array and of
# the columns f0 ... f7 of shift_deltas: index = org + 2 * role + 4 * team (each 0 or 1).
SHIFT_KEYS: tuple[tuple[bool, bool, bool], ...] = tuple(
    (bool(i & 1), bool(i & 2), bool(i & 4)) for i in range(8)
)
# Registrations honour org and team only: a, o, t, ot.
RECRUIT_KEYS: tuple[tuple[bool, bool, bool], ...] = tuple(k for k in SHIFT_KEYS if not k[1])


def scope_key(org: str, role: str, team_id: str) -> str:
    """The key of a scope: its org, role and team, '' where not narrowed (SQL: concat)."""
    return f"{org}{SEP}{role}{SEP}{team_id}"


def keys_of(
    org: str, role: str, team_id: str, combos: Sequence[tuple[bool, bool, bool]] = SHIFT_KEYS
) -> list[str]:
    """The scope keys a shift (or registration) with these attributes falls in."""
    return [
        scope_key(org if o else "", role if r else "", team_id if t else "") for o, r, t in combos
    ]


def shift_keys(shift: Shift) -> list[str]:
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
        end = to_micros(shift.end)
        for k in shift_keys(shift):
            tail[k] = end
