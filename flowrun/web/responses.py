"""JSON answers of the API: plain JSON of the store's records, bounded in size.

``json_response`` writes strict JSON (``flowrun.jsonable``) and refuses, with a
413, anything over the configured limit rather than stream megabytes to a
browser. ``detail_json`` is a run detail whose large JSON fields (inputs,
outputs, trigger data, error messages) are cut at ``max_field_chars``; each cut
field is named in the object's ``truncated`` list, and its whole value has its
own URL (``/api/runs/{id}/value``).
"""

from __future__ import annotations

import json
from typing import Any

from fastapi.responses import Response

from flowrun import jsonable
from flowrun.web.errors import ResponseTooLarge
from oltp.records import FlowRunRecord

_CUT_FIELDS = ("input_json", "output_json", "error_message")


def json_response(value: Any, limit: int, *, status_code: int = 200) -> Response:
    """``value`` as a JSON response, or ``ResponseTooLarge`` past ``limit`` bytes."""
    body = json.dumps(jsonable.jsonable(value), allow_nan=False, ensure_ascii=False, separators=(",", ":")).encode()
    if len(body) > limit:
        raise ResponseTooLarge(f"the answer is {len(body):,} bytes, over this server's limit of {limit:,}")
    return Response(body, status_code=status_code, media_type="application/json")


def _cut(item: dict[str, Any], fields: tuple[str, ...], limit: int) -> dict[str, Any]:
    truncated = []
    for name in fields:
        value = item.get(name)
        if isinstance(value, str) and len(value) > limit:
            item[name] = value[:limit]
            truncated.append(name)
    item["truncated"] = truncated
    return item


def detail_json(run: FlowRunRecord, limit: int) -> dict[str, Any]:
    """The run with steps and attempts as JSON, large fields cut at ``limit`` characters."""
    data = jsonable.jsonable(run)
    assert isinstance(data, dict)
    _cut(data, ("trigger_data_json",), limit)
    for step in data.get("steps") or []:
        _cut(step, _CUT_FIELDS, limit)
        for attempt in step.get("attempts") or []:
            _cut(attempt, _CUT_FIELDS, limit)
    return data


def field_value(run: FlowRunRecord, step_key: str | None, attempt: int | None, field: str) -> str | None:
    """One whole field of a run, a step (its current state) or one of its attempts; LookupError if absent."""
    if step_key is None:
        if field != "trigger_data_json" or attempt is not None:
            raise LookupError("a run has only the field trigger_data_json")
        return run.trigger_data_json
    if field not in _CUT_FIELDS:
        raise LookupError(f"field must be one of {', '.join(_CUT_FIELDS)}")
    for step in run.steps or []:
        if step.step_key == step_key:
            if attempt is None:
                return getattr(step, field)  # type: ignore[no-any-return]
            for one in step.attempts or []:
                if one.attempt == attempt:
                    return getattr(one, field)  # type: ignore[no-any-return]
            raise LookupError(f"step {step_key!r} has no attempt {attempt}")
    raise LookupError(f"run {run.id} has no step {step_key!r}")
