"""Projects and tables through GraphQL: creation, listing, and every refusal writing nothing."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from gateway.auth.principal import Role
from gateway.db import Database
from gateway.db.models import Project, ProjectTable
from tests.support import GatewayServer, GraphQLHttp, error_code

CREATE = """mutation($code: String!, $name: String!) {
  createProject(code: $code, name: $name) { code name createdAt tables { name } }
}"""
DEFINE = """mutation(
  $project: String!, $name: String!, $fields: [FieldInput!]!, $keyField: String
) {
  defineTable(project: $project, name: $name, fields: $fields, keyField: $keyField) {
    name keyField hasUtcTime hasLocalTime fields { name type required }
  }
}"""
STEPS_FIELDS = [
    {"name": "utcTime", "type": "INT", "required": True},
    {"name": "localTime", "type": "DATETIME"},
    {"name": "value", "type": "FLOAT", "required": True},
]


@pytest.fixture
def admin(server: GatewayServer) -> GraphQLHttp:
    return server.client(server.token("root", Role.ADMIN))


async def counts(db: Database) -> tuple[int, int]:
    async with db.session() as session:
        projects = await session.scalar(select(func.count()).select_from(Project))
        tables = await session.scalar(select(func.count()).select_from(ProjectTable))
    return projects or 0, tables or 0


async def test_create_project_define_tables_and_list_them(admin: GraphQLHttp) -> None:
    created = (await admin.data(CREATE, code="study-1", name="  Step study "))["createProject"]
    assert (created["code"], created["name"], created["tables"]) == ("study-1", "Step study", [])
    assert created["createdAt"].endswith("+00:00")

    steps = await admin.data(DEFINE, project="study-1", name="steps", fields=STEPS_FIELDS)
    assert steps["defineTable"] == {
        "name": "steps",
        "keyField": None,
        "hasUtcTime": True,
        "hasLocalTime": True,
        "fields": [
            {"name": "utcTime", "type": "INT", "required": True},
            {"name": "localTime", "type": "DATETIME", "required": False},
            {"name": "value", "type": "FLOAT", "required": True},
        ],
    }
    cases = await admin.data(
        DEFINE,
        project="study-1",
        name="cases",
        fields=[
            {"name": "caseKey", "type": "STRING", "required": True},
            {"name": "a", "type": "JSON"},
        ],
        keyField="caseKey",
    )
    assert (cases["defineTable"]["keyField"], cases["defineTable"]["hasUtcTime"]) == (
        "caseKey",
        False,
    )
    await admin.data(CREATE, code="another", name="Another")

    listed = await admin.data("{ projects { code tables { name keyField } } }")
    assert listed["projects"] == [
        {"code": "another", "tables": []},
        {
            "code": "study-1",
            "tables": [
                {"name": "cases", "keyField": "caseKey"},
                {"name": "steps", "keyField": None},
            ],
        },
    ]
    one = await admin.data('{ project(code: "study-1") { name tables { name } } }')
    assert one["project"] == {
        "name": "Step study",
        "tables": [{"name": "cases"}, {"name": "steps"}],
    }
    assert (await admin.data('{ project(code: "nope") { name } }'))["project"] is None


async def test_every_role_lists_the_projects_it_may_use(
    server: GatewayServer, admin: GraphQLHttp
) -> None:
    await admin.data(CREATE, code="shared", name="Shared")
    await admin.data(CREATE, code="closed", name="Closed")
    await admin.data('mutation { addProjectMember(project: "shared", user: "alice") { code } }')
    patient = server.client(server.token("alice", Role.PATIENT))
    assert (await patient.data("{ projects { code } }"))["projects"] == [{"code": "shared"}]
    listed = (await admin.data("{ projects { code members } }"))["projects"]
    assert listed == [{"code": "closed", "members": []}, {"code": "shared", "members": ["alice"]}]
    assert error_code(await server.client().error("{ projects { code } }")) == "UNAUTHENTICATED"


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"code": "Has Space", "name": "x"}, "invalid project code"),
        ({"code": "", "name": "x"}, "invalid project code"),
        ({"code": "UPPER", "name": "x"}, "invalid project code"),
        ({"code": "x" * 65, "name": "x"}, "invalid project code"),
        ({"code": "ok", "name": "   "}, "project name"),
        ({"code": "ok", "name": "n" * 201}, "project name"),
    ],
)
async def test_bad_project_input_is_refused(
    admin: GraphQLHttp, db: Database, variables: dict[str, Any], message: str
) -> None:
    error = await admin.error(CREATE, **variables)
    assert error_code(error) == "BAD_USER_INPUT"
    assert message in error["message"]
    assert await counts(db) == (0, 0)


async def test_duplicate_project_code_is_refused(admin: GraphQLHttp, db: Database) -> None:
    await admin.data(CREATE, code="dup", name="First")
    error = await admin.error(CREATE, code="dup", name="Second")
    assert (error_code(error), "already exists" in error["message"]) == ("BAD_USER_INPUT", True)
    assert await counts(db) == (1, 0)
    assert (await admin.data('{ project(code: "dup") { name } }'))["project"]["name"] == "First"


@pytest.mark.parametrize(
    ("name", "fields", "key_field", "message"),
    [
        ("bad name", STEPS_FIELDS, None, "invalid table name"),
        ("1steps", STEPS_FIELDS, None, "invalid table name"),
        ("steps", [], None, "at least one field"),
        ("steps", [{"name": "bad-field", "type": "INT"}], None, "invalid field name"),
        ("steps", [{"name": "a", "type": "INT"}, {"name": "a", "type": "STRING"}], None, "twice"),
        ("steps", [{"name": "id", "type": "STRING"}], None, "reserved"),
        ("steps", [{"name": "user", "type": "STRING"}], None, "reserved"),
        ("steps", [{"name": "utcTime", "type": "STRING"}], None, "must be of type INT"),
        ("steps", [{"name": "localTime", "type": "FLOAT"}], None, "DATETIME or STRING"),
        ("steps", STEPS_FIELDS, "missing", "keyField 'missing'"),
        ("steps", [{"name": "a", "type": "BLOB"}], None, "FieldType"),
        ("steps", [{"name": "a"}], None, "type"),
    ],
)
async def test_bad_table_definitions_are_refused(
    admin: GraphQLHttp,
    db: Database,
    name: str,
    fields: list[dict[str, Any]],
    key_field: str | None,
    message: str,
) -> None:
    await admin.data(CREATE, code="p", name="P")
    error = await admin.error(DEFINE, project="p", name=name, fields=fields, keyField=key_field)
    assert error_code(error) == "BAD_USER_INPUT", error
    assert message in error["message"]
    assert await counts(db) == (1, 0)


async def test_duplicate_table_is_refused(admin: GraphQLHttp, db: Database) -> None:
    await admin.data(CREATE, code="p", name="P")
    await admin.data(DEFINE, project="p", name="steps", fields=STEPS_FIELDS)
    error = await admin.error(
        DEFINE, project="p", name="steps", fields=[{"name": "x", "type": "INT"}]
    )
    assert (error_code(error), "already exists" in error["message"]) == ("BAD_USER_INPUT", True)
    assert await counts(db) == (1, 1)


async def test_table_of_unknown_project_is_not_found(admin: GraphQLHttp, db: Database) -> None:
    error = await admin.error(DEFINE, project="ghost", name="steps", fields=STEPS_FIELDS)
    assert error_code(error) == "NOT_FOUND"
    assert await counts(db) == (0, 0)


async def test_only_admins_define_tables(
    server: GatewayServer, admin: GraphQLHttp, db: Database
) -> None:
    await admin.data(CREATE, code="p", name="P")
    professional = server.client(server.token("dr-carol", Role.PROFESSIONAL))
    error = await professional.error(DEFINE, project="p", name="steps", fields=STEPS_FIELDS)
    assert error_code(error) == "FORBIDDEN"
    assert await counts(db) == (1, 0)
