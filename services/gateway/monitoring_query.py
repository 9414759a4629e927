"""Query parameters of the monitoring reports: `?window=` (services.monitoring.windows) and,
for drift, `?version=`. A bad value is a 400 naming the parameter."""

from functools import cached_property

from pydantic import BaseModel, ConfigDict, Field, field_validator

from services.deployments.state import VERSION_PATTERN
from services.monitoring.windows import Window, parse_window

WINDOW_HELP = (
    "`15m`, `1h`, `24h`, `7d` (back from now; units s, m, h, d, w) or `START/END`, two ISO 8601 "
    "timestamps (UTC when without an offset); at most 366 days"
)


class WindowQuery(BaseModel):
    """`?window=24h`."""

    model_config = ConfigDict(extra="forbid")

    window: str = Field(default="24h", min_length=2, max_length=100, description=WINDOW_HELP)

    @field_validator("window")
    @classmethod
    def _parses(cls, value: str) -> str:
        parse_window(value)
        return value

    @cached_property
    def span(self) -> Window:
        """The window as an interval, computed once per request."""
        return parse_window(self.window)


class DriftQuery(WindowQuery):
    """`?window=24h&version=...`."""

    version: str | None = Field(
        default=None,
        pattern=VERSION_PATTERN,
        max_length=200,
        description="One served version (default: the versions the deployment routes to).",
    )
