"""Measure the shape of a sample: the figures docs/SAMPLE.md quotes.

``python -m conv_pipeline_demo.sample.shape [--n N] [--hours H] [--end HOUR]`` generates the
sample (default: the bundled one, ending at 2026-12-02T14, a Wednesday 14:00 UTC) and prints its
figures as JSON: answer lengths, distinct prompts, scripts, code, Markdown, finish reasons, the
seed rubric's indicator words and score, traffic per hour, and each incident's effect (inside its
window against the quiet hours). Plain Python over the records: this is a measuring tool, not a
hot path.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
from collections import Counter

from conv_pipeline.core.scoring.seed_reference import calculate_quality_score
from conv_pipeline_demo.sample.generator import iter_sample_records
from conv_pipeline_demo.sample.timeline import DEFAULT_HOURS, DEFAULT_N, incidents

SCRIPTS = {
    "latin_accents": r"[áéíóúñäöüßàèçâêôãõ]",
    "cyrillic": r"[\u0400-\u04ff]",
    "han": r"[\u4e00-\u9fff]",
    "kana": r"[\u3040-\u30ff]",
    "arabic": r"[\u0600-\u06ff]",
    "devanagari": r"[\u0900-\u097f]",
}
HELPFUL = ("step", "solution", "help", "recommend", "suggest", "guide")
COURTESY = ("please", "thank you", "happy to", "glad to help")
NEGATIVE = ("sorry, i cannot", "i don't know", "unable to help")


def _text(rec: dict) -> str:
    return rec["choices"][0]["message"]["content"] or ""


def _finish(rec: dict) -> str:
    return rec["choices"][0]["finish_reason"]


def _share(items, pred) -> float:
    items = list(items)
    return round(sum(1 for x in items if pred(x)) / len(items), 4) if items else 0.0


def _pct(values: list[int], q: float) -> int:
    return values[min(len(values) - 1, int(q * len(values)))]


def lengths(records: list[dict]) -> dict:
    sizes = sorted(len(_text(r)) for r in records if _finish(r) != "tool_calls")
    return {
        "mean": round(statistics.mean(sizes)),
        "median": statistics.median(sizes),
        "p90": _pct(sizes, 0.9),
        "p99": _pct(sizes, 0.99),
        "max": sizes[-1],
        "share_under_50": _share(sizes, lambda x: 0 < x < 50),
        "share_over_1000": _share(sizes, lambda x: x > 1000),
        "share_over_10000": _share(sizes, lambda x: x > 10_000),
    }


def prompts(records: list[dict]) -> dict:
    users = [r["messages"][-1]["content"] for r in records if r["messages"][-1]["role"] == "user"]
    first = [
        r["messages"][-1]["content"]
        for r in records
        if r["metadata"]["turn"] == "1" and r["messages"][-1]["role"] == "user"
    ]
    sizes = sorted(map(len, first))
    inputs = {tuple(m["content"] for m in r["messages"]) for r in records}
    return {
        "first_prompts": len(first),
        "first_prompts_distinct": round(len(set(first)) / len(first), 4),
        "user_messages_distinct": round(len(set(users)) / len(users), 4),
        "requests_distinct": round(len(inputs) / len(records), 4),
        "first_prompt_chars_median": statistics.median(sizes),
        "first_prompt_chars_p99": _pct(sizes, 0.99),
        "with_history": _share(
            records, lambda r: any(m["role"] == "assistant" for m in r["messages"])
        ),
    }


def content(records: list[dict]) -> dict:
    texts = [_text(r) for r in records]
    fences = Counter(m for t in texts for m in re.findall(r"^```(\w+)$", t, re.M))
    lowered = [t.lower() for t in texts if t]
    return {
        "non_english_conversations": _share(
            records, lambda r: not r["metadata"]["locale"].startswith("en")
        ),
        "scripts": {k: _share(texts, lambda t, p=p: re.search(p, t)) for k, p in SCRIPTS.items()},
        "code_blocks": _share(texts, lambda t: "```" in t),
        "code_languages": dict(fences.most_common()),
        "headings": _share(texts, lambda t: re.search(r"^#{2,3} ", t, re.M)),
        "lists": _share(texts, lambda t: re.search(r"^(- |\d+\. )", t, re.M)),
        "tables": _share(texts, lambda t: re.search(r"^\|---", t, re.M)),
        "helpful_words": _share(lowered, lambda t: any(w in t for w in HELPFUL)),
        "courtesy_words": _share(lowered, lambda t: any(w in t for w in COURTESY)),
        "negative_phrases": _share(lowered, lambda t: any(w in t for w in NEGATIVE)),
        "seed_score_mean": round(
            statistics.mean(calculate_quality_score({"response": t}) for t in texts), 3
        ),
    }


def outcomes(records: list[dict]) -> dict:
    n = len(records)
    finishes = Counter(map(_finish, records))
    msg = [r["choices"][0]["message"] for r in records]
    return {
        "finish_reason": {k: round(v / n, 4) for k, v in finishes.most_common()},
        "refusals": _share(msg, lambda m: m["refusal"]),
        "empty_answers": _share(
            records,
            lambda r: (
                _finish(r) == "stop" and not _text(r) and not r["choices"][0]["message"]["refusal"]
            ),
        ),
    }


def traffic(records: list[dict]) -> dict:
    per_hour = Counter(r["created"] // 3600 for r in records)
    counts = sorted(per_hour.values())
    return {
        "records": len(records),
        "conversations": len({r["metadata"]["conversation_id"] for r in records}),
        "hours": len(per_hour),
        "per_hour_min": counts[0],
        "per_hour_median": statistics.median(counts),
        "per_hour_max": counts[-1],
        "json_bytes_per_record": round(
            statistics.mean(len(json.dumps(r, ensure_ascii=False).encode()) for r in records)
        ),
    }


def incident_effects(records: list[dict], hours: int, end) -> list[dict]:
    out = []
    planted = incidents(hours=hours, end=end)
    windows = [(i.start.timestamp(), i.end.timestamp()) for i in planted]
    quiet = [r for r in records if not any(lo <= r["created"] < hi for lo, hi in windows)]
    for inc, (lo, hi) in zip(planted, windows, strict=True):

        def hit(r, inc=inc):
            return all(r["metadata"].get(k) == v for k, v in inc.segment.items())

        inside = [r for r in records if lo <= r["created"] < hi and hit(r)]
        base = [
            r
            for r in quiet
            if all(
                r["metadata"].get(k) == v for k, v in inc.segment.items() if k != "prompt_variant"
            )
        ]
        row = {"kind": inc.kind, "segment": inc.segment, "records": len(inside)}
        for name, group in (("inside", inside), ("quiet", base)):
            row[name] = {
                "mean_chars": round(statistics.mean(len(_text(r)) for r in group))
                if group
                else None,
                "under_50": _share(group, lambda r: 0 < len(_text(r)) < 50),
                "errors": _share(
                    group,
                    lambda r: (
                        _finish(r) == "content_filter"
                        or (
                            not _text(r)
                            and _finish(r) == "stop"
                            and not r["choices"][0]["message"]["refusal"]
                        )
                    ),
                ),
                "length_finish": _share(group, lambda r: _finish(r) == "length"),
                "seed_score": round(
                    statistics.mean(calculate_quality_score({"response": _text(r)}) for r in group),
                    3,
                )
                if group
                else None,
            }
        out.append(row)
    return out


def describe(*, n: int, hours: int, end) -> dict:
    records = list(iter_sample_records(n=n, hours=hours, end=end))
    planted = incidents(hours=hours, end=end)
    quiet = [r for r in records if not any(i.contains(r["created"]) for i in planted)]
    return {
        "traffic": traffic(records),
        "lengths_quiet": lengths(quiet),
        "prompts": prompts(records),
        "content_quiet": content(quiet),
        "outcomes_quiet": outcomes(quiet),
        "incidents": incident_effects(records, hours, end),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=DEFAULT_N)
    parser.add_argument("--hours", type=int, default=DEFAULT_HOURS)
    parser.add_argument("--end", default="2026-12-02T14")
    args = parser.parse_args()
    print(
        json.dumps(describe(n=args.n, hours=args.hours, end=args.end), indent=2, ensure_ascii=False)
    )


if __name__ == "__main__":
    main()
