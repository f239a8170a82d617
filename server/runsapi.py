"""Runs over HTTP: a room's run (watched live in the room) and standalone runs for tools."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from executor import ExecutorError, Job, JobError
from rooms import JoinRefused, RoomRole, metrics

from .api import check_path
from .apiauth import IDENTITY, allowed_room, spend_allowance
from .auth import person_of
from .errors import json_error, json_object
from .keys import REGISTRY, RUN_LIMIT, RUNS, SETTINGS
from .ratelimit import retry_after_header
from .runs import RunRefused, result_json

_REFUSAL_STATUS = {
    "permission-denied": web.HTTPForbidden,
    "runs-unavailable": web.HTTPServiceUnavailable,
    "run-busy": web.HTTPConflict,
    "rate-limited": web.HTTPTooManyRequests,
    "bad-run-request": web.HTTPBadRequest,
}


def _refused(refused: RunRefused) -> web.HTTPException:
    error = json_error(_REFUSAL_STATUS.get(refused.code, web.HTTPBadRequest), refused.text)
    if refused.retry_after is not None:
        error.headers["Retry-After"] = retry_after_header(refused.retry_after)
    return error


async def _body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    return await json_object(request)


def _text(body: dict[str, Any], key: str, default: str | None = None) -> str | None:
    value = body.get(key, default)
    if value is not None and not isinstance(value, str):
        raise json_error(web.HTTPBadRequest, f"{key} must be a string")
    return value


def _output_json(collected: list[tuple[str, str]]) -> dict[str, str]:
    return {
        "stdout": "".join(t for s, t in collected if s == "stdout"),
        "stderr": "".join(t for s, t in collected if s == "stderr"),
    }


async def room_run(request: web.Request) -> web.Response:
    """Run the room's current files; everyone in the room watches; answered with the result."""
    room_id = await allowed_room(request, RoomRole.EDITOR, doing="running code")
    body = await _body(request)
    entry = _text(body, "entry")
    stdin = _text(body, "stdin", "") or ""
    service = request.app[RUNS]
    person = person_of(request[IDENTITY])
    try:
        async with request.app[REGISTRY].hold(room_id) as room:
            try:
                run = await service.start(
                    room, person, True, requester=None, entry=entry, stdin=stdin
                )
            except RunRefused as refused:
                raise _refused(refused) from refused
            run.collected = []
            try:
                result, why = await service.execute(run)
            except RunRefused as refused:
                raise _refused(refused) from refused
    except JoinRefused as refused:
        raise json_error(web.HTTPServiceUnavailable, refused.reason) from refused
    if result is None:
        raise json_error(web.HTTPServiceUnavailable, why)
    return web.json_response(
        {
            "run": run.id,
            "room": room_id,
            "entry": run.entry,
            "language": run.language,
            **result_json(result),
            **_output_json(run.collected),
        }
    )


async def standalone_run(request: web.Request) -> web.Response:
    """Files in, result out: for an IDE extension or a grader, outside any room."""
    identity = request[IDENTITY]
    settings = request.app[SETTINGS]
    limit = settings.max_message_bytes
    if request.content_length is not None and request.content_length > limit:
        raise json_error(web.HTTPRequestEntityTooLarge, f"body over the {limit}-byte limit")
    body = await _body(request)
    language = _text(body, "language")
    files = body.get("files")
    tests = body.get("tests", {})
    if not language:
        raise json_error(web.HTTPBadRequest, "language is required (e.g. python, javascript)")
    for name, value in (("files", files), ("tests", tests)):
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            raise json_error(web.HTTPBadRequest, f"{name} must be an object of path: text")
    assert isinstance(files, dict) and isinstance(tests, dict)
    if not files:
        raise json_error(web.HTTPBadRequest, "files must hold at least one file")
    for path in (*files, *tests):
        check_path(path)
    service = request.app[RUNS]
    if not service.executor.available:
        raise json_error(
            web.HTTPServiceUnavailable, f"runs are unavailable: {service.executor.reason}"
        )
    await spend_allowance(request.app[RUN_LIMIT], identity, "runs")
    job = Job(
        language=language,
        files=files,
        entry=_text(body, "entry"),
        stdin=_text(body, "stdin", "") or "",
        tests=tests,
        limits=service.limits,
    )
    try:
        result, chunks = await service.executor.run(job, owner=str(identity.user_uuid))
    except JobError as exc:
        raise json_error(web.HTTPBadRequest, str(exc)) from exc
    except ExecutorError as exc:
        metrics.ERRORS.labels(kind="run_unavailable").inc()
        raise json_error(web.HTTPServiceUnavailable, str(exc)) from exc
    output = {
        stream: b"".join(c.data for c in chunks if c.stream == stream).decode(
            "utf-8", errors="replace"
        )
        for stream in ("stdout", "stderr")
    }
    return web.json_response({**result_json(result), **output})


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/rooms/{room_id}/runs", room_run)
    app.router.add_post("/api/runs", standalone_run)
