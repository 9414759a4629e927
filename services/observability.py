"""Structured JSON logs and the Prometheus metrics this service adds to BentoML's own.

Metrics use prometheus_client directly (bentoml.metrics is deprecated); under `bentoml serve`
every worker writes to BentoML's PROMETHEUS_MULTIPROC_DIR, so /metrics shows them with BentoML's.
"""

import json
import logging
import sys
import time
from typing import Any

from prometheus_client import Counter, Histogram

ACCESS_LOGGER = "services.access"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and any `fields` passed in extra."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        document.update(getattr(record, "fields", {}))
        if record.exc_info:
            document["trace"] = self.formatException(record.exc_info)
        return json.dumps(document, default=str)


def configure_logging() -> None:
    """Send this project's loggers to stdout as JSON lines (BentoML keeps its own handlers)."""
    root = logging.getLogger("services")
    if any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        return
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    root.propagate = False


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
