"""Hourly partitions on the completion's ``created`` time (UTC), and the daily summary's days."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import dagster as dg


@dataclass(frozen=True)
class Partitions:
    hourly: dg.HourlyPartitionsDefinition
    daily: dg.DailyPartitionsDefinition


def build_partitions(start: datetime) -> Partitions:
    return Partitions(
        hourly=dg.HourlyPartitionsDefinition(
            start_date=start.strftime("%Y-%m-%d-%H:%M"), timezone="UTC"
        ),
        daily=dg.DailyPartitionsDefinition(start_date=start.strftime("%Y-%m-%d"), timezone="UTC"),
    )
