"""The bundled sample: a deterministic, realistic export of Azure OpenAI *stored completions*.

``conv-pipeline sample`` (and ``make demo``) write it so the pipeline has something real-looking to
chew on without credentials or network. Every line of a file is one stored completion exactly as
``GET /openai/v1/chat/completions/{id}`` returns it, plus ``"messages"``: the input messages as
``GET /chat/completions/{id}/messages`` returns them (its ``data`` list). See docs/DATA.md and the
"Local export format" section of the design.

What the sample contains (defaults: 3,000 completions over 72 hours from 2025-03-03 00:00 UTC):

* The recipe's four scenarios with their system prompts — ``customer_support``/``technical_issue``,
  ``sales_inquiry``/``product_info``, ``onboarding``/``getting_started`` and
  ``billing_support``/``account_management`` (``v2`` adds a line to each system prompt). Each has
  about ten topics (an upload that crashes, a plan comparison, a double charge, …) whose prompts
  come with answers that fit them, in different qualities: good answers (50–500 characters,
  helpful and courteous), long step-by-step guides (500–1000), rambling ones (> 1000), curt ones
  (< 50), answers that say "I don't know" / "Sorry, I cannot" / "unable to help", and plain
  answers without any of the recipe's indicator words. Answers are assembled from parts (opener,
  body, closer), so they vary. A few prompts and answers are in French, German, Spanish,
  Japanese, Chinese or Korean, or carry emoji.
* A day/night traffic pattern (UTC, quieter at the weekend), lines sorted by ``created``.
* Metadata on every record, strings only: ``user_type``, ``category``, ``conversation_id``,
  ``pipeline_source`` (``"sample"``), ``prompt_variant`` (``v1``/``v2``), ``timestamp`` (ISO time
  of ``created``, as the recipe's generator sets it), ``channel``, ``region`` and ``turn``.
* Multi-turn conversations (2–4 completions sharing a ``conversation_id``; each later input holds
  the earlier turns), tool calls (``content: null``, ``tool_calls``, ``finish_reason
  "tool_calls"``, then a follow-up whose input has the assistant's call and the ``tool`` result),
  answers cut by ``max_tokens`` (``finish_reason "length"``), ``content_filter`` stops and model
  refusals (``message.refusal`` set, ``content`` null) — each a percent or two of the traffic.
* Realistic ``usage`` (about four characters per token, a few more per message, plus the tool
  definitions), two models (``gpt-4o`` and ``gpt-4o-mini``), and the request parameters the
  service stores (``temperature``, ``tools``, …).
* One planted incident, so the reports and alerts have something to find: between hour 30 and hour
  42 of the sample (:data:`DEGRADED_WINDOW`) a bad ``v2`` billing prompt goes out together with an
  invoice-day surge of billing traffic, and ``user_type=billing_support, prompt_variant=v2``
  (:data:`DEGRADED_SEGMENT`) answers turn curt, unhelpful or refusing. That segment's average
  recipe score inside the window is far below 6.0 (about 4.6) and most of its answers are under 50
  characters; the window's hours average about 5.7 overall, while every other hour averages well
  above 6.0 (about 6.9).

Everything is derived from ``random.Random(seed)`` — never the wall clock — so the same arguments
give byte-identical files. :func:`iter_sample_records` generates the records in memory (streaming;
records may share read-only nested objects such as ``tools``, so copy one before mutating it) and
:func:`write_bulk` writes large volumes for benchmarks (about a million records in 20–30 seconds
of generation plus the writing).

The code: :mod:`.constants` (span, incident, models), :mod:`.texts` (the prompts, answers and
phrases, read from the JSON files in ``texts/``), :mod:`.pools` (the answers assembled from
them), :mod:`.generator` (traffic, conversations, records), :mod:`.export` (the files) and
:mod:`.feedback` (a feedback folder for the sample, written by ``conv-pipeline sample`` too).
"""

from conv_pipeline_demo.sample.constants import (
    DEFAULT_HOURS,
    DEFAULT_N,
    DEFAULT_SEED,
    DEGRADED_HOURS,
    DEGRADED_SEGMENT,
    DEGRADED_WINDOW,
    MAX_TOKENS,
    MODELS,
    SAMPLE_START,
    degraded_window,
)
from conv_pipeline_demo.sample.export import SampleSummary, write_bulk, write_sample
from conv_pipeline_demo.sample.generator import iter_sample_records

__all__ = [
    "DEFAULT_HOURS",
    "DEFAULT_N",
    "DEFAULT_SEED",
    "DEGRADED_HOURS",
    "DEGRADED_SEGMENT",
    "DEGRADED_WINDOW",
    "MAX_TOKENS",
    "MODELS",
    "SAMPLE_START",
    "SampleSummary",
    "degraded_window",
    "iter_sample_records",
    "write_bulk",
    "write_sample",
]
