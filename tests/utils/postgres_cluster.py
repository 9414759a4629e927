"""A throwaway PostgreSQL cluster on its own port, which a test may stop, restart or freeze.

`initdb` into a fresh directory and the postmaster started directly (no pg_ctl daemon), so the
test holds its PID and stops exactly that process; the shared server on 5432 is never touched.
PostgreSQL refuses to run as root: as root, the cluster runs as the `postgres` user.

    with throwaway_postgres() as cluster:
        cluster.create_database("faults")
        url = cluster.url("faults")
        cluster.stop(); cluster.start()
"""

import asyncio
import contextlib
import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg

from tests.utils.server import free_port

STARTUP_TIMEOUT_S = 60.0


def _bin(name: str) -> str:
    """A PostgreSQL server binary from the newest installed version."""
    candidates = sorted(
        glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
        key=lambda path: int(path.split("/")[4]),
    )
    if not candidates:
        raise RuntimeError(f"PostgreSQL's {name} is not installed under /usr/lib/postgresql")
    return candidates[-1]


class ThrowawayPostgres:
    """One cluster: its directory, port and (while running) postmaster process."""

    def __init__(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="faults-pg-"))
        self.data = self.directory / "data"
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self._as_postgres: dict[str, Any] = (
            {"user": "postgres", "group": "postgres", "extra_groups": []}
            if os.geteuid() == 0
            else {}
        )
        if self._as_postgres:
            shutil.chown(self.directory, "postgres", "postgres")

    def url(self, database: str) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    def initdb(self) -> None:
        subprocess.run(
            [_bin("initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync"],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            **self._as_postgres,
        )

    def start(self) -> None:
        """Start the postmaster and wait until it accepts connections."""
        log = (self.directory / "postgres.log").open("ab")
        self.process = subprocess.Popen(
            [
                _bin("postgres"),
                "-D", str(self.data),
                "-p", str(self.port),
                "-k", str(self.directory),
                "-c", "listen_addresses=127.0.0.1",
                "-c", "fsync=off",
                "-c", "full_page_writes=off",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            **self._as_postgres,
        )  # fmt: skip
        log.close()
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not self.accepting():
            if self.process.poll() is not None:
                raise RuntimeError(f"postgres exited with {self.process.returncode}")
            if time.monotonic() > deadline:
                raise RuntimeError("postgres did not accept connections in time")
            time.sleep(0.05)

    def accepting(self) -> bool:
        """Whether a client can connect and run a query right now."""
        return asyncio.run(self._query("SELECT 1")) is not None

    def stop(self, signum: signal.Signals = signal.SIGINT) -> None:
        """Stop the postmaster this object started (SIGINT: fast shutdown) and wait for it."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signum)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=30)
        self.process = None

    def create_database(self, name: str) -> None:
        if asyncio.run(self._query(f'CREATE DATABASE "{name}"')) is None:
            raise RuntimeError(f"could not create database {name}")

    async def _query(self, statement: str) -> Any:
        try:
            connection = await asyncpg.connect(
                host="127.0.0.1", port=self.port, user="postgres", database="postgres", timeout=2
            )
        except (TimeoutError, OSError, asyncpg.PostgresError):
            return None
        try:
            return await connection.execute(statement)
        except asyncpg.PostgresError:
            return None
        finally:
            await connection.close()

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


@contextlib.contextmanager
def throwaway_postgres() -> Iterator[ThrowawayPostgres]:
    """A started cluster, stopped and deleted afterwards whatever happened."""
    cluster = ThrowawayPostgres()
    try:
        cluster.initdb()
        cluster.start()
        yield cluster
    finally:
        cluster.remove()
