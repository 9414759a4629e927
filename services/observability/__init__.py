"""Structured JSON logs (`logs`) and the Prometheus metrics this service adds (`metrics`)."""
