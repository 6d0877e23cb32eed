"""The config API, on its own:
`hookflow config-api` (also `hookflow-config-api`, `python -m hookflow_config_api`)."""

from hookflow_config_api.app import create_app
from hookflow_shared.command import load_settings, run_command
from hookflow_shared.serve import announce, serve
from hookflow_shared.settings import ConfigApiSettings


async def serve_alone() -> None:
    settings = load_settings(ConfigApiSettings)
    port = settings.config_api_port
    await serve(
        [(create_app(settings), settings.bind, port)],
        ready=announce(settings, ("config-api", port)),
    )


def main() -> None:
    run_command(serve_alone())
