"""The routing decision for one request, from an immutable snapshot of every deployment.

An unpinned request goes to the canary when the stable hash of its key (the request id, or the
caller's subject with `sticky: principal`) falls below the canary's weight: one key always lands
on one side, and raising the weight only moves keys towards the canary (a key that was on the
canary at 10% stays there at 50%). A production request also names the shadow versions that get
a copy of it. A request pinned to `name:version` goes to that version.
"""

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from services.catalog import ModelCatalog, ServedModel
from services.deployments.state import DeploymentState, Role, Sticky

logger = logging.getLogger("services.deployments")
HASH_SPACE = float(2**64)


def canary_point(model: str, key: str) -> float:
    """Where `key` falls in [0, 1) for `model`: uniform over keys, and the same every time."""
    digest = hashlib.blake2b(f"{model}\x00{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / HASH_SPACE


@dataclass(frozen=True)
class Route:
    """Which version answers a request, in what role, and which shadows get a copy."""

    model: ServedModel
    role: Role
    shadows: tuple[ServedModel, ...] = ()


class Router(Protocol):
    """Whatever decides the version of a request: a snapshot, or the watcher that holds one."""

    def route(self, wanted: str, *, request_id: str, principal: str | None) -> Route: ...

    def production(self, name: str) -> ServedModel: ...


@dataclass(frozen=True)
class RoutingPlan:
    """One model's deployment, resolved to the versions this worker serves."""

    production: ServedModel
    canary: ServedModel | None = None
    weight: float = 0.0
    sticky: Sticky = "request"
    shadows: tuple[ServedModel, ...] = ()
    revision: int | None = None

    def route(self, *, request_id: str, principal: str | None) -> Route:
        """Production (with its shadows) or the canary, by the request's sticky key."""
        if self.canary is not None and self.weight > 0:
            key = principal if self.sticky == "principal" and principal else request_id
            if canary_point(self.production.ref.name, key) < self.weight:
                return Route(model=self.canary, role="canary")
        return Route(model=self.production, role="production", shadows=self.shadows)


@dataclass(frozen=True)
class DeploymentSnapshot:
    """Every model's routing plan at one moment; requests read it once, when they start."""

    catalog: ModelCatalog
    plans: Mapping[str, RoutingPlan]
    counter: int = -1  # the database's change counter this snapshot was built at
    states: Mapping[str, DeploymentState] = field(default_factory=dict)

    def route(self, wanted: str, *, request_id: str, principal: str | None) -> Route:
        """The route for `name` (the deployment decides) or `name:version` (pinned)."""
        if ":" in wanted:
            return Route(model=self.catalog.resolve(wanted), role="pinned")
        plan = self.plans.get(wanted)
        if plan is None:
            raise self.catalog.not_found(wanted)
        return plan.route(request_id=request_id, principal=principal)

    def production(self, name: str) -> ServedModel:
        """The version that answers `name` now (canary aside); ModelNotFound if not served."""
        plan = self.plans.get(name)
        if plan is None:
            raise self.catalog.not_found(name)
        return plan.production


def build_snapshot(
    catalog: ModelCatalog, states: Mapping[str, DeploymentState], *, counter: int = -1
) -> DeploymentSnapshot:
    """Plans for every served model: its deployment, or the newest version while it has none.

    A deployment naming a version this worker does not serve (a replica of an older release
    during a rollout, or SERVING_MODELS changed) keeps this worker on its newest version for
    production, and without that canary or shadow; each such case is logged.
    """
    plans = {}
    for name in catalog.names():
        state = states.get(name)
        plans[name] = _plan(catalog, name, state) if state else RoutingPlan(catalog.newest(name))
    return DeploymentSnapshot(catalog=catalog, plans=plans, counter=counter, states=dict(states))


def _plan(catalog: ModelCatalog, name: str, state: DeploymentState) -> RoutingPlan:
    def served(version: str, role: str) -> ServedModel | None:
        model = catalog.get(name, version)
        if model is None:
            logger.error(
                "deployment %s revision %s names %s version %s, which this worker does not "
                "serve; ignoring it here",
                name,
                state.revision,
                role,
                version,
                extra={"model": name, "revision": state.revision},
            )
        return model

    production = served(state.production, "production") or catalog.newest(name)
    canary = served(state.canary.version, "canary") if state.canary else None
    shadows = tuple(model for v in state.shadow if (model := served(v, "shadow")) is not None)
    return RoutingPlan(
        production=production,
        canary=canary,
        weight=state.canary.weight if state.canary and canary else 0.0,
        sticky=state.canary.sticky if state.canary else "request",
        shadows=tuple(s for s in shadows if s.ref != production.ref),
        revision=state.revision,
    )
