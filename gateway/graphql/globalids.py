"""Relay's ``Node`` interface and the global ids of the types that implement it.

A global id is base64url (no padding) of ``Type:[key...]``, the key a compact JSON array of the
parts that identify the object among all of its type (a device: project, owner, deviceId). It
is the same in every answer, so client caches (Apollo, urql, Relay) can merge what different
queries, mutations and subscriptions say about one object, and ``node(id)`` can fetch it again.
Clients must treat it as opaque; the gateway decodes it only to look the object up, under the
same access rules as every other field (``gateway/graphql/nodes.py``).
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

import strawberry

MAX_ID_LENGTH = 2048  # longer than any id the gateway hands out (a key part is at most 255)

KeyPart = str | int


@strawberry.interface(
    description="An object a client can cache and fetch again by its id: its id is the same "
    "in every answer, and `node(id:)` returns the object while you may see it."
)
class Node:
    @strawberry.field(
        description="Identifies the object among all objects of the API, the same in every "
        "answer. Opaque: store it and give it back to `node(id:)`, but do not build or parse it."
    )
    def id(self) -> strawberry.ID:
        # A plain method of the object (no info, no arguments), so the fast list path of
        # ``execution.py`` builds it inline in a page of records or devices.
        return encode(self.__strawberry_definition__.name, self.node_key())  # type: ignore[attr-defined]

    def node_key(self) -> tuple[KeyPart, ...]:
        """The parts that identify the object among all of its type."""
        raise NotImplementedError


def encode(type_name: str, key: tuple[KeyPart, ...]) -> strawberry.ID:
    text = f"{type_name}:{json.dumps(list(key), separators=(',', ':'), ensure_ascii=False)}"
    return strawberry.ID(base64.urlsafe_b64encode(text.encode()).decode().rstrip("="))


def decode(global_id: str) -> tuple[str, list[Any]] | None:
    """The type name and key of a global id; None for anything the gateway did not hand out
    in this form (callers answer it like an id of nothing)."""
    if len(global_id) > MAX_ID_LENGTH:
        return None
    try:
        raw = base64.urlsafe_b64decode(global_id + "=" * (-len(global_id) % 4))
        type_name, _, key_text = raw.decode().partition(":")
        key = json.loads(key_text)
    except (binascii.Error, ValueError):  # bad base64, UTF-8 or JSON (all ValueErrors)
        return None
    if not isinstance(key, list) or not all(type(p) in (str, int) for p in key):
        return None
    return type_name, key
