"""The baseline of bench/run.py: a bare aiohttp handler that reads the JSON body and answers `ok`.

It does what the gateway cannot avoid doing (HTTP parsing, reading and decoding the body,
answering) and nothing else, so the ratio hookflow/bare measured in the same run says how much
of the machine's HTTP capacity the gateway keeps. It runs on the services' own event loop
(hookflow_shared.command.new_event_loop: uvloop), so the ratio measures Hookflow's work, not a
difference of loops. `GET /healthz` answers 200.
"""

import argparse

from aiohttp import web

from hookflow_shared.command import new_event_loop


async def receive(request: web.Request) -> web.Response:
    await request.json()
    return web.Response(text="ok")


async def healthz(_: web.Request) -> web.Response:
    return web.Response(text="ok")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_post("/{tail:.*}", receive)
    web.run_app(
        app,
        host=args.host,
        port=args.port,
        access_log=None,
        print=None,
        loop=new_event_loop(),
    )


if __name__ == "__main__":
    main()
