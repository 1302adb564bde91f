"""The compose files, read by a YAML parser (no Docker engine here): Temporal private,
Postgres credentials from secrets, mTLS settings that the settings root really reads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from devstack.temporal_server import TASK_QUEUE_CONFIG
from promptpilot.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def _compose(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / name).read_text())
    return loaded


def test_temporal_frontend_and_ui_are_on_the_internal_network_only() -> None:
    compose = _compose("docker-compose.yml")
    services, networks = compose["services"], compose["networks"]
    assert networks["backplane"] == {"internal": True}
    for name in ("temporal", "temporal-ui", "postgres", "minio"):
        assert "ports" not in services[name], name
        assert services[name]["networks"] == ["backplane"], name
    published = {name for name, service in services.items() if "ports" in service}
    assert published == {"api"}
    assert services["api"]["ports"] == ["127.0.0.1:8000:8000"]


def test_no_postgres_password_is_written_in_the_file() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    compose = _compose("docker-compose.yml")
    services = compose["services"]
    assert "POSTGRES_PASSWORD:" not in text
    assert "POSTGRES_PWD:" not in text
    assert "SQL_PASSWORD:" not in text
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD_FILE"] == (
        "/run/secrets/postgres_password")
    for name in ("api", "worker"):
        env = services[name]["environment"]
        assert env["DATABASE_URL"] == "postgresql+asyncpg://promptpilot@postgres:5432/promptpilot"
        assert env["PROMPTPILOT_DATABASE__PASSWORD_FILE"] == "/run/secrets/postgres_password"
        assert "postgres_password" in services[name]["secrets"]
    for name in ("temporal", "temporal-schema"):
        assert "/run/secrets/postgres_password" in " ".join(services[name]["command"]), name
    assert set(compose["secrets"]) == {"postgres_password", "payload_keys.json"}


def test_the_mtls_overlay_names_settings_the_app_reads(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    overlay = _compose("docker-compose.mtls.yml")["services"]
    assert overlay["temporal"]["environment"]["TEMPORAL_TLS_REQUIRE_CLIENT_AUTH"] == "true"
    env = overlay["worker"]["environment"]
    assert env == overlay["api"]["environment"]
    for name, path in env.items():
        if path.startswith("/run/secrets/"):
            local = tmp_path / Path(path).name
            local.write_text("pem")
            path = str(local)
        monkeypatch.setenv(name, path)
    tls = Settings(_env_file=None).temporal.tls
    assert tls.enabled
    assert tls.server_name == "temporal"
    assert [p.name if p else None for p in (tls.server_ca_cert, tls.client_cert, tls.client_key)
            ] == ["temporal_ca", "temporal_client_cert", "temporal_client_key"]


def test_compose_temporal_runs_priority_and_fairness_as_the_dev_server_does() -> None:
    temporal = _compose("docker-compose.yml")["services"]["temporal"]
    path = temporal["environment"]["DYNAMIC_CONFIG_FILE_PATH"]
    mounted = {target: source for source, target, _mode in
               (volume.split(":") for volume in temporal["volumes"])}
    loaded = yaml.safe_load((ROOT / mounted[path]).read_text())
    assert {key: values[0]["value"] for key, values in loaded.items()} == TASK_QUEUE_CONFIG
