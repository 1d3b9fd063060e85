"""Names other code refers to, defined once: asset keys, groups (one per pipeline stage), the
cadence tag the jobs select by, and job names.

Every module imports these objects; nothing spells an asset key or a job name as a string
anywhere else (docs/ARCHITECTURE.md has the stage of each asset).
"""

from __future__ import annotations

import dagster as dg

# ---- groups: one per pipeline stage, the same names as core/<stage>/ and assets/<stage> ----------
INGESTION = "ingestion"
SCORING = "scoring"
JUDGE = "judge"
REPORTING = "reporting"
IMPROVEMENT = "improvement"
PRIVACY = "privacy"
PUBLISHING = "publishing"
STAGES = (INGESTION, SCORING, JUDGE, REPORTING, IMPROVEMENT, PRIVACY, PUBLISHING)

# ---- assets ------------------------------------------------------------------------------------
RAW = dg.AssetKey("raw_completions")
SCORED = dg.AssetKey("scored_conversations")
ISSUES = dg.AssetKey("conversation_issues")
JUDGE_EVALUATIONS = dg.AssetKey("judge_evaluations")
JUDGE_CALIBRATION = dg.AssetKey("judge_calibration")
INSIGHT_REPORT = dg.AssetKey("insight_report")
DAILY_REPORT = dg.AssetKey("daily_insight_report")
FINETUNE = dg.AssetKey("finetune_dataset")
EVAL_SET = dg.AssetKey("regression_eval_set")
EXPERIMENTS = dg.AssetKey("prompt_experiments")
DRIFT = dg.AssetKey("segment_drift")
CLUSTERS = dg.AssetKey("failure_clusters")
FEEDBACK = dg.AssetKey("conversation_feedback")
PUBLISHED_REPORTS = dg.AssetKey("published_reports")
PUBLISHED_DAILY = dg.AssetKey("published_daily")
# What a day produces (published together by ``published_daily``).
DAILY_OUTPUTS = (DAILY_REPORT, FINETUNE, EVAL_SET, EXPERIMENTS, DRIFT, CLUSTERS, FEEDBACK)

# ---- cadence: the tag every asset carries (set once, in assets/specs.py) and jobs select by ---
CADENCE = "conv_pipeline/cadence"
HOURLY = "hourly"
DAILY = "daily"
ON_DEMAND = "on_demand"

# ---- jobs --------------------------------------------------------------------------------------
HOURLY_JOB = "hourly_pipeline"
DAILY_JOB = "daily_summary"
JUDGE_CALIBRATION_JOB = "judge_calibration_job"
RETENTION_JOB = "raw_detail_retention"
BLOB_RETENTION_JOB = "blob_retention_sync"

# ---- run tags of ranged runs (Dagster's own names) ---------------------------------------------
RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"
