"""Runner services: one BentoML service per framework, each batching its `predict` calls."""
