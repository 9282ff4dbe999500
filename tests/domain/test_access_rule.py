"""SenSeeAct's access rule, case by case."""

from __future__ import annotations

import pytest

from gateway.auth.access import (
    authorize_user_data,
    may_access_user_data,
    shown_members,
    target_user,
    visible_users,
)
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
    await projects.create_project(db, ADMIN, "other", "Other", open=True)
    for member in ("alice", "dr-carol"):
        await projects.add_member(db, ADMIN, "study", member)
    await grants.grant_access(db, PATIENT, "study", "dr-carol")
    async with db.session() as session:
        study = await projects.require_project(session, "study")
        other = await projects.require_project(session, "other")
        await authorize_user_data(session, PROFESSIONAL, study, "alice")
        # a grant holds in its own project only
        with pytest.raises(Forbidden):
            await authorize_user_data(session, PROFESSIONAL, other, "alice")
        with pytest.raises(Forbidden):
            await authorize_user_data(session, PATIENT, study, "dr-carol")
        await authorize_user_data(session, ADMIN, other, "alice")
    assert await grants.revoke_access(db, PATIENT, "study", "dr-carol")
    async with db.session() as session:
        with pytest.raises(Forbidden):
            await authorize_user_data(session, PROFESSIONAL, study, "alice")


async def test_membership_decides_who_reaches_a_closed_project(db: Database) -> None:
    await projects.create_project(db, ADMIN, "study", "Study")
    await projects.add_member(db, ADMIN, "study", "dr-carol")
    await grants.grant_access(db, ADMIN, "study", "dr-carol", user="alice")
    async with db.session() as session:
        study = await projects.require_project(session, "study")
        # alice is not a member: not even her own data, and her grant does not count yet
        with pytest.raises(Forbidden):
            await authorize_user_data(session, PATIENT, study, "alice")
        with pytest.raises(Forbidden):
            await authorize_user_data(session, PROFESSIONAL, study, "alice")
        assert await visible_users(session, PROFESSIONAL, study) == {"dr-carol"}
        await authorize_user_data(session, ADMIN, study, "alice")  # admins reach everything
    await projects.add_member(db, ADMIN, "study", "alice")
    async with db.session() as session:
        await authorize_user_data(session, PATIENT, study, "alice")
        await authorize_user_data(session, PROFESSIONAL, study, "alice")
        assert await visible_users(session, PROFESSIONAL, study) == {"dr-carol", "alice"}
    assert await projects.remove_member(db, ADMIN, "study", "dr-carol")
    async with db.session() as session:
        with pytest.raises(Forbidden):
            await visible_users(session, PROFESSIONAL, study)
    assert [p.code for p in await projects.list_projects(db, PROFESSIONAL)] == []
    assert [p.code for p in await projects.list_projects(db, PATIENT)] == ["study"]


async def test_an_open_project_admits_every_user_with_the_same_rules(db: Database) -> None:
    await projects.create_project(db, ADMIN, "open", "Open", open=True)
    async with db.session() as session:
        found = await projects.require_project(session, "open")
        await authorize_user_data(session, PATIENT, found, "alice")
        with pytest.raises(Forbidden):  # reaching a project is not reaching its users' data
            await authorize_user_data(session, PATIENT, found, "bob")
    assert [p.code for p in await projects.list_projects(db, PATIENT)] == ["open"]


def test_members_shown_to_each_role() -> None:
    members = ["alice", "bob", "dr-carol"]
    assert shown_members(ADMIN, members, set()) == members
    assert shown_members(PATIENT, members, set()) == ["alice"]
    assert shown_members(PROFESSIONAL, members, {"alice"}) == ["alice", "dr-carol"]
    # a patient's grant list means nothing: patients see only themselves
    assert shown_members(PATIENT, members, {"bob"}) == ["alice"]
