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
    header = ("ID", "PREFIX", "NAME", "CREATED (UTC)", "REVOKED (UTC)")
    rows = [(k["id"], k["prefix"], k["name"], _stamp(k.get("createdAt")),
             _stamp(k.get("revokedAt"))) for k in keys]
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        out("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True))
            .rstrip())
    return OK


def _match(keys: list[dict[str, Any]], given: str) -> dict[str, Any]:
    """The one key ``given`` names: by id; else among live keys by prefix as `keys list`
    shows it, by a whole generated key (its prefix, as the server cuts it), or by the start of a
    prefix. Several keys at the first rule that matches any: refused, listing them."""
    from store.keys import prefix_of

    live = [k for k in keys if not k.get("revokedAt")]
    rules = [
        [k for k in keys if k["id"] == given],
        [k for k in live if k["prefix"] == given],
        # A whole generated key (~50 characters; a prefix is at most 12) names its prefix.
        [k for k in live if len(given) > 16 and k["prefix"] == prefix_of(given)],
        [k for k in live if k["prefix"].startswith(given)],
    ]
    found = next((rule for rule in rules if rule), [])
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
