"""SHA-256 of an artifact file, checked before a peer unpickles it (standard library only)."""

import hashlib
from pathlib import Path

CHUNK = 1 << 20


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of the file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def verify_file(path: Path, expected: str) -> None:
    """Refuse (ValueError) a file whose SHA-256 is not the one the model store recorded."""
    actual = file_sha256(path)
    if actual != expected:
        raise ValueError(f"{path}: SHA-256 {actual} does not match the recorded {expected}")
