"""One person's state between events, and what each new event changes (SPEC §2 dedupe, §3).

`apply` is pure: state + event -> new state + the rows to upsert. The Faust agent stores the
state in a changelogged table keyed by `person_id` and sends the rows on to the writer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from schemas.events import CheckIn, CheckOut, Registered
from streams.core.follows import RECRUIT_KEYS, bits, follows, forget, keys_of
from streams.core.rows import (
    Row,
    checkout_row,
    event_row,
    from_micros,
    from_store,
    recruit_row,
    shift_row,
    to_micros,
)
from streams.core.shifts import Derivation, Move, OpenShift, Shift, SortKey, derive

# SPEC §3: events up to 72 h late relative to the person's newest event must be exact.
LATE_LIMIT = timedelta(hours=72)
DEFAULT_ZONE = ZoneInfo("Asia/Shanghai")  # the settings' default (MUSTER_TZ)

Status = Literal["accepted", "replayed", "duplicate", "too_late"]


@dataclass
class PersonState:
    """What the pipeline remembers of one person.

    `moves` holds the movements newer than the prune point; `carry` is the shift left open
    by the pruned ones and `floor` the sort key of the last pruned one. `seen` maps every
    accepted event_id to the record position it was first read from, so a record read
    again after a restart is told apart from a resend. `tail` keeps, per person scope key,
    the end of the latest forgotten shift, and `regs` the first registration time per
    org/team key (streams/core/follows.py).
    """

    moves: list[Move] = field(default_factory=list)
    carry: OpenShift | None = None
    floor: SortKey | None = None
    seen: dict[str, str] = field(default_factory=dict)
    newest: datetime | None = None
    rev: int = 0
    tail: dict[str, int] = field(default_factory=dict)
    regs: dict[str, int] = field(default_factory=dict)

    def derivation(self, max_shift: timedelta) -> Derivation:
        return derive(self.moves, max_shift, self.carry)

    def to_json(self) -> dict[str, Any]:
        return {
            "m": [_move_to_json(m) for m in self.moves],
            "c": None if self.carry is None else _open_to_json(self.carry),
            "f": None if self.floor is None else [to_micros(self.floor[0]), *self.floor[1:]],
            "s": self.seen,
            "n": None if self.newest is None else to_micros(self.newest),
            "r": self.rev,
            "t": self.tail,
            "g": self.regs,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> PersonState:
        if not data:
            return cls()
        floor = data["f"]
        return cls(
            moves=[_move_from_json(m) for m in data["m"]],
            carry=None if data["c"] is None else _open_from_json(data["c"]),
            floor=None if floor is None else (from_micros(floor[0]), floor[1], floor[2]),
            seen=dict(data["s"]),
            newest=None if data["n"] is None else from_micros(data["n"]),
            rev=data["r"],
            tail=dict(data.get("t") or {}),
            regs=dict(data.get("g") or {}),
        )


@dataclass(frozen=True)
class ShiftChange:
    """A shift's old version (None when new) and its new one: the diff sites receive."""

    old: Shift | None
    new: Shift
    version: int


@dataclass(frozen=True)
class Outcome:
    status: Status
    rows: dict[str, list[Row]]
    reason: str = ""
    changes: tuple[ShiftChange, ...] = ()


