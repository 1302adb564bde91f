"""Settings sections of the security boundaries (SECURITY.md): Temporal's TLS, the sign-in
throttle, and the database password kept in a file. Part of the one settings root."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

from pydantic import BaseModel, Field, model_validator


class TemporalTlsSettings(BaseModel):
    """TLS, and mutual TLS, to the Temporal frontend (SECURITY.md; the SDK's ``TLSConfig``).

    Off by default (the dev server speaks plaintext on localhost). Any file set turns it on."""

    enabled: bool = False
    """Speak TLS to Temporal, trusting the system's CAs unless ``server_ca_cert`` is set."""
    server_ca_cert: Path | None = None
    """PEM file of the CA that signed the frontend's certificate."""
    client_cert: Path | None = None
    """PEM file of this process's client certificate (mTLS; with ``client_key``)."""
    client_key: Path | None = None
    """PEM file of the client certificate's private key."""
    server_name: str | None = None
    """The name the frontend's certificate is checked against, when not the address's host."""

    @model_validator(mode="after")
    def _checks(self) -> TemporalTlsSettings:
        if (self.client_cert is None) != (self.client_key is None):
            raise ValueError("temporal.tls.client_cert and temporal.tls.client_key go together")
        if self.server_ca_cert or self.client_cert or self.server_name:
            self.enabled = True
        return self


class AuthThrottleSettings(BaseModel):
    """Failed-authentication throttling (``api.auth_throttle``; SECURITY.md)."""

    client_failures: int = Field(default=20, ge=1)
    """Failures one client address may have in the window before it gets 429."""
    prefix_failures: int = Field(default=100, ge=1)
    """Failures with one key prefix (from any addresses) before the failing clients get 429."""
    window_seconds: float = Field(default=60.0, gt=0, le=86_400)
    """How long a failure counts."""
    max_tracked: int = Field(default=10_000, ge=100)
    """Clients, prefixes and pairs remembered at most each (oldest forgotten first): memory
    stays bounded under a flood of fresh addresses."""


def with_password(url: str, password: str) -> str:
    """``url`` with its password replaced by ``password`` (percent-encoded)."""
    parts = urlsplit(url)
    credentials, _, host = parts.netloc.rpartition("@")
    user = credentials.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:{quote(password, safe='')}@{host}"))
