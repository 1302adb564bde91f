"""Which network targets the http_request tool may reach (the SSRF guard).

Only globally routable unicast addresses pass: the standard library's ``is_global``, and the
IANA special-purpose registry on top of it, because Python before 3.12.4 calls some of it
global (``192.0.0.8`` in the IETF protocol block, ``64:ff9b::/96`` NAT64 in front of any IPv4
address). IPv6 forms that carry an IPv4 address (IPv4-mapped, NAT64, 6to4, Teredo) are judged
by the address they carry, so ``::ffff:127.0.0.1`` is loopback. Legacy IPv4 spellings
(``2130706433``, ``0177.0.0.1``, ``0x7f.1``) are read as the address they name, as the
resolver would. Hostnames are resolved with the event loop's ``getaddrinfo`` and every address
they resolve to must pass; the caller then connects to one of those vetted addresses, so a
second lookup cannot swap in a private one (DNS rebinding).
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Callable
from urllib.parse import urlsplit

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
# The IANA special-purpose blocks not globally reachable (RFC 6890 and successors), as Python
# 3.13 has them; 3.11 misses the first ones. 192.0.0.9 and .10 are global anycast, but no
# tool has business there: the whole /24 is refused.
_SPECIAL_PURPOSE = tuple(ipaddress.ip_network(block) for block in (
    "192.0.0.0/24", "198.18.0.0/15", "192.88.99.0/24", "100.64.0.0/10", "0.0.0.0/8",
    "240.0.0.0/4", "255.255.255.255/32", "192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24",
    "64:ff9b:1::/48", "100::/64", "2001::/23", "2001:db8::/32", "3fff::/20", "5f00::/16",
))
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_LEGACY_IPV4 = re.compile(r"(?:0[xX][0-9a-fA-F]*|[0-9]+)(?:\.(?:0[xX][0-9a-fA-F]*|[0-9]+)){0,3}")


def forbidden_reason(ip: IPAddress) -> str | None:
    """Why this address may not be reached (e.g. "loopback"), or None when it is public."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return forbidden_reason(ip.ipv4_mapped)
        if ip in _NAT64:
            return forbidden_reason(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        embedded = ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is not None and (reason := forbidden_reason(embedded)):
            return reason
    for reason, check in _CHECKS:
        if check(ip):
            return reason
    if any(ip.version == block.version and ip in block for block in _SPECIAL_PURPOSE):
        return "special-purpose (non-global)"
    return None


def literal_address(host: str) -> IPAddress | None:
    """The address a host names without DNS: an IP literal, or a legacy IPv4 spelling
    (decimal, octal, hex, shortened) read the way ``inet_aton`` and the resolver read it."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    if _LEGACY_IPV4.fullmatch(host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def literal_refusal(url: str) -> str | None:
    """Why a URL whose host is an address (in any spelling) may not be reached, or None: the
    check a definition gets when it is saved (a name is only judged at call time, resolved)."""
    try:  # urllib, not httpx: httpx refuses some legacy spellings this must still judge
        host = urlsplit(url).hostname
    except ValueError:
        return None
    ip = literal_address(host) if host else None
    reason = forbidden_reason(ip) if ip is not None else None
    if reason is None:
        return None
    return (f"refusing to reach {host!r}: it is a {reason} address; set "
            f"{ALLOW_PRIVATE_SETTING}=true to allow private and local targets")


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
    literal = literal_address(host)
    candidates = [literal] if literal is not None else await _resolve(host, port)
    for ip in candidates:
        if reason := forbidden_reason(ip):
            shown = "it is" if literal is not None else f"it resolves to {ip}, which is"
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
