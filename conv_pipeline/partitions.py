"""Hourly partitions on the completion's ``created`` time (UTC), and the daily summary's days.

Both definitions include the current, still open, hour and day (``end_offset=1``): completions
stored a minute ago can be scored and reported now, and their partition is simply re-run as more
arrive (the new-completions sensor does that). The schedules target the period that just ended.
"""

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
            start_date=start.strftime("%Y-%m-%d-%H:%M"), timezone="UTC", end_offset=1
        ),
        daily=dg.DailyPartitionsDefinition(
            start_date=start.strftime("%Y-%m-%d"), timezone="UTC", end_offset=1
        ),
    )
