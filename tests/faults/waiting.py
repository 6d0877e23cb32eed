"""Waiting for a condition, with a deadline and a sentence saying what did not happen."""

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable


async def wait_until(
    condition: Callable[[], bool | Awaitable[bool]], timeout: float, what: str
) -> float:
    """Poll `condition` (plain or async) until it holds; returns the seconds it took."""
    began = time.monotonic()
    while True:
        held = condition()
        if inspect.isawaitable(held):
            held = await held
        if held:
            return time.monotonic() - began
        if time.monotonic() - began > timeout:
            raise AssertionError(f"not within {timeout:g} s: {what}")
        await asyncio.sleep(0.02)
