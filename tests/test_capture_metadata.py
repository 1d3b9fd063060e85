"""The capture helpers' metadata rules (the service's limits), without a server."""

import pytest

from conv_pipeline.capture import MetadataError, build_metadata, validate_metadata
from conv_pipeline.core.ingestion.api import parse_metadata_filter


def test_limits_accept_the_edges():
    md = {f"k{i:02d}": "v" * 512 for i in range(16)}
    md["k00"] = "x"
    assert validate_metadata(md) == md
    assert validate_metadata({"a" * 64: ""}) == {"a" * 64: ""}


@pytest.mark.parametrize(
    "metadata, needle",
    [
        ({f"k{i}": "v" for i in range(17)}, "17 keys (at most 16)"),
        ({"a" * 65: "v"}, "65 characters (at most 64)"),
        ({"k": "v" * 513}, "513 characters (at most 512)"),
        ({"k": 3}, "k: value is int, not a string"),
        ({"k": True}, "k: value is bool, not a string"),
        ({"k": None}, "k: value is NoneType"),
        ({"": "v"}, "is not a non-empty string"),
        ({1: "v"}, "is not a non-empty string"),
    ],
)
def test_limits_refuse_with_the_reason(metadata, needle):
    with pytest.raises(MetadataError, match="metadata refused") as err:
        validate_metadata(metadata)
    assert needle in str(err.value)


def test_every_problem_is_named_at_once():
    with pytest.raises(MetadataError) as err:
        validate_metadata({"a" * 70: "v", "n": 1})
    assert "70 characters" in str(err.value) and "n: value is int" in str(err.value)


def test_standard_keys_and_extra():
    md = build_metadata(user_type="u", category="c", conversation_id="x", extra={"tenant": "t"})
    assert md == {"user_type": "u", "category": "c", "conversation_id": "x", "tenant": "t"}
    with pytest.raises(MetadataError, match="given twice"):
        build_metadata(user_type="u", extra={"user_type": "other"})


def test_metadata_filter_forms():
    assert parse_metadata_filter("") == {}
    assert parse_metadata_filter("a=1, b = two ,") == {"a": "1", "b": "two"}
    assert parse_metadata_filter('{"a": "x=y"}') == {"a": "x=y"}
    with pytest.raises(ValueError, match="not key=value"):
        parse_metadata_filter("a=1,b")
    with pytest.raises(ValueError, match="strings to strings"):
        parse_metadata_filter('{"a": 1}')
