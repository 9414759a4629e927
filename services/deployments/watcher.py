"""Every gateway worker's view of the deployments: an immutable snapshot, replaced when the
database's change counter moves.

Propagation is by polling, not Redis pub/sub: each worker reads the sum of the models' current
revisions (one indexed aggregate over a table with a row per model) every DEPLOYMENT_POLL_S
(1 s), so a change reaches every worker and replica within about a second, whether or not Redis
is up, with nothing to reconnect or miss. The worker that made a change refreshes at once.
"""

import asyncio
import contextlib
import logging

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.repositories import deployments as repository
from services.catalog import ModelCatalog, ServedModel
from services.deployments.manager import DeploymentManager
from services.deployments.routing import DeploymentSnapshot, Route, build_snapshot
from services.observability.metrics import DEPLOYMENT_REFRESH_FAILURES

logger = logging.getLogger("services.deployments")


class DeploymentWatcher:
    """Holds the current snapshot and keeps it fresh; requests route through it."""

    def __init__(
        self,
        catalog: ModelCatalog,
        sessions: async_sessionmaker[AsyncSession],
        *,
        poll_s: float,
    ) -> None:
        self.catalog = catalog
        self.sessions = sessions
        self.poll_s = poll_s
        self.manager = DeploymentManager(sessions, catalog)
        self.snapshot: DeploymentSnapshot = build_snapshot(catalog, {})
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    def route(self, wanted: str, *, request_id: str, principal: str | None) -> Route:
        """Route by the snapshot as it is now (a request reads it once, when it starts)."""
        return self.snapshot.route(wanted, request_id=request_id, principal=principal)

    def production(self, name: str) -> ServedModel:
        """The version that answers `name` now, canary aside."""
        return self.snapshot.production(name)

    async def start(self) -> None:
        """Load the deployments, then poll for changes in the background."""
        await self.refresh()
        self._task = asyncio.create_task(self._poll(), name="deployment-watcher")

    async def refresh(self, *, force: bool = False) -> bool:
        """Rebuild the snapshot if the change counter moved (or `force`); True if it did."""
        async with self._lock:
            async with self.sessions() as session:
                counter = await repository.change_counter(session=session)
            if counter == self.snapshot.counter and not force:
                return False
            states = await self.manager.all_current()
            self.snapshot = build_snapshot(self.catalog, states, counter=counter)
        logger.info(
            "deployments refreshed",
            extra={
                "counter": counter,
                "revisions": {name: state.revision for name, state in states.items()},
            },
        )
        return True

    async def _poll(self) -> None:
        failing = False
        while True:
            await asyncio.sleep(self.poll_s)
            try:
                await self.refresh()
            except Exception as exc:
                DEPLOYMENT_REFRESH_FAILURES.inc()
                if not failing:  # once per outage, not once a second
                    logger.warning("cannot read deployments, keeping the last ones: %r", exc)
                failing = True
            else:
                if failing:
                    logger.warning("reading deployments works again")
                failing = False

    async def close(self) -> None:
        """Stop polling."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
