"""The LLM judge, Dagster-free (docs/JUDGE.md).

Its modules depend on each other one way only, from the bottom up:

* ``types``: what they share: where the judge is (``JudgeConnection``, its client built by
  ``core/clients.py``), a call (``JudgeTask``) and its ``Outcome``, a run's bounds
  (``RunLimits``), the columns of ``judge_evaluations`` and ``judge_calibration`` (declared in
  ``core/schema.py``);
* ``parse`` (robust reading of a judge's answer), ``evaluators`` (rubric prompt files), ``cache``
  (SQLite, keyed by completion, evaluator, prompt version and model);
* ``runner``: the calls, asynchronously, within concurrency, rate and run budgets;
* ``pipeline``: sampling, judging through the cache and the runner, the ``judge_evaluations``
  table, judge issues and summaries;
* on top: ``store`` (files, the cache's place, retention), ``calibration`` (agreement with a
  human-labelled golden set), ``insights`` (LLM-written insights) and ``report`` (the report's
  judge section).
"""
