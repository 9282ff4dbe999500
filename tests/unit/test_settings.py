from __future__ import annotations

import pytest
from pydantic import ValidationError

from gateway.app import create_app
from gateway.settings import DEFAULT_DATABASE_URL, Environment, Settings, SettingsError

SECRET = "s" * 32


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """No GATEWAY_* variable or .env of the developer's leaks into these tests."""
    for name in list(__import__("os").environ):
        if name.startswith("GATEWAY_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def test_defaults_run_on_a_sqlite_file_in_the_working_directory() -> None:
    settings = Settings()
    assert settings.environment is Environment.DEVELOPMENT
    assert settings.database_url == DEFAULT_DATABASE_URL == "sqlite+aiosqlite:///./gateway.db"
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)
    assert settings.migrate_on_start is True
    assert not settings.has_jwt_key


def test_environment_variables_override_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_DATABASE_URL", "postgresql://postgres@db:5432/sync")
    monkeypatch.setenv("GATEWAY_PORT", "9100")
    monkeypatch.setenv("GATEWAY_JWT_SECRET", SECRET)
    monkeypatch.setenv("GATEWAY_ENVIRONMENT", "production")
    monkeypatch.setenv("GATEWAY_MIGRATE_ON_START", "false")
    settings = Settings()
    assert settings.port == 9100
    assert settings.environment is Environment.PRODUCTION
    assert settings.migrate_on_start is False
    assert settings.normalized_database_url == "postgresql+asyncpg://postgres@db:5432/sync"


def test_dotenv_file_is_read(tmp_path) -> None:
    (tmp_path / ".env").write_text("GATEWAY_PORT=9200\nGATEWAY_JWT_AUDIENCE=devices\n")
    settings = Settings()
    assert (settings.port, settings.jwt_audience) == (9200, "devices")


def test_production_refuses_to_start_without_a_jwt_key() -> None:
    settings = Settings(environment="production")
    with pytest.raises(SettingsError, match="without a JWT key"):
        settings.check_can_serve()
    with pytest.raises(SettingsError, match="without a JWT key"):
        create_app(settings)


def test_production_starts_with_a_key() -> None:
    Settings(environment="production", jwt_secret=SECRET).check_can_serve()


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"jwt_secret": "short"}, "at least 32 characters"),
        ({"jwt_secret": SECRET, "jwt_public_key": "pem"}, "not both"),
        ({"port": 70000}, "less than or equal"),
        ({"environment": "staging"}, "development"),
        ({"bus": "redis://127.0.0.1:6379"}, "GATEWAY_BUS must be 'postgres' or a NATS URL"),
        ({"bus": "nats://"}, "GATEWAY_BUS must be"),
        ({"bus_coalesce_ms": -1}, "greater than or equal"),
    ],
)
def test_bad_settings_are_refused(values: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Settings(**values)


@pytest.mark.parametrize(
    ("bus", "kept"),
    [
        ("postgres", "postgres"),
        (" Postgres ", "postgres"),
        ("nats://nats:4222", "nats://nats:4222"),
    ],
)
def test_the_bus_is_postgres_or_a_nats_url(bus: str, kept: str) -> None:
    assert Settings(_env_file=None, bus=bus).bus == kept  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("url", "normalized"),
    [
        ("postgres://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("postgresql://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("postgresql+asyncpg://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("sqlite:///./x.db", "sqlite+aiosqlite:///./x.db"),
    ],
)
def test_database_urls_pick_the_async_driver(url: str, normalized: str) -> None:
    assert Settings(database_url=url).normalized_database_url == normalized


def test_unsupported_database_is_a_clear_error() -> None:
    with pytest.raises(SettingsError, match="unsupported database URL scheme 'mysql'"):
        _ = Settings(database_url="mysql://root@localhost/db").normalized_database_url
