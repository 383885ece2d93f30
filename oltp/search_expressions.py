"""The live tables' search expressions, which PostgreSQL's trigram indexes are built on.

Kept apart from ``oltp.schema`` (SQLAlchemy metadata, loaded only by migrations and
their tests) so a reader that searches does not import SQLAlchemy.
"""

# Substring search (ILIKE '%term%') over live runs is served by pg_trgm GIN indexes on
# these expressions; a query must repeat the expression verbatim to use its index.
# chr(31) (unit separator) keeps one field's end and the next field's start apart.
RUN_SEARCH_EXPRESSION = (
    "(id::text || chr(31) || flow_name || chr(31) || trigger_key || chr(31) || status"
    " || chr(31) || coalesce(background_job_id, ''))"
)
ATTEMPT_SEARCH_EXPRESSION = (
    "(step_key || chr(31) || coalesce(error_message, '') || chr(31) || coalesce(output_json, ''))"
)
SEARCH_SEPARATOR = "\x1f"
