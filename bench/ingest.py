"""Ingestion from the Stored Completions API: ``ApiExporter`` against a plain sequential loop.

The stand-in (``conv-pipeline standin``) runs in its own process with ``--latency-ms 20`` and the
completions preloaded. Each client runs in a fresh process of its own, so its peak RSS is its own:

* **sequential**: what the seed's function does, page after page of
  ``client.chat.completions.list`` (100 per page, following ``after``), then
  ``client.chat.completions.messages.list(id)`` for each completion, one at a time;
* **ours**: ``ApiExporter.sync()`` as the source runs it (list newest first, messages concurrently
  with the default bound of 16, chunks of 5,000 written to disk).

Both must end with every completion and its messages; ours is also run on 1/4 and 1/2 of the
completions to show that its memory does not grow with their number.

    .venv/bin/python bench/ingest.py [--n 10000] [--latency-ms 20] [--out bench/out]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

KEY = "bench-key"

SEQUENTIAL = """
import json, resource, sys, time
from openai import AzureOpenAI
client = AzureOpenAI(azure_endpoint=sys.argv[1], api_version="2025-02-01-preview",
                     api_key=sys.argv[2], max_retries=6)
t0 = time.perf_counter()
rows, after = [], None
while True:
    kw = {"limit": 100, "order": "desc"}
    if after:
        kw["after"] = after
    page = client.chat.completions.list(**kw)
    for completion in page.data:
        messages = client.chat.completions.messages.list(completion.id)
        rows.append((completion, list(messages.data)))
    if not page.has_more or not page.data:
        break
    after = page.data[-1].id
seconds = time.perf_counter() - t0
print(json.dumps({"seconds": seconds, "records": len(rows),
                  "messages": sum(len(m) for _, m in rows),
                  "max_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""

OURS = """
import json, resource, sys, time
from pathlib import Path
from conv_pipeline.core.ingestion.api import ApiConfig, ApiExporter
cfg = ApiConfig(kind="azure_openai", endpoint=sys.argv[1], api_key=sys.argv[2])
out = Path(sys.argv[3])
t0 = time.perf_counter()
stats = ApiExporter(out, cfg).sync()
seconds = time.perf_counter() - t0
records = messages = 0
for path in out.glob("api-*.jsonl"):
    for line in path.open(encoding="utf-8"):
        records += 1
        messages += len(json.loads(line)["messages"])
print(json.dumps({"seconds": seconds, "records": records, "messages": messages,
                  "list_requests": stats.list_requests, "message_requests": stats.message_requests,
                  "max_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_standin(export: Path, latency_ms: float) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen(
        [
            str(ROOT / ".venv/bin/conv-pipeline"),
            "standin",
            "--port",
            str(port),
            "--load",
            str(export),
            "--api-key",
            KEY,
            "--latency-ms",
            str(latency_ms),
        ],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    for line in proc.stdout:
        if "serving on" in line:
            return proc, f"http://127.0.0.1:{port}"
    raise RuntimeError("the stand-in did not start")


def run_client(script: str, *args: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, check=False
    )
    if done.returncode:
        raise RuntimeError(done.stderr[-2000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def bench_ingest(n: int, latency_ms: float, work: Path) -> dict:
    from conv_pipeline_demo.sample import write_sample

    results: dict = {"n": n, "latency_ms": latency_ms, "ours_by_n": {}}
    for size in sorted({max(1, n // 4), max(1, n // 2), n}):
        export = work / f"export-{size}"
        write_sample(export, n=size, hours=48)
        server, url = start_standin(export, latency_ms)
        try:
            out = work / f"ours-{size}"
            ours = run_client(OURS, url, KEY, str(out))
            results["ours_by_n"][size] = ours
            assert ours["records"] == size, ours
            if size == n:
                results["ours"] = ours
                results["sequential"] = seq = run_client(SEQUENTIAL, url, KEY)
                assert seq["records"] == size and seq["messages"] == ours["messages"], (seq, ours)
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
    results["speedup"] = results["sequential"]["seconds"] / results["ours"]["seconds"]
    return results


def summary(r: dict) -> str:
    seq, ours = r["sequential"], r["ours"]
    lines = [
        f"### Ingestion: {r['n']:,} stored completions, {r['latency_ms']:g} ms added per request",
        "",
        "| | seconds | completions/s | requests | peak RSS |",
        "|---|---:|---:|---:|---:|",
        f"| sequential SDK loop (list, then messages one by one) | {seq['seconds']:.1f} | "
        f"{r['n'] / seq['seconds']:,.0f} | {r['n'] // 100 + 1 + r['n']:,} | "
        f"{seq['max_rss_kb'] / 1024:.0f} MiB |",
        f"| **`ApiExporter.sync()`** (concurrency 16) | **{ours['seconds']:.1f}** | "
        f"**{r['n'] / ours['seconds']:,.0f}** | {ours['list_requests'] + ours['message_requests']:,}"
        f" | {ours['max_rss_kb'] / 1024:.0f} MiB |",
        "",
        f"Speed-up: **{r['speedup']:.1f}×** (target ≥ 10×).",
        "",
        "Peak RSS of `ApiExporter.sync()` by number of completions: "
        + ", ".join(
            f"{int(k):,}: {v['max_rss_kb'] / 1024:.0f} MiB ({v['seconds']:.1f} s)"
            for k, v in sorted(r["ours_by_n"].items(), key=lambda kv: int(kv[0]))
        ),
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--latency-ms", type=float, default=20)
    parser.add_argument("--out", default=str(ROOT / "bench" / "out"))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="conv-ingest-bench-"))
    try:
        started = time.time()
        results = bench_ingest(args.n, args.latency_ms, work)
        results["started"] = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(started))
        results["loadavg_before"] = os.getloadavg()
        results["self_max_rss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    finally:
        shutil.rmtree(work, ignore_errors=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "ingest.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    text = summary(results)
    (out / "ingest.md").write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
