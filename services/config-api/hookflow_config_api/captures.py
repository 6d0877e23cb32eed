"""Live capture for the console: listen to a workflow's webhooks for a while and read the
requests that came in, to build the trigger's request variables from a real sample.

`POST /api/workflows/{id}/captures` opens a window (`{"seconds": 120, "limit": 5}` by
default) in storage and announces it on the events exchange; it answers once every gateway
alive listens, so a webhook sent right after the answer is sampled, whichever gateway takes
it. The gateways write the samples to storage (hookflow_gateway.captures);
`GET /api/workflows/{id}/captures?capture=<id>` reads them (the console polls it);
`DELETE /api/workflows/{id}/captures` stops early. A window ends by itself after its
seconds or its number of samples; the samples expire an hour after they came.
"""

from datetime import timedelta
from typing import Any

import orjson
from aiohttp import web
from pydantic import ValidationError

from hookflow_config_api.propagation import Propagation
from hookflow_config_api.schemas import CaptureAnswer, CaptureInput
from hookflow_config_api.workflows import Workflows
from hookflow_shared.errors import BadRequest, ValidationFailed
from hookflow_shared.http import json_response
from hookflow_shared.ids import is_id, new_id
from hookflow_shared.models import CaptureEvent, error_details, now
from hookflow_shared.storage import CaptureWindow, Storage


class Captures:
    def __init__(self, storage: Storage, workflows: Workflows, propagation: Propagation) -> None:
        self._storage = storage
        self._workflows = workflows
        self._propagation = propagation

    async def start(self, workflow_id: str, payload: Any) -> CaptureWindow:
        try:
            asked = CaptureInput.model_validate(payload)
        except ValidationError as error:
            raise ValidationFailed("invalid capture", details=error_details(error)) from error
        workflow = await self._workflows.get(workflow_id)
        window = CaptureWindow(
            workflow.id, new_id(), now() + timedelta(seconds=asked.seconds), asked.limit
        )
        await self._storage.open_capture(window)
        await self._propagation.announce(
            CaptureEvent(
                workflow_id=workflow.id,
                key=workflow.key,
                until=window.until,
                limit=window.limit,
                capture_id=window.capture_id,
            )
        )
        return window

    async def stop(self, workflow_id: str) -> None:
        workflow = await self._workflows.get(workflow_id)
        await self._storage.close_capture(workflow.id)
        await self._propagation.announce(CaptureEvent(workflow_id=workflow.id, key=workflow.key))

    async def read(self, workflow_id: str, capture_id: str | None) -> CaptureAnswer:
        """The samples of one window (the open one when `capture_id` is not given), and
        whether it still listens."""
        await self._workflows.get(workflow_id)
        moment = now()
        window = await self._storage.get_capture(workflow_id, moment)
        if capture_id is None:
            if window is None:
                return CaptureAnswer(active=False, capture_id=None, items=[])
            capture_id = window.capture_id
        current = window if window is not None and window.capture_id == capture_id else None
        limit = current.limit if current is not None else 20
        items = await self._storage.list_captured(workflow_id, capture_id, now=moment, limit=limit)
        return CaptureAnswer.model_validate(
            {
                "active": current is not None and len(items) < current.limit,
                "captureId": capture_id,
                "until": current.until if current is not None else None,
                "limit": current.limit if current is not None else None,
                "items": items,
            }
        )


CAPTURES = web.AppKey("captures", Captures)


def _answer(window: CaptureWindow) -> CaptureAnswer:
    return CaptureAnswer(
        active=True,
        capture_id=window.capture_id,
        until=window.until,
        limit=window.limit,
        items=[],
    )


def _json(answer: CaptureAnswer, status: int = 200) -> web.Response:
    return json_response(answer.model_dump(mode="json"), status=status)


async def start_capture(request: web.Request) -> web.Response:
    body = await request.read()
    payload: Any = {}
    if body:
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError as error:
            raise BadRequest(f"body is not valid JSON: {error}") from error
    window = await request.app[CAPTURES].start(request.match_info["id"], payload)
    return _json(_answer(window), status=201)


async def read_captures(request: web.Request) -> web.Response:
    capture_id = request.query.get("capture") or None
    if capture_id is not None and not is_id(capture_id):
        raise BadRequest("capture must be the captureId a POST answered (32 lowercase hex digits)")
    return _json(await request.app[CAPTURES].read(request.match_info["id"], capture_id))


async def stop_capture(request: web.Request) -> web.Response:
    await request.app[CAPTURES].stop(request.match_info["id"])
    return web.Response(status=204)
