"""PyTorch artifacts: torch.export programs load without unpickling anything; archives that
would unpickle are refused or cleaned; TorchScript still loads, with a deprecation notice."""

import json
import logging
import pickle
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from services.artifact.adapters import get_adapter
from services.artifact.adapters.torch_adapter import TorchAdapter
from services.errors import ModelNotLoaded
from tests.utils.factories import encoded, fit_model, tiny_frame, write_model, write_torchscript


class Unpickled(Exception):
    """Raised by the spies below: something tried to unpickle."""


@pytest.fixture
def no_unpickling(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every way torch.export.load can unpickle raises Unpickled instead."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise Unpickled

    monkeypatch.setattr(torch, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(torch._C, "_pickle_load_obj", refuse)


def _module_and_rows() -> tuple[torch.nn.Module, np.ndarray[Any, Any]]:
    x, y = encoded(tiny_frame(rows=40, seed=5))
    return fit_model("torch", x, y), x


def _default_archive(tmp_path: Path) -> Path:
    """What `torch.export.save` writes by default: example inputs pickled inside."""
    module, x = _module_and_rows()
    batch = torch.export.Dim("batch", min=1)
    program = torch.export.export(module, (torch.from_numpy(x[:4]),), dynamic_shapes=({0: batch},))
    path = tmp_path / "theirs.pt2"
    torch.export.save(program, str(path))
    return path


def _rewrite(path: Path, change: dict[str, bytes]) -> Path:
    """A copy of the archive with members (by path below the root folder) replaced or added."""
    target = path.with_name(f"changed-{path.name}")
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(target, "w") as dst:
        root = src.namelist()[0].split("/", 1)[0]
        for info in src.infolist():
            inner = info.filename.split("/", 1)[1]
            dst.writestr(info.filename, change.pop(inner, None) or src.read(info))
        for inner, data in change.items():
            dst.writestr(f"{root}/{inner}", data)
    return target


def test_an_exported_program_loads_without_unpickling(tmp_path: Path, no_unpickling: None) -> None:
    path = write_model("torch", tmp_path)
    x, _ = encoded(tiny_frame(rows=5, seed=1))

    probabilities = get_adapter("torch").load(path).predict_proba(x)

    assert probabilities.shape == (5, 2)


def test_torch_export_load_itself_unpickles_a_default_archive(
    tmp_path: Path, no_unpickling: None
) -> None:
    """The spies catch what they should: the example inputs torch.export.save pickles."""
    with pytest.raises(Unpickled):
        torch.export.load(str(_default_archive(tmp_path)))


def test_an_archive_with_pickled_example_inputs_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelNotLoaded, match=r"data/sample_inputs/model\.pt"):
        get_adapter("torch").load(_default_archive(tmp_path))


def test_adopting_a_users_archive_drops_its_example_inputs(
    tmp_path: Path, no_unpickling: None
) -> None:
    adapter = get_adapter("torch")
    module, x = _module_and_rows()
    staging = tmp_path / "staging"
    staging.mkdir()

    name = adapter.adopt(_default_archive(tmp_path), staging)
    probabilities = adapter.load(staging / name).predict_proba(x)

    assert name == "model.pt2"
    with torch.no_grad():
        expected = torch.softmax(module(torch.from_numpy(x)).double(), dim=1).numpy()
    assert np.array_equal(probabilities, expected)


def test_a_weight_stored_pickled_is_refused(tmp_path: Path) -> None:
    path = write_model("torch", tmp_path)
    with zipfile.ZipFile(path) as archive:
        name = next(n for n in archive.namelist() if n.endswith("_weights_config.json"))
        config = json.loads(archive.read(name))
    next(iter(config["config"].values()))["use_pickle"] = True
    inner = name.split("/", 1)[1]

    with pytest.raises(ModelNotLoaded, match="pickled"):
        get_adapter("torch").load(_rewrite(path, {inner: json.dumps(config).encode()}))


def test_a_compiled_library_inside_the_archive_is_refused(tmp_path: Path) -> None:
    path = _rewrite(write_model("torch", tmp_path), {"data/aotinductor/model/m.so": b"\x7fELF"})

    with pytest.raises(ModelNotLoaded, match=r"data/aotinductor/model/m\.so"):
        get_adapter("torch").load(path)


def test_a_program_declares_its_input_and_output_width(tmp_path: Path) -> None:
    predictor = get_adapter("torch").load(write_model("torch", tmp_path))

    assert (predictor.n_features, predictor.n_outputs) == (4, 2)


def test_torchscript_still_loads_with_a_deprecation_notice(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    x, _ = encoded(tiny_frame(rows=7, seed=4))
    program = get_adapter("torch").load(write_model("torch", tmp_path / "program"))

    with caplog.at_level(logging.WARNING, logger="services.artifact"):
        scripted = get_adapter("torch").load(write_torchscript(tmp_path / "script"))

    assert "model.pt is TorchScript, which torch 2.13 deprecates" in caplog.text
    assert "DeprecationWarning" in caplog.text
    assert np.array_equal(scripted.predict_proba(x), program.predict_proba(x))


def test_new_exports_refuse_a_torchscript_module(tmp_path: Path) -> None:
    module, x = _module_and_rows()
    with pytest.warns(DeprecationWarning, match="torch.jit"):
        scripted = torch.jit.script(module)

    with pytest.raises(TypeError, match=r"nn\.Module"):
        get_adapter("torch").save(scripted, tmp_path, example=x[:4])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_the_same_program_runs_on_cuda(tmp_path: Path) -> None:
    path = write_model("torch", tmp_path)
    x, _ = encoded(tiny_frame(rows=64, seed=6))

    on_cpu = TorchAdapter("cpu").load(path).predict_proba(x)
    on_cuda = TorchAdapter("cuda").load(path).predict_proba(x)

    assert np.allclose(on_cuda, on_cpu, rtol=0, atol=1e-5)
