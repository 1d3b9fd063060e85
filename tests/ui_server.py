"""The real Dagster UI for tests: ``dagster dev`` (webserver + daemon) on loopback, on a free port,
over a temporary ``DAGSTER_HOME`` and data folder, and a small GraphQL client for it.

Used by tests/test_webserver.py (``make test``) and e2e/ (``make e2e``, headless Chromium).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

BIN = Path(sys.executable).parent
# Telemetry and the welcome dialog off; the run queue is checked every second (default 5).
DAGSTER_YAML = """telemetry:
  enabled: false
nux:
  enabled: false
run_coordinator:
  module: dagster.core.run_coordinator
  class: QueuedRunCoordinator
  config:
    dequeue_interval_seconds: 1
"""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class DagsterDev:
    """``dagster dev -m conv_pipeline.definitions`` in its own process group."""

    def __init__(self, home: Path, data_dir: Path, log_path: Path, extra_env: dict | None = None):
        self.home, self.data_dir, self.log_path = home, data_dir, log_path
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.extra_env = extra_env or {}
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 180.0) -> DagsterDev:
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / "dagster.yaml").write_text(DAGSTER_YAML, encoding="utf-8")
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("CONV_PIPELINE_", "AZURE_", "OPENAI_"))
        }
        env.update(
            {
                "DAGSTER_HOME": str(self.home),
                "CONV_PIPELINE_DATA_DIR": str(self.data_dir),
                "CONV_PIPELINE_SOURCE": "local",
                "PYTHONUNBUFFERED": "1",
                **self.extra_env,
            }
        )
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [
                str(BIN / "dagster"),
                "dev",
                "-m",
                "conv_pipeline.definitions",
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
            ],
            env=env,
            cwd=str(self.data_dir),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"dagster dev exited: {self.log()}")
            try:
                data = self.graphql(
                    "{ repositoriesOrError { ... on RepositoryConnection "
                    "{ nodes { name location { name } } } } }"
                )
                if data["repositoriesOrError"].get("nodes"):
                    return self
            except (urllib.error.URLError, ConnectionError, TimeoutError, RuntimeError):
                pass
            time.sleep(1.0)
        raise TimeoutError(f"dagster dev did not come up in {timeout}s: {self.log()}")

    def log(self) -> str:
        try:
            return self.log_path.read_text("utf-8", errors="replace")[-4000:]
        except OSError:
            return ""

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        req = urllib.request.Request(
            f"{self.url}/graphql", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(req, timeout=30) as resp:
            out = json.loads(resp.read())
        if out.get("errors"):
            raise RuntimeError(f"GraphQL errors: {out['errors']}")
        return out["data"]

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self._log.close()
        self.proc = None
