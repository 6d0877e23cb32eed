"""A TCP fault proxy in front of any service (a broker, a database, a gateway), on a thread of
its own. Modes, switched at any time:

- PASS: bytes flow both ways.
- STALL: connections are accepted and kept open but nothing is forwarded, either way, on new
  and open connections alike: a stuck peer, for timeouts. Bytes read meanwhile are held and
  flow again (in order) when the mode goes back to PASS, as after a healed partition.
- ONE_WAY: bytes to the target flow, bytes back are held: the peer acts but its answer never
  comes (a publisher confirm or a write acknowledgement lost on the way back).
- CLOSE: new connections are accepted and closed at once; open ones are cut.
- REFUSE: the proxy stops listening (connections are refused); open ones are cut.
"""

import asyncio
import contextlib
import enum
import socket
from urllib.parse import urlsplit, urlunsplit

from tests.faults.loop import LoopThread


class Mode(enum.Enum):
    PASS = "pass"
    STALL = "stall"
    ONE_WAY = "one-way"
    CLOSE = "close"
    REFUSE = "refuse"


class _Link:
    """One proxied connection: the caller's side and the target's."""

    def __init__(self, caller: asyncio.StreamWriter) -> None:
        self.writers = [caller]
        self.cut = asyncio.Event()

    def abort(self) -> None:
        self.cut.set()
        for writer in self.writers:
            with contextlib.suppress(Exception):
                writer.transport.abort()


class FaultProxy:
    def __init__(self, target_host: str, target_port: int, mode: Mode = Mode.PASS) -> None:
        self.target = (target_host, target_port)
        self.mode = mode
        self.accepted = 0
        """Connections accepted so far."""
        self._thread = LoopThread(f"proxy-{target_port}")
        self._to_target = asyncio.Event()
        self._to_caller = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._links: set[_Link] = set()
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        self._thread.call(self._apply(mode))

    @classmethod
    def for_url(cls, url: str, default_port: int, mode: Mode = Mode.PASS) -> "FaultProxy":
        """A proxy in front of the host and port of `url`."""
        parts = urlsplit(url)
        return cls(parts.hostname or "127.0.0.1", parts.port or default_port, mode)

    def url(self, url: str) -> str:
        """`url` with its host and port replaced by the proxy's (credentials and path kept)."""
        parts = urlsplit(url)
        credentials = parts.netloc.rpartition("@")[0]
        netloc = f"{credentials}@" if credentials else ""
        return urlunsplit(parts._replace(netloc=f"{netloc}127.0.0.1:{self.port}"))

    @property
    def open_connections(self) -> int:
        return len(self._links)

    def set_mode(self, mode: Mode) -> None:
        self._thread.call(self._apply(mode))

    async def _apply(self, mode: Mode) -> None:
        self.mode = mode
        for flowing, open_in in (
            (self._to_target, (Mode.PASS, Mode.ONE_WAY)),
            (self._to_caller, (Mode.PASS,)),
        ):
            if mode in open_in:
                flowing.set()
            else:
                flowing.clear()
        if mode in (Mode.CLOSE, Mode.REFUSE):
            for link in list(self._links):
                link.abort()
        if mode is Mode.REFUSE:
            await self._stop_listening()
        elif self._server is None:
            self._server = await asyncio.start_server(
                self._accept, "127.0.0.1", self.port, reuse_address=True
            )

    async def _stop_listening(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        link = _Link(writer)
        if self.mode is Mode.CLOSE:
            link.abort()
            return
        self._links.add(link)
        try:
            # A stalled proxy does not even reach the target.
            if not await self._wait_flowing(self._to_target, link):
                return
            try:
                target_reader, target_writer = await asyncio.open_connection(*self.target)
            except OSError:
                return
            link.writers.append(target_writer)
            await asyncio.gather(
                self._pump(reader, target_writer, self._to_target, link),
                self._pump(target_reader, writer, self._to_caller, link),
            )
        finally:
            self._links.discard(link)
            link.abort()

    @staticmethod
    async def _wait_flowing(flowing_event: asyncio.Event, link: _Link) -> bool:
        """Wait until bytes may flow (that way); False if the link was cut meanwhile."""
        if flowing_event.is_set():
            return not link.cut.is_set()
        flowing = asyncio.ensure_future(flowing_event.wait())
        cut = asyncio.ensure_future(link.cut.wait())
        await asyncio.wait({flowing, cut}, return_when=asyncio.FIRST_COMPLETED)
        for waiter in (flowing, cut):
            waiter.cancel()
        return not link.cut.is_set()

    async def _pump(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        flowing: asyncio.Event,
        link: _Link,
    ) -> None:
        try:
            while data := await reader.read(65536):
                if not await self._wait_flowing(flowing, link):
                    return
                writer.write(data)
                await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()  # a half-close travels on; the other way may go on
        except (OSError, RuntimeError):
            link.abort()

    def close(self) -> None:
        async def stop() -> None:
            for link in list(self._links):
                link.abort()
            await self._stop_listening()
            await asyncio.sleep(0.05)  # let the aborted links' tasks end

        self._thread.call(stop())
        self._thread.close()
