"""The ``improvement`` section of the monitoring config."""

from __future__ import annotations

import json

import pytest

from conv_pipeline.core.config import DEFAULT_CONFIG_PATH, MonitoringConfig, load_config


def test_the_bundled_file_spells_out_the_defaults():
    raw = json.loads(DEFAULT_CONFIG_PATH.read_text())
    assert "improvement" in raw
    assert load_config().improvement == MonitoringConfig().improvement


def test_a_config_without_the_section_gets_the_defaults(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"pipeline_settings": {}}))
    cfg = load_config(path)
    assert cfg.improvement.drift.baseline_days == 7
    assert cfg.improvement.finetune.min_quality == 7.0


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"drift": {"baseline_day": 7}}, "baseline_day"),  # misspelt key
        ({"finetune": {"validation_fraction": 1.5}}, "validation_fraction"),
        ({"clusters": {"k_min": 5, "k_max": 3}}, "k_max"),
        ({"experiments": {"alpha": 0}}, "alpha"),
    ],
)
def test_bad_values_are_clear_errors(tmp_path, section, message):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"improvement": section}))
    with pytest.raises(ValueError, match=message):
        load_config(path)
