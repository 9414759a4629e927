"""What `bench.load` can run: configurations (ways of serving), suites (runs) and goals (ratios).

Adding a configuration is one entry in CONFIGURATIONS; adding a goal is one Ratio in TARGETS.
Env values and headers may hold placeholders that the run fills in once it has created them:
`{database_url}` (a throwaway PostgreSQL database), `{redis_url}`, `{jwt_secret}` and, in
headers, `{token}` (a real JWT from the server's own token endpoint).
"""

from dataclasses import dataclass, field
from typing import Literal

GATEWAY = "services.service:Gateway"
PLAIN = "bench.plain_service:PlainGateway"
REFERENCE_MODELS = ("fraud-xgb", "cancer-rf", "digits-mlp")
PEER_MODEL = "cancer-rf"  # the peers serve this model's joblib file from the store


@dataclass(frozen=True)
class Configuration:
    """One way of serving: how the server starts, the env it gets, what its requests carry."""

    name: str
    env: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    service: str = GATEWAY  # for `bentoml serve`
    peer: Literal["litserve", "mlserver"] | None = None  # a peer from the benchmark env instead
    request_format: str = "project"  # a key of bench.protocols.FORMATS
    ready_path: str = "/ready"
    description: str = ""
    needs_stack: bool = False  # the throwaway database, Redis, the JWT secret or a token

    def serves(self, model: str) -> bool:
        return self.peer is None or model == PEER_MODEL


# Every project server gets BASE_ENV first and its configuration's env over it. The base
# switches off what serving alone must not measure: the prediction log, authentication, rate
# limits (they would answer 401 and 429) and the result cache (one repeated golden row would be
# answered from it, never by a model). A configuration that measures one of them switches it
# back on. When the run creates a throwaway database, every project server uses it.
BASE_ENV = {
    "DB_PERSIST_PREDICTIONS": "false",
    "AUTH_ENABLED": "false",
    "RATE_LIMIT_ENABLED": "false",
    "REDIS_CACHE_ENABLED": "false",
}
# Authentication with a JWT on every request, and the Redis rate limiter with limits so high
# that nothing is refused: the cost of checking is measured, never a 429. A Redis failure is a
# 503 (an error in the table), not a silent fall-back to per-process limits.
AUTH_LIMITS_ENV = {
    "AUTH_ENABLED": "true",
    "AUTH_JWT_SECRET": "{jwt_secret}",
    "AUTH_TOKEN_TTL_S": "86400",
    "RATE_LIMIT_ENABLED": "true",
    "REDIS_URL": "{redis_url}",
    "REDIS_ON_FAILURE": "reject",
    **{f"RATE_LIMIT_{c}_RATE": "1000000" for c in ("INFERENCE", "READ", "WRITE")},
    **{f"RATE_LIMIT_{c}_BURST": "1000000" for c in ("INFERENCE", "READ", "WRITE")},
}
TOKEN_HEADERS = {"Authorization": "Bearer {token}"}
LOG_ENV = {"DB_PERSIST_PREDICTIONS": "true"}
NO_CACHE = {"Cache-Control": "no-cache"}

CONFIGURATIONS: tuple[Configuration, ...] = (
    Configuration(
        "full",
        {**AUTH_LIMITS_ENV, **LOG_ENV, "REDIS_CACHE_ENABLED": "true"},
        headers={**TOKEN_HEADERS, **NO_CACHE},
        needs_stack=True,
        description="this service as deployed: JWT auth, Redis rate limits, PostgreSQL"
        " prediction log, result cache on but bypassed (Cache-Control: no-cache)",
    ),
    Configuration(
        "serving-only",
        {},
        description="this service with auth, limits, log and cache off (serving alone)",
    ),
    Configuration(
        "serving+log",
        LOG_ENV,
        needs_stack=True,
        description="serving-only + every prediction committed to PostgreSQL before its 201",
    ),
    Configuration(
        "serving+auth+limits",
        AUTH_LIMITS_ENV,
        headers=TOKEN_HEADERS,
        needs_stack=True,
        description="serving-only + JWT auth and Redis rate limits on every request",
    ),
    Configuration(
        "plain-bentoml",
        service=PLAIN,
        request_format="plain",
        ready_path="/readyz",
        description="the docs pattern: plain @bentoml.api -> depends(runner), runner batching on",
    ),
    Configuration(
        "litserve",
        peer="litserve",
        request_format="litserve",
        ready_path="/health",
        description="LitServe, the same joblib file, batching 64 requests / 10 ms, 1 worker",
    ),
    Configuration(
        "mlserver",
        peer="mlserver",
        request_format="mlserver",
        ready_path=f"/v2/models/{PEER_MODEL}/ready",
        description="MLServer's sklearn runtime, the same joblib file, adaptive batching"
        " 64 / 10 ms, parallel_workers 0",
    ),
    Configuration(
        "batching",
        {"SERVING_BATCHING": "true"},
        description="this gateway, default settings (gateway coalescing + runner batching)",
    ),
    Configuration(
        "no-batching",
        {"SERVING_BATCHING": "false"},
        description="this gateway, SERVING_BATCHING=false (one runner call per request)",
    ),
    Configuration(
        "coalesce-only",
        {"SERVING_BATCHING": "true"},
        service="bench.coalesce_only:Gateway",
        description="this gateway, coalescing on, runner adaptive batching off",
    ),
)


