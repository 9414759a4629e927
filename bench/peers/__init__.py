"""Peer servers (LitServe, MLServer) that serve the project's own artifact file for comparison.

The servers run from the separate benchmark environment (`make bench-env`, `.venv-bench/`);
`digest.py` is standard library only so both environments can import it.
"""
