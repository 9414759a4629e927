"""Stages and traffic weights are the deployment's view of each loaded version."""

from services.catalog import ModelCatalog
from services.deployments.state import CanarySpec, DeploymentState
from services.deployments.views import version_views
from tests.utils.factories import served_model


def test_each_loaded_version_gets_its_stage_weight_and_shadow_flag() -> None:
    catalog = ModelCatalog(
        [served_model("m", v, age_days=age) for age, v in enumerate(["e", "d", "c", "b", "a"])]
    )
    state = DeploymentState(
        model="m",
        revision=4,
        production="a",
        canary=CanarySpec(version="b", weight=0.25),
        shadow=("c",),
        source="deployment",
    )

    views = version_views(catalog, state, past_production={"a", "d"})

    assert [(v.version, v.stage, v.traffic_weight, v.shadow) for v in views] == [
        ("e", "candidate", 0.0, False),
        ("d", "archived", 0.0, False),
        ("c", "shadow", 0.0, True),
        ("b", "canary", 0.25, False),
        ("a", "production", 0.75, False),
    ]
    assert {v.store_stage for v in views} == {"candidate"}
