"""Route templates for metric labels: `/api/v1/predictions/{prediction_id}`, never the raw path.

A label made from the raw path gives every distinct URL (ids, typos, scanners) its own time
series for the life of the process; a template keeps the label set as small as the route table.
"""

from collections import OrderedDict
from typing import Any

from starlette.routing import Match, Mount

UNMATCHED = "unmatched"
_MAX_DEPTH = 32  # middleware wrappers between an app and its router


def route_template(app: Any, scope: Any, fixed: frozenset[str] = frozenset()) -> str:
    """The template of the route `scope` would reach in `app` (or its router), else UNMATCHED.

    A route that matches the path but not the method (405) still names its template; paths in
    `fixed` (answered before routing, like probes) are their own label.
    """
    if scope["path"] in fixed:
        return str(scope["path"])
    router = _router_of(app)
    if router is None:
        return UNMATCHED
    method, path = scope.get("method", "GET"), scope["path"]
    key = (id(router), method, path, scope.get("root_path", ""))
    label = _LABELS.get(key)
    if label is None:
        lookup = {"type": "http", "method": method, "path": path, "root_path": key[3]}
        label = _match(router.routes, lookup, prefix="") or UNMATCHED
        _ROUTERS[id(router)] = router  # keeps the id from being reused by another object
        _LABELS[key] = label
        if len(_LABELS) > _CACHE_SIZE:  # bounded: a flood of unknown paths never grows memory
            _LABELS.popitem(last=False)
    else:
        _LABELS.move_to_end(key)
    return label


_CACHE_SIZE = 4096
_LABELS: OrderedDict[tuple[int, str, str, str], str] = OrderedDict()
_ROUTERS: dict[int, Any] = {}


def _router_of(app: Any) -> Any:
    """The object holding `app`'s route list, looking through middleware (each holds the next
    as `.app`); None for an app without routes."""
    for _ in range(_MAX_DEPTH):
        if getattr(app, "routes", None) is not None:
            return app
        app = getattr(app, "app", None)
        if app is None:
            return None
    return None


def _match(routes: list[Any], scope: dict[str, Any], prefix: str) -> str | None:
    partial: str | None = None
    for route in routes:
        match, child = route.matches(scope)
        if match is Match.NONE:
            continue
        if isinstance(route, Mount):
            inner = _router_of(route.app)
            if inner is None:  # static files or another plain ASGI app under the mount
                template: str | None = f"{prefix}{route.path}/{{path}}"
            else:
                template = _match(inner.routes, {**scope, **child}, prefix + route.path)
                if template is None:
                    continue
        else:
            template = prefix + str(getattr(route, "path", ""))
        if match is Match.FULL:
            return template
        partial = partial or template
    return partial
