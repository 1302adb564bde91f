"""Which network targets the http_request tool may reach (the SSRF guard).

Only globally routable unicast addresses pass. IPv6 forms that carry an IPv4 address
(IPv4-mapped, 6to4, Teredo) are judged by the address they carry, so ``::ffff:127.0.0.1``
is loopback. Hostnames are resolved with the event loop's ``getaddrinfo`` and every address
they resolve to must pass; the caller then connects to one of those vetted addresses, so a
second lookup cannot swap in a private one (DNS rebinding).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Callable

from temporalio.exceptions import ApplicationError

from schema.errors import ErrorType

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
ALLOW_PRIVATE_SETTING = "PROMPTPILOT_TOOLS__HTTP_ALLOW_PRIVATE"

_CHECKS: tuple[tuple[str, Callable[[IPAddress], bool]], ...] = (
    ("unspecified", lambda ip: ip.is_unspecified),
    ("loopback", lambda ip: ip.is_loopback),
    ("link-local", lambda ip: ip.is_link_local),
    ("multicast", lambda ip: ip.is_multicast),
    ("private", lambda ip: ip.is_private),
    ("reserved", lambda ip: ip.is_reserved),
    ("non-global", lambda ip: not ip.is_global),
)


def forbidden_reason(ip: IPAddress) -> str | None:
    """Why this address may not be reached (e.g. "loopback"), or None when it is public."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return forbidden_reason(ip.ipv4_mapped)
        embedded = ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is not None and (reason := forbidden_reason(embedded)):
            return reason
    for reason, check in _CHECKS:
        if check(ip):
            return reason
    return None


def _forbidden(host: str, detail: str) -> ApplicationError:
    return ApplicationError(
        f"refusing to reach {host!r}: {detail}; set {ALLOW_PRIVATE_SETTING}=true to allow "
        "private and local targets",
        {"host": host},
        type=ErrorType.TOOL_FORBIDDEN_TARGET,
        non_retryable=True,
    )


async def vetted_address(host: str, port: int) -> IPAddress:
    """A vetted public address for host (an IP literal or a name); raises TOOL_FORBIDDEN_TARGET."""
    try:
        candidates: list[IPAddress] = [ipaddress.ip_address(host)]
    except ValueError:
        candidates = await _resolve(host, port)
    for ip in candidates:
        if reason := forbidden_reason(ip):
            shown = "it is" if str(ip) == host else f"it resolves to {ip}, which is"
            raise _forbidden(host, f"{shown} a {reason} address")
    return candidates[0]


async def _resolve(host: str, port: int) -> list[IPAddress]:
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as err:
        permanent = err.errno in {socket.EAI_NONAME, getattr(socket, "EAI_NODATA", None)}
        raise ApplicationError(
            f"cannot resolve host {host!r}: {err.strerror}",
            {"host": host},
            type=ErrorType.TOOL_FAILED,
            non_retryable=permanent,
        ) from err
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        ip = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if ip not in addresses:
            addresses.append(ip)
    if not addresses:
        raise _forbidden(host, "it resolves to no address")
    return addresses
