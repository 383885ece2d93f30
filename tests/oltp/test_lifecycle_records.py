"""Conformance: what goes in comes back out, byte for byte and to the microsecond.

Every test runs against ``RunStore`` (PostgreSQL) and ``InMemoryRunStore``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from oltp.errors import InvalidArgument
from oltp.records import FlowRunRecord, FlowStepAttemptRecord, FlowStepRecord, RunStatus, StepStatus
from tests.conftest import FakeClock
from tests.oltp.conftest import FLOW, start

ODD_JSON = [
    '{"b":1,  "a" : [1,2 ,3]}',
    '\n\t{ "nested": {"deep": [null, true, false, {}]} }\r\n ',
    '{"caf\\u00e9": "\\u00e9\\ud83d\\ude00", "esc": "\\"\\\\\\/\\b\\f\\n\\r\\t"}',
    '{"日本語": "テキスト", "emoji": "🎉🚀", "combining": "e\u0301"}',
    '{"a": 1, "a": 2}',
    "  [ ]  ",
    '"just a string"',
    "null",
    "123.4500",
    "-0.0e+00",
    "1e400",
    '{"big": 123456789012345678901234567890}',
    '{"unicode_nul_escape": "\\u0000"}',
]

HOSTILE = [
    "it's",
    'say "hi"',
    "100% done",
    "under_score",
    "back\\slash \\\\ \\n",
    "'; DROP TABLE flow_runs; --",
    '"); DELETE FROM flowrun.flow_steps; --',
    "%s %(name)s {} {0}",
    "$1 $$ $tag$",
    "línea ñandú Ærøskøbing",
    "Ünïcödé 中文 العربية",
    "emoji 🎉👩‍👩‍👧 flag 🇫🇷",
    "tab\tnew\nline\rcarriage",
    " leading and trailing ",
    "\u200b zero width \ufeff bom",
    "x" * 512,
]


def _aware(dt: datetime | None) -> bool:
    return dt is not None and dt.utcoffset() == timedelta(0)


def test_start_run_returns_the_stored_running_record(store: Any, clock: FakeClock) -> None:
    rid, source = uuid.uuid4(), uuid.uuid4()
    clock.now = datetime(2026, 3, 1, 12, 30, 45, 123456, tzinfo=UTC)
    record = store.start_run(FLOW, "nightly ETL", rid, "schedule", '{"cron": "0 * * * *"}', "job-77", source)
    assert record == FlowRunRecord(
        id=rid,
        flow_id=FLOW,
        flow_name="nightly ETL",
        status=RunStatus.RUNNING,
        trigger_key="schedule",
        trigger_data_json='{"cron": "0 * * * *"}',
        background_job_id="job-77",
        started_at=datetime(2026, 3, 1, 12, 30, 45, 123456, tzinfo=UTC),
        completed_at=None,
        source_run_id=source,
        steps=None,
    )
    assert isinstance(record.status, RunStatus)
    assert _aware(record.started_at)
    detail = store.get_run_detail(rid)
    assert detail is not None
    assert detail.steps == ()
    from dataclasses import replace

    assert replace(detail, steps=None) == record


def test_optional_run_fields_default_to_none(store: Any) -> None:
    rid = uuid.uuid4()
    record = store.start_run(FLOW, "f", rid, "manual")
    assert (record.trigger_data_json, record.background_job_id, record.source_run_id) == (None, None, None)
    detail = store.get_run_detail(rid)
    assert (detail.trigger_data_json, detail.background_job_id, detail.source_run_id) == (None, None, None)


def test_ids_given_as_strings_are_read_as_uuids(store: Any) -> None:
    rid, source = uuid.uuid4(), uuid.uuid4()
    record = store.start_run(str(FLOW), "f", str(rid).upper(), "manual", source_run_id=str(source))
    assert (record.id, record.flow_id, record.source_run_id) == (rid, FLOW, source)
    store.record_step_start(str(rid), "a", "task")
    detail = store.get_run_detail(rid)
    assert isinstance(detail.id, uuid.UUID) and detail.steps[0].run_id == rid


@pytest.mark.parametrize("text", ODD_JSON, ids=range(len(ODD_JSON)))
def test_json_fields_come_back_byte_for_byte(store: Any, text: str) -> None:
    rid = start(store, trigger_data=text)
    store.record_step_start(rid, "s", "task", input_json=text)
    store.record_step_complete(rid, "s", "Succeeded", output_json=text)
    detail = store.get_run_detail(rid)
    step = detail.steps[0]
    attempt = step.attempts[0]
    assert detail.trigger_data_json == text
    assert (step.input_json, step.output_json) == (text, text)
    assert (attempt.input_json, attempt.output_json) == (text, text)
    assert detail.trigger_data_json.encode("utf-8") == text.encode("utf-8")


def test_times_are_aware_utc_at_microsecond_precision(store: Any, clock: FakeClock) -> None:
    # The clock may answer in any zone; the store keeps the instant and hands it back in UTC.
    plus_five = timezone(timedelta(hours=5, minutes=30))
    clock.now = datetime(2026, 7, 4, 23, 59, 59, 999999, tzinfo=plus_five)
    rid = start(store)
    clock.now = datetime(2026, 7, 5, 0, 0, 0, 1, tzinfo=UTC)
    store.record_step_start(rid, "s", "task")
    clock.now = datetime(2026, 7, 5, 0, 0, 0, 2, tzinfo=UTC)
    store.record_step_complete(rid, "s", "Succeeded")
    clock.now = datetime(2026, 7, 5, 0, 0, 0, 3, tzinfo=UTC)
    store.complete_run(rid, "Succeeded")

    detail = store.get_run_detail(rid)
    step = detail.steps[0]
    times = [detail.started_at, detail.completed_at, step.started_at, step.completed_at]
    times += [step.attempts[0].started_at, step.attempts[0].completed_at]
    assert all(_aware(t) for t in times)
    assert detail.started_at == datetime(2026, 7, 4, 18, 29, 59, 999999, tzinfo=UTC)
    assert detail.started_at.microsecond == 999999 and detail.started_at.hour == 18
    assert step.started_at == step.attempts[0].started_at == datetime(2026, 7, 5, 0, 0, 0, 1, tzinfo=UTC)
    assert step.completed_at == step.attempts[0].completed_at == datetime(2026, 7, 5, 0, 0, 0, 2, tzinfo=UTC)
    assert detail.completed_at == datetime(2026, 7, 5, 0, 0, 0, 3, tzinfo=UTC)
    assert store.get_active_runs() == []


def test_step_and_attempt_fields_round_trip(store: Any, clock: FakeClock) -> None:
    rid = start(store)
    t1 = clock.advance(seconds=1)
    store.record_step_start(rid, "fetch", "http", '{"url": "https://x"}', "hangfire-1")
    t2 = clock.advance(seconds=2)
    store.record_step_complete(rid, "fetch", StepStatus.FAILED, '{"code": 503}', "upstream 503")
    step = store.get_run_detail(rid).steps[0]
    attempt = FlowStepAttemptRecord(
        rid, "fetch", 1, "http", StepStatus.FAILED, '{"url": "https://x"}', '{"code": 503}', "upstream 503",
        "hangfire-1", t1, t2,
    )  # fmt: skip
    assert step == FlowStepRecord(
        rid, "fetch", "http", StepStatus.FAILED, '{"url": "https://x"}', '{"code": 503}', "upstream 503",
        "hangfire-1", t1, t2, 1, (attempt,),
    )  # fmt: skip
    assert isinstance(step.status, StepStatus) and isinstance(step.attempts[0].status, StepStatus)


def test_empty_optional_strings_are_kept_distinct_from_none(store: Any) -> None:
    rid = start(store, job_id="")
    store.record_step_start(rid, "s", "task", job_id="")
    store.record_step_complete(rid, "s", "Failed", error_message="")
    detail = store.get_run_detail(rid)
    assert detail.background_job_id == ""
    assert detail.steps[0].job_id == "" and detail.steps[0].error_message == ""
    assert detail.steps[0].attempts[0].job_id == ""


@pytest.mark.parametrize("text", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_text_is_stored_verbatim(store: Any, text: str) -> None:
    rid = uuid.uuid4()
    store.start_run(FLOW, text, rid, text, json.dumps({text: text}), text)
    payload = json.dumps({"v": text}, ensure_ascii=False)
    store.record_step_start(rid, text, text, payload, text)
    store.record_step_complete(rid, text, "Failed", payload, text)
    assert store.try_record_dispatch(rid, text) is True
    store.annotate_dispatch(rid, text, text)
    detail = store.get_run_detail(rid)
    assert (detail.flow_name, detail.trigger_key, detail.background_job_id) == (text, text, text)
    assert detail.trigger_data_json == json.dumps({text: text})
    step = detail.steps[0]
    assert (step.step_key, step.step_type, step.job_id, step.error_message) == (text, text, text, text)
    assert step.input_json == payload and step.output_json == payload
    assert step.attempts[0].error_message == text
    assert store.get_dispatched_step_keys(rid) == frozenset({text})
    # A lookalike key (a LIKE pattern or a case change) is a different step.
    assert store.try_record_dispatch(rid, text[:511] + "%") is True
    store.release_dispatch(rid, text.upper() if text.upper() != text else text + "_")
    assert text in store.get_dispatched_step_keys(rid)


def test_clock_is_the_only_source_of_time(store: Any, clock: FakeClock) -> None:
    clock.now = datetime(1999, 12, 31, 23, 59, 59, 500000, tzinfo=UTC)
    rid = start(store)
    store.record_step_start(rid, "s", "task")
    store.record_step_complete(rid, "s", "Succeeded")
    store.complete_run(rid, "Succeeded")
    detail = store.get_run_detail(rid)
    step = detail.steps[0]
    stamps = {detail.started_at, detail.completed_at, step.started_at, step.completed_at}
    stamps |= {step.attempts[0].started_at, step.attempts[0].completed_at}
    assert stamps == {clock.now}


@pytest.mark.parametrize(
    "bad_now",
    [datetime(2026, 3, 1, 12, 0), "2026-03-01T12:00:00Z", None, 1_700_000_000],
    ids=["naive", "string", "none", "epoch"],
)
def test_a_clock_that_does_not_return_an_aware_datetime_is_rejected(store: Any, clock: FakeClock, bad_now: Any) -> None:
    rid = start(store)
    store.record_step_start(rid, "s", "task")
    before = store.get_run_detail(rid)
    good = clock.now
    clock.now = bad_now
    new = uuid.uuid4()
    calls: list[Callable[[], object]] = [
        lambda: store.start_run(FLOW, "f", new, "manual"),
        lambda: store.record_step_start(rid, "s", "task"),
        lambda: store.record_step_complete(rid, "s", "Succeeded"),
        lambda: store.complete_run(rid, "Succeeded"),
        lambda: store.try_record_dispatch(rid, "s"),
    ]
    for call in calls:
        with pytest.raises(InvalidArgument):
            call()
    clock.now = good
    assert store.get_run_detail(new) is None
    assert store.get_run_detail(rid) == before
    assert store.get_dispatched_step_keys(rid) == frozenset()


@pytest.mark.parametrize("key", ["k" * 512, "🎉" * 512, "é" * 512], ids=["ascii", "emoji", "accented"])
def test_step_keys_up_to_512_characters_work_everywhere(store: Any, key: str) -> None:
    rid = start(store)
    assert store.try_record_dispatch(rid, key) is True
    store.annotate_dispatch(rid, key, "job")
    store.record_step_start(rid, key, "task")
    store.record_step_start(rid, key, "task")
    store.record_step_complete(rid, key, "Failed")
    store.retry_step(rid, key)
    assert store.get_dispatched_step_keys(rid) == frozenset()
    step = store.get_run_detail(rid).steps[0]
    assert (step.step_key, step.attempt_count, step.status) == (key, 2, StepStatus.PENDING)


def test_long_text_outside_keys_round_trips(store: Any) -> None:
    long_text = "línea 🎉 " * 20_000
    payload = json.dumps({"rows": [long_text[:1000]] * 1000}, ensure_ascii=False)
    rid = start(store, flow_name=long_text, trigger_key=long_text, trigger_data=payload, job_id=long_text)
    store.record_step_start(rid, "s", long_text, payload, long_text)
    store.record_step_complete(rid, "s", "Failed", payload, long_text)
    detail = store.get_run_detail(rid)
    assert (detail.flow_name, detail.trigger_key, detail.background_job_id) == (long_text,) * 3
    step = detail.steps[0]
    assert (step.step_type, step.job_id, step.error_message) == (long_text,) * 3
    assert detail.trigger_data_json == step.input_json == step.output_json == payload
