"""The model artifact contract: what an export writes and what a runner verifies before serving.

`training_export` writes artifacts through this package and the runners read them through it,
so the golden outputs recorded at export are computed by the very code that serves them.
"""
