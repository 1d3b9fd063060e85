"""Parity of the vectorized scoring / issue rules with the seed's own Python functions.

``conv_pipeline.core.scoring.seed_reference`` holds the recipe's ``calculate_quality_score``,
``calculate_quality_distribution`` and the ``response_too_short`` / ``response_too_long`` rule
verbatim; the Polars expressions must give the same answer for every row.
"""

from __future__ import annotations

import random
import string
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from conv_pipeline.core.schema import RAW_COMPLETIONS, conform
from conv_pipeline.core.scoring.issues import categorize_issues, seed_length_issue_expr
from conv_pipeline.core.scoring.rubric import (
    COURTESY_INDICATORS,
    HELPFUL_INDICATORS,
    NEGATIVE_INDICATORS,
    quality_band_expr,
    quality_score_expr,
    score_frame,
)
from conv_pipeline.core.scoring.seed_reference import (
    calculate_quality_distribution,
    calculate_quality_score,
    seed_length_issue,
)

SEED_LENGTH_ISSUES = {"response_too_short", "response_too_long"}
KELVIN = "\u212a"  # KELVIN SIGN, lower-cases to ASCII "k"
DOTTED_I = "\u0130"  # LATIN CAPITAL LETTER I WITH DOT ABOVE, lower-cases to "i" + U+0307


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def seed_score(text: str | None) -> float:
    # The seed reads conversation.get("response", ""); a null content counts as "".
    return calculate_quality_score({"response": "" if text is None else text})


def seed_issue(text: str | None) -> str | None:
    return seed_length_issue("" if text is None else text)


def seed_band(score: float) -> str:
    dist = calculate_quality_distribution([{"quality_score": score}])
    (band,) = [name for name, n in dist.items() if n == 1]
    return band


def raw_frame(texts: list[str | None]) -> pl.DataFrame:
    base = datetime(2024, 10, 1, tzinfo=UTC)
    df = pl.DataFrame(
        {
            "completion_id": [f"chatcmpl-{i:06d}" for i in range(len(texts))],
            "created_at": [base + timedelta(seconds=i) for i in range(len(texts))],
            "partition_key": ["2024-10-01-00:00"] * len(texts),
            "model": ["gpt-4o"] * len(texts),
            "finish_reason": ["stop"] * len(texts),
            "n_tool_calls": [0] * len(texts),
            "response": texts,
        },
        schema_overrides={"response": pl.String},
    )
    return conform(df, RAW_COMPLETIONS)


def assert_parity(texts: list[str | None]) -> None:
    """score_frame, quality_score_expr, seed_length_issue_expr and categorize_issues vs the seed."""
    raw = raw_frame(texts)
    scored = score_frame(raw).collect()
    assert scored.height == len(texts)
    assert scored["completion_id"].to_list() == raw["completion_id"].to_list()

    expected_scores = [seed_score(t) for t in texts]
    expected_lengths = [len(t or "") for t in texts]
    expected_issues = [seed_issue(t) for t in texts]

    # score_frame
    got_scores = scored["quality_score"].to_list()
    bad = [
        (i, texts[i], got_scores[i], expected_scores[i])
        for i in range(len(texts))
        if got_scores[i] != expected_scores[i]
    ]
    assert not bad, f"{len(bad)} score mismatches, first ones: {bad[:5]!r}"
    assert scored["response_length"].to_list() == expected_lengths

    # quality_score_expr on its own, and seed_length_issue_expr on the code-point length
    direct = raw.select(
        quality_score_expr(pl.col("response")).alias("score"),
        seed_length_issue_expr(pl.col("response").fill_null("").str.len_chars()).alias("issue"),
    )
    assert direct["score"].to_list() == expected_scores
    got_issues = direct["issue"].to_list()
    bad = [
        (i, texts[i], got_issues[i], expected_issues[i])
        for i in range(len(texts))
        if got_issues[i] != expected_issues[i]
    ]
    assert not bad, f"{len(bad)} length-issue mismatches, first ones: {bad[:5]!r}"

    # quality band == the seed's calculate_quality_distribution bands, row by row and in total
    expected_bands = [seed_band(s) for s in expected_scores]
    assert scored["quality_band"].to_list() == expected_bands
    dist = calculate_quality_distribution([{"quality_score": s} for s in expected_scores])
    counts = dict(scored["quality_band"].value_counts().iter_rows())
    assert {b: counts.get(b, 0) for b in dist} == dist

    # categorize_issues: exactly the seed's length issue per completion, nothing else of that kind
    issues = categorize_issues(scored, low_quality_below=6.0)
    seed_rows = issues.filter(pl.col("issue").is_in(list(SEED_LENGTH_ISSUES)))
    got = dict(seed_rows.select("completion_id", "issue").iter_rows())
    assert seed_rows["completion_id"].n_unique() == seed_rows.height  # at most one per completion
    want = {
        cid: issue
        for cid, issue in zip(raw["completion_id"].to_list(), expected_issues, strict=True)
        if issue is not None
    }
    assert got == want
    # the issue rows carry the row's score and length
    check = seed_rows.join(
        scored.select("completion_id", "quality_score", "response_length"),
        on="completion_id",
        suffix="_scored",
    )
    assert (check["quality_score"] == check["quality_score_scored"]).all()
    assert (check["response_length"] == check["response_length_scored"]).all()


