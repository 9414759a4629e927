"""Time windows of the monitoring reports (`?window=`): a duration back from now, or an
explicit interval.

* `<n><unit>`: the last n seconds (`s`), minutes (`m`), hours (`h`), days (`d`) or weeks (`w`)
  up to now, e.g. `15m`, `1h`, `24h`, `7d`;
* `<start>/<end>`: an ISO 8601 interval of two timestamps, e.g.
  `2026-11-27T08:00:00Z/2026-11-27T09:00:00Z` (a timestamp without an offset is UTC).

A window is half-open, [start, end), and at most MAX_WINDOW long.
"""

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

MAX_WINDOW = timedelta(days=366)
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
DURATION = re.compile(r"^([1-9][0-9]{0,6})([smhdw])$")


@dataclass(frozen=True)
class Window:
    """A half-open time interval [start, end), both in UTC."""

    start: datetime
    end: datetime

    def describe(self) -> dict[str, str]:
        """The window as ISO 8601 timestamps, for a report."""
        return {"start": _iso(self.start), "end": _iso(self.end)}


def parse_duration(text: str) -> timedelta:
    """`15m`, `1h`, `7d` ... as a timedelta; ValueError otherwise."""
    match = DURATION.fullmatch(text.strip())
    if match is None:
        raise ValueError(
            "expected a duration such as 15m, 1h, 24h or 7d, or an interval START/END of "
            "ISO 8601 timestamps"
        )
    length = timedelta(seconds=int(match.group(1)) * UNITS[match.group(2)])
    _check_length(length)
    return length


def parse_window(text: str, *, now: datetime | None = None) -> Window:
    """A window from `?window=`; ValueError with a message for the client otherwise."""
    now = now or datetime.now(UTC)
    if "/" not in text:
        return Window(start=now - parse_duration(text), end=now)
    first, _, second = text.partition("/")
    start, end = _timestamp(first, "start"), _timestamp(second, "end")
    if end <= start:
        raise ValueError("the end of the interval must come after its start")
    _check_length(end - start)
    return Window(start=start, end=end)


def _timestamp(text: str, which: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"the interval's {which} is not an ISO 8601 timestamp (e.g. 2026-11-27T08:00:00Z)"
        ) from None
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _check_length(length: timedelta) -> None:
    if length > MAX_WINDOW:
        raise ValueError(f"a window is at most {MAX_WINDOW.days} days long")


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")
