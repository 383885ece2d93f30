"""The REST API: the store's reporting methods as JSON under ``/api``.

Every route validates its parameters first (``flowrun.web.params``), calls one
public ``FlowRunStore`` method (or the cached ``flowrun.insights``), and answers
JSON bounded in size (``flowrun.web.responses``). Routes are plain functions:
FastAPI runs them in its thread pool, and the store is thread-safe. Nothing here
runs SQL a client wrote: there is no ``sql()`` over HTTP. The writes, retrying
a step and requesting a run's cancellation, exist only when actions are enabled (which requires a token) and only
for requests that say so in an ``X-Flowrun-Action`` header, which a cross-site
form cannot send.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel

from flowrun import insights, jsonable
from flowrun.web import events, params, presence
from flowrun.web import schemas as out
from flowrun.web.context import UiContext, context
from flowrun.web.responses import detail_json, field_value, json_response
from flowrun.web.schemas import documented
from oltp import arguments
from oltp.errors import RunNotFound

router = APIRouter(prefix="/api")
Ui = Annotated[UiContext, Depends(context)]
Text = str | None


def _runs_json(ui: UiContext, runs: list[Any]) -> list[dict[str, Any]]:
    live = presence.live_ids(ui.store, [run.id for run in runs])
    out = []
    for run in runs:
        item = jsonable.jsonable(run)
        item.pop("steps", None)
        item["archived"] = run.id not in live
        out.append(item)
    return out


@router.get(
    "/statistics",
    responses=documented(out.Statistics, 503),
    summary="Flows, active runs, runs succeeded and failed today (UTC)",
)
def statistics(ui: Ui) -> Response:
    return json_response(ui.store.get_statistics(), ui.settings.max_response_bytes)


@router.get(
    "/timeseries",
    responses=documented(out.Timeseries, 400, 503),
    summary="Runs per hour or day by status, with p50/p95/p99 durations in ms",
)
def timeseries(
    ui: Ui,
    granularity: Annotated[Text, Query(description="hour or day (default day)")] = None,
    since: Annotated[Text, Query(description="window start, ISO-8601 with offset")] = None,
    until: Annotated[Text, Query(description="window end (exclusive); default: end of the current bucket")] = None,
    window: Annotated[Text, Query(description="window length when since is absent, e.g. 24h, 30d")] = None,
    flow_id: Annotated[Text, Query(description="only runs of this flow id")] = None,
) -> Response:
    grain = params.granularity(granularity)
    flow = params.flow_id(flow_id)
    start, end = params.window(
        grain,
        params.instant(since, "since"),
        params.instant(until, "until"),
        params.duration(window, "window"),
        ui.now(),
    )
    buckets = ui.store.get_run_timeseries(grain, start, end, flow)
    body = {"granularity": grain.value, "since": start, "until": end, "flow_id": flow, "buckets": buckets}
    return json_response(body, ui.settings.max_response_bytes)


@router.get(
    "/runs",
    responses=documented(out.RunsPage, 400, 413, 503),
    summary="A page of runs, newest first, filtered by flow, status and free-text search",
)
def runs(
    ui: Ui,
    flow_id: Annotated[Text, Query(description="only runs of this flow id")] = None,
    status: Annotated[Text, Query(description="a run status, any case")] = None,
    search: Annotated[Text, Query(description="case-insensitive substring (ids, names, keys, errors, outputs)")] = None,
    skip: Annotated[Text, Query(description="runs to skip (default 0)")] = None,
    take: Annotated[Text, Query(description="runs per page, 1-1000 (default 50)")] = None,
) -> Response:
    flow = params.flow_id(flow_id)
    run_status = params.status(status)
    term = params.search(search)
    first, size = params.paging(skip, take)
    page = ui.store.get_runs_page(flow_id=flow, status=run_status, skip=first, take=size, search=term)
    body = {"total_count": page.total_count, "skip": first, "take": size, "runs": _runs_json(ui, page.runs)}
    return json_response(body, ui.settings.max_response_bytes)


@router.get(
    "/runs/{run_id}",
    responses=documented(out.RunDetail, 400, 404, 413),
    summary="One run with its steps, every attempt, dispatch state; large fields cut",
)
def run_detail(ui: Ui, run_id: str) -> Response:
    rid = params.run_id(run_id)
    run = ui.store.get_run_detail(rid)
    if run is None:
        raise RunNotFound(rid)
    body = detail_json(run, ui.settings.max_field_chars)
    body["archived"] = not presence.live_ids(ui.store, [rid])
    body["dispatched_step_keys"] = sorted(ui.store.get_dispatched_step_keys(rid))
    body["cancel_requested"] = ui.store.is_cancel_requested(rid)
    body["actions"] = ui.settings.actions
    return json_response(body, ui.settings.max_response_bytes)


@router.get(
    "/runs/{run_id}/value",
    responses=documented(out.FieldValue, 400, 404, 413),
    summary="One whole field of a run, step or attempt (as cut in the detail)",
)
def run_value(
    ui: Ui,
    run_id: str,
    field: Annotated[str, Query(description="trigger_data_json, input_json, output_json or error_message")],
    step: Annotated[Text, Query(description="the step key (absent for the run's trigger data)")] = None,
    attempt: Annotated[Text, Query(description="the attempt number (absent for the step's current state)")] = None,
) -> Response:
    rid = params.run_id(run_id)
    number = None if attempt is None else params.integer(attempt, "attempt", 0)
    if step is not None:
        arguments.step_key(step)
    run = ui.store.get_run_detail(rid)
    if run is None:
        raise RunNotFound(rid)
    try:
        value = field_value(run, step, number, field)
    except LookupError as exc:
        raise HTTPException(404, str(exc)) from None
    return json_response({"field": field, "value": value}, ui.settings.max_response_bytes)


@router.get(
    "/runs/{run_id}/derived",
    responses=documented(out.Derived, 400, 413),
    summary="Runs re-run from this one, newest first",
)
def derived(ui: Ui, run_id: str) -> Response:
    rid = params.run_id(run_id)
    body = {"source_run_id": rid, "runs": _runs_json(ui, ui.store.get_derived_runs(rid))}
    return json_response(body, ui.settings.max_response_bytes)


@router.get(
    "/flows",
    responses=documented(out.Flows, 503),
    summary="Every flow with runs: counts, failure share, p50/p95/p99 of completed runs",
)
def flows(ui: Ui) -> Response:
    found = ui.insights.get()
    body = {"computed_at": found.computed_at, "flows": found.flows, "slowest": insights.slowest_flows(found.flows, 8)}
    return json_response(body, ui.settings.max_response_bytes)


@router.get(
    "/errors",
    responses=documented(out.TopErrors, 503),
    summary="The most frequent step errors (flow, step, message), every attempt counted",
)
def top_errors(ui: Ui) -> Response:
    found = ui.insights.get()
    body = {"computed_at": found.computed_at, "errors": found.top_errors}
    return json_response(body, ui.settings.max_response_bytes)


@router.get(
    "/health",
    responses=documented(out.Health),
    summary="Whether the server listens for changes, and how many streams are open",
)
def health(ui: Ui) -> Response:
    body = {"feed_live": ui.feed.live, "streams": ui.feed.subscribers, "actions": ui.settings.actions}
    return json_response(body, ui.settings.max_response_bytes)


@router.get(
    "/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
    summary="Server-sent events: run and step changes, with a heartbeat",
)
async def change_events(request: Request, ui: Ui) -> StreamingResponse:
    return events.response(request, ui.feed, ui.settings.heartbeat)


class RetryStep(BaseModel):
    """Body of a retry: the step to send back to Pending."""

    step_key: str


@router.post(
    "/runs/{run_id}/retry",
    responses=documented(out.Retried, 400, 403, 404),
    summary="Retry a step (actions enabled only)",
)
def retry(
    ui: Ui,
    run_id: str,
    body: RetryStep,
    x_flowrun_action: Annotated[str | None, Header(description="must be present: proves a script, not a form")] = None,
) -> Response:
    _allow_action(ui, x_flowrun_action)
    rid = params.run_id(run_id)
    key = arguments.step_key(body.step_key)
    ui.store.retry_step(rid, key)
    return json_response({"run_id": rid, "step_key": key, "retried": True}, ui.settings.max_response_bytes)


@router.post(
    "/runs/{run_id}/cancel",
    responses=documented(out.CancelRequested, 400, 403, 404),
    summary="Ask a Running run's workers to stop (actions enabled only)",
)
def cancel(
    ui: Ui,
    run_id: str,
    x_flowrun_action: Annotated[str | None, Header(description="must be present: proves a script, not a form")] = None,
) -> Response:
    _allow_action(ui, x_flowrun_action)
    rid = params.run_id(run_id)
    requested = ui.store.request_cancel(rid)
    return json_response({"run_id": rid, "requested": requested}, ui.settings.max_response_bytes)


def _allow_action(ui: UiContext, header: str | None) -> None:
    if not ui.settings.actions:
        raise HTTPException(403, "actions are disabled on this server (start it with --actions and a token)")
    if not header:
        raise HTTPException(403, "actions need the X-Flowrun-Action header")
