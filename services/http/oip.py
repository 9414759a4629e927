"""What every layer needs to know about the Open Inference Protocol (KServe V2) front door:
which paths are its, and its own error document `{"error": "<message>"}`.

Protocol clients (tritonclient, KServe's SDK) read that shape, not our envelope, so the
outermost middleware turns any error on these paths into it (see services/gateway/middleware).
"""

import json
from typing import Any

OIP_PREFIX = "/v2"
# Liveness, readiness and the server's name/version/extensions: open, like /health and /ready.
OIP_OPEN_PATHS = frozenset(
    {
        OIP_PREFIX,
        f"{OIP_PREFIX}/health/live",
        f"{OIP_PREFIX}/health/ready",
        f"{OIP_PREFIX}/docs",
        f"{OIP_PREFIX}/openapi.json",
    }
)


def is_oip(path: str) -> bool:
    """Whether `path` belongs to the Open Inference Protocol front door."""
    return path == OIP_PREFIX or path.startswith(f"{OIP_PREFIX}/")


def is_oip_inference(method: str, path: str) -> bool:
    """Whether this is an inference call: POST /v2/models/{name}[/versions/{v}]/infer."""
    return method == "POST" and path.startswith(f"{OIP_PREFIX}/models/") and path.endswith("/infer")


def oip_error(message: str) -> bytes:
    """The protocol's error document, encoded."""
    return json.dumps({"error": message}).encode("utf-8")


def is_oip_error(body: bytes) -> bool:
    """Whether `body` is already the protocol's error document."""
    document = _json(body)
    return isinstance(document, dict) and isinstance(document.get("error"), str)


def oip_error_from_envelope(body: bytes) -> bytes:
    """Our error envelope's message in the protocol's shape (details have no place there)."""
    document = _json(body)
    error = document.get("error") if isinstance(document, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    return oip_error(message if isinstance(message, str) else "The request failed.")


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
