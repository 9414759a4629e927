"""Rate limits per principal and route class: GCRA in Redis (shared by every worker and
replica), the same algorithm in process memory when Redis is absent or down by policy."""
