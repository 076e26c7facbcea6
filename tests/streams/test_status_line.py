"""`muster up` prints a failed status poll and goes on (it used to stop the whole stack)."""

from __future__ import annotations

from sinks.reader import LocalReader
from sinks.store import StoreError
from streams.launcher import status_line
from streams.settings import Settings


class Refusing(LocalReader):
    def __init__(self) -> None:
        super().__init__(client=None)  # type: ignore[arg-type]

    def query(self, sql, parameters=None):  # type: ignore[no-untyped-def]
        raise StoreError("Cannot execute query in readonly mode. (READONLY)")


def test_a_failed_status_poll_is_a_line_not_a_stop() -> None:
    line = status_line(Refusing(), Settings())
    assert "status not read this time" in line and "READONLY" in line


def test_a_status_poll_prints_the_city_numbers(store) -> None:
    line = status_line(LocalReader(store), Settings())
    assert line.startswith("on post now 0, today 0, cumulative 0 people")