# ---------------------------------------------------------------------------------------------
# hand-picked edge cases
# ---------------------------------------------------------------------------------------------

EDGE_CASES: dict[str, str | None] = {
    "none": None,
    "empty": "",
    "len_1": "x",
    "len_29": "a" * 29,
    "len_30": "a" * 30,
    "len_49": "a" * 49,
    "len_50": "a" * 50,
    "len_500": "a" * 500,
    "len_501": "a" * 501,
    "len_1000": "a" * 1000,
    "len_1001": "a" * 1001,
    "len_29_helpful": ("help" + "z" * 25),
    "len_50_helpful_courtesy": ("Please see the guide." + "." * 29),
    "len_1001_negative": "I don't know. " + "b" * 987,
    "upper_helpful": "FOLLOW THESE STEPS",
    "upper_courtesy": "THANK YOU FOR WAITING",
    "upper_negative": "SORRY, I CANNOT DO THAT",
    "upper_unable": "UNABLE TO HELP",
    "upper_dont_know": "I DON'T KNOW",
    "mixed_case": "I Don'T kNoW, pLeAsE ReCoMmEnD",
    "kelvin_thank_you": f"THAN{KELVIN} YOU",
    "kelvin_thank_you_long": f"THAN{KELVIN} YOU " * 5,
    "kelvin_alone": KELVIN,
    "dotted_i_dont_know": f"{DOTTED_I} DON'T KNOW",
    "dotted_i_sorry": f"SORRY, {DOTTED_I} CANNOT",
    "dotted_i_many": DOTTED_I * 40,
    "dotted_i_49": DOTTED_I * 49,
    "dotted_i_50": DOTTED_I * 50,
    "greek_final_sigma": "ΟΔΥΣΣΕΥΣ ΣΑΣ ΕΥΧΑΡΙΣΤΩ",
    "greek_sigma_long": "ΣΑΣ " * 20 + "PLEASE",
    "emoji_29": "😀" * 29,
    "emoji_30": "😀" * 30,
    "emoji_49": "👍" * 49,
    "emoji_50": "👍" * 50,
    "emoji_500": "🎉" * 500,
    "emoji_501": "🎉" * 501,
    "emoji_1000": "🎉" * 1000,
    "emoji_1001": "🎉" * 1001,
    "cjk_30": "谢" * 30,
    "cjk_50_help": "帮助" * 23 + "help",
    "cjk_1001": "漢" * 1001,
    "zwj_family": "👨‍👩‍👧‍👦" * 10,
    "combining_29": "e\u0301" * 14 + "x",
    "combining_50": "e\u0301" * 25,
    "combining_in_phrase": "ste\u0301p by step",
    "combining_breaks_phrase": "gu\u0308ide me",
    "nul": "\u0000",
    "nul_in_phrase": "help\u0000please" + "\u0000" * 40,
    "crlf": "Thank you\r\nHere are the steps\r\n",
    "crlf_phrase_split": "thank\r\nyou",
    "every_indicator": (
        "step solution help recommend suggest guide please thank you happy to glad to help "
        "sorry, i cannot i don't know unable to help"
    ),
    "every_indicator_upper": (
        "STEP SOLUTION HELP RECOMMEND SUGGEST GUIDE PLEASE THANK YOU HAPPY TO GLAD TO HELP "
        "SORRY, I CANNOT I DON'T KNOW UNABLE TO HELP"
    ),
    "only_negative_short": "i don't know",
    "typographic_dont_know": "I don’t know",
    "typographic_dont_know_long": "I don’t know what you mean, could you explain that again?",
    "sorry_no_comma": "sorry i cannot",
    "substring_in_word": "misstep helpful guidebook",
    "nbsp_thank_you": "thank\u00a0you",
    "tabs_newlines": "\t\n\t\n   \n",
    "line_separator": "happy\u2028to",
    "fullwidth": "ＳＴＥＰ ｂｙ ｓｔｅｐ",
    "private_use_plane16": "\U0010fffd" * 31,
    "noncharacter": "\uffff\ufffe" * 25,
    "bom": "\ufeffplease",
    "rtl": "שלום, " * 12 + "please",
    "score_ceiling": "Please follow these steps: " + "x" * 100,
    "score_floor": "sorry, i cannot",
}


