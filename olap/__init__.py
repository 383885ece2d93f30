"""flowrun-store's reporting side: live PostgreSQL runs UNION the Parquet archive, in DuckDB and polars."""

from olap.analytics import RunAnalytics

__all__ = ["RunAnalytics"]
