"""torch.export programs (.pt2) without pickle: written without pickled parts, checked before
loading, and cleaned of them when a user brings one.

`torch.export.load` unpickles whatever an archive marks as pickled: the example inputs (saved
with `torch.save`; loaded with `weights_only=True` and, when that fails, retried without it),
weights and constants flagged `use_pickle` (tensor subclasses), custom and opaque objects; and
it loads AOTInductor shared libraries when an archive carries them. A program exported here holds
none of these: tensors are raw bytes described by JSON configs, the graph is JSON naming
operators, and the example inputs are dropped before saving. `check_archive` reads the archive's
table of contents and payload configs and refuses anything else, so `torch.export.load` never
meets pickled data.
"""

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch.export import ExportedProgram
from torch.export.pt2_archive import constants as pt2

from services.errors import ModelNotLoaded

# Bookkeeping files every archive has: format tags, byte order, serialization id.
_FIXED_FILES = frozenset(
    {pt2.ARCHIVE_FORMAT_PATH, pt2.ARCHIVE_VERSION_PATH, "byteorder", ".data/version"}
    | {".data/serialization_id"}
)
_CONFIG_DIRS = (pt2.WEIGHTS_DIR, pt2.CONSTANTS_DIR)
_RAW_PREFIXES = (pt2.WEIGHT_FILENAME_PREFIX, pt2.TENSOR_CONSTANT_FILENAME_PREFIX)


def export_program(model: torch.nn.Module, example: npt.NDArray[np.float32]) -> ExportedProgram:
    """Trace `model` into a program that takes a float32 [batch, features] tensor, any batch."""
    rows = example[:8] if len(example) >= 2 else np.repeat(example[:1], 2, axis=0)
    # torch.export fixes a dimension whose example size is 0 or 1, hence at least two rows.
    batch = torch.export.Dim("batch", min=1)
    return torch.export.export(
        model.eval(), (torch.from_numpy(np.ascontiguousarray(rows)),), dynamic_shapes=({0: batch},)
    )


def save_program(program: ExportedProgram, path: Path) -> None:
    """Write `program` without its example inputs, the one part torch.export pickles."""
    program.example_inputs = None
    torch.export.save(program, str(path))


def check_archive(path: Path) -> None:
    """Refuse an archive that holds anything `torch.export.load` would unpickle or execute."""
    members, configs = _read_contents(path)
    if pt2.ARCHIVE_FORMAT_PATH not in members:
        raise ModelNotLoaded(f"{path.name} is not a torch.export program")
    allowed = set(_FIXED_FILES) | set(configs) | _raw_payloads(path, configs)
    for name, size in members.items():
        if name in allowed or name.startswith(pt2.EXTRA_DIR):
            continue
        if name.startswith(pt2.MODELS_DIR) and name.endswith(".json"):
            continue
        if name.startswith(pt2.SAMPLE_INPUTS_DIR) and size == 0:
            continue
        raise ModelNotLoaded(
            f"{path.name} holds {name}, which loading would unpickle or execute; only programs "
            "saved with torch.export.save and exported here or through `export` are served"
        )


def copy_without_sample_inputs(source: Path, target: Path) -> None:
    """Copy a user's archive, emptying its example inputs (pickled, and not needed to serve)."""
    try:
        with zipfile.ZipFile(source) as src, zipfile.ZipFile(target, "w") as dst:
            for info in src.infolist():
                pickled = _inner(info.filename).startswith(pt2.SAMPLE_INPUTS_DIR)
                dst.writestr(info.filename, b"" if pickled else src.read(info))
    except (zipfile.BadZipFile, OSError) as exc:
        raise ModelNotLoaded(f"{source.name} is not a torch.export program") from exc


def io_widths(program: ExportedProgram) -> tuple[int | None, int | None]:
    """Input features and output classes, read from the program's signature where it fixes them.

    ModelNotLoaded when the program does not take exactly one 2-D tensor.
    """
    signature = program.graph_signature
    if len(signature.user_inputs) != 1:
        raise ModelNotLoaded(
            f"the program takes {len(signature.user_inputs)} inputs; expected one "
            "[batch, features] tensor"
        )
    nodes = {node.name: node for node in program.graph.nodes}
    features = _last_dim(nodes[str(signature.user_inputs[0])].meta.get("val"))
    outputs = None
    if len(signature.user_outputs) == 1 and signature.user_outputs[0] in nodes:
        outputs = _last_dim(nodes[str(signature.user_outputs[0])].meta.get("val"))
    return features, outputs


def _last_dim(value: Any) -> int | None:
    shape = getattr(value, "shape", None)
    if shape is None or len(shape) != 2:
        return None
    width = shape[-1]
    return width if isinstance(width, int) else None


def _inner(name: str) -> str:
    """A member's path below the archive's root folder (named after the file it was saved as)."""
    return name.split("/", 1)[1] if "/" in name else name


def _read_contents(path: Path) -> tuple[dict[str, int], dict[str, Any]]:
    """Member sizes by inner path, and the parsed weight and constant payload configs."""
    try:
        with zipfile.ZipFile(path) as archive:
            infos = {
                _inner(info.filename): info for info in archive.infolist() if not info.is_dir()
            }
            configs = {
                name: json.loads(archive.read(info))
                for name, info in infos.items()
                if name.startswith(_CONFIG_DIRS) and name.endswith("_config.json")
            }
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ModelNotLoaded(f"{path.name} is not a torch.export program") from exc
    return {name: info.file_size for name, info in infos.items()}, configs


def _raw_payloads(path: Path, configs: dict[str, Any]) -> set[str]:
    """The tensor files the configs describe as raw bytes; ModelNotLoaded on any pickled one."""
    raw = set()
    for config_name, document in configs.items():
        directory = next(d for d in _CONFIG_DIRS if config_name.startswith(d))
        entries = document.get("config", {}) if isinstance(document, dict) else None
        if not isinstance(entries, dict):
            raise ModelNotLoaded(f"{path.name}: {config_name} is not a payload config")
        for fqn, meta in entries.items():
            name = meta.get("path_name") if isinstance(meta, dict) else None
            if (
                not isinstance(name, str)
                or meta.get("use_pickle") is not False
                or not name.startswith(_RAW_PREFIXES)
            ):
                raise ModelNotLoaded(
                    f"{path.name} stores {fqn} pickled (a tensor subclass or a Python object); "
                    "only plain tensors are served"
                )
            raw.add(directory + name)
    return raw
