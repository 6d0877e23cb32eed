"""The benchmark's parts that can be checked without running it (`make bench` is not part of the
suite): the chart drawn from a results document, the peak-memory reading, Node-RED's flow file,
the `--only` selection and the storage it points the services at."""

import json
import os
import resource
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import aio_pika
import pymongo
import pytest
from matplotlib import image

from bench import compare, nodered, storage
from bench.chart import draw_chart
from bench.common import BASELINE, SCENARIO_NAMES, BenchError, select
from bench.floor import confirm_floor, describe_floor, floor_queue
from bench.memory import describe, parse_vmhwm, peak_rss_mb
from bench.processes import Processes, delete_namespace
from bench.report import round_ratios, summarise
from bench.run import parse_args, start_nodered
from bench.targets import check as check_targets
from bench.targets import describe as describe_targets
from hookflow_shared.messaging import Topology, open_broker

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def http_run(name: str, ok_rps: float, p50: float, p99: float) -> dict[str, Any]:
    """One scenario's figures in a round, as bench/scenarios.py writes them."""
    target, conns = name.rsplit("-", 1)
    return {
        "scenario": name,
        "target": target,
        "conns": int(conns),
        "rps": ok_rps,
        "ok_rps": ok_rps,
        "p50_ms": p50,
        "p75_ms": p50,
        "p90_ms": p99,
        "p99_ms": p99,
        "requests": int(ok_rps * 10),
        "non_2xx": 0,
        "unanswered": 3,
        "socket_errors": {"connect": 0, "read": 0, "write": 0, "timeout": 0},
        "recorded": None if target in ("bare", "nodered") else int(ok_rps * 10),
        "lost": None if target in ("bare", "nodered") else 0,
        "extra": None if target in ("bare", "nodered") else 0,
    }


def backlog_run(name: str, rate: float) -> dict[str, Any]:
    return {
        "scenario": name,
        "executors": int(name[-1]),
        "requests": 20_000,
        "non_2xx": 0,
        "failed_requests": 0,
        "fill_s": 12.0,
        "queued_messages": 300,
        "backlog_runs_per_s": rate,
        "executor_cpu_us_per_run": 400.0,
        "broker_cpu_us_per_run": 90.0,
        "drain_s": 20_000 / rate,
        "recorded": 20_000,
        "lost": 0,
        "extra": 0,
    }


def results_document(rounds: int = 3) -> dict[str, Any]:
    """A document built by the benchmark's own summary from rounds of made-up figures."""
    built = []
    for number in range(rounds):
        scale = 1 + number / 10
        figures = {
            "bare-50": http_run("bare-50", 8000 * scale, 5.0, 20.0),
            "nodered-50": http_run("nodered-50", 1900 * scale, 25.0, 60.0),
            "async-50": http_run("async-50", 4000 * scale, 12.0, 45.0),
            "accept-50": http_run("accept-50", 4800 * scale, 10.0, 30.0),
            "async-1": http_run("async-1", 400 * scale, 2.4, 9.0),
            "backlog-1": backlog_run("backlog-1", 1500 * scale),
            "backlog-2": backlog_run("backlog-2", 2100 * scale),
        }
        ratios = round_ratios(figures)
        built.append({"round": number + 1, "scenarios": figures, "ratios": ratios})
    medians, ratios = summarise(built)
    return {
        "started": "2026-01-01T00:00:00+00:00",
        "settings": {"rounds": rounds, "storage": "sqlite"},
        "medians": medians,
        "ratios": ratios,
    }


def test_summary_holds_each_scenario_and_the_ratios_to_bare() -> None:
    document = results_document()
    medians, ratios = document["medians"], document["ratios"]
    assert list(medians) == [
        "async-50",
        "bare-50",
        "nodered-50",
        "accept-50",
        "async-1",
        "backlog-1",
        "backlog-2",
    ]
    assert medians["async-50"]["ratio_to_bare"] == pytest.approx(0.5)
    assert medians["nodered-50"]["ratio_to_bare"] == pytest.approx(1900 / 8000)
    assert medians["backlog-2"]["backlog_runs_per_s"] == pytest.approx(2100 * 1.1)
    assert medians["backlog-1"]["recorded_total"] == 60_000
    assert ratios["async/bare"] == pytest.approx(0.5)
    assert ratios["nodered/bare"] == pytest.approx(1900 / 8000)
    assert ratios["accept/bare"] == pytest.approx(0.6)
    assert ratios["sync/bare"] is None  # not measured in these rounds


