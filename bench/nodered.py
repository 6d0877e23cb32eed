"""Node-RED, the peer measured by the `nodered-50` scenario: installed from npm into a cache
folder once, given the flow that does what the seed's sync example does, and started as one
more process of the benchmark.

The flow (flow() below) is examples/payment-callback-sync.json in Node-RED's nodes, kept in
memory as Node-RED keeps every flow: an `http in` node on POST /hook (Node-RED parses the JSON
body), a `switch` on msg.payload.status == "paid", a `change` node per branch setting the answer
(200 with X-Order and {"received": <order id>}, or 400 "payment not completed") and an
`http response`. GET /healthz answers 200 once the flows run, so the benchmark waits for it the
way it waits for its own services. Nothing is persisted, nothing queued: the figure is what a
popular low-code tool answers on the same machine, next to the bare aiohttp handler.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from bench.common import BenchError

VERSION = "4"
"""The major version of the node-red package installed from npm."""
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "hookflow-bench"
HOOK_PATH = "/hook"
INSTALL_TIMEOUT = 600.0


def install_dir() -> Path:
    """Where node-red is installed: HOOKFLOW_BENCH_NODERED_DIR, or the user's cache folder."""
    configured = os.environ.get("HOOKFLOW_BENCH_NODERED_DIR")
    return Path(configured) if configured else CACHE / "node-red"


def missing_reason() -> str | None:
    """Why Node-RED cannot be measured here (node or npm absent), or None when it can."""
    absent = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    if absent:
        return f"{' and '.join(absent)} not installed (Node-RED runs on Node.js)"
    return None


def red_js(prefix: Path) -> Path:
    return prefix / "node_modules" / "node-red" / "red.js"


def ensure_installed(prefix: Path) -> Path:
    """node-red under `prefix` (npm install, once; a later run finds it there); its red.js."""
    script = red_js(prefix)
    if script.exists():
        return script
    npm = shutil.which("npm")
    if npm is None:
        raise BenchError("npm is not installed: cannot install node-red")
    prefix.mkdir(parents=True, exist_ok=True)
    print(f"bench: installing node-red@{VERSION} from npm into {prefix} (once)", flush=True)
    argv = [
        npm,
        "install",
        "--prefix",
        str(prefix),
        "--no-audit",
        "--no-fund",
        "--omit=dev",
        "--loglevel=error",
        f"node-red@{VERSION}",
    ]
    try:
        done = subprocess.run(  # noqa: S603 (npm, found on PATH, no shell)
            argv, capture_output=True, text=True, timeout=INSTALL_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired as error:
        raise BenchError(f"npm install node-red took over {INSTALL_TIMEOUT:g} s") from error
    if done.returncode != 0 or not script.exists():
        raise BenchError(f"npm install node-red failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return script


def set_rule(prop: str, value: str, kind: str) -> dict[str, str]:
    """A `change` node's rule: set msg.<prop> to `value`, of type `kind` (jsonata, num, str)."""
    return {"t": "set", "p": prop, "pt": "msg", "to": value, "tot": kind}


def nid(name: str) -> str:
    """A node's id: unlike any other property's value, since Node-RED takes a property equal
    to a node's id for a reference to a config node (and "ok" is also a name here)."""
    return f"bench-node-{name}"


def flow() -> list[dict[str, Any]]:
    """The flow: the sync example's condition and answers, and GET /healthz."""
    tab = "hookflow-bench"
    common = {"z": tab}
    answer_paid = [
        set_rule("headers", '{"X-Order": payload.order.id}', "jsonata"),
        set_rule("statusCode", "200", "num"),
        set_rule("payload", '{"received": payload.order.id}', "jsonata"),
    ]
    answer_unpaid = [
        set_rule("statusCode", "400", "num"),
        set_rule("payload", "payment not completed", "str"),
    ]
    return [
        {"id": tab, "type": "tab", "label": "Payment callback (sync)", "disabled": False},
        {
            **common,
            "id": nid("hook"),
            "type": "http in",
            "name": "webhook",
            "url": HOOK_PATH,
            "method": "post",
            "upload": False,
            "wires": [[nid("paid")]],
        },
        {
            **common,
            "id": nid("paid"),
            "type": "switch",
            "name": "paid?",
            "property": "payload.status",
            "propertyType": "msg",
            "rules": [{"t": "eq", "v": "paid", "vt": "str"}, {"t": "else"}],
            "checkall": "false",
            "outputs": 2,
            "wires": [[nid("ok")], [nid("bad")]],
        },
        {
            **common,
            "id": nid("ok"),
            "type": "change",
            "name": "ok",
            "rules": answer_paid,
            "wires": [[nid("answer")]],
        },
        {
            **common,
            "id": nid("bad"),
            "type": "change",
            "name": "bad",
            "rules": answer_unpaid,
            "wires": [[nid("answer")]],
        },
        {**common, "id": nid("answer"), "type": "http response", "name": "", "wires": []},
        {
            **common,
            "id": nid("health"),
            "type": "http in",
            "name": "healthz",
            "url": "/healthz",
            "method": "get",
            "upload": False,
            "wires": [[nid("healthy")]],
        },
        {**common, "id": nid("healthy"), "type": "http response", "statusCode": "200", "wires": []},
    ]


SETTINGS = """\
// Written by bench/nodered.py: Node-RED for the benchmark, on loopback, without its editor.
module.exports = {
    uiHost: "127.0.0.1",
    flowFile: "flows.json",
    credentialSecret: false,
    disableEditor: true,
    httpAdminRoot: false,
    httpNodeRoot: "/",
    logging: { console: { level: "warn", metrics: false, audit: false } },
    externalModules: { autoInstall: false },
};
"""


def write_user_dir(user_dir: Path) -> Path:
    """Node-RED's user folder for one run: settings.js and flows.json; the settings' path."""
    user_dir.mkdir(parents=True, exist_ok=True)
    (user_dir / "flows.json").write_text(json.dumps(flow(), indent=1) + "\n")
    settings = user_dir / "settings.js"
    settings.write_text(SETTINGS)
    return settings


def command(script: Path, user_dir: Path, port: int) -> list[str]:
    """Write the user folder (write_user_dir) and say how to start it: node itself, so that
    the pid whose CPU and memory the benchmark reads is Node-RED's."""
    node = shutil.which("node") or "node"
    settings = write_user_dir(user_dir)
    return [
        node,
        str(script),
        "--userDir",
        str(user_dir),
        "--settings",
        str(settings),
        "--port",
        str(port),
    ]
