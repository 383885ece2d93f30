"""Duration strings for the command line, and the progress callbacks."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest

from oltp.errors import InvalidArgument
from sync import ProgressUpdate, console_progress, log_progress, parse_duration
from sync.durations import retention


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7d", timedelta(days=7)),
        ("12h", timedelta(hours=12)),
        ("30m", timedelta(minutes=30)),
        ("45s", timedelta(seconds=45)),
        ("2w", timedelta(weeks=2)),
        ("1d12h", timedelta(days=1, hours=12)),
        ("1h30m", timedelta(minutes=90)),
        ("1.5h", timedelta(minutes=90)),
        ("90", timedelta(seconds=90)),
        (" 7D ", timedelta(days=7)),
        ("0s", timedelta(0)),
    ],
)
def test_durations_parse(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", " ", "d", "7x", "-1d", "7 d", "1m1h", "1h1h", "7days", "1e3s"])
def test_bad_durations_raise(text: str) -> None:
    with pytest.raises(InvalidArgument):
        parse_duration(text)


def test_retention_accepts_timedelta_or_text_and_refuses_negative() -> None:
    assert retention(timedelta(hours=1)) == timedelta(hours=1)
    assert retention("7d") == timedelta(days=7)
    for bad in (timedelta(seconds=-1), 7, None, ""):
        with pytest.raises(InvalidArgument):
            retention(bad)


def test_log_progress_throttles_lines_but_always_logs_the_last(caplog: pytest.LogCaptureFixture) -> None:
    show = log_progress(interval=3600)
    with caplog.at_level(logging.INFO, logger="flowrun.sync"):
        for done in (10, 20, 30):
            show(ProgressUpdate("export", done, 30, done * 11, 2.0))
        show(ProgressUpdate("export", 30, 30, 330, 3.0, finished=True))
    assert [r.getMessage() for r in caplog.records] == [
        "export: 10/30 runs, 110 rows, 55 rows/s, 2.0 s",
        "export: 30/30 runs, 330 rows, 110 rows/s, 3.0 s (done)",
    ]


def test_console_progress_off_a_terminal_logs(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="flowrun.sync"), console_progress("export", force_terminal=False) as show:
        show(ProgressUpdate("compact", 1, 2, 5, 1.0, finished=True))
    assert caplog.records[-1].getMessage().startswith("compact: 1/2 partitions")


def test_console_progress_on_a_terminal_draws_a_bar(capsys: pytest.CaptureFixture[str]) -> None:
    with console_progress("export", force_terminal=True) as show:
        show(ProgressUpdate("export", 5, 10, 55, 1.0))
        show(ProgressUpdate("export", 12, 10, 130, 2.0, finished=True))  # more than the estimate: no crash
    drawn = capsys.readouterr().err
    # The bar's last state: the estimate grew to what was done, with the rows and their rate.
    assert "export" in drawn and "12/12" in drawn and "130 rows" in drawn, drawn
