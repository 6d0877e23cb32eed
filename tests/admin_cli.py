"""The admin CLI under test: the real `hookflow` entry point, run as a subprocess against a
running system (embedded `hookflow run`, or the distributed services on RabbitMQ)."""

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HOOKFLOW = Path(sys.executable).with_name("hookflow")
"""The console script `make install` puts beside the interpreter."""


@dataclass(frozen=True)
class Result:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        assert self.code == 0, self.stderr
        return json.loads(self.stdout)


@dataclass(frozen=True)
class Admin:
    """Where the config API and the gateway of a running system are, and its admin token."""

    api_url: str
    token: str
    gateway_url: str

    def env(self, **changes: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HOOKFLOW_")}
        return (
            env
            | {
                "HOOKFLOW_API_URL": self.api_url,
                "HOOKFLOW_ADMIN_TOKEN": self.token,
                "COLUMNS": "250",
            }
            | changes
        )

    def run(self, *args: str, stdin: str = "", **env: str) -> Result:
        return hookflow(*args, env=self.env(**env), stdin=stdin)

    def ok(self, *args: str) -> Result:
        result = self.run(*args)
        assert result.code == 0, f"hookflow {' '.join(args)}: {result.stderr}"
        return result

    def json(self, *args: str) -> Any:
        return self.ok(*args, "--json").json()


def hookflow(*args: str, env: dict[str, str], stdin: str = "") -> Result:
    done = subprocess.run(
        [str(HOOKFLOW), *args], env=env, input=stdin, capture_output=True, text=True, timeout=60
    )
    return Result(done.returncode, done.stdout, done.stderr)
