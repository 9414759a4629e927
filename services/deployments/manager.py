"""Read and change deployments in the database, with the same validation for the API and the CLI.

The first change of a model records its implicit state first (revision 1, action `initial`:
production = the newest served version), so the history is complete and that change can be
rolled back. A change identical to the current state records nothing. A rollback appends a
revision restoring an earlier one's state (by default the one before the current), so the
history only grows.
"""

from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import DeploymentRevision
from db.repositories import deployments as repository
from services.catalog import ModelCatalog
from services.deployments.state import (
    Action,
    CanarySpec,
    DeploymentSpec,
    DeploymentState,
    RevisionRecord,
    Sticky,
)
from services.deployments.validation import check_deployment
from services.errors import Conflict, NotFound
from services.http.envelope import as_utc

Sessions = async_sessionmaker[AsyncSession]


class DeploymentManager:
    """Deployments of the models `catalog` serves, stored through `sessions`."""

    def __init__(self, sessions: Sessions, catalog: ModelCatalog) -> None:
        self.sessions = sessions
        self.catalog = catalog

    async def current(self, name: str) -> DeploymentState:
        """The model's deployment, or its default; ModelNotFound for a model not served."""
        newest = self.catalog.newest(name)
        async with self.sessions() as session:
            row = await repository.current_revision(session=session, model_name=name)
        if row is None:
            return DeploymentState(
                model=name, revision=None, production=newest.ref.version, source="default"
            )
        return state_of(row)

    async def all_current(self) -> dict[str, DeploymentState]:
        """Every model's stored deployment (models without one are absent)."""
        async with self.sessions() as session:
            rows = await repository.current_revisions(session=session)
        return {row.model_name: state_of(row) for row in rows}

    async def change(
        self, name: str, spec: DeploymentSpec, *, actor: str | None
    ) -> tuple[DeploymentState, list[str]]:
        """Validate and record `spec` as the model's new deployment; the state and warnings."""
        warnings = check_deployment(self.catalog, name, spec)
        return await self._append(name, spec, actor=actor, action="set"), warnings

    async def rollback(
        self, name: str, *, actor: str | None, to_revision: int | None = None
    ) -> tuple[DeploymentState, list[str]]:
        """Restore an earlier revision's state (by default the one before the current)."""
        self.catalog.newest(name)
        async with self.sessions() as session:
            current = await repository.current_revision(session=session, model_name=name)
            if current is None:
                raise Conflict(f"{name} has no deployment history to roll back")
            target_number = current.revision - 1 if to_revision is None else to_revision
            if not 1 <= target_number < current.revision:
                raise Conflict(
                    f"{name} is at revision {current.revision}: there is no revision "
                    f"{target_number} to roll back to",
                    details={"current_revision": current.revision},
                )
            target = await repository.get_revision(
                session=session, model_name=name, revision=target_number
            )
        if target is None:
            raise NotFound(f"{name} has no deployment revision {target_number}")
        spec = state_of(target).spec
        warnings = check_deployment(self.catalog, name, spec)
        state = await self._append(
            name,
            spec,
            actor=actor,
            action="rollback",
            restored=target_number,
            based_on=current.revision,
        )
        return state, warnings

    async def history(
        self, name: str, *, offset: int, limit: int
    ) -> tuple[int, list[RevisionRecord]]:
        """One page of the model's revisions, newest first, and how many there are."""
        self.catalog.newest(name)
        async with self.sessions() as session:
            total = await repository.count_revisions(session=session, model_name=name)
            rows = await repository.list_revisions(
                session=session, model_name=name, offset=offset, limit=limit
            )
        return total, [record_of(row) for row in rows]

    async def past_production(self, name: str) -> set[str]:
        """Every version that was production in some revision of the model."""
        async with self.sessions() as session:
            return await repository.production_versions(session=session, model_name=name)

    async def _append(
        self,
        name: str,
        spec: DeploymentSpec,
        *,
        actor: str | None,
        action: Action,
        restored: int | None = None,
        based_on: int | None = None,
    ) -> DeploymentState:
        now = datetime.now(UTC)
        try:
            async with self.sessions() as session, session.begin():
                current = await repository.current_revision(session=session, model_name=name)
                if based_on is not None and (current is None or current.revision != based_on):
                    raise _changed_meanwhile(name)
                if current is not None and action == "set" and state_of(current).spec == spec:
                    return state_of(current)  # nothing changes: PUT is idempotent
                number = 0 if current is None else current.revision
                if current is None:
                    initial = DeploymentSpec(production=self.catalog.newest(name).ref.version)
                    number = await self._write(session, name, initial, 1, None, now, "initial")
                number = await self._write(
                    session, name, spec, number + 1, number, now, action, actor, restored
                )
        except IntegrityError:
            raise _changed_meanwhile(name) from None
        return DeploymentState(
            model=name,
            revision=number,
            production=spec.production,
            canary=spec.canary,
            shadow=spec.shadow,
            source="deployment",
            updated_at=now,
            updated_by=actor,
        )

    async def _write(
        self,
        session: AsyncSession,
        name: str,
        spec: DeploymentSpec,
        number: int,
        based_on: int | None,
        now: datetime,
        action: Action,
        actor: str | None = None,
        restored: int | None = None,
    ) -> int:
        row = revision_row(name, spec, number, action=action, actor=actor, now=now)
        row["restored_revision"] = restored
        if not await repository.append_revision(session=session, row=row, based_on=based_on):
            raise _changed_meanwhile(name)
        return number


def revision_row(
    name: str,
    spec: DeploymentSpec,
    number: int,
    *,
    action: Action,
    actor: str | None,
    now: datetime,
) -> dict[str, Any]:
    """The history row of one revision."""
    return {
        "model_name": name,
        "revision": number,
        "production": spec.production,
        "canary_version": spec.canary.version if spec.canary else None,
        "canary_weight": spec.canary.weight if spec.canary else 0.0,
        "canary_sticky": spec.canary.sticky if spec.canary else "request",
        "shadow": list(spec.shadow),
        "action": action,
        "restored_revision": None,
        "actor": actor,
        "created_at": now,
    }


def _canary(row: DeploymentRevision) -> CanarySpec | None:
    if row.canary_version is None:
        return None
    return CanarySpec(
        version=row.canary_version,
        weight=row.canary_weight,
        sticky=cast(Sticky, row.canary_sticky),
    )


def state_of(row: DeploymentRevision) -> DeploymentState:
    """A stored revision as the model's deployment state."""
    return DeploymentState(
        model=row.model_name,
        revision=row.revision,
        production=row.production,
        canary=_canary(row),
        shadow=tuple(row.shadow),
        source="deployment",
        updated_at=as_utc(row.created_at),
        updated_by=row.actor,
    )


def record_of(row: DeploymentRevision) -> RevisionRecord:
    """A stored revision as a history entry."""
    return RevisionRecord(
        revision=row.revision,
        action=cast(Action, row.action),
        restored_revision=row.restored_revision,
        production=row.production,
        canary=_canary(row),
        shadow=tuple(row.shadow),
        actor=row.actor,
        created_at=as_utc(row.created_at),
    )


def _changed_meanwhile(name: str) -> Conflict:
    return Conflict(
        f"the deployment of {name} changed while this change was made; read it again and retry"
    )
