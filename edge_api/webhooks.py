"""Webhook URLs at the edge: https to a public host, so a job's events cannot be aimed inside our network (SSRF)."""

from __future__ import annotations

import ipaddress
import re
import urllib.parse

from gpu_worker.protocol import InvalidRequest

# A last label of digits or hex is no DNS name: resolvers read "127.1", "2130706433" or "0x7f.1" as IPv4.
_NUMERIC_LABEL_RE = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")


def check_webhook_url(raw: str, *, local: bool = False) -> None:
    """An https URL to a public host (a DNS name or a global IP), so job events cannot be aimed inside our network.

    `local` (ALLOW_HTTP_WEBHOOKS: the local stack and tests) also allows http and loopback receivers; private,
    link-local (169.254.169.254), multicast, reserved and unspecified addresses are refused either way. The
    worker checks the address the name resolves to when it sends.
    """

    def invalid(why: str) -> InvalidRequest:
        return InvalidRequest(f"`webhook_url` {why}.", param="webhook_url", code="invalid_webhook_url")

    try:
        url = urllib.parse.urlsplit(raw)
        host, _ = url.hostname, url.port  # .port raises ValueError for a bad port
    except ValueError:
        raise invalid("is not a valid URL") from None
    if url.scheme not in (("https", "http") if local else ("https",)):
        raise invalid("must be an https:// URL")
    if not host or url.username or url.password:
        raise invalid("must name a host, without credentials")
    host = host.rstrip(".").lower()
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is None:
        labels = host.split(".")
        if not host or "" in labels or _NUMERIC_LABEL_RE.match(labels[-1]):
            raise invalid("must name a DNS host or an IP address in standard form")
        if labels[-1] == "localhost" and not local:
            raise invalid("must name a public host, not localhost")
        return
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_loopback and local:
        return
    if (address.is_loopback or address.is_private or address.is_link_local or address.is_multicast
            or address.is_reserved or address.is_unspecified or not address.is_global):  # fmt: skip
        raise invalid(f"must name a public host; {address} is not a global address")
