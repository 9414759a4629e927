"""Idempotency-Key on predictions: a retry with the same key and body replays the first answer
(the same ids); the same key with another body is a 409.

Keys belong to the principal that sent them, are committed with the prediction rows in one
transaction (a 201 and its key are durable together) and expire after
SERVING_IDEMPOTENCY_TTL_S. When two requests race with one key, the first commit wins and the
other replays it.
"""

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from services.auth.principal import Principal
from services.errors import BadRequest, IdempotencyKeyReused
from services.persistence import IdempotencyClaim, PredictionStore

HEADER = "Idempotency-Key"
KEY = re.compile(r"[\x21-\x7e]{1,255}")  # visible ASCII, as in the IETF draft's examples


@dataclass(frozen=True)
class KeyedRequest:
    """A request that carries an Idempotency-Key: whose key, which key, and what it asked."""

    principal: str
    key: str
    request_hash: str

    def claim(self, response: dict[str, Any], ttl_s: int) -> IdempotencyClaim:
        """What to commit with the request's rows."""
        return IdempotencyClaim(
            principal=self.principal,
            key=self.key,
            request_hash=self.request_hash,
            response=response,
            ttl=timedelta(seconds=ttl_s),
        )


def keyed_request(
    key: str | None, caller: Principal | None, model: str, inputs: Sequence[Any]
) -> KeyedRequest | None:
    """The keyed form of a request, None without a key; 400 naming the header for a bad key."""
    if key is None:
        return None
    if not KEY.fullmatch(key):
        raise BadRequest(
            f"{HEADER} must be 1 to 255 visible ASCII characters.",
            details={"parameter": HEADER},
        )
    canonical = json.dumps(
        {"model": model, "inputs": list(inputs)},
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return KeyedRequest(
        principal=caller.subject if caller is not None else "",
        key=key,
        request_hash=hashlib.sha256(canonical.encode("utf-8")).hexdigest(),
    )


async def earlier_response(store: PredictionStore, keyed: KeyedRequest) -> dict[str, Any] | None:
    """The response committed under this key, None if there is none; 409 for another body."""
    record = await store.find_idempotent(keyed.principal, keyed.key)
    if record is None:
        return None
    if record.request_hash != keyed.request_hash:
        raise IdempotencyKeyReused(
            f"This {HEADER} was used with a different request; use a new key for a new request.",
            details={"parameter": HEADER},
        )
    return record.response
