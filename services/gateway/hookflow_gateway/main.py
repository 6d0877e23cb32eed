"""The gateway, on its own:
`hookflow gateway` (also `hookflow-gateway`, `python -m hookflow_gateway`)."""

from hookflow_gateway.app import create_app
from hookflow_shared.command import load_settings, run_command
from hookflow_shared.serve import announce, serve
from hookflow_shared.settings import GatewaySettings


async def serve_alone() -> None:
    settings = load_settings(GatewaySettings)
    port = settings.gateway_port
    await serve(
        [(create_app(settings), settings.bind, port)], ready=announce(settings, ("gateway", port))
    )


def main() -> None:
    run_command(serve_alone())
