"""The run search term: what counts as no search, and the predicates it becomes on each side.

A search is a case-insensitive substring match over a run's id text, flow name,
trigger key, status and background job id, and over the step key, error message
and output of every attempt of the run (a step's current fields always mirror
one of its attempts, so attempts cover steps). Live runs are matched by
PostgreSQL ``ILIKE`` over the expressions that carry ``pg_trgm`` GIN indexes
(``oltp.search_expressions``); archived runs by DuckDB ``ILIKE`` field by field. Both sides
get the same pattern, the term with ``\\``, ``%`` and ``_`` escaped so they match
themselves.
"""

from __future__ import annotations

from dataclasses import dataclass

from oltp import arguments as arg
from oltp.search_expressions import ATTEMPT_SEARCH_EXPRESSION, RUN_SEARCH_EXPRESSION, SEARCH_SEPARATOR

_UUID_TEXT_CHARS = frozenset("0123456789abcdef-")


@dataclass(frozen=True, slots=True)
class SearchTerm:
    """A non-blank search term as given (not trimmed)."""

    text: str

    @property
    def like_pattern(self) -> str:
        """``%term%`` with ``\\``, ``%`` and ``_`` escaped so they match themselves (PostgreSQL LIKE)."""
        escaped = self.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return f"%{escaped}%"


def search_term(value: object) -> SearchTerm | None:
    """None for no search (None, empty or whitespace only), else the term untouched."""
    text = arg.optional_text(value, "search")
    if text is None or not text.strip():
        return None
    return SearchTerm(text)


def pg_predicate(placeholder: str) -> str:
    """Live-side match of ``flow_runs`` rows against the ILIKE pattern bound to ``placeholder``.

    The expressions are repeated verbatim from ``oltp.search_expressions`` so PostgreSQL can use the
    trigram indexes built on them; the two sides are a UNION rather than an OR so each
    one can be a bitmap index scan.
    """
    return (
        f"id IN (SELECT id FROM flow_runs WHERE {RUN_SEARCH_EXPRESSION} ILIKE {placeholder}"
        f" UNION ALL SELECT run_id FROM flow_step_attempts WHERE {ATTEMPT_SEARCH_EXPRESSION} ILIKE {placeholder})"
    )


def pg_predicate_per_field(placeholder: str) -> str:
    """Like ``pg_predicate`` but field by field, for terms holding the expressions' separator."""
    run_fields = ("id::text", "flow_name", "trigger_key", "status", "background_job_id")
    attempt_fields = ("step_key", "error_message", "output_json")
    runs = " OR ".join(f"{f} ILIKE {placeholder}" for f in run_fields)
    attempts = " OR ".join(f"{f} ILIKE {placeholder}" for f in attempt_fields)
    return f"({runs} OR id IN (SELECT run_id FROM flow_step_attempts WHERE {attempts}))"


def needs_per_field(term: SearchTerm) -> bool:
    """True when the term could straddle two fields of a concatenated search expression."""
    return SEARCH_SEPARATOR in term.text


def may_match_id(term: SearchTerm) -> bool:
    """False when the term cannot occur in any lower-case hyphenated UUID (skips a costly cast)."""
    lowered = term.text.lower()
    return len(lowered) <= 36 and set(lowered) <= _UUID_TEXT_CHARS


def duck_run_predicate(alias: str, term: SearchTerm, param: str) -> str:
    """Archive-side match of a run row's own fields; ``param`` is bound to ``term.like_pattern``."""
    fields = ["flow_name", "trigger_key", "status", "background_job_id"]
    parts = [f"{alias}.{f} ILIKE {param} ESCAPE '\\'" for f in fields]
    if may_match_id(term):
        parts.append(f"CAST({alias}.id AS VARCHAR) ILIKE {param} ESCAPE '\\'")
    return "(" + " OR ".join(parts) + ")"


def duck_attempt_predicate(alias: str, param: str) -> str:
    """Archive-side match of an attempt row; ``param`` is bound to the term's ``like_pattern``."""
    fields = ("step_key", "error_message", "output_json")
    return "(" + " OR ".join(f"{alias}.{f} ILIKE {param} ESCAPE '\\'" for f in fields) + ")"
