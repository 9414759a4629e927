import pytest

from services.auth.middleware import is_protected
from services.ratelimit.gcra import LocalBuckets
from services.ratelimit.middleware import is_limited, route_class


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("POST", "/api/v1/predictions", "inference"),
        ("POST", "/api/v1/auth/token", "token"),
        ("GET", "/api/v1/predictions", "read"),
        ("GET", "/api/v1/users", "write"),
        ("PATCH", "/api/v1/predictions/x", "write"),
        ("POST", "/predict", "inference"),
        ("POST", "/v2/models/cancer-rf/infer", "inference"),
        ("POST", "/v2/models/cancer-rf/versions/v1/infer", "inference"),
        ("GET", "/v2/models/cancer-rf", "read"),
    ],
)
def test_route_classes(method: str, path: str, expected: str) -> None:
    assert route_class(method, path) == expected


@pytest.mark.parametrize(
    ("path", "limited"),
    [
        ("/api/v1/predictions", True),
        ("/api/v1/openapi.json", False),
        ("/predict", True),
        ("/v2/models/cancer-rf/infer", True),
        ("/v2/models/cancer-rf", True),
        ("/v2", False),
        ("/v2/health/ready", False),
        ("/v2/openapi.json", False),
        ("/readyz", False),
    ],
)
def test_which_paths_are_rate_limited(path: str, limited: bool) -> None:
    assert is_limited(path) is limited


@pytest.mark.parametrize(
    ("path", "protected"),
    [
        ("/api/v1/predictions", True),
        ("/api/v1/auth/token", False),
        ("/predict", True),
        ("/v2/models/cancer-rf/infer", True),
        ("/v2/models/cancer-rf/ready", True),
        ("/v2/anything-else", True),
        ("/v2", False),
        ("/v2/health/live", False),
        ("/v2/health/ready", False),
        ("/v2/docs", False),
        ("/schema.json", False),
        ("/readyz", False),
    ],
)
def test_which_paths_need_a_credential(path: str, protected: bool) -> None:
    assert is_protected(path) is protected


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
