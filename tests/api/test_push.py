"""Push wake-ups against a real local HTTP receiver (both databases)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select
from starlette.responses import JSONResponse, Response

from gateway.auth.principal import Role
from gateway.db import Database
from gateway.db.models import PushRegistration
from tests.support import GatewayServer, GraphQLHttp, error_code, settings_for
from tests.support.live import make_project, write_notes
from tests.support.push_receiver import PushReceiver, Received, push_receiver

REGISTER = """mutation($token: String!, $device: String!, $include: [String!], $exclude: [String!],
                     $user: String) {
  registerPush(project: "live", fcmToken: $token, deviceId: $device, includeTables: $include,
               excludeTables: $exclude, user: $user) {
    project user deviceId fcmToken includeTables excludeTables
  }
}"""
WINDOW = 0.4


@pytest.fixture
def receiver() -> Iterator[PushReceiver]:
    with push_receiver() as running:
        yield running


def webhook_server(migrated_url: str, receiver: PushReceiver) -> GatewayServer:
    settings = settings_for(
        migrated_url,
        push_mode="webhook",
        push_endpoint=f"{receiver.url}/push",
        push_coalesce_seconds=WINDOW,
        push_retry_base_seconds=0.05,
    )
    return GatewayServer.running(settings)  # type: ignore[return-value]


async def alice_with_devices(server: GatewayServer) -> GraphQLHttp:
    await make_project(server)
    alice = server.client(server.token("alice", Role.PATIENT))
    await alice.data(REGISTER, token="tok-phone", device="phone", exclude=["steps"])
    await alice.data(REGISTER, token="tok-laptop", device="laptop")
    bob = server.client(server.token("bob", Role.PATIENT))
    await bob.data(REGISTER, token="tok-bob", device="bob-phone")
    return alice


async def push_outcomes(server: GatewayServer) -> dict[str, float]:
    """What /metrics counts of pushes, by outcome."""
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        text = (await http.get("/metrics")).text
    return {
        s.labels["outcome"]: s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "gateway_push_deliveries_total"
    }


def pushes(receiver: PushReceiver) -> list[tuple[str, str]]:
    return sorted((m["to"], m["data"]["table"]) for m in receiver.messages())


async def test_the_seeds_message_coalesced_per_device_and_table(
    migrated_url: str, receiver: PushReceiver
) -> None:
    with webhook_server(migrated_url, receiver) as server:
        alice = await alice_with_devices(server)
        for n in range(1, 4):  # three batches within one window
            await write_notes(alice, [n], device="tablet")
        await write_notes(alice, [10], table="steps", device="tablet")
        await receiver.wait_for(lambda r: len(r.messages()) >= 3)
        await asyncio.sleep(WINDOW * 2)  # nothing more may come
    assert pushes(receiver) == [
        ("tok-laptop", "notes"),
        ("tok-laptop", "steps"),
        ("tok-phone", "notes"),  # the phone excluded steps
    ]  # and bob's device, another user, got nothing
    assert receiver.messages()[0] == {
        "to": receiver.messages()[0]["to"],
        "priority": "high",
        "data": {
            "project": "live",
            "user": "alice",
            "table": receiver.messages()[0]["data"]["table"],
        },
    }


async def test_the_writing_device_is_not_woken(migrated_url: str, receiver: PushReceiver) -> None:
    with webhook_server(migrated_url, receiver) as server:
        alice = await alice_with_devices(server)
        await write_notes(alice, [1], device="laptop")
        await receiver.wait_for(lambda r: len(r.messages()) >= 1)
        await asyncio.sleep(WINDOW * 2)
    assert pushes(receiver) == [("tok-phone", "notes")]


async def test_failed_sends_are_retried_with_backoff(
    migrated_url: str, receiver: PushReceiver
) -> None:
    def flaky(_: Received, attempt: int) -> Response:
        return Response(status_code=503) if attempt <= 2 else JSONResponse({})

    receiver.answer = flaky
    with webhook_server(migrated_url, receiver) as server:
        alice = await alice_with_devices(server)
        await alice.data('mutation { unregisterPush(project: "live", deviceId: "laptop") }')
        await write_notes(alice, [1], device="tablet")
        await receiver.wait_for(lambda r: len(r.messages()) >= 3)
        await asyncio.sleep(0.5)
        outcomes = await push_outcomes(server)
    assert pushes(receiver) == [("tok-phone", "notes")] * 3  # 503, 503, then delivered
    assert outcomes == {"sent": 1}  # the retries are not outcomes


async def test_a_token_the_receiver_does_not_know_is_forgotten(
    migrated_url: str, receiver: PushReceiver, db: Database
) -> None:
    receiver.answer = lambda got, _: (
        Response(status_code=410) if got.body["to"] == "tok-phone" else JSONResponse({})
    )
    with webhook_server(migrated_url, receiver) as server:
        alice = await alice_with_devices(server)
        await write_notes(alice, [1], device="tablet")
        await receiver.wait_for(lambda r: len(r.messages()) >= 2)
        await asyncio.sleep(0.3)
        outcomes = await push_outcomes(server)
    assert outcomes == {"sent": 1, "unregistered": 1}
    async with db.session() as session:
        devices = sorted((await session.scalars(select(PushRegistration.device_id))).all())
    assert devices == ["bob-phone", "laptop"]


@pytest.fixture
def service_account(tmp_path: Path, receiver: PushReceiver) -> tuple[Path, Any]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    path = tmp_path / "service-account.json"
    path.write_text(
        json.dumps(
            {
                "type": "service_account",
                "client_email": "gateway@example-project.iam.gserviceaccount.com",
                "private_key": pem,
                "token_uri": f"{receiver.url}/token",
            }
        )
    )
    return path, key.public_key()


async def test_fcm_http_v1_with_a_service_account(
    migrated_url: str, receiver: PushReceiver, service_account: tuple[Path, Any], db: Database
) -> None:
    credentials, public_key = service_account

    def fcm(got: Received, _: int) -> Response:
        if got.path == "/token":
            return JSONResponse({"access_token": "ya29.test", "expires_in": 3600})
        if got.body["message"]["token"] == "tok-laptop":
            error = {"code": 404, "status": "NOT_FOUND", "details": [
                {"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
                 "errorCode": "UNREGISTERED"}]}  # fmt: skip
            return JSONResponse({"error": error}, status_code=404)
        return JSONResponse({"name": "projects/example-project/messages/1"})

    receiver.answer = fcm
    settings = settings_for(
        migrated_url,
        push_mode="fcm",
        push_endpoint=receiver.url,
        push_fcm_project_id="example-project",
        push_fcm_credentials_file=str(credentials),
        push_coalesce_seconds=WINDOW,
    )
    with GatewayServer.running(settings) as server:
        alice = await alice_with_devices(server)
        await write_notes(alice, [1], device="tablet")
        fcm_path = "/v1/projects/example-project/messages:send"
        await receiver.wait_for(lambda r: len(r.messages(fcm_path)) >= 2)
        await asyncio.sleep(0.3)
    grant = receiver.messages("/token")[0]
    assert grant["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    claims = jwt.decode(
        grant["assertion"], public_key, algorithms=["RS256"], audience=f"{receiver.url}/token"
    )
    assert claims["scope"] == "https://www.googleapis.com/auth/firebase.messaging"
    assert claims["iss"] == "gateway@example-project.iam.gserviceaccount.com"
    sent = [r for r in receiver.received if r.path == fcm_path]
    assert {r.headers["authorization"] for r in sent} == {"Bearer ya29.test"}
    phone = next(r.body for r in sent if r.body["message"]["token"] == "tok-phone")
    assert phone == {
        "message": {
            "token": "tok-phone",
            "data": {"project": "live", "user": "alice", "table": "notes"},
            "android": {"priority": "HIGH"},
            "apns": {"headers": {"apns-priority": "10"}},
        }
    }
    async with db.session() as session:  # FCM said UNREGISTERED for the laptop
        devices = sorted((await session.scalars(select(PushRegistration.device_id))).all())
    assert devices == ["bob-phone", "phone"]


async def test_register_replaces_unregister_removes_and_bad_input_is_refused(
    server: GatewayServer, db: Database
) -> None:
    await make_project(server)
    alice = server.client(server.token("alice", Role.PATIENT))
    await alice.data(REGISTER, token="old", device="phone")
    replaced = await alice.data(REGISTER, token="new", device="phone", include=["notes"])
    assert replaced["registerPush"] == {
        "project": "live", "user": "alice", "deviceId": "phone", "fcmToken": "new",
        "includeTables": ["notes"], "excludeTables": None,
    }  # fmt: skip
    async with db.session() as session:
        assert (await session.scalars(select(PushRegistration.token))).all() == ["new"]
    unknown = await alice.error(REGISTER, token="t", device="d", include=["nope"])
    assert error_code(unknown) == "BAD_USER_INPUT"
    assert error_code(await alice.error(REGISTER, token="", device="d")) == "BAD_USER_INPUT"
    bob = server.client(server.token("bob", Role.PATIENT))
    other = await bob.error(REGISTER, token="t", device="d", user="alice")
    assert error_code(other) == "FORBIDDEN"
    unregister = 'mutation { unregisterPush(project: "live", deviceId: "phone") }'
    assert (await alice.data(unregister))["unregisterPush"] is True
    assert (await alice.data(unregister))["unregisterPush"] is False
    async with db.session() as session:
        assert (await session.scalars(select(PushRegistration))).all() == []
