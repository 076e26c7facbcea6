"""How spooled events leave: straight to Kafka, or to an ingest gateway with a token."""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Protocol

from schemas.errors import MusterError
from streams.core.ingest import MAX_BODY
from streams.sdk.spool import Spooled

log = logging.getLogger(__name__)


class Unreachable(MusterError):
    """Kafka or the gateway cannot be reached now; the events stay spooled and are resent."""


class Refused(MusterError):
    """The gateway refused the request (bad token, rights, body): sending again as is will
    not help until the token or its rights change; the events stay spooled."""


@dataclass
class Sent:
    count: int  # how many items from the start of the batch were taken
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (seq, why) sent to the DLQ
    failed: bool = False  # the rest could not be sent now (a gateway takes 1 MiB at a time)


class Transport(Protocol):
    def send(self, batch: list[Spooled]) -> Sent: ...

    def close(self) -> None: ...


def reliable_producer(
    bootstrap: str, client_id: str, timeout: float, linger_ms: int = 5, **options: Any
) -> Any:
    """An idempotent kafka-python producer with `acks=all` whose every wait (bootstrap,
    metadata, a request) ends after `timeout` seconds, delivery after twice that; raises
    Unreachable when Kafka does not answer. The gateway and the emitter both use it;
    `options` are kafka-python's (TLS, SASL: Settings.kafka_options)."""
    from kafka import KafkaProducer
    from kafka.errors import KafkaError

    ms = int(timeout * 1000)
    try:
        return KafkaProducer(
            bootstrap_servers=bootstrap,
            acks="all",
            enable_idempotence=True,
            linger_ms=linger_ms,
            bootstrap_timeout_ms=ms,
            max_block_ms=ms,
            request_timeout_ms=ms,
            delivery_timeout_ms=2 * ms,
            client_id=client_id,
            **options,
        )
    except KafkaError as exc:
        raise Unreachable(f"Kafka at {bootstrap} does not answer ({exc})") from exc


def send_all(producer: Any, records: list[tuple[str, bytes | None, bytes]], timeout: float) -> None:
    """Produce (topic, key, value) records and wait until Kafka has every one; raises
    kafka-python's KafkaError when it did not take them all (the gateway, `muster import`)."""
    futures = [producer.send(t, key=k, value=v) for t, k, v in records]
    producer.flush(timeout=timeout)
    for future in futures:
        future.get(timeout=timeout)


class KafkaTransport:
    """An idempotent kafka-python producer with `acks=all`, made again after a failure."""

    def __init__(
        self,
        bootstrap: str,
        topic_prefix: str = "muster.",
        timeout: float = 10,
        options: dict[str, Any] | None = None,
    ) -> None:
        self.bootstrap, self.prefix, self.timeout = bootstrap, topic_prefix, timeout
        self.options = options or {}  # kafka-python's: TLS, SASL
        self._producer: Any = None

    def _get(self) -> Any:
        if self._producer is None:
            self._producer = reliable_producer(
                self.bootstrap, "muster-emitter", self.timeout, **self.options
            )
        return self._producer

    def send(self, batch: list[Spooled]) -> Sent:
        from kafka.errors import KafkaError

        producer = self._get()
        futures = []
        try:
            for item in batch:
                topic = f"{self.prefix}{item.topic_kind}"
                futures.append(producer.send(topic, key=item.key, value=item.value))
            producer.flush(timeout=2 * self.timeout)
        except KafkaError as exc:
            log.info("Kafka at %s: %s", self.bootstrap, exc)
        taken = 0
        for future in futures:  # the items acked in order from the start are done
            try:
                future.get(timeout=0 if future.is_done else self.timeout)
            except KafkaError:
                break
            taken += 1
        if taken < len(batch):
            self.close()
            if taken == 0:
                raise Unreachable(f"Kafka at {self.bootstrap} did not take the events")
        return Sent(taken, failed=taken < len(batch))

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close(timeout=2)
            self._producer = None


class GatewayTransport:
    """NDJSON requests of at most 1 MiB to `POST {url}/api/events` (SPEC §7)."""

    def __init__(self, url: str, token: str, timeout: float = 15) -> None:
        base = url.rstrip("/")
        self.endpoint = base if base.endswith("/api/events") else base + "/api/events"
        self.token, self.timeout = token, timeout

    def send(self, batch: list[Spooled]) -> Sent:
        taken: list[Spooled] = []
        size = 0
        for item in batch:
            if taken and size + len(item.value) + 1 > MAX_BODY:
                break
            taken.append(item)
            size += len(item.value) + 1
        body = b"".join(item.value + b"\n" for item in taken)
        request = urllib.request.Request(
            self.endpoint,
            data=body,
            method="POST",
            headers={
                "Authorization": f"Bearer {self.token}",
                "Content-Type": "application/x-ndjson",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:
                result = json.loads(answer.read())
        except urllib.error.HTTPError as exc:
            detail = _error_text(exc)
            if exc.code in (400, 401, 403, 413):
                raise Refused(f"the gateway answered {exc.code}: {detail}") from exc
            raise Unreachable(f"the gateway answered {exc.code}: {detail}") from exc
        except (OSError, ValueError) as exc:
            raise Unreachable(f"the gateway at {self.endpoint} cannot be reached ({exc})") from exc
        lines = _line_seqs(taken)
        rejected = [(lines[r["index"]], str(r["error"])) for r in result.get("rejected", [])]
        return Sent(len(taken), rejected)

    def close(self) -> None:
        pass


def _line_seqs(items: list[Spooled]) -> dict[int, int]:
    """Body line number -> spool seq (an event's JSON never contains a raw newline)."""
    return {i: item.seq for i, item in enumerate(items)}


def _error_text(exc: urllib.error.HTTPError) -> str:
    try:
        return str(json.loads(exc.read())["error"])
    except (ValueError, KeyError, TypeError, OSError):
        return exc.reason if isinstance(exc.reason, str) else str(exc)
