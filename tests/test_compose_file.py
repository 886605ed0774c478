"""The compose files (docker/compose.yaml, prod-like, and docker/compose.dev.yaml, the dev
override) against the compose specification's JSON schema (check-jsonschema's vendored copy),
and the promises the README makes about them, read from the files: the database not published,
the one-shot before the app, secrets as files, ports on 127.0.0.1 only, restart policies. The
stack itself runs in the container tier (tests/containers, `make test-containers`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DOCKER = ROOT / "docker"
PROD = DOCKER / "compose.yaml"
DEV = DOCKER / "compose.dev.yaml"
CHECK_JSONSCHEMA = Path(sys.executable).parent / "check-jsonschema"


def check_schema(*files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CHECK_JSONSCHEMA), "--builtin-schema", "vendor.compose-spec", *map(str, files)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def prod() -> dict[str, Any]:
    return load(PROD)


@pytest.fixture(scope="module")
def dev() -> dict[str, Any]:
    return load(DEV)


def test_both_files_match_the_compose_specification() -> None:
    done = check_schema(PROD, DEV)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_schema_check_refuses_a_broken_file(tmp_path: Path, prod: dict[str, Any]) -> None:
    # The check above can fail: a misspelt key and a port given as a list are refused.
    broken = dict(prod, services={**prod["services"], "db": {**prod["services"]["db"], "healthckeck": {}}})
    path = tmp_path / "compose.yaml"
    path.write_text(yaml.safe_dump(broken))
    done = check_schema(path)
    assert done.returncode != 0 and "healthckeck" in done.stdout + done.stderr, done.stdout


def published(service: dict[str, Any]) -> list[str]:
    return [str(p) for p in service.get("ports", [])]


def test_every_published_port_is_on_loopback(prod: dict[str, Any], dev: dict[str, Any]) -> None:
    for name, service in {**prod["services"], **{f"dev {k}": v for k, v in dev["services"].items()}}.items():
        for port in published(service):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} on every interface"


def test_database_has_a_named_volume_a_health_check_and_no_published_port(prod: dict[str, Any]) -> None:
    db = prod["services"]["db"]
    assert published(db) == []
    assert db["healthcheck"]["test"], db
    data = [v for v in db["volumes"] if str(v).endswith(":/var/lib/postgresql/data")]
    assert data and str(data[0]).split(":")[0] in prod["volumes"], "PostgreSQL's data is not on a named volume"
    assert db["environment"]["POSTGRES_PASSWORD_FILE"] == "/run/secrets/db_password"
    assert "POSTGRES_PASSWORD" not in db["environment"]


def test_migration_one_shot_runs_before_the_app(prod: dict[str, Any]) -> None:
    migrate, stellar = prod["services"]["migrate"], prod["services"]["stellar"]
    assert "stellarops migrate" in " ".join(migrate["command"])
    assert migrate["restart"] == "no"
    assert migrate["depends_on"]["db"]["condition"] == "service_healthy"
    assert stellar["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert stellar["depends_on"]["db"]["condition"] == "service_healthy"
    assert migrate["image"] == stellar["image"], "one image serves every role"


def test_stellar_service(prod: dict[str, Any]) -> None:
    stellar = prod["services"]["stellar"]
    # Back after an exit it did not ask for (SIGKILL, OOM); the container tier kills it to see.
    assert stellar["restart"] in ("always", "unless-stopped", "on-failure")
    assert published(stellar) == ["127.0.0.1:${STELLAROPS_HTTP_PUBLISH:-8080}:8080"]
    assert stellar["environment"]["STELLAROPS_HTTP_HOST"] == "0.0.0.0"
    assert stellar["healthcheck"]["test"]
    assert {"erlang_cookie", "db_password"} <= set(stellar["secrets"])
    assert stellar["environment"]["STELLAROPS_COOKIE_FILE"] == "/run/secrets/erlang_cookie"


def test_no_secret_in_the_environment_or_on_a_command_line(prod: dict[str, Any]) -> None:
    for name, service in prod["services"].items():
        env = service.get("environment", {})
        assert "STELLAROPS_COOKIE" not in env, name
        url = env.get("DATABASE_URL")
        if url:
            assert urlsplit(url).password is None, f"{name}: a password in DATABASE_URL"
            assert env["DATABASE_PASSWORD_FILE"] == "/run/secrets/db_password", name
            assert "db_password" in service["secrets"], name
        assert not {k for k in env if k.endswith("PASSWORD") or k == "PGPASSWORD"}, name
    for secret in prod["secrets"].values():
        assert set(secret) == {"file"}, secret


def test_every_secret_a_service_names_is_declared(prod: dict[str, Any], dev: dict[str, Any]) -> None:
    declared = set(prod["secrets"])
    for services in (prod["services"], dev["services"]):
        for name, service in services.items():
            for secret in service.get("secrets", []):
                assert (secret if isinstance(secret, str) else secret["source"]) in declared, name


def test_bind_mounts_name_files_of_the_repository(prod: dict[str, Any], dev: dict[str, Any]) -> None:
    # Relative paths are relative to docker/: each must exist (B's Prometheus and Grafana files).
    for services in (prod["services"], dev["services"]):
        for name, service in services.items():
            for volume in service.get("volumes", []):
                source = str(volume).split(":")[0]
                if source.startswith("."):
                    assert (DOCKER / source).exists(), f"{name} mounts {source}, which does not exist"


def test_prometheus_scrapes_the_stellar_service(prod: dict[str, Any]) -> None:
    config = yaml.safe_load((DOCKER / "prometheus" / "prometheus.yml").read_text())
    targets = [t for job in config["scrape_configs"] for sc in job.get("static_configs", []) for t in sc["targets"]]
    assert "stellar:8080" in targets, targets
    mounts = prod["services"]["prometheus"]["volumes"]
    assert "./prometheus:/etc/prometheus:ro" in mounts


def test_grafana_only_with_the_observability_profile(prod: dict[str, Any]) -> None:
    profiled = {name for name, s in prod["services"].items() if s.get("profiles")}
    assert profiled == {"grafana"}
    assert prod["services"]["grafana"]["profiles"] == ["observability"]


def test_dev_override_mounts_the_source_and_runs_the_dashboard_dev_server(dev: dict[str, Any]) -> None:
    mounts = [str(v) for v in dev["services"]["stellar"]["volumes"]]
    for package in ("py_nodes", "orbital", "web"):
        assert any(m.startswith(f"../{package}:") for m in mounts), f"{package} not mounted: {mounts}"
    dashboard = dev["services"]["dashboard"]
    assert published(dashboard) == ["127.0.0.1:5173:5173"]
    assert dashboard["environment"]["STELLAROPS_API_BASE"] == "http://stellar:8080"
