"""Mend the offset gaps Faust's recovery race leaves behind (faust-streaming issue #596).

After a restart, records fetched while the tables recover are queued, then thrown away when
recovery ends; Faust never fetches them again. They are never processed and never acked,
so the committed offset stops at the hole for good. Seen here: a worker killed mid-stream
and restarted lost ~100 records per partition and never committed again.

`stalled` finds such holes: acked offsets that start beyond the committed one, with no
record below them still in flight, the same on two looks in a row. Seeking the partition
back to its committed offset has Faust read the hole again; records it had processed come
back as replays (their rows are written again, harmlessly), the lost ones are processed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

Offsets = Mapping[Any, int]


class _Consumer(Protocol):
    _acked: Mapping[Any, list[int]]
    _committed_offset: Mapping[Any, int | None]
    _unacked_messages: Iterable[Any]


def holes(consumer: _Consumer) -> dict[Any, tuple[int, int]]:
    """Partition -> (committed offset, first acked offset) where Faust cannot commit."""
    in_flight: dict[Any, int] = {}
    for message in list(consumer._unacked_messages):
        low = in_flight.get(message.tp)
        in_flight[message.tp] = message.offset if low is None else min(low, message.offset)
    found = {}
    for tp, acked in list(consumer._acked.items()):
        committed = consumer._committed_offset.get(tp)
        if not acked or committed is None:
            continue
        first = min(acked)
        # Faust commits only while acked offsets run on from the committed one (`> 1`, its
        # own test in Consumer._new_offset); a record in flight below may still fill the gap.
        if first - committed > 1 and in_flight.get(tp, first) >= first:
            found[tp] = (committed, first)
    return found


class GapMender:
    """Call `look` periodically; it returns the partitions to seek back, and where to."""

    def __init__(self) -> None:
        self.seen: dict[Any, tuple[int, int]] = {}

    def look(self, consumer: _Consumer) -> dict[Any, int]:
        now = holes(consumer)
        stalled = {tp: hole[0] for tp, hole in now.items() if self.seen.get(tp) == hole}
        self.seen = {tp: hole for tp, hole in now.items() if tp not in stalled}
        return stalled
