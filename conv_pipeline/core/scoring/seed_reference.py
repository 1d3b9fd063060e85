"""The recipe's own Python functions, verbatim, as the reference for parity tests and benchmarks.

Copied from ``seeds/000`` (step 6 ``analyze_quality.py`` and step 7 ``pipeline_function.py``).
The pipeline never calls these on its hot path; ``conv_pipeline.core.scoring.rubric`` and
``conv_pipeline.core.scoring.issues`` are the vectorized equivalents, and the tests assert that both give
the same answer row by row.
"""

from __future__ import annotations

from typing import Dict, List  # noqa: UP035 - kept as the seed wrote it


def calculate_quality_score(conversation: Dict) -> float:  # noqa: UP006
    """Calculate quality score based on response characteristics"""
    response = conversation.get("response", "")

    # Base quality score
    score = 5.0

    # Length appropriateness (not too short, not too long)
    if 50 <= len(response) <= 500:
        score += 1.0
    elif len(response) < 30:
        score -= 1.0

    # Presence of helpful information
    helpful_indicators = ["step", "solution", "help", "recommend", "suggest", "guide"]
    if any(word in response.lower() for word in helpful_indicators):
        score += 1.0

    # Professional courtesy indicators
    courtesy_indicators = ["please", "thank you", "happy to", "glad to help"]
    if any(word in response.lower() for word in courtesy_indicators):
        score += 0.5

    # Negative indicators that reduce quality
    negative_indicators = ["sorry, i cannot", "i don't know", "unable to help"]
    if any(phrase in response.lower() for phrase in negative_indicators):
        score -= 0.5

    return min(max(score, 1.0), 10.0)


def calculate_quality_distribution(scores: List[Dict]) -> Dict:  # noqa: UP006
    """Calculate distribution of quality scores"""
    if not scores:
        return {}

    quality_values = [s["quality_score"] for s in scores]
    return {
        "excellent": len([s for s in quality_values if s >= 8.0]),
        "good": len([s for s in quality_values if 6.0 <= s < 8.0]),
        "fair": len([s for s in quality_values if 4.0 <= s < 6.0]),
        "poor": len([s for s in quality_values if s < 4.0]),
    }


def seed_length_issue(response: str) -> str | None:
    """The issue rule of the seed's ``analyze_conversation_patterns`` for one response."""
    response_length = len(response)
    if response_length < 50:
        return "response_too_short"
    elif response_length > 1000:
        return "response_too_long"
    return None
