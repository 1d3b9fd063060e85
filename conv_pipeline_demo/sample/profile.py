"""The app the sample imitates: its segments, models, answer lengths and the rates of the special
shapes. Every figure here is stable over time (a baseline per segment makes sense); only the
planted incidents (:mod:`.timeline`) change them, inside their windows.

The app is a general chat assistant ("Atlas" in the Northwind Workspace app) used from the web,
the mobile apps, a Teams bot and a public API, by free, paying, team, enterprise and education
users, in many languages.
"""

from __future__ import annotations

MODELS = ("gpt-4o-2024-08-06", "gpt-4o-mini-2024-07-18", "gpt-4.1-2025-04-14", "o4-mini-2025-04-16")
REASONING_MODELS = frozenset({"o4-mini-2025-04-16"})

#: user_type -> share of conversations.
USER_TYPES = {"free": 0.47, "plus": 0.29, "team": 0.13, "enterprise": 0.08, "edu": 0.03}

#: category -> share of conversations for every user type together. ``data_analysis`` is the
#: same eighth of every user type's traffic; the others tilt per user type (below).
CATEGORIES = {
    "coding": 0.25,
    "writing": 0.16,
    "knowledge": 0.16,
    "data_analysis": 0.125,
    "math": 0.07,
    "advice": 0.09,
    "translation": 0.05,
    "chitchat": 0.095,
}
CATEGORY_TILT = {
    "free": {"chitchat": 1.6, "translation": 1.3, "coding": 0.85},
    "plus": {},
    "team": {"coding": 1.25, "writing": 1.15, "chitchat": 0.4, "math": 0.6},
    "enterprise": {"coding": 1.25, "writing": 1.15, "chitchat": 0.4, "math": 0.6},
    "edu": {"math": 2.5, "knowledge": 1.4, "advice": 0.6, "chitchat": 0.7},
}
FIXED_CATEGORY = "data_analysis"

#: user_type -> model -> share.
MODEL_MIX = {
    "free": {MODELS[1]: 0.85, MODELS[0]: 0.15},
    "plus": {MODELS[0]: 0.45, MODELS[2]: 0.30, MODELS[3]: 0.25},
    "team": {MODELS[0]: 0.40, MODELS[2]: 0.40, MODELS[3]: 0.20},
    "enterprise": {MODELS[2]: 0.60, MODELS[0]: 0.30, MODELS[3]: 0.10},
    "edu": {MODELS[1]: 0.60, MODELS[0]: 0.40},
}
#: The answer cap (max_completion_tokens) the app sets per user type.
MAX_TOKENS = {"free": 1200, "plus": 4096, "team": 4096, "enterprise": 16384, "edu": 4096}
#: The cap the faulty ``v8`` rollout shipped with.
V8_MAX_TOKENS = 1024

#: language -> share of conversations (not for ``translation``, whose prompts are English).
LANGUAGES = {
    "en": 0.80,
    "es": 0.05,
    "de": 0.035,
    "fr": 0.035,
    "pt": 0.02,
    "ru": 0.02,
    "zh": 0.025,
    "ja": 0.015,
    "ar": 0.008,
    "hi": 0.007,
}
EN_LOCALES = ("en-US", "en-US", "en-US", "en-US", "en-GB", "en-IN", "en-CA", "en-AU")
#: UTF-8 bytes per character of an answer, about, per language (the cap counts bytes / 4).
BYTES_PER_CHAR = {"zh": 2.6, "ja": 2.6, "hi": 2.6, "ar": 1.8, "ru": 1.8}

#: Median answer length (characters, English) per category; the spread is lognormal.
MEDIAN_CHARS = {
    "coding": 1550,
    "writing": 1150,
    "knowledge": 1150,
    "data_analysis": 1200,
    "math": 950,
    "advice": 1200,
    "translation": 400,
    "chitchat": 280,
}
LENGTH_SIGMA = 0.6
#: A few answers come from a much longer tail: share and spread.
TAIL_SHARE, TAIL_SIGMA = 0.025, 1.1
MODEL_LENGTH = {MODELS[0]: 1.0, MODELS[1]: 0.85, MODELS[2]: 1.15, MODELS[3]: 0.9}
LANGUAGE_LENGTH = {"zh": 0.4, "ja": 0.4, "hi": 0.8, "ar": 0.8, "ru": 0.85}
FOLLOWUP_LENGTH = 0.8

#: prompt_variant -> share of new conversations in quiet times (an A/B test of a concise prompt).
VARIANTS = {"v7": 0.8, "v7-concise": 0.2}
CONCISE_LENGTH = 0.55

#: Turns (completions) per conversation -> share.
TURNS = {1: 0.58, 2: 0.20, 3: 0.10, 4: 0.06, 5: 0.03, 6: 0.02, 8: 0.01}

PIPELINE_SOURCES = {"chat-web": 0.58, "chat-mobile": 0.30, "teams-bot": 0.07, "public-api": 0.05}
APP_VERSIONS = {
    "chat-web": ("web-5.14.2", "web-5.14.1", "web-5.13.9"),
    "chat-mobile": ("ios-5.12.0", "android-5.12.1", "ios-5.11.4", "android-5.10.0"),
    "teams-bot": ("teams-2.3.0",),
    "public-api": ("api-v1",),
}
REGIONS = ("eastus", "eastus", "eastus2", "westeurope", "westeurope", "swedencentral",
           "japaneast", "australiaeast", "centralindia")  # fmt: skip
#: Odd metadata values a real app stores now and then (key ``note``).
ODD_NOTES = (
    "", "null", '{"nested": {"ok": true}}', "ünïcödé ✓ 测试", "  padded  ", "0", "a" * 512,
)  # fmt: skip

# Rates of the special shapes in healthy traffic.
REFUSAL_RATE = 0.006  # first turns asking for something disallowed: message.refusal
FILTER_RATE = 0.0035  # first turns stopped by the content filter
EMPTY_RATE = 0.003  # an empty answer (content "") for no visible reason
SHORT_RATE = (0.015, 0.05)  # a very short answer: first turn, later turns
TOOL_RATE = 0.07  # of first turns where the app offers tools and the category fits
TOOL_CATEGORIES = {
    "knowledge": "web_search",
    "advice": "web_search",
    "data_analysis": "run_python",
    "math": "run_python",
    "writing": "search_documents",
    "coding": "search_documents",
}
TOOL_USER_TYPES = ("plus", "team", "enterprise")

# The planted incidents' mechanics (windows and segments in :mod:`.timeline`).
SEGMENT_CURT, SEGMENT_REFUSING = 0.62, 0.16  # data_analysis answers inside the window
OUTAGE_EMPTY, OUTAGE_FILTER = 0.40, 0.12  # every answer inside the window
V8_SHARE = 0.35  # of new conversations inside the window (taken from v7)
V8_LENGTH = 3.5
