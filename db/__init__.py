"""Persistence: SQLAlchemy 2 models, the async engine, and repositories (the only code that
touches SQL, always parameterized)."""
