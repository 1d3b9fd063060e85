"""`make e2e`: the Dagster UI in headless Chromium after a real pipeline run.

Saves docs/img/asset_graph.png (the lineage of insight_report, every layer of the hourly
pipeline with its group, kinds, checks and automation) and docs/img/report_plot.png (a report's
plot opened from the asset's metadata), after checking on the page that they show what they
should.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from chrome import Chromium
from ui_server import DAGSTER_YAML, DagsterDev, free_port

from conv_pipeline_demo.sample import write_sample

DOCS_IMG = Path(__file__).resolve().parent.parent / "docs" / "img"
HOURLY = [
    "raw_completions",
    "scored_conversations",
    "judge_evaluations",
    "conversation_issues",
    "insight_report",
]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _run_pipeline(root: Path) -> tuple[Path, Path]:
    data, home = root / "data", root / "home"
    write_sample(data / "completions", n=600, hours=12)
    home.mkdir(parents=True)
    (home / "dagster.yaml").write_text(DAGSTER_YAML, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONV_PIPELINE_")}
    env.update({"CONV_PIPELINE_DATA_DIR": str(data), "DAGSTER_HOME": str(home)})
    cli = Path(sys.executable).parent / "conv-pipeline"
    done = subprocess.run([str(cli), "run"], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return data, home


async def _shoot(url: str) -> dict:
    found: dict = {}
    async with Chromium(free_port()) as page:
        await page.call(
            "Emulation.setDeviceMetricsOverride",
            # wide enough that the graph's six layers keep their full names
            width=2200,
            height=1000,
            deviceScaleFactor=1,
            mobile=False,
        )
        await page.goto(
            f"{url}/assets/insight_report?view=lineage&lineageScope=neighbors&lineageDepth=4"
        )
        names = " && ".join(f"document.body.textContent.includes('{n}')" for n in HOURLY)
        await page.wait_for(
            names + " && document.body.textContent.includes('daily_insight_report')"
        )
        await asyncio.sleep(3)  # let the graph finish its layout and status badges
        found["graph_text"] = await page.eval("document.body.textContent")
        await page.screenshot(DOCS_IMG / "asset_graph.png")

        await page.goto(f"{url}/assets/insight_report")
        row = (
            "Array.from(document.querySelectorAll('tr')).find("
            "r => r.cells.length && r.cells[0].innerText.trim() === 'plot_range_trend')"
        )
        await page.wait_for(f"!!{row}")
        await page.eval(
            f"Array.from({row}.querySelectorAll('a,span,button'))"
            ".filter(e => e.textContent.trim() === '[Show Markdown]').forEach(e => e.click())"
        )
        img = (
            "Array.from(document.images).find("
            "i => (i.getAttribute('src') || '').startsWith('data:image/png'))"
        )
        await page.wait_for(f"!!{img} && {img}.complete && {img}.naturalWidth > 0")
        await asyncio.sleep(1)
        found["plot_src"] = await page.eval(f"{img}.getAttribute('src').slice(0, 22)")
        found["plot_width"] = await page.eval(f"{img}.naturalWidth")
        await page.screenshot(DOCS_IMG / "report_plot.png")
    return found


def test_asset_graph_and_a_report_plot_in_the_browser(tmp_path):
    data, home = _run_pipeline(tmp_path)
    dev = DagsterDev(home, data, tmp_path / "dagster_dev.log").start()
    try:
        found = asyncio.run(_shoot(dev.url))
    finally:
        dev.stop()
    for name in [*HOURLY, "daily_insight_report", "ingestion", "evaluation", "insights"]:
        assert name in found["graph_text"], name
    assert found["plot_src"] == "data:image/png;base64,"
    assert found["plot_width"] > 300
    for shot in ("asset_graph.png", "report_plot.png"):
        body = (DOCS_IMG / shot).read_bytes()
        assert body.startswith(PNG_MAGIC) and len(body) > 20_000, shot
