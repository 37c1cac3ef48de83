"""The address guard of outgoing webhooks: which urls the server may call, and where exactly.

Always: ``http`` or ``https`` with a host. With ``--require-auth`` (unless
``WEBHOOK_ALLOW_PRIVATE=1``) the host must resolve only to public addresses: loopback, private,
link-local, multicast, unspecified, reserved and shared addresses are refused, IPv4-mapped
IPv6 and 6to4/Teredo addresses are judged by the IPv4 address inside, and an IPv4 address
written any other way than four decimal numbers (``2130706433``, ``0x7f.1``, ``0177.0.0.1``) is
refused before any lookup. The sender connects to the address that was checked — the url's
host goes in the ``Host`` header and as the TLS server name — so a second DNS answer cannot
point the request elsewhere.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit, urlunsplit

from resolvers.errors import BadInput

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
#: a host made only of the characters of numeric IPv4 forms (decimal, octal, hex, shortened)
_NUMERIC = re.compile(r"^(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+)){0,3}\.?$", re.IGNORECASE)


class UrlRefused(ValueError):
    """A url the guard does not let the server call; the message says why (without secrets)."""


def split(url: str) -> SplitResult:
    """The parts of an ``http``/``https`` url with a host; else ``UrlRefused``."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError as error:
        raise UrlRefused(f"not a url: {error}") from None
    if parts.scheme not in ("http", "https"):
        raise UrlRefused("only http and https urls can receive webhooks")
    if not parts.hostname:
        raise UrlRefused("the url has no host")
    if any(c.isspace() for c in url):
        raise UrlRefused("the url contains whitespace")
    return parts


def refusal(address: Address) -> str | None:
    """Why the server must not call ``address``, or None for a public address."""
    if isinstance(address, ipaddress.IPv6Address):
        inner = address.ipv4_mapped or address.sixtofour or (address.teredo[1] if address.teredo else None)
        if address.ipv4_mapped is not None:
            return "an IPv4-mapped IPv6 address"
        if inner is not None and refusal(inner):
            return f"an IPv6 address wrapping {inner}"
    for reason, flagged in (
        ("a loopback", address.is_loopback), ("an unspecified", address.is_unspecified),
        ("a link-local", address.is_link_local), ("a multicast", address.is_multicast),
        ("a private", address.is_private), ("a reserved", address.is_reserved),
    ):  # fmt: skip
        if flagged:
            return f"{reason} address"
    if not address.is_global:
        return "not a public address"
    return None


def literal(host: str) -> Address | None:
    """The address a host names literally, or None for a name. Numeric IPv4 forms other than
    dotted decimal are ``UrlRefused`` (resolvers read them as addresses; people do not)."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    if _NUMERIC.match(host):
        raise UrlRefused(f"{host!r} is an IPv4 address in a non-standard form; write it as four decimal numbers")
    return None


async def resolve(host: str, port: int) -> list[Address]:
    """Every address ``host`` resolves to (a literal: itself)."""
    found = literal(host)
    if found is not None:
        return [found]
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as error:
        raise UrlRefused(f"the host {host!r} does not resolve ({error.strerror or error})") from None
    addresses = list(dict.fromkeys(ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos))
    if not addresses:
        raise UrlRefused(f"the host {host!r} does not resolve")
    return addresses


@dataclass(frozen=True)
class Target:
    """Where to send a request: the url to connect to, and the headers/extensions that keep the
    url's own host for HTTP and TLS."""

    url: str
    headers: dict[str, str]
    extensions: dict[str, str]


class UrlGuard:
    """Checks webhook urls; ``active`` under ``--require-auth`` unless private ones are allowed."""

    def __init__(self, *, require_auth: bool, allow_private: bool) -> None:
        self.active = require_auth and not allow_private

    async def check(self, url: str) -> None:
        """For create and update: ``BadInput`` (``BAD_USER_INPUT``) naming what is wrong."""
        try:
            await self.target(url)
        except UrlRefused as refused:
            raise BadInput(f"Cannot send webhooks to this url: {refused}", field="url") from None

    async def target(self, url: str) -> Target:
        """Where a request to ``url`` goes; ``UrlRefused`` if it must not. Inactive, the url
        itself (httpx resolves it); active, the first checked address of its host."""
        parts = split(url)
        if not self.active:
            return Target(url, {}, {})
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        addresses = await resolve(host, port)
        for address in addresses:
            reason = refusal(address)
            if reason is not None:
                raise UrlRefused(f"{host} resolves to {reason} ({address})")
        address = addresses[0]
        shown = f"[{address}]" if address.version == 6 else str(address)
        netloc = f"{shown}:{parts.port}" if parts.port else shown
        host_header = parts.netloc.rpartition("@")[2]
        extensions = {} if literal(host) is not None else {"sni_hostname": host}
        return Target(urlunsplit(parts._replace(netloc=netloc)), {"host": host_header}, extensions)


def shown(url: str) -> str:
    """A url as logs may show it: scheme, host, port and path; no credentials, no query."""
    try:
        parts = urlsplit(url)
        return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))
    except ValueError:
        return "<unreadable url>"