@pytest.mark.parametrize("name", list(EDGE_CASES))
def test_edge_case_matches_seed(name: str) -> None:
    assert_parity([EDGE_CASES[name]])


def test_all_edge_cases_in_one_frame() -> None:
    assert_parity(list(EDGE_CASES.values()))


def test_known_values_of_the_rubric() -> None:
    """Spot values computed by hand from the seed's rubric (guards the reference itself)."""
    texts = [
        None,  # "" → too short: 5 - 1
        "a" * 30,  # 30 ≤ len < 50: no length points
        "a" * 50,  # +1
        "Please follow these steps carefully. " + "a" * 20,  # +1 length +1 helpful +0.5 courtesy
        "I DON'T KNOW",  # -1 length -0.5 negative
        "I don’t know",  # typographic apostrophe: not the seed's negative phrase
        f"THAN{KELVIN} YOU",  # Kelvin sign lower-cases to "k": courtesy +0.5, -1 length
        f"{DOTTED_I} DON'T KNOW",  # "i̇ don't know" does not contain "i don't know"
    ]
    scored = score_frame(raw_frame(texts)).collect()
    assert scored["quality_score"].to_list() == [4.0, 5.0, 6.0, 7.5, 3.5, 4.0, 4.5, 4.0]
    assert scored["quality_band"].to_list() == [
        "fair",
        "fair",
        "good",
        "good",
        "poor",
        "fair",
        "fair",
        "fair",
    ]
    assert scored["has_negative_indicator"].to_list() == [
        False,
        False,
        False,
        False,
        True,
        False,
        False,
        False,
    ]
    assert scored["has_courtesy_indicator"].to_list()[6] is True
    assert [seed_score(t) for t in texts] == scored["quality_score"].to_list()


def test_indicator_flags_match_seed_lists() -> None:
    texts = list(EDGE_CASES.values())
    scored = score_frame(raw_frame(texts)).collect()
    for column, phrases in [
        ("has_helpful_indicator", HELPFUL_INDICATORS),
        ("has_courtesy_indicator", COURTESY_INDICATORS),
        ("has_negative_indicator", NEGATIVE_INDICATORS),
    ]:
        expected = [any(p in (t or "").lower() for p in phrases) for t in texts]
        assert scored[column].to_list() == expected, column


def test_indicator_lists_are_the_seed_lists() -> None:
    assert HELPFUL_INDICATORS == ["step", "solution", "help", "recommend", "suggest", "guide"]
    assert COURTESY_INDICATORS == ["please", "thank you", "happy to", "glad to help"]
    assert NEGATIVE_INDICATORS == ["sorry, i cannot", "i don't know", "unable to help"]


def test_band_boundaries_match_seed_distribution() -> None:
    scores = [1.0, 3.5, 3.999, 4.0, 5.5, 5.999, 6.0, 7.5, 7.999, 8.0, 9.5, 10.0]
    frame = pl.DataFrame({"s": scores}).select(quality_band_expr(pl.col("s")).alias("band"))
    assert frame["band"].to_list() == [seed_band(s) for s in scores]


# ---------------------------------------------------------------------------------------------
# property-style: many random strings around the length boundaries
# ---------------------------------------------------------------------------------------------

INDICATOR_PHRASES = HELPFUL_INDICATORS + COURTESY_INDICATORS + NEGATIVE_INDICATORS
WHITESPACE = [" ", "  ", "\t", "\n", "\r\n", "\u00a0", "\u2028", "\u3000", "\u0000"]
# (low, high) code point ranges, surrogates excluded.
PLANES = [
    (0x20, 0x7E),  # ASCII printable
    (0x80, 0x24F),  # Latin-1 / Latin Extended
    (0x370, 0x3FF),  # Greek (sigma, final sigma)
    (0x300, 0x36F),  # combining marks
    (0x400, 0x4FF),  # Cyrillic
    (0x2100, 0x214F),  # letterlike symbols (Kelvin, Angstrom)
    (0x4E00, 0x9FFF),  # CJK
    (0xE000, 0xFFFF),  # private use .. specials (nonchars included)
    (0x1F300, 0x1FAFF),  # emoji
    (0x20000, 0x2A6DF),  # CJK Extension B (plane 2)
    (0xE0000, 0xE007F),  # tags (plane 14)
    (0x100000, 0x10FFFF),  # supplementary private use B (plane 16)
    (0x0, 0xD7FF),  # anything below the surrogates
]
SPECIALS = [KELVIN, DOTTED_I, "Σ", "ς", "ẞ", "ǅ", "Å", "’", "‘", "ﬁ", "\u0307"]
TARGET_LENGTHS = [
    0,
    1,
    2,
    28,
    29,
    30,
    31,
    48,
    49,
    50,
    51,
    499,
    500,
    501,
    502,
    999,
    1000,
    1001,
    1002,
]


