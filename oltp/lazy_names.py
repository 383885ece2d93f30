"""Public names a package loads on first use (PEP 562), so that importing the package stays cheap.

A reading process (``flowrun runs --search``) imports ``flowrun`` and ``oltp`` for their
errors and records; the stores behind their other public names pull in the write path,
so each loads only when the name is first used, then stays in the package's namespace.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, MutableMapping, Sequence


def loader(
    package: str, modules: Mapping[str, str], namespace: MutableMapping[str, object], public: Sequence[str]
) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """The package's ``__getattr__`` and ``__dir__`` for the names in ``modules`` (name -> defining module)."""

    def getattr_(name: str) -> object:
        module = modules.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    def dir_() -> list[str]:
        return sorted({*namespace, *public})

    return getattr_, dir_
