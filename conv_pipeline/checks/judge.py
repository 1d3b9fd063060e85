"""The judge's checks (WARN, never blocking), evaluated per hourly partition like the quality
checks: the mean judge score, the pass rate of the judgments, and the share of judgments that
failed or could not be parsed. An hour with fewer than ``judge.checks.min_judged`` judged
conversations passes with a note; so does every hour while the judge is off. ``judge_agreement``
on ``judge_calibration`` checks the quadratic-weighted kappa against ``calibration.min_kappa``."""

from __future__ import annotations

import operator

import dagster as dg

from conv_pipeline.core.config import MonitoringConfig

AGREEMENT = "judge_agreement"


def _rules(config: MonitoringConfig):
    c = config.judge.checks
    return [
        ("judge_average_score", "judge_average_score", "<", c.min_average_score),
        ("judge_pass_rate", "judge_pass_rate", "<", c.min_pass_rate),
        ("judge_failure_rate", "judge_failure_rate", ">", c.max_failure_rate),
    ]


_OPS = {"<": operator.lt, ">": operator.gt}


def specs(asset_key: dg.AssetKey, config: MonitoringConfig) -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(
            name,
            asset=asset_key,
            description=f"Warn when an hour's {metric} {op} {threshold} (LLM judge).",
            metadata={"condition": f"{metric} {op} {threshold}", "severity": "WARN"},
        )
        for name, metric, op, threshold in _rules(config)
    ]


def evaluate(
    asset_key: dg.AssetKey,
    config: MonitoringConfig,
    per_partition: dict[str, dict],
    *,
    enabled: bool,
) -> list[dg.AssetCheckResult]:
    min_n = config.judge.checks.min_judged
    out = []
    for name, metric, op, threshold in _rules(config):
        judged = {
            k: v
            for k, v in per_partition.items()
            if v["judged_conversations"] >= min_n and v.get(metric) is not None
        }
        failing = {k: v[metric] for k, v in judged.items() if _OPS[op](v[metric], threshold)}
        if failing:
            worst = max(failing, key=lambda k: abs(failing[k] - threshold))
        elif judged:
            worst = max(judged, key=lambda k: judged[k]["judged_conversations"])
        else:
            worst = None
        value = per_partition[worst][metric] if worst else None
        metadata = {
            "condition": f"{metric} {op} {threshold}",
            "threshold": dg.MetadataValue.float(float(threshold)),
            "partition": worst or "",
            "partitions_evaluated": len(judged),
            "partitions_failing": len(failing),
        }
        if value is not None:
            metadata["value"] = dg.MetadataValue.float(float(value))
        if len(per_partition) > 1:
            metadata["failing_partitions"] = dg.MetadataValue.json(
                {k: round(v, 4) for k, v in sorted(failing.items())}
            )
        if not enabled:
            metadata["note"] = "the judge is off (CONV_PIPELINE_JUDGE_MODEL is not set)"
        elif not judged:
            metadata["note"] = f"fewer than {min_n} judged conversations: nothing to check"
        extra = {"severity": dg.AssetCheckSeverity.WARN} if failing else {}
        out.append(
            dg.AssetCheckResult(
                check_name=name,
                asset_key=asset_key,
                passed=not failing,
                metadata=metadata,
                **extra,
            )
        )
    return out


def agreement_spec(asset_key: dg.AssetKey, config: MonitoringConfig) -> dg.AssetCheckSpec:
    k = config.judge.calibration.min_kappa
    return dg.AssetCheckSpec(
        AGREEMENT,
        asset=asset_key,
        description=(
            f"Warn when the judge's quadratic-weighted Cohen's kappa against the golden set is "
            f"below {k} for an evaluator with enough labelled pairs."
        ),
        metadata={"condition": f"kappa_quadratic < {k}", "severity": "WARN"},
    )


def agreement(
    asset_key: dg.AssetKey, config: MonitoringConfig, rows: list[dict], *, note: str | None
) -> dg.AssetCheckResult:
    k = config.judge.calibration.min_kappa
    failing = {
        r["evaluator"]: r["kappa_quadratic"]
        for r in rows
        if r["evaluator"] != "all" and r["passed"] is False
    }
    metadata: dict = {
        "condition": f"kappa_quadratic < {k}",
        "threshold": dg.MetadataValue.float(float(k)),
        "kappa_by_evaluator": dg.MetadataValue.json(
            {r["evaluator"]: r["kappa_quadratic"] for r in rows}
        ),
        "evaluators_failing": ", ".join(sorted(failing)),
    }
    overall = next((r for r in rows if r["evaluator"] == "all"), None)
    if overall and overall["kappa_quadratic"] is not None:
        metadata["value"] = dg.MetadataValue.float(float(overall["kappa_quadratic"]))
    if note:
        metadata["note"] = note
    extra = {"severity": dg.AssetCheckSeverity.WARN} if failing else {}
    return dg.AssetCheckResult(
        check_name=AGREEMENT, asset_key=asset_key, passed=not failing, metadata=metadata, **extra
    )
