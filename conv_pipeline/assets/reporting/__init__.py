"""The reporting stage: hourly and daily insight reports (``reports.py``) and the alert sensors
that turn failing checks into messages (``alerts.py``)."""

import dagster as dg

from conv_pipeline.assets.reporting.alerts import build_alert_sensors
from conv_pipeline.assets.reporting.reports import build_daily_insight_report, build_insight_report
from conv_pipeline.project import Project


def build_defs(project: Project) -> dg.Definitions:
    return dg.Definitions(
        assets=[
            build_insight_report(project.parts, project.config),
            build_daily_insight_report(project.parts, project.config),
        ],
        sensors=build_alert_sensors(project.parts, project.config),
        resources=project.uses("pipeline", "judge", "alerts"),
    )
