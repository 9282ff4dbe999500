"""HTTP basic auth for the REST paths whose clients use it (Census), where the deployment
enables it with ``GATEWAY_REST_BASIC_AUTH_FILE``.

The file maps basic-auth users to gateway users and roles, one per line, with a hash of the
password, never the password itself::

    # username:role:sha256:<hex of sha256(password)>
    census-job:admin:sha256:5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8
    # username:role:pbkdf2_sha256:<iterations>:<salt>:<hex of pbkdf2_hmac(sha256)>
    alice:patient:pbkdf2_sha256:600000:c2FsdA:...

The basic-auth username is the gateway user id. The file is read again when it changes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import os
from dataclasses import dataclass

from gateway.auth.principal import Principal, Role
from gateway.errors import Unauthenticated

logger = logging.getLogger("gateway.rest")


@dataclass(frozen=True, slots=True)
class Entry:
    role: Role
    scheme: str
    parts: tuple[str, ...]

    def matches(self, password: str) -> bool:
        if self.scheme == "sha256" and len(self.parts) == 1:
            digest = hashlib.sha256(password.encode()).hexdigest()
            return hmac.compare_digest(digest, self.parts[0].lower())
        if self.scheme == "pbkdf2_sha256" and len(self.parts) == 3:
            iterations, salt, expected = self.parts
            digest = hashlib.pbkdf2_hmac(
                "sha256", password.encode(), salt.encode(), int(iterations)
            ).hex()
            return hmac.compare_digest(digest, expected.lower())
        return False


def parse(text: str) -> dict[str, Entry]:
    """The users of a basic-auth file; a malformed line is an error naming its number."""
    users: dict[str, Entry] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split(":")
        if len(fields) < 4 or fields[2] not in ("sha256", "pbkdf2_sha256"):
            raise ValueError(f"basic-auth file line {number}: expected username:role:scheme:hash")
        if fields[2] == "pbkdf2_sha256" and (len(fields) != 6 or not fields[3].isdigit()):
            raise ValueError(f"basic-auth file line {number}: bad pbkdf2_sha256 hash")
        users[fields[0]] = Entry(Role.parse(fields[1]), fields[2], tuple(fields[3:]))
    return users


class BasicAuth:
    """The users of one file, read again when its modification time changes."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._stamp: float | None = None
        self._users: dict[str, Entry] = {}

    def users(self) -> dict[str, Entry]:
        """The users as the file now says; as last read when it vanished or became malformed
        since (the settings checked it at start), with the problem logged."""
        try:
            stamp = os.stat(self.path).st_mtime
            if stamp != self._stamp:
                with open(self.path, encoding="utf-8") as file:
                    self._users = parse(file.read())
                self._stamp = stamp
        except (OSError, ValueError):
            logger.exception("cannot reload the basic-auth file %s", self.path)
        return self._users

    def verify(self, header: str) -> Principal:
        """The caller of an ``Authorization: Basic`` header value (without ``Basic ``)."""
        try:
            username, _, password = base64.b64decode(header, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise Unauthenticated("malformed basic credentials") from None
        entry = self.users().get(username)
        if entry is None or not entry.matches(password):
            raise Unauthenticated("wrong basic-auth username or password")
        return Principal(username, entry.role)


_instances: dict[str, BasicAuth] = {}


def basic_auth(path: str) -> BasicAuth:
    if path not in _instances:
        _instances[path] = BasicAuth(path)
    return _instances[path]
