"""A RabbitMQ node of the test's own: its own AMQP port, Erlang distribution port, node name,
cookie and data directory, so a test can SIGKILL it and start it again on the same data without
touching the machine's broker (which keeps its 5672 and its node name).

How it runs (RabbitMQ 3.10 from Debian's packages; a generic install works the same way):

- `rabbitmq-server` on PATH is, on Debian, a wrapper that `su`s to the `rabbitmq` user and, when
  already that user, sends the output to the system broker's startup log. So the real script
  is run directly (the wrapper names its directory), as the `rabbitmq` user when we are root
  (the node refuses nothing as root, but its files must not be root's), with HOME in the node's
  directory (its Erlang cookie lives there).
- The data directory is made under the system's temporary directory, not under pytest's
  tmp_path, whose parents are private to root; it is owned by the node's user. The node's log
  is copied to the test's tmp_path when the node is removed.
- Its own configuration files: an Erlang-terms config (skips the slower rabbitmq.conf
  translation, and replaces /etc/rabbitmq/rabbitmq.conf, which would add a listener on 5672),
  an empty plugin list (no management listener), an empty rabbitmq-env.conf (the system's
  sets the node name).
- The node's processes are the script, the Erlang VM and the VM's helpers (erl_child_setup,
  inet_gethost, a disk monitor shell), which start sessions of their own: killing the node is
  killing that whole tree, found through /proc. epmd, shared by every node, stays.

A start takes about 6 to 8 s on a 2-core machine, a restart on the same data about the same.
"""

import asyncio
import atexit
import contextlib
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import aio_pika

