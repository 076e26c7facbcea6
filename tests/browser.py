"""A real browser for page tests: Debian's headless Chromium (`make test` installs it)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1920,1080",
]


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        raise RuntimeError("no chromium on PATH: `make test` installs Debian's chromium")
    return path


def run(url: str, *extra: str, settle_ms: int = 6000) -> str:
    """Load `url`, let its scripts run for `settle_ms` (virtual time), return stdout."""
    with tempfile.TemporaryDirectory(prefix="muster-chromium-") as profile:
        done = subprocess.run(
            [
                chromium(),
                *FLAGS,
                f"--user-data-dir={profile}",
                f"--virtual-time-budget={settle_ms}",
                *extra,
                url,
            ],
            capture_output=True,
            timeout=120,
            check=True,
        )
    return done.stdout.decode("utf-8")


def dom(url: str, settle_ms: int = 6000) -> str:
    """The page's DOM after its scripts ran, as HTML."""
    return run(url, "--dump-dom", settle_ms=settle_ms)


def screenshot(url: str, path: Path, settle_ms: int = 6000) -> Path:
    run(url, f"--screenshot={path}", settle_ms=settle_ms)
    return path
