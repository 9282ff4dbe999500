"""The `gateway` console script, run as a user runs it."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import jwt
import pytest
from sqlalchemy import func, select

from gateway.auth.principal import Principal, Role
from gateway.db import Database
from gateway.db.migrate import head_revision
from gateway.db.models import Action, Conflict, Record, Sync, SyncRun
from gateway.sync.projects import find_project

GATEWAY = str(Path(sys.executable).with_name("gateway"))
SECRET = "cli-secret-" + "c" * 40


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    return env | extra


def run(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [GATEWAY, *args], cwd=cwd, env=clean_env(**env), capture_output=True, text=True, timeout=120
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_help_lists_every_command(tmp_path: Path) -> None:
    result = run("--help", cwd=tmp_path)
    assert result.returncode == 0
    for command in ("serve", "migrate", "demo", "token", "export-schema"):
        assert command in result.stdout


def test_token_prints_a_jwt_the_gateway_accepts(tmp_path: Path) -> None:
    result = run(
        "token", "--user", "alice", "--role", "PATIENT", "--expires", "30m",
        cwd=tmp_path, GATEWAY_JWT_SECRET=SECRET,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    claims = jwt.decode(result.stdout.strip(), SECRET, algorithms=["HS256"])
    assert (claims["sub"], claims["role"]) == ("alice", "patient")
    expires = datetime.fromtimestamp(claims["exp"], UTC) - datetime.now(UTC)
    assert timedelta(minutes=29) < expires <= timedelta(minutes=30)


def test_token_without_a_key_explains_what_to_set(tmp_path: Path) -> None:
    result = run("token", "--user", "alice", "--role", "admin", cwd=tmp_path)
    assert result.returncode == 2
    assert "GATEWAY_JWT_SECRET" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--role", "wizard"], "unknown role 'wizard'"),
        (["--role", "admin", "--expires", "soon"], "not a duration"),
    ],
)
def test_token_refuses_bad_arguments(tmp_path: Path, args: list[str], message: str) -> None:
    result = run("token", "--user", "x", *args, cwd=tmp_path, GATEWAY_JWT_SECRET=SECRET)
    assert result.returncode == 2
    assert message in result.stderr


def test_production_serve_refuses_to_start_without_a_key(tmp_path: Path) -> None:
    result = run(
        "serve", "--port", str(free_port()), cwd=tmp_path, GATEWAY_ENVIRONMENT="production"
    )
    assert result.returncode == 2
    assert "refusing to start in production without a JWT key" in result.stderr


async def test_migrate_and_demo_are_repeatable(database_url: str, tmp_path: Path) -> None:
    env = {"GATEWAY_DATABASE_URL": database_url}
    for _ in range(2):
        migrated = run("migrate", cwd=tmp_path, **env)
        assert migrated.returncode == 0, migrated.stderr
        assert f"revision {head_revision()}" in migrated.stdout
        demo = run("demo", cwd=tmp_path, **env)
        assert demo.returncode == 0, demo.stderr
    db = Database(database_url)
    try:
        project = await find_project(db, Principal("root", Role.ADMIN), "demo")
    finally:
        await db.dispose()
    assert project is not None
    assert {t.spec.name for t in project.tables} == {"steps", "patients", "notes"}
    # the demo's actions went through the log once, however often it was loaded
    db = Database(database_url)
    try:
        async with db.session() as session:
            actions = await session.scalar(select(func.count()).select_from(Action))
            deleted = await session.scalar(select(func.count()).where(Record.deleted.is_(True)))
            conflicts = (await session.scalars(select(Conflict.kind))).all()
            export_runs = (
                await session.scalars(
                    select(SyncRun.status)
                    .join(Sync, Sync.id == SyncRun.sync_id)
                    .where(Sync.name == "nightly-export")
                    .order_by(SyncRun.id)
                )
            ).all()
    finally:
        await db.dispose()
    assert (actions, deleted) == (14, 1)
    assert conflicts == ["CONCURRENT_UPDATE"]
    assert export_runs == ["COMPLETED", "FAILED"]


async def test_serve_with_demo_on_the_default_sqlite_file(tmp_path: Path) -> None:
    """The README's first command: demo data, a printed admin token, GraphiQL at /graphql."""
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        GATEWAY, "serve", "--demo", "--port", str(port),
        cwd=tmp_path, env=clean_env(), stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        output: list[str] = []
        async with asyncio.timeout(60):
            while "Uvicorn running" not in "".join(output):
                line = (await proc.stdout.readline()).decode()
                assert line, f"gateway exited early:\n{''.join(output)}"
                output.append(line)
        text = "".join(output)
        assert f"http://127.0.0.1:{port}/graphql" in text
        token = output[output.index(next(x for x in output if "Admin token" in x)) + 1].strip()
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            page = await http.get("/graphql", headers={"Accept": "text/html"})
            answer = await http.post(
                "/graphql",
                json={"query": "{ projects { code tables { name } } }"},
                headers={"Authorization": f"Bearer {token}"},
            )
        assert page.status_code == 200 and "graphiql" in page.text.lower()
        projects = answer.json()["data"]["projects"]
        assert [p["code"] for p in projects] == ["demo"]
        assert {t["name"] for t in projects[0]["tables"]} == {"steps", "patients", "notes"}
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            steps = await http.post(
                "/graphql",
                json={"query": '{ actions(project: "demo", user: "alice") { actions { table } } }'},
                headers={"Authorization": f"Bearer {token}"},
            )
        tables = [a["table"] for a in steps.json()["data"]["actions"]["actions"]]
        assert tables.count("steps") == 7 and tables.count("notes") == 1
        assert (tmp_path / "gateway.db").exists()
    finally:
        proc.terminate()
        await proc.wait()
