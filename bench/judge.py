"""The LLM judge's throughput: ours against ``azure-ai-evaluation``'s ``evaluate()`` with a
``CoherenceEvaluator``, both pointed at the same stand-in.

* The stand-in (``StoredCompletionsServer`` with ``judge_responder()``) runs in its own process,
  on loopback, and adds ``--latency-ms`` (200) to every request. It answers every judge prompt
  with a JSON judgment (``{"score": n, "reason": ...}``), which both sides parse.
* **ours**: ``core.judge.pipeline.judge_items`` — what the ``judge_evaluations`` asset calls —
  with the bundled coherence rubric, ``concurrency`` = ``--concurrency``, the rate budgets raised
  out of the way, and a fresh cache (so every judgment is a call), in a fresh process of the
  project's venv.
* **azure-ai-evaluation**: ``evaluate(data=<jsonl>, evaluators={"coherence":
  CoherenceEvaluator(model_config=OpenAIModelConfiguration(base_url=..., ...))})`` with
  ``PF_WORKER_COUNT`` = ``--concurrency`` (its batch engine's bound), in a separate venv
  (``bench/.venv-azeval``, created here on first use) so the project's dependencies stay lean.

Both judge the same ``--n`` (2,000) query/response pairs. Only the judging is timed (the
``evaluate()`` call / ``judge_items`` call), not imports or setup. The bound the concurrency
allows is ``concurrency / latency``; the target is at least 2x azure-ai-evaluation's throughput
and at least 90 % of that bound.

    .venv/bin/python bench/judge.py [--n 2000] [--concurrency 16] [--latency-ms 200] [--out bench/out]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
AZ_VENV = ROOT / "bench" / ".venv-azeval"
AZ_REQUIREMENT = "azure-ai-evaluation>=1.18,<2"
KEY = "bench-judge-key"

SERVER = """
import sys, time
from conv_pipeline_demo.standin import StoredCompletionsServer, judge_responder
server = StoredCompletionsServer(api_keys={sys.argv[1]}, latency_ms=int(sys.argv[2]),
                                 responder=judge_responder(), request_log_max=100)
server.start()
print(server.url, flush=True)
while True:
    time.sleep(3600)
"""

OURS = """
import json, resource, sys, time
from pathlib import Path
from conv_pipeline.core.config import JudgeSettings
from conv_pipeline.core.judge.cache import JudgmentCache
from conv_pipeline.core.judge.evaluators import load_evaluators
from conv_pipeline.core.judge.pipeline import judge_items
from conv_pipeline.core.judge.runner import JudgeConnection
base, key, data, cache_path, concurrency = sys.argv[1:6]
rows = [json.loads(line) for line in open(data, encoding="utf-8")]
items = [{"id": r["id"], "query": r["query"], "response": r["response"], "context": ""} for r in rows]
settings = JudgeSettings(evaluators={"coherence": {}}, concurrency=int(concurrency),
                         requests_per_minute=10_000_000, tokens_per_minute=1_000_000_000,
                         max_judgments_per_run=10**9, max_tokens_per_run=10**12)
evaluators = load_evaluators(settings, Path("."))
conn = JudgeConnection(kind="openai", model="bench-judge", base_url=base + "/openai/v1", api_key=key)
with JudgmentCache(cache_path) as cache:
    t0 = time.perf_counter()
    outcomes, stats = judge_items(items, evaluators, settings, conn, cache)
    seconds = time.perf_counter() - t0
