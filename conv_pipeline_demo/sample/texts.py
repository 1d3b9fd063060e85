"""The sample's texts, read once per process from the JSON files in ``texts/`` (package data).

* ``en_<category>.json`` — one conversation category in English: ``slots`` (values of the
  ``{slot}`` placeholders; a value may hold slots itself), ``prompts`` (templates of a first user
  message), ``intros`` (an answer's first sentence, filled with the same values as the prompt),
  ``sentences`` (answer sentences), ``headings``; ``en_translation.json`` adds ``notes``.
* ``common.json`` — what every category shares: prompt ``prefixes``, ``suffixes`` and
  ``contexts``; answer ``openers``, ``closers``, ``generic`` sentences, ``short_answers`` and
  ``hedges`` (sentences with the seed rubric's negative phrases); ``followups`` and
  ``continue_prompts``; ``refusal_prompts``/``refusals`` and ``filtered_prompts``;
  ``paste_texts`` (text users paste into a prompt); the system prompt parts (``systems``); the
  app's function ``tools``; the answers of the planted incidents (``incident_analysis``,
  ``incident_variant``).
* ``i18n.json`` — per language code: its ``name``, ``locales``, ``prompts``, ``topics``,
  ``sentences``, ``headings``, ``openers``, ``closers``, ``short`` and the translations of
  ``phrases_en``.
* ``code.json`` — fenced-code ``snippets`` by language and which languages each category uses.

Placeholders are ``{name}``; the generator fills them (see :mod:`.compose`). Values come back as
JSON gives them (lists), wrapped in tuples where the generator indexes them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources

_PACKAGE = "conv_pipeline_demo.sample"

#: The conversation categories, each with its ``texts/en_<category>.json``.
CATEGORIES = (
    "coding",
    "writing",
    "knowledge",
    "data_analysis",
    "math",
    "advice",
    "translation",
    "chitchat",
)


def _load(name: str) -> dict:
    path = resources.files(_PACKAGE) / "texts" / f"{name}.json"
    return json.loads(path.read_text(encoding="utf-8"))


@dataclass(frozen=True)
class Texts:
    categories: dict[str, dict]
    common: dict
    i18n: dict
    code: dict


@cache
def texts() -> Texts:
    """Every text file, parsed (cached: the files are read once per process)."""
    return Texts(
        categories={c: _load(f"en_{c}") for c in CATEGORIES},
        common=_load("common"),
        i18n=_load("i18n"),
        code=_load("code"),
    )


def tool_definition(name: str, description: str, parameters: dict[str, str]) -> dict:
    """A function tool as the app sends it (every parameter a required string)."""
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {
                "type": "object",
                "properties": {
                    k: {"type": "string", "description": v} for k, v in parameters.items()
                },
                "required": list(parameters),
            },
        },
    }
