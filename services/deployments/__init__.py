"""Model deployments: which versions serve (production, canary, shadow), stored in the database
with their history, validated against the served versions, propagated to every gateway worker,
and the routing decision for each request."""
