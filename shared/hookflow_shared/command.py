"""What every command-line entry point shares (the `hookflow` command, and each service's own
`hookflow-<service>` / `python -m hookflow_<service>`): reading the settings, running until
stopped, and turning a startup failure into one clear line and a non-zero exit. The one place
where Hookflow exits a process."""

import asyncio
import sys
from collections.abc import Coroutine
from typing import Any

from pydantic import ValidationError

from hookflow_shared.errors import StartupError
from hookflow_shared.logs import configure_logging
from hookflow_shared.settings import CommonSettings


def load_settings[S: CommonSettings](kind: type[S]) -> S:
    """The settings from the environment (HOOKFLOW_*), with logging configured by them."""
    try:
        settings = kind()
    except ValidationError as error:
        problems = "; ".join(
            f"HOOKFLOW_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in error.errors()
        )
        raise StartupError(f"bad configuration: {problems}") from None
    configure_logging(settings)
    return settings


def new_event_loop() -> asyncio.AbstractEventLoop:
    """The event loop every service runs on (and the tests, see tests/conftest.py): asyncio's,
    with eager tasks. A task starts at once, in its creator's turn, and a coroutine that
    finishes without waiting (a delivery handled from memory, a publish queued) never goes
    through the loop's ready queue: fewer turns of the loop per webhook. Code that wants a
    task to wait for the next turn says so (shared.batching)."""
    loop = asyncio.new_event_loop()
    loop.set_task_factory(asyncio.eager_task_factory)
    return loop


def run_command(work: Coroutine[Any, Any, None]) -> None:
    """Run until done or stopped (Ctrl-C, SIGTERM); a startup failure exits with its message."""
    try:
        asyncio.run(work, loop_factory=new_event_loop)
    except KeyboardInterrupt:
        pass
    except StartupError as error:
        sys.exit(f"hookflow: {error}")
    except OSError as error:
        sys.exit(f"hookflow: {error} (is another process using the port? set HOOKFLOW_*_PORT)")
