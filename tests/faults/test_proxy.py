"""The fault proxy does what each mode says, in front of a real echo server."""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

import pytest

from tests.faults.proxy import FaultProxy, Mode

pytestmark = pytest.mark.faults


@pytest.fixture
async def echo() -> AsyncIterator[tuple[int, list[bytes]]]:
    """An echo server on a free port; the list holds what it received."""
    received: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(1024):
            received.append(data)
            writer.write(data)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1], received
    server.close()
    await server.wait_closed()


async def exchange(port: int, data: bytes, timeout: float = 0.5) -> bytes:
    """Send `data` on a new connection and read the answer (b"" when the connection was
    closed or reset instead)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        return await asyncio.wait_for(reader.read(1024), timeout)
    except ConnectionResetError:
        return b""
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def test_each_mode(echo: tuple[int, list[bytes]], proxy: Callable[..., FaultProxy]) -> None:
    port, received = echo
    fault = proxy(f"tcp://127.0.0.1:{port}", port)
    assert await exchange(fault.port, b"pass") == b"pass"

    fault.set_mode(Mode.STALL)
    with pytest.raises(TimeoutError):
        await exchange(fault.port, b"stalled")
    assert b"stalled" not in received, "nothing reaches the target"

    fault.set_mode(Mode.ONE_WAY)
    with pytest.raises(TimeoutError):
        await exchange(fault.port, b"one way")
    assert b"one way" in received, "the target got it; the answer was held"

    fault.set_mode(Mode.CLOSE)
    assert await exchange(fault.port, b"closed") == b""  # accepted, then closed (or reset)

    fault.set_mode(Mode.REFUSE)
    with pytest.raises(ConnectionRefusedError):
        await exchange(fault.port, b"refused")

    fault.set_mode(Mode.PASS)
    assert await exchange(fault.port, b"again") == b"again"


async def test_a_stalled_connection_flows_again_when_healed(
    echo: tuple[int, list[bytes]], proxy: Callable[..., FaultProxy]
) -> None:
    port, _ = echo
    fault = proxy(f"tcp://127.0.0.1:{port}", port)
    reader, writer = await asyncio.open_connection("127.0.0.1", fault.port)
    writer.write(b"1")
    assert await reader.read(1) == b"1"
    fault.set_mode(Mode.STALL)
    writer.write(b"2")
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(reader.read(1), 0.3)
    fault.set_mode(Mode.PASS)
    assert await asyncio.wait_for(reader.read(1), 2) == b"2"
    assert fault.open_connections == 1
    writer.close()
    await writer.wait_closed()