def apply(
    state: PersonState,
    event: Registered | CheckIn | CheckOut,
    partition: int,
    offset: int,
    max_shift: timedelta,
    zone: ZoneInfo = DEFAULT_ZONE,
) -> Outcome:
    """Fold one accepted-by-schema event into `state` (mutated) and return rows to upsert.
    `zone` is the pipeline's time zone: it says which shifts are a person's first of a
    local day (streams/core/follows.py)."""
    position = f"{partition}:{offset}"
    first_seen = state.seen.get(event.event_id)
    if first_seen == position:
        rows = _replay_rows(state, event, partition, offset, max_shift, zone)
        # The diffs this record sent may be lost: assert every current version again.
        current = () if isinstance(event, Registered) else state.derivation(max_shift).shifts
        changes = tuple(ShiftChange(None, s, state.rev) for s in current)
        return Outcome("replayed", rows, changes=changes)
    if first_seen is not None:
        return Outcome("duplicate", {}, f"event_id first seen at {first_seen}")

    if isinstance(event, Registered):
        _remember(state, event, position)
        rows = {"events": [event_row(event, partition, offset)], "recruit_firsts": []}
        ts = to_micros(event.ts)
        for key in keys_of(event.org, "", event.team_id or "", RECRUIT_KEYS):
            was = state.regs.get(key)
            if was is None or ts < was:
                state.regs[key] = ts
                state.rev += 1
                rows["recruit_firsts"].append(recruit_row(event.person_id, key, ts, state.rev, was))
        return Outcome("accepted", rows)

    move = to_move(event)
    if state.floor is not None and move.sort_key <= state.floor:
        return Outcome(
            "too_late",
            {},
            f"ts {event.ts.isoformat()} is more than 72 h older than person "
            f"{event.person_id!r}'s newest event ({_iso(state.newest)}); "
            "shifts that old are final",
        )
    before = state.derivation(max_shift)
    _remember(state, event, position)
    state.moves.append(move)
    state.moves.sort(key=lambda m: m.sort_key)
    state.rev += 1
    after = state.derivation(max_shift)
    old_shifts = {s.shift_id: s for s in before.shifts}
    changes = tuple(
        ShiftChange(old_shifts.get(s.shift_id), s, state.rev)
        for s in after.shifts
        if old_shifts.get(s.shift_id) != s
    )
    rows = _changes(event.person_id, move.event_id, before, after, state, zone)
    rows["events"] = [event_row(event, partition, offset)]
    _prune(state, after, max_shift)
    return Outcome("accepted", rows, changes=changes)


def rebuild(
    stored: list[Row], version: int, max_shift: timedelta, zone: ZoneInfo = DEFAULT_ZONE
) -> PersonState:
    """A person's state from what the store holds: their accepted events (`events` rows,
    each with the record position it was first read from) and the highest row version
    written for them. For a worker that lost its state (an empty changelog, a restarted
    embedded broker): every event the store holds is then a duplicate or a replay, and new
    ones are diffed against the versions the store's rollups counted.

    Events are applied in time order, so none is pruned before it is applied and the
    derivation is the one of all of them (SPEC §3 does not depend on arrival order). The
    version counter goes on above the store's, so that every new row replaces the one held.
    """
    state = PersonState()
    for row in sorted(stored, key=_stored_order):
        event = stored_event(row)
        apply(state, event, row["partition"], row["offset"], max_shift, zone)
    state.rev = max(state.rev, version)
    return state


def stored_event(row: Row) -> Registered | CheckIn | CheckOut:
    """An `events` row as the event it was accepted as (validated then: not again)."""
    common = {"event_id": row["event_id"], "ts": from_micros(row["ts"]), "type": row["type"]}
    if row["type"] == "registered":
        return Registered.model_construct(
            **common, person_id=row["person_id"], org=row["org"], team_id=row["team_id"] or None
        )
    if row["type"] == "check_in":
        return CheckIn.model_construct(
            **common,
            person_id=row["person_id"],
            site_id=row["site_id"],
            role=row["role"],
            org=row["org"],
            team_id=row["team_id"] or None,
        )
    return CheckOut.model_construct(
        **common, person_id=row["person_id"], site_id=row["site_id"] or None
    )


def _stored_order(row: Row) -> tuple[int, int, str]:
    """SPEC §3's order (check-outs before check-ins at one time); registrations first."""
    return (row["ts"], {"registered": 0, "check_out": 1}.get(row["type"], 2), row["event_id"])


def to_move(event: CheckIn | CheckOut) -> Move:
    if isinstance(event, CheckIn):
        return Move(
            event.event_id,
            "check_in",
            event.ts,
            event.site_id,
            event.role,
            event.org,
            event.team_id,
        )
    return Move(event.event_id, "check_out", event.ts, event.site_id)


def _remember(state: PersonState, event: Registered | CheckIn | CheckOut, position: str) -> None:
    state.seen[event.event_id] = position
    if state.newest is None or event.ts > state.newest:
        state.newest = event.ts


