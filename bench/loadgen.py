"""The load generator: wrk's invocation (with bench/post.lua) and the parsing of its output."""

from __future__ import annotations

import asyncio
import re
import uuid
from dataclasses import dataclass

from bench.common import BENCH, BenchError

LUA = BENCH / "post.lua"

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}  # to milliseconds
_RE_TOTAL = re.compile(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h),", re.M)
_RE_RPS = re.compile(r"^Requests/sec:\s+([\d.]+)", re.M)
_RE_PCT = re.compile(r"^\s*(50|75|90|99)%\s+([\d.]+)(us|ms|s|m|h)\s*$", re.M)
_RE_SOCKET = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
_RE_NON2XX = re.compile(r"Non-2xx or 3xx responses: (\d+)")
_RE_SENT = re.compile(r"^bench: sent (\d+)", re.M)
_RE_STATUS = re.compile(r"^bench: status (\d+) (\d+)", re.M)
_RE_SAMPLE = re.compile(r"^bench: sample (\d+) (.*)$", re.M)


@dataclass
class WrkResult:
    conns: int
    threads: int
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p75_ms: float
    p90_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: dict[str, int]
    sent: int
    statuses: dict[int, int]
    samples: dict[int, str]
    output: str

    @property
    def ok(self) -> int:
        """Answers with a 2xx status, as counted by post.lua."""
        if not self.statuses:
            return self.requests - self.non_2xx
        return sum(count for status, count in self.statuses.items() if 200 <= status < 300)

    def describe_non_2xx(self) -> str:
        return "; ".join(
            f"{count:,} x {status} {self.samples.get(status, '')!r}"
            for status, count in sorted(self.statuses.items())
            if not 200 <= status < 300
        )

    @property
    def unanswered(self) -> int:
        """Requests wrk started but never saw answered: in flight when it stopped, or errors."""
        return max(0, self.sent - self.requests)

    @property
    def socket_error_count(self) -> int:
        return sum(self.socket_errors.values())


def parse_wrk(output: str, conns: int, threads: int) -> WrkResult:
    total = _RE_TOTAL.search(output)
    rps = _RE_RPS.search(output)
    pct = {int(m[1]): float(m[2]) * _UNITS[m[3]] for m in _RE_PCT.finditer(output)}
    if total is None or rps is None or not {50, 75, 90, 99} <= pct.keys():
        raise BenchError(f"could not read wrk's output:\n{output}")
    sock = _RE_SOCKET.search(output)
    non2xx = _RE_NON2XX.search(output)
    sent = _RE_SENT.search(output)
    errors = dict.fromkeys(("connect", "read", "write", "timeout"), 0)
    if sock:
        errors = dict(zip(errors, map(int, sock.groups()), strict=True))
    return WrkResult(
        conns=conns,
        threads=threads,
        requests=int(total[1]),
        seconds=float(total[2]) * _UNITS[total[3]] / 1e3,
        rps=float(rps[1]),
        p50_ms=pct[50],
        p75_ms=pct[75],
        p90_ms=pct[90],
        p99_ms=pct[99],
        non_2xx=int(non2xx[1]) if non2xx else 0,
        socket_errors=errors,
        sent=int(sent[1]) if sent else int(total[1]),
        statuses={int(m[1]): int(m[2]) for m in _RE_STATUS.finditer(output)},
        samples={int(m[1]): m[2] for m in _RE_SAMPLE.finditer(output)},
        output=output,
    )


async def run_wrk(
    wrk: str, url: str, conns: int, seconds: float, *, keyed: bool = False
) -> WrkResult:
    """`keyed`: every request carries a new Idempotency-Key (never seen before: each runs)."""
    threads = min(2, conns)  # wrk needs at least one connection per thread
    argv = [
        wrk,
        f"-t{threads}",
        f"-c{conns}",
        f"-d{seconds:g}s",
        "--latency",
        "-s",
        str(LUA),
        url,
    ]
    if keyed:
        argv += ["--", uuid.uuid4().hex]
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout=seconds + 60)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    output = out.decode(errors="replace")
    if proc.returncode != 0:
        raise BenchError(f"wrk failed (status {proc.returncode}):\n{output}")
    return parse_wrk(output, conns, threads)
