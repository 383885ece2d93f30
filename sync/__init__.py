"""Export of completed runs to the Parquet archive (exactly once) and its retention."""
