"""The improvement stage: what the next improvement starts from, one daily partition each —
datasets (``datasets.py``), analyses (``analysis.py``) and user feedback (``feedback.py``)."""

import dagster as dg

from conv_pipeline.assets.improvement.analysis import (
    build_failure_clusters,
    build_prompt_experiments,
    build_segment_drift,
)
from conv_pipeline.assets.improvement.datasets import (
    build_finetune_dataset,
    build_regression_eval_set,
)
from conv_pipeline.assets.improvement.feedback import build_conversation_feedback
from conv_pipeline.project import Project

BUILDERS = (
    build_finetune_dataset,
    build_regression_eval_set,
    build_prompt_experiments,
    build_segment_drift,
    build_failure_clusters,
    build_conversation_feedback,
)


def build_defs(project: Project) -> dg.Definitions:
    return dg.Definitions(
        assets=[build(project.parts, project.config) for build in BUILDERS],
        resources=project.uses("pipeline"),
    )
