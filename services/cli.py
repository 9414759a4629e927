"""`python -m services.cli create-admin USERNAME`: create the first admin (no defaults exist).

The password is read from the ADMIN_PASSWORD environment variable, or prompted for twice.
A second bootstrap, once any admin exists, fails with exit code 3 (409 Conflict in the API).
"""

import argparse
import asyncio
import getpass
import os
import sys
from collections.abc import Sequence

from db.engine import create_engine, session_factory
from db.settings import DatabaseSettings
from services.auth.accounts import bootstrap_admin
from services.errors import Conflict

MIN_PASSWORD = 12


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m services.cli",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create-admin", help="create the first admin user")
    create.add_argument("username")
    args = parser.parse_args(argv)
    password = os.environ.get("ADMIN_PASSWORD") or _prompt()
    if len(password) < MIN_PASSWORD:
        print(f"error: the password needs at least {MIN_PASSWORD} characters", file=sys.stderr)
        return 2
    try:
        user = asyncio.run(_create(args.username, password))
    except Conflict as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 3
    print(f"created admin {user} (scope: admin); get a token with POST /api/v1/auth/token")
    return 0


async def _create(username: str, password: str) -> str:
    engine = create_engine(DatabaseSettings())
    try:
        user = await bootstrap_admin(session_factory(engine), username=username, password=password)
        return user.username
    finally:
        await engine.dispose()


def _prompt() -> str:
    first = getpass.getpass("password for the admin: ")
    if first != getpass.getpass("again: "):
        print("error: the passwords differ", file=sys.stderr)
        sys.exit(2)
    return first


if __name__ == "__main__":
    sys.exit(main())
