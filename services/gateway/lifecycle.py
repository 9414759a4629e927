"""The model lifecycle's live parts in one gateway worker: the deployment watcher (routing),
the shadow queue and the drift gauge refresh, started with the runtime and closed with it."""

import logging
from dataclasses import dataclass

from services.catalog import ModelCatalog
from services.deployments.drift_gauge import DriftGauge
from services.deployments.settings import DeploymentSettings, MonitoringSettings
from services.deployments.watcher import DeploymentWatcher
from services.persistence import PredictionStore
from services.pipeline.inference import Inference
from services.pipeline.shadow import ShadowQueue

logger = logging.getLogger("services.gateway")


@dataclass(frozen=True)
class Lifecycle:
    """Deployments (as this worker routes them), shadow traffic and the drift gauge."""

    deployments: DeploymentWatcher
    shadows: ShadowQueue
    drift_gauge: DriftGauge
    monitoring: MonitoringSettings

    async def close(self) -> None:
        """Stop polling, shadow work and the gauge refresh."""
        await self.drift_gauge.close()
        await self.shadows.close()
        await self.deployments.close()


async def start_lifecycle(
    *,
    catalog: ModelCatalog,
    inference: Inference,
    store: PredictionStore,
    deployment: DeploymentSettings,
    monitoring: MonitoringSettings,
) -> Lifecycle:
    """Load the deployments and start the background work of this worker."""
    watcher = DeploymentWatcher(catalog, store.sessions, poll_s=deployment.poll_s)
    await watcher.start()
    shadows = ShadowQueue(
        inference=inference,
        sessions=store.sessions,
        queue_size=deployment.shadow_queue,
        in_flight=deployment.shadow_in_flight,
    )
    shadows.start()
    gauge = DriftGauge(watcher, store.sessions, monitoring)
    gauge.start()
    return Lifecycle(deployments=watcher, shadows=shadows, drift_gauge=gauge, monitoring=monitoring)
