"""Sending one push message: Firebase Cloud Messaging HTTP v1, or a plain webhook."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Protocol

import httpx
import jwt

FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"


@dataclass(frozen=True, slots=True)
class PushMessage:
    """SenSeeAct's data message: which project, user and table changed."""

    token: str
    project: str
    user: str
    table: str

    @property
    def data(self) -> dict[str, str]:
        return {"project": self.project, "user": self.user, "table": self.table}


class Delivery(Enum):
    SENT = "sent"
    RETRY = "retry"  # the service is unavailable or overloaded: try again later
    UNREGISTERED = "unregistered"  # the token is gone: forget the registration
    REJECTED = "rejected"  # the message itself was refused: retrying will not help


class Transport(Protocol):
    async def send(self, message: PushMessage) -> Delivery: ...

    async def close(self) -> None: ...


def _by_status(status: int) -> Delivery:
    if 200 <= status < 300:
        return Delivery.SENT
    if status == 429 or status >= 500:
        return Delivery.RETRY
    return Delivery.REJECTED


class WebhookTransport:
    """POSTs SenSeeAct's message as JSON: ``{"to", "priority": "high", "data"}``. The receiver
    answers 404 or 410 for a token it does not know."""

    def __init__(self, endpoint: str, client: httpx.AsyncClient | None = None) -> None:
        self._endpoint = endpoint
        self._client = client or httpx.AsyncClient(timeout=10)

    async def send(self, message: PushMessage) -> Delivery:
        body = {"to": message.token, "priority": "high", "data": message.data}
        try:
            response = await self._client.post(self._endpoint, json=body)
        except httpx.TransportError:
            return Delivery.RETRY
        if response.status_code in (404, 410):
            return Delivery.UNREGISTERED
        return _by_status(response.status_code)

    async def close(self) -> None:
        await self._client.aclose()


class AccessTokens(Protocol):
    async def get(self, client: httpx.AsyncClient) -> str: ...


@dataclass
class StaticAccessToken:
    token: str

    async def get(self, client: httpx.AsyncClient) -> str:
        return self.token


class ServiceAccountTokens:
    """OAuth 2 access tokens for a Google service account (the JWT bearer grant), cached
    until shortly before they expire."""

    def __init__(self, credentials_file: str | Path) -> None:
        info = json.loads(Path(credentials_file).read_text())
        self._email: str = info["client_email"]
        self._key: str = info["private_key"]
        self._token_uri: str = info.get("token_uri", "https://oauth2.googleapis.com/token")
        self._token: str | None = None
        self._expires = 0.0

    async def get(self, client: httpx.AsyncClient) -> str:
        if self._token is not None and time.time() < self._expires - 60:
            return self._token
        now = int(time.time())
        assertion = jwt.encode(
            {
                "iss": self._email,
                "scope": FCM_SCOPE,
                "aud": self._token_uri,
                "iat": now,
                "exp": now + 3600,
            },
            self._key,
            algorithm="RS256",
        )
        response = await client.post(
            self._token_uri,
            data={
                "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                "assertion": assertion,
            },
        )
        response.raise_for_status()
        answer = response.json()
        self._token = str(answer["access_token"])
        self._expires = now + float(answer.get("expires_in", 3600))
        return self._token


class FcmTransport:
    """Firebase Cloud Messaging HTTP v1: a data message with high priority."""

    def __init__(
        self,
        project_id: str,
        tokens: AccessTokens,
        *,
        base_url: str = "https://fcm.googleapis.com",
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self._url = f"{base_url.rstrip('/')}/v1/projects/{project_id}/messages:send"
        self._tokens = tokens
        self._client = client or httpx.AsyncClient(timeout=10)

    async def send(self, message: PushMessage) -> Delivery:
        body = {
            "message": {
                "token": message.token,
                "data": message.data,
                "android": {"priority": "HIGH"},
                "apns": {"headers": {"apns-priority": "10"}},
            }
        }
        try:
            bearer = await self._tokens.get(self._client)
            response = await self._client.post(
                self._url, json=body, headers={"Authorization": f"Bearer {bearer}"}
            )
        except httpx.HTTPError:
            return Delivery.RETRY
        if _unregistered(response):
            return Delivery.UNREGISTERED
        return _by_status(response.status_code)

    async def close(self) -> None:
        await self._client.aclose()


def _unregistered(response: httpx.Response) -> bool:
    """FCM answers 404 NOT_FOUND with errorCode UNREGISTERED for a token it no longer has."""
    if response.status_code not in (400, 404):
        return False
    try:
        error: dict[str, Any] = response.json().get("error", {})
    except ValueError:
        return response.status_code == 404
    codes = {d.get("errorCode") for d in error.get("details", []) if isinstance(d, dict)}
    return "UNREGISTERED" in codes or error.get("status") == "NOT_FOUND"
