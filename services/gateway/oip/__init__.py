"""The Open Inference Protocol (KServe V2) REST front door: health, metadata and inference over
the same prediction service as /api/v1.

schemas.py (the protocol's JSON documents), tensors.py (tensor data: JSON and Triton's binary
extension), rows.py (tensors <-> the rows of a model's feature schema), app.py (the routes).
"""
