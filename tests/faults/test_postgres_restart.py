"""PostgreSQL stops and restarts under load: no 500, no 201 without its row, /ready truthful.

On the old code, while PostgreSQL started up asyncpg raised CannotConnectNowError, which escaped
as a 500 (75 and 133 of them in two runs). The cluster here is the test's own (initdb on another
port), stopped with a fast shutdown and started again twice: at once (the start-up window), and
after two seconds down.
"""

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.utils.databases import migrate, prediction_ids
from tests.utils.postgres_cluster import ThrowawayPostgres, throwaway_postgres
from tests.utils.server import serve_gateway
from tests.utils.service_app import serving_env
from tests.utils.traffic import Traffic

pytestmark = [pytest.mark.faults, pytest.mark.e2e]
TRUTHFUL_WITHIN_S = 1.0
SLACK_S = 0.5  # the poller's interval plus one /ready round trip on a loaded 2-core machine


@pytest.fixture
def cluster() -> Iterator[ThrowawayPostgres]:
    with throwaway_postgres() as started:
        started.create_database("faults")
        migrate(started.url("faults"))
        yield started


def test_postgres_restarts_under_load_without_500_or_lost_201(
    cluster: ThrowawayPostgres,
    reference_models: dict[str, str],
    golden_bodies: dict[str, list[dict[str, Any]]],
) -> None:
    url = cluster.url("faults")
    env = serving_env(sorted(reference_models.values()), DB_URL=url, DB_WRITE_TIMEOUT_S="3")
    bodies = [body for name in sorted(golden_bodies) for body in golden_bodies[name][:4]]
    # (postgres gone, its restart begun, postgres accepting again): it may accept, and /ready say
    # so, a moment before start() returns.
    outages: list[tuple[float, float, float]] = []
    with serve_gateway(env=env) as server, Traffic(server.base_url, bodies) as traffic:
        time.sleep(3)
        for down_s in (0.0, 2.0):
            cluster.stop()
            gone = time.monotonic()
            time.sleep(down_s)
            restarting = time.monotonic()
            cluster.start()
            outages.append((gone, restarting, time.monotonic()))
            time.sleep(4)
        traffic.stop()
        log = server.log_tail(400)
    stored = asyncio.run(prediction_ids(url))

    print(traffic.summary())
    for gone, _, back in outages:
        print(
            f"outage {back - gone:.2f} s:",
            [
                (round(s.at - gone, 2), s.status)
                for s in traffic.readiness
                if gone - 0.5 <= s.at <= back + 2
            ],
        )
    outcomes = traffic.outcomes
    statuses = {o.status for o in outcomes}
    assert statuses <= {201, 503}, (statuses, log)
    assert {o.code for o in outcomes if o.status == 503} <= {"database_unavailable"}
    assert all(o.retry_after for o in outcomes if o.status == 503)
    created = {i for o in outcomes if o.status == 201 for i in o.ids}
    assert created <= stored, f"{len(created - stored)} 201s without a row"
    for _, _, back in outages:
        assert any(o.status == 201 for o in traffic.between(back + 2, back + 4)), "no recovery"
    _assert_ready_truthful(traffic, outages)


def _assert_ready_truthful(traffic: Traffic, outages: list[tuple[float, float, float]]) -> None:
    """Within TRUTHFUL_WITHIN_S of PostgreSQL going away /ready says 503 (until its restart
    begins), and within TRUTHFUL_WITHIN_S of it accepting connections again, 200."""
    for gone, restarting, back in outages:
        after_gone = [s for s in traffic.readiness if s.at >= gone]
        first_503 = next(s for s in after_gone if s.status == 503)
        if restarting - gone > TRUTHFUL_WITHIN_S + SLACK_S:
            assert first_503.at - gone <= TRUTHFUL_WITHIN_S + SLACK_S, first_503
            assert first_503.checks["database"].startswith("unreachable")
            wrong = [
                s
                for s in traffic.readiness
                if gone + TRUTHFUL_WITHIN_S + SLACK_S <= s.at < restarting and s.status != 503
            ]
            assert wrong == [], wrong
        first_200 = next(s for s in traffic.readiness if s.at >= back and s.status == 200)
        assert first_200.at - back <= TRUTHFUL_WITHIN_S + SLACK_S, first_200
