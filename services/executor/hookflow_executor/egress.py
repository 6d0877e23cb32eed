"""Where request nodes may connect. A workflow names any URL it likes; the executor's HTTP
client connects only to addresses outside HOOKFLOW_REQUEST_DENIED_NETWORKS (by default the
cloud metadata services, which hand the machine's credentials to whoever asks from it) and,
when it is set, inside HOOKFLOW_REQUEST_ALLOWED_NETWORKS.

The check sits in the client's connector, on two public aiohttp hooks that share one policy:

- The socket factory (`TCPConnector(socket_factory=...)`) is the guarantee. aiohttp creates
  the socket of every connection it opens with it, given the address that socket is then
  connected to: a hostname's resolved address (fresh or from the DNS cache), an IP literal
  (aiohttp skips the resolver for those), every hop of a redirect (each is a new request on
  the same connector), a proxy's address if one were set (the session reads no proxy from
  the environment). Checking the very address connected to leaves no gap between check and
  use for DNS rebinding to slip through, and a refusal costs no packet and no timeout.
- The resolver filters what DNS answers, so that a hostname with some permitted addresses
  connects to those, and one with none fails once, naming the hostname, rather than with a
  refused socket per address.

Peers do the same at the same place: Go's SSRF guards (code.dny.dev/ssrf, safedialer) check
in the dialer's Control hook, advocate in its connection class after resolving; n8n keeps
comma-separated CIDR lists (N8N_SSRF_BLOCKED_IP_RANGES, with `default` to extend them).
"""

import errno
import socket
from dataclasses import dataclass
from ipaddress import IPv6Address, ip_address

from aiohttp import AddrInfoType, ClientSession, TCPConnector
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

from hookflow_shared.settings import METADATA_NETWORKS, ExecutorSettings, IPNetwork

DENIED_SETTING = "HOOKFLOW_REQUEST_DENIED_NETWORKS"
ALLOWED_SETTING = "HOOKFLOW_REQUEST_ALLOWED_NETWORKS"


class AddressRefused(OSError):
    """A connection the networks settings forbid, refused before any packet is sent. An
    OSError, so aiohttp reports it as it reports a connection that failed."""

    def __init__(self, message: str) -> None:
        super().__init__(errno.EACCES, message)
        self.message = message

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True, slots=True)
class NetworkPolicy:
    denied: tuple[IPNetwork, ...]
    allowed: tuple[IPNetwork, ...] | None = None
    """None: every network not denied."""

    @classmethod
    def of(cls, settings: ExecutorSettings) -> "NetworkPolicy":
        return cls(settings.request_denied_networks, settings.request_allowed_networks)

    def refusal(self, host: str) -> str | None:
        """Why a connection to `host`, an IP address, is refused; None when it may be made."""
        try:
            address = ip_address(host)
        except ValueError:
            # Not one of the addresses a resolver gives: an odd literal such as 0251.0.0.1,
            # which the system would read as octal. Refused rather than guessed at.
            return "is not an IP address in canonical form"
        if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped  # ::ffff:169.254.169.254 reaches 169.254.169.254
        for network in self.denied:
            if address in network:
                return f"is in a denied network ({_described(network)}); {DENIED_SETTING} decides"
        if self.allowed is not None and not any(address in network for network in self.allowed):
            allowed = ", ".join(map(str, self.allowed)) or "it is empty"
            return f"is not in an allowed network ({allowed}); {ALLOWED_SETTING} decides"
        return None

    def open_socket(self, addr_info: AddrInfoType) -> socket.socket:
        """The connector's socket factory: the socket for a permitted address, else
        AddressRefused."""
        family, kind, proto, _, address = addr_info
        host = str(address[0])
        reason = self.refusal(host)
        if reason is not None:
            raise AddressRefused(f"{host} {reason}")
        return socket.socket(family, kind, proto)


def _described(network: IPNetwork) -> str:
    label = METADATA_NETWORKS.get(network)
    return f"{network}, {label}" if label else str(network)


class PolicyResolver(AbstractResolver):
    """The system's resolver, answering only the addresses the policy permits."""

    def __init__(self, policy: NetworkPolicy) -> None:
        self._policy = policy
        self._resolver = ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        answers = await self._resolver.resolve(host, port, family)
        permitted = [a for a in answers if self._policy.refusal(a["host"]) is None]
        if permitted or not answers:
            return permitted
        first = answers[0]["host"]
        others = f" (of {len(answers)} addresses, none permitted)" if len(answers) > 1 else ""
        reason = self._policy.refusal(first)
        raise AddressRefused(f"{host} resolves to {first}{others}, which {reason}")

    async def close(self) -> None:
        await self._resolver.close()


def request_session(settings: ExecutorSettings) -> ClientSession:
    """The executor's HTTP client for request nodes, held to the settings' networks. Made
    inside the running event loop; closing it closes its connector."""
    policy = NetworkPolicy.of(settings)
    connector = TCPConnector(resolver=PolicyResolver(policy), socket_factory=policy.open_socket)
    return ClientSession(connector=connector, headers={"User-Agent": "hookflow"})
