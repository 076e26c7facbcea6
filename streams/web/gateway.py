"""`muster gateway`: the ingest door of SPEC §7 for site apps that do not speak Kafka.

    POST /api/events   one JSON event or NDJSON, `Authorization: Bearer <token>`
    GET  /healthz, GET /readyz

A request is answered only after its valid events are on their topics (`acks=all`) and its
invalid ones are on the DLQ, so a 202 means nothing in it can be lost. The gateway keeps no
state of its own (tokens are read from their file), so several can run behind a balancer.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from schemas.dlq import DeadLetter
from schemas.errors import MusterError
from streams.broker import is_listening
from streams.core.ingest import MAX_BODY, NotEvents, Record, read_body, refusal
from streams.sdk.transport import Unreachable, reliable_producer, send_all
from streams.settings import Settings
from streams.web.tokens import TokenFile

log = logging.getLogger(__name__)


class BrokerUnavailable(MusterError):
    """Kafka did not take the request's records; the client should send it again."""


class Producer:
    """One idempotent kafka-python producer (`acks=all`), made on first use and again after
    a failure, so the gateway starts and answers while the broker is still down."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._producer: Any = None
        self._lock = threading.Lock()

    def _get(self) -> Any:
        with self._lock:
            if self._producer is None:
                try:
                    self._producer = reliable_producer(
                        self.settings.kafka_bootstrap,
                        "muster-gateway",
                        timeout=5,
                        linger_ms=2,
                        **self.settings.kafka_options(),
                    )
                except Unreachable as exc:
                    raise BrokerUnavailable(str(exc)) from exc
            return self._producer

    def send_all(self, records: list[tuple[str, bytes | None, bytes]]) -> None:
        """Produce (topic, key, value) records and wait until Kafka has every one."""
        from kafka.errors import KafkaError

        producer = self._get()
        try:
            send_all(producer, records, timeout=15)
        except KafkaError as exc:
            with self._lock:
                if self._producer is producer:
                    self._producer = None
            producer.close(timeout=0)
            raise BrokerUnavailable(
                f"Kafka at {self.settings.kafka_bootstrap} did not take the events ({exc}); "
                "nothing was accepted, send the request again"
            ) from exc

    def close(self) -> None:
        with self._lock:
            if self._producer is not None:
                self._producer.close(timeout=5)
                self._producer = None


def create_gateway(settings: Settings, tokens: TokenFile, producer: Producer) -> web.Application:
    """The gateway's aiohttp application."""
    sending = ThreadPoolExecutor(max_workers=4, thread_name_prefix="produce")
    counts = {"requests": 0, "accepted": 0, "rejected": 0}

    def refuse(status: int, error: str) -> web.Response:
        return web.json_response({"error": error}, status=status)

    async def post_events(request: web.Request) -> web.Response:
        counts["requests"] += 1
        auth = request.headers.get("Authorization", "")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return refuse(401, "no token: send 'Authorization: Bearer <token>'")
        rights = tokens.rights(token.strip())
        if rights is None:
            return refuse(401, "unknown token (revoked, mistyped, or from another muster)")
        body = await _read_limited(request)
        if body is None:
            return refuse(413, f"the body is over the limit of {MAX_BODY:,} bytes (1 MiB)")
        try:
            records = read_body(body, datetime.now(UTC))
        except NotEvents as exc:
            return refuse(400, str(exc))
        for record in records:
            if record.event is not None and (why := refusal(rights, record.event)):
                log.info("refused %d records from %s: %s", len(records), rights.name, why)
                return refuse(
                    403,
                    f"line {record.index + 1} ({record.event.type}): {why}; "
                    "nothing from this request was accepted",
                )
        out = [_produced(settings, r) for r in records]
        try:
            await asyncio.get_running_loop().run_in_executor(sending, producer.send_all, out)
        except BrokerUnavailable as exc:
            return refuse(503, str(exc))
        rejected = [{"index": r.index, "error": r.error} for r in records if r.error]
        accepted = len(records) - len(rejected)
        counts["accepted"] += accepted
        counts["rejected"] += len(rejected)
        if rejected:
            log.info("%s: %d accepted, %d to the DLQ", rights.name, accepted, len(rejected))
        return web.json_response({"accepted": accepted, "rejected": rejected}, status=202)

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(request: web.Request) -> web.Response:
        reasons = []
        loop = asyncio.get_running_loop()
        if not await loop.run_in_executor(sending, is_listening, settings.kafka_bootstrap):
            reasons.append(f"Kafka at {settings.kafka_bootstrap} does not answer")
        if not len(tokens):
            reasons.append(
                f"no tokens in {tokens.path}: add one with `muster token add --name N --site S`"
            )
        if reasons:
            return web.json_response({"status": "not ready", "reasons": reasons}, status=503)
        return web.json_response({"status": "ready"})

    async def counters(request: web.Request) -> web.Response:
        return web.json_response(counts)

    async def stop(app: web.Application) -> None:
        await asyncio.get_running_loop().run_in_executor(None, producer.close)
        sending.shutdown(wait=False)

    app = web.Application(client_max_size=MAX_BODY)
    app.add_routes(
        [
            web.post("/api/events", post_events),
            web.get("/healthz", healthz),
            web.get("/readyz", readyz),
            web.get("/counters", counters),
        ]
    )
    app.on_cleanup.append(stop)
    return app


async def _read_limited(request: web.Request) -> bytes | None:
    """The body, or None when it is over MAX_BODY (told by Content-Length, or counted)."""
    if request.content_length is not None and request.content_length > MAX_BODY:
        return None
    chunks, size = [], 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _produced(settings: Settings, record: Record) -> tuple[str, bytes | None, bytes]:
    """Where a record goes: its topic with its key, or the DLQ with the reason."""
    if record.error is None:
        return settings.topic(record.topic_kind), record.key, record.raw
    letter = DeadLetter.of(record.error, "ingest", None, None, record.raw)
    return settings.topic("dlq"), record.key, letter.model_dump_json().encode()


def run_gateway(settings: Settings) -> None:
    """Serve until SIGINT or SIGTERM (aiohttp stops on both, finishing requests in flight)."""
    tokens = TokenFile(settings.tokens_path)
    if not len(tokens):
        log.warning(
            "no tokens in %s: every request gets 401 until `muster token add` makes one",
            tokens.path,
        )
    app = create_gateway(settings, tokens, Producer(settings))
    print(
        f"gateway: POST http://0.0.0.0:{settings.gateway_port}/api/events "
        f"(tokens from {tokens.path}, events to {settings.kafka_bootstrap})",
        flush=True,
    )
    web.run_app(app, port=settings.gateway_port, print=None, shutdown_timeout=10)
