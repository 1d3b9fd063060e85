"""The sample's fixed parameters: its span, the planted incident, the models and ``max_tokens``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

SAMPLE_START = datetime(2025, 3, 3, tzinfo=UTC)
DEFAULT_N = 3000
DEFAULT_HOURS = 72
DEFAULT_SEED = 7

#: The segment that degrades on purpose (metadata key -> value).
DEGRADED_SEGMENT: dict[str, str] = {"user_type": "billing_support", "prompt_variant": "v2"}
#: Hours (from the start of the sample) during which the segment degrades: [30 h, 42 h).
DEGRADED_HOURS = (30, 42)
#: The degraded window of the default sample, as UTC datetimes [start, end).
DEGRADED_WINDOW: tuple[datetime, datetime] = (
    SAMPLE_START + timedelta(hours=DEGRADED_HOURS[0]),
    SAMPLE_START + timedelta(hours=DEGRADED_HOURS[1]),
)

MODELS = ("gpt-4o-2024-08-06", "gpt-4o-mini-2024-07-18")
MAX_TOKENS = 256  # the max_tokens of the app; answers cut there end with finish_reason "length"

#: The four scenarios (``user_type``), each with its texts in ``texts/<user_type>.json``.
_SCENARIO_ORDER = ("customer_support", "sales_inquiry", "onboarding", "billing_support")


def degraded_window(
    start: datetime = SAMPLE_START, hours: int = DEFAULT_HOURS
) -> tuple[datetime, datetime]:
    """The degraded window of a sample starting at ``start`` and spanning ``hours``.

    Hours 30–42 when the sample spans at least 48 hours; for shorter samples the same fraction of
    the span (30/72 to 42/72), at least one hour long.
    """
    if hours >= 48:
        lo, hi = DEGRADED_HOURS
    else:
        lo = hours * DEGRADED_HOURS[0] // 72
        hi = max(lo + 1, hours * DEGRADED_HOURS[1] // 72)
    return start + timedelta(hours=lo), start + timedelta(hours=hi)


def _check_args(n: int, start: datetime, hours: int) -> None:
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if hours < 1:
        raise ValueError(f"hours must be >= 1, got {hours}")
    if start.tzinfo is None:
        raise ValueError(
            "start must be timezone-aware (UTC), e.g. datetime(2025, 3, 3, tzinfo=UTC)"
        )
