"""Settings: one class per service, read from HOOKFLOW_* environment variables."""

from pathlib import Path
from typing import Literal

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class CommonSettings(BaseSettings):
    """What every service reads: where the broker and the storage are, and how to log."""

    model_config = SettingsConfigDict(env_prefix="HOOKFLOW_", extra="ignore")

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
    bind: str = "127.0.0.1"
    """The address the HTTP servers listen on (0.0.0.0 in containers)."""
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["auto", "json", "console"] = "auto"


class GatewaySettings(CommonSettings):
    gateway_port: int = 8080
    max_body_bytes: int = 1024 * 1024
    """Default body limit of a trigger (413 above it); a trigger may set its own."""
    body_timeout: float = 30.0
    """Seconds a caller has to send its body once the headers are in (408 after that)."""
    max_batch: int = 256
    """Most webhook runs carried by one broker message."""
    rate_limit: float = 1000.0
    """Requests per second a trigger takes across all gateways, unless it sets its own."""
    rate_burst: int = 2000
    heartbeat_interval: float = 5.0
    """Seconds between a gateway's heartbeats (how the gateways share out rate limits)."""
    shutdown_grace_sync: float = 5.0
    """Seconds a stopping gateway lets sync callers wait for their reply before a 504."""
    refresh_interval: float = 30.0
    """Seconds between full reloads of the trigger cache (events keep it fresh in between)."""


class ExecutorSettings(CommonSettings):
    executor_port: int = 8082
    prefetch: int = 32
    """Broker messages one executor holds unacknowledged at once."""
    shutdown_grace: float = 30.0
    """Seconds a stopping executor waits for the runs it holds before handing them back."""


class ConfigApiSettings(CommonSettings):
    config_api_port: int = 8081
    admin_token: SecretStr | None = None
    public_url: str = "http://127.0.0.1:8080"


class RunSettings(GatewaySettings, ExecutorSettings, ConfigApiSettings):
    """`hookflow run`: the three services in one process."""
