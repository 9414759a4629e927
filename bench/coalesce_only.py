"""The gateway with coalescing in the gateway only: the runners serve `predict` unbatched.

Production has one switch, SERVING_BATCHING, for both places. This entry point (for
`bench.load`'s `coalesce-only` configuration) measures the split without touching services/:
BentoML imports the entry module again in every worker process, and the runner workers here
read SERVING_BATCHING=false before the runner services are declared, while the gateway worker
keeps the env it was given (coalescing on). Nothing else differs from services.service.

    bentoml serve bench.coalesce_only:Gateway --port 3100
"""

import os
import sys


def _service_name(argv: list[str]) -> str | None:
    if "--service-name" in argv[:-1]:
        return argv[argv.index("--service-name") + 1]
    return None


if (_service_name(sys.argv) or "").endswith("_runner"):
    os.environ["SERVING_BATCHING"] = "false"

from services.service import Gateway  # noqa: E402

__all__ = ["Gateway"]
