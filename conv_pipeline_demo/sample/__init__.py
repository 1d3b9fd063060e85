"""The bundled sample: a deterministic export of Azure OpenAI *stored completions* shaped like
real traffic of a chat assistant.

``conv-pipeline sample`` (and ``make demo``) write it so the pipeline has something real-looking to
chew on without credentials or network. Every line of a file is one stored completion exactly as
``GET /openai/v1/chat/completions/{id}`` returns it, plus ``"messages"``: the input messages as
``GET /chat/completions/{id}/messages`` returns them (its ``data`` list). docs/SAMPLE.md describes
the sample with measured figures; in short (defaults: 20,000 completions over 168 hours, ending
with the current UTC hour):

* Every prompt is composed (template, entities, numbers, pasted code/text/CSV, prefixes and
  suffixes), multi-turn conversations carry their earlier turns, answers have a real assistant's
  lengths (lognormal, a long tail up to tens of thousands of characters, a few very short ones),
  Markdown, fenced code in a dozen languages, and a fifth of the conversations are in Spanish,
  German, French, Portuguese, Russian, Chinese, Japanese, Arabic or Hindi.
* Segments in the metadata like a real app (``user_type``, ``category``, ``prompt_variant``,
  ``conversation_id``, ``pipeline_source``, ``locale``, ``app_version``, ``region``, …), four
  models, finish reasons mostly ``stop`` with some ``length``, rare ``content_filter``, tool
  calls, refusals and empty answers at low normal rates; a daily and weekly traffic rhythm.
* Four and a half quiet days, then three planted incidents of different kinds
  (:func:`incidents` gives the ground truth, ``incidents.json`` holds it beside the export).

Nothing depends on the wall clock except the default end hour: the same ``n``, ``hours`` and
``seed`` give the same content for any ``end``, only the dates move.

The code: :mod:`.texts` (the fragments, read from the JSON files in ``texts/``), :mod:`.compose`
(prompts and answers), :mod:`.profile` (the app's segments and rates), :mod:`.timeline` (end
hour, rhythm, incidents), :mod:`.generator` (traffic, conversations, records), :mod:`.record`
(a record's dict and JSON line), :mod:`.export` (the files) and :mod:`.feedback` (a feedback folder
for the sample, written by ``conv-pipeline sample`` too).
"""

from conv_pipeline_demo.sample.export import SampleSummary, write_bulk, write_sample
from conv_pipeline_demo.sample.generator import iter_sample_records
from conv_pipeline_demo.sample.profile import MAX_TOKENS, MODELS
from conv_pipeline_demo.sample.timeline import (
    DEFAULT_HOURS,
    DEFAULT_N,
    DEFAULT_SEED,
    Incident,
    incidents,
    resolve_end,
)

__all__ = [
    "DEFAULT_HOURS",
    "DEFAULT_N",
    "DEFAULT_SEED",
    "MAX_TOKENS",
    "MODELS",
    "Incident",
    "SampleSummary",
    "incidents",
    "iter_sample_records",
    "resolve_end",
    "write_bulk",
    "write_sample",
]
