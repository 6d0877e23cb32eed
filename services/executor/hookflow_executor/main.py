"""One executor, on its own:
`hookflow executor` (also `hookflow-executor`, `python -m hookflow_executor`)."""

from hookflow_executor.app import create_app
from hookflow_shared.command import load_settings, run_command
from hookflow_shared.serve import announce, serve
from hookflow_shared.settings import ExecutorSettings


async def serve_alone() -> None:
    settings = load_settings(ExecutorSettings)
    port = settings.executor_port
    await serve(
        [(create_app(settings), settings.bind, port)], ready=announce(settings, ("executor", port))
    )


def main() -> None:
    run_command(serve_alone())
