"""HTTP primitives every middleware and front door shares: the request context, the response
envelope and ASGI senders. Depends on nothing else in services/ but errors."""
