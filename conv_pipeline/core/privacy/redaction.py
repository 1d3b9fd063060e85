"""PII redaction of the texts that leave the raw layer (docs/PRIVACY.md).

``redact_completions`` rewrites the text columns of ``raw_completions`` rows (the final answer, the
input messages, the system prompt and last user message, the refusal, tool calls and metadata) so
that every kind of personal data or secret enabled in the config is replaced by a marker,
``[REDACTED:<kind>]`` by default. The original final answer is kept beside it, in
``response_original``, only on the rows where redaction changed it: ``quality_score`` is the
seed's rubric on the original answer (its length and words change when a number is masked), and
scoring is the only reader of that column.

How it runs, per column:

1. Kinds that a regular expression identifies on its own (keys, tokens, JWTs, e-mail addresses)
   are replaced by Polars (Rust regex, vectorized), each counted first with ``count_matches``.
2. Kinds that need a check a regular expression cannot make — card numbers (Luhn), IPv4 and IPv6
   addresses (octet ranges, no version strings, ``ipaddress``), phone numbers (digit counts, no
   dates) — are first found by a vectorized candidate pattern; only the rows that hold a candidate
   are rewritten in Python, with look-arounds and the check on each candidate match.

JSON columns (``messages``, ``tool_calls``, ``metadata``) are redacted as JSON text, vectorized
too. DuckDB writes them minified with only the escapes JSON needs, so before matching, every escape
(``\\\\``, ``\\n``, ``\\t``, ``\\uXXXX`` and the others) is turned into characters no pattern matches (Unicode
noncharacters) and turned back afterwards: a token right after a ``\\n`` is found, and a marker
never lands inside an escape, so the JSON stays valid.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from conv_pipeline.core.config import PII_KINDS

# The kinds, in matching order, are the config's (one list).
KINDS = PII_KINDS

# Text columns of raw_completions that leave the raw layer, and which hold JSON.
TEXT_COLUMNS = ("response", "system_prompt", "last_user_message", "refusal")
JSON_COLUMNS = ("messages", "tool_calls", "metadata")

# ---- kinds a regular expression identifies alone -------------------------------------------------
# (pattern, keeps group 1): the same text is compiled by Rust (Polars) and Python (``re.ASCII``);
# ``\b`` is made ASCII for Rust (its Unicode word boundary has no fast DFA).
_SIMPLE: dict[str, list[tuple[str, bool]]] = {
    "azure_key": [
        # Storage / Service Bus / Event Hubs connection strings and SAS signatures.
        (
            r"((?i:AccountKey|SharedAccessKey|SharedAccessSignature)=)[A-Za-z0-9+/%_-]{16,}={0,2}",
            True,
        ),
        (r"([?&;]sig=)[A-Za-z0-9%+/_-]{16,}={0,2}", True),
        # An Azure OpenAI / APIM key after its header or setting name.
        (
            r"((?i:api[-_]?key|ocp-apim-subscription-key|subscription[-_]key|azure_openai_api_key)"
            r"[\"']?[ ]*[:=][ ]*[\"']?)[A-Za-z0-9]{32,}\b",
            True,
        ),
    ],
    "aws_key": [
        (r"\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b", False),
        (r"((?i:aws_secret_access_key)[\"']?[ ]*[:=][ ]*[\"']?)[A-Za-z0-9/+=]{40}", True),
    ],
    "jwt": [(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{10,}", False)],
    "bearer_token": [(r"\b((?i:bearer)[ ]+)[A-Za-z0-9._~+/-]{16,}=*", True)],
    "api_key": [
        (r"\bsk-(?:proj-|svcacct-|admin-|ant-)?[A-Za-z0-9_-]{20,}", False),
        (r"\bgh[pousr]_[A-Za-z0-9]{36,}", False),
        (r"\bgithub_pat_[A-Za-z0-9_]{22,}", False),
        (r"\bxox[abprs]-[A-Za-z0-9-]{10,}", False),
        (r"\bAIza[0-9A-Za-z_-]{35}", False),
    ],
    "email": [(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b", False)],
}

# ---- kinds that need a check: (candidate pattern for Rust, exact pattern for Python) -----------
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_CANDIDATE = {
    # "::", eight groups, or six groups and a dotted quad: times like 00:02:10 are not candidates.
    "ipv6": (
        r"::|[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4}){7}"
        r"|[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4}){5}:[0-9]{1,3}\."
    ),
    "ipv4": r"[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}",
    "card_number": r"[0-9](?:[ -]?[0-9]){12,18}",
    "phone": (
        r"\+[1-9][0-9]{0,2}[ .-]?\(?[0-9]|\(?[0-9]{3}\)?[ .-][0-9]{3}[ .-][0-9]{4}"
        r"|0[0-9]{1,4}[ .-][0-9]{3,4}[ .-]?[0-9]{3,4}"
    ),
}
_EXACT = {
    "ipv6": re.compile(
        r"(?<![\w:.])(?:(?:[0-9A-Fa-f]{0,4}:){2,6}" + _OCTET + r"(?:\." + _OCTET + r"){3}"
        r"|(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4})(?:%[0-9A-Za-z]+)?(?![\w:])",
        re.ASCII,
    ),
    "ipv4": re.compile(
        r"(?<![\w.])" + _OCTET + r"(?:\." + _OCTET + r"){3}(?![\w]|\.[0-9])", re.ASCII
    ),
    "card_number": re.compile(r"(?<![\w-])[0-9](?:[ -]?[0-9]){12,18}(?![\w]|-[0-9])", re.ASCII),
    "phone": re.compile(
        r"(?<![\w+.-])(?:"
        r"\+[1-9][0-9]{0,2}[ .-]?(?:\([0-9]{1,4}\)[ .-]?)?[0-9]{1,4}(?:[ .-]?[0-9]{2,4}){1,5}"
        r"|\(?[0-9]{3}\)?[ .-][0-9]{3}[ .-][0-9]{4}"
        r"|0[0-9]{1,4}[ .-][0-9]{3,4}[ .-]?[0-9]{3,4}"
        r")(?![\w]|[.-][0-9])",
        re.ASCII,
    ),
}
# A word right before a dotted quad that makes it a version, not an address.
_VERSION_WORDS = ("version", "ver", "v", "release", "build", "firmware", "build.")
_DATE = re.compile(
    r"(?:19|20)[0-9]{2}[-./ ](?:0?[1-9]|1[0-2])[-./ ](?:0?[1-9]|[12][0-9]|3[01])"
    r"|(?:0?[1-9]|[12][0-9]|3[01])[-./ ](?:0?[1-9]|1[0-2])[-./ ](?:19|20)[0-9]{2}"
)

# JSON escapes → noncharacters (never in interchange text), and back.
_BACKSLASH_PAIR = ("\\\\", "\ufdd0\ufdd0")
_ESCAPES = {"\\n": "\\\ufdd1", "\\r": "\\\ufdd2", "\\t": "\\\ufdd3", "\\b": "\\\ufdd4"}
_ESCAPES["\\f"] = "\\\ufdd5"
_ESCAPES["\\/"] = "\\\ufdd6"
_U_OPEN, _U_CLOSE = "\ufdd8", "\ufdd9"


def _rust(pattern: str) -> str:
    return pattern.replace(r"\b", r"(?-u:\b)")


def luhn_ok(digits: str) -> bool:
    """The Luhn checksum of a string of digits."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card(match: str, text: str, start: int) -> bool:
    digits = re.sub(r"[ -]", "", match)
    if not 13 <= len(digits) <= 19 or digits[0] not in "23456" or len(set(digits)) == 1:
        return False
    seps = set(re.sub(r"[0-9]", "", match))
    return len(seps) <= 1 and luhn_ok(digits)


