"""SPEC §3: derive one person's shifts from their check-ins and check-outs.

Pure Python, no Kafka, no ClickHouse. The walk is a left fold over sorted movements, so a
prefix of old movements can be forgotten if the shift it leaves open (`carry`) is kept:
deriving the rest from that carry gives exactly the shifts the whole history gives.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

MoveKind = Literal["check_in", "check_out"]
CloseReason = Literal["check_out", "transfer", "auto"]
SortKey = tuple[datetime, int, str]


@dataclass(frozen=True, slots=True)
class Move:
    """An accepted check-in or check-out of one person (times are aware UTC)."""

    event_id: str
    kind: MoveKind
    ts: datetime
    site_id: str | None = None
    role: str | None = None
    org: str | None = None
    team_id: str | None = None

    @property
    def sort_key(self) -> SortKey:
        """SPEC §3 order: (ts, check_out before check_in, event_id)."""
        return (self.ts, 0 if self.kind == "check_out" else 1, self.event_id)


@dataclass(frozen=True, slots=True)
class Shift:
    """One shift; `shift_id` is the opening check-in's event_id."""

    shift_id: str
    site_id: str
    role: str
    org: str
    team_id: str | None
    start: datetime
    end: datetime
    reason: CloseReason


@dataclass(frozen=True, slots=True)
class OpenShift:
    """A shift opened and not yet closed at some point of the walk."""

    shift_id: str
    site_id: str
    role: str
    org: str
    team_id: str | None
    start: datetime

    @classmethod
    def of(cls, move: Move) -> OpenShift:
        assert move.site_id and move.role and move.org, "a check-in carries site, role, org"
        return cls(move.event_id, move.site_id, move.role, move.org, move.team_id, move.ts)

    def close(self, end: datetime, reason: CloseReason) -> Shift:
        return Shift(
            self.shift_id, self.site_id, self.role, self.org, self.team_id, self.start, end, reason
        )


@dataclass(frozen=True, slots=True)
class Derivation:
    """The shifts and orphan check-outs of a walk, and the shift left open after each move."""

    shifts: tuple[Shift, ...]
    orphans: frozenset[str]
    open_after: tuple[OpenShift | None, ...]


def derive(
    moves: Sequence[Move], max_shift: timedelta, carry: OpenShift | None = None
) -> Derivation:
    """SPEC §3 rules 1–4 over `moves` (deduplicated, any order), starting with `carry` open."""
    shifts: list[Shift] = []
    orphans: set[str] = set()
    open_after: list[OpenShift | None] = []
    current = carry
    for move in sorted(moves, key=lambda m: m.sort_key):
        # Rule 1: a shift past its maximum length closes at start + MAX.
        if current is not None and move.ts > current.start + max_shift:
            shifts.append(current.close(current.start + max_shift, "auto"))
            current = None
        if move.kind == "check_in":
            # Rule 2: checking in elsewhere (or again) closes the open shift by transfer.
            if current is not None:
                shifts.append(current.close(move.ts, "transfer"))
            current = OpenShift.of(move)
        elif current is not None:
            # Rule 3: a check-out closes the open shift...
            shifts.append(current.close(move.ts, "check_out"))
            current = None
        else:
            # ...or is an orphan.
            orphans.add(move.event_id)
        open_after.append(current)
    # Rule 4: still open after the last event: credited up to MAX.
    if current is not None:
        shifts.append(current.close(current.start + max_shift, "auto"))
    return Derivation(tuple(shifts), frozenset(orphans), tuple(open_after))
