"""Headless Chromium (Debian's ``chromium``) driven over the DevTools protocol with ``websockets``:
navigate, wait for text, run a script, take a screenshot. Loopback only."""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import websockets

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]


def chromium_binary() -> str:
    for name in ("chromium", "chromium-browser"):
        if path := shutil.which(name):
            return path
    raise RuntimeError(
        "chromium is not installed: `make e2e` installs it (apt-get install chromium)"
    )


class Page:
    def __init__(self, ws):
        self.ws, self._id = ws, 0

    async def call(self, method: str, **params):
        self._id += 1
        my = self._id
        await self.ws.send(json.dumps({"id": my, "method": method, "params": params}))
        while True:
            msg = json.loads(await self.ws.recv())
            if msg.get("id") == my:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    async def eval(self, expression: str):
        out = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return out.get("result", {}).get("value")

    async def wait_for(self, expression: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if await self.eval(expression):
                return
            await asyncio.sleep(0.5)
        raise TimeoutError(f"page never satisfied {expression!r}")

    async def goto(self, url: str) -> None:
        await self.call("Page.navigate", url=url)

    async def screenshot(self, path: Path) -> None:
        shot = await self.call("Page.captureScreenshot", format="png")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))


class Chromium:
    """One headless browser with a fresh profile; ``async with Chromium(port) as page``."""

    def __init__(self, port: int, width: int = 1600, height: int = 1000):
        self.port, self.width, self.height = port, width, height

    async def __aenter__(self) -> Page:
        self.profile = tempfile.mkdtemp(prefix="chromium-profile-")
        self.proc = subprocess.Popen(
            [
                chromium_binary(),
                *FLAGS,
                f"--user-data-dir={self.profile}",
                f"--remote-debugging-port={self.port}",
                "--remote-debugging-address=127.0.0.1",
                f"--window-size={self.width},{self.height}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        tabs = None
        while time.monotonic() < deadline and tabs is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/json", timeout=2) as r:
                    tabs = [t for t in json.load(r) if t["type"] == "page"]
            except OSError:
                await asyncio.sleep(0.3)
        if not tabs:
            raise RuntimeError("chromium did not open its DevTools port")
        self.ws = await websockets.connect(tabs[0]["webSocketDebuggerUrl"], max_size=64_000_000)
        page = Page(self.ws)
        await page.call("Page.enable")
        await page.call("Runtime.enable")
        return page

    async def __aexit__(self, *exc) -> None:
        await self.ws.close()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.profile, ignore_errors=True)
