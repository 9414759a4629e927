"""Routing: production, canary by a stable hash of a sticky key, shadows, pinned versions."""

import logging
import uuid

import pytest

from services.catalog import ModelCatalog
from services.deployments.routing import build_snapshot, canary_point
from services.deployments.state import CanarySpec, DeploymentState
from services.errors import ModelNotFound
from tests.utils.factories import served_model

REQUESTS = 10_000


def _catalog() -> ModelCatalog:
    return ModelCatalog(
        [
            served_model("cancer-rf", "v1", age_days=2),
            served_model("cancer-rf", "v2", age_days=1),
            served_model("cancer-rf", "v3", age_days=0),
            served_model("fraud-xgb", "a", age_days=0),
        ]
    )


def _state(**fields: object) -> DeploymentState:
    defaults: dict[str, object] = {
        "model": "cancer-rf",
        "revision": 2,
        "production": "v1",
        "source": "deployment",
    }
    return DeploymentState.model_validate({**defaults, **fields})


def _canary_share(weight: float, keys: list[str], sticky: str = "request") -> float:
    canary = CanarySpec(version="v2", weight=weight, sticky=sticky)  # type: ignore[arg-type]
    snapshot = build_snapshot(_catalog(), {"cancer-rf": _state(canary=canary)})
    roles = [snapshot.route("cancer-rf", request_id=key, principal=None).role for key in keys]
    return roles.count("canary") / len(roles)


@pytest.mark.parametrize("weight", [0.01, 0.1, 0.5, 0.9])
def test_canary_share_over_10000_random_request_ids_is_within_2_points(weight: float) -> None:
    keys = [uuid.uuid4().hex for _ in range(REQUESTS)]

    assert abs(_canary_share(weight, keys) - weight) <= 0.02


@pytest.mark.parametrize(("weight", "share"), [(0.0, 0.0), (1.0, 1.0)])
def test_weight_zero_and_one_send_nothing_or_everything_to_the_canary(
    weight: float, share: float
) -> None:
    keys = [uuid.uuid4().hex for _ in range(1_000)]

    assert _canary_share(weight, keys) == share


def test_one_key_always_lands_on_the_same_side() -> None:
    snapshot = build_snapshot(
        _catalog(), {"cancer-rf": _state(canary=CanarySpec(version="v2", weight=0.5))}
    )
    keys = [uuid.uuid4().hex for _ in range(200)]

    first = [snapshot.route("cancer-rf", request_id=k, principal=None).model for k in keys]
    again = [snapshot.route("cancer-rf", request_id=k, principal=None).model for k in keys]

    assert first == again
    assert {m.ref.version for m in first} == {"v1", "v2"}


def test_raising_the_weight_keeps_every_canary_key_on_the_canary() -> None:
    keys = [uuid.uuid4().hex for _ in range(2_000)]
    at_10 = {k for k in keys if canary_point("cancer-rf", k) < 0.1}
    at_50 = {k for k in keys if canary_point("cancer-rf", k) < 0.5}

    assert at_10 < at_50


def test_sticky_principal_gives_one_caller_one_version_whatever_the_request_id() -> None:
    canary = CanarySpec(version="v2", weight=0.5, sticky="principal")
    snapshot = build_snapshot(_catalog(), {"cancer-rf": _state(canary=canary)})

    seen = {
        caller: {
            snapshot.route(
                "cancer-rf", request_id=uuid.uuid4().hex, principal=caller
            ).model.ref.version
            for _ in range(20)
        }
        for caller in (f"user-{i}" for i in range(40))
    }

    assert all(len(versions) == 1 for versions in seen.values())
    assert {version for versions in seen.values() for version in versions} == {"v1", "v2"}


def test_sticky_principal_without_a_caller_falls_back_to_the_request_id() -> None:
    keys = [uuid.uuid4().hex for _ in range(REQUESTS)]

    assert abs(_canary_share(0.3, keys, sticky="principal") - 0.3) <= 0.02


def test_production_requests_carry_the_shadows_and_canary_requests_do_not() -> None:
    state = _state(canary=CanarySpec(version="v2", weight=0.5), shadow=("v3",))
    snapshot = build_snapshot(_catalog(), {"cancer-rf": state})

    routes = [
        snapshot.route("cancer-rf", request_id=uuid.uuid4().hex, principal=None) for _ in range(100)
    ]

    for route in routes:
        expected = ("v3",) if route.role == "production" else ()
        assert tuple(m.ref.version for m in route.shadows) == expected
    assert {route.role for route in routes} == {"production", "canary"}


def test_without_a_deployment_the_newest_version_is_production() -> None:
    snapshot = build_snapshot(_catalog(), {})

    route = snapshot.route("cancer-rf", request_id="r1", principal=None)

    assert (route.model.ref.version, route.role, route.shadows) == ("v3", "production", ())


def test_a_pinned_request_gets_its_version_and_no_shadow() -> None:
    snapshot = build_snapshot(_catalog(), {"cancer-rf": _state(shadow=("v3",))})

    route = snapshot.route("cancer-rf:v2", request_id="r1", principal=None)

    assert (route.model.ref.version, route.role, route.shadows) == ("v2", "pinned", ())


@pytest.mark.parametrize("wanted", ["no-such-model", "cancer-rf:v9"])
def test_an_unknown_model_or_version_is_not_found(wanted: str) -> None:
    snapshot = build_snapshot(_catalog(), {})

    with pytest.raises(ModelNotFound):
        snapshot.route(wanted, request_id="r1", principal=None)


def test_a_deployment_naming_versions_this_worker_lacks_falls_back_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    state = _state(production="v9", canary=CanarySpec(version="v8", weight=1.0), shadow=("v7",))

    with caplog.at_level(logging.ERROR, logger="services.deployments"):
        plan = build_snapshot(_catalog(), {"cancer-rf": state}).plans["cancer-rf"]

    assert (plan.production.ref.version, plan.canary, plan.shadows) == ("v3", None, ())
    assert {"v9", "v8", "v7"} <= {str(r.args[3]) for r in caplog.records if r.args}
