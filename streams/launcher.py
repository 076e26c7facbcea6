"""`muster broker` and `muster up`: the embedded profile's processes, started and stopped."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import datetime
from pathlib import Path

from schemas.errors import MusterError
from sinks.queries import Scope, metrics
from sinks.reader import LocalReader, Reader, read_worker_file
from sinks.store import connect, served_store
from streams.broker import create_topics, is_listening, start_tansu
from streams.settings import Settings


def run_broker(settings: Settings) -> int:
    """Tansu until Ctrl-C or SIGTERM, which stop it too (it runs in its own session)."""
    _stop_on_signals()
    proc = start_tansu(settings)
    try:
        created = create_topics(settings)
        print(
            f"broker: Tansu on {settings.kafka_bootstrap} ({storage_words(settings)}); "
            f"topics created: {', '.join(created) or 'none, all existed'}",
            file=sys.stderr,
        )
        return proc.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):  # a second one must not cut this short
            signal.signal(sig, signal.SIG_IGN)
        stop_child(proc)


def storage_words(settings: Settings) -> str:
    if settings.broker_storage == "memory":
        return "memory storage: topics are gone when it stops"
    return f"topics kept in {settings.data_dir / 'broker'}"


def stop_child(child: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """SIGTERM, then SIGKILL after `timeout` seconds."""
    if child.poll() is None:
        child.send_signal(signal.SIGTERM)
    try:
        child.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


def stop_together(children: list[subprocess.Popen[bytes]], timeout: float = 30) -> None:
    """SIGTERM to each, then each waited for (SIGKILL after `timeout` seconds)."""
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    for child in children:
        stop_child(child, timeout)


def wait_for_worker(settings: Settings, worker: subprocess.Popen[bytes], timeout: float) -> str:
    """Wait until the worker answers on its HTTP port; return its URL."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise MusterError(f"the worker exited with code {worker.returncode}; see its log")
        info = read_worker_file(settings.data_dir)
        if info and info.get("pid") == worker.pid:
            try:
                with urllib.request.urlopen(f"{info['url']}/counters", timeout=1):
                    return str(info["url"])
            except OSError:
                pass
        time.sleep(0.3)
    raise MusterError(f"the worker did not come up within {timeout:.0f} s")


def wait_for_gateway(settings: Settings, gateway: subprocess.Popen[bytes], timeout: float) -> str:
    """Wait until the gateway answers /healthz; return a line saying where it is."""
    url = f"http://127.0.0.1:{settings.gateway_port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if gateway.poll() is not None:
            raise MusterError(
                f"the ingest gateway exited with code {gateway.returncode} (is port "
                f"{settings.gateway_port} taken? set MUSTER_GATEWAY_PORT)"
            )
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=1):
                tokens = settings.tokens_path
                return (
                    f"ingest gateway at {url}/api/events (tokens in {tokens}; "
                    "`muster token add --name N --site S` makes one)"
                )
        except OSError:
            time.sleep(0.3)
    raise MusterError(f"the ingest gateway did not answer on {url} within {timeout:.0f} s")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _stop_on_signals() -> None:
    """SIGTERM stops everything as Ctrl-C does; so does SIGINT even when a shell started
    this process in the background with SIGINT ignored."""
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)


def status_line(reader: Reader, settings: Settings) -> str:
    """The city's numbers now, or why they could not be read: a failed poll is a line of
    output, never a reason to stop the stack (the worker may be busy, or refused a query)."""
    try:
        m = metrics(reader, datetime.now(settings.zone), settings.zone, Scope())
    except Exception as exc:  # any failure of one poll; the next one comes in 10 s
        return f"status not read this time ({type(exc).__name__}: {exc}); next try in 10 s"
    return (
        f"on post now {m['on_post_now']:,}, today {m['on_post_today']:,}, "
        f"cumulative {m['cumulative_people']:,} people / {m['person_times']:,} "
        f"person-times, {m['hours']:,.1f} h, coverage {m['coverage']:.1%}, dlq {m['dlq']}"
    )


