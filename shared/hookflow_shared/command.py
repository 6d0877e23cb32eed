"""What every command-line entry point shares (the `hookflow` command, and each service's own
`hookflow-<service>` / `python -m hookflow_<service>`): reading the settings, running until
stopped, and turning a startup failure into one clear line and a non-zero exit. The one place
where Hookflow exits a process."""

import asyncio
import contextvars
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from pydantic import ValidationError

try:
    import uvloop
except ImportError:  # not built for this platform (Windows)
    uvloop = None  # type: ignore[assignment]

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
    """The event loop every service runs on (and the tests, see tests/conftest.py, and the
    benchmark's bare handler): uvloop's (libuv), with eager tasks.

    uvloop does the loop's own work (polling, callbacks, socket reads and writes) in C: about
    a tenth less CPU a webhook for the gateway and a run for the executor (README,
    Performance). asyncio's loop stands in where uvloop is not installed (it has no Windows
    build).

    Eager tasks: a task starts at once, in its creator's turn, and a coroutine that finishes
    without waiting (a delivery handled from memory, a publish queued) never goes through the
    loop's ready queue: fewer turns of the loop per webhook. Code that wants a task to wait
    for the next turn says so (shared.batching)."""
    loop: asyncio.AbstractEventLoop = (
        uvloop.new_event_loop() if uvloop is not None else asyncio.new_event_loop()
    )
    loop.set_task_factory(_eager_task)
    return loop


def _eager_task(
    loop: asyncio.AbstractEventLoop,
    coro: Coroutine[Any, Any, Any],
    *,
    name: str | None = None,
    context: contextvars.Context | None = None,
    eager_start: bool | None = None,
) -> asyncio.Task[Any]:
    """asyncio.eager_task_factory, taking the `eager_start` that uvloop passes on (and
    Python 3.13's factory refuses)."""
    return asyncio.Task(coro, loop=loop, name=name, context=context, eager_start=True)


def run_command(
    work: Coroutine[Any, Any, None],
    *,
    loop_factory: Callable[[], asyncio.AbstractEventLoop] = new_event_loop,
) -> None:
    """Run until done or stopped (Ctrl-C, SIGTERM); a startup failure exits with its message."""
    try:
        asyncio.run(work, loop_factory=loop_factory)
    except KeyboardInterrupt:
        pass
    except StartupError as error:
        sys.exit(f"hookflow: {error}")
    except OSError as error:
        sys.exit(f"hookflow: {error} (is another process using the port? set HOOKFLOW_*_PORT)")
