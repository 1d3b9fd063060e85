"""The sample's timeline: where it ends, its traffic rhythm, and the planted incidents.

Everything here is counted in hours *before the sample's end*, never from the wall clock, so a
sample written with another end hour has the same content and only its dates move. The traffic
follows the sample's own clock: its last hour is always a Wednesday 14:00 of that clock (the
rhythm matches UTC when the end is a real Wednesday 14:00 UTC, as in the docs' examples).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

DEFAULT_N = 20_000
DEFAULT_HOURS = 168
DEFAULT_SEED = 7

#: The sample clock at the last hour of every sample: weekday (Monday 0) and hour.
END_WEEKDAY, END_HOUR = 2, 14
#: Relative traffic by hour of the sample clock: quiet at night, busy in office hours.
HOUR_WEIGHTS = (
    0.30, 0.24, 0.19, 0.16, 0.15, 0.17, 0.24, 0.38, 0.60, 0.84, 0.96, 1.00,
    0.95, 0.97, 1.00, 0.98, 0.93, 0.86, 0.76, 0.70, 0.67, 0.62, 0.52, 0.40,
)  # fmt: skip
WEEKEND_FACTOR = 0.55
#: Day-to-day variation of the volume (each sample day gets a factor in this range).
DAY_FACTOR = (0.94, 1.06)

#: The planted incidents on the 168-hour template: kind, segment, first hour, end hour
#: (hours from the template's start; the template ends at hour 168).
TEMPLATE_HOURS = 168
_INCIDENTS: tuple[tuple[str, dict[str, str], int, int, str], ...] = (
    (
        "segment_degradation",
        {"category": "data_analysis"},
        114,
        120,
        "The file-analysis tool fails: in category data_analysis (an eighth of the traffic) "
        "most answers turn into curt apologies or refusals; the hour's overall numbers barely "
        "move.",
    ),
    (
        "service_outage",
        {},
        137,
        139,
        "A service-wide failure: about 40% of all answers are empty and 12% are stopped by the "
        "content filter, in every segment.",
    ),
    (
        "prompt_variant_regression",
        {"prompt_variant": "v8"},
        144,
        152,
        "A new system prompt v8 goes out to 35% of new conversations (and is rolled back after): "
        "its answers are several times longer, a third or more of them cut at max_tokens "
        "(finish_reason 'length'), and the seed rubric scores them higher, not lower.",
    ),
)
#: What each kind changes, for whoever checks that an alert saw it.
EXPECTED = {
    "segment_degradation": [
        "response_length down",
        "share of answers under 50 characters up",
        "refusal rate up",
        "quality_score down",
    ],
    "service_outage": ["error_rate up", "empty_response up", "content_filter up"],
    "prompt_variant_regression": [
        "response_length up",
        "finish_reason 'length' share up",
        "quality_score up (the seed rubric rewards the guide's words)",
    ],
}


@dataclass(frozen=True)
class Incident:
    """One planted incident: its kind, the segment it hits (metadata key → value; empty for all
    traffic) and its window ``[start, end)`` in UTC."""

    kind: str
    segment: dict[str, str]
    start: datetime
    end: datetime
    description: str
    expected: list[str] = field(default_factory=list)

    def contains(self, created: int) -> bool:
        """Whether a completion created at ``created`` (unix seconds) falls in the window."""
        return self.start.timestamp() <= created < self.end.timestamp()

    def as_json(self) -> dict:
        return {
            "kind": self.kind,
            "segment": dict(self.segment),
            "start": self.start.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "end": self.end.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "hours": int((self.end - self.start).total_seconds() // 3600),
            "description": self.description,
            "expected": list(self.expected),
        }


def current_hour() -> datetime:
    """The current UTC hour (its start)."""
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0)


def resolve_end(end: datetime | str | None) -> datetime:
    """The sample's last hour (its start, UTC) from ``end``: ``None`` for the current UTC hour, a
    timezone-aware datetime, or a string such as ``2026-12-07T10`` (UTC unless it carries an
    offset). Minutes and seconds are dropped."""
    if end is None:
        return current_hour()
    if isinstance(end, str):
        text = end.strip()
        if len(text) == 13 and text[10] in "T ":  # YYYY-MM-DDTHH
            text += ":00"
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(
                f"end must be an hour such as 2026-12-07T10 (UTC), got {end!r}"
            ) from None
        end = parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
    if end.tzinfo is None:
        raise ValueError(
            "end must be timezone-aware (UTC), e.g. datetime(2026, 12, 7, 10, tzinfo=UTC)"
        )
    return end.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def check_args(n: int, hours: int) -> None:
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if hours < 1:
        raise ValueError(f"hours must be >= 1, got {hours}")


def incident_hours(hours: int) -> list[tuple[int, int]]:
    """The incidents' windows as hour indexes ``[lo, hi)`` of a ``hours``-long sample, in the
    order of the template (an incident that does not fit is ``(-1, -1)``).

    At least :data:`TEMPLATE_HOURS` long: the template's windows at the same distance from the
    end (a longer sample has a longer quiet history). Shorter: the same fractions of the span, at
    least one hour each; an incident that would overlap the previous one moves after it, and one
    that would then pass the end is left out."""
    out = []
    prev_hi = 0
    for _, _, lo, hi, _ in _INCIDENTS:
        if hours >= TEMPLATE_HOURS:
            shift = hours - TEMPLATE_HOURS
            lo, hi = lo + shift, hi + shift
        else:
            lo, hi = lo * hours // TEMPLATE_HOURS, hi * hours // TEMPLATE_HOURS
            lo = max(lo, prev_hi)
            hi = max(hi, lo + 1)
        if hi > hours:
            out.append((-1, -1))
            continue
        out.append((lo, hi))
        prev_hi = hi
    return out


def incidents(*, hours: int = DEFAULT_HOURS, end: datetime | str | None = None) -> list[Incident]:
    """The ground truth: the incidents planted in a sample of ``hours`` ending at ``end`` (the
    same for every ``n`` and seed; ``end`` as in :func:`resolve_end`)."""
    check_args(0, hours)
    first = resolve_end(end) - timedelta(hours=hours - 1)
    out = []
    for (kind, segment, _, _, text), (lo, hi) in zip(
        _INCIDENTS, incident_hours(hours), strict=True
    ):
        if lo < 0:
            continue
        out.append(
            Incident(
                kind=kind,
                segment=dict(segment),
                start=first + timedelta(hours=lo),
                end=first + timedelta(hours=hi),
                description=text,
                expected=list(EXPECTED[kind]),
            )
        )
    return out


def clock(hours: int, h: int) -> tuple[int, int]:
    """(weekday, hour) of the sample clock at hour index ``h`` of a ``hours``-long sample."""
    how = (END_WEEKDAY * 24 + END_HOUR - (hours - 1 - h)) % (7 * 24)
    return how // 24, how % 24


def hour_counts(rng: random.Random, n: int, hours: int) -> list[int]:
    """How many completions each hour gets: exactly ``n`` in all, spread by the daily and weekly
    rhythm (and a factor per day), with multinomial (Poisson-like) noise per hour."""
    days = (hours + 23) // 24 + 1
    day_factor = [rng.uniform(*DAY_FACTOR) for _ in range(days)]
    weights = []
    for h in range(hours):
        weekday, hour = clock(hours, h)
        w = HOUR_WEIGHTS[hour] * (WEEKEND_FACTOR if weekday >= 5 else 1.0)
        weights.append(w * day_factor[(hours - 1 - h) // 24])
    counts = []
    left_n, left_w = n, sum(weights)
    for w in weights:
        k = _binomial(rng, left_n, min(1.0, w / left_w)) if left_w > 0 else 0
        counts.append(k)
        left_n -= k
        left_w -= w
    counts[-1] += left_n
    return counts


def _binomial(rng: random.Random, n: int, p: float) -> int:
    """A Binomial(n, p) draw: exact (by geometric skips) for a small mean, else the normal
    approximation, rounded and clamped. Pure Python, so the same on every platform."""
    if n <= 0 or p <= 0.0:
        return 0
    if p >= 1.0:
        return n
    mean = n * p
    if mean < 30:
        log_q = math.log1p(-p)
        k = 0
        trial = int(math.log(1.0 - rng.random()) / log_q) + 1  # the first success's trial
        while trial <= n:
            k += 1
            trial += int(math.log(1.0 - rng.random()) / log_q) + 1
        return k
    k = round(mean + math.sqrt(mean * (1.0 - p)) * rng.gauss(0.0, 1.0))
    return min(max(k, 0), n)
