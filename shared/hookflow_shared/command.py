"""What every command-line entry point shares (the `hookflow` command, and each service's own
`hookflow-<service>` / `python -m hookflow_<service>`): reading the settings, running until
stopped, and turning a startup failure into one clear line and a non-zero exit. The one place
where Hookflow exits a process."""

import asyncio
import sys
from collections.abc import Callable, Coroutine
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


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop where it is installed (not on Windows): the gateway spends most of
    its time in the loop's socket reads and writes, which uvloop does in C (measured in the
    benchmark: less CPU per webhook). None: asyncio's own loop."""
    try:
        import uvloop  # optional: absent where it cannot be built
    except ImportError:
        return None
    return uvloop.new_event_loop


def run_command(work: Coroutine[Any, Any, None]) -> None:
    """Run until done or stopped (Ctrl-C, SIGTERM); a startup failure exits with its message."""
    try:
        asyncio.run(work, loop_factory=event_loop_factory())
    except KeyboardInterrupt:
        pass
    except StartupError as error:
        sys.exit(f"hookflow: {error}")
    except OSError as error:
        sys.exit(f"hookflow: {error} (is another process using the port? set HOOKFLOW_*_PORT)")
