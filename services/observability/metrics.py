"""The Prometheus metrics this service adds to BentoML's own, all declared here.

Metrics use prometheus_client directly (bentoml.metrics is deprecated); under `bentoml serve`
every worker writes to BentoML's PROMETHEUS_MULTIPROC_DIR, so /metrics shows them with BentoML's.
bentos/observability holds the dashboard and alert rules built on these names.
"""

from collections.abc import Callable

from prometheus_client import Counter, Gauge, Histogram

INFERENCE_LATENCY = Histogram(
    name="model_inference_latency_seconds",
    documentation="Runner call latency seen by the gateway, per model and version.",
    labelnames=["model", "version"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
PREDICTIONS = Counter(
    name="predictions_served_total",
    documentation="Rows predicted, per model and version.",
    labelnames=["model", "version"],
)
ERRORS = Counter(
    name="api_errors_total",
    documentation="Error responses, per error code and status.",
    labelnames=["code", "status"],
)
COALESCED_ROWS = Histogram(
    name="gateway_coalesced_batch_rows",
    documentation="Rows per runner call after the gateway coalesced concurrent requests.",
    labelnames=["framework"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
)
OUT_OF_RANGE = Counter(
    name="feature_out_of_range_total",
    documentation="Feature values outside the training range (a drift indicator), per model.",
    labelnames=["model", "feature"],
)
REDIS_FAILURES = Counter("redis_failures_total", "Redis calls that failed, by use.", ["use"])
RATE_LIMITED = Counter(
    "rate_limited_total", "Requests refused with 429, by route class.", ["route_class"]
)
CACHE = Counter("inference_cache_total", "Result cache lookups, by outcome.", ["outcome"])
DEPLOYMENT_REQUESTS = Counter(
    "deployment_requests_total",
    "Prediction requests per model version and how the version was chosen "
    "(role: production, canary, shadow, pinned).",
    ["model", "version", "role"],
)
DEPLOYMENT_REFRESH_FAILURES = Counter(
    "deployment_refresh_failures_total",
    "Polls of the deployment state that failed (the worker keeps its last snapshot).",
)
SHADOW_JOBS = Counter(
    "shadow_jobs_total",
    "Shadow copies of production requests, by outcome: stored, dropped (queue full) or failed.",
    ["model", "outcome"],
)
# Written by the one worker holding the refresh lease; "mostrecent" shows its latest value
# even when the lease moved from another worker process that wrote earlier.
FEATURE_PSI = Gauge(
    "model_feature_psi",
    "Population stability index of a feature: served inputs of the last MONITORING_DRIFT_WINDOW "
    "against the version's reference distribution.",
    ["model", "version", "feature"],
    multiprocess_mode="mostrecent",
)

# Bounded labels only: `route` is a route template (`unmatched` for unknown paths), `method` one
# of METHODS or `other`, so anonymous traffic cannot add series.
HTTP_REQUESTS = Counter(
    "http_requests_total",
    "HTTP requests, by route template, method and status.",
    ["route", "method", "status"],
)
HTTP_DURATION = Histogram(
    "http_request_duration_seconds",
    "Time from request start to the end of its response, by route template and method.",
    ["route", "method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Across workers: open if any live worker's breaker is open; down if any live worker sees it down.
CIRCUIT_OPEN = Gauge(
    "circuit_breaker_open",
    "1 while requests that need this dependency are refused at once (503, Retry-After).",
    ["dependency"],
    multiprocess_mode="livemax",
)
DEPENDENCY_UP = Gauge(
    "dependency_up",
    "1 if the last call or probe of this dependency worked, else 0.",
    ["dependency"],
    multiprocess_mode="livemin",
)


def method_label(method: str) -> str:
    """The request method, or `other` for anything unusual (methods are free-form tokens)."""
    return method if method in METHODS else "other"


def breaker_listener(dependency: str) -> Callable[[bool], None]:
    """A circuit breaker listener that keeps both gauges of `dependency` current."""
    CIRCUIT_OPEN.labels(dependency=dependency).set(0)

    def report(degraded: bool) -> None:
        CIRCUIT_OPEN.labels(dependency=dependency).set(1 if degraded else 0)
        DEPENDENCY_UP.labels(dependency=dependency).set(0 if degraded else 1)

    return report


def report_up(dependency: str, up: bool) -> None:
    """Record what a probe of `dependency` found."""
    DEPENDENCY_UP.labels(dependency=dependency).set(1 if up else 0)


# Batch-scoring jobs (services.batch): rows by outcome, chunk time, jobs as they end.
BATCH_ROWS = Counter(
    "batch_job_rows_total",
    "Rows scored by batch jobs, per model and outcome (scored, or failed its row checks).",
    ["model", "outcome"],
)
BATCH_CHUNK_SECONDS = Histogram(
    "batch_job_chunk_seconds",
    "Time to read, check, score, write and commit one chunk of a batch job, per model.",
    ["model"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
BATCH_JOBS = Counter(
    "batch_jobs_total",
    "Batch jobs by how they ended (succeeded, failed, cancelled) or were handed back (released).",
    ["status"],
)
