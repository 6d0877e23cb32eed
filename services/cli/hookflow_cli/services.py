"""The commands that run Hookflow: the whole system, one service, or a development MongoDB.
Each lists in its --help the environment variables its settings class reads."""

import asyncio
import os
import secrets
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from pydantic import SecretStr

from hookflow_cli.envhelp import environment_help
from hookflow_shared.errors import StartupError
from hookflow_shared.settings import (
    ConfigApiSettings,
    ExecutorSettings,
    GatewaySettings,
    RunSettings,
)

if TYPE_CHECKING:
    from hookflow_shared.messaging import Broker
    from hookflow_shared.storage import Storage


def _kept(given: SecretStr | None, path: Path, make: Callable[[], str]) -> tuple[str, bool]:
    """A secret for `hookflow run`: the configured one, else the one kept in the data dir, else
    a new one kept there (readable by the owner only, so a restart keeps it). The flag says
    whether it came from the file."""
    if given is not None:
        return given.get_secret_value(), False
    if path.exists():
        return path.read_text().strip(), True
    value = make()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(value + "\n")
    return value, True


async def _run_all() -> None:
    from hookflow_shared.command import load_settings
    from hookflow_shared.crypto import new_key
    from hookflow_shared.resources import opened_broker, opened_storage

    settings = load_settings(RunSettings)
    token, generated = _kept(
        settings.admin_token, settings.data_dir / "admin-token", lambda: secrets.token_urlsafe(24)
    )
    settings.admin_token = SecretStr(token)
    key, _ = _kept(settings.secret_key, settings.data_dir / "secret-key", new_key)
    settings.secret_key = SecretStr(key)
    async with opened_storage(settings) as storage:
        installation = await storage.installation_id()
        async with opened_broker(settings, installation=installation, embedded=True) as broker:
            await _serve_all(settings, storage, broker, token if generated else None)


async def _serve_all(
    settings: RunSettings, storage: "Storage", broker: "Broker", generated_token: str | None
) -> None:
    from prometheus_client import CollectorRegistry

    from hookflow_config_api.app import create_app as config_api_app
    from hookflow_executor.app import create_app as executor_app
    from hookflow_gateway.app import create_app as gateway_app
    from hookflow_shared.serve import announce, serve

    registry = CollectorRegistry()  # one for the three: each port's /metrics shows all of it
    services = (
        ("config-api", config_api_app, settings.config_api_port),
        ("executor", executor_app, settings.executor_port),
        ("gateway", gateway_app, settings.gateway_port),
    )
    apps = [
        (factory(settings, storage=storage, broker=broker, registry=registry), settings.bind, port)
        for _, factory, port in services
    ]
    logged = announce(settings, *((name, port) for name, _, port in services))

    def ready() -> None:
        logged()
        print(_banner(settings, generated_token), flush=True)

    await serve(apps, ready=ready)


def _banner(settings: RunSettings, generated_token: str | None) -> str:
    where = (
        "MongoDB" if settings.mongodb_url else f"SQLite in {settings.data_dir / 'hookflow.sqlite3'}"
    )
    bus = "RabbitMQ" if settings.broker_url else "the in-process bus"
    host = settings.bind
    lines = [
        f"Hookflow is running on {bus}, storing in {where}.",
        f"  gateway     {settings.public_url.rstrip('/')}/api/webhook:trigger/<key>",
        f"  config API  http://{host}:{settings.config_api_port}/api/workflows",
        f"  executor    http://{host}:{settings.executor_port}/healthz",
    ]
    console = f"http://{host}:{settings.config_api_port}/"
    if generated_token is not None:
        console += f"#token={generated_token}"
    lines.append(f"  console     {console}")
    if generated_token is not None:
        lines += [
            f"  admin token {generated_token}",
            f"              (kept in {settings.data_dir / 'admin-token'}; "
            "set HOOKFLOW_ADMIN_TOKEN to choose your own)",
            f"  export HOOKFLOW_ADMIN_TOKEN={generated_token}",
        ]
    lines.append("Stop with Ctrl-C.")
    return "\n".join(lines)


async def _run_one(service: str) -> None:
    """One service on its own (its distribution may be all this image has)."""
    if service == "gateway":
        from hookflow_gateway.main import serve_alone
    elif service == "executor":
        from hookflow_executor.main import serve_alone
    else:
        from hookflow_config_api.main import serve_alone
    await serve_alone()


async def _mongo(host: str, port: int, data: Path | None) -> None:
    try:
        from mongoeco.engines.sqlite import SQLiteEngine
        from mongoeco.wire import AsyncMongoEcoProxyServer
    except ImportError:
        raise StartupError(
            "hookflow mongo needs mongoeco, a development dependency: pip install mongoeco"
        ) from None

    engine = SQLiteEngine(str(data)) if data else None
    async with AsyncMongoEcoProxyServer(host=host, port=port, engine=engine) as server:
        print(
            f"mongoeco's MongoDB-compatible server at {server.address.uri} "
            f"({'SQLite file ' + str(data) if data else 'in memory'}); for development and tests, "
            "not production.\nexport HOOKFLOW_MONGODB_URL='" + server.address.uri + "'",
            flush=True,
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        import signal

        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()


def run_command(
    work: Coroutine[Any, Any, None],
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None,
) -> None:
    """hookflow_shared.command's, imported when a service starts: the admin commands do
    without its logging stack, and start faster. `loop_factory`: the services' loop when None."""
    from hookflow_shared.command import new_event_loop
    from hookflow_shared.command import run_command as run_until_stopped

    run_until_stopped(work, loop_factory=loop_factory or new_event_loop)


def run() -> None:
    """The whole system in one process (embedded defaults: the in-process bus and SQLite)."""
    run_command(_run_all())


def gateway() -> None:
    """The webhook gateway alone (needs HOOKFLOW_BROKER_URL)."""
    run_command(_run_one("gateway"))


def executor() -> None:
    """One executor (needs HOOKFLOW_BROKER_URL)."""
    run_command(_run_one("executor"))


def config_api() -> None:
    """The config API alone (needs HOOKFLOW_BROKER_URL)."""
    run_command(_run_one("config-api"))


def secret_key() -> None:
    """Print a new HOOKFLOW_SECRET_KEY."""
    from hookflow_shared.crypto import new_key

    print(new_key())


def mongo(
    host: Annotated[str, typer.Option(help="The address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="The port (0: any free one).")] = 27017,
    data: Annotated[
        Path | None,
        typer.Option(
            help="Keep the data in this SQLite file (default: memory).", show_default=False
        ),
    ] = None,
) -> None:
    """mongoeco's MongoDB-compatible server, for development and tests."""
    # mongoeco's server closes with asyncio's Server.abort_clients, which uvloop's lacks.
    run_command(_mongo(host, port, data), loop_factory=asyncio.new_event_loop)


def add_to(app: typer.Typer) -> None:
    """The service commands, each with the variables of its settings class in its help."""
    for command, settings in (
        (run, RunSettings),
        (gateway, GatewaySettings),
        (executor, ExecutorSettings),
        (config_api, ConfigApiSettings),
    ):
        app.command(epilog=environment_help(settings))(command)
    app.command()(secret_key)
    app.command()(mongo)
