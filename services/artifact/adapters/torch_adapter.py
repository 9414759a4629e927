"""PyTorch: TorchScript files (never pickle), run in eval mode without gradients."""

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from services.artifact.adapters.base import FrameworkAdapter, Predictor, predict_rowwise
from services.errors import ModelNotLoaded


@contextmanager
def _torchscript() -> Iterator[None]:
    """TorchScript is deprecated upstream (torch 2.13) but is the pickle-free format we serve;
    silence only that notice. Moving to torch.export (.pt2) is the planned replacement."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*torch\.jit.*", category=DeprecationWarning)
        yield


class TorchPredictor:
    """A TorchScript module that maps a float32 batch to class logits."""

    def __init__(self, module: torch.jit.ScriptModule, *, rowwise: bool, device: str) -> None:
        self._module = module
        self._rowwise = rowwise
        self._device = torch.device(device)

    @property
    def n_features(self) -> int | None:
        return None  # TorchScript does not declare its input width; callers probe.

    @property
    def n_outputs(self) -> int | None:
        return None

    def predict_proba(self, x: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
        if self._rowwise:
            return predict_rowwise(self._predict, x)
        return self._predict(x)

    def _predict(self, x: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
        with torch.inference_mode():
            logits = self._module(torch.from_numpy(np.ascontiguousarray(x)).to(self._device))
            # Softmax in float64, so probabilities sum to one as closely as float64 allows.
            probabilities = torch.softmax(logits.to(torch.float64), dim=1)
        return probabilities.cpu().numpy()


class TorchAdapter(FrameworkAdapter):
    framework = "torch"
    artifact_suffixes = (".pt",)

    def __init__(self, device: str = "cpu") -> None:
        self.device = device

    def kernels(self) -> str | None:
        if self.device.startswith("cuda"):
            return f"torch {torch.__version__} {torch.cuda.get_device_name(self.device)}"
        return f"torch {torch.__version__} cpu {torch.backends.cpu.get_cpu_capability()}"

    def save(self, model: Any, directory: Path) -> str:
        name = "model.pt"
        with _torchscript():
            scripted = (
                model if isinstance(model, torch.jit.ScriptModule) else torch.jit.script(model)
            )
            torch.jit.save(scripted, str(directory / name))
        return name

    def load(self, path: Path, *, rowwise: bool = False) -> Predictor:
        try:
            with _torchscript():
                module = torch.jit.load(str(path), map_location=self.device)  # type: ignore[no-untyped-call]
        except (RuntimeError, ValueError, OSError) as exc:
            raise ModelNotLoaded(f"{path.name} is not a loadable TorchScript file") from exc
        module.eval()
        return TorchPredictor(module, rowwise=rowwise, device=self.device)


ADAPTER = TorchAdapter()


def make_deterministic(threads: int = 1) -> None:
    """Deterministic kernels and a fixed thread count for this process."""
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(threads)


def select_device(wanted: str) -> str:
    """`wanted` if this machine has it, else the CPU with a logged warning."""
    import logging

    if wanted.startswith("cuda") and not torch.cuda.is_available():
        logging.getLogger("services.runners").warning(
            "SERVING_TORCH_DEVICE=%s but no CUDA device is visible; serving on the CPU", wanted
        )
        return "cpu"
    return wanted
