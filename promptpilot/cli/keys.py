"""API keys from the command line: `keys list` and `keys revoke` through the API."""

from __future__ import annotations

import argparse
from typing import Any

from promptpilot.cli.client import OK, REFUSED, CliError, connect, out, segment
from promptpilot.settings import Settings


def _stamp(value: Any) -> str:
    return "-" if not value else str(value)[:19].replace("T", " ")


async def list_keys(settings: Settings, args: argparse.Namespace) -> int:
    """`promptpilot keys list`: the keys of the calling key's environment (never the keys)."""
    async with connect(settings, args) as api:
        _, body = await api.call("GET", "/api/keys")
    keys = body.get("keys") or []
    header = ("ID", "PREFIX", "NAME", "CREATED (UTC)", "LAST USED", "REVOKED")
    rows = [(k["id"], k["prefix"], k["name"], _stamp(k.get("createdAt")),
             _stamp(k.get("lastUsedAt")), _stamp(k.get("revokedAt"))) for k in keys]
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        out("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True))
            .rstrip())
    return OK


def _match(keys: list[dict[str, Any]], given: str) -> dict[str, Any]:
    """The one key whose id is ``given``, or whose prefix ``given`` starts (or a whole key)."""
    by_id = [k for k in keys if k["id"] == given]
    if by_id:
        return by_id[0]
    live = [k for k in keys if not k.get("revokedAt")]
    found = [k for k in live if given.startswith(k["prefix"]) or k["prefix"].startswith(given)]
    if not found:
        raise CliError(REFUSED, f"no live key with id or prefix '{given}' "
                       "(`promptpilot keys list` shows them)")
    if len(found) > 1:
        raise CliError(REFUSED, f"'{given}' matches {len(found)} keys: give the id",
                       [f"{k['id']}  {k['prefix']}  {k['name']}" for k in found])
    return found[0]


async def revoke(settings: Settings, args: argparse.Namespace) -> int:
    """`promptpilot keys revoke ID_OR_PREFIX`: refused on the next request it makes."""
    async with connect(settings, args) as api:
        _, body = await api.call("GET", "/api/keys")
        key = _match(body.get("keys") or [], args.key_id)
        _, body = await api.call("DELETE", f"/api/keys/{segment(key['id'])}")
    revoked = body["key"]
    out(f"revoked key {revoked['id']} ({revoked['prefix']}, {revoked['name']}) at "
        f"{_stamp(revoked.get('revokedAt'))} UTC")
    return OK
