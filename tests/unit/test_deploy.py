"""deploy/ is what operators copy: every GATEWAY_* name it mentions must be a real setting (a
misspelt one is silently ignored by the gateway), its YAML must parse, and its probes must ask
the endpoints that mean alive (/healthz) and ready (/readyz)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.services import Services
from gateway.settings import Settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
NAME = re.compile(r"\bGATEWAY_[A-Z0-9_]*[A-Z0-9]")
NOT_SETTINGS = ("GATEWAY_TEST_", "GATEWAY_BENCH_")  # the test suite's and bench/'s own


def deploy_files() -> list[Path]:
    return sorted(p for p in DEPLOY.rglob("*") if p.is_file())


def setting_names() -> set[str]:
    return {f"GATEWAY_{name.upper()}" for name in Settings.model_fields}


def test_every_gateway_name_in_deploy_is_a_setting() -> None:
    known = setting_names()
    unknown = {
        f"{path.relative_to(DEPLOY)}: {name}"
        for path in deploy_files()
        for name in NAME.findall(path.read_text())
        if not name.startswith(NOT_SETTINGS) and name not in known
    }
    assert not unknown, sorted(unknown)
    # The check sees the files: the deployment's own names are found.
    everything = " ".join(p.read_text() for p in deploy_files())
    assert "GATEWAY_DRAIN_GRACE_SECONDS" in everything and "GATEWAY_BUS" in everything


def yaml_documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def k8s_objects() -> dict[str, dict[str, Any]]:
    """Every Kubernetes object under deploy/k8s by kind (one of each)."""
    objects: dict[str, dict[str, Any]] = {}
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        for doc in yaml_documents(path):
            assert {"apiVersion", "kind"} <= doc.keys(), path
            assert doc["kind"] not in objects, f"a second {doc['kind']} in {path}"
            objects[doc["kind"]] = doc
    return objects


def settings_from(values: dict[str, str]) -> Settings:
    """The Settings these GATEWAY_* values make (raises if one does not validate)."""
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        **{
            k.removeprefix("GATEWAY_").lower(): v
            for k, v in values.items()
            if k.startswith("GATEWAY_")
        },
    )


def test_the_kubernetes_manifests_parse_and_run_the_gateway_as_documented() -> None:
    objects = k8s_objects()
    assert {
        "ConfigMap", "Secret", "Deployment", "Service", "Ingress", "HorizontalPodAutoscaler",
        "PodDisruptionBudget", "Job", "Kustomization",
    } <= objects.keys()  # fmt: skip
    config = objects["ConfigMap"]["data"]
    settings = settings_from(config | objects["Secret"]["stringData"])
    assert settings.migrate_on_start is False  # the Job migrates, replicas never
    assert settings.environment == "production"

    pod = objects["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    sources = {next(iter(s.values()))["name"] for s in container["envFrom"]}
    assert sources == {objects["ConfigMap"]["metadata"]["name"]}
    # Kubernetes waits out the drain and the longest request before it kills the pod.
    assert pod["terminationGracePeriodSeconds"] > (
        settings.drain_grace_seconds + settings.request_timeout_seconds
    )
    # The drain outlasts the readiness probe's noticing it.
    probe = container["readinessProbe"]
    assert settings.drain_grace_seconds > probe["periodSeconds"] * probe["failureThreshold"]

    (job,) = objects["Job"]["spec"]["template"]["spec"]["containers"]
    assert job["command"] == ["gateway", "migrate"]
    assert job["image"] == container["image"]

    backend = objects["Ingress"]["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend["name"] == objects["Service"]["metadata"]["name"]
    annotations = objects["Ingress"]["metadata"]["annotations"]
    assert int(annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 3600
    for kind in ("HorizontalPodAutoscaler", "PodDisruptionBudget"):
        assert objects[kind]["spec"].get("minReplicas", 2) >= 2
    listed = set(objects["Kustomization"]["resources"])
    assert all((DEPLOY / "k8s" / name).is_file() for name in listed)


def test_the_compose_file_parses_and_runs_two_replicas_behind_the_committed_nginx() -> None:
    (compose,) = yaml_documents(DEPLOY / "compose.yaml")
    services = compose["services"]
    replicas = [s for name, s in services.items() if name.startswith("gateway-")]
    assert len(replicas) == 2
    for replica in replicas:
        env = replica["environment"]
        fixed = {k: v for k, v in env.items() if "${" not in str(v)}
        assert settings_from(fixed).migrate_on_start is False
        assert replica["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["migrate"]["command"] == ["gateway", "migrate"]
    (mount,) = services["nginx"]["volumes"]
    assert mount.startswith("./nginx/sync-gateway.conf:")
    conf = (DEPLOY / "nginx" / "sync-gateway.conf").read_text()
    for replica_name in (n for n in services if n.startswith("gateway-")):
        assert f"server {replica_name}:8000" in conf
    assert services["nats"]["profiles"] == ["nats"]


def test_the_dockerfile_runs_the_gateway_unprivileged_with_a_health_check() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim", text, re.M)
    assert re.search(r"^USER (?!root|0\b)", text, re.M)
    assert re.search(r"^HEALTHCHECK .*\n?.*/healthz", text, re.M)
    assert 'CMD ["gateway", "serve", "--host", "0.0.0.0"]' in text


def test_the_env_example_is_valid_settings() -> None:
    values = dict(
        line.split("=", 1)
        for line in (DEPLOY / "gateway.env.example").read_text().splitlines()
        if line.startswith("GATEWAY_")
    )
    assert settings_from(values).environment == "production"


@pytest.mark.parametrize("size, overflow", [(3, 1), (40, 0)])
def test_the_pool_settings_size_each_replicas_pool(size: int, overflow: int) -> None:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url="postgresql+asyncpg://nobody@127.0.0.1:1/none",
        jwt_secret="s" * 40,
        db_pool_size=size,
        db_max_overflow=overflow,
    )
    pool: Any = Services.create(settings).db.engine.pool  # connects to nothing yet
    assert (pool.size(), pool._max_overflow, pool._timeout) == (size, overflow, 30.0)
