"""Injectable faults: rate limits, server errors, slow answers and dropped connections.

``server.faults.add("429", times=2)`` makes the next two requests answer 429; rules are consumed in
the order they were added (the first rule that matches a request and still has shots left fires),
and each rule counts how often it fired. ``every=k`` makes a rule fire on every k-th request it
matches instead (for load tests), ``times`` then bounds how often (None: without end).
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field

KINDS = ("429", "500", "503", "slow", "drop")


@dataclass
class FaultRule:
    """One programmed fault. ``fired`` counts the requests it hit; ``seen`` the ones it matched."""

    kind: str
    times: int | None = 1
    path_contains: str | None = None
    method: str | None = None
    every: int | None = None
    retry_after_ms: int = 20
    delay_s: float = 2.0
    fired: int = 0
    seen: int = 0

    @property
    def exhausted(self) -> bool:
        return self.times is not None and self.fired >= self.times

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method.upper() != method:
            return False
        return self.path_contains is None or self.path_contains in path


@dataclass
class Faults:
    """The fault program of one server (thread-safe)."""

    rules: list[FaultRule] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _fired: Counter = field(default_factory=Counter, repr=False)

    def add(
        self,
        kind: str | int,
        times: int | None = 1,
        *,
        path_contains: str | None = None,
        method: str | None = None,
        every: int | None = None,
        retry_after_ms: int = 20,
        delay_s: float = 2.0,
    ) -> FaultRule:
        """Program a fault.

        kind: ``"429"`` (with ``retry-after-ms: retry_after_ms`` and ``retry-after`` in whole
        seconds, rounded up), ``"500"``, ``"503"``, ``"slow"`` (answer normally after sleeping
        ``delay_s``: longer than the client's timeout, the client gives up while the request is
        still processed, as on the real service), ``"drop"`` (close the connection without an
        answer). ``times``: how many requests it hits (None: no end). ``path_contains`` /
        ``method``: only requests whose path contains that text / with that method.
        ``every=k``: hit every k-th matching request rather than the next ones.
        """
        kind = str(kind)
        if kind not in KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {', '.join(KINDS)}")
        if times is not None and times < 1:
            raise ValueError("times must be at least 1 (or None for no end)")
        if every is not None and every < 1:
            raise ValueError("every must be at least 1")
        rule = FaultRule(
            kind=kind,
            times=times,
            path_contains=path_contains,
            method=method,
            every=every,
            retry_after_ms=retry_after_ms,
            delay_s=delay_s,
        )
        with self._lock:
            self.rules.append(rule)
        return rule

    def every(self, k: int, kind: str | int = "500", **kwargs) -> FaultRule:
        """Fail every ``k``-th request (without end unless ``times`` is given)."""
        kwargs.setdefault("times", None)
        return self.add(kind, every=k, **kwargs)

    def take(self, method: str, path: str) -> FaultRule | None:
        """The rule that fires for this request, if any (and count it)."""
        with self._lock:
            for rule in self.rules:
                if rule.exhausted or not rule.matches(method, path):
                    continue
                rule.seen += 1
                if rule.every is not None and rule.seen % rule.every:
                    continue
                rule.fired += 1
                self._fired[rule.kind] += 1
                return rule
            return None

    @property
    def fired(self) -> int:
        """How many requests a fault hit, all rules together."""
        with self._lock:
            return sum(self._fired.values())

    def fired_by_kind(self) -> dict[str, int]:
        with self._lock:
            return dict(self._fired)

    @property
    def pending(self) -> int:
        """Shots left in rules with a bound (rules without end are not counted)."""
        with self._lock:
            return sum(r.times - r.fired for r in self.rules if r.times is not None)

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()
            self._fired.clear()
