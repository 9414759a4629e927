"""The protocol's JSON documents (Open Inference Protocol REST, KServe V2), as pydantic models.

Requests are validated against them (a request they reject is a 400); responses and the
committed /v2 OpenAPI document are built from them. Unknown fields are ignored, as the protocol
lets extensions add their own.
"""

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt

Datatype = Literal[
    "BOOL",
    "UINT8",
    "UINT16",
    "UINT32",
    "UINT64",
    "INT8",
    "INT16",
    "INT32",
    "INT64",
    "FP16",
    "FP32",
    "FP64",
    "BYTES",
]
Parameter = bool | int | float | str
Parameters = dict[str, Parameter]


class _Document(BaseModel):
    model_config = ConfigDict(extra="ignore", protected_namespaces=())


class RequestInput(_Document):
    """One input tensor: its data inline (`data`), or in the body after the JSON header
    (Triton's binary tensor extension: `parameters.binary_data_size`)."""

    name: str = Field(min_length=1, max_length=200)
    shape: list[NonNegativeInt] = Field(max_length=8)
    datatype: Datatype
    parameters: Parameters | None = None
    data: Any = Field(
        default=None, description="Row-major values, flat or nested; absent for binary data."
    )


class RequestOutput(_Document):
    """An output the client wants, and how (`binary_data`)."""

    name: str
    parameters: Parameters | None = None


class InferenceRequest(_Document):
    """POST /v2/models/{name}[/versions/{version}]/infer."""

    id: str | None = Field(default=None, max_length=200)
    parameters: Parameters | None = None
    inputs: list[RequestInput] = Field(min_length=1, max_length=1024)
    outputs: list[RequestOutput] | None = None


class ResponseOutput(_Document):
    """One output tensor; binary outputs carry `parameters.binary_data_size` and no `data`."""

    name: str
    shape: list[int]
    datatype: Datatype
    parameters: Parameters | None = None
    data: list[Any] | None = None


class InferenceResponse(_Document):
    """The answer to an inference request."""

    model_name: str
    model_version: str
    id: str = Field(description="The request's `id`, else the gateway's request id.")
    parameters: Parameters | None = None
    outputs: list[ResponseOutput]


class MetadataTensor(_Document):
    """A tensor a model takes or returns; -1 marks a variable dimension."""

    name: str
    datatype: Datatype
    shape: list[int]
    parameters: Parameters | None = None


class ModelMetadata(_Document):
    """GET /v2/models/{name}[/versions/{version}]."""

    name: str
    versions: list[str]
    platform: str
    inputs: list[MetadataTensor]
    outputs: list[MetadataTensor]
    parameters: Parameters | None = None


class ServerMetadata(_Document):
    """GET /v2."""

    name: str
    version: str
    extensions: list[str]


class ProtocolError(_Document):
    """Every /v2 error: a message, with the HTTP status saying what kind."""

    error: str = Field(examples=["model 'nope' is not served"])