def _ipv4(match: str, text: str, start: int) -> bool:
    before = text[max(0, start - 12) : start].rstrip(" ").lower()
    word = re.split(r"[^a-z.]", before)[-1] if before else ""
    return word not in _VERSION_WORDS


def _ipv6(match: str, text: str, start: int) -> bool:
    addr = match.split("%", 1)[0]
    if not re.search(r"[0-9]", addr) or addr.count(":") < 2:
        return False
    try:
        ipaddress.IPv6Address(addr)
    except ValueError:
        return False
    return True


def _phone(match: str, text: str, start: int) -> bool:
    digits = re.sub(r"[^0-9]", "", match)
    if not 7 <= len(digits) <= 15:
        return False
    return not _DATE.fullmatch(match.strip())


_CHECKS: dict[str, Callable[[str, str, int], bool]] = {
    "ipv6": _ipv6,
    "ipv4": _ipv4,
    "card_number": _card,
    "phone": _phone,
}


@dataclass(frozen=True)
class Redactor:
    """What to redact and how the marker looks (``privacy`` in the monitoring config)."""

    kinds: tuple[str, ...] = KINDS
    marker: str = "[REDACTED:{kind}]"

    def __post_init__(self) -> None:
        unknown = sorted(set(self.kinds) - set(KINDS))
        if unknown:
            raise ValueError(f"unknown PII kinds {unknown}; known: {list(KINDS)}")
        if "{kind}" not in self.marker:
            raise ValueError(f"the redaction marker {self.marker!r} must contain {{kind}}")

    @property
    def ordered(self) -> list[str]:
        return [k for k in KINDS if k in self.kinds]

    def label(self, kind: str) -> str:
        return self.marker.replace("{kind}", kind)

    # ---- one Python string (tests, the rare candidate rows, feedback comments) -----------------
    def redact_text(self, text: str | None) -> tuple[str | None, dict[str, int]]:
        counts: dict[str, int] = {}
        if not text:
            return text, counts
        for kind in self.ordered:
            if kind in _SIMPLE:
                for pattern, keep in _SIMPLE[kind]:
                    text, n = re.subn(
                        pattern,
                        (r"\g<1>" if keep else "") + self._py_label(kind),
                        text,
                        flags=re.ASCII,
                    )
                    if n:
                        counts[kind] = counts.get(kind, 0) + n
            else:
                text, n = self._checked(kind, text)
                if n:
                    counts[kind] = counts.get(kind, 0) + n
        return text, counts

    def _py_label(self, kind: str) -> str:
        return self.label(kind).replace("\\", "\\\\")

    def _checked(self, kind: str, text: str) -> tuple[str, int]:
        check = _CHECKS[kind]
        label = self.label(kind)
        n = 0

        def sub(m: re.Match) -> str:
            nonlocal n
            if check(m.group(0), text, m.start()):
                n += 1
                return label
            return m.group(0)

        return _EXACT[kind].sub(sub, text), n

    # ---- a column, vectorized ------------------------------------------------------------------
    @property
    def any_pattern(self) -> str:
        parts = []
        for kind in self.ordered:
            if kind in _SIMPLE:
                # No word boundaries: a superset, so text right after a JSON escape is found too.
                parts += [p.replace(r"\b", "") for p, _ in _SIMPLE[kind]]
            else:
                parts.append(_CANDIDATE[kind])
        return "|".join(f"(?:{p})" for p in parts)

    def redact_series(
        self, series: pl.Series, *, json_text: bool = False, mask: pl.Series | None = None
    ) -> tuple[pl.Series, dict]:
        """Redact a string column; returns it and the number of redactions per kind and row.

        One vectorized pass finds the rows with anything to look at; only those are rewritten."""
        per_row = pl.Series("n", [0] * series.len(), pl.Int32)
        empty = {"kinds": {}, "per_row": per_row}
        if not self.ordered or series.len() == 0 or series.null_count() == series.len():
            return series, empty
        if mask is None:
            mask = series.str.contains(self.any_pattern).fill_null(False)
        if not mask.any():
            return series, empty
        idx = mask.arg_true()
        sub = series.gather(idx)
        if json_text:
            sub = _escape(sub)
        sub, counts, hits = self._redact_dense(sub)
        if json_text:
            sub = _unescape(sub)
        out = series.scatter(idx, sub)
        per_row = per_row.scatter(idx, hits)
        return out.alias(series.name), {"kinds": counts, "per_row": per_row}

    def _redact_dense(self, s: pl.Series) -> tuple[pl.Series, dict[str, int], pl.Series]:
        counts: dict[str, int] = {}
        per_row = pl.Series("n", [0] * s.len(), pl.Int32)
        for kind in self.ordered:
            if kind in _SIMPLE:
                for pattern, keep in _SIMPLE[kind]:
                    rust = _rust(pattern)
                    hits = s.str.count_matches(rust).fill_null(0).cast(pl.Int32)
                    total = int(hits.sum())
                    if total:
                        counts[kind] = counts.get(kind, 0) + total
                        per_row = per_row + hits
                        s = s.str.replace_all(
                            rust, ("${1}" if keep else "") + self.label(kind).replace("$", "$$")
                        )
                continue
            mask = s.str.contains(_CANDIDATE[kind]).fill_null(False)
            if not mask.any():
                continue
            idx = mask.arg_true()
            new, hits = [], []
            for text in s.gather(idx).to_list():
                out, n = self._checked(kind, text)
                new.append(out)
                hits.append(n)
            total = sum(hits)
            if total:
                counts[kind] = counts.get(kind, 0) + total
                s = s.scatter(idx, pl.Series(new, dtype=pl.String))
                per_row = per_row.scatter(
                    idx, per_row.gather(idx) + pl.Series(hits, dtype=pl.Int32)
                )
        return s, counts, per_row


