"""One real `bentoml serve` for the e2e tests, hit by a burst the moment it is ready."""

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.utils.load import post_concurrently, prediction_bodies
from tests.utils.served_models import distinct_rows
from tests.utils.server import RunningServer, serve_gateway
from tests.utils.service_app import serving_env

BURST = 64


@dataclass(frozen=True)
class ServedGateway:
    server: RunningServer
    startup_burst: list[httpx.Response]  # BURST concurrent predictions sent as /ready turned 200

    @property
    def base_url(self) -> str:
        return self.server.base_url


# Module scope: the server stops when its module is done, before any other server starts.
@pytest.fixture(scope="module")
def served_gateway(reference_models: dict[str, str]) -> Iterator[ServedGateway]:
    """The gateway and its runners as `bentoml serve` runs them, serving the reference models.

    Its first traffic is a burst of BURST concurrent predictions over all three models, sent
    as soon as /ready answers 200 (test_startup_burst checks what came back).
    """
    tags = sorted(reference_models.values())
    rows = {tag: distinct_rows(tag, -(-BURST // len(tags))) for tag in tags}
    bodies = prediction_bodies(rows)[:BURST]
    with serve_gateway(env=serving_env(tags)) as server:
        burst = asyncio.run(post_concurrently(server.base_url, bodies))
        yield ServedGateway(server=server, startup_burst=burst)
