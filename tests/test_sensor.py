"""``new_completions_sensor`` over a real export folder and an ephemeral instance, and the pure
helpers it is built from."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest
from conftest import BASE_HOUR, hour_key, hour_keys, make_records, write_export

from conv_pipeline.automation import changed_hours, contiguous_ranges

RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"


def tick(defs: dg.Definitions, instance: dg.DagsterInstance, cursor: str | None):
    sensor = defs.resolve_sensor_def("new_completions_sensor")
    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources=defs.resources)
    result = sensor(context)
    assert isinstance(result, dg.SensorResult)
    return result


def ranges(result: dg.SensorResult) -> list[tuple[str, str]]:
    return [(r.tags[RANGE_START], r.tags[RANGE_END]) for r in result.run_requests or []]


@pytest.fixture
def instance():
    with dg.DagsterInstance.ephemeral() as inst:
        yield inst


# ---- the sensor ------------------------------------------------------------------------------


def test_first_tick_requests_the_hours_with_data_as_one_range(defs, export, instance):
    result = tick(defs, instance, None)
    keys = hour_keys()
    assert keys == export.hours
    assert ranges(result) == [(keys[0], keys[-1])]
    (request,) = result.run_requests
    assert request.run_key and keys[0] in request.run_key and keys[-1] in request.run_key
    cursor = json.loads(result.cursor)
    assert sorted(cursor["hours"]) == keys


def test_second_tick_with_the_cursor_requests_nothing(defs, export, instance):
    first = tick(defs, instance, None)
    second = tick(defs, instance, first.cursor)
    assert not second.run_requests
    assert second.skip_reason is not None
    assert json.loads(second.cursor) == json.loads(first.cursor)


def test_run_key_is_stable_for_the_same_data(defs, export, instance):
    a = tick(defs, instance, None)
    b = tick(defs, instance, None)
    assert [r.run_key for r in a.run_requests] == [r.run_key for r in b.run_requests]


def test_a_new_file_in_a_new_hour_requests_only_that_hour(defs, export, instance, settings):
    first = tick(defs, instance, None)
    new_hour = BASE_HOUR + timedelta(hours=10)
    write_export(
        settings.local_dir,
        make_records(start=new_hour, hours=1, per_hour=12, id_prefix="chatcmpl-late"),
        files=1,
        prefix="late",
    )
    second = tick(defs, instance, first.cursor)
    assert ranges(second) == [(hour_key(new_hour), hour_key(new_hour))]
    assert hour_key(new_hour) in json.loads(second.cursor)["hours"]
    assert not tick(defs, instance, second.cursor).run_requests


def test_a_removed_file_requests_the_hour_it_emptied(defs, export, instance, settings):
    new_hour = BASE_HOUR + timedelta(hours=10)
    late = write_export(
        settings.local_dir,
        make_records(start=new_hour, hours=1, per_hour=5, id_prefix="chatcmpl-late"),
        files=1,
        prefix="late",
    )
    first = tick(defs, instance, None)
    late.files[0].unlink()
    second = tick(defs, instance, first.cursor)
    assert ranges(second) == [(hour_key(new_hour), hour_key(new_hour))]
    assert hour_key(new_hour) not in json.loads(second.cursor)["hours"]


def test_separate_hours_become_separate_runs(defs, settings, instance):
    write_export(settings.local_dir, make_records(hours=3), files=2, prefix="a")
    later = BASE_HOUR + timedelta(hours=5)
    write_export(
        settings.local_dir,
        make_records(start=later, hours=2, per_hour=10, id_prefix="chatcmpl-b"),
        files=1,
        prefix="b",
    )
    result = tick(defs, instance, None)
    keys = hour_keys()
    assert ranges(result) == [
        (keys[0], keys[2]),
        (hour_key(later), hour_key(later + timedelta(hours=1))),
    ]
    run_keys = [r.run_key for r in result.run_requests]
    assert len(set(run_keys)) == 2


def test_the_open_hour_is_requested_but_future_hours_wait(defs, export, instance, settings):
    # The current hour is a partition (end_offset=1): what arrived so far is scored now.
    # Hours that have not begun (clock skew) are not partitions yet and stay pending.
    now = int(time.time())
    current = hour_key(datetime.fromtimestamp(now, UTC))
    future = now + 3 * 3600
    records = make_records(hours=1, per_hour=4, id_prefix="chatcmpl-now")
    for r in records[:2]:
        r["created"] = now
    for r in records[2:]:
        r["created"] = future
    write_export(settings.local_dir, records, files=1, prefix="now")
    result = tick(defs, instance, None)
    keys = hour_keys()
    assert ranges(result) == [(keys[0], keys[-1]), (current, current)]
    cursor = json.loads(result.cursor)["hours"]
    assert current in cursor
    assert hour_key(datetime.fromtimestamp(future, UTC)) not in cursor
    # the future hour stays pending: the next tick requests nothing new
    again = tick(defs, instance, result.cursor)
    assert not again.run_requests


def test_the_first_tick_on_an_empty_folder_requests_nothing(defs, settings, instance):
    settings.local_dir.mkdir(parents=True)
    result = tick(defs, instance, None)
    assert not result.run_requests
    assert json.loads(result.cursor) == {"hours": {}}


# ---- the helpers -----------------------------------------------------------------------------


def test_contiguous_ranges_groups_consecutive_hours():
    keys = [
        "2025-03-10-10:00",
        "2025-03-10-08:00",
        "2025-03-10-09:00",
        "2025-03-10-12:00",
        "2025-03-10-23:00",
        "2025-03-11-00:00",
    ]
    assert contiguous_ranges(keys) == [
        ("2025-03-10-08:00", "2025-03-10-10:00"),
        ("2025-03-10-12:00", "2025-03-10-12:00"),
        ("2025-03-10-23:00", "2025-03-11-00:00"),
    ]


def test_contiguous_ranges_edge_cases():
    assert contiguous_ranges([]) == []
    assert contiguous_ranges(["2025-03-10-08:00"]) == [("2025-03-10-08:00", "2025-03-10-08:00")]
    # across a month and a year boundary
    assert contiguous_ranges(["2024-12-31-23:00", "2025-01-01-00:00"]) == [
        ("2024-12-31-23:00", "2025-01-01-00:00")
    ]


def test_changed_hours_new_changed_removed_and_unchanged():
    cursor = {"2025-03-10-08:00": "a", "2025-03-10-09:00": "b", "2025-03-10-10:00": "c"}
    digests = {"2025-03-10-08:00": "a", "2025-03-10-09:00": "B", "2025-03-10-11:00": "d"}
    assert changed_hours(cursor, digests) == [
        "2025-03-10-09:00",  # changed
        "2025-03-10-10:00",  # removed
        "2025-03-10-11:00",  # new
    ]


def test_changed_hours_empty_cursor_and_no_change():
    digests = {"2025-03-10-09:00": "x", "2025-03-10-08:00": "y"}
    assert changed_hours({}, digests) == ["2025-03-10-08:00", "2025-03-10-09:00"]
    assert changed_hours(dict(digests), digests) == []
    assert changed_hours({}, {}) == []