scores = [o.score for o in outcomes.values()]
print(json.dumps({"seconds": seconds, "judgments": len(outcomes),
                  "scored": sum(s is not None for s in scores), "calls": stats.calls,
                  "statuses": stats.statuses, "mean_score": sum(s for s in scores if s) / max(1, sum(s is not None for s in scores)),
                  "max_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""

AZURE = """
import json, math, os, resource, sys, time, warnings
warnings.filterwarnings("ignore")
from azure.ai.evaluation import CoherenceEvaluator, OpenAIModelConfiguration, evaluate
base, key, data, out_dir = sys.argv[1:5]
config = OpenAIModelConfiguration(type="openai", base_url=base + "/openai/v1", api_key=key, model="bench-judge")
coherence = CoherenceEvaluator(model_config=config)
t0 = time.perf_counter()
result = evaluate(data=data, evaluators={"coherence": coherence},
                  output_path=os.path.join(out_dir, "azeval_result.json"))
seconds = time.perf_counter() - t0
rows = result["rows"]
scores = [r.get("outputs.coherence.coherence") for r in rows]
ok = [s for s in scores if isinstance(s, (int, float)) and not math.isnan(s)]
print(json.dumps({"seconds": seconds, "judgments": len(rows), "scored": len(ok),
                  "mean_score": sum(ok) / max(1, len(ok)), "metrics": result.get("metrics"),
                  "max_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def _pairs(n: int, path: Path) -> None:
    sys.path.insert(0, str(ROOT))
    from conv_pipeline_demo.sample import iter_sample_records

    with path.open("w", encoding="utf-8") as fh:
        for i, rec in enumerate(iter_sample_records(n=n, hours=24, seed=5)):
            question = next(
                (m["content"] for m in reversed(rec["messages"]) if m["role"] == "user"), ""
            )
            answer = rec["choices"][0]["message"]["content"] or ""
            # the same pair for both sides; ids differ so no cache or dedupe helps anyone
            fh.write(json.dumps({"id": f"b{i:05d}", "query": question, "response": answer}) + "\n")


def _ensure_azeval() -> tuple[Path | None, str]:
    py = AZ_VENV / "bin" / "python"
    if not py.exists():
        made = subprocess.run(
            [sys.executable, "-m", "venv", str(AZ_VENV)], capture_output=True, text=True
        )
        if made.returncode:
            return None, f"python -m venv failed: {made.stderr.strip()[-500:]}"
    check = subprocess.run(
        [
            str(py),
            "-c",
            "import azure.ai.evaluation as m; print(m.__version__ if hasattr(m, '__version__') else '')",
        ],
        capture_output=True,
        text=True,
    )
    if check.returncode:
        inst = subprocess.run(
            [str(py), "-m", "pip", "install", "--quiet", AZ_REQUIREMENT],
            capture_output=True,
            text=True,
        )
        if inst.returncode:
            return None, f"pip install {AZ_REQUIREMENT} failed: {inst.stderr.strip()[-800:]}"
    version = subprocess.run(
        [str(py), "-m", "pip", "show", "azure-ai-evaluation"], capture_output=True, text=True
    ).stdout
    line = next((x for x in version.splitlines() if x.startswith("Version:")), "Version: ?")
    return py, line.split(":", 1)[1].strip()


def _run(cmd: list[str], env: dict, timeout: float) -> dict:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    wall = time.perf_counter() - t0
    if proc.returncode:
        return {"error": proc.stderr.strip()[-2000:], "wall_seconds": wall}
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["wall_seconds"] = wall
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--latency-ms", type=int, default=200)
    ap.add_argument("--out", default=str(ROOT / "bench" / "out"))
    ap.add_argument("--skip-azure", action="store_true")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    bound = args.concurrency / (args.latency_ms / 1000)
    results: dict = {
        "n": args.n,
        "concurrency": args.concurrency,
        "latency_ms": args.latency_ms,
        "bound_per_s": bound,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "nproc": os.cpu_count(),
        "loadavg_start": os.getloadavg(),
    }
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "pairs.jsonl"
        _pairs(args.n, data)
        server = subprocess.Popen(
            [sys.executable, "-c", SERVER, KEY, str(args.latency_ms)],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        try:
            base = server.stdout.readline().strip()
            results["ours"] = _run(
                [
                    sys.executable,
                    "-c",
                    OURS,
                    base,
                    KEY,
                    str(data),
                    str(Path(tmp) / "cache.sqlite"),
                    str(args.concurrency),
                ],
                env,
                timeout=900,
            )
            if args.skip_azure:
                results["azure"] = {"error": "skipped (--skip-azure)"}
            else:
                py, version = _ensure_azeval()
                if py is None:
                    results["azure"] = {"error": version}
                else:
                    az_env = {
                        **os.environ,
                        "PF_WORKER_COUNT": str(args.concurrency),
                        "AZURE_AI_EVALUATION_DISABLE_TELEMETRY": "true",
                        "PF_DISABLE_TRACING": "true",
                    }
                    results["azure"] = _run(
                        [str(py), "-c", AZURE, base, KEY, str(data), tmp], az_env, timeout=1800
                    )
                    results["azure"]["version"] = version
        finally:
            server.terminate()
            server.wait(timeout=10)
    results["loadavg_end"] = os.getloadavg()
    lines = [
        f"## judge: {args.n:,} judgments, {args.latency_ms} ms latency, concurrency {args.concurrency} "
        f"(bound {bound:.1f}/s)",
        "",
        "| client | seconds | judgments/s | of the bound | scored |",
        "|---|---|---|---|---|",
    ]
    for name in ("ours", "azure"):
        r = results.get(name, {})
        if "seconds" in r:
            rate = r["judgments"] / r["seconds"]
            r["per_s"] = rate
            r["of_bound"] = rate / bound
            lines.append(
                f"| {name} | {r['seconds']:.1f} | {rate:.1f} | {rate / bound:.0%} | "
                f"{r['scored']:,} / {r['judgments']:,} |"
            )
        else:
            lines.append(f"| {name} | – | – | – | error: {r.get('error', '?')[:300]} |")
    if "per_s" in results.get("ours", {}) and "per_s" in results.get("azure", {}):
        results["speedup"] = results["ours"]["per_s"] / results["azure"]["per_s"]
        lines += ["", f"ours / azure-ai-evaluation: {results['speedup']:.2f}x"]
    summary = "\n".join(lines)
    (out / "judge.json").write_text(json.dumps(results, indent=2, default=str), encoding="utf-8")
    (out / "judge.md").write_text(summary + "\n", encoding="utf-8")
    print(summary)
    ok = results.get("ours", {}).get("scored") == args.n
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
