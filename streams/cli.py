"""`muster` command line (SPEC §5)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from schemas.errors import MusterError
from schemas.events import parse_rfc3339
from schemas.metrics import BY_NAME
from sinks.queries import Scope, metrics
from streams.settings import Settings


def _cutoff(text: str) -> datetime:
    try:
        return parse_rfc3339(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--at {text!r} {exc}") from exc


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of 1 or more")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="muster", description="Live volunteer deployment numbers for command centres."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = sub.add_parser("up", help="run broker, worker and simulator on this machine")
    up.add_argument("--no-simulator", action="store_true", help="leave input topics to others")
    up.add_argument(
        "--workers",
        type=_positive,
        default=1,
        metavar="N",
        help="pipeline workers sharing the partitions (default 1; ports MUSTER_WORKER_PORT on)",
    )
    _simulation_options(up)

    sub.add_parser("broker", help="run the embedded Kafka broker (Tansu, topics kept on disk)")
    sub.add_parser("worker", help="run one pipeline worker")
    sub.add_parser(
        "store",
        help="serve the embedded store over ClickHouse's HTTP interface (MUSTER_STORE_PORT)",
    )
    mg = sub.add_parser("migrate", help="create or upgrade the store's tables and views")
    mg.add_argument(
        "--cluster",
        metavar="NAME",
        help="for the ClickHouse cluster NAME (remote_servers): Replicated tables, ON CLUSTER, "
        "Distributed tables over them",
    )
    mg.add_argument(
        "--print",
        action="store_true",
        dest="print_only",
        help="print the statements instead of applying them (with --cluster)",
    )

    rp = sub.add_parser(
        "replay",
        help="rebuild shifts, rollups, site status and alerts from the store's accepted "
        "events into a fresh database, then swap it in (workers stopped)",
    )
    rp.add_argument(
        "--from",
        dest="source",
        choices=("store", "topic"),
        default="store",
        help="the store's accepted events (default; after the topics' retention has passed), "
        "or every record on the input topics from their beginning",
    )
    rp.add_argument(
        "--no-swap",
        action="store_true",
        help="leave the rebuilt tables in MUSTER_DATABASE_replay, the live ones as they are",
    )

    im = sub.add_parser(
        "import",
        help="send a JSONL file of events (history from another system) to the topics, "
        "invalid lines to the DLQ with their reason",
    )
    im.add_argument("file", type=Path, metavar="FILE.jsonl", help="one event per line; - for stdin")

    m = sub.add_parser("metrics", help="every SPEC metric at a cutoff")
    m.add_argument("--at", type=_cutoff, help="cutoff, RFC 3339 (default: now)")
    for name in Scope.__dataclass_fields__:
        flag = {"site_id": "site", "team_id": "team"}.get(name, name)
        m.add_argument(f"--{flag}", dest=name, metavar=flag.upper())
    m.add_argument("--json", action="store_true", help="print one JSON object")

    b = sub.add_parser("bulletin", help="the command-centre bulletin")
    b.add_argument("--at", type=_cutoff, help="cutoff, RFC 3339 (default: now)")
    b.add_argument("--lang", choices=("zh", "en"), default="zh")
    b.add_argument(
        "--png", type=Path, metavar="FILE", help="also draw the one-page picture bulletin here"
    )

    q = sub.add_parser("sql", help="run a read-only query against the store")
    q.add_argument("query")
    q.add_argument("--format", choices=("table", "json", "tsv"), default="table")

    s = sub.add_parser("simulate", help="produce a simulated city into the input topics")
    _simulation_options(s)

    n = sub.add_parser("bench", help="build a synthetic national month and time every metric")
    n.add_argument("--scale", type=int, default=100_000_000, help="shifts (default 100M)")
    n.add_argument("--data-dir", type=Path, required=True, help="a fresh directory for the store")
    n.add_argument("--cutoffs", type=int, default=40, help="cutoffs timed per metric kind")
    n.add_argument("--verify", type=int, default=3, help="answers checked by a full re-read")
    n.add_argument("--seed", type=int, default=1)
    n.add_argument(
        "--days",
        type=int,
        default=30,
        help="days the shifts span (default 30; e.g. --scale 10000000 --days 3 has a "
        "national month's density per day in a tenth of the build time)",
    )
    n.add_argument("--time-only", action="store_true", help="time a store built before")

    sub.add_parser("gateway", help="run the ingest gateway: POST /api/events for site apps")

    t = sub.add_parser("token", help="the gateway's tokens: add, list, revoke")
    tsub = t.add_subparsers(dest="action", required=True)
    ta = tsub.add_parser("add", help="make a token; it is printed once, alone on the last line")
    ta.add_argument("--name", required=True, help="who holds it, e.g. site-1 or registry-app")
    ta.add_argument(
        "--site", action="append", default=[], metavar="S", help="a site it may post for"
    )
    ta.add_argument("--registry", action="store_true", help="may post registered events")
    ta.add_argument("--admin", action="store_true", help="may post anything, site_upserted too")
    tsub.add_parser("list", help="names and rights (never the tokens)")
    tr = tsub.add_parser("revoke", help="remove a token; gateways refuse it at once")
    tr.add_argument("name")

    from streams.emit import add_arguments as emit_arguments

    emit_arguments(sub.add_parser("emit", help="send events to Kafka or a gateway"))

    d = sub.add_parser("dashboards", help="Grafana dashboards, data source and alert rules")
    dsub = d.add_subparsers(dest="action", required=True)
    db = dsub.add_parser("build", help="write deploy/grafana/ from dashboards/ (MUSTER_TZ as $tz)")
    db.add_argument(
        "--out", type=Path, default=Path("deploy/grafana"), help="(default deploy/grafana)"
    )
    dp = dsub.add_parser("push", help="create or update them in a running Grafana (HTTP API)")
    dp.add_argument("--url", required=True, help="Grafana's URL, e.g. http://grafana:3000")
    dp.add_argument("--token", required=True, help="a service account token (Editor or Admin)")
    dp.add_argument("--clickhouse-host", default="clickhouse", help="as Grafana reaches it")
    dp.add_argument("--clickhouse-port", type=int, default=9000, help="native protocol port")
    dp.add_argument("--clickhouse-user", default="default")
    dp.add_argument(
        "--clickhouse-password",
        default=os.environ.get("CLICKHOUSE_PASSWORD", ""),
        help="(default: $CLICKHOUSE_PASSWORD)",
    )
    dp.add_argument("--clickhouse-secure", action="store_true", help="TLS to ClickHouse")
    return parser


def _simulation_options(parser: argparse.ArgumentParser) -> None:
    from streams.sim.simulator import add_arguments

    add_arguments(parser)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("kafka").setLevel(logging.WARNING)
    try:
        settings = Settings()
        return COMMANDS[args.command](settings, args)
    except ValidationError as exc:
        print(f"muster: bad setting: {exc}", file=sys.stderr)
        return 2
    except MusterError as exc:
        print(f"muster: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `muster … | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def cmd_metrics(settings: Settings, args: argparse.Namespace) -> int:
    from sinks.reader import open_reader

    at = args.at or datetime.now(settings.zone)
    scope = Scope(**{name: getattr(args, name) for name in Scope.__dataclass_fields__})
    result = metrics(open_reader(settings), at, settings.zone, scope)
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
    else:
        print_metrics(result)
    return 0


NULL = "—"  # a value that does not exist (SQL NULL, JSON null), in tables


def print_metrics(result: dict[str, Any]) -> None:
    """One line per metric: name, value (— for null), and its labels."""
    rows = [(name, NULL if value is None else str(value)) for name, value in result.items()]
    name_w = max(len(n) for n, _ in rows)
    value_w = max(len(v) for _, v in rows)
    for name, shown in rows:
        metric = BY_NAME.get(name)
        label = f"{metric.zh} · {metric.en}" if metric else ""
        print(f"{name:<{name_w}}  {shown:>{value_w}}  {label}".rstrip())


def cmd_bulletin(settings: Settings, args: argparse.Namespace) -> int:
    from sinks.reader import open_reader
    from streams.bulletin import bulletin_en, bulletin_zh

    at = args.at or datetime.now(settings.zone)
    reader = open_reader(settings)
    result = metrics(reader, at, settings.zone, Scope())
    render = bulletin_zh if args.lang == "zh" else bulletin_en
    print(render(result, at.astimezone(settings.zone)))
    if args.png:
        from streams import picture

        data = picture.gather(reader, at, settings.zone, figures=result)
        zone_at = at.astimezone(settings.zone)
        picture.render(data, zone_at, args.lang, args.png, settings.coverage_target)
        print(f"picture bulletin: {args.png}")
    return 0


def cmd_sql(settings: Settings, args: argparse.Namespace) -> int:
    from sinks.reader import open_reader

    result = open_reader(settings).query(args.query)
    if args.format == "json":
        for row in result.dicts():
            print(json.dumps(row, ensure_ascii=False))
    elif args.format == "tsv":
        print("\t".join(result.columns))
        for line in result.rows:
            print("\t".join("" if v is None else str(v) for v in line))
    else:
        print_table(result.columns, result.rows)
    return 0


def print_table(columns: list[str], rows: list[list[object]]) -> None:
    cells = [columns, *[[NULL if v is None else str(v) for v in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    for n, row in enumerate(cells):
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
        if n == 0:
            print("  ".join("-" * w for w in widths))
    print(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")


def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    from sinks.store import StoreError, connect, lock_embedded, migrate, redact

    if args.cluster:
        return _migrate_cluster(settings, args.cluster, args.print_only)
    if args.print_only:
        raise StoreError("--print renders a cluster's schema: give --cluster NAME")
    if settings.store_is_embedded:
        lock_embedded(settings.data_dir)
    applied = migrate(connect(settings.store_url, settings.database))
    where = redact(settings.store_url)
    print(f"applied {', '.join(applied)} to {where}" if applied else f"{where} is up to date")
    return 0


def _migrate_cluster(settings: Settings, name: str, print_only: bool) -> int:
    from sinks.cluster import Cluster, migrate_cluster, script
    from sinks.store import StoreError, connect, redact

    cluster = Cluster(name, settings.database)
    if print_only:
        sys.stdout.write(script(cluster))
        return 0
    if settings.store_is_embedded:
        raise StoreError(
            "--cluster needs a ClickHouse server of the cluster: set MUSTER_CLICKHOUSE_URL"
        )
    created = migrate_cluster(connect(settings.store_url, "default", create=False), cluster)
    where = f"{settings.database} on cluster {name} via {redact(settings.store_url)}"
    print(f"created {len(created)} objects in {where}" if created else f"{where} is up to date")
    return 0


def cmd_replay(settings: Settings, args: argparse.Namespace) -> int:
    from streams.replay import replay

    say = lambda line: print(line, file=sys.stderr)  # noqa: E731
    report = replay(settings, swap=not args.no_swap, say=say, source=args.source)
    skipped = ", ".join(f"{n} {status}" for status, n in report.not_accepted.items())
    read = (
        f"{report.records:,} records ({report.duplicates:,} repeats, {report.rejected:,} to "
        "the DLQ): "
        if args.source == "topic"
        else ""
    )
    print(
        f"replayed {read}{report.events:,} events of {report.people:,} people into "
        f"{report.rows:,} rows, {report.sites:,} sites, {report.alerts:,} alerts, "
        f"{report.hours_settled:,} hours of coverage in {report.seconds:.1f} s"
        + (f" ({skipped}: not replayed)" if skipped else "")
        + ("" if report.swapped else f"; not swapped: see {settings.database}_replay")
    )
    return 0


def cmd_import(settings: Settings, args: argparse.Namespace) -> int:
    from streams.importer import run_import

    report = run_import(settings, args.file, say=lambda line: print(line, file=sys.stderr))
    sent = ", ".join(f"{n:,} to {settings.topic(kind)}" for kind, n in sorted(report.sent.items()))
    print(
        f"imported {report.lines:,} lines in {report.seconds:.1f} s: {sent or 'none valid'}; "
        f"{report.rejected:,} invalid to {settings.topic('dlq')}"
    )
    return 1 if report.lines and report.rejected == report.lines else 0


def cmd_broker(settings: Settings, args: argparse.Namespace) -> int:
    from streams.launcher import run_broker

    return run_broker(settings)


def cmd_store(settings: Settings, args: argparse.Namespace) -> int:
    from sinks.server import serve

    return serve(settings)


def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    from streams.worker import run_worker

    run_worker(settings)
    return 0


def cmd_up(settings: Settings, args: argparse.Namespace) -> int:
    from streams.launcher import run_up

    return run_up(settings, args)


def cmd_simulate(settings: Settings, args: argparse.Namespace) -> int:
    from streams.sim.simulator import produce_live, run_simulation

    produce_live(settings, run_simulation(settings, args))
    return 0


def cmd_bench(settings: Settings, args: argparse.Namespace) -> int:
    from streams.sim.national import build, time_queries

    if not args.time_only:
        build(args.data_dir, args.scale, args.seed, settings.zone, days=args.days)
    time_queries(args.data_dir, args.cutoffs, args.verify, args.seed, settings.zone)
    print(
        f"figures in {args.data_dir / 'bench.json'}; serve the store with "
        f"MUSTER_DATA_DIR={args.data_dir} muster up --no-simulator"
    )
    return 0


def cmd_dashboards(settings: Settings, args: argparse.Namespace) -> int:
    if args.action == "push":
        from dashboards.push import ClickHouse, push

        ch = ClickHouse(
            host=args.clickhouse_host,
            port=args.clickhouse_port,
            user=args.clickhouse_user,
            password=args.clickhouse_password,
            database=settings.database,
            secure=args.clickhouse_secure,
        )
        push(args.url.rstrip("/"), args.token, str(settings.zone), ch)
        return 0
    from dashboards.provision import write

    for path in write(args.out, str(settings.zone)):
        print(path)
    return 0


def cmd_gateway(settings: Settings, args: argparse.Namespace) -> int:
    from streams.web.gateway import run_gateway

    run_gateway(settings)
    return 0


def cmd_token(settings: Settings, args: argparse.Namespace) -> int:
    from streams.web.tokens import TokenFile

    tokens = TokenFile(settings.tokens_path)
    if args.action == "add":
        token = tokens.add(args.name, args.site, args.registry, args.admin)
        entry = next(e for e in tokens.entries() if e.rights.name == args.name)
        print(
            f"token {args.name!r} ({entry.rights.describe()}) added to {tokens.path}; it is "
            "shown once, here: send it as 'Authorization: Bearer <token>'",
            file=sys.stderr,
        )
        print(token)
    elif args.action == "list":
        rows = [[e.rights.name, e.rights.describe(), e.created] for e in tokens.entries()]
        print_table(["name", "rights", "created"], rows)  # type: ignore[arg-type]
    else:
        tokens.revoke(args.name)
        print(f"token {args.name!r} revoked; gateways refuse it from their next request")
    return 0


def cmd_emit(settings: Settings, args: argparse.Namespace) -> int:
    from streams.emit import run_emit

    return run_emit(settings, args)


COMMANDS = {
    "up": cmd_up,
    "broker": cmd_broker,
    "worker": cmd_worker,
    "store": cmd_store,
    "migrate": cmd_migrate,
    "replay": cmd_replay,
    "import": cmd_import,
    "metrics": cmd_metrics,
    "bulletin": cmd_bulletin,
    "sql": cmd_sql,
    "simulate": cmd_simulate,
    "bench": cmd_bench,
    "dashboards": cmd_dashboards,
    "gateway": cmd_gateway,
    "token": cmd_token,
    "emit": cmd_emit,
}


if __name__ == "__main__":
    sys.exit(main())
