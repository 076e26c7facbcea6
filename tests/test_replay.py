"""`muster replay`: the store's derived tables rebuilt from its accepted events into a fresh
database and swapped in. On the edge scenario (late, resent, out-of-order and rejected
records), every metric at every cutoff and scope still equals the reference, each shift is
the one the pipeline derived, and the replaced tables are kept aside."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from clickhouse_connect.driver.client import Client

from sinks.coverage import settle
from sinks.queries import Scope, metrics
from sinks.reader import LocalReader
from sinks.store import connect
from sinks.writer import RowWriter
from streams.replay import ReplayError, replay
from streams.settings import Settings
from tests import reference
from tests.scenarios import CUTOFFS, MAX, SCOPES, cin, cout, edge_scenario, run_core, t
from tests.sinks.test_metrics import same
from tests.workers import StoreProcess, Worker, produce

NOW = datetime(2022, 3, 20, tzinfo=UTC)
ZONE = ZoneInfo("Asia/Shanghai")
SHIFTS = (
    "SELECT person_id, shift_id, site_id, role, org, team_id, started_at, ended_at, reason "
    "FROM {db}.shifts FINAL ORDER BY person_id, shift_id"
)


def mismatches(client: Client, ref: reference.Reference) -> list[tuple[str, dict, dict, dict]]:
    reader = LocalReader(client)
    return [
        (cutoff.isoformat(), scope, got, want)
        for cutoff in CUTOFFS
        for scope in SCOPES
        for got in [metrics(reader, cutoff, ZONE, Scope(**scope))]
        for want in [reference.metrics(ref, cutoff, ZONE, scope)]
        if not same(got, want)
    ]


def settings_for(store: Client, store_url: str, data_dir: Path) -> Settings:
    return Settings(
        clickhouse_url=store_url,
        database=store.database,
        data_dir=data_dir,
        tz=str(ZONE),
        max_shift_hours=MAX.total_seconds() / 3600,
    )


def test_a_replay_from_the_store_equals_the_reference_at_every_cutoff_and_scope(
    store: Client, store_url: str, tmp_path: Path
) -> None:
    scenario = edge_scenario()
    RowWriter(store).write(run_core(scenario, NOW).rows)
    settle(store, before=NOW)
    ref = reference.build(scenario.topic_order(), MAX, NOW)
    assert mismatches(store, ref) == []  # the pipeline's store, as the other tests hold it
    live = store.database
    before = store.query(SHIFTS.format(db=live)).result_rows
    dlq = store.query("SELECT count() FROM dlq").result_rows[0][0]
    assert dlq > 0 and before
    # an alert raised and resolved long ago: history, kept as it is; the site's next
    # alert takes the next number
    (site,) = store.query("SELECT min(site_id) FROM site_versions").result_rows[0]
    store.insert(
        "alerts",
        [[f"understaffed:{site}:7", "understaffed", site, NOW - 1000 * MAX, {"marshal": 1}, 0,
          NOW - 999 * MAX, 1]],
        ["alert_id", "kind", "site_id", "opened_at", "short", "people", "resolved_at", "version"],
    )  # fmt: skip
    alerts = "SELECT * FROM alerts FINAL WHERE resolved_at IS NOT NULL ORDER BY alert_id"
    resolved = store.query(alerts).result_rows
    assert len(resolved) == 1

    said: list[str] = []
    report = replay(settings_for(store, store_url, tmp_path), say=said.append)
    try:
        assert report.swapped and report.not_accepted == {}
        assert (
            report.events
            == store.query(f"SELECT count() FROM {live}_replay.events FINAL").result_rows[0][0]
        )
        assert report.hours_settled > 0 and any("folded" in line for line in said)
        # the live database now reads the rebuilt tables; the replaced ones are kept aside
        assert store.query(SHIFTS.format(db=live)).result_rows == before
        assert store.query(SHIFTS.format(db=f"{live}_replay")).result_rows == before
        assert store.query("SELECT count() FROM dlq").result_rows[0][0] == dlq
        assert mismatches(store, ref) == []
        assert store.query(alerts).result_rows == resolved
        numbers = store.query(
            "SELECT toUInt32(splitByChar(':', alert_id)[3]) FROM alerts FINAL "
            "WHERE site_id = {site:String}",
            parameters={"site": site},
        ).result_rows
        assert sorted(numbers)[0] == (7,) and all(n > 7 for (n,) in sorted(numbers)[1:])
        # each shift counted once: one version of each, nothing it replaces
        versions = store.query(
            "SELECT count(), countIf(prev_reason != '') FROM shifts"
        ).result_rows[0]
        assert versions == (len(before), 0)
        # every site with versions has its status, stepped to now
        statuses = store.query("SELECT count() FROM site_status FINAL").result_rows[0][0]
        sites = store.query("SELECT uniqExact(site_id) FROM site_versions").result_rows[0][0]
        assert report.sites == sites == statuses
    finally:
        store.command(f"DROP DATABASE IF EXISTS {live}_replay")


def test_a_replay_twice_in_a_row_changes_no_number(
    store: Client, store_url: str, tmp_path: Path
) -> None:
    scenario = edge_scenario()
    RowWriter(store).write(run_core(scenario, NOW).rows)
    ref = reference.build(scenario.topic_order(), MAX, NOW)
    settings = settings_for(store, store_url, tmp_path)
    try:
        replay(settings, say=lambda _: None)
        replay(settings, say=lambda _: None)  # drops the first replay's leftovers first
        assert mismatches(store, ref) == []
    finally:
        store.command(f"DROP DATABASE IF EXISTS {store.database}_replay")


def test_a_replay_without_swap_leaves_the_live_tables_and_an_empty_store_is_refused(
    store: Client, store_url: str, tmp_path: Path
) -> None:
    settings = settings_for(store, store_url, tmp_path)
    nothing = Settings(**(settings.model_dump() | {"database": "no_such_db"}))
    with pytest.raises(ReplayError, match="no_such_db"):
        replay(nothing, say=lambda _: None)
    scenario = edge_scenario()
    RowWriter(store).write(run_core(scenario, NOW).rows)
    live = store.database
    try:
        report = replay(settings, swap=False, say=lambda _: None)
        assert not report.swapped
        rebuilt = store.query(SHIFTS.format(db=f"{live}_replay")).result_rows
        assert rebuilt == store.query(SHIFTS.format(db=live)).result_rows
        versions = "SELECT countIf(prev_reason != '') FROM {db}.shifts"
        assert store.query(versions.format(db=f"{live}_replay")).result_rows[0][0] == 0
        assert store.query(versions.format(db=live)).result_rows[0][0] > 0  # as it was
    finally:
        store.command(f"DROP DATABASE IF EXISTS {live}_replay")


@pytest.mark.slow
def test_a_replay_from_the_topics_equals_the_reference(worker: Worker) -> None:
    """Every record on the input topics read again from their beginning, validated and
    deduplicated as the worker does: rejected ones to the DLQ again, each once."""
    worker.start()
    scenario = edge_scenario()
    ref = reference.build(scenario.topic_order(), MAX, datetime.now(UTC))
    # and, after every cutoff, a check-in older than what its person's state still holds
    # (more than 72 h before their newest): too late (contract §3), rejected to the DLQ by
    # the worker, and by the replay again
    scenario.add("events", cin("LATE", t("09:00", 21), "late-1", team=None))
    scenario.add("events", cout("LATE", t("10:00", 21), "late-2"))
    scenario.add("events", cin("LATE", t("09:00", 25), "late-3", team=None))
    scenario.add("events", cin("LATE", t("08:00", 21), "late-4", team=None))
    produce(worker, scenario)
    last = CUTOFFS[-1]
    want = reference.metrics(ref, last, ZONE) | {"dlq": ref.dlq + 1}
    worker.metrics_settle(last, want, seconds=60)
    worker.stop()
    out = worker.cli("replay", "--from", "topic")
    assert f"{ref.dlq + 1} to the DLQ" in out, out
    store = StoreProcess(Path(worker.env["MUSTER_DATA_DIR"]))
    try:
        client = connect(store.start(), worker.settings.database, create=False)
        ref.dlq += 1
        assert mismatches(client, ref) == []
        late = client.query("SELECT error FROM dlq WHERE key = 'LATE'").result_rows
        assert len(late) == 1 and "72 h" in late[0][0], late
    finally:
        store.stop()


def test_a_replay_refuses_while_workers_run_on_the_data_dir(
    store: Client, store_url: str, tmp_path: Path
) -> None:
    """`muster replay` while `muster up` still runs would lose what the workers write."""
    settings = settings_for(store, store_url, tmp_path)
    folder = tmp_path / "workers" / "1"
    folder.mkdir(parents=True)
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "worker"])
    cmdline = Path(f"/proc/{alive.pid}/cmdline")
    while b"worker" not in cmdline.read_bytes():  # set once the new program has started
        time.sleep(0.01)
    try:
        (folder / "worker.json").write_text(json.dumps({"url": "x", "pid": alive.pid}))
        with pytest.raises(ReplayError, match=f"pid {alive.pid}.*stop them first"):
            replay(settings, say=lambda _: None)
    finally:
        alive.kill()
        alive.wait()
    # a worker file whose process is gone does not stop it
    (tmp_path / "worker.json").write_text(json.dumps({"url": "x", "pid": alive.pid}))
    RowWriter(store).write(run_core(edge_scenario(), NOW).rows)
    try:
        assert replay(settings, say=lambda _: None).swapped
    finally:
        store.command(f"DROP DATABASE IF EXISTS {store.database}_replay")
