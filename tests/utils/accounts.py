"""Real accounts for tests: a user in the database and a token issued for it, as the token
route would issue it (bound to the account's id and credential epoch)."""

import os
import subprocess
import sys
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from db.engine import create_engine, session_factory
from db.settings import DatabaseSettings
from services.auth.accounts import create_user
from services.auth.settings import AuthSettings
from services.gateway.wiring import signer_from

PASSWORD = "correct horse battery staple"
REPO_ROOT = Path(__file__).resolve().parents[2]


def create_admin_cli(
    username: str, password: str, env: Mapping[str, str]
) -> "subprocess.CompletedProcess[str]":
    """`python -m services.cli create-admin USERNAME` as an operator runs it (ADMIN_PASSWORD in
    the environment, plus `env`: DB_URL at least); the finished process, whatever it returned."""
    return subprocess.run(
        [sys.executable, "-m", "services.cli", "create-admin", username],
        cwd=REPO_ROOT,
        env={**os.environ, **env, "ADMIN_PASSWORD": password},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@dataclass(frozen=True)
class Account:
    """A created user and a bearer token for it."""

    id: uuid.UUID
    username: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def new_account(
    db_url: str, auth: AuthSettings, username: str, scopes: list[str], *, password: str = PASSWORD
) -> Account:
    """Create `username` with `scopes` and issue it a token with every one of them."""
    engine = create_engine(DatabaseSettings(url=db_url))
    try:
        user = await create_user(
            session_factory(engine), username=username, password=password, scopes=scopes
        )
    finally:
        await engine.dispose()
    token, _ = signer_from(auth, production=False).issue(
        subject=user.username,
        scopes=list(user.scopes),
        user_id=user.id,
        epoch=user.credential_epoch,
    )
    return Account(id=user.id, username=user.username, token=token)