def start_store(settings: Settings, log_path: Path) -> tuple[subprocess.Popen[bytes] | None, str]:
    """The store every process reaches by URL: MUSTER_CLICKHOUSE_URL when set, else the
    `muster store` already serving the data dir, else one started here."""
    if settings.clickhouse_url:
        return None, settings.clickhouse_url
    from sinks.server import served_url

    if served := served_store(settings.data_dir):
        print(f"up: using the store {served} already serves", file=sys.stderr)
        return None, served
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        store = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", "store"],
            env=os.environ
            | {
                "MUSTER_DATA_DIR": str(settings.data_dir),
                "MUSTER_DATABASE": settings.database,
                "MUSTER_STORE_PORT": str(settings.store_port),
                "MUSTER_STORE_HOST": settings.store_host,
            },
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = served_url(settings)
    deadline = time.monotonic() + 300  # a first start creates the schema; an upgrade migrates
    while time.monotonic() < deadline:
        if store.poll() is not None:
            raise MusterError(
                f"the store exited with code {store.returncode} (is port {settings.store_port} "
                f"taken? set MUSTER_STORE_PORT); see {log_path}"
            )
        if served_store(settings.data_dir) == url:
            try:
                with urllib.request.urlopen(f"{url}/ping", timeout=1):
                    return store, url
            except OSError:
                pass
        time.sleep(0.3)
    stop_child(store)
    raise MusterError(f"the store did not answer on {url} within 300 s; see {log_path}")


def worker_settings(settings: Settings, url: str, n: int) -> Settings:
    """Worker `n`'s settings under `muster up`: the store by URL, its own port and folder."""
    return settings.model_copy(
        update={
            "clickhouse_url": url,
            "worker_port": settings.worker_port + n,
            "data_dir": settings.data_dir / "workers" / str(n),
        }
    )


def child_env(settings: Settings) -> dict[str, str]:
    return os.environ | {
        "MUSTER_CLICKHOUSE_URL": settings.clickhouse_url,
        "MUSTER_WORKER_PORT": str(settings.worker_port),
        "MUSTER_DATA_DIR": str(settings.data_dir),
    }


def run_up(settings: Settings, args: argparse.Namespace) -> int:
    """Broker + store + workers + ingest gateway + (unless --no-simulator) the simulator;
    Ctrl-C or SIGTERM stops them all: the simulator, the gateway, then the workers (which
    store what they hold and commit), then the store and the broker."""
    _stop_on_signals()
    broker = store = gateway = None
    workers: list[subprocess.Popen[bytes]] = []
    stop_simulator = threading.Event()
    simulator: threading.Thread | None = None
    try:
        if is_listening(settings.kafka_bootstrap):
            print(f"up: using the broker already on {settings.kafka_bootstrap}", file=sys.stderr)
        else:
            broker = start_tansu(settings, settings.data_dir / "broker.log")
            print(
                f"up: broker on {settings.kafka_bootstrap} ({storage_words(settings)})",
                file=sys.stderr,
            )
        create_topics(settings)
        store, url = start_store(settings, settings.data_dir / "store.log")
        if store is not None:
            print(f"up: store at {url} (ClickHouse HTTP interface)", file=sys.stderr)
        for n in range(args.workers):
            mine = worker_settings(settings, url, n)
            worker = subprocess.Popen(
                [sys.executable, "-m", "streams.cli", "worker"],
                env=child_env(mine),
                start_new_session=True,
            )
            workers.append(worker)
            where = wait_for_worker(mine, worker, timeout=120)
            print(f"up: worker {n + 1} of {args.workers} ready at {where}", file=sys.stderr)
        gateway = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", "gateway"],
            env=child_env(settings.model_copy(update={"clickhouse_url": url})),
            stdout=subprocess.DEVNULL,
            start_new_session=True,
        )
        print(f"up: {wait_for_gateway(settings, gateway, timeout=30)}", file=sys.stderr)
        if not args.no_simulator:
            from streams.sim.simulator import produce_live, run_simulation

            live = run_simulation(settings, args)
            simulator = threading.Thread(
                target=produce_live, args=(settings, live, "simulate", stop_simulator)
            )
            simulator.start()
        print(
            "up: running; `muster metrics --json` in another terminal; Ctrl-C stops",
            file=sys.stderr,
        )
        reader = LocalReader(connect(url, settings.database, create=False))
        while all(w.poll() is None for w in workers):
            print(f"up: {status_line(reader, settings)}", file=sys.stderr, flush=True)
            time.sleep(10)
        gone = next(n for n, w in enumerate(workers) if w.poll() is not None)
        print(f"up: worker {gone + 1} exited with code {workers[gone].returncode}", file=sys.stderr)
        return workers[gone].returncode or 1
    except KeyboardInterrupt:
        return 0
    finally:
        # a second Ctrl-C or SIGTERM (a shell's, a `timeout`'s) must not cut the stopping
        # short: it left the worker, gateway and broker running, and the next `make up`
        # found the broker's port taken
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, signal.SIG_IGN)
        print("up: stopping", file=sys.stderr, flush=True)
        stop_simulator.set()
        if simulator is not None:
            simulator.join(timeout=10)
        # the gateway, the workers (together: each stores what it holds), the store, the broker
        for group in ([gateway], workers, [store], [broker]):
            stop_together([child for child in group if child is not None])
