"""Quality checks: the seed's alert conditions (ERROR) and its quality target (WARN).

They never block: a bad hour is exactly when its report is needed. Each check is evaluated per
hourly partition; in a run over many partitions the result fails when any partition fails, and
its metadata lists the failing partitions with their values. The measured value and the threshold
are always in the metadata.
"""

from __future__ import annotations

import dagster as dg

from conv_pipeline.core.config import MonitoringConfig

# Which asset carries which metric's check.
SCORED_METRICS = ("average_quality", "avg_response_length", "error_rate")
ISSUE_METRICS = ("quality_issue_rate",)
QUALITY_TARGET = "quality_threshold"


def _conditions(config: MonitoringConfig, metrics: tuple[str, ...]):
    return [c for c in config.alerts if c.metric in metrics]


def specs(
    asset_key: dg.AssetKey, config: MonitoringConfig, metrics: tuple[str, ...], *, target: bool
) -> list[dg.AssetCheckSpec]:
    out = [
        dg.AssetCheckSpec(
            c.name,
            asset=asset_key,
            description=f"Alert when {c.text} in an hour (seed monitoring_config.json).",
            metadata={"condition": c.text, "severity": "ERROR"},
        )
        for c in _conditions(config, metrics)
    ]
    if target:
        t = config.pipeline_settings.quality_threshold
        out.append(
            dg.AssetCheckSpec(
                QUALITY_TARGET,
                asset=asset_key,
                description=f"Warn when the hour's average quality is below the {t} target.",
                metadata={"condition": f"average_quality < {t}", "severity": "WARN"},
            )
        )
    return out


def evaluate(
    asset_key: dg.AssetKey,
    config: MonitoringConfig,
    metrics: tuple[str, ...],
    per_partition: dict[str, dict],
    *,
    target: bool,
) -> list[dg.AssetCheckResult]:
    """``per_partition`` maps partition key -> report totals (``conversations`` and the metrics)."""
    min_n = config.pipeline_settings.min_conversations_for_alerts
    rules = [
        (c.name, c.metric, c.threshold, c.triggered, c.text, dg.AssetCheckSeverity.ERROR)
        for c in _conditions(config, metrics)
    ]
    if target:
        t = config.pipeline_settings.quality_threshold
        rules.append(
            (
                QUALITY_TARGET,
                "average_quality",
                t,
                lambda v, t=t: v is not None and v < t,
                f"average_quality < {t}",
                dg.AssetCheckSeverity.WARN,
            )
        )
    results = []
    for name, metric, threshold, triggered, text, severity in rules:
        judged = {k: v for k, v in per_partition.items() if v["conversations"] >= min_n}
        failing = {k: v[metric] for k, v in judged.items() if triggered(v[metric])}
        if failing:
            worst_key = max(failing, key=lambda k: abs(failing[k] - threshold))
        elif judged:
            worst_key = max(judged, key=lambda k: judged[k]["conversations"])
        else:
            worst_key = None
        value = per_partition[worst_key][metric] if worst_key else None
        metadata = {
            "condition": text,
            "value": dg.MetadataValue.float(float(value)) if value is not None else None,
            "threshold": dg.MetadataValue.float(float(threshold)),
            "partition": worst_key or "",
            "partitions_evaluated": len(judged),
            "partitions_failing": len(failing),
        }
        if len(per_partition) > 1:
            metadata["failing_partitions"] = dg.MetadataValue.json(
                {k: round(v, 4) for k, v in sorted(failing.items())}
            )
            # the alert sensor keeps these hours' state as it was (docs/ALERTS.md)
            metadata["not_judged_partitions"] = dg.MetadataValue.json(
                sorted(set(per_partition) - set(judged))
            )
        if not judged:
            metadata["note"] = f"fewer than {min_n} conversations: nothing to judge"
        extra = {"severity": severity} if failing else {}
        results.append(
            dg.AssetCheckResult(
                check_name=name,
                asset_key=asset_key,
                passed=not failing,
                metadata={k: v for k, v in metadata.items() if v is not None},
                **extra,
            )
        )
    return results