def test_chart_is_a_png_with_a_panel_per_view(tmp_path: Path) -> None:
    document = results_document()
    path = draw_chart(document, tmp_path / "results" / "bench.png")
    assert path.read_bytes().startswith(PNG_MAGIC)
    height, width = image.imread(path).shape[:2]
    assert (width, height) == (1650, 480)  # three panels: ratios, latencies, backlog

    http_only = results_document()
    for name in ("backlog-1", "backlog-2"):
        del http_only["medians"][name]
    narrower = draw_chart(http_only, tmp_path / "http.png")
    assert image.imread(narrower).shape[1] == 1100


def test_chart_refuses_a_document_without_medians(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no medians"):
        draw_chart({"medians": {}}, tmp_path / "empty.png")
    assert not (tmp_path / "empty.png").exists()


def test_vmhwm_is_read_in_megabytes() -> None:
    status = "Name:\tpython\nVmPeak:\t  300000 kB\nVmHWM:\t   51200 kB\nVmRSS:\t   40000 kB\n"
    assert parse_vmhwm(status) == 50.0
    with pytest.raises(ValueError, match="no VmHWM"):
        parse_vmhwm("Name:\tkthreadd\n")
    with pytest.raises(ValueError, match="unknown unit"):
        parse_vmhwm("VmHWM:\t 1 MB\n")


def child_peak_mb(megabytes: int) -> float:
    """The peak RSS of a Python child that has written `megabytes` MB, read while it runs."""
    code = f"b = b'x' * ({megabytes} << 20); print('ready', flush=True); input()"
    with subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as child:
        assert child.stdout is not None and child.stdin is not None
        assert child.stdout.readline() == "ready\n"
        peak = peak_rss_mb(child.pid)
        child.stdin.write("\n")
    return peak


def test_peak_rss_of_a_live_process_follows_its_allocations() -> None:
    # The kernel's own high-water mark, through another interface (ru_maxrss is in kB).
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    assert peak_rss_mb(os.getpid()) == pytest.approx(own, abs=2)
    idle, loaded = child_peak_mb(0), child_peak_mb(100)
    assert idle < 60
    assert loaded - idle == pytest.approx(100, abs=15)


def test_memory_lines_compare_with_the_targets() -> None:
    lines = describe({"gateway": 151.0, "executor-2": 120.0, "nodered": 140.0})
    assert lines == [
        "  executor-2    120.0 MB   target < 200 MB: ok",
        "  gateway       151.0 MB   target < 150 MB: OVER",
        "  nodered       140.0 MB",
    ]


def test_targets_are_read_off_the_run_and_counted() -> None:
    medians = {
        "async-200": {"p99_ms": 51.0},
        "sync-1": {"p50_ms": 2.99},
        "async-1": {"p50_ms": 2.5},
    }
    ratios = {"async/bare": 0.5, "sync/bare": 0.34, "nodered/bare": 0.2}
    memory = {"gateway": 80.0, "executor": 120.0, "executor-2": 201.0, "config-api": 300.0}
    results = {r["name"]: r for r in check_targets(medians, ratios, memory)}
    assert {name: (r["value"], r["met"]) for name, r in results.items()} == {
        "async-50 2xx/s, share of bare-50": (0.5, True),  # at least: the bound itself is met
        "async-200 p99": (51.0, False),
        "sync-50 2xx/s, share of bare-50": (0.34, False),
        "sync-1 p50": (2.99, True),
        "async-1 p50": (2.5, False),  # under: the bound itself is not
        "gateway peak memory": (80.0, True),
        "executor peak memory": (201.0, False),  # the highest of the executors
    }
    lines = describe_targets(list(results.values()))
    assert lines[0] == "  async-50 2xx/s, share of bare-50        0.50   >= 0.5     met"
    assert lines[1] == "  async-200 p99                        51.0 ms   < 50 ms    NOT MET"
    assert lines[-1] == "  3 of 7 measured targets met"


def test_targets_of_scenarios_not_run_are_not_measured() -> None:
    results = check_targets({"async-1": {"p50_ms": 1.2}}, {"async/bare": None}, {})
    assert [r["met"] for r in results] == [None, None, None, None, True, None, None]
    lines = describe_targets(results)
    assert lines[0].endswith("-   >= 0.5     not measured in this run")
    assert lines[-1] == "  1 of 1 measured targets met"
    assert describe_targets(check_targets({}, {}, {}))[-1] == "  no target measured in this run"


def test_nodered_flow_is_wired_to_nodes_it_holds() -> None:
    flow = nodered.flow()
    ids = [node["id"] for node in flow]
    assert len(ids) == len(set(ids))
    (tab,) = [node for node in flow if node["type"] == "tab"]
    core = {"http in", "switch", "change", "http response"}
    for node in flow:
        if node is tab:
            continue
        assert node["type"] in core
        assert node["z"] == tab["id"]
        assert all(target in ids for output in node["wires"] for target in output)
        # Node-RED reads any other property equal to a node's id as a config node reference.
        others = {k: v for k, v in node.items() if k not in ("id", "z", "wires")}
        assert not set(map(str, others.values())) & set(ids), node
    switch = next(node for node in flow if node["type"] == "switch")
    assert switch["outputs"] == len(switch["rules"]) == len(switch["wires"]) == 2
    hooks = {(n["method"], n["url"]) for n in flow if n["type"] == "http in"}
    assert hooks == {("post", nodered.HOOK_PATH), ("get", "/healthz")}


def test_nodered_user_dir_holds_the_flow_and_settings(tmp_path: Path) -> None:
    script = tmp_path / "red.js"
    argv = nodered.command(script, tmp_path / "user", 18_080)
    assert argv[1:] == [
        str(script),
        "--userDir",
        str(tmp_path / "user"),
        "--settings",
        str(tmp_path / "user" / "settings.js"),
        "--port",
        "18080",
    ]
    assert json.loads((tmp_path / "user" / "flows.json").read_text()) == nodered.flow()
    settings = (tmp_path / "user" / "settings.js").read_text()
    assert 'flowFile: "flows.json"' in settings
    assert "disableEditor: true" in settings


def test_only_selects_scenarios_in_the_run_order_with_their_baseline() -> None:
    assert [s.name for s in select(None)] == SCENARIO_NAMES
    assert [s.name for s in select("sync-50,async-200")] == [BASELINE, "sync-50", "async-200"]
    assert [s.name for s in select(" backlog-2 , backlog-1 ")] == ["backlog-1", "backlog-2"]
    assert [s.name for s in select("async-1")] == ["async-1"]  # one connection: no ratio
    assert [s.name for s in select("accept-50")] == [BASELINE, "accept-50"]


def test_only_refuses_unknown_scenarios(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ValueError, match=r"unknown scenario\(s\) async-9"):
        select("async-50,async-9")
    with pytest.raises(ValueError, match="none given"):
        select(",")
    with pytest.raises(SystemExit) as exited:
        parse_args(["--only", "nodered"])
    assert exited.value.code == 2
    assert "choose among async-50, bare-50, sync-50" in capsys.readouterr().err


def test_arguments_default_to_every_scenario_and_a_large_backlog() -> None:
    args = parse_args([])
    assert [s.name for s in args.scenarios] == SCENARIO_NAMES
    assert (args.rounds, args.duration, args.backlog) == (3, 10.0, 20_000)
    quick = parse_args(["--quick", "--only", "backlog-1", "--backlog", "500"])
    assert (quick.rounds, quick.backlog, [s.name for s in quick.scenarios]) == (
        1,
        500,
        ["backlog-1"],
    )


def test_storage_is_sqlite_without_a_mongodb_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(storage.MONGODB_URL, raising=False)
    assert storage.storage_env("bench-1a2b") == {}
    assert storage.describe() == "sqlite"
    assert storage.drop_database("bench-1a2b") is None


def test_mongodb_url_gives_the_run_a_database_and_drops_it(
    monkeypatch: pytest.MonkeyPatch, mongodb_url: str
) -> None:
    namespace = f"bench-{secrets.token_hex(4)}"
    monkeypatch.setenv(storage.MONGODB_URL, mongodb_url)
    env = storage.storage_env(namespace)
    assert env == {
        storage.MONGODB_URL: mongodb_url,
        "HOOKFLOW_MONGODB_DATABASE": namespace.replace("-", "_"),
    }
    with pymongo.MongoClient(mongodb_url) as client:
        client[env["HOOKFLOW_MONGODB_DATABASE"]]["executions"].insert_one({"run": 1})
        assert env["HOOKFLOW_MONGODB_DATABASE"] in client.list_database_names()
        assert storage.drop_database(namespace)
        assert env["HOOKFLOW_MONGODB_DATABASE"] not in client.list_database_names()


def test_storage_description_names_no_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(storage.MONGODB_URL, "mongodb://bench:s3cret-pw@db.example:27017/?tls=true")
    assert storage.describe() == "mongodb on db.example"


def test_nodered_is_skipped_with_its_reason_without_node(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # neither node nor npm on it
    assert nodered.missing_reason() == "node and npm not installed (Node-RED runs on Node.js)"
    args = parse_args(["--only", "nodered-50"])
    state: dict[str, Any] = {"skipped": {}, "data_dir": tmp_path}
    procs = Processes(tmp_path)
    start_nodered(args, procs, state)
    assert [s.name for s in args.scenarios] == [BASELINE]
    assert state["skipped"] == {"nodered-50": nodered.missing_reason()}
    assert procs.services == {}


async def test_the_bench_leaves_nothing_of_its_namespace_on_the_broker(
    rabbitmq: str, namespace: str
) -> None:
    """What the services declare (with an installation marker) is all gone afterwards: the
    broker may be shared with other systems."""
    broker = open_broker(rabbitmq, Topology(namespace), installation="bench-test")
    await broker.connect()
    await broker.close()
    await delete_namespace(rabbitmq, namespace)
    topology = Topology(namespace)
    connection = await aio_pika.connect(rabbitmq)
    async with connection:
        for queue in topology.queues():
            channel = await connection.channel()
            with pytest.raises(aio_pika.exceptions.ChannelNotFoundEntity):
                await channel.declare_queue(queue.name, passive=True)
        exchanges = [spec.name for spec in topology.exchanges()]
        for exchange in [*exchanges, topology.installation_exchange]:
            channel = await connection.channel()
            with pytest.raises(aio_pika.exceptions.ChannelNotFoundEntity):
                await channel.declare_exchange(exchange, passive=True)


async def test_the_confirm_floor_measures_confirmed_publishes_and_leaves_no_queue(
    rabbitmq: str, namespace: str
) -> None:
    floor = await confirm_floor(rabbitmq, namespace, publishes=40, warm_up=5)
    assert floor["publishes"] == 40
    assert floor["queue"] == "quorum"
    assert 0 < floor["p50_ms"] <= floor["p90_ms"] <= floor["p99_ms"]
    assert "p50 " in describe_floor(floor) and "40 confirmed" in describe_floor(floor)
    assert describe_floor(None) == "not measured"
    connection = await aio_pika.connect(rabbitmq)
    async with connection:
        channel = await connection.channel()
        with pytest.raises(aio_pika.exceptions.ChannelNotFoundEntity):
            await channel.declare_queue(floor_queue(namespace), passive=True)


def test_compare_takes_a_revision_and_positive_sizes(capsys: pytest.CaptureFixture[str]) -> None:
    args = compare.parse_args(["--base", "HEAD~1"])
    assert (args.base, args.target, args.conns, args.seconds, args.pairs) == (
        "HEAD~1",
        "async",
        50,
        5.0,
        8,
    )
    wrongs = ([], ["--base", "x", "--pairs", "0"], ["--base", "x", "--target", "idem"])
    for wrong in wrongs:
        with pytest.raises(SystemExit) as exited:
            compare.parse_args(wrong)
        assert exited.value.code == 2
    assert "--base" in capsys.readouterr().err


def test_compare_runs_the_base_from_a_worktree_of_its_own() -> None:
    """The worktree holds the base's five packages where PYTHONPATH points, and is gone after."""
    worktree = compare.add_worktree("HEAD")
    try:
        folders = [Path(folder) for folder in compare.pythonpath_of(worktree).split(":")]
        packages = [next(folder.glob("hookflow_*/__init__.py"), None) for folder in folders]
        assert all(packages), folders
        assert {package.parent.name for package in packages if package} == {
            "hookflow_shared",
            "hookflow_gateway",
            "hookflow_executor",
            "hookflow_config_api",
            "hookflow_cli",
        }
    finally:
        compare.remove_worktree(worktree)
    assert not worktree.exists()
    with pytest.raises(BenchError, match="no-such-revision"):
        compare.add_worktree("no-such-revision")
