"""Generate the sync lifecycle store from its async source (psycopg's way: one source, checked in CI).

``oltp/async_store.py`` is the only hand-written store over PostgreSQL; this
script turns it into ``oltp/store.py`` by plain token rewrites (``async def`` ->
``def``, ``await x`` -> ``x``, ``AsyncDatabase`` -> ``Database``, ...) and formats
the result with ruff. ``tests/oltp/test_generated.py`` runs it with ``--check``,
so an edit to either file alone fails the suite.

    python tools/async_to_sync.py           # rewrite oltp/store.py
    python tools/async_to_sync.py --check   # exit 1 if oltp/store.py is stale
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "oltp" / "async_store.py"
TARGET = ROOT / "oltp" / "store.py"

HEADER = (
    "# Generated from oltp/async_store.py by tools/async_to_sync.py: do not edit;"
    " change the async source and run the script.\n"
)
# Applied in order, as regular expressions over the whole text.
REWRITES: tuple[tuple[str, str], ...] = (
    (r"\basync def ", "def "),
    (r"\basync with ", "with "),
    (r"\basync for ", "for "),
    (r"\bawait ", ""),
    (r"__aenter__", "__enter__"),
    (r"__aexit__", "__exit__"),
    (r"\bAsyncRunStore\b", "RunStore"),
    (r"\bAsyncDatabase\b", "Database"),
    (r"\boltp\.async_connection\b", "oltp.connection"),
    (r"on PostgreSQL, for asyncio\.", "on PostgreSQL."),
    (r"Opens the connection pool now \(also done on first use\)\.", "The pool opened when the store was made."),
)


def generate(source: str) -> str:
    """The sync module's text for the async module's text (before formatting)."""
    text = source
    for pattern, replacement in REWRITES:
        text = re.sub(pattern, replacement, text)
    return HEADER + text


def formatted(text: str) -> str:
    """``text`` with imports sorted and laid out by ruff (the project's settings)."""
    for command in (["check", "--select", "I", "--fix", "--quiet"], ["format"]):
        text = subprocess.run(
            [sys.executable, "-m", "ruff", *command, "--stdin-filename", str(TARGET), "-"],
            input=text,
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        ).stdout
    return text


def main(argv: list[str]) -> int:
    expected = formatted(generate(SOURCE.read_text(encoding="utf-8")))
    if "--check" in argv:
        if TARGET.read_text(encoding="utf-8") != expected:
            print(f"{TARGET.relative_to(ROOT)} is stale: run python tools/async_to_sync.py", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(expected, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
