from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from gateway.auth.principal import Principal, Role
from gateway.auth.tokens import TokenService, bearer_token
from gateway.errors import Unauthenticated
from gateway.settings import Settings, SettingsError

SECRET = "k" * 40


def hs256(**overrides: object) -> TokenService:
    return TokenService(Settings(_env_file=None, jwt_secret=SECRET, **overrides))


@pytest.fixture(scope="module")
def rsa_pems() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


def test_hs256_round_trip() -> None:
    service = hs256()
    token = service.issue("alice", Role.PATIENT)
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    assert service.verify(token) == Principal("alice", Role.PATIENT)


def test_rs256_round_trip_and_public_key_only_verification(rsa_pems: tuple[str, str]) -> None:
    private, public = rsa_pems
    signer = TokenService(Settings(_env_file=None, jwt_public_key=public, jwt_private_key=private))
    token = signer.issue("dr-carol", Role.PROFESSIONAL)
    assert jwt.get_unverified_header(token)["alg"] == "RS256"
    verifier = TokenService(Settings(_env_file=None, jwt_public_key=public))
    assert verifier.verify(token) == Principal("dr-carol", Role.PROFESSIONAL)
    with pytest.raises(SettingsError, match="PRIVATE_KEY"):
        verifier.issue("x", Role.ADMIN)


def test_expired_token_is_refused() -> None:
    service = hs256()
    token = jwt.encode(
        {"sub": "alice", "role": "patient", "exp": datetime.now(UTC) - timedelta(minutes=5)},
        SECRET,
        algorithm="HS256",
    )
    with pytest.raises(Unauthenticated, match="expired"):
        service.verify(token)


def test_bad_signature_is_refused() -> None:
    token = TokenService(Settings(_env_file=None, jwt_secret="other" * 10)).issue(
        "alice", Role.ADMIN
    )
    with pytest.raises(Unauthenticated, match="signature"):
        hs256().verify(token)


def test_token_signed_with_another_algorithm_is_refused(rsa_pems: tuple[str, str]) -> None:
    private, _ = rsa_pems
    token = jwt.encode(
        {"sub": "a", "role": "admin", "exp": datetime.now(UTC) + timedelta(hours=1)},
        private,
        algorithm="RS256",
    )
    with pytest.raises(Unauthenticated, match="invalid token"):
        hs256().verify(token)


@pytest.mark.parametrize(
    ("claims", "message"),
    [
        ({"sub": "alice", "role": "patient"}, "exp"),
        ({"role": "patient", "exp": 4_000_000_000}, "sub"),
        ({"sub": "", "role": "patient", "exp": 4_000_000_000}, "sub"),
        ({"sub": "alice", "exp": 4_000_000_000}, "unknown role None"),
        ({"sub": "alice", "role": "superuser", "exp": 4_000_000_000}, "unknown role 'superuser'"),
    ],
)
def test_tokens_missing_claims_or_with_unknown_role_are_refused(
    claims: dict[str, object], message: str
) -> None:
    with pytest.raises(Unauthenticated, match=message):
        hs256().verify(jwt.encode(claims, SECRET, algorithm="HS256"))


def test_role_claim_is_case_insensitive() -> None:
    token = jwt.encode(
        {"sub": "root", "role": "ADMIN", "exp": 4_000_000_000}, SECRET, algorithm="HS256"
    )
    assert hs256().verify(token).role is Role.ADMIN


def test_issuer_and_audience_are_enforced_when_configured() -> None:
    service = hs256(jwt_issuer="https://idp.example", jwt_audience="sync-gateway")
    assert service.verify(service.issue("alice", Role.PATIENT)).user_id == "alice"
    foreign = hs256(jwt_issuer="https://other.example", jwt_audience="sync-gateway")
    with pytest.raises(Unauthenticated, match="issuer"):
        service.verify(foreign.issue("alice", Role.PATIENT))
    no_audience = hs256(jwt_issuer="https://idp.example")
    with pytest.raises(Unauthenticated, match="aud"):
        service.verify(no_audience.issue("alice", Role.PATIENT))


def test_no_key_is_a_settings_error() -> None:
    with pytest.raises(SettingsError, match="no JWT key"):
        TokenService(Settings(_env_file=None))


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc.def", "abc.def"),
        ("bearer   abc.def ", "abc.def"),
        ("abc.def", "abc.def"),
        ("Basic dXNlcg== extra", None),
        ("", None),
        (None, None),
        ("Bearer ", None),
    ],
)
def test_bearer_token_parsing(header: str | None, token: str | None) -> None:
    assert bearer_token(header) == token


def test_a_token_verified_while_valid_is_still_refused_once_it_expired() -> None:
    """Verified tokens are remembered, but only until they expire (5 s of leeway)."""
    tokens = hs256()
    token = tokens.issue("alice", Role.PATIENT, ttl=timedelta(seconds=-3.9))
    assert tokens.verify(token).user_id == "alice"  # within the leeway
    assert tokens.verify(token).user_id == "alice"  # remembered
    time.sleep(1.2)  # past the leeway now
    with pytest.raises(Unauthenticated, match="expired"):
        tokens.verify(token)
