"""Tensor data in the protocol, to numpy and back: JSON `data` (flat or nested, row-major), or
Triton's binary tensor data extension (little-endian bytes after a JSON header whose length the
`Inference-Header-Content-Length` header gives; BYTES elements each prefixed by a 4-byte length).

Everything wrong here is the client's: a 400 naming the tensor. Written by hand because no
maintained library decodes the protocol on the server side (tritonclient is the client half).
"""

import json
import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic import ValidationError

from services.errors import BadRequest
from services.gateway.oip.schemas import InferenceRequest, RequestInput, RequestOutput

HEADER_LENGTH = "inference-header-content-length"
BINARY_SIZE = "binary_data_size"
MAX_NESTING = 8
NUMPY_TYPES: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype("<u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("<i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
    "BYTES": np.dtype(object),
}
# Features of the shared-memory extension, which a server across a network cannot offer.
UNSUPPORTED_PARAMETERS = ("shared_memory_region", "shared_memory_byte_size", "shared_memory_offset")


@dataclass(frozen=True)
class Tensor:
    """A decoded tensor: `values` holds its elements flat, in row-major order."""

    name: str
    datatype: str
    shape: tuple[int, ...]
    values: npt.NDArray[Any]


def parse_request(body: bytes, header_length: str | None) -> tuple[InferenceRequest, list[Tensor]]:
    """The request document and its input tensors, from a JSON or JSON-plus-binary body."""
    header, binary = _split(body, header_length)
    try:
        document = json.loads(header)
    except (ValueError, RecursionError):
        raise BadRequest("The request body is not a valid JSON inference request.") from None
    if not isinstance(document, dict):
        raise BadRequest("The request body must be a JSON object.")
    try:
        request = InferenceRequest.model_validate(document)
    except ValidationError as exc:
        raise BadRequest(f"Not an inference request: {_first_errors(exc)}") from None
    return request, decode_inputs(request.inputs, binary)


def decode_inputs(inputs: Sequence[RequestInput], binary: bytes) -> list[Tensor]:
    """Each input's elements; binary inputs take their bytes from `binary`, in input order."""
    tensors, offset, seen = [], 0, set()
    for item in inputs:
        if item.name in seen:
            raise BadRequest(f"input {item.name!r} appears twice")
        seen.add(item.name)
        parameters = item.parameters or {}
        _refuse_unsupported(f"input {item.name!r}", parameters)
        size = parameters.get(BINARY_SIZE)
        if size is None:
            values = _from_json(item)
        else:
            if item.data is not None:
                raise BadRequest(f"input {item.name!r} has both data and {BINARY_SIZE}")
            if isinstance(size, bool) or not isinstance(size, int) or size < 0:
                raise BadRequest(f"input {item.name!r}: {BINARY_SIZE} must be a byte count")
            if offset + size > len(binary):
                raise BadRequest(f"input {item.name!r}: the body ends before its binary data")
            values = _from_bytes(item, binary[offset : offset + size])
            offset += size
        tensors.append(Tensor(item.name, item.datatype, tuple(item.shape), values))
    if offset != len(binary):
        raise BadRequest(f"{len(binary) - offset} bytes after the binary inputs belong to none")
    return tensors


def wants_binary(request: InferenceRequest, output: RequestOutput | None) -> bool:
    """Whether an output goes back as binary data: its own `binary_data`, else the request's
    `binary_data_output` (both false by default: plain JSON)."""
    own = (output.parameters or {}).get("binary_data") if output is not None else None
    if own is None:
        own = (request.parameters or {}).get("binary_data_output", False)
    if not isinstance(own, bool):
        raise BadRequest("binary_data and binary_data_output must be true or false")
    return own


def encode_output(tensor: Tensor, *, binary: bool) -> tuple[dict[str, Any], bytes]:
    """One output's JSON entry, and its bytes when it goes back as binary data."""
    entry: dict[str, Any] = {
        "name": tensor.name,
        "datatype": tensor.datatype,
        "shape": list(tensor.shape),
    }
    if not binary:
        entry["data"] = tensor.values.tolist()
        return entry, b""
    if tensor.datatype == "BYTES":
        raw = b"".join(
            struct.pack("<I", len(encoded)) + encoded
            for encoded in (str(value).encode("utf-8") for value in tensor.values)
        )
    else:
        raw = np.ascontiguousarray(tensor.values, dtype=NUMPY_TYPES[tensor.datatype]).tobytes()
    entry["parameters"] = {BINARY_SIZE: len(raw)}
    return entry, raw


