"""The LLM judge, Dagster-free (docs/JUDGE.md).

``evaluators`` (rubric prompt files), ``parse`` (robust reading of a judge's answer), ``runner``
(asynchronous SDK calls within concurrency, rate and run budgets), ``cache`` (SQLite, keyed by
completion, evaluator, prompt version and model), ``pipeline`` (sampling, the
``judge_evaluations`` table, judge issues, summaries), ``store`` (files and warehouse views),
``report`` and ``insights`` (the report's judge section and LLM-written insights),
``calibration`` (agreement with a human-labelled golden set).
"""
