"""Fault injection against a real `bentoml serve`: each test starts its own throwaway
PostgreSQL cluster, redis-server or TCP proxy (never the shared ones) and stops exactly the
processes it started, by PID."""

from typing import Any

import bentoml
import pytest


@pytest.fixture(scope="session")
def golden_bodies(reference_models: dict[str, str]) -> dict[str, list[dict[str, Any]]]:
    """Per model name, one single-row request body per golden example."""
    bodies: dict[str, list[dict[str, Any]]] = {}
    for name, tag in reference_models.items():
        inputs = bentoml.models.get(tag).info.metadata["golden_examples"]["inputs"]
        bodies[name] = [{"model": name, "inputs": [row]} for row in inputs]
    return bodies
