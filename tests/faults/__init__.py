"""Fault tests on real processes: the services as `hookflow` subprocesses on real sockets, a
RabbitMQ node of the test's own, and helpers that break things and count what came out.

Run them alone with `pytest -m faults` (add -s to see each test's figures line); they also
run in `make test`.

The kit (each module is documented where it is):

- rabbitnode.RabbitNode (fixture `private_rabbitmq`, started): `.url`, `kill()` (SIGKILL of
  the whole node), `await boot()` (start again on the same data; returns the seconds it took),
  `ctl(...)` (rabbitmqctl against it), `.timings`. Skipped where no rabbitmq-server can run.
- processes.Installation (fixture `installation(broker_url, Sqlite(dir) | Mongo(url, db),
  **HOOKFLOW_env)`): `await start(gateways=N, executors=M)`, or `add(kind, env)` per service
  then `await start_all([...])` (e.g. one gateway whose HOOKFLOW_BROKER_URL goes through a
  proxy); `create_workflow(doc)`, `webhook_urls(workflow)`, `recorded(workflow_id)`,
  `execution(id)`, `refused_runs()`. Each Service: `send(signal)`, `kill()`,
  `await wait_exit()`, `await restart()`, `await health()`, `events()` (its JSON log lines),
  `tail()`. Logs are in tmp_path/logs, printed when the test fails. A second installation
  in one test gets the namespace `<namespace>-1` (two installations on one broker).
- proxy.FaultProxy (fixture `proxy(url, default_port)`): `.url(url)` to give a service
  instead, `set_mode(Mode.PASS | STALL | ONE_WAY | CLOSE | REFUSE)`. A stuck MongoDB: the
  Mongo URL through a proxy, then STALL. A slow or blocked broker: the same with the AMQP
  URL. Request it before `installation`, so it outlives the processes.
- load.LoadDriver(urls, concurrency=, pace=): `await run(count= | duration=)`, or `start()`,
  `wait_accepting(since, per_url=)`, `await stop()`; every Answer has status, Retry-After,
  execution id or a connection error's kind.
- witness.Witness (fixture `witness`): `node(tag, delay=)` is a request node calling it with
  the execution id; `counts(tag)`, `in_progress`.
- accounting.account(label, answers, recorded=, witness=) -> Accounting: `.line()` to print,
  `.assert_promise(allow_reruns=, allowed_errors=, excused=)`.
- waiting.wait_until(condition, timeout, what).
"""
