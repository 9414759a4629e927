"""Protocol tensor data: JSON and Triton's binary extension, in and out; every malformed
request is a 400 naming what is wrong."""

import json
import struct
from typing import Any

import numpy as np
import pytest

from services.errors import BadRequest
from services.gateway.oip.schemas import InferenceRequest, RequestOutput
from services.gateway.oip.tensors import Tensor, encode_output, parse_request, wants_binary


def _body(*inputs: dict[str, Any], **extra: Any) -> bytes:
    return json.dumps({"inputs": list(inputs), **extra}).encode()


def _bytes_tensor(*values: str) -> bytes:
    return b"".join(struct.pack("<I", len(v.encode())) + v.encode() for v in values)


def test_json_data_flat_or_nested_decodes_row_major() -> None:
    flat = {"name": "x", "shape": [2, 2], "datatype": "FP64", "data": [1, 2.5, 3, 4]}
    nested = {**flat, "data": [[1, 2.5], [3, 4]]}

    (from_flat,) = parse_request(_body(flat), None)[1]
    (from_nested,) = parse_request(_body(nested), None)[1]

    assert from_flat.values.tolist() == from_nested.values.tolist() == [1.0, 2.5, 3.0, 4.0]
    assert from_flat.shape == (2, 2)
    assert from_flat.values.dtype == np.float64


def test_json_bool_int_and_bytes_tensors() -> None:
    request, tensors = parse_request(
        _body(
            {"name": "b", "shape": [2], "datatype": "BOOL", "data": [True, False]},
            {"name": "i", "shape": [2], "datatype": "INT32", "data": [7, -1]},
            {"name": "s", "shape": [2], "datatype": "BYTES", "data": ["grocery", "travel"]},
            id="req-1",
        ),
        None,
    )

    assert request.id == "req-1"
    assert [t.values.tolist() for t in tensors] == [[True, False], [7, -1], ["grocery", "travel"]]


def test_binary_inputs_follow_the_json_header_in_input_order() -> None:
    numbers = np.array([[1.5, 2.0], [3.25, 4.0]], dtype=np.float32)
    flags = np.array([True, False])
    texts = _bytes_tensor("grocery", "ünï")
    header = json.dumps(
        {
            "inputs": [
                {"name": "m", "shape": [2, 2], "datatype": "FP32", **_size(numbers.nbytes)},
                {"name": "f", "shape": [2], "datatype": "BOOL", **_size(flags.nbytes)},
                {"name": "s", "shape": [2], "datatype": "BYTES", **_size(len(texts))},
            ]
        }
    ).encode()
    body = header + numbers.tobytes() + flags.tobytes() + texts

    _, (matrix, booleans, strings) = parse_request(body, str(len(header)))

    assert matrix.values.tolist() == [1.5, 2.0, 3.25, 4.0]
    assert booleans.values.tolist() == [True, False]
    assert strings.values.tolist() == ["grocery", "ünï"]


def _size(count: int) -> dict[str, Any]:
    return {"parameters": {"binary_data_size": count}}


@pytest.mark.parametrize(
    ("body", "header_length", "fragment"),
    [
        (b"{not json", None, "not a valid JSON"),
        (b"[1, 2]", None, "must be a JSON object"),
        (_body(), None, "inputs"),
        (_body({"name": "x", "shape": [2], "datatype": "FP99", "data": [1, 2]}), None, "datatype"),
        (_body({"name": "x", "shape": [3], "datatype": "FP64", "data": [1, 2]}), None, "needs 3"),
        (_body({"name": "x", "shape": [1], "datatype": "FP64", "data": ["a"]}), None, "FP64"),
        (_body({"name": "x", "shape": [1], "datatype": "INT64", "data": [1.5]}), None, "INT64"),
        (_body({"name": "x", "shape": [1], "datatype": "BOOL", "data": [1]}), None, "BOOL"),
        (_body({"name": "x", "shape": [1], "datatype": "UINT8", "data": [300]}), None, "range"),
        (_body({"name": "x", "shape": [1], "datatype": "FP64"}), None, "no data"),
        (
            _body(
                {"name": "x", "shape": [1], "datatype": "FP64", "data": [1]},
                {"name": "x", "shape": [1], "datatype": "FP64", "data": [1]},
            ),
            None,
            "twice",
        ),
        (
            _body({"name": "x", "shape": [1], "datatype": "FP64", **_size(8)}),
            "abc",
            "byte count",
        ),
        (_body({"name": "x", "shape": [1], "datatype": "FP64", **_size(8)}), "9999", "longer"),
        (
            _body(
                {
                    "name": "x",
                    "shape": [1],
                    "datatype": "FP64",
                    "parameters": {"shared_memory_region": "r"},
                }
            ),
            None,
            "shared memory",
        ),
    ],
    ids=[
        "bad-json",
        "not-object",
        "no-inputs",
        "unknown-datatype",
        "shape-count",
        "string-in-fp",
        "float-in-int",
        "int-in-bool",
        "uint8-overflow",
        "no-data",
        "duplicate-name",
        "bad-header-length",
        "header-past-body",
        "shared-memory",
    ],
)
def test_malformed_requests_are_400(body: bytes, header_length: str | None, fragment: str) -> None:
    with pytest.raises(BadRequest) as raised:
        parse_request(body, header_length)

    assert fragment in raised.value.message


def test_binary_data_of_the_wrong_size_or_left_over_bytes_is_400() -> None:
    short = json.dumps(
        {"inputs": [{"name": "x", "shape": [2], "datatype": "FP64", **_size(8)}]}
    ).encode()
    exact = short.replace(b'"binary_data_size": 8', b'"binary_data_size": 16')

    with pytest.raises(BadRequest, match="needs 16 bytes"):
        parse_request(short + b"\0" * 8, str(len(short)))
    with pytest.raises(BadRequest, match="4 bytes after the binary inputs belong to none"):
        parse_request(exact + b"\0" * 20, str(len(exact)))


def test_a_cut_short_bytes_element_is_400() -> None:
    header = json.dumps(
        {"inputs": [{"name": "s", "shape": [1], "datatype": "BYTES", **_size(6)}]}
    ).encode()

    with pytest.raises(BadRequest, match="cut short"):
        parse_request(header + struct.pack("<I", 10) + b"ab", str(len(header)))


def test_outputs_encode_as_json_or_binary() -> None:
    probabilities = Tensor("p", "FP64", (1, 2), np.array([0.25, 0.75]))
    labels = Tensor("label", "BYTES", (1,), np.array(["yes"], dtype=object))

    as_json, nothing = encode_output(probabilities, binary=False)
    as_binary, raw = encode_output(probabilities, binary=True)
    text, text_raw = encode_output(labels, binary=True)

    assert as_json == {"name": "p", "datatype": "FP64", "shape": [1, 2], "data": [0.25, 0.75]}
    assert nothing == b""
    assert as_binary["parameters"] == {"binary_data_size": 16}
    assert np.frombuffer(raw, dtype="<f8").tolist() == [0.25, 0.75]
    assert text_raw == _bytes_tensor("yes")
    assert text["parameters"] == {"binary_data_size": 7}


def test_binary_output_is_per_output_else_the_request_default() -> None:
    request = InferenceRequest.model_validate(
        {
            "inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": [1]}],
            "parameters": {"binary_data_output": True},
        }
    )
    plain = RequestOutput(name="label", parameters={"binary_data": False})

    assert wants_binary(request, None) is True
    assert wants_binary(request, RequestOutput(name="label")) is True
    assert wants_binary(request, plain) is False
