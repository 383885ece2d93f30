"""Runs and flows as people type them: a flow name or id prefix to a flow id, a run id prefix to a run id.

A flow is identified by ``flow_id``; its name is what people type. A run id is
long; people copy the short unique prefix a listing shows, as with git. Both are
looked up in the unified ``runs`` view (live UNION archive), so a flow or run
pruned to the archive is still addressable.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

from oltp.errors import InvalidArgument

if TYPE_CHECKING:
    import polars as pl

# One row per flow id: its newest run's name and status, its run count and newest start.
FLOWS = """
select flow_id,
       arg_max(flow_name, started_at) as flow_name,
       count(*) as runs,
       max(started_at) as last_run,
       arg_max(status, started_at) as last_status
  from runs
 group by flow_id
 order by flow_name, flow_id
"""
NAMES = "select distinct flow_id, flow_name from runs"
_HEX_PREFIX = re.compile(r"[0-9a-fA-F-]{4,36}")


def resolve_run(run: object, sql: Callable[[str], pl.DataFrame], name: str = "run_id") -> uuid.UUID | None:
    """A run id from an id or a unique prefix of one (at least 4 characters); None when nothing matches."""
    if isinstance(run, uuid.UUID):
        return run
    if not isinstance(run, str) or not _HEX_PREFIX.fullmatch(run.strip()):
        raise InvalidArgument(f"{name} must be a run id or a prefix of one (4 or more hex digits), got {run!r}")
    text = run.strip().lower()
    try:
        return uuid.UUID(text)
    except ValueError:
        pass
    # The prefix is hex digits and hyphens only (checked above), so it is safe as a literal here.
    found = sql(f"select distinct id from runs where starts_with(cast(id as varchar), '{text}') limit 2")
    ids = [uuid.UUID(str(v)) for v in found.get_column("id").to_list()]
    if len(ids) > 1:
        raise InvalidArgument(f"{name} prefix {run!r} matches more than one run: give more of it")
    return ids[0] if ids else None


def resolve(flow: object, sql: Callable[[str], pl.DataFrame], name: str = "flow") -> uuid.UUID:
    """A flow id from an id, a unique id prefix, or a flow name; unknown or ambiguous names raise."""
    if isinstance(flow, uuid.UUID):
        return flow
    if not isinstance(flow, str) or not flow.strip():
        raise InvalidArgument(f"{name} must be a flow name or id, got {flow!r}")
    try:
        return uuid.UUID(flow)
    except ValueError:
        pass
    pairs = sql(NAMES)
    ids = [str(v) for v in pairs.get_column("flow_id").to_list()]
    names = [str(v) for v in pairs.get_column("flow_name").to_list()]
    by_name = sorted({i for i, n in zip(ids, names, strict=True) if n == flow})
    if not by_name and _HEX_PREFIX.fullmatch(flow):
        by_name = sorted({i for i in ids if i.startswith(flow.lower())})
    if not by_name:
        raise InvalidArgument(f"no flow named {flow!r} (flowrun flows lists them)")
    if len(by_name) > 1:
        raise InvalidArgument(f"{flow!r} names {len(by_name)} flows ({', '.join(by_name)}): give its id")
    return uuid.UUID(by_name[0])
