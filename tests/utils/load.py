"""Concurrent prediction requests against a served gateway, as many clients at once."""

import asyncio
from collections.abc import Sequence
from typing import Any

import httpx

PREDICTIONS = "/api/v1/predictions"
# Every request reaches a runner: the result cache would answer repeated inputs itself.
NO_CACHE = {"Cache-Control": "no-cache"}


async def post_concurrently(
    base_url: str, bodies: Sequence[dict[str, Any]], *, timeout_s: float = 60.0
) -> list[httpx.Response]:
    """POST every body to /api/v1/predictions at once, one connection each; responses in order."""
    limits = httpx.Limits(max_connections=len(bodies), max_keepalive_connections=len(bodies))
    async with httpx.AsyncClient(base_url=base_url, timeout=timeout_s, limits=limits) as client:
        return list(
            await asyncio.gather(
                *(client.post(PREDICTIONS, json=body, headers=NO_CACHE) for body in bodies)
            )
        )


def prediction_bodies(rows_by_model: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """One single-row request body per row, the models interleaved."""
    queues = {model: list(rows) for model, rows in rows_by_model.items()}
    bodies = []
    while any(queues.values()):
        for model, rows in queues.items():
            if rows:
                bodies.append({"model": model, "inputs": [rows.pop(0)]})
    return bodies
