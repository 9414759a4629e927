"""`?window=`: a duration back from now, or an explicit ISO 8601 interval."""

from datetime import UTC, datetime, timedelta

import pytest

from services.monitoring.windows import parse_window

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "length"),
    [
        ("30s", timedelta(seconds=30)),
        ("15m", timedelta(minutes=15)),
        ("1h", timedelta(hours=1)),
        ("24h", timedelta(hours=24)),
        ("7d", timedelta(days=7)),
        ("2w", timedelta(weeks=2)),
    ],
)
def test_a_duration_is_the_window_up_to_now(text: str, length: timedelta) -> None:
    window = parse_window(text, now=NOW)

    assert (window.start, window.end) == (NOW - length, NOW)


def test_an_interval_is_taken_as_written_in_utc() -> None:
    window = parse_window("2026-11-27T08:00:00+01:00/2026-11-27T09:30:00", now=NOW)

    assert window.start == datetime(2026, 11, 27, 7, 0, tzinfo=UTC)
    assert window.end == datetime(2026, 11, 27, 9, 30, tzinfo=UTC)
    assert window.describe() == {"start": "2026-11-27T07:00:00Z", "end": "2026-11-27T09:30:00Z"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "expected a duration"),
        ("1", "expected a duration"),
        ("0h", "expected a duration"),
        ("1.5h", "expected a duration"),
        ("-1h", "expected a duration"),
        ("1y", "expected a duration"),
        ("400d", "at most 366 days"),
        ("yesterday/today", "not an ISO 8601 timestamp"),
        ("2026-11-27T09:00:00Z/2026-11-27T08:00:00Z", "must come after its start"),
        ("2026-11-27T09:00:00Z/2026-11-27T09:00:00Z", "must come after its start"),
        ("2025-01-01T00:00:00Z/2026-11-27T00:00:00Z", "at most 366 days"),
        ("2026-11-27T09:00:00Z/", "not an ISO 8601 timestamp"),
    ],
)
def test_anything_else_is_refused_with_a_reason(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_window(text, now=NOW)
