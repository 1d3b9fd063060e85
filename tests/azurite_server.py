"""Azurite (the Azure Storage emulator, pinned in package.json) on loopback for the Blob tests.

``make test`` installs it with ``npm ci``; the ``azurite`` fixture in conftest.py starts one
blob service per test session on a free port, in memory, and stops it afterwards.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = ROOT / "node_modules" / ".bin" / "azurite-blob"
# Azurite's well-known development account (public, documented by Microsoft; not a secret).
ACCOUNT = "devstoreaccount1"
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Azurite:
    port: int
    process: subprocess.Popen

    @property
    def account_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/{ACCOUNT}"

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};"
            f"BlobEndpoint={self.account_url};"
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def start_azurite(workdir: Path) -> Azurite:
    if not BIN.exists():
        raise RuntimeError(
            f"{BIN} is missing: run `make test` (it runs `npm ci` from package.json), "
            "or `npm ci` in the project folder"
        )
    port = free_port()
    log = open(workdir / "azurite.log", "wb")  # noqa: SIM115 - lives as long as the process
    process = subprocess.Popen(
        [
            str(BIN),
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            str(port),
            "--inMemoryPersistence",
            "--skipApiVersionCheck",
            "--silent",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"Azurite exited with {process.returncode}: "
                + (workdir / "azurite.log").read_text(errors="replace")[-2000:]
            )
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return Azurite(port, process)
        time.sleep(0.1)
    process.kill()
    raise RuntimeError("Azurite did not start listening within 60 s")
