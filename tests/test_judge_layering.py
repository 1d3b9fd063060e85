"""How the judge, the API source and the storage depend on each other: one way, down."""

from __future__ import annotations

import subprocess
import sys

from conv_pipeline.resources import JudgeResource, StoredCompletionsApiSource
from conv_pipeline.settings import API_ENV, JUDGE_ENV


def test_the_storage_loads_no_judge_code():
    code = (
        "import sys, conv_pipeline.core.storage; "
        "print(sorted(m for m in sys.modules if m.startswith('conv_pipeline.core.judge')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_environment_maps_onto_the_resources_fields():
    assert set(API_ENV) <= set(StoredCompletionsApiSource.model_fields)
    assert set(JUDGE_ENV) <= set(JudgeResource.model_fields)


def test_the_core_configs_are_built_from_the_resources_fields():
    source = StoredCompletionsApiSource(
        kind="openai",
        base_url="http://127.0.0.1:9/v1",
        api_key="",
        metadata_filter="a=b",
        model_filter="m",
        overlap_minutes=5,
        page_size=7,
    )
    config = source.api_config()
    assert (config.api_key, config.metadata, config.model, config.overlap_seconds) == (
        None,
        {"a": "b"},
        "m",
        300,
    )
    assert (config.page_size, config.concurrency) == (7, 16)
    judge = JudgeResource(model="j", kind="azure_openai", endpoint="https://x", api_key="k-1")
    connection = judge.connection("other")
    assert (connection.model, connection.endpoint, connection.api_key) == (
        "other",
        "https://x",
        "k-1",
    )
    assert "k-1" not in repr(connection)
