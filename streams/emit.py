"""`muster emit`: events from arguments or a JSONL file, through the site SDK.

    muster emit check-in --person P --site S --role guide --org union
    muster emit check-out --person P [--site S]
    muster emit register --person P --org O [--team T]
    muster emit site --site S --name N --city C --district D --require marshal=2 ...
    muster emit --file events.jsonl [--url URL --token TOKEN]

Kafka (MUSTER_KAFKA_BOOTSTRAP) unless `--url` names a gateway. Events wait in a spool
(`--spool`, default MUSTER_DATA_DIR/emit-spool.sqlite) until they are taken, so what could
not be sent goes out with the next `muster emit`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from schemas.errors import InvalidEvent, MusterError
from streams.sdk.emitter import Emitter, Prepared, now_rfc3339
from streams.sdk.transport import Refused
from streams.settings import Settings

KINDS = {
    "check-in": "check_in",
    "check-out": "check_out",
    "register": "registered",
    "site": "site_upserted",
}
CHUNK = 1000


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("kind", nargs="?", choices=sorted(KINDS), help="one event from arguments")
    p.add_argument("--file", type=Path, help="a JSONL file of events ('-' for stdin)")
    p.add_argument("--person", help="person_id")
    p.add_argument("--site", help="site_id")
    p.add_argument("--role", help="role (check-in)")
    p.add_argument("--org", help="org (check-in, register)")
    p.add_argument("--team", help="team_id (check-in, register)")
    p.add_argument("--ts", help="event time, RFC 3339 (default: now)")
    p.add_argument("--id", dest="event_id", help="event_id (default: derived from the event)")
    p.add_argument("--name", help="site name (site)")
    p.add_argument("--city", help="(site)")
    p.add_argument("--district", help="(site)")
    p.add_argument("--street", help="(site)")
    p.add_argument("--community", help="(site)")
    p.add_argument("--site-kind", help="e.g. testing_site (site)")
    p.add_argument(
        "--require",
        action="append",
        default=[],
        metavar="ROLE=N",
        help="a staffing minimum (site; repeatable)",
    )
    p.add_argument("--inactive", action="store_true", help="the site is not active (site)")
    p.add_argument("--lat", type=float, help="(site)")
    p.add_argument("--lon", type=float, help="(site)")
    p.add_argument("--url", help="send to this ingest gateway instead of Kafka")
    p.add_argument("--token", help="the gateway token (default: $MUSTER_TOKEN)")
    p.add_argument("--spool", type=Path, help="(default MUSTER_DATA_DIR/emit-spool.sqlite)")
    p.add_argument(
        "--timeout", type=float, default=30, help="seconds to keep trying to send (default 30)"
    )


def event_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """One event from the command line; a missing argument is named."""
    kind = KINDS[args.kind]
    need = {
        "check_in": ["person", "site", "role", "org"],
        "check_out": ["person"],
        "registered": ["person", "org"],
        "site_upserted": ["site", "name", "city", "district"],
    }[kind]
    missing = [f"--{n}" for n in need if getattr(args, n) is None]
    if missing:
        raise MusterError(f"emit {args.kind} needs {', '.join(missing)}")
    fields = {
        "person_id": args.person,
        "site_id": args.site,
        "role": args.role,
        "org": args.org,
        "team_id": args.team,
    }
    if kind == "site_upserted":
        fields = {
            "site_id": args.site,
            "name": args.name,
            "city": args.city,
            "district": args.district,
            "street": args.street,
            "community": args.community,
            "kind": args.site_kind,
            "requirements": _requirements(args.require),
            "active": not args.inactive,
            "lat": args.lat,
            "lon": args.lon,
        }
    allowed = {
        "check_in": {"person_id", "site_id", "role", "org", "team_id"},
        "check_out": {"person_id", "site_id"},
        "registered": {"person_id", "org", "team_id"},
    }.get(kind)
    event = {"type": kind, "ts": args.ts or now_rfc3339()}
    if args.event_id:
        event["event_id"] = args.event_id
    return event | {
        k: v for k, v in fields.items() if v is not None and (allowed is None or k in allowed)
    }


def _requirements(items: list[str]) -> dict[str, int]:
    out = {}
    for item in items:
        role, _, count = item.partition("=")
        if not role or not count.isdigit():
            raise MusterError(f"--require {item!r}: use ROLE=N, e.g. --require marshal=2")
        out[role] = int(count)
    return out


def run_emit(settings: Settings, args: argparse.Namespace) -> int:
    if (args.kind is None) == (args.file is None):
        raise MusterError("emit needs an event kind (check-in, check-out, ...) or --file F")
    token = args.token or settings.token
    if args.url and not token:
        raise MusterError("--url needs --token (or MUSTER_TOKEN): see `muster token add`")
    spool = args.spool or settings.data_dir / "emit-spool.sqlite"
    emitter = Emitter(
        spool,
        bootstrap=None if args.url else settings.kafka_bootstrap,
        url=args.url,
        token=token,
        topic_prefix=settings.topic_prefix,
        kafka_options=settings.kafka_options(),
        background=False,
        on_rejected=lambda value, why: print(
            f"emit: rejected to the DLQ: {why}: {value[:200].decode('utf-8', 'replace')}",
            file=sys.stderr,
        ),
    )
    invalid = 0
    try:
        waiting = emitter.pending
        if waiting:
            print(
                f"emit: {count(waiting, 'event')} from an earlier run wait in {spool}; sent first",
                file=sys.stderr,
            )
        if args.file is None:
            emitter.emit(event_from_args(args))
        else:
            invalid = _emit_file(emitter, args.file, args.timeout)
        left = emitter.flush(args.timeout)
    except Refused as exc:
        print(
            f"emit: {exc}\nemit: {count(emitter.pending, 'event')} wait in {spool}; they go "
            "out with the next `muster emit` that may send them (or delete that file to drop "
            "them)",
            file=sys.stderr,
        )
        emitter.close(timeout=0)
        return 1
    where = args.url or f"Kafka at {settings.kafka_bootstrap}"
    rejected = (
        f", {count(emitter.rejected, 'event')} rejected to the DLQ" if emitter.rejected else ""
    )
    print(f"emit: {count(emitter.sent, 'event')} sent to {where}{rejected}", file=sys.stderr)
    emitter.close(timeout=0)
    if left:
        print(
            f"emit: {count(left, 'event')} could not be sent ({emitter.last_error}); they wait in "
            f"{spool} and go out with the next `muster emit`",
            file=sys.stderr,
        )
        return 3
    if invalid:
        print(f"emit: {count(invalid, 'invalid line')} not sent (see above)", file=sys.stderr)
        return 1
    return 0


def count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _emit_file(emitter: Emitter, path: Path, timeout: float) -> int:
    """Spool and send a JSONL file in chunks, with progress once a second; return how many
    lines were invalid (each is named, with its reason, and not sent)."""
    source: TextIO = sys.stdin if str(path) == "-" else path.open(encoding="utf-8")
    invalid, total, reachable = 0, 0, True
    started = shown = time.monotonic()
    chunk: list[Prepared] = []
    with source:
        for number, line in enumerate(source, 1):
            if not line.strip():
                continue
            total += 1
            try:
                data = json.loads(line)
                if not isinstance(data, dict):
                    raise InvalidEvent(f"must be a JSON object, got {type(data).__name__}")
                chunk.append(emitter.prepare(data))
            except (InvalidEvent, json.JSONDecodeError) as exc:
                invalid += 1
                print(f"emit: {path}:{number}: {exc}", file=sys.stderr)
            if len(chunk) >= CHUNK:
                emitter.emit_prepared(chunk)
                chunk = []
                if reachable:
                    reachable = emitter.flush(timeout=0) == 0
            if time.monotonic() - shown >= 1:
                shown = time.monotonic()
                _progress(emitter, total, started)
    emitter.emit_prepared(chunk)
    _progress(emitter, total, started)
    return invalid


def _progress(emitter: Emitter, total: int, started: float) -> None:
    rate = emitter.sent / max(time.monotonic() - started, 1e-9)
    print(
        f"emit: {total:,} lines read, {emitter.sent:,} events sent ({rate:,.0f}/s), "
        f"{emitter.pending:,} waiting",
        file=sys.stderr,
        flush=True,
    )
