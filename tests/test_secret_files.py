"""Secrets and TLS from files: temporal.tls reaches the SDK (its TLSConfig; a client told to
speak TLS never falls back to plaintext), the database password comes from its secret file."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from pydantic import ValidationError
from temporalio.service import TLSConfig

from devstack.stack import TemporalDevServer
from promptpilot.security_settings import TemporalTlsSettings
from promptpilot.settings import DatabaseSettings, PayloadSettings, Settings, TemporalSettings
from promptpilot.temporal import connect, tls_config


def test_files_become_the_sdks_tls_config(tmp_path: Path) -> None:
    for name in ("ca.pem", "client.pem", "client.key"):
        (tmp_path / name).write_bytes(f"-----{name}-----".encode())
    tls = TemporalTlsSettings(server_ca_cert=tmp_path / "ca.pem",
                              client_cert=tmp_path / "client.pem",
                              client_key=tmp_path / "client.key", server_name="temporal")
    config = tls_config(Settings(_env_file=None, temporal=TemporalSettings(tls=tls)))
    assert config == TLSConfig(server_root_ca_cert=b"-----ca.pem-----", domain="temporal",
                               client_cert=b"-----client.pem-----",
                               client_private_key=b"-----client.key-----")


def test_plaintext_by_default_and_a_cert_needs_its_key(tmp_path: Path) -> None:
    assert tls_config(Settings(_env_file=None)) is False
    with pytest.raises(ValidationError, match=r"client_cert and temporal\.tls\.client_key"):
        TemporalTlsSettings(client_cert=tmp_path / "client.pem")


async def test_a_tls_client_refuses_a_plaintext_frontend(temporal: TemporalDevServer) -> None:
    settings = Settings(_env_file=None, payloads=PayloadSettings(storage="none"),
                        temporal=TemporalSettings(address=temporal.address,
                                                  tls=TemporalTlsSettings(enabled=True)))
    with pytest.raises(RuntimeError):
        await asyncio.wait_for(connect(settings, "default", own=True), timeout=30)


def test_the_database_password_comes_from_its_secret_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = tmp_path / "postgres_password"
    secret.write_text("s3cr:t/@pw\n")
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://promptpilot@postgres:5432/pp")
    monkeypatch.setenv("PROMPTPILOT_DATABASE__PASSWORD_FILE", str(secret))
    assert Settings(_env_file=None).database.url == (
        "postgresql+asyncpg://promptpilot:s3cr%3At%2F%40pw@postgres:5432/pp")
    given = DatabaseSettings(url="postgresql://u:old@db/x", password_file=secret)
    assert given.url == "postgresql://u:s3cr%3At%2F%40pw@db/x"
