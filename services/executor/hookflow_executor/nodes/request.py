"""Running `request`: an outgoing HTTP call. URL, headers, query and body are templates;
the result is the answer's status, headers and body (parsed when it is JSON). Failing (a
connection error, a timeout, a status of 400 or more, an address the executor's networks
settings refuse: see egress.py) fails the node, and so the execution, unless `ignoreFail`."""

from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson

from hookflow_executor.egress import AddressRefused
from hookflow_executor.nodes.base import RunState, Step
from hookflow_shared.workflow.configs import RequestNodeConfig

MAX_RESPONSE_BYTES = 10 * 1024 * 1024


class RequestFailed(Exception):
    pass


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return orjson.dumps(value).decode() if isinstance(value, dict | list | bool) else str(value)


async def run(config: RequestNodeConfig, state: RunState) -> Step:
    try:
        result = await _call(config, state)
    except RequestFailed as failure:
        if not config.ignore_fail:
            raise
        return Step(result={"error": str(failure)}, error=str(failure))
    if result["status"] >= 400 and not config.ignore_fail:
        raise RequestFailed(f"{config.method} answered {result['status']}")
    error = f"answered {result['status']}" if result["status"] >= 400 else None
    return Step(result=result, error=error)


async def _call(config: RequestNodeConfig, state: RunState) -> dict[str, Any]:
    if state.http is None:
        raise RequestFailed("no HTTP client in this executor")
    url = _text(state.render(config.url))
    if urlsplit(url).scheme not in ("http", "https"):
        raise RequestFailed(f"url {url!r} is not an http(s) URL")
    headers = {h.name: _text(state.render(h.value)) for h in config.headers}
    params = [(p.name, _text(state.render(p.value))) for p in config.params]
    body: dict[str, Any] = {}
    if config.data is not None and config.method not in ("GET", "HEAD"):
        data = state.render(config.data)
        if config.content_type == "application/json":
            body["data"] = orjson.dumps(data)
            headers.setdefault("Content-Type", "application/json")
        else:
            fields = data.items() if isinstance(data, dict) else []
            body["data"] = {name: _text(value) for name, value in fields}
    timeout = aiohttp.ClientTimeout(total=config.timeout / 1000)
    try:
        async with state.http.request(
            config.method, url, headers=headers, params=params, timeout=timeout, **body
        ) as response:
            raw = await response.content.read(MAX_RESPONSE_BYTES + 1)
            if len(raw) > MAX_RESPONSE_BYTES:
                raise RequestFailed(f"answer larger than {MAX_RESPONSE_BYTES} bytes")
            return {
                "status": response.status,
                "headers": {name.lower(): value for name, value in response.headers.items()},
                "data": _parse(raw, response.content_type),
            }
    except TimeoutError:
        raise RequestFailed(f"no answer within {config.timeout} ms") from None
    except aiohttp.ClientError as error:
        raise RequestFailed(_failure(error)) from error
    except ValueError as error:  # a request aiohttp will not make (e.g. two credentials)
        raise RequestFailed(f"the request cannot be made: {error}") from error


def _failure(error: aiohttp.ClientError) -> str:
    if isinstance(error, aiohttp.ClientConnectorError) and isinstance(
        error.os_error, AddressRefused
    ):
        return str(error.os_error)  # names the address and the setting that refused it
    return f"{type(error).__name__}: {error}"


def _parse(raw: bytes, content_type: str) -> Any:
    if not raw:
        return None
    if content_type == "application/json" or content_type.endswith("+json"):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass
    return raw.decode("utf-8", errors="replace")
