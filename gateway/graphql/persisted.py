"""Persisted operations: a request may name its document by hash instead of sending it.

Two ways, as clients use them:

- **Automatic persisted queries** (Apollo's ``PersistedQueryLink``, urql's
  ``persistedExchange``): a request carries ``extensions.persistedQuery {version: 1,
  sha256Hash}``. Without ``query`` the gateway runs the document it stored under that hash, or
  answers ``PERSISTED_QUERY_NOT_FOUND`` (message ``PersistedQueryNotFound``, which the clients
  recognize) so that the client sends it again with the query; with ``query`` the hash must be
  the query's SHA-256 (else ``BAD_USER_INPUT``) and the gateway stores it, keeping the most
  recently used documents within ``GATEWAY_PERSISTED_QUERIES_MAX_BYTES``.
- **Trusted documents** (``GATEWAY_TRUSTED_DOCUMENTS``, a JSON manifest of hash → document as
  GraphQL codegen's client preset writes it, or Apollo's persisted-query manifest): only the
  listed documents run, named by ``extensions.persistedQuery.sha256Hash``, by ``documentId``
  (GraphQL over HTTP's persisted documents, ``sha256:`` prefix optional) or sent in full.
  Anything else is ``FORBIDDEN``, and nothing is stored: a client cannot register a document.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gateway.errors import BadUserInput, Forbidden, GatewayError
from gateway.settings import Settings, SettingsError

PERSISTED_QUERY_NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"
#: The message Apollo Server sends, which some clients look for instead of the code.
NOT_FOUND_MESSAGE = "PersistedQueryNotFound"
_SHA256 = re.compile(r"[0-9a-f]{64}")
DEFAULT_MAX_BYTES = 8 * 1024 * 1024  # GATEWAY_PERSISTED_QUERIES_MAX_BYTES's default
_ENTRY_OVERHEAD = 200  # bytes of a stored entry besides its text: the hash, the dict's slot


class PersistedQueryNotFound(GatewayError):
    """The hash names no stored document: send the request again with its ``query``."""

    code = PERSISTED_QUERY_NOT_FOUND

    def __init__(self) -> None:
        super().__init__(NOT_FOUND_MESSAGE)


class TrustedDocumentsError(SettingsError):
    """``GATEWAY_TRUSTED_DOCUMENTS`` cannot be read as a manifest."""


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class PersistedQueries:
    """The documents a hash may name: stored on first sight (automatic persisted queries), or
    only those of a trusted manifest."""

    def __init__(
        self, max_bytes: int = DEFAULT_MAX_BYTES, trusted: Mapping[str, str] | None = None
    ) -> None:
        self.max_bytes = max_bytes
        self._bytes = 0
        self.trusted = dict(trusted) if trusted is not None else None
        # In trusted mode a document sent in full runs when it is listed, whatever its key.
        self._trusted_bodies = frozenset(self.trusted.values()) if self.trusted else frozenset()
        self._stored: OrderedDict[str, str] = OrderedDict()

    @classmethod
    def from_settings(cls, settings: Settings) -> PersistedQueries:
        trusted = None
        if settings.trusted_documents:
            trusted = load_manifest(Path(settings.trusted_documents))
        return cls(settings.persisted_queries_max_bytes, trusted)

    def resolve(
        self, query: str | None, extensions: Mapping[str, Any] | None, document_id: Any = None
    ) -> str | None:
        """The document to run (None: the request has none, for the caller to refuse).
        Raises ``PersistedQueryNotFound``, ``BadUserInput`` or (trusted mode) ``Forbidden``."""
        wanted = _requested_hash(extensions, document_id)
        if self.trusted is not None:
            return self._trusted(query, wanted)
        if wanted is None:
            return query
        if query is None:
            stored = self._stored.get(wanted)
            if stored is None:
                raise PersistedQueryNotFound()
            self._stored.move_to_end(wanted)
            return stored
        if sha256_hex(query) != wanted:
            raise BadUserInput(
                "the persisted query's sha256Hash is not the SHA-256 of its query (hex of the "
                "UTF-8 text, as sent)"
            )
        self._store(wanted, query)
        return query

    def _store(self, key: str, query: str) -> None:
        size = len(query.encode()) + _ENTRY_OVERHEAD
        if key in self._stored:
            self._stored.move_to_end(key)
            return
        if size > self.max_bytes:
            return  # runs, but is not kept: the client keeps sending it in full
        self._stored[key] = query
        self._bytes += size
        while self._bytes > self.max_bytes:
            _, evicted = self._stored.popitem(last=False)
            self._bytes -= len(evicted.encode()) + _ENTRY_OVERHEAD

    @property
    def stored(self) -> int:
        """How many documents are kept (automatic persisted queries)."""
        return len(self._stored)

    def _trusted(self, query: str | None, wanted: str | None) -> str | None:
        assert self.trusted is not None
        if wanted is not None:
            listed = self.trusted.get(wanted)
            if listed is not None and (query is None or query == listed):
                return listed
        elif query is not None and query in self._trusted_bodies:
            return query
        elif query is None:
            return None
        raise Forbidden(
            "this gateway runs only its registered operations (GATEWAY_TRUSTED_DOCUMENTS), "
            "and this is not one of them: add it to the manifest your build generates"
        )


def _requested_hash(extensions: Mapping[str, Any] | None, document_id: Any) -> str | None:
    """The hash the request names, checked; None when it names none."""
    if document_id is not None:
        if not isinstance(document_id, str):
            raise BadUserInput("'documentId' must be a string")
        found = document_id.removeprefix("sha256:")
        if not _SHA256.fullmatch(found):
            raise BadUserInput(
                "'documentId' must be a SHA-256 in hex, optionally 'sha256:'-prefixed"
            )
        return found
    persisted = (extensions or {}).get("persistedQuery")
    if persisted is None:
        return None
    if not isinstance(persisted, Mapping):
        raise BadUserInput("'extensions.persistedQuery' must be an object")
    if persisted.get("version") != 1:
        raise BadUserInput("only version 1 of persisted queries is supported")
    found = persisted.get("sha256Hash")
    if not isinstance(found, str) or not _SHA256.fullmatch(found.lower()):
        raise BadUserInput("'extensions.persistedQuery.sha256Hash' must be a SHA-256 in hex")
    return found.lower()


def load_manifest(path: Path) -> dict[str, str]:
    """hash → document from a manifest: an object of hash → document (GraphQL codegen's
    ``persisted-documents.json``, Relay's ``persisted_queries.json``), or Apollo's
    ``{"format": "apollo-persisted-query-manifest", "operations": [{"id", "body"}]}``."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise TrustedDocumentsError(f"cannot read the trusted documents {path}: {exc}") from exc
    if isinstance(data, dict) and isinstance(data.get("operations"), list):
        entries = {
            op.get("id"): op.get("body") for op in data["operations"] if isinstance(op, dict)
        }
    elif isinstance(data, dict):
        entries = data
    else:
        raise TrustedDocumentsError(f"{path}: expected a JSON object of hash -> document")
    manifest: dict[str, str] = {}
    for key, body in entries.items():
        if not isinstance(key, str) or not isinstance(body, str):
            raise TrustedDocumentsError(f"{path}: every entry needs a string hash and document")
        found = key.removeprefix("sha256:").lower()
        if not _SHA256.fullmatch(found):
            raise TrustedDocumentsError(f"{path}: {key!r} is not a SHA-256 in hex")
        manifest[found] = body
    return manifest
