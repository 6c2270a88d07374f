"""A client's address: the peer, or the `X-Forwarded-For` client when the peer is a proxy of
`TUIZ_TRUSTED_PROXIES` (and only then: anyone else could write any address in that header)."""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import IPv4Network, IPv6Network, ip_address

Networks = Sequence[IPv4Network | IPv6Network]


def client_address(peer: str | None, forwarded: str | None, trusted: Networks) -> str | None:
    """The peer, or the nearest `X-Forwarded-For` hop that is not one of our proxies."""
    if not peer or not trusted or not forwarded:
        return str(peer) if peer else None

    def is_trusted(addr: str) -> bool:
        try:
            ip = ip_address(addr)
        except ValueError:
            return False
        return any(ip in net for net in trusted)

    if not is_trusted(peer):
        return str(peer)
    # Walk from the nearest hop back; the first address not one of our proxies is the client.
    hops = [h.strip() for h in str(forwarded).split(",") if h.strip()]
    for hop in reversed(hops):
        if not is_trusted(hop):
            try:
                return str(ip_address(hop))
            except ValueError:
                return str(peer)
    return str(peer)
