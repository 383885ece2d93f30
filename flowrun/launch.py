"""The ``flowrun`` command's entry point: the process's allocators are set before any library loads."""

from __future__ import annotations

from flowrun import job_process


def main() -> None:
    """Configure the process (``flowrun.job_process``), then run the command line."""
    job_process.configure()
    from flowrun.cli import main as run  # loads pyarrow, deltalake and the rest: after configure

    run()