def _mangle_case(rng: random.Random, phrase: str) -> str:
    choice = rng.random()
    if choice < 0.3:
        return phrase
    if choice < 0.5:
        return phrase.upper()
    if choice < 0.7:
        return "".join(c.upper() if rng.random() < 0.5 else c for c in phrase)
    if choice < 0.8:
        return phrase.upper().replace("K", KELVIN)
    if choice < 0.9:
        return phrase.upper().replace("I", DOTTED_I)
    return phrase.replace("'", "’")


def _random_piece(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.30:
        return "".join(rng.choices(string.ascii_letters, k=rng.randint(1, 12)))
    if kind < 0.50:
        return _mangle_case(rng, rng.choice(INDICATOR_PHRASES))
    if kind < 0.65:
        return rng.choice(WHITESPACE)
    if kind < 0.72:
        return rng.choice(SPECIALS)
    lo, hi = rng.choice(PLANES)
    cps = []
    for _ in range(rng.randint(1, 6)):
        cp = rng.randint(lo, hi)
        if 0xD800 <= cp <= 0xDFFF:
            cp = 0xFFFD
        cps.append(chr(cp))
    return "".join(cps)


def random_texts(seed: int, n: int) -> list[str | None]:
    rng = random.Random(seed)
    texts: list[str | None] = []
    for _ in range(n):
        if rng.random() < 0.01:
            texts.append(None)
            continue
        target = rng.choice(TARGET_LENGTHS) if rng.random() < 0.8 else rng.randint(0, 1200)
        parts: list[str] = []
        size = 0
        while size < target:
            piece = _random_piece(rng)
            parts.append(piece)
            size += len(piece)
        text = "".join(parts)
        # Cut to exactly the target most of the time (this may split a phrase, which is fine);
        # otherwise keep the natural overshoot.
        if rng.random() < 0.85:
            text = text[:target]
        texts.append(text)
    return texts


def test_random_texts_cover_the_boundaries() -> None:
    texts = random_texts(20240601, 20_000)
    lengths = {len(t or "") for t in texts}
    assert {0, 29, 30, 49, 50, 500, 501, 1000, 1001} <= lengths
    assert any(t and any(ord(c) > 0xFFFF for c in t) for t in texts)
    assert all(t is None or not any(0xD800 <= ord(c) <= 0xDFFF for c in t) for t in texts)


@pytest.mark.parametrize("seed", [1, 20240601])
def test_random_strings_match_seed(seed: int) -> None:
    assert_parity(random_texts(seed, 12_000))


def test_random_indicator_dense_strings_match_seed() -> None:
    """Short strings made mostly of indicator phrases in all casings (the score's hard part)."""
    rng = random.Random(7)
    texts = []
    for _ in range(5_000):
        parts = [
            _mangle_case(rng, rng.choice(INDICATOR_PHRASES))
            if rng.random() < 0.7
            else rng.choice(WHITESPACE + SPECIALS)
            for _ in range(rng.randint(0, 8))
        ]
        texts.append("".join(parts))
    assert_parity(texts)


def test_every_character_next_to_the_indicator_phrases_matches_seed():
    """Scoring matches phrases ASCII-case-insensitively instead of lower-casing: prove it against
    Python's str.lower() for each character standing in for, or next to, a phrase's letters."""
    import polars as pl

    from conv_pipeline.core.scoring.rubric import quality_score_expr
    from conv_pipeline.core.scoring.seed_reference import calculate_quality_score

    points = [*range(0x80, 0x3000), *range(0x3000, 0x110000, 13), 0x130, 0x212A, 0x17F, 0x131]
    chars = [chr(cp) for cp in points if not 0xD800 <= cp <= 0xDFFF]
    templates = ["THAN{c} YOU", "i don't {c}now", "{c}ELP", "sorry, {c} cannot", "glad to hel{c}"]
    texts = [t.format(c=c) for c in chars for t in templates]
    ours = pl.DataFrame({"response": texts}).select(quality_score_expr(pl.col("response")))
    expected = [calculate_quality_score({"response": t}) for t in texts]
    mismatches = [
        t for t, a, b in zip(texts, ours.to_series().to_list(), expected, strict=True) if a != b
    ]
    assert mismatches == []
