"""The `hookflow` command: run the whole system, or one service, or a development MongoDB."""

import argparse
import asyncio
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import SecretStr

from hookflow_shared.command import load_settings, run_command
from hookflow_shared.crypto import new_key
from hookflow_shared.errors import StartupError
from hookflow_shared.settings import RunSettings

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
    from hookflow_config_api.app import create_app as config_api_app
    from hookflow_executor.app import create_app as executor_app
    from hookflow_gateway.app import create_app as gateway_app
    from hookflow_shared.serve import serve

    apps = [
        (factory(settings, storage=storage, broker=broker), settings.bind, port)
        for factory, port in (
            (config_api_app, settings.config_api_port),
            (executor_app, settings.executor_port),
            (gateway_app, settings.gateway_port),
        )
    ]
    await serve(apps, ready=lambda: print(_banner(settings, generated_token), flush=True))


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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="hookflow",
        description="Webhook-triggered workflows. Configured by HOOKFLOW_* environment variables.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("run", help="the whole system in one process (embedded defaults)")
    commands.add_parser("gateway", help="the webhook gateway alone (needs HOOKFLOW_BROKER_URL)")
    commands.add_parser("executor", help="one executor (needs HOOKFLOW_BROKER_URL)")
    commands.add_parser("config-api", help="the config API alone (needs HOOKFLOW_BROKER_URL)")
    commands.add_parser("secret-key", help="print a new HOOKFLOW_SECRET_KEY")
    mongo = commands.add_parser(
        "mongo", help="mongoeco's MongoDB-compatible server, for development and tests"
    )
    mongo.add_argument("--host", default="127.0.0.1")
    mongo.add_argument("--port", type=int, default=27017)
    mongo.add_argument(
        "--data", type=Path, help="keep the data in this SQLite file (default: memory)"
    )
    args = parser.parse_args(argv)
    if args.command == "run":
        run_command(_run_all())
    elif args.command == "secret-key":
        print(new_key())
    elif args.command == "mongo":
        run_command(_mongo(args.host, args.port, args.data))
    else:
        run_command(_run_one(args.command))


if __name__ == "__main__":
    main()
