"""PyTorch: torch.export programs (.pt2, no pickle), run without gradients on the configured
device. TorchScript files (.pt), deprecated since torch 2.13, still load, with a warning."""

import logging
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch.export import ExportedProgram
from torch.export.passes import move_to_device_pass

from services.artifact.adapters import torch_program
from services.artifact.adapters.base import FrameworkAdapter, Predictor
from services.errors import ModelNotLoaded

TORCH_EXPORT = "torch.export"
TORCHSCRIPT = "torchscript"
FORMATS = {".pt2": TORCH_EXPORT, ".pt": TORCHSCRIPT}

logger = logging.getLogger("services.artifact")


@contextmanager
def _torchscript() -> Iterator[None]:
    """Silence torch's own TorchScript deprecation notice: `load` logs ours, once per file."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*torch\.jit.*", category=DeprecationWarning)
        yield


class TorchPredictor:
    """A module on one device that maps a float32 batch to class logits."""

    def __init__(
        self,
        forward: Callable[[torch.Tensor], torch.Tensor],
        *,
        device: str,
        n_features: int | None = None,
        n_outputs: int | None = None,
    ) -> None:
        self._forward = forward
        self._device = torch.device(device)
        self._n_features = n_features
        self._n_outputs = n_outputs

    @property
    def n_features(self) -> int | None:
        return self._n_features  # None (TorchScript): callers probe.

    @property
    def n_outputs(self) -> int | None:
        return self._n_outputs

    def predict_proba(self, x: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
        with torch.inference_mode():
            logits = self._forward(torch.from_numpy(np.ascontiguousarray(x)).to(self._device))
            # Softmax in float64, so probabilities sum to one as closely as float64 allows.
            probabilities = torch.softmax(logits.to(torch.float64), dim=1)
        return probabilities.cpu().numpy()


class TorchAdapter(FrameworkAdapter):
    framework = "torch"
    artifact_suffixes = tuple(FORMATS)

    def __init__(self, device: str = "cpu") -> None:
        self.device = device

    def kernels(self) -> str | None:
        if self.device.startswith("cuda"):
            return f"torch {torch.__version__} {torch.cuda.get_device_name(self.device)}"
        return f"torch {torch.__version__} cpu {torch.backends.cpu.get_cpu_capability()}"

    def model_format(self, file_name: str) -> str:
        return FORMATS.get(Path(file_name).suffix.lower(), "unknown")

    def save(self, model: Any, directory: Path, *, example: npt.NDArray[np.float32]) -> str:
        """Export `model` (an nn.Module, or an ExportedProgram) as a torch.export program."""
        if isinstance(model, torch.jit.ScriptModule):
            raise TypeError("TorchScript is deprecated: pass the nn.Module, which is exported")
        program = (
            model
            if isinstance(model, ExportedProgram)
            else torch_program.export_program(model, example)
        )
        name = "model.pt2"
        torch_program.save_program(program, directory / name)
        return name

    def adopt(self, source: Path, directory: Path) -> str:
        """A user's .pt2 is copied without its pickled example inputs; TorchScript as it is."""
        name = self.artifact_name(source)
        if self.model_format(name) != TORCH_EXPORT:
            return super().adopt(source, directory)
        torch_program.copy_without_sample_inputs(source, directory / name)
        return name

    def load(self, path: Path) -> Predictor:
        if self.model_format(path.name) == TORCHSCRIPT:
            return self._load_torchscript(path)
        torch_program.check_archive(path)
        try:
            program = torch.export.load(str(path))
            if self.device != "cpu":
                program = move_to_device_pass(program, self.device)
            n_features, n_outputs = torch_program.io_widths(program)
            module = program.module(check_guards=False)
        except ModelNotLoaded:
            raise
        except Exception as exc:  # deserialization raises many types; all mean "not loadable"
            raise ModelNotLoaded(f"{path.name} is not a loadable torch.export program") from exc
        # `forward` directly, not `module(...)`: the module's input-check hook costs tens of
        # microseconds a call, and the predictor only ever passes 2-D float32 batches whose
        # width the loader has checked against the program's signature.
        return TorchPredictor(
            module.forward, device=self.device, n_features=n_features, n_outputs=n_outputs
        )

    def _load_torchscript(self, path: Path) -> Predictor:
        try:
            with _torchscript():
                module = torch.jit.load(str(path), map_location=self.device)  # type: ignore[no-untyped-call]
        except (RuntimeError, ValueError, OSError) as exc:
            raise ModelNotLoaded(f"{path.name} is not a loadable TorchScript file") from exc
        logger.warning(
            "DeprecationWarning: %s is TorchScript, which torch 2.13 deprecates; it is served as "
            "before, but export the model again as a torch.export program (.pt2)",
            path.name,
        )
        module.eval()
        return TorchPredictor(module, device=self.device)


ADAPTER = TorchAdapter()


def make_deterministic(threads: int = 1) -> None:
    """Deterministic kernels and a fixed thread count for this process."""
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(threads)


def select_device(wanted: str) -> str:
    """`wanted` if this machine has it, else the CPU with a logged warning."""
    if wanted.startswith("cuda") and not torch.cuda.is_available():
        logging.getLogger("services.runners").warning(
            "SERVING_TORCH_DEVICE=%s but no CUDA device is visible; serving on the CPU", wanted
        )
        return "cpu"
    return wanted
