"""Failure clusters recover planted themes, deterministically."""

from __future__ import annotations

import random

import polars as pl

from conv_pipeline.core.config import ClusterSettings
from conv_pipeline.core.improvement.clusters import cluster_failures, render_markdown, to_table

THEMES = {
    "refund": [
        "I want a refund for order {n}, the refund never arrived",
        "where is my refund for order {n}? refund please",
        "refund request for order {n} still not processed, refund status?",
    ],
    "password": [
        "password reset link is broken, cannot reset my password",
        "I forgot my password and the password reset email is missing",
        "reset password does not work, password rejected",
    ],
    "upload": [
        "upload crashes when the upload file is larger than {n} MB",
        "file upload fails, upload of big file crashes the app",
        "the upload keeps crashing on upload of video file {n}",
    ],
}


def _failures(per_theme: int = 30, seed: int = 1) -> pl.DataFrame:
    rng = random.Random(seed)
    rows = []
    for theme, templates in THEMES.items():
        for i in range(per_theme):
            text = rng.choice(templates).format(n=rng.randint(1, 9999))
            rows.append(
                {
                    "completion_id": f"{theme}-{i:03d}",
                    "last_user_message": text,
                    "quality_score": 4.0 + (i % 3) * 0.5,
                    "issues": ["low_quality", "response_too_short"] if i % 2 else ["refusal"],
                }
            )
    rng.shuffle(rows)
    return pl.DataFrame(rows)


def test_three_planted_themes_come_back_as_three_clusters():
    failures = _failures()
    result = cluster_failures(failures, ClusterSettings(), "2025-03-04")
    assert result["k"] == 3
    assert result["failures"] == 90
    assert len(result["clusters"]) == 3
    themes = set()
    for c in result["clusters"]:
        # every example of a cluster comes from one theme, and the theme word is a top term
        prefixes = {cid.split("-")[0] for cid in c["example_ids"]}
        assert len(prefixes) == 1, c
        theme = prefixes.pop()
        themes.add(theme)
        assert theme in c["top_terms"][:3]
        assert c["size"] == 30
        assert abs(c["share_of_failures"] - 1 / 3) < 1e-9
        assert len(c["example_ids"]) == ClusterSettings().examples_per_cluster
        assert c["top_issues"]
    assert themes == set(THEMES)
    assert 0 < result["silhouette"] <= 1
    # every failure is in exactly one cluster
    assert sum(c["size"] for c in result["clusters"]) == 90


def test_clustering_is_deterministic_and_independent_of_row_order():
    a = cluster_failures(_failures(), ClusterSettings(), "d")
    b = cluster_failures(_failures().reverse(), ClusterSettings(), "d")
    assert a == b
    table = to_table(a)
    assert table.height == 3 and table["cluster"].to_list() == [0, 1, 2]


def test_pii_and_redaction_markers_never_become_terms():
    rows = _failures(per_theme=12).to_dicts()
    for i, r in enumerate(rows):
        r["last_user_message"] += (
            f" contact jane.doe{i}@example.com [REDACTED:PHONE] 4111111111111111"
        )
    result = cluster_failures(pl.DataFrame(rows), ClusterSettings(), "d")
    terms = {t for c in result["clusters"] for t in c["top_terms"]}
    banned = ("jane", "example", "redacted", "proj", "zzqq")
    assert not any(b in t for t in terms for b in banned), terms
    assert "4111" not in render_markdown(result)


def test_too_few_failures_are_not_clustered_and_say_why():
    result = cluster_failures(_failures(per_theme=2), ClusterSettings(min_failures=10), "d")
    assert result["clusters"] == [] and result["k"] == 0
    assert "min_failures" in result["note"]
    assert "min_failures" in render_markdown(result)
    assert to_table(result).height == 0


def test_prompt_cleaning_removes_pii_markers_urls_and_digits():
    from conv_pipeline.core.improvement.clusters import clean_prompts

    text = (
        "Refund to jane.doe@example.com, card 4111 1111 1111 1111, from 10.0.0.1, "
        "key sk-proj-abcdefghijklmnopqrstuv, see https://x.example/a?b=1 [REDACTED:PHONE] ok"
    )
    out = pl.select(clean_prompts(pl.lit(text))).item()
    assert out == "refund to , card , from , key , see ok"
