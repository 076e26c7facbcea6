"""`Emitter`: how a site app or a script sends events without losing one.

    from streams.sdk import Emitter

    with Emitter(spool="site-7.spool", url="https://muster.example/", token="mst_...") as out:
        out.check_in("p-0017", "site-7", role="marshal", org="union")
        out.check_out("p-0017", "site-7")

Each event is validated as the pipeline will (SPEC §2), given an `event_id` when it has none,
and written to the spool (SQLite, on disk) before `emit` returns. A background thread sends
the spool, oldest first, to Kafka (`bootstrap=`) or to an ingest gateway (`url=`, `token=`),
and deletes what was taken. While the broker or gateway cannot be reached the events wait
on disk, and go out in order once it answers again, also after the process was killed and
started again with the same spool. Sending twice is harmless: the pipeline ignores a
repeated `event_id`.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from schemas.errors import InvalidEvent, MusterError
from schemas.events import SiteUpserted, parse_record
from streams.sdk.spool import Spool
from streams.sdk.transport import (
    GatewayTransport,
    KafkaTransport,
    Refused,
    Sent,
    Transport,
    Unreachable,
)

log = logging.getLogger(__name__)

# Names event ids derived from content: the same event emitted twice gets the same id.
EVENT_NAMESPACE = uuid.UUID("6f1c1b8e-2d3a-5b7c-9e4f-8a6d2c1b0e93")
BATCH = 500


def event_id_for(event: Mapping[str, Any]) -> str:
    """An id derived from the event's content (uuid5), for an event that has none."""
    body = json.dumps(
        {k: v for k, v in event.items() if k != "event_id"},
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return str(uuid.uuid5(EVENT_NAMESPACE, body))


def now_rfc3339() -> str:
    return datetime.now().astimezone().isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class Prepared:
    event_id: str
    topic_kind: str
    key: bytes
    value: bytes


class Emitter:
    """Send events to Kafka or a gateway through a disk spool (see the module docstring).

    `on_rejected(event_json, why)` is told of each event a gateway sent to its DLQ.
    `kafka_options` are kafka-python's, for a Kafka that wants TLS or SASL (e.g.
    `{"security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512", ...}`).
    `background=False` sends only from `flush()` (for scripts that want to say when).
    """

    def __init__(
        self,
        spool: Path | str,
        *,
        bootstrap: str | None = None,
        url: str | None = None,
        token: str | None = None,
        topic_prefix: str = "muster.",
        background: bool = True,
        retry_seconds: float = 2.0,
        timeout: float = 10.0,
        on_rejected: Callable[[bytes, str], None] | None = None,
        kafka_options: dict[str, Any] | None = None,
    ) -> None:
        if (bootstrap is None) == (url is None):
            raise MusterError("give the Emitter either bootstrap= (Kafka) or url= (a gateway)")
        if url is not None and not token:
            raise MusterError("a gateway needs a token: Emitter(url=..., token=...)")
        self.transport: Transport
        if url is not None:
            self.transport = GatewayTransport(url, str(token), timeout=timeout)
            self.target = url
        else:
            self.transport = KafkaTransport(
                str(bootstrap), topic_prefix, timeout=timeout, options=kafka_options
            )
            self.target = str(bootstrap)
        self.spool = Spool(Path(spool))
        self.retry_seconds = retry_seconds
        self.on_rejected = on_rejected
        self.sent = 0
        self.rejected = 0
        self.last_error: MusterError | None = None
        self._sending = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if background:
            self._thread = threading.Thread(target=self._run, name="emitter", daemon=True)
            self._thread.start()

    # -- events in -----------------------------------------------------------------------

    def emit(self, event: Mapping[str, Any]) -> str:
        """Validate, spool and (soon) send one event; return its `event_id`."""
        return self.emit_many([event])[0]

    def emit_many(self, events: list[Mapping[str, Any]]) -> list[str]:
        """As `emit`, in one spool transaction; raises InvalidEvent (naming the event's
        position and the field) before spooling any when one is invalid."""
        prepared = []
        for n, event in enumerate(events):
            try:
                prepared.append(self.prepare(event))
            except InvalidEvent as exc:
                where = f"event {n + 1}: " if len(events) > 1 else ""
                raise InvalidEvent(f"{where}{exc}") from exc
        self.emit_prepared(prepared)
        return [p.event_id for p in prepared]

    def prepare(self, event: Mapping[str, Any]) -> Prepared:
        """The event checked as the pipeline will check it (SPEC §2), with its `event_id`
        (derived from its content when absent), topic and key (SPEC §1)."""
        item = dict(event)
        item.setdefault("event_id", event_id_for(item))
        value = json.dumps(item, ensure_ascii=False, separators=(",", ":")).encode()
        kind = "sites" if item.get("type") == "site_upserted" else "events"
        parsed = parse_record(value, kind, datetime.now().astimezone())
        key = parsed.site_id if isinstance(parsed, SiteUpserted) else parsed.person_id
        return Prepared(parsed.event_id, kind, key.encode(), value)

    def emit_prepared(self, prepared: list[Prepared]) -> None:
        """Spool prepared events (one transaction) and wake the sender."""
        if prepared:
            self.spool.add([(p.topic_kind, p.key, p.value) for p in prepared])
            self._wake.set()

    def register(
        self, person_id: str, org: str, team_id: str | None = None, ts: str | None = None
    ) -> str:
        event = {"type": "registered", "person_id": person_id, "org": org}
        return self.emit(_with(event, team_id=team_id, ts=ts or now_rfc3339()))

    def check_in(
        self,
        person_id: str,
        site_id: str,
        role: str,
        org: str,
        team_id: str | None = None,
        ts: str | None = None,
    ) -> str:
        event = {"type": "check_in", "person_id": person_id, "site_id": site_id}
        event |= {"role": role, "org": org}
        return self.emit(_with(event, team_id=team_id, ts=ts or now_rfc3339()))

    def check_out(self, person_id: str, site_id: str | None = None, ts: str | None = None) -> str:
        event = {"type": "check_out", "person_id": person_id}
        return self.emit(_with(event, site_id=site_id, ts=ts or now_rfc3339()))

    # -- events out ----------------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Events on disk not yet taken by Kafka or the gateway."""
        return len(self.spool)

    def flush(self, timeout: float | None = 30.0) -> int:
        """Send until the spool is empty or `timeout` passes; return what is left.

        Raises Refused when the gateway refuses the events (token or rights)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                if self._send_all():
                    return 0
            except Unreachable as exc:
                self.last_error = exc
            if deadline is not None and time.monotonic() >= deadline:
                return self.pending
            wait = self.retry_seconds
            if deadline is not None:
                wait = max(0.0, min(wait, deadline - time.monotonic()))
            time.sleep(wait)

    def _send_all(self) -> bool:
        """Send batches until the spool is empty (True); Unreachable/Refused stop it."""
        with self._sending:
            while batch := self.spool.head(BATCH):
                sent: Sent = self.transport.send(batch)
                for seq, why in sent.rejected:
                    self.rejected += 1
                    value = next(item.value for item in batch if item.seq == seq)
                    log.warning("the gateway sent an event to the DLQ: %s", why)
                    if self.on_rejected is not None:
                        self.on_rejected(value, why)
                self.spool.remove_through(batch[sent.count - 1].seq)
                self.sent += sent.count
                self.last_error = None
                if sent.failed:
                    raise Unreachable(f"{self.target} took {sent.count} of {len(batch)} events")
            return True

    def _run(self) -> None:
        backoff = self.retry_seconds
        while not self._stop.is_set():
            self._wake.wait(timeout=backoff)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self._send_all()
                backoff = self.retry_seconds
            except Refused as exc:
                self.last_error = exc
                log.error("%s; %d events wait in %s", exc, self.pending, self.spool.path)
                backoff = 60.0  # until the token's rights change
            except Unreachable as exc:
                self.last_error = exc
                log.info("%s; %d events wait in %s", exc, self.pending, self.spool.path)
                backoff = min(backoff * 2, 30.0)

    def close(self, timeout: float = 10.0) -> int:
        """Try to send what is spooled for up to `timeout`, then stop; return what is left
        on disk (it goes out when an Emitter opens the same spool again)."""
        left = self.pending
        try:
            left = self.flush(timeout) if timeout > 0 else self.pending
        except Refused as exc:
            self.last_error = exc
        finally:
            self._stop.set()
            self._wake.set()
            if self._thread is not None:
                self._thread.join(timeout=30)
            with self._sending:
                self.transport.close()
                self.spool.close()
        return left

    def __enter__(self) -> Emitter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _with(event: dict[str, Any], **optional: str | None) -> dict[str, Any]:
    return event | {k: v for k, v in optional.items() if v is not None}
