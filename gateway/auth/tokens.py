"""Signed JWTs: HS256 with a shared secret or RS256 with a key pair."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

import jwt

from gateway.auth.principal import Principal, Role
from gateway.errors import Unauthenticated
from gateway.settings import Settings, SettingsError

# Tolerated clock difference between the token issuer and the gateway.
_LEEWAY_SECONDS = 5
_MAX_VERIFIED = 10_000  # tokens remembered; forgotten all at once beyond
MAX_USER_ID = 255  # what the users table holds


def generate_secret() -> str:
    return secrets.token_urlsafe(48)


class TokenService:
    def __init__(self, settings: Settings) -> None:
        self.issuer = settings.jwt_issuer
        self.audience = settings.jwt_audience
        self.default_ttl = timedelta(seconds=settings.jwt_default_ttl_seconds)
        if settings.jwt_secret:
            self.algorithm = "HS256"
            self._verify_key: str = settings.jwt_secret
            self._sign_key: str | None = settings.jwt_secret
        elif settings.jwt_public_key:
            self.algorithm = "RS256"
            self._verify_key = settings.jwt_public_key
            self._sign_key = settings.jwt_private_key
        else:
            raise SettingsError("no JWT key: set GATEWAY_JWT_SECRET or GATEWAY_JWT_PUBLIC_KEY")
        self._verified: dict[str, Principal] = {}  # token -> whom it names, until it expires

    def issue(self, user_id: str, role: Role, ttl: timedelta | None = None) -> str:
        if not self._sign_key:
            raise SettingsError("RS256 tokens need GATEWAY_JWT_PRIVATE_KEY to be signed here")
        if not user_id:
            raise ValueError("user id must not be empty")
        now = datetime.now(UTC)
        claims: dict[str, object] = {
            "sub": user_id,
            "role": role.value,
            "iat": now,
            "exp": now + (ttl or self.default_ttl),
        }
        if self.issuer:
            claims["iss"] = self.issuer
        if self.audience:
            claims["aud"] = self.audience
        return jwt.encode(claims, self._sign_key, algorithm=self.algorithm)

    def verify(self, token: str) -> Principal:
        """The caller a token names, or ``Unauthenticated`` saying what is wrong with it. A
        token verified before is not decoded again until it expires (clients send the same
        token with every request; decoding is a signature check)."""
        known = self._verified.get(token)
        if known is not None and known.expires_at is not None:
            if datetime.now(UTC) < known.expires_at + timedelta(seconds=_LEEWAY_SECONDS):
                return known
            del self._verified[token]
        principal = self._decode(token)
        if len(self._verified) >= _MAX_VERIFIED:
            self._verified.clear()
        self._verified[token] = principal
        return principal

    def _decode(self, token: str) -> Principal:
        try:
            claims = jwt.decode(
                token,
                self._verify_key,
                algorithms=[self.algorithm],
                audience=self.audience,
                issuer=self.issuer,
                leeway=_LEEWAY_SECONDS,
                options={"require": ["exp", "sub"], "verify_aud": self.audience is not None},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthenticated("token expired") from exc
        except jwt.InvalidSignatureError as exc:
            raise Unauthenticated("token signature is invalid") from exc
        except jwt.InvalidTokenError as exc:
            raise Unauthenticated(f"invalid token: {exc}") from exc
        user_id = claims["sub"]
        if not isinstance(user_id, str) or not user_id.strip():
            raise Unauthenticated("invalid token: 'sub' must be a non-empty string")
        if len(user_id) > MAX_USER_ID or not user_id.isprintable():
            raise Unauthenticated(
                f"invalid token: 'sub' must be at most {MAX_USER_ID} printable characters"
            )
        try:
            role = Role.parse(claims.get("role"))
        except ValueError as exc:
            raise Unauthenticated(f"invalid token: {exc}") from exc
        try:
            expires_at = datetime.fromtimestamp(claims["exp"], UTC)
        except (OverflowError, OSError, ValueError, TypeError) as exc:
            raise Unauthenticated("invalid token: 'exp' is out of range") from exc
        return Principal(user_id=user_id, role=role, expires_at=expires_at)


def bearer_token(header: str | None) -> str | None:
    """The token in ``Bearer <token>``; a bare token is accepted too (SenSeeAct's
    ``X-Auth-Token`` carries one without a scheme)."""
    if not header or not header.strip():
        return None
    parts = header.split()
    if parts[0].lower() == "bearer":
        return parts[1] if len(parts) == 2 else None
    return parts[0] if len(parts) == 1 else None
