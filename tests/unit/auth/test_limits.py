import pytest

from services.ratelimit.gcra import LocalBuckets
from services.ratelimit.middleware import route_class


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("POST", "/api/v1/predictions", "inference"),
        ("POST", "/api/v1/auth/token", "token"),
        ("GET", "/api/v1/predictions", "read"),
        ("GET", "/api/v1/users", "write"),
        ("PATCH", "/api/v1/predictions/x", "write"),
    ],
)
def test_route_classes(method: str, path: str, expected: str) -> None:
    assert route_class(method, path) == expected


def test_local_bucket_allows_the_burst_then_refuses_with_a_retry_time() -> None:
    buckets = LocalBuckets()

    decisions = [buckets.hit("k", rate=1.0, burst=3) for _ in range(4)]

    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.remaining for d in decisions[:3]] == [2, 1, 0]
    assert 0 < decisions[3].retry_after_s <= 1.0


def test_local_buckets_are_per_key() -> None:
    buckets = LocalBuckets()
    for _ in range(3):
        buckets.hit("a", rate=1.0, burst=3)

    assert buckets.hit("b", rate=1.0, burst=3).allowed
    assert not buckets.hit("a", rate=1.0, burst=3).allowed
