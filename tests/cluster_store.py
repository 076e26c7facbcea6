"""A store made from the schema as `muster migrate --cluster` renders it, on the embedded
engine: `python -m tests.cluster_store FOLDER` prints, as JSON, where its metrics differ
from the reference on the edge scenario (tests/sinks/test_cluster.py runs it).

The engine is given a cluster `muster_cluster` of one shard whose one replica is this
host (a replica on the local host's TCP port is queried in-process), so the rendered
Distributed tables, the materialized views on the local tables and the views reading
through Distributed tables run as they would on a cluster. Two things a cluster needs
and the embedded engine lacks are left out: `ON CLUSTER` (it queues the statement in
Keeper) and the Replicated engines' Keeper paths (each becomes its plain MergeTree).
Its own process: a chdb engine takes its configuration when the process first opens it.
"""

from __future__ import annotations

import json
import re
import sys
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

CONFIG = """<clickhouse>
    <tcp_port>9000</tcp_port>
    <remote_servers>
        <muster_cluster>
            <shard><replica><host>localhost</host><port>9000</port></replica></shard>
        </muster_cluster>
    </remote_servers>
    <macros><shard>01</shard><replica>here</replica></macros>
</clickhouse>
"""
NOW = datetime(2022, 3, 20, tzinfo=UTC)
ZONE = ZoneInfo("Asia/Shanghai")


def local(statement: str) -> str:
    """A rendered statement as the embedded engine can run it: no `ON CLUSTER`, and plain
    MergeTree engines for the Replicated ones, deduplicating retried inserts as the
    Replicated ones do (in Keeper)."""
    statement = statement.replace(" ON CLUSTER muster_cluster", "")
    statement = statement.replace(
        "replicated_deduplication_window", "non_replicated_deduplication_window"
    )
    return re.sub(r"Replicated(\w*)MergeTree\('[^']*', '[^']*'(?:, )?", r"\1MergeTree(", statement)


def main(folder: Path) -> dict[str, object]:
    import chdb

    from sinks.cluster import Cluster, script
    from sinks.coverage import settle
    from sinks.queries import Scope, metrics
    from sinks.reader import LocalReader
    from sinks.store import connect
    from sinks.writer import RowWriter
    from tests import reference
    from tests.scenarios import CUTOFFS, MAX, SCOPES, edge_scenario, run_core
    from tests.sinks.test_metrics import same

    config = folder / "config.xml"
    config.write_text(CONFIG)
    engine = chdb.connect(f"{folder / 'store'}?config-file={config}")  # noqa: F841 (kept open)
    client = connect(f"chdb://{folder / 'store'}", "default", create=False)
    client.set_client_setting("distributed_foreground_insert", 1)  # as users.xml sets it
    for statement in script(Cluster("muster_cluster", "muster")).split(";\n\n"):
        if statement.startswith("USE "):
            client.database = "muster"
        elif statement.strip():
            client.command(local(statement))
    engines = dict(
        client.query("SELECT name, engine FROM system.tables WHERE database = 'muster'").result_rows
    )

    scenario = edge_scenario()
    rows = run_core(scenario, NOW).rows
    writer = RowWriter(client)
    writer.write(rows)
    writer.write(rows)  # written twice (a retried batch): counted once
    settled = settle(client, before=NOW)
    ref = reference.build(scenario.topic_order(), MAX, NOW)
    reader = LocalReader(client)
    wrong = [
        [cutoff.isoformat(), scope, got, want]
        for cutoff in CUTOFFS
        for scope in SCOPES
        for got in [metrics(reader, cutoff, ZONE, Scope(**scope))]
        for want in [reference.metrics(ref, cutoff, ZONE, scope)]
        if not same(got, want)
    ]
    return {
        "engines": engines,
        "settled": settled,
        "checked": len(CUTOFFS) * len(SCOPES),
        "mismatches": wrong,
    }


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1])), default=str))
