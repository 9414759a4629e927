"""Redis goes away under load and comes back, under both REDIS_ON_FAILURE policies.

`local`: every request is still served (limits per process), /ready stays 200 and says degraded.
`reject`: requests get 503 with Retry-After while Redis is down, /ready says 503, and once /ready
says 200 again every request is admitted: on the old code /ready said 200 about 1.8 s before
requests were accepted again. The redis-server is the test's own, on its own port.
"""

import time
from pathlib import Path
from typing import Any

import pytest

from tests.utils.redis_server import throwaway_redis
from tests.utils.server import serve_gateway
from tests.utils.service_app import serving_env
from tests.utils.traffic import Traffic

pytestmark = [pytest.mark.faults, pytest.mark.e2e]
DOWN_S = 3.0


@pytest.mark.parametrize("policy", ["local", "reject"])
def test_redis_outage_follows_the_policy_and_ready_agrees_with_admission(
    policy: str,
    tmp_path: Path,
    reference_models: dict[str, str],
    golden_bodies: dict[str, list[dict[str, Any]]],
) -> None:
    bodies = golden_bodies["cancer-rf"][:8]
    with throwaway_redis(tmp_path) as redis_server:
        env = serving_env(
            sorted(reference_models.values()),
            REDIS_URL=redis_server.url,
            REDIS_ON_FAILURE=policy,
            RATE_LIMIT_ENABLED="true",
            RATE_LIMIT_INFERENCE_RATE="10000",
            RATE_LIMIT_INFERENCE_BURST="10000",
        )
        with serve_gateway(env=env) as server, Traffic(server.base_url, bodies) as traffic:
            time.sleep(2)
            redis_server.stop()
            gone = time.monotonic()
            time.sleep(DOWN_S)
            restarting = time.monotonic()  # Redis answers again before start() returns
            redis_server.start()
            back = time.monotonic()
            time.sleep(4)
            traffic.stop()
            log = server.log_tail(200)
            errors = server.errors("runner", limit=5)

    print(policy, traffic.summary())
    print(errors)
    outcomes = traffic.outcomes
    assert all(o.status is not None for o in outcomes), log
    assert not [o for o in outcomes if o.status not in (201, 503)], log
    assert any(o.status == 201 for o in traffic.between(back + 2, back + 4))
    # Probes answered while Redis was certainly down (a probe that ends between the restart and
    # `back` may already have reached the new server).
    during = [s for s in traffic.readiness if gone + 1 <= s.at < restarting]
    assert during
    if policy == "local":
        assert {o.status for o in outcomes} == {201}
        assert {s.status for s in during} == {200}
        assert all(s.checks["redis"].startswith("degraded") for s in during), [
            (round(s.at - gone, 2), s.checks) for s in during
        ]
        return
    assert {o.status for o in traffic.between(gone + 1, restarting)} == {503}
    assert {o.code for o in outcomes if o.status == 503} == {"service_unavailable"}
    assert all(o.retry_after for o in outcomes if o.status == 503)
    assert {s.status for s in during} == {503}
    # Once /ready has said 200 again, no request is refused for Redis any more.
    first_ready = next(s for s in traffic.readiness if s.at >= back and s.status == 200)
    refused_after = [o for o in traffic.between(first_ready.at, back + 10) if o.status != 201]
    assert refused_after == [], (first_ready, refused_after[:5])
