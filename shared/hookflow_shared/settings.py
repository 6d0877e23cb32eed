"""Settings: one class per service, read from HOOKFLOW_* environment variables."""

import re
from datetime import timedelta
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Annotated, Literal

from pydantic import SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

type IPNetwork = IPv4Network | IPv6Network

METADATA_NETWORKS: dict[IPNetwork, str] = {
    ip_network("169.254.0.0/16"): "link-local: cloud metadata",
    ip_network("fe80::/10"): "IPv6 link-local",
    ip_network("fd00:ec2::254/128"): "AWS metadata over IPv6",
    ip_network("fd00:ec2::23/128"): "AWS EKS Pod Identity over IPv6",
    ip_network("100.100.100.200/32"): "Alibaba Cloud metadata",
}
"""What request nodes may not reach unless an operator says otherwise: the cloud metadata
services, which hand out the machine's credentials to whoever asks from it."""


def parse_networks(value: str) -> tuple[IPNetwork, ...]:
    """Comma-separated CIDRs ("10.0.0.0/8, fd00::/8"; a bare address is one host). The word
    `default` stands for METADATA_NETWORKS, so a list can extend them."""
    networks: list[IPNetwork] = []
    for item in (part.strip() for part in value.split(",")):
        if item == "default":
            networks.extend(METADATA_NETWORKS)
        elif item:
            try:
                networks.append(_unmapped(ip_network(item)))
            except ValueError as error:
                raise ValueError(
                    f"{item!r} is not a network in CIDR notation, such as 10.0.0.0/8 ({error})"
                ) from None
    return tuple(networks)


def _unmapped(network: IPNetwork) -> IPNetwork:
    """::ffff:10.0.0.0/104 is 10.0.0.0/8: addresses are checked as IPv4 once unmapped."""
    mapped = network.network_address.ipv4_mapped if network.version == 6 else None
    if mapped is None or network.prefixlen < 96:
        return network
    return IPv4Network((mapped, network.prefixlen - 96))


_DURATION = re.compile(r"(\d+)\s*([dhms])")
_UNITS = {"d": "days", "h": "hours", "m": "minutes", "s": "seconds"}


def parse_duration(value: str) -> timedelta:
    """`30d`, `12h`, `90m`, `45s` (a number and a unit); a bare number is seconds."""
    text = value.strip().lower()
    if text.isdigit():
        return timedelta(seconds=int(text))
    found = _DURATION.fullmatch(text)
    if found is None:
        raise ValueError(f"{value!r} is not a duration: write a number and a unit, e.g. 30d, 12h")
    return timedelta(**{_UNITS[found.group(2)]: int(found.group(1))})


class CommonSettings(BaseSettings):
    """What every service reads: where the broker and the storage are, and how to log."""

    model_config = SettingsConfigDict(
        env_prefix="HOOKFLOW_", extra="ignore", use_attribute_docstrings=True
    )

    broker_url: SecretStr | None = None
    """RabbitMQ, amqp://...; unset means the in-process bus (only with `hookflow run`)."""
    mongodb_url: SecretStr | None = None
    """MongoDB, mongodb://...; unset means SQLite in data_dir."""
    mongodb_database: str = "hookflow"
    data_dir: Path = Path("data")
    namespace: str = "hookflow"
    """Prefix of every queue and exchange name, so several installations can share a broker."""
    secret_key: SecretStr | None = None
    """Fernet key(s) encrypting signing secrets at rest; comma-separated, the first encrypts."""
    publish_timeout: float = 5.0
    """Seconds to wait for the broker's confirm (a webhook then gets 503)."""
    retry_backoff: float = 0.5
    """Seconds before a failed delivery is handed back to the queue, doubling each time."""
    heartbeat_interval: float = 5.0
    """Seconds between a gateway's heartbeats (how the gateways share out rate limits, and
    how the config API knows which gateways must confirm a change)."""
    storage_timeout: float = 10.0
    """Seconds one storage call may take before it counts as failed (and is retried)."""
    bind: str = "127.0.0.1"
    """The address the HTTP servers listen on (0.0.0.0 in containers)."""
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["auto", "json", "console"] = "auto"
    execution_retention: Annotated[timedelta, NoDecode] = timedelta(days=30)
    """How long execution records are kept (`30d`, `12h`, `90m`): a TTL index on MongoDB, a
    periodic delete on SQLite."""

    @field_validator("execution_retention", mode="before")
    @classmethod
    def _retention(cls, value: object) -> object:
        retention = parse_duration(value) if isinstance(value, str) else value
        if isinstance(retention, timedelta) and retention <= timedelta(0):
            raise ValueError("must be longer than nothing, e.g. 30d")
        return retention


class GatewaySettings(CommonSettings):
    gateway_port: int = 8080
    max_body_bytes: int = 1024 * 1024
    """Default body limit of a trigger (413 above it); a trigger may set its own."""
    max_batch: int = 256
    """Most webhook runs carried by one broker message."""
    max_waiting_publishes: int = 4096
    """Webhooks one gateway lets wait for the broker; beyond that they get 503 at once."""
    publish_stall: float = 2.0
    """Seconds a publish may go unconfirmed before new webhooks get 503 at once instead of
    queueing behind a broker that stopped confirming (blocked, overloaded)."""
    body_timeout: float = 30.0
    """Seconds a caller may take to send its body (408 after that)."""
    rate_limit: float = 1000.0
    """Requests per second a trigger takes across all gateways, unless it sets its own."""
    rate_burst: int = 2000
    shutdown_grace_sync: float = 5.0
    """Seconds a stopping gateway lets sync callers wait for their reply before a 504."""
    refresh_interval: float = 30.0
    """Seconds between full reloads of the trigger cache (events keep it fresh in between)."""
    refused_log_level: Literal["debug", "info", "warning"] = "info"
    """The level of the one line logged per refused webhook (under HOOKFLOW_LOG_LEVEL=info,
    `debug` hides them); a broker refusing runs is always a warning."""


class ExecutorSettings(CommonSettings):
    executor_port: int = 8082
    prefetch: int = 32
    """Broker messages one executor holds unacknowledged at once."""
    shutdown_grace: float = 30.0
    """Seconds a stopping executor waits for the runs it holds before handing them back."""
    request_denied_networks: Annotated[tuple[IPNetwork, ...], NoDecode] = tuple(METADATA_NETWORKS)
    """Networks request nodes never connect to; empty allows the metadata services."""
    request_allowed_networks: Annotated[tuple[IPNetwork, ...] | None, NoDecode] = None
    """Set: the only networks request nodes connect to (minus the denied ones); empty, none.
    Unset: every network not denied."""

    @field_validator("request_denied_networks", "request_allowed_networks", mode="before")
    @classmethod
    def _networks(cls, value: object) -> object:
        if isinstance(value, list | tuple):  # given in code rather than by the environment
            value = ",".join(map(str, value))
        return parse_networks(value) if isinstance(value, str) else value


class ConfigApiSettings(CommonSettings):
    config_api_port: int = 8081
    admin_token: SecretStr | None = None
    public_url: str = "http://127.0.0.1:8080"
    propagation_timeout: float = 5.0
    """Seconds a change waits for every gateway alive to confirm it serves it."""


class RunSettings(GatewaySettings, ExecutorSettings, ConfigApiSettings):
    """`hookflow run`: the three services in one process."""
