"""SHA-256 digests of artifact files and of tabular data, independent of file format."""

import hashlib
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import numpy.typing as npt

CHUNK_BYTES = 1 << 20
DATA_DIGEST_METHOD = "columns-sha256-v1"


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of one file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def directory_digests(directory: Path, names: Iterable[str]) -> dict[str, str]:
    """Digests of the named files inside `directory`, keyed by name."""
    return {name: file_sha256(directory / name) for name in sorted(names)}


class DataDigest:
    """Streams column batches into one digest that does not depend on batch boundaries.

    Each column gets its own hasher, fed with a canonical byte form of its values; the
    final digest hashes the column names with their column digests in schema order.
    """

    def __init__(self, columns: Iterable[str]) -> None:
        self._columns = list(columns)
        self._hashers = {name: hashlib.sha256() for name in self._columns}
        self.rows = 0

    def update(self, batch: Mapping[str, npt.NDArray[np.generic]]) -> None:
        """Feed one batch of equally long columns."""
        lengths = {len(batch[name]) for name in self._columns}
        if len(lengths) != 1:
            raise ValueError("columns in one batch must have the same length")
        for name in self._columns:
            self._hashers[name].update(_canonical_bytes(batch[name]))
        self.rows += lengths.pop()

    def hexdigest(self) -> str:
        """The combined digest of everything fed so far."""
        combined = hashlib.sha256()
        for name in self._columns:
            combined.update(name.encode("utf-8") + b"\x00")
            combined.update(self._hashers[name].digest())
        return combined.hexdigest()


def _canonical_bytes(values: npt.NDArray[np.generic]) -> bytes:
    """Numbers as little-endian float64, everything else as NUL-terminated UTF-8 text."""
    if values.dtype.kind in "biuf":
        return np.ascontiguousarray(values, dtype="<f8").tobytes()
    return b"".join(str(value).encode("utf-8") + b"\x00" for value in values.tolist())
