"""Which webhook URLs the API will call: http or https, to public addresses only (unless allowed for local use).

A name is resolved and every address it has must be public; the sender then connects to one of exactly those
addresses (the name still goes in `Host` and in TLS's SNI and certificate check), so a name that resolves to a
public address when checked and to an internal one a moment later never reaches the internal one.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit


class UnsafeUrl(ValueError):
    """The URL is not one the API calls; the message says why."""


@dataclass(frozen=True)
class Target:
    url: str
    scheme: str
    host: str
    port: int
    addresses: list[str]
    """Checked addresses to connect to, in resolver order."""

    def url_for(self, address: str) -> str:
        """The URL with `address` in place of the host name."""
        parts = urlsplit(self.url)
        netloc = f"[{address}]:{self.port}" if ":" in address else f"{address}:{self.port}"
        path = parts.path or "/"
        return f"{self.scheme}://{netloc}{path}" + (f"?{parts.query}" if parts.query else "")


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def check_url(url: str, *, allow_private: bool, resolve: bool = True) -> Target:
    """The URL's target if it may be called; raises `UnsafeUrl` with the reason otherwise."""
    if len(url) > 2048:
        raise UnsafeUrl("the URL is longer than 2048 characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:
        raise UnsafeUrl(f"not a URL: {e}") from e
    if parts.scheme not in ("http", "https"):
        raise UnsafeUrl("only http and https URLs are called")
    if not parts.hostname:
        raise UnsafeUrl("the URL has no host")
    if parts.username or parts.password:
        raise UnsafeUrl("credentials in the URL are not sent; put a secret in its path or query instead")
    host = parts.hostname
    port = port or (443 if parts.scheme == "https" else 80)
    if not resolve:
        return Target(url, parts.scheme, host, port, [])
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as e:
        raise UnsafeUrl(f"{host} does not resolve: {e}") from e
    addresses = list(dict.fromkeys(str(info[4][0]) for info in found))
    if not allow_private:
        private = [a for a in addresses if not _public(a)]
        if private:
            raise UnsafeUrl(
                f"{host} resolves to {', '.join(private)}: loopback, private, link-local and reserved addresses are "
                "refused (SCRIBEFLOW_WEBHOOKS__ALLOW_PRIVATE_URLS=true allows them, for local use)"
            )
    return Target(url, parts.scheme, host, port, addresses)