def _escape(s: pl.Series) -> pl.Series:
    s = s.str.replace_all(*_BACKSLASH_PAIR, literal=True)
    s = s.str.replace_all(r"\\u([0-9A-Fa-f]{4})", _U_OPEN + "${1}" + _U_CLOSE)
    return s.str.replace_many(list(_ESCAPES), list(_ESCAPES.values()))


def _unescape(s: pl.Series) -> pl.Series:
    s = s.str.replace_many(list(_ESCAPES.values()), list(_ESCAPES))
    s = s.str.replace_all(_U_OPEN + "([0-9A-Fa-f]{4})" + _U_CLOSE, "\\u${1}")
    return s.str.replace_all(_BACKSLASH_PAIR[1], _BACKSLASH_PAIR[0], literal=True)


def redact_completions(
    frame: pl.DataFrame, redactor: Redactor | None
) -> tuple[pl.DataFrame, dict[str, int]]:
    """Redact the text columns of ``raw_completions`` rows; keep the original answer in
    ``response_original`` where it changed; count redactions per row (``pii_redactions``) and per
    kind (the returned dict). ``redactor=None`` (redaction off) only adds the two columns."""
    if redactor is None or frame.height == 0 or not redactor.kinds:
        return (
            frame.with_columns(
                pl.lit(None, pl.String).alias("response_original"),
                pl.lit(0, pl.Int32).alias("pii_redactions"),
            ),
            {},
        )
    totals: dict[str, int] = {}
    per_row = pl.Series("pii_redactions", [0] * frame.height, pl.Int32)
    updates = []
    columns = [c for c in (*TEXT_COLUMNS, *JSON_COLUMNS) if c in frame.columns]
    # One select: Polars scans the columns in parallel for rows with anything to look at.
    masks = frame.select(
        pl.col(c).str.contains(redactor.any_pattern).fill_null(False).alias(c) for c in columns
    )
    for column in columns:
        out, stats = redactor.redact_series(
            frame[column], json_text=column in JSON_COLUMNS, mask=masks[column]
        )
        for kind, n in stats["kinds"].items():
            totals[kind] = totals.get(kind, 0) + n
        per_row = per_row + stats["per_row"]
        updates.append(out)
    original = frame["response"]
    redacted = frame.with_columns(updates)
    changed = redacted["response"].ne_missing(original)
    redacted = redacted.with_columns(
        pl.when(pl.lit(changed)).then(pl.lit(original)).otherwise(None).alias("response_original"),
        per_row.alias("pii_redactions"),
    )
    return redacted, {k: totals[k] for k in KINDS if k in totals}


def redactor_from(settings) -> Redactor | None:
    """The redactor of the ``privacy`` config section (None when redaction is off)."""
    if not settings.redact or not settings.kinds:
        return None
    return Redactor(kinds=tuple(settings.kinds), marker=settings.marker)


def redact_excerpts(rejected: pl.DataFrame, redactor: Redactor | None = None) -> pl.DataFrame:
    """The ``raw_excerpt`` of rejected lines, redacted (every kind unless told otherwise): a
    rejected line is shown to people to fix the input's format, never its personal data."""
    if rejected.height == 0 or "raw_excerpt" not in rejected.columns:
        return rejected
    out, _ = (redactor or Redactor()).redact_series(rejected["raw_excerpt"])
    return rejected.with_columns(out)
