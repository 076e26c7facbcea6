"""The schema rendered for a ClickHouse cluster (`muster migrate --cluster NAME --print`):
every statement parses in the engine, every MergeTree is Replicated, every CREATE runs ON
CLUSTER, each table is read through a Distributed table; the single-node rendering is the
files themselves, which every test store is made of."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from clickhouse_connect.driver.client import Client

from sinks.cluster import Cluster, script, statements
from sinks.store import StoreError, migrations, schema_objects

CLUSTER = Cluster("muster_cluster", "muster")


@pytest.fixture(scope="module")
def printed() -> list[str]:
    """`muster migrate --cluster muster_cluster --print`, cut at its `;` line ends."""
    out = subprocess.run(
        [sys.executable, "-m", "streams.cli", "migrate", "--cluster", "muster_cluster", "--print"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out == script(CLUSTER)
    return [s.strip() for s in out.split(";\n") if s.strip()]


def parsed(store: Client, statement: str) -> str:
    rows = store.query("SELECT formatQuery({q:String})", parameters={"q": statement})
    return str(rows.result_rows[0][0])


def test_every_printed_statement_parses_in_the_engine(store: Client, printed) -> None:
    for statement in printed:
        assert parsed(store, statement), statement[:120]
    # the last records every migration applied: a worker starting on it applies none
    assert printed[-1].startswith("INSERT INTO schema_migrations (version, name) VALUES")
    assert all(f"({m.version}, '{m.name}')" in printed[-1] for m in migrations())
    with pytest.raises(Exception, match="Syntax error"):
        parsed(store, "CREATE TABLE x ON CLUSTER (a String)")  # a bad one does not


def test_every_create_runs_on_the_cluster_and_every_mergetree_is_replicated(printed) -> None:
    creates = [s for s in printed if s.startswith("CREATE")]
    assert len(creates) > len(schema_objects())
    for statement in creates:
        head = statement.split("(")[0].split(" AS ")[0]
        assert " ON CLUSTER muster_cluster" in head, head
    engines = [m[1] for s in creates for m in re.finditer(r"ENGINE = (\w+)", s)]
    merge_trees = [e for e in engines if "MergeTree" in e]
    assert merge_trees and all(e.startswith("Replicated") for e in merge_trees), engines
    for statement in creates:
        if "Replicated" in statement:
            assert "'/clickhouse/tables/{uuid}/{shard}', '{replica}'" in statement
            assert "non_replicated" not in statement


def test_each_table_is_local_on_every_replica_and_distributed_under_its_own_name(
    printed,
) -> None:
    tables = [o.name for o in schema_objects() if o.kind == "tables"]
    by_name = {m[1]: s for s in printed if (m := re.match(r"CREATE TABLE IF NOT EXISTS (\w+)", s))}
    for name in [*tables, "schema_migrations"]:
        assert f"{name}_local" in by_name, name
        if "ENGINE = Null" in by_name[f"{name}_local"]:
            continue  # a materialized view's input, which no view reads
        distributed = by_name[name]
        assert f"ENGINE = Distributed('muster_cluster', 'muster', '{name}_local', " in distributed
    # one key's rows on one shard: ReplacingMergeTree keeps one row per key
    assert "cityHash64(person_id))" in by_name["shifts"]
    assert "cityHash64(person_id))" in by_name["events"]
    assert "cityHash64(alert_id))" in by_name["alerts"]


def test_materialized_views_read_and_feed_the_local_tables(printed) -> None:
    views = {
        m[1]: s
        for s in printed
        if (m := re.match(r"CREATE MATERIALIZED VIEW IF NOT EXISTS (\w+)", s))
    }
    assert len(views) == len([o for o in schema_objects() if o.kind == "materialized"])
    assert "TO shift_deltas_local AS" in views["shift_deltas_mv"]
    assert "FROM shifts_local" in views["shift_deltas_mv"]
    # what a view joins is read whole, through the Distributed table
    filed = views["filed_shifts_mv"]
    assert "FROM shift_deltas_local" in filed
    assert re.search(r"FROM site_versions\b(?!_local)", filed)
    for statement in printed:
        if statement.startswith("CREATE OR REPLACE VIEW"):
            assert "_local" not in statement, statement[:80]  # views read the whole cluster


def test_the_single_node_rendering_is_the_schema_files_every_store_is_made_of(
    store: Client,
) -> None:
    rendered = statements()
    assert [s.text for s in rendered] == [o.text.strip().rstrip(";") for o in schema_objects()]
    assert "ON CLUSTER" not in "".join(s.text for s in rendered)
    made = store.query(
        "SELECT count() FROM system.tables WHERE database = currentDatabase() "
        "AND name != 'schema_migrations'"
    ).result_rows[0][0]
    assert made == len(rendered)


def test_names_that_are_not_identifiers_are_refused_by_name() -> None:
    with pytest.raises(StoreError, match="'prod-cluster'"):
        Cluster("prod-cluster", "muster")
    result = subprocess.run(
        [sys.executable, "-m", "streams.cli", "migrate", "--print"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1 and "--cluster NAME" in result.stderr


def test_a_store_made_of_the_rendered_schema_answers_as_the_reference(tmp_path) -> None:
    """The rendered schema run, not only parsed: Distributed tables over the local ones,
    materialized views on the local tables, views reading through the Distributed tables,
    on a cluster of one shard on this host (tests/cluster_store.py). The edge scenario,
    written twice as a retried batch, gives the reference's metrics at every cutoff and
    scope."""
    done = subprocess.run(
        [sys.executable, "-m", "tests.cluster_store", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    engines = result["engines"]
    assert engines["shifts"] == "Distributed" and engines["shifts_local"] == "ReplacingMergeTree"
    assert engines["filed_shifts_local"] == "Null" and "filed_shifts" not in engines
    assert result["settled"] > 0 and result["checked"] > 100
    assert result["mismatches"] == [], result["mismatches"][:2]
