"""The entry service: the /api/v1 FastAPI app, its middleware, and the runner clients."""
