"""muster against a Kafka that speaks only TLS (MUSTER_KAFKA_SECURITY_PROTOCOL=SSL and
MUSTER_KAFKA_CA_FILE): the worker (Faust, its recovery reads, the admin client), `muster
import` and `muster replay --from topic` reach it, and derive what the reference derives.

Tansu's own TLS options do not start here (0.6.0 refuses --cert with --key), so Kafka's
TLS listener is a TLS front in this process, forwarding each connection to Tansu, which
advertises the front's address: every client connection goes through TLS, as behind a
TLS-terminating listener."""

from __future__ import annotations

import asyncio
import json
import shutil
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from streams.broker import is_listening, tansu_binary
from tests import reference
from tests.scenarios import CUTOFFS, MAX, edge_scenario
from tests.streams.test_import import routed
from tests.workers import Worker, free_port

pytestmark = pytest.mark.slow


def make_certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A CA, and a certificate it signed for 127.0.0.1: (ca, certificate, key)."""
    openssl = shutil.which("openssl")
    assert openssl, "openssl is needed (Debian package openssl, installed by make test)"
    ca, ca_key = folder / "ca.pem", folder / "ca.key"
    cert, key, csr = folder / "kafka.pem", folder / "kafka.key", folder / "kafka.csr"
    ext = folder / "ext.cnf"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    quiet = {"check": True, "capture_output": True}
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            ca_key,
            "-out",
            ca,
            "-days",
            "2",
            "-subj",
            "/CN=muster test CA",
        ],
        **quiet,
    )
    subprocess.run(
        [
            openssl,
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            key,
            "-out",
            csr,
            "-subj",
            "/CN=127.0.0.1",
        ],
        **quiet,
    )
    subprocess.run(
        [
            openssl,
            "x509",
            "-req",
            "-in",
            csr,
            "-CA",
            ca,
            "-CAkey",
            ca_key,
            "-CAcreateserial",
            "-out",
            cert,
            "-days",
            "2",
            "-extfile",
            ext,
        ],
        **quiet,
    )
    return ca, cert, key  # fmt: skip


class TlsFront:
    """A TLS listener on `port` forwarding each connection to `target` (host, port)."""

    def __init__(self, port: int, target: tuple[str, int], cert: Path, key: Path) -> None:
        self.port, self.target = port, target
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.load_cert_chain(cert, key)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.connections = 0

    def start(self) -> None:
        self.thread.start()
        server = asyncio.start_server(self._serve, "127.0.0.1", self.port, ssl=self.context)
        asyncio.run_coroutine_threadsafe(server, self.loop).result(timeout=10)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (OSError, ssl.SSLError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


@pytest.fixture
def tls_kafka(tmp_path: Path) -> Iterator[tuple[str, Path, TlsFront]]:
    """(bootstrap of the TLS listener, the CA file, the front)."""
    ca, cert, key = make_certificates(tmp_path)
    plain, front_port = free_port(), free_port()
    tansu = subprocess.Popen(
        [tansu_binary(), "broker", "--listener-url", f"tcp://127.0.0.1:{plain}",
         "--advertised-listener-url", f"tcp://127.0.0.1:{front_port}",
         "--storage-engine", "memory://tansu/"],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )  # fmt: skip
    front = TlsFront(front_port, ("127.0.0.1", plain), cert, key)
    try:
        for _ in range(100):
            if is_listening(f"127.0.0.1:{plain}"):
                break
            assert tansu.poll() is None, "Tansu exited"
            asyncio.run(asyncio.sleep(0.1))
        front.start()
        yield f"127.0.0.1:{front_port}", ca, front
    finally:
        front.stop()
        tansu.terminate()
        tansu.wait(timeout=10)


def test_a_worker_import_and_replay_over_tls(tls_kafka, tmp_path: Path) -> None:
    bootstrap, ca, front = tls_kafka
    tls = {"MUSTER_KAFKA_SECURITY_PROTOCOL": "SSL", "MUSTER_KAFKA_CA_FILE": str(ca)}
    worker = Worker(bootstrap, tmp_path / "worker", **tls)
    (tmp_path / "worker").mkdir()

    def muster(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "streams.cli", *args],
            env=env or worker.env,
            capture_output=True,
            text=True,
            timeout=180,
        )

    # without TLS, or without the CA, muster cannot reach it
    plain = worker.env | {"MUSTER_KAFKA_SECURITY_PROTOCOL": "PLAINTEXT"}
    history = tmp_path / "history.jsonl"
    values = [value for kind, _, value in edge_scenario().records]
    history.write_bytes(b"\n".join(values) + b"\n")
    refused = muster("import", str(history), env=plain)
    assert refused.returncode == 1 and "does not answer" in refused.stderr, refused.stderr
    missing = worker.env | {"MUSTER_KAFKA_CA_FILE": str(tmp_path / "nope.pem")}
    named = muster("import", str(history), env=missing)
    assert named.returncode == 2 and "nope.pem' is not a file" in named.stderr, named.stderr
    untrusted = {k: v for k, v in worker.env.items() if k != "MUSTER_KAFKA_CA_FILE"}
    assert muster("import", str(history), env=untrusted).returncode == 1  # the system's CAs

    try:
        worker.start()
        done = muster("import", str(history))
        assert done.returncode == 0, done.stderr[-2000:]
        ref = reference.build([(routed(v), v) for v in values], MAX, datetime.now(UTC))
        for cutoff in CUTOFFS[-3:]:
            worker.metrics_settle(cutoff, reference.metrics(ref, cutoff, worker.settings.zone))
    finally:
        if worker.proc is not None and worker.proc.poll() is None:
            worker.stop()
    replayed = muster("replay", "--from", "topic")
    assert replayed.returncode == 0, replayed.stderr[-2000:]
    # every line once: the valid ones on their topics, the invalid ones on the DLQ
    assert f"replayed {len(values)} records" in replayed.stdout, replayed.stdout
    metrics = muster("metrics", "--at", CUTOFFS[-1].isoformat(), "--json")
    assert reference.agrees(
        json.loads(metrics.stdout),
        reference.metrics(ref, CUTOFFS[-1], worker.settings.zone),
        1e-9,
    )
    assert front.connections > 5  # every client came through the TLS listener
