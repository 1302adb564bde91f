"""temporal.tls reaches the SDK: files become its TLSConfig, and a client that was told to
speak TLS does not fall back to plaintext."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from pydantic import ValidationError
from temporalio.service import TLSConfig

from devstack.stack import TemporalDevServer
from promptpilot.settings import (
    PayloadSettings,
    Settings,
    TemporalSettings,
    TemporalTlsSettings,
)
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
