"""The inference result cache: model tag + canonical input hash -> class probabilities.

Redis with a TTL (shared by every worker and replica), or a bounded in-process LRU without Redis.
"""

import hashlib
import json
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

from services.observability.metrics import CACHE
from services.redis_client import RedisGuard, RedisSettings


def result_key(tag: str, rows: Sequence[Mapping[str, Any]]) -> str:
    """The cache key of `rows` (validated, any key order) for model `tag`."""
    canonical = json.dumps(rows, sort_keys=True, separators=(",", ":"), allow_nan=False)
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    return f"inference:v1:{tag}:{digest}"


class ResultCache:
    """Inference results by model tag and input hash: Redis with a TTL, or a bounded local LRU."""

    def __init__(self, guard: RedisGuard, settings: RedisSettings) -> None:
        self.guard = guard
        self.settings = settings
        self._local: OrderedDict[str, tuple[float, bytes]] = OrderedDict()

    async def get_probabilities(self, key: str) -> list[list[float]] | None:
        """Cached probabilities for `key`, or None."""
        hit = await self.get(key)
        if hit is None:
            return None
        probabilities: list[list[float]] = json.loads(hit)
        return probabilities

    async def set_probabilities(self, key: str, probabilities: list[list[float]]) -> None:
        """Cache probabilities under `key`."""
        await self.set(key, json.dumps(probabilities).encode("utf-8"))

    async def get(self, key: str) -> bytes | None:
        """The cached bytes, or None (a miss, or Redis unavailable)."""
        if self.guard.client is not None:
            if not self.guard.usable:
                CACHE.labels(outcome="unavailable").inc()
                return None
            try:
                value: bytes | None = await self.guard.client.get(key)
            except Exception as exc:
                self.guard.failed("cache", exc)
                CACHE.labels(outcome="unavailable").inc()
                return None
        else:
            value = self._local_get(key)
        CACHE.labels(outcome="hit" if value is not None else "miss").inc()
        return value

    async def set(self, key: str, value: bytes) -> None:
        """Store `value` for the configured TTL (skipped while Redis is unavailable)."""
        if self.guard.client is None:
            self._local_set(key, value)
            return
        if not self.guard.usable:
            return
        try:
            await self.guard.client.set(key, value, ex=self.settings.cache_ttl_s)
        except Exception as exc:
            self.guard.failed("cache", exc)

    def _local_get(self, key: str) -> bytes | None:
        entry = self._local.get(key)
        if entry is None or entry[0] < time.monotonic():
            self._local.pop(key, None)
            return None
        self._local.move_to_end(key)
        return entry[1]

    def _local_set(self, key: str, value: bytes) -> None:
        if self.settings.local_cache_entries == 0:
            return
        self._local[key] = (time.monotonic() + self.settings.cache_ttl_s, value)
        self._local.move_to_end(key)
        while len(self._local) > self.settings.local_cache_entries:
            self._local.popitem(last=False)
