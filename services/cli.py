"""`python -m services.cli`: administration from the command line, against the database.

    create-admin USERNAME        create the first admin (no defaults exist); the password is read
                                 from ADMIN_PASSWORD or prompted for twice; a second bootstrap,
                                 once any admin exists, fails with exit code 3
    deployment show NAME         a model's deployment, its loaded versions and recent history
    deployment set NAME --production V [--canary V2 --weight 0.1 [--sticky principal]]
                                 [--shadow V3 ...]
    deployment rollback NAME [--to-revision N]

The deployment commands validate exactly as the API does (the same code), against the versions
the service loads: run them with the service's SERVING_MODELS, BENTOML_HOME and DB_URL. Gateway
workers pick a change up within about a second. Exit codes: 0 done, 2 invalid input, 3 conflict
(a version not loaded, incompatible, or a concurrent change), 4 unknown model or revision.
"""

import argparse
import asyncio
import getpass
import json
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from pydantic import ValidationError

from db.engine import create_engine, session_factory
from db.settings import DatabaseSettings
from services.auth.accounts import bootstrap_admin
from services.catalog import ModelCatalog
from services.deployments.manager import DeploymentManager
from services.deployments.state import CanarySpec, DeploymentSpec
from services.deployments.views import version_views
from services.errors import AppError, Conflict, NotFound

MIN_PASSWORD = 12
HISTORY_SHOWN = 10


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "create-admin":
        return _create_admin(args.username)
    try:
        spec = _spec(args) if args.action == "set" else None
    except ValidationError as exc:
        messages = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        print(f"error: {messages}", file=sys.stderr)
        return 2
    try:
        document = asyncio.run(_deployment(args, spec))
    except AppError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 3 if isinstance(exc, Conflict) else 4 if isinstance(exc, NotFound) else 1
    print(json.dumps(document, indent=2, default=str))
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m services.cli",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create-admin", help="create the first admin user")
    create.add_argument("username")
    deployment = commands.add_parser("deployment", help="show, set or roll back a deployment")
    actions = deployment.add_subparsers(dest="action", required=True)
    show = actions.add_parser("show", help="the deployment, loaded versions and recent history")
    show.add_argument("name")
    change = actions.add_parser("set", help="set production, canary and shadow versions")
    change.add_argument("name")
    change.add_argument("--production", required=True, help="the version answering requests")
    change.add_argument("--canary", help="a version taking --weight of unpinned requests")
    change.add_argument("--weight", type=float, default=0.0, help="canary share, 0 to 1")
    change.add_argument("--sticky", choices=("request", "principal"), default="request")
    change.add_argument("--shadow", action="append", default=[], help="a shadow version")
    rollback = actions.add_parser("rollback", help="restore an earlier revision")
    rollback.add_argument("name")
    rollback.add_argument("--to-revision", type=int, help="default: the previous revision")
    for command in (change, rollback):
        command.add_argument("--actor", default=f"cli:{_user()}", help="recorded as who")
    return parser


def _spec(args: argparse.Namespace) -> DeploymentSpec:
    canary = (
        CanarySpec(version=args.canary, weight=args.weight, sticky=args.sticky)
        if args.canary
        else None
    )
    return DeploymentSpec(production=args.production, canary=canary, shadow=tuple(args.shadow))


async def _deployment(args: argparse.Namespace, spec: DeploymentSpec | None) -> dict[str, Any]:
    async def run(manager: DeploymentManager) -> dict[str, Any]:
        if args.action == "set":
            assert spec is not None
            state, warnings = await manager.change(args.name, spec, actor=args.actor)
            return {**state.model_dump(mode="json"), "warnings": warnings}
        if args.action == "rollback":
            state, warnings = await manager.rollback(
                args.name, actor=args.actor, to_revision=args.to_revision
            )
            return {**state.model_dump(mode="json"), "warnings": warnings}
        return await _show(manager, args.name)

    return await _with_manager(run)


async def _show(manager: DeploymentManager, name: str) -> dict[str, Any]:
    state = await manager.current(name)
    views = version_views(manager.catalog, state, await manager.past_production(name))
    _, history = await manager.history(name, offset=0, limit=HISTORY_SHOWN)
    return {
        "deployment": state.model_dump(mode="json"),
        "versions": [view.model_dump(mode="json") for view in views],
        "history": [record.model_dump(mode="json") for record in history],
    }


async def _with_manager(
    run: Callable[[DeploymentManager], Awaitable[dict[str, Any]]],
) -> dict[str, Any]:
    engine = create_engine(DatabaseSettings())
    try:
        return await run(DeploymentManager(session_factory(engine), ModelCatalog.from_store()))
    finally:
        await engine.dispose()


def _create_admin(username: str) -> int:
    password = os.environ.get("ADMIN_PASSWORD") or _prompt()
    if len(password) < MIN_PASSWORD:
        print(f"error: the password needs at least {MIN_PASSWORD} characters", file=sys.stderr)
        return 2
    try:
        user = asyncio.run(_create(username, password))
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


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name (a container's arbitrary uid)
        return str(os.getuid())


def _prompt() -> str:
    first = getpass.getpass("password for the admin: ")
    if first != getpass.getpass("again: "):
        print("error: the passwords differ", file=sys.stderr)
        sys.exit(2)
    return first


if __name__ == "__main__":
    sys.exit(main())
