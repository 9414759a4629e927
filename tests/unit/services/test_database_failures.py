"""Which exceptions mean "the database is unavailable" (503, retryable, opens the breaker) and
which mean a statement was wrong (not this module's business)."""

import asyncio
import socket

import asyncpg
import pytest
from sqlalchemy import exc as sa_exc

from services.persistence import is_database_failure


def _wrapped(orig: BaseException) -> sa_exc.DBAPIError:
    return sa_exc.DBAPIError("SELECT 1", None, orig)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.CannotConnectNowError("the database system is starting up"),
        asyncpg.exceptions.AdminShutdownError("terminating connection due to administrator"),
        asyncpg.exceptions.TooManyConnectionsError("too many clients"),
        asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed"),
        asyncpg.InterfaceError("connection is closed"),
        sa_exc.OperationalError("SELECT 1", None, Exception("database is locked")),  # type: ignore[arg-type]
        sa_exc.TimeoutError("QueuePool limit reached"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_connection_level_errors_are_database_failures(error: Exception) -> None:
    assert is_database_failure(error)


def test_a_driver_error_behind_sqlalchemys_wrapper_is_found() -> None:
    wrapped = _wrapped(Exception("translated"))
    wrapped.__cause__ = asyncpg.exceptions.AdminShutdownError("shutting down")

    assert is_database_failure(wrapped)


def test_an_invalidated_connection_is_a_database_failure() -> None:
    error = _wrapped(Exception("server closed the connection"))
    error.connection_invalidated = True

    assert is_database_failure(error)


def test_bad_data_is_not_a_database_failure() -> None:
    assert not is_database_failure(
        _wrapped(asyncpg.exceptions.CharacterNotInRepertoireError("invalid byte sequence"))
    )
    assert not is_database_failure(sa_exc.IntegrityError("INSERT", None, Exception("dup")))  # type: ignore[arg-type]


def test_socket_errors_count_only_when_a_driver_raised_them() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ConnectionRefusedError) as refused:
        asyncio.run(asyncpg.connect(host="127.0.0.1", port=port, user="x", timeout=2))

    assert is_database_failure(refused.value)
    assert not is_database_failure(ConnectionRefusedError("some other service"))
