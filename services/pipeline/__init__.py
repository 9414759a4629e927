"""The inference pipeline: validate client rows against a model's schema, shape its outputs."""
