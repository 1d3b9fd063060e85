"""Failure clusters: the user prompts behind failing conversations, grouped into themes.

Method (deterministic):

1. The text of a failure is its last user message, cleaned: redaction markers (``[REDACTED:…]``),
   whatever the datasets' PII screen matches (e-mail, card, phone, IP, API keys), URLs and digit
   runs are removed so they neither form themes nor leak into the top terms.
2. Identical cleaned prompts are fitted once, weighted by how often they occur.
3. TF-IDF (scikit-learn, English stop words, sublinear tf, unigrams and bigrams, L2-normalized
   rows, so Euclidean k-means on them is spherical k-means by cosine).
4. k-means with a fixed seed (``n_init=10``) for every k in ``[k_min, k_max]`` (capped at the
   number of distinct prompts minus one); the k with the highest cosine silhouette wins, the
   smaller k on a tie. Fewer than three distinct prompts make a single cluster.
5. Each cluster: its top terms (highest centroid weights), size, share of the window's failures,
   mean quality, most frequent issues and example completion ids (the prompts nearest the centroid).
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import polars as pl
from sklearn.cluster import KMeans
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics import silhouette_score

from conv_pipeline.core.config import ClusterSettings
from conv_pipeline.core.improvement.datasets import PII_PATTERNS
from conv_pipeline.core.schema import FAILURE_CLUSTERS

_CLEAN = re.compile(
    r"\[REDACTED:[^\]]*\]|[\w.+-]+@[\w-]+(?:\.[\w-]+)+|https?://\S+|www\.\S+|\d+",
    re.IGNORECASE,
)
_TOKEN = r"(?u)\b[^\W\d_][^\W\d_]+\b"  # words of 2+ letters, no digits


def clean_prompts(texts: pl.Expr) -> pl.Expr:
    out = texts.fill_null("")
    for pattern in PII_PATTERNS.values():  # the datasets' PII screen, so no PII becomes a term
        out = out.str.replace_all(pattern, " ")
    return (
        out.str.replace_all(_CLEAN.pattern, " ")
        .str.replace_all(r"\s+", " ")
        .str.strip_chars()
        .str.to_lowercase()
    )


def cluster_failures(failures: pl.DataFrame, settings: ClusterSettings, day: str) -> dict:
    """``failures``: one row per failing conversation with ``completion_id``,
    ``last_user_message``, ``quality_score`` and ``issues`` (list of issue names)."""
    total = failures.height
    base = {"day": day, "failures": total, "k": 0, "silhouette": None, "clusters": []}
    frame = failures.with_columns(clean_prompts(pl.col("last_user_message")).alias("text")).filter(
        pl.col("text") != ""
    )
    base["without_text"] = total - frame.height
    if frame.height < settings.min_failures:
        base["note"] = (
            f"{frame.height} failing prompt(s) with text: fewer than min_failures "
            f"({settings.min_failures}), not clustered"
        )
        return base
    uniq = frame.group_by("text").agg(pl.len().alias("weight")).sort("text")
    texts = uniq["text"].to_list()
    weights = uniq["weight"].to_numpy().astype(float)
    vec = TfidfVectorizer(
        stop_words="english",
        sublinear_tf=True,
        ngram_range=(1, 2),
        token_pattern=_TOKEN,
        norm="l2",
    )
    try:
        x = vec.fit_transform(texts)
    except ValueError:  # nothing but stop words
        base["note"] = "the failing prompts hold no informative words"
        return base
    terms = np.array(vec.get_feature_names_out())
    n_unique = len(texts)
    best_k, best_s, best_labels, best_model = 1, None, np.zeros(n_unique, dtype=int), None
    k_hi = min(settings.k_max, n_unique - 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning on duplicate points
        for k in range(settings.k_min, k_hi + 1):
            model = KMeans(n_clusters=k, n_init=10, random_state=settings.seed).fit(
                x, sample_weight=weights
            )
            if len(set(model.labels_)) < 2:
                continue
            s = float(
                silhouette_score(
                    x,
                    model.labels_,
                    metric="cosine",
                    sample_size=min(settings.silhouette_sample, n_unique),
                    random_state=settings.seed,
                )
            )
            if best_s is None or s > best_s + 1e-12:
                best_k, best_s, best_labels, best_model = k, s, model.labels_, model
    if best_model is not None:
        centroids = best_model.cluster_centers_
    else:
        centroids = np.asarray(x.multiply(weights[:, None]).sum(axis=0) / weights.sum())
    # distance of each distinct prompt to its centroid, for the examples
    dense_c = np.asarray(centroids)
    sq = np.asarray(x.multiply(x).sum(axis=1)).ravel()
    dots = np.asarray(x @ dense_c.T)[np.arange(n_unique), best_labels]
    dist = np.sqrt(np.maximum(sq - 2 * dots + (dense_c**2).sum(axis=1)[best_labels], 0.0))
    uniq = uniq.with_columns(
        pl.Series("cluster_raw", best_labels.astype(np.int32)),
        pl.Series("distance", dist),
    )
    members = frame.join(uniq.select("text", "cluster_raw", "distance"), on="text")
    clusters = []
    for raw_id in range(best_k):
        m = members.filter(pl.col("cluster_raw") == raw_id)
        if m.height == 0:
            continue
        top = np.argsort(-dense_c[raw_id], kind="stable")[: settings.top_terms]
        top_terms = [str(terms[i]) for i in top if dense_c[raw_id][i] > 0]
        issues = (
            m.select(pl.col("issues").explode().alias("issue"))
            .drop_nulls()
            .group_by("issue")
            .len()
            .sort(["len", "issue"], descending=[True, False])
        )
        examples = m.sort(["distance", "completion_id"])["completion_id"].head(
            settings.examples_per_cluster
        )
        clusters.append(
            {
                "size": m.height,
                "share_of_failures": m.height / total,
                "mean_quality": float(m["quality_score"].mean()),
                "top_terms": top_terms,
                "label": ", ".join(top_terms[:3]),
                "top_issues": [f"{i} ({n})" for i, n in issues.head(3).iter_rows()],
                "example_ids": examples.to_list(),
            }
        )
    clusters.sort(key=lambda c: (-c["size"], c["label"]))
    for i, c in enumerate(clusters):
        c["cluster"] = i
    base.update(k=best_k, silhouette=best_s, clusters=clusters)
    return base


def to_table(result: dict) -> pl.DataFrame:
    rows = [
        {**c, "day": result["day"], "k": result["k"], "silhouette": result["silhouette"]}
        for c in result["clusters"]
    ]
    if not rows:
        return pl.DataFrame(schema=FAILURE_CLUSTERS)
    return pl.DataFrame(rows).select([pl.col(c).cast(t) for c, t in FAILURE_CLUSTERS.items()])


def render_markdown(result: dict) -> str:
    lines = [f"## Failure clusters — {result['day']}", ""]
    if not result["clusters"]:
        lines.append(f"{result['failures']:,} failing conversations. {result.get('note', '')}")
        return "\n".join(lines) + "\n"
    sil = result["silhouette"]
    lines += [
        f"{result['failures']:,} failing conversations in {result['k']} theme(s)"
        + (f" (cosine silhouette {sil:.3f})" if sil is not None else "")
        + ".",
        "",
        "| # | theme (top terms) | size | share of failures | mean quality | top issues | examples |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in result["clusters"]:
        lines.append(
            f"| {c['cluster']} | {', '.join(c['top_terms'])} | {c['size']:,} | "
            f"{100 * c['share_of_failures']:.1f}% | {c['mean_quality']:.2f} | "
            f"{', '.join(c['top_issues'])} | {', '.join(c['example_ids'][:3])} |"
        )
    return "\n".join(lines) + "\n"