NODE_USER = "rabbitmq"
"""The account the node runs as when the tests run as root (Debian's package creates it)."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_script() -> Path | None:
    """The real `rabbitmq-server` script (not Debian's su wrapper), or None without RabbitMQ."""
    found = shutil.which("rabbitmq-server")
    if found is None:
        return None
    path = Path(found)
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return None
    wrapped = re.search(r"(/\S+)/\$\{SCRIPT\}", text)  # Debian's rabbitmq-script-wrapper
    if wrapped:
        path = Path(wrapped.group(1)) / "rabbitmq-server"
    return path if path.exists() else None


def unavailable() -> str | None:
    """Why a private node cannot run here, or None when it can."""
    if not Path("/proc").is_dir():
        return "a private RabbitMQ node needs /proc (Linux) to find the node's processes"
    if server_script() is None:
        return "no rabbitmq-server on PATH for a private RabbitMQ node"
    if os.geteuid() == 0:
        try:
            import pwd

            pwd.getpwnam(NODE_USER)
        except KeyError:
            return f"running as root, but there is no {NODE_USER!r} user to run the node as"
    return None


def _process_tree(root: int) -> list[int]:
    """`root` and all its descendants, from /proc (a snapshot: kill them all before any is
    reparented)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


class RabbitNode:
    """One private node. `start()` and `wait_ready()` (or `boot()` for both), `kill()` to
    SIGKILL it, `boot()` again to restart it on the same data, `remove()` at the end."""

    def __init__(self, keep_logs: Path | None = None) -> None:
        script = server_script()
        if script is None:
            raise RuntimeError(unavailable())
        self.script = script
        self.keep_logs = keep_logs
        self.name = f"hookflow-test-{secrets.token_hex(4)}@localhost"
        self.amqp_port = free_port()
        self.dist_port = free_port()
        self.cookie = secrets.token_hex(20).upper()
        self.url = f"amqp://guest:guest@127.0.0.1:{self.amqp_port}/"
        self.dir = Path(tempfile.mkdtemp(prefix="hookflow-rabbitmq-"))
        self.timings: list[tuple[str, float]] = []
        """("start", seconds) and ("restart", seconds): from launch to the first AMQP connection."""
        self._process: subprocess.Popen[bytes] | None = None
        self._launched_at = 0.0
        self._uid: int | None = None
        self._gid: int | None = None
        if os.geteuid() == 0:
            import pwd

            account = pwd.getpwnam(NODE_USER)
            self._uid, self._gid = account.pw_uid, account.pw_gid
        self._write_files()
        # Should pytest end without running its finalizers, the node still goes with it.
        atexit.register(self.remove)

    def _write_files(self) -> None:
        (self.dir / "rabbitmq.config").write_text(
            f'[{{rabbit, [{{tcp_listeners, [{{"127.0.0.1", {self.amqp_port}}}]}}]}}].\n'
        )
        (self.dir / "enabled_plugins").write_text("[].\n")
        (self.dir / "rabbitmq-env.conf").write_text("")
        for sub in ("mnesia", "log"):
            (self.dir / sub).mkdir()
        cookie = self.dir / ".erlang.cookie"
        cookie.write_text(self.cookie)
        cookie.chmod(0o400)
        if self._uid is not None and self._gid is not None:
            for path in [self.dir, *self.dir.rglob("*")]:
                os.chown(path, self._uid, self._gid)

    def _env(self) -> dict[str, str]:
        keep = ("PATH", "LANG", "LC_ALL", "TZ")
        env = {key: os.environ[key] for key in keep if key in os.environ}
        return env | {
            "HOME": str(self.dir),
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.amqp_port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(self.dir / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.dir / "log"),
            "RABBITMQ_CONFIG_FILE": str(self.dir / "rabbitmq.config"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(self.dir / "advanced.config"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.dir / "enabled_plugins"),
            "RABBITMQ_CONF_ENV_FILE": str(self.dir / "rabbitmq-env.conf"),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            # The distribution listener on loopback only, as the machine's node has it.
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        }

    @property
    def log_path(self) -> Path:
        return self.dir / "log" / f"{self.name}.log"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Launch the node on its data (new or kept from before a kill); see wait_ready()."""
        assert not self.running, "the node is running"
        console = (self.dir / "console.log").open("ab")
        with console:
            self._process = subprocess.Popen(
                [str(self.script)],
                env=self._env(),
                cwd=self.dir,
                user=self._uid,
                group=self._gid,
                extra_groups=[] if self._uid is not None else None,
                stdin=subprocess.DEVNULL,
                stdout=console,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._launched_at = time.monotonic()

    async def wait_ready(self, timeout: float = 60.0) -> float:
        """Wait until an AMQP connection succeeds; returns the seconds since start()."""
        deadline = time.monotonic() + timeout
        while True:
            if self._process is None or self._process.poll() is not None:
                raise RuntimeError(f"RabbitMQ node {self.name} exited:\n{self.log_tail()}")
            try:
                # A plain TCP probe first: aiormq logs an error for each refused connection.
                _, writer = await asyncio.open_connection("127.0.0.1", self.amqp_port)
                writer.close()
                await writer.wait_closed()
                connection = await aio_pika.connect(self.url, timeout=2)
            except Exception:
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"RabbitMQ node {self.name} not ready in {timeout:g} s:\n{self.log_tail()}"
                    ) from None
                await asyncio.sleep(0.1)
                continue
            await connection.close()
            elapsed = time.monotonic() - self._launched_at
            self.timings.append(("restart" if self.timings else "start", elapsed))
            return elapsed

    async def boot(self, timeout: float = 60.0) -> float:
        """start() then wait_ready(): the seconds the (re)start took."""
        self.start()
        return await self.wait_ready(timeout)

    def kill(self) -> None:
        """SIGKILL the whole node at once (the script, the VM and its helpers); epmd stays."""
        if self._process is None:
            return
        for pid in _process_tree(self._process.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self._process.wait(10)
        self._process = None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # the VM is gone once its port refuses
            try:
                with socket.create_connection(("127.0.0.1", self.amqp_port), 0.2):
                    pass
            except OSError:
                return
            time.sleep(0.05)
        raise RuntimeError(f"RabbitMQ node {self.name} still listens after SIGKILL")

    def ctl(self, *args: str, timeout: float = 30.0) -> str:
        """`rabbitmqctl -n <this node> ...` (with this node's cookie); its output."""
        ctl = shutil.which("rabbitmqctl")
        assert ctl is not None, "no rabbitmqctl on PATH"
        result = subprocess.run(
            [ctl, "-n", self.name, "--erlang-cookie", self.cookie, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=True,
        )
        return result.stdout

    def log_tail(self, lines: int = 30) -> str:
        parts = []
        for path in (self.dir / "console.log", self.log_path):
            with contextlib.suppress(OSError):
                parts += path.read_text(errors="replace").splitlines()[-lines:]
        return "\n".join(parts)

    def remove(self) -> None:
        """Kill the node (if running), keep its log in `keep_logs`, delete its directory."""
        atexit.unregister(self.remove)
        if not self.dir.exists():
            return
        try:
            self.kill()
        finally:
            if self.keep_logs is not None:
                self.keep_logs.mkdir(parents=True, exist_ok=True)
                for path in (self.dir / "console.log", self.log_path):
                    with contextlib.suppress(OSError):
                        shutil.copy(path, self.keep_logs / f"rabbitmq-{path.name}")
            shutil.rmtree(self.dir, ignore_errors=True)
