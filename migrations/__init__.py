"""Alembic environment and versions; run them with `python -m db.migrate`."""