def _changes(
    person_id: str,
    new_id: str,
    before: Derivation,
    after: Derivation,
    state: PersonState,
    zone: ZoneInfo,
) -> dict[str, list[Row]]:
    """Upserts for every shift and check-out whose derived values changed: a shift changes
    when it does, or when what it follows under some scope key does."""
    old_shifts = {s.shift_id: s for s in before.shifts}
    old_follows = follows(before.shifts, state.tail)
    new_follows = follows(after.shifts, state.tail)
    old_marks = {s.shift_id: bits(s, old_follows[s.shift_id], zone) for s in before.shifts}
    shifts = []
    for s in after.shifts:
        marks = bits(s, new_follows[s.shift_id], zone)
        old = old_shifts.get(s.shift_id)
        if old != s or old_marks.get(s.shift_id) != marks:
            shifts.append(shift_row(person_id, s, state.rev, old, marks, old_marks.get(s.shift_id)))
    checkouts = [
        checkout_row(person_id, m, orphan, state.rev, None if is_new else was)
        for m in state.moves
        if m.kind == "check_out"
        for orphan, was, is_new in [
            (m.event_id in after.orphans, m.event_id in before.orphans, m.event_id == new_id)
        ]
        if is_new or orphan != was
    ]
    return {"shifts": shifts, "checkouts": checkouts}


def _replay_rows(
    state: PersonState,
    event: Registered | CheckIn | CheckOut,
    partition: int,
    offset: int,
    max_shift: timedelta,
    zone: ZoneInfo,
) -> dict[str, list[Row]]:
    """Everything this record could have produced, again: upserts are idempotent, and the
    writer diffs them against what the store holds."""
    rows: dict[str, list[Row]] = {"events": [event_row(event, partition, offset)]}
    if isinstance(event, Registered):
        rows["recruit_firsts"] = [
            from_store(recruit_row(event.person_id, key, state.regs[key], state.rev))
            for key in keys_of(event.org, "", event.team_id or "", RECRUIT_KEYS)
            if key in state.regs
        ]
        return rows
    current = state.derivation(max_shift)
    after = follows(current.shifts, state.tail)
    rows["shifts"] = [
        from_store(shift_row(event.person_id, s, state.rev, None, bits(s, after[s.shift_id], zone)))
        for s in current.shifts
    ]
    rows["checkouts"] = [
        from_store(checkout_row(event.person_id, m, m.event_id in current.orphans, state.rev))
        for m in state.moves
        if m.kind == "check_out"
    ]
    return rows


def _prune(state: PersonState, after: Derivation, max_shift: timedelta) -> None:
    """Forget movements more than 72 h older than the newest event, keeping the open shift
    (and, in `tail`, what the shifts forgotten with them end)."""
    assert state.newest is not None
    horizon = state.newest - LATE_LIMIT
    cut = 0
    while cut < len(state.moves) and state.moves[cut].ts < horizon:
        cut += 1
    if cut == 0:
        return
    state.carry = after.open_after[cut - 1]
    state.floor = state.moves[cut - 1].sort_key
    del state.moves[:cut]
    kept = {s.shift_id for s in state.derivation(max_shift).shifts}
    forget((s for s in after.shifts if s.shift_id not in kept), state.tail)


def _iso(ts: datetime | None) -> str:
    return "unknown" if ts is None else ts.isoformat()


def _move_to_json(m: Move) -> list[Any]:
    return [m.event_id, m.kind, to_micros(m.ts), m.site_id, m.role, m.org, m.team_id]


def _move_from_json(data: list[Any]) -> Move:
    event_id, kind, ts, site_id, role, org, team_id = data
    return Move(event_id, kind, from_micros(ts), site_id, role, org, team_id)


def _open_to_json(s: OpenShift) -> list[Any]:
    return [s.shift_id, s.site_id, s.role, s.org, s.team_id, to_micros(s.start)]


def _open_from_json(data: list[Any]) -> OpenShift:
    shift_id, site_id, role, org, team_id, start = data
    return OpenShift(shift_id, site_id, role, org, team_id, from_micros(start))
