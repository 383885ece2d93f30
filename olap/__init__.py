"""Reporting over live (PostgreSQL) and archived (Parquet) runs with DuckDB and polars."""
