"""The writer's journal: a batch cut short by a crash is completed, never counted twice."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sinks.queries import Scope, metrics
from sinks.reader import LocalReader
from sinks.store import ch_time
from sinks.writer import RowWriter
from tests.scenarios import edge_scenario, run_core
from tests.sinks.test_series import BRUTE, VIEW

NOW = datetime(2022, 3, 20, tzinfo=UTC)


class Killed(Exception):
    """The process died here."""


class DiesAfterShifts(RowWriter):
    """Stores the shifts, then dies before the other tables, as a killed worker would."""

    def _insert(self, table, columns, data, token=""):
        super()._insert(table, columns, data, token)
        if table == "shifts":
            raise Killed


def test_a_write_cut_short_is_completed_from_the_journal(store, tmp_path):
    zone = ZoneInfo("Asia/Shanghai")
    rows = run_core(edge_scenario(), NOW).rows
    at = datetime(2022, 3, 15, 11, tzinfo=UTC)
    journal = tmp_path / "journal.json"
    try:
        DiesAfterShifts(store, journal=journal).write(rows)
    except Killed:
        pass
    # The views of the shifts insert were cut short too: drop what they had written.
    for table in ("shift_deltas", "shift_hours", "team_days", "site_days"):
        store.command(f"TRUNCATE TABLE {table}")
    assert journal.exists()

    assert RowWriter(store, journal=journal).recover() == sum(map(len, rows.values()))
    assert not journal.exists()
    assert RowWriter(store, journal=journal).recover() == 0
    reader = LocalReader(store)
    assert metrics(reader, at, zone, Scope()) == metrics(
        reader, at, zone, Scope(), view="metrics_brute_at"
    )
    assert metrics(reader, at, zone, Scope())["person_times"] > 0
    # the people on post by district (district_series) counted each shift once too
    parameters = {"at": ch_time(at), "tz": zone.key, "step_s": 900}
    want = store.query(BRUTE, parameters=parameters).result_rows
    assert want
    assert [r for r in store.query(VIEW, parameters=parameters).result_rows if r[3] > 0] == want