def refuse_unsupported_output(output: RequestOutput) -> None:
    """400 for output features this server does not offer (shared memory, classification)."""
    parameters = output.parameters or {}
    _refuse_unsupported(f"output {output.name!r}", parameters)
    if parameters.get("classification"):
        raise BadRequest(
            "the classification extension is not supported: request 'label' and 'probabilities'"
        )


def _split(body: bytes, header_length: str | None) -> tuple[bytes, bytes]:
    if header_length is None:
        return body, b""
    if not header_length.isascii() or not header_length.isdigit():
        raise BadRequest("Inference-Header-Content-Length must be a byte count")
    length = int(header_length)
    if length > len(body):
        raise BadRequest("Inference-Header-Content-Length is longer than the body")
    return body[:length], body[length:]


def _refuse_unsupported(what: str, parameters: dict[str, Any]) -> None:
    for name in UNSUPPORTED_PARAMETERS:
        if name in parameters:
            raise BadRequest(f"{what}: shared memory is not supported; send the data in the body")


def _from_json(item: RequestInput) -> npt.NDArray[Any]:
    if item.data is None:
        raise BadRequest(f"input {item.name!r} has no data")
    values = _flatten(item.data, item.name)
    expected = math.prod(item.shape)
    if len(values) != expected:
        raise BadRequest(
            f"input {item.name!r}: shape {item.shape} needs {expected} values, got {len(values)}"
        )
    if not all(_fits(item.datatype, value) for value in values):
        raise BadRequest(f"input {item.name!r}: data does not match datatype {item.datatype}")
    try:
        return np.array(values, dtype=NUMPY_TYPES[item.datatype])
    except OverflowError:
        raise BadRequest(
            f"input {item.name!r}: a value is out of range for {item.datatype}"
        ) from None


def _flatten(data: Any, name: str) -> list[Any]:
    values = data if isinstance(data, list) else [data]
    for _ in range(MAX_NESTING):
        if not any(isinstance(value, list) for value in values):
            return values
        values = [
            element
            for value in values
            for element in (value if isinstance(value, list) else [value])
        ]
    raise BadRequest(f"input {name!r}: data is nested deeper than {MAX_NESTING} levels")


def _fits(datatype: str, value: Any) -> bool:
    if datatype == "BOOL":
        return isinstance(value, bool)
    if datatype == "BYTES":
        return isinstance(value, str)
    if isinstance(value, bool):
        return False
    if datatype.startswith("FP"):
        return isinstance(value, (int, float))
    return isinstance(value, int)


def _from_bytes(item: RequestInput, raw: bytes) -> npt.NDArray[Any]:
    expected = math.prod(item.shape)
    if item.datatype == "BYTES":
        values = _bytes_elements(item.name, raw)
        if len(values) != expected:
            raise BadRequest(
                f"input {item.name!r}: shape {item.shape} needs {expected} values,"
                f" got {len(values)}"
            )
        return np.array(values, dtype=object)
    dtype = NUMPY_TYPES[item.datatype]
    if len(raw) != expected * dtype.itemsize:
        raise BadRequest(
            f"input {item.name!r}: shape {item.shape} of {item.datatype} needs"
            f" {expected * dtype.itemsize} bytes, got {len(raw)}"
        )
    if item.datatype == "BOOL":
        flags: npt.NDArray[np.bool_] = np.frombuffer(raw, dtype=np.uint8) != 0
        return flags
    return np.frombuffer(raw, dtype=dtype)


def _bytes_elements(name: str, raw: bytes) -> list[str]:
    values, offset = [], 0
    while offset < len(raw):
        if offset + 4 > len(raw):
            raise BadRequest(f"input {name!r}: a BYTES element is cut short")
        (length,) = struct.unpack_from("<I", raw, offset)
        offset += 4
        if offset + length > len(raw):
            raise BadRequest(f"input {name!r}: a BYTES element is cut short")
        try:
            values.append(raw[offset : offset + length].decode("utf-8"))
        except UnicodeDecodeError:
            raise BadRequest(f"input {name!r}: BYTES elements must be UTF-8 text") from None
        offset += length
    return values


def _first_errors(exc: ValidationError, limit: int = 3) -> str:
    errors = exc.errors()
    parts = [
        f"{'.'.join(str(p) for p in error.get('loc', ())) or 'body'}: {error.get('msg')}"
        for error in errors[:limit]
    ]
    return "; ".join(parts) or "invalid document"
