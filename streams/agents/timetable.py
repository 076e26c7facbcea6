"""When each site next needs a look with no event (SPEC §6 "with time alone").

An in-memory heap per worker, filled as the site agent processes messages and rebuilt from
the site table after a restart; a Faust timer pops what is due and sends those sites a
tick (a table may be written only while processing a record, so the tick goes through the
site topic).
"""

from __future__ import annotations

import heapq


class Timetable:
    def __init__(self) -> None:
        self._heap: list[tuple[int, str]] = []
        self._due: dict[str, int] = {}

    def set(self, key: str, due: int | None) -> None:
        """`key` is next due at `due` (microseconds), or never when None."""
        if due is None:
            self._due.pop(key, None)
        elif self._due.get(key) != due:
            self._due[key] = due
            heapq.heappush(self._heap, (due, key))

    def pop_due(self, now: int) -> list[str]:
        """Every key due at or before `now`, each once; superseded entries are skipped."""
        out = []
        while self._heap and self._heap[0][0] <= now:
            due, key = heapq.heappop(self._heap)
            if self._due.get(key) == due:
                del self._due[key]
                out.append(key)
        return out

    def __len__(self) -> int:
        return len(self._due)
