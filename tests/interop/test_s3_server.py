"""The S3 fixture is a real object store: a Delta table written through it reads back with every client."""

from __future__ import annotations

from datetime import UTC, date, datetime

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.dataset as ds
from deltalake import DeltaTable, write_deltalake

from tests.fixtures.s3_server import S3Server

ROWS = pa.table(
    {
        "id": ["a", "b", "c", "d"],
        "started_date": [date(2026, 3, 1), date(2026, 3, 1), date(2026, 3, 2), date(2026, 3, 2)],
        "started_at": pa.array(
            [datetime(2026, 3, d, h, tzinfo=UTC) for d, h in ((1, 1), (1, 2), (2, 3), (2, 4))],
            pa.timestamp("us", "UTC"),
        ),
        "status": ["Succeeded", "Failed", "Succeeded", "Succeeded"],
    }
)


def test_a_delta_table_round_trips_through_the_server(s3_server: S3Server, s3_prefix: str) -> None:
    options = s3_server.storage_options()
    write_deltalake(s3_prefix, ROWS, partition_by=["started_date"], storage_options=options)
    write_deltalake(s3_prefix, ROWS.slice(0, 1), mode="append", partition_by=["started_date"], storage_options=options)

    table = DeltaTable(s3_prefix, storage_options=options)
    assert table.version() == 1
    assert table.to_pyarrow_table().num_rows == 5

    # The objects are on the server, not on a local disk.
    fs = s3_server.filesystem()
    key = s3_prefix.removeprefix("s3://")
    listed = fs.get_file_info(pa.fs.FileSelector(key, recursive=True))
    assert any(info.path.endswith("_delta_log/00000000000000000001.json") for info in listed)

    # A plain Parquet reader given the log's active files, DuckDB scanning that dataset.
    files = [uri.removeprefix("s3://") for uri in table.file_uris()]
    con = duckdb.connect()
    con.register("runs", ds.dataset(files, filesystem=fs, format="parquet"))
    counts = con.sql("SELECT status, count(*) FROM runs GROUP BY 1 ORDER BY 1").fetchall()
    assert counts == [("Failed", 1), ("Succeeded", 4)]

    frame = pl.scan_delta(s3_prefix, storage_options=options).filter(pl.col("started_date") == date(2026, 3, 2))
    assert frame.select(pl.len()).collect().item() == 2
