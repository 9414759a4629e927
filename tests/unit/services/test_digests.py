import hashlib
from pathlib import Path

import numpy as np

from services.artifact.digests import DataDigest, file_sha256


def test_file_sha256_matches_hashlib(tmp_path: Path) -> None:
    path = tmp_path / "blob"
    path.write_bytes(b"x" * 3_000_000)

    assert file_sha256(path) == hashlib.sha256(b"x" * 3_000_000).hexdigest()


def _digest(batches: list[dict[str, np.ndarray]]) -> str:
    digest = DataDigest(["a", "b"])
    for batch in batches:
        digest.update(batch)
    return digest.hexdigest()


def test_data_digest_does_not_depend_on_batch_boundaries() -> None:
    a, b = np.arange(10.0), np.array(list("abcdefghij"), dtype=object)

    whole = _digest([{"a": a, "b": b}])
    split = _digest([{"a": a[:3], "b": b[:3]}, {"a": a[3:], "b": b[3:]}])

    assert whole == split


def test_data_digest_changes_with_any_value() -> None:
    a, b = np.arange(10.0), np.array(list("abcdefghij"), dtype=object)
    changed = a.copy()
    changed[7] = 7.5

    assert _digest([{"a": a, "b": b}]) != _digest([{"a": changed, "b": b}])


def test_data_digest_counts_rows() -> None:
    digest = DataDigest(["a"])
    digest.update({"a": np.zeros(4)})
    digest.update({"a": np.zeros(3)})

    assert digest.rows == 7
