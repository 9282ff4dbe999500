"""SenSeeAct's access rule, case by case."""

from __future__ import annotations

import pytest

from gateway.auth.access import authorize_user_data, may_access_user_data, target_user
from gateway.auth.principal import Principal, Role
from gateway.db import Database
from gateway.errors import Forbidden
from gateway.sync import grants, projects

PATIENT = Principal("alice", Role.PATIENT)
PROFESSIONAL = Principal("dr-carol", Role.PROFESSIONAL)
ADMIN = Principal("root", Role.ADMIN)


@pytest.mark.parametrize(
    ("principal", "user", "granted", "allowed"),
    [
        # patients: their own data only, whatever grants say
        (PATIENT, "alice", False, True),
        (PATIENT, "bob", False, False),
        (PATIENT, "bob", True, False),
        # professionals: own data, and data of users who granted them access
        (PROFESSIONAL, "dr-carol", False, True),
        (PROFESSIONAL, "alice", True, True),
        (PROFESSIONAL, "alice", False, False),
        # admins: everything
        (ADMIN, "alice", False, True),
        (ADMIN, "root", False, True),
    ],
)
def test_may_access_user_data(
    principal: Principal, user: str, granted: bool, allowed: bool
) -> None:
    assert may_access_user_data(principal, user, granted=granted) is allowed


def test_omitted_or_empty_user_means_the_caller() -> None:
    assert target_user(PATIENT, None) == "alice"
    assert target_user(PATIENT, "") == "alice"
    assert target_user(PATIENT, "bob") == "bob"


async def test_authorize_user_data_follows_grants_in_the_database(db: Database) -> None:
    await projects.create_project(db, ADMIN, "study", "Study")
    await projects.create_project(db, ADMIN, "other", "Other")
    await grants.grant_access(db, PATIENT, "study", "dr-carol")
    async with db.session() as session:
        study = await projects.require_project(session, "study")
        other = await projects.require_project(session, "other")
        await authorize_user_data(session, PROFESSIONAL, study.id, "alice")
        # a grant holds in its own project only
        with pytest.raises(Forbidden):
            await authorize_user_data(session, PROFESSIONAL, other.id, "alice")
        with pytest.raises(Forbidden):
            await authorize_user_data(session, PATIENT, study.id, "dr-carol")
        await authorize_user_data(session, ADMIN, other.id, "alice")
    assert await grants.revoke_access(db, PATIENT, "study", "dr-carol")
    async with db.session() as session:
        with pytest.raises(Forbidden):
            await authorize_user_data(session, PROFESSIONAL, study.id, "alice")
