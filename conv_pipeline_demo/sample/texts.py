"""The sample's texts — prompts, answers and the parts answers are built from — read from the JSON
files in ``texts/`` (package data).

``texts/common.json`` holds what every scenario shares:

* ``openers`` and ``closers``: wrapped around answer bodies (the last of each is empty: answers
  without an opening or a closing line); ``short``: curt answers any scenario may give;
  ``refusals``: the model's refusals; ``continue_prompts``: what users say after a cut answer;
* ``degraded_system``, ``degraded_curt`` and ``degraded_evasive``: the bad ``v2`` billing prompt
  that goes out in the degraded window, and the answers it produces.

``texts/<user_type>.json`` holds one scenario:

* ``category``; ``system``: the system prompt by ``prompt_variant``;
* ``fill``: the values of the ``{slots}`` in the topics;
* ``intros``, ``steps`` and ``notes``: the parts of long step-by-step answers; ``closers``: extra
  closers for this scenario;
* ``topics``: each question with the answers that fit it — ``ask``: prompts; ``good``: answer
  bodies (wrapped in openers/closers); ``plain``, ``unsure``, ``short``, ``uni``: answers of those
  kinds; ``broad``: a long step-by-step guide also fits. Slots are filled consistently within a
  topic;
* ``followups``: ``[question, good body, plain answer or ""]``;
* ``short_any``, ``unsure_any``, ``plain_any``: answers that fit any question of the scenario;
* ``unicode_pairs``: ``[prompt, answer]`` in other languages; ``refusal_prompts`` and
  ``filtered_prompts``: what gets a refusal or a ``content_filter`` stop;
* ``tools``: the function tools the app sends (``name``, ``description``, ``parameters``: name ->
  description; all strings, all required), or null;
* ``flows``: tool calls — ``ask``: prompts; ``fill``: slot -> values, where a value that is a dict
  fills several slots that must agree, and a string names a list in ``shared_fill``; ``args`` and
  ``result``: the call's arguments and the tool's result; ``answer``: the model's answer once it
  has the result.

The files are read once per process; the values come back as JSON gives them (lists, not tuples).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources

_PACKAGE = "conv_pipeline_demo.sample"


@dataclass(frozen=True)
class _Common:
    """The texts every scenario shares (``texts/common.json``)."""

    openers: tuple[str, ...]
    closers: tuple[str, ...]
    short: tuple[str, ...]
    refusals: tuple[str, ...]
    continue_prompts: tuple[str, ...]
    degraded_system: str
    degraded_curt: tuple[str, ...]
    degraded_evasive: tuple[str, ...]


def _load(name: str) -> dict:
    path = resources.files(_PACKAGE) / "texts" / f"{name}.json"
    return json.loads(path.read_text(encoding="utf-8"))


@cache
def common_texts() -> _Common:
    d = _load("common")
    return _Common(
        openers=tuple(d["openers"]),
        closers=tuple(d["closers"]),
        short=tuple(d["short"]),
        refusals=tuple(d["refusals"]),
        continue_prompts=tuple(d["continue_prompts"]),
        degraded_system=d["degraded_system"],
        degraded_curt=tuple(d["degraded_curt"]),
        degraded_evasive=tuple(d["degraded_evasive"]),
    )


def _tool(name: str, description: str, parameters: dict[str, str]) -> dict:
    """A function tool definition as the app sends it (all parameters strings, all required)."""
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


def scenario_texts(user_type: str) -> dict:
    """The texts of one scenario (``texts/<user_type>.json``), with its tool definitions expanded
    and the shared fills of its flows resolved."""
    d = _load(user_type)
    if d.get("tools"):
        d["tools"] = [_tool(t["name"], t["description"], t["parameters"]) for t in d["tools"]]
    shared = d.pop("shared_fill", {})
    for flow in d.get("flows", ()):
        flow["fill"] = {
            slot: shared[values] if isinstance(values, str) else values
            for slot, values in flow["fill"].items()
        }
    return d
