"""The background refresh of `model_feature_psi{model,version,feature}`.

Every gateway worker runs the loop, but only the holder of the `drift-gauge` lease (a row in
the database, renewed every MONITORING_DRIFT_REFRESH_S and taken over once it expires) computes:
the refresh reads up to MONITORING_DRIFT_MAX_ROWS served rows per model, and one worker in the
whole deployment doing that once a minute is enough for a drift signal that moves over hours,
while every worker doing it would multiply the database load by the worker count. It covers the
versions a deployment routes to (production, canary, shadows) against each one's reference
distribution; versions without one (exported before drift support) have no series.
"""

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.repositories.leases import acquire_lease
from services.deployments.settings import MonitoringSettings
from services.deployments.watcher import DeploymentWatcher
from services.monitoring.live import drift_over_window
from services.monitoring.windows import parse_window
from services.observability.metrics import FEATURE_PSI

logger = logging.getLogger("services.deployments")
LEASE = "drift-gauge"


class DriftGauge:
    """Recomputes the PSI gauge periodically, on whichever worker holds the lease."""

    def __init__(
        self,
        watcher: DeploymentWatcher,
        sessions: async_sessionmaker[AsyncSession],
        settings: MonitoringSettings,
    ) -> None:
        self.watcher = watcher
        self.sessions = sessions
        self.settings = settings
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._series: set[tuple[str, str, str]] = set()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the loop (nothing when MONITORING_DRIFT_REFRESH_S is 0)."""
        if self.settings.drift_refresh_s > 0:
            self._task = asyncio.create_task(self._loop(), name="drift-gauge")

    async def refresh(self) -> bool:
        """Recompute the gauge if this worker holds (or takes) the lease; True if it did."""
        ttl = timedelta(seconds=self.settings.drift_refresh_s * 2.5 + 5)
        async with self.sessions() as session:
            held = await acquire_lease(
                session=session, name=LEASE, holder=self.holder, now=datetime.now(UTC), ttl=ttl
            )
        if not held:
            return False
        window = parse_window(self.settings.drift_window)
        snapshot = self.watcher.snapshot
        series = set()
        for name, plan in snapshot.plans.items():
            deployed = [plan.production, *([plan.canary] if plan.canary else []), *plan.shadows]
            drift = await drift_over_window(
                self.sessions,
                model_name=name,
                references={m.ref.version: m.metadata.reference_distribution for m in deployed},
                window=window,
                max_rows=self.settings.drift_max_rows,
            )
            for version, report in drift.versions.items():
                for feature in report.features:
                    FEATURE_PSI.labels(model=name, version=version, feature=feature.name).set(
                        feature.psi
                    )
                    series.add((name, version, feature.name))
        for stale in self._series - series:  # versions no longer deployed
            with contextlib.suppress(KeyError):
                FEATURE_PSI.remove(*stale)
        self._series = series
        return True

    async def _loop(self) -> None:
        while True:
            try:
                await self.refresh()
            except Exception as exc:
                logger.warning("drift gauge refresh failed: %r", exc)
            await asyncio.sleep(self.settings.drift_refresh_s)

    async def close(self) -> None:
        """Stop the loop."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
