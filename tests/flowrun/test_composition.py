"""``FlowRunStore`` composes a lifecycle store and a reader: nothing either offers may be missing from it.

The delegation is explicit (typed methods a reader can see), so this test is
what keeps it from drifting: every public method of ``oltp.RunStore`` and of
``olap.RunAnalytics`` must exist on ``FlowRunStore`` with the same parameters
(names, kinds, defaults) and return annotation.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import pytest

from flowrun import FlowRunStore
from olap.analytics import RunAnalytics
from oltp.contract import LifecycleStore
from oltp.store import RunStore


def _public_methods(cls: type) -> list[str]:
    return sorted(name for name, member in inspect.getmembers(cls, inspect.isfunction) if not name.startswith("_"))


def _shape(function: Callable[..., object]) -> tuple[list[tuple[str, object, object]], object]:
    signature = inspect.signature(function)
    parameters: list[tuple[str, object, object]] = [
        (p.name, p.kind, p.default) for p in signature.parameters.values() if p.name != "self"
    ]
    return parameters, signature.return_annotation


@pytest.mark.parametrize("part", [RunStore, RunAnalytics, LifecycleStore], ids=lambda c: c.__name__)
def test_every_public_method_of_a_part_is_on_the_store_with_its_signature(part: type) -> None:
    missing = [name for name in _public_methods(part) if not hasattr(FlowRunStore, name)]
    assert missing == [], f"FlowRunStore lacks {missing} of {part.__name__}: add a typed delegating method"
    for name in _public_methods(part):
        ours, theirs = _shape(getattr(FlowRunStore, name)), _shape(getattr(part, name))
        assert ours == theirs, f"FlowRunStore.{name} differs from {part.__name__}.{name}"


def test_the_store_is_not_a_subclass_of_its_parts() -> None:
    assert not issubclass(FlowRunStore, RunStore)
    assert not issubclass(FlowRunStore, RunAnalytics)
    hints = inspect.get_annotations(FlowRunStore.__init__, eval_str=True)
    assert hints["lifecycle"] is RunStore and hints["analytics"] is RunAnalytics