@dataclass(frozen=True)
class Ratio:
    """A goal: `numerator`'s number over `denominator`'s, in every cell both measured.

    `measure` is "throughput" (2xx per second; the same ratio in rows/s) and the goal is a
    ratio >= `bound`, or "p99" and the goal is a ratio <= `bound`. Empty filters match all.
    """

    label: str
    numerator: str
    denominator: str
    bound: float
    measure: Literal["throughput", "p99"] = "throughput"
    models: tuple[str, ...] = ()
    rows: tuple[int, ...] = ()
    concurrencies: tuple[int, ...] = ()

    def met(self, value: float) -> bool:
        return value >= self.bound if self.measure == "throughput" else value <= self.bound

    def goal_text(self) -> str:
        return f"{'>=' if self.measure == 'throughput' else '<='} {self.bound:g}x"


TARGETS: tuple[Ratio, ...] = (
    # Issue 10, goals 1-3: the full stack against the peers and the plain pattern, and what
    # persistence and auth + limits cost relative to serving alone.
    Ratio("full / LitServe throughput", "full", "litserve", 1.0),
    Ratio("full / MLServer throughput", "full", "mlserver", 1.3),
    Ratio("full / plain BentoML throughput", "full", "plain-bentoml", 3.0),
    Ratio("p99 full / p99 LitServe", "full", "litserve", 1.0, measure="p99"),
    Ratio("persistence: serving+log / serving-only", "serving+log", "serving-only", 0.85),
    Ratio(
        "auth+limits: serving+auth+limits / serving-only",
        "serving+auth+limits",
        "serving-only",
        0.90,
    ),
    # The batching suite's targets (bench/README.md, "Batching suite, 2026-11-26").
    Ratio(
        "batching pays", "batching", "no-batching", 3.0, models=("cancer-rf",), concurrencies=(32,)
    ),
    Ratio("batching costs nothing", "batching", "no-batching", 0.95, models=("digits-mlp",)),
    Ratio("gateway vs the docs pattern", "batching", "plain-bentoml", 2.0, concurrencies=(32,)),
    Ratio(
        "coalesce-only pays",
        "coalesce-only",
        "no-batching",
        3.0,
        models=("cancer-rf",),
        concurrencies=(32,),
    ),
    Ratio(
        "coalesce-only costs nothing", "coalesce-only", "no-batching", 0.95, models=("digits-mlp",)
    ),
    Ratio(
        "coalesce-only vs the docs pattern",
        "coalesce-only",
        "plain-bentoml",
        2.0,
        concurrencies=(32,),
    ),
)


@dataclass(frozen=True)
class Suite:
    """A named run: which configurations, models, request sizes and concurrencies."""

    name: str
    configs: tuple[str, ...]
    models: tuple[str, ...]
    rows: tuple[int, ...]
    concurrencies: tuple[int, ...]
    description: str


SUITES: dict[str, Suite] = {
    suite.name: suite
    for suite in (
        Suite(
            "compare",
            (
                "full",
                "serving-only",
                "serving+log",
                "serving+auth+limits",
                "plain-bentoml",
                "litserve",
                "mlserver",
            ),
            (PEER_MODEL,),
            (1, 64),
            (32, 64),
            "issue 10: this service (full stack and parts of it) against the plain BentoML"
            " pattern, LitServe and MLServer on the same cancer-rf file (`make bench`)",
        ),
        Suite(
            "batching",
            ("batching", "no-batching", "plain-bentoml"),
            REFERENCE_MODELS,
            (1,),
            (1, 8, 32, 64),
            "where batching pays, per reference model, single rows (`make bench-batching`)",
        ),
        Suite(
            "overhead",
            ("serving-only", "serving+log", "serving+auth+limits"),
            ("fraud-xgb", "cancer-rf"),
            (1,),
            (32,),
            "what the prediction log and auth + limits cost (`make bench-overhead`)",
        ),
    )
}
