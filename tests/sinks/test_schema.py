"""The schema as it is now (sinks/schema) against the migrations that upgrade older stores:
a store upgraded from the first migration equals one created from the files."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from clickhouse_connect.driver.client import Client

from sinks.metric_reads import GENERATED
from sinks.store import connect, migrate, migrations, schema_objects


@pytest.fixture
def two(store_url: str) -> Iterator[tuple[Client, Client]]:
    names = [f"t_{uuid.uuid4().hex[:12]}" for _ in range(2)]
    clients = [connect(store_url, name) for name in names]
    yield clients[0], clients[1]
    for client, name in zip(clients, names, strict=True):
        client.command(f"DROP DATABASE IF EXISTS {name}")


def described(client: Client) -> dict[str, object]:
    """Every object's engine and CREATE text (the database name taken out), and every
    column's type, default and position."""
    db = client.database
    tables = client.query(
        "SELECT name, engine, replaceAll(create_table_query, {prefix:String}, '') "
        "FROM system.tables WHERE database = {db:String} ORDER BY name",
        parameters={"db": db, "prefix": f"{db}."},
    ).result_rows
    columns = client.query(
        "SELECT table, name, type, default_kind, default_expression, position "
        "FROM system.columns WHERE database = {db:String} ORDER BY table, position",
        parameters={"db": db},
    ).result_rows
    return {"tables": tables, "columns": columns}


def test_a_store_upgraded_from_the_first_migration_equals_one_created_fresh(two) -> None:
    fresh, upgraded = two
    created = migrate(fresh)  # a new store: created from sinks/schema
    assert len(created) == len(schema_objects())
    for migration in migrations():  # an old store, brought up to date one version at a time
        migrate(upgraded, upto=migration.version)
    want, got = described(upgraded), described(fresh)
    assert [t[0] for t in got["tables"]] == [t[0] for t in want["tables"]]
    for mine, theirs in zip(got["tables"], want["tables"], strict=True):
        assert mine == theirs, mine[0]
    assert got["columns"] == want["columns"]
    # both know every migration applied: the next upgrade starts from the same place
    versions = "SELECT version FROM schema_migrations FINAL ORDER BY version"
    assert fresh.query(versions).result_rows == upgraded.query(versions).result_rows


def test_each_object_is_defined_once_in_a_file_named_after_it() -> None:
    for item in schema_objects():
        creates = [
            line
            for line in item.text.splitlines()
            if line.startswith("CREATE") and not line.lstrip().startswith("--")
        ]
        assert len(creates) == 1, item.name
        assert f" {item.name}" in creates[0], (item.name, creates[0])


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_generated_views_are_the_checked_in_files(repo_root, name) -> None:
    """metrics_tz and org_hours_at (from the API's reads) and on_post_series_by_city_at
    (from on_post_series_at.sql) are what `python -m sinks.metric_reads` writes."""
    path = repo_root / "sinks" / "schema" / "views" / f"{name}.sql"
    assert path.read_text(encoding="utf-8") == GENERATED[name](), (
        f"{path} stale: run `python -m sinks.metric_reads`"
    )
