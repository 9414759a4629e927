"""BentoML's own request metrics, labelled by route template instead of the raw path.

BentoML's RunnerTrafficMetricsMiddleware (the outermost middleware of every BentoML service)
labels `bentoml_service_request_*{endpoint}` with `scope["path"]`, so every distinct URL a
client invents (a scanner's 200 paths: 4,000 series) stays in /metrics until the process
exits. The label is taken at one place, its `__call__`; the fix is made there: a subclass
shows it the route template (`unmatched` for unknown paths) as the path and gives the app
below the real path back before anything else sees the request.
"""

from typing import Any

from bentoml._internal.server.http import instruments
from starlette.types import ASGIApp, Receive, Scope, Send

from services.gateway.middleware import PROBE_PATHS
from services.http.routes import route_template

_REAL_PATH = "services.real_path"


class TemplatedTrafficMetrics(instruments.RunnerTrafficMetricsMiddleware):
    """BentoML's traffic metrics middleware, whose `endpoint` label is a route template."""

    def __init__(self, app: ASGIApp, **options: Any) -> None:
        super().__init__(self._with_real_path, **options)
        self._below = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope[_REAL_PATH] = scope["path"]
            scope["path"] = route_template(scope.get("app"), scope, PROBE_PATHS)
        await super().__call__(scope, receive, send)

    async def _with_real_path(self, scope: Scope, receive: Receive, send: Send) -> None:
        if _REAL_PATH in scope:
            scope["path"] = scope.pop(_REAL_PATH)
        await self._below(scope, receive, send)


def bound_bentoml_traffic_labels() -> None:
    """Make BentoML build its services with TemplatedTrafficMetrics (it imports the class from
    this module each time it assembles a service's middleware)."""
    instruments.RunnerTrafficMetricsMiddleware = TemplatedTrafficMetrics  # type: ignore[misc,assignment]
