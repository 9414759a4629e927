"""The real `Gateway` BentoML service, built in-process by `Gateway.to_asgi()`.

The whole app (BentoML's routes, our middleware chain, the mounted /api/v1 app, the runner
services as local dependencies) runs in the test process; only the HTTP server and batching
are missing. BentoML allows one such app per process (a second raises DuplicateTimeseries), and
the served models are resolved when `services.service` is first imported, so build it once per
session, after the models are in the store.
"""

import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any

# The serving suites test serving: authentication and rate limits have their own tests. Both are
# switched off here with the project's own settings (which production refuses), never by
# patching code; a suite that tests them passes its own env instead.
SERVING_ONLY_ENV = {"AUTH_ENABLED": "false", "RATE_LIMIT_ENABLED": "false"}


def serving_env(tags: Sequence[str], **extra: str) -> dict[str, str]:
    """The environment that serves exactly `tags` (name:version) with SERVING_ONLY_ENV."""
    return {**SERVING_ONLY_ENV, "SERVING_MODELS": ",".join(tags), **extra}


@contextmanager
def gateway_test_client(tags: Sequence[str]) -> Iterator[Any]:
    """A TestClient on `Gateway.to_asgi()` serving `tags`, its lifespan run; once per process.

    Server errors come back as responses, as a client would see them, not as exceptions.
    """
    from starlette.testclient import TestClient

    with ExitStack() as stack:
        # The settings are read at import and at startup; the env applies to those only.
        with settings_env(serving_env(tags)):
            from services.catalog import served_refs
            from services.service import Gateway

            served = {ref.tag for ref in served_refs()}
            if served != set(tags):
                raise RuntimeError(f"services.service was imported serving {sorted(served)}")
            client = TestClient(Gateway.to_asgi(), raise_server_exceptions=False)
            stack.enter_context(client)
        yield client


@contextmanager
def settings_env(env: Mapping[str, str]) -> Iterator[None]:
    """Set `env` and re-read every cached settings object; restore both afterwards."""
    previous = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    _clear_settings_caches()
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        _clear_settings_caches()


def _clear_settings_caches() -> None:
    from db.settings import database_settings
    from services.auth.settings import auth_settings
    from services.batch.settings import job_settings
    from services.catalog import served_refs
    from services.ratelimit.settings import rate_limit_settings
    from services.redis_client import redis_settings
    from services.settings import server_settings, serving_settings

    for cached in (
        serving_settings,
        server_settings,
        served_refs,
        auth_settings,
        rate_limit_settings,
        redis_settings,
        database_settings,
        job_settings,
    ):
        cached.cache_clear()
