"""`python -m db.migrate [upgrade|downgrade|current|check] [REVISION]`: Alembic without an ini file.

The URL comes from DB_URL (see db/settings.py). In a container this is the one-off migration
command (a Kubernetes Job or init container); the served app only checks the schema is current.
"""

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import AsyncEngine

from db.settings import DatabaseSettings

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(url: str) -> Config:
    """An Alembic config pointing at migrations/ and at `url`."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at (None for an empty database)."""
    async with engine.connect() as connection:
        return await connection.run_sync(
            lambda sync: MigrationContext.configure(sync).get_current_revision()
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m db.migrate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "action", choices=("upgrade", "downgrade", "current", "check"), nargs="?", default="upgrade"
    )
    parser.add_argument("revision", nargs="?", help="target (default: head; base for downgrade)")
    args = parser.parse_args(argv)
    settings = DatabaseSettings()
    if settings.is_sqlite:
        Path(settings.url.split("///", 1)[1]).parent.mkdir(parents=True, exist_ok=True)
    config = alembic_config(settings.url)
    if args.action == "upgrade":
        command.upgrade(config, args.revision or "head")
    elif args.action == "downgrade":
        command.downgrade(config, args.revision or "base")
    else:
        from db.engine import create_engine

        engine = create_engine(settings)
        current = asyncio.run(_current_and_dispose(engine))
        head = head_revision()
        print(f"database: {current or 'empty'}; code: {head}")
        if args.action == "check" and current != head:
            print(
                "the database schema is behind the code: run `python -m db.migrate upgrade`",
                file=sys.stderr,
            )
            return 1
    return 0


async def _current_and_dispose(engine: AsyncEngine) -> str | None:
    try:
        return await current_revision(engine)
    finally:
        await engine.dispose()


if __name__ == "__main__":
    sys.exit(main())
