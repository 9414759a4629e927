"""Rate-limit leases against real Redis: two workers sharing one bucket never admit more than
the limit, lose at most what their leases held, and make far fewer round trips."""

import asyncio
import uuid

import pytest

from services.ratelimit.limiter import RateLimiter
from services.ratelimit.settings import RateLimitSettings
from services.redis_client import RedisGuard, RedisSettings
from tests.integration.auth.conftest import REDIS_URL

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]
BURST = 100
# A sustained rate of one token per 1000 s: no refill while the test runs, however slow.
SETTINGS = RateLimitSettings(inference_rate=0.001, inference_burst=BURST, lease_max=10)


class Counted(RateLimiter):
    """A limiter counting its Redis round trips."""

    def __init__(self, guard: RedisGuard, settings: RateLimitSettings) -> None:
        super().__init__(guard, settings)
        self.round_trips = 0
        script = self._script
        assert script is not None

        async def counted(**kwargs: object) -> object:
            self.round_trips += 1
            return await script(**kwargs)

        self._script = counted  # type: ignore[assignment]


async def test_two_workers_admit_at_most_the_burst_with_a_tenth_of_the_round_trips() -> None:
    identity = f"lease-{uuid.uuid4().hex}"
    guards = [RedisGuard(RedisSettings(url=REDIS_URL)) for _ in range(2)]
    workers = [Counted(guard, SETTINGS) for guard in guards]
    try:
        decisions = [await workers[i % 2].hit("inference", identity) for i in range(BURST + 50)]
    finally:
        for guard in guards:
            await guard.close()

    admitted = sum(decision.allowed for decision in decisions)
    lease = workers[0].lease_size(BURST)
    assert lease == 10
    assert admitted <= BURST
    assert admitted >= BURST - 2 * (lease - 1)
    # Refusals start only once the shared bucket is empty, and stay refusals.
    first_refusal = next(i for i, d in enumerate(decisions) if not d.allowed)
    assert not any(d.allowed for d in decisions[first_refusal + 2 :])
    assert sum(w.round_trips for w in workers) <= BURST // lease + 50 + 2


async def test_concurrent_requests_that_miss_the_lease_lose_no_tokens() -> None:
    identity = f"lease-{uuid.uuid4().hex}"
    guard = RedisGuard(RedisSettings(url=REDIS_URL))
    worker = RateLimiter(guard, SETTINGS)
    try:
        first = await asyncio.gather(*(worker.hit("inference", identity) for _ in range(8)))
        rest = [await worker.hit("inference", identity) for _ in range(BURST)]
    finally:
        await guard.close()

    # 8 round trips at once took 80 tokens; every one of them is spent, none dropped.
    assert sum(d.allowed for d in first) + sum(d.allowed for d in rest) == BURST


async def test_a_small_burst_keeps_one_round_trip_per_request() -> None:
    identity = f"lease-{uuid.uuid4().hex}"
    guard = RedisGuard(RedisSettings(url=REDIS_URL))
    worker = Counted(guard, RateLimitSettings(inference_rate=0.001, inference_burst=3))
    try:
        decisions = [await worker.hit("inference", identity) for _ in range(5)]
    finally:
        await guard.close()

    assert [d.allowed for d in decisions] == [True, True, True, False, False]
    assert [d.remaining for d in decisions[:3]] == [2, 1, 0]
    assert worker.round_trips == 5


async def test_the_reject_policy_keeps_one_round_trip_per_request() -> None:
    guard = RedisGuard(RedisSettings(url=REDIS_URL, on_failure="reject"))
    try:
        assert RateLimiter(guard, SETTINGS).lease_size(BURST) == 1
    finally:
        await guard.close()
