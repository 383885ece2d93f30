"""``AsyncFlowRunStore`` offers every public name of ``FlowRunStore``, awaited, with the same parameters.

Methods must be coroutine functions with the same parameters (names, kinds,
defaults, annotations) and return annotation; properties must be properties
with the same type; the public instance attributes of opened stores, the same
types. Being a coroutine is the only difference allowed, apart from the short
lists of exceptions below, each with its reason.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from flowrun import AsyncFlowRunStore, FlowRunStore

# FlowRunStore name -> its AsyncFlowRunStore counterpart, where the name differs.
RENAMED = {
    # Opening is awaited (the pool opens in it), so it is named like psycopg's AsyncConnection.connect.
    "open": "connect",
    # The context-manager protocol of asyncio has its own dunders.
    "__enter__": "__aenter__",
    "__exit__": "__aexit__",
}
# Public instance attributes of FlowRunStore that AsyncFlowRunStore has not, and why.
NOT_ON_ASYNC = {
    # The async store is its own lifecycle store (an oltp.AsyncRunStore): its lifecycle methods are its own.
    "lifecycle",
}


def _public_names(cls: type) -> list[str]:
    return sorted(name for name in dir(cls) if not name.startswith("_"))


def _static(cls: type, name: str) -> Any:
    """The class attribute as defined (a function, property, classmethod), not as bound by getattr."""
    return inspect.getattr_static(cls, name)


def _function(member: Any) -> Callable[..., Any]:
    return member.__func__ if isinstance(member, classmethod | staticmethod) else member


def _own_name(annotation: object) -> str:
    # A method returning its own store (open/connect, __enter__/__aenter__) names its own class.
    return str(annotation).replace("AsyncFlowRunStore", "FlowRunStore")


Parameter = tuple[str, object, object, str]  # name, kind, default, annotation


def _shape(function: Callable[..., Any]) -> tuple[list[Parameter], str]:
    signature = inspect.signature(function)
    parameters: list[Parameter] = [
        (p.name, p.kind, p.default, str(p.annotation)) for p in signature.parameters.values()
    ]
    return parameters, _own_name(signature.return_annotation)


def _pairs() -> list[tuple[str, str]]:
    names = [*_public_names(FlowRunStore), "__enter__", "__exit__"]
    return [(name, RENAMED.get(name, name)) for name in names]


def test_every_public_name_of_the_sync_store_has_an_async_counterpart() -> None:
    missing = [theirs for _, theirs in _pairs() if not hasattr(AsyncFlowRunStore, theirs)]
    assert missing == [], f"AsyncFlowRunStore lacks {missing}: add an awaited method delegating to the same code"
    stale = [name for name in RENAMED if not hasattr(FlowRunStore, name)]
    assert stale == [], f"exceptions for names FlowRunStore no longer has: {stale}"


@pytest.mark.parametrize(("name", "counterpart"), _pairs(), ids=[name for name, _ in _pairs()])
def test_the_counterpart_is_awaited_with_the_same_parameters(name: str, counterpart: str) -> None:
    sync_member, async_member = _static(FlowRunStore, name), _static(AsyncFlowRunStore, counterpart)
    if isinstance(sync_member, property):
        assert isinstance(async_member, property), f"AsyncFlowRunStore.{counterpart} should be a property"
        assert sync_member.fget is not None and async_member.fget is not None
        assert _shape(async_member.fget) == _shape(sync_member.fget)
        return
    assert type(async_member) is type(sync_member), f"{counterpart}: {type(async_member)} for {type(sync_member)}"
    sync_function, async_function = _function(sync_member), _function(async_member)
    assert not inspect.iscoroutinefunction(sync_function)
    assert inspect.iscoroutinefunction(async_function), f"AsyncFlowRunStore.{counterpart} is not awaited"
    assert _shape(async_function) == _shape(sync_function), f"AsyncFlowRunStore.{counterpart} differs from {name}"


def test_the_public_attributes_of_an_open_sync_store_are_on_an_open_async_one(dsn: str, tmp_path: Path) -> None:
    def public(store: object) -> dict[str, type]:
        return {name: type(value) for name, value in vars(store).items() if not name.startswith("_")}

    settings: dict[str, Any] = {"dsn": dsn, "archive": tmp_path / "archive", "home": tmp_path, "migrate": False}
    with FlowRunStore.open(**settings) as sync_store:
        wanted = {name: kind for name, kind in public(sync_store).items() if name not in NOT_ON_ASYNC}

    async def opened() -> dict[str, type]:
        async with await AsyncFlowRunStore.connect(**settings) as store:
            return public(store)

    found = asyncio.run(opened())
    assert {name: found.get(name) for name in wanted} == wanted and set(NOT_ON_ASYNC) <= set(public(sync_store))
