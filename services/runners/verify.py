"""Verify every served model before any server worker starts: `python -m services.runners.verify`.

The gateway's deployment hook runs this in a child process (so the arbiter process never loads
a framework) before BentoML starts a worker or accepts a connection: each model in
SERVING_MODELS is loaded and checked as its runner will check it (file digests, schema width,
golden outputs). On the first mismatch it logs one line naming the model, its tag and the
reason, and exits EXIT_REFUSED; the hook turns that into the server's own non-zero exit, so a
tampered artifact fails a deployment visibly instead of restarting a runner forever.
"""

import logging
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from services.catalog import ModelRef, served_refs
from services.errors import AppError
from services.observability.logs import configure_logging
from services.runners.core import RunnerCore
from services.settings import serving_settings

EXIT_REFUSED = 3
CODE_ROOT = Path(__file__).resolve().parents[2]  # holds the `services` package
logger = logging.getLogger("services.runners")


def verify_models(refs: Sequence[ModelRef]) -> list[str]:
    """Load and verify each model the way its runner does; the verified tags."""
    import bentoml

    settings = serving_settings()
    verified: list[str] = []
    for framework in sorted({ref.framework for ref in refs}):
        if framework == "torch":
            from services.artifact.adapters import torch_adapter

            torch_adapter.make_deterministic(settings.torch_threads)
        stored = [bentoml.models.get(ref.tag) for ref in refs if ref.framework == framework]
        core = RunnerCore(framework, stored, golden_tolerance=settings.golden_tolerance)
        verified += sorted(core.models)
    return verified


def main(argv: Sequence[str] = ()) -> int:
    """Exit 0 when every served model verifies, EXIT_REFUSED (one log line says why) if not.
    `argv` may name the model store to read (the one the server resolved its models from)."""
    configure_logging()
    if argv:
        from bentoml._internal.configuration.containers import BentoMLContainer
        from bentoml._internal.models import ModelStore

        BentoMLContainer.model_store.set(ModelStore(argv[0]))
    try:
        refs = served_refs()
    except AppError as exc:
        logger.critical("refusing to start: %s: %s", exc.error_code, exc.message)
        return EXIT_REFUSED
    try:
        verified = verify_models(refs)
    except AppError:  # RunnerCore logged the model, its tag and the reason in one line
        return EXIT_REFUSED
    logger.info("verified before start: %s", ", ".join(verified))
    return 0


def verify_or_exit() -> None:
    """Run main() in a child process; SystemExit with its code if a model does not verify.

    The child reads the model store this process resolved the served models from (a built
    bento's own store when serving a bento) and imports this code from where this process did.
    """
    import bentoml

    refs = served_refs()
    arguments = [str(Path(bentoml.models.get(refs[0].tag).path).parents[1])] if refs else []
    code = subprocess.run(
        [sys.executable, "-m", __name__, *arguments], cwd=CODE_ROOT, check=False
    ).returncode
    if code != 0:
        raise SystemExit(code)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
