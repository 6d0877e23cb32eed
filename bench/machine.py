"""The machine the figures come from (CPU, versions, commit), for the JSON."""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib.metadata
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.common import ROOT


def command_output(argv: list[str], timeout: float = 15, *, any_status: bool = False) -> str | None:
    try:
        done = subprocess.run(  # noqa: S603 (fixed commands, no shell)
            argv, capture_output=True, text=True, timeout=timeout, cwd=ROOT, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (done.stdout or done.stderr).strip()
    return text if (done.returncode == 0 or any_status) and text else None


def cpu_model() -> str | None:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return None


def package_versions() -> dict[str, str]:
    versions = {}
    for package in ("aiohttp", "aio-pika", "aiormq", "orjson", "pydantic"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[package] = importlib.metadata.version(package)
    return versions


def machine_info(wrk: str, server_properties: dict[str, Any]) -> dict[str, Any]:
    git = shutil.which("git")
    broker_version = server_properties.get("version")
    if isinstance(broker_version, bytes):
        broker_version = broker_version.decode()
    rabbitmqctl = shutil.which("rabbitmqctl")
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "nproc": command_output(["nproc"]) or str(os.cpu_count()),
        "cpu_model": cpu_model(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "rabbitmq_version": (command_output([rabbitmqctl, "version"]) if rabbitmqctl else None),
        "rabbitmq_server_properties_version": broker_version,
        # `wrk -v` prints its version and usage, and exits 1.
        "wrk": next(iter((command_output([wrk, "-v"], any_status=True) or "").splitlines()), None),
        "git_commit": command_output([git, "rev-parse", "--short", "HEAD"]) if git else None,
        "git_dirty": bool(command_output([git, "status", "--porcelain"])) if git else None,
        "packages": package_versions(),
    }
