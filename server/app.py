"""The aiohttp application: routes, start-up and shutdown."""

from __future__ import annotations

import asyncio
import logging
import time

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from executor import Executor, RemoteExecutor
from progress import install_default_rules
from progress.leaderboard import run_freezer
from rooms import Bus, CloseCode, GroupCommit, LocalBus, RedisBus, RoomRegistry, RoomService
from store import EmbeddedPostgres, Store, StoreUnavailable

from . import (
    api,
    badgesapi,
    demosapi,
    heartbeat,
    leaderboardsapi,
    learnersapi,
    pages,
    progressapi,
    questionsapi,
    recordingsapi,
    roomsapi,
    runsapi,
    signin,
    submissionsapi,
    versions,
    ws,
)
from .apiauth import api_auth
from .auth import Gate
from .config import Settings
from .demolibrary import DemoLibrary
from .demowatch import DemoWatchService
from .frontdoor import FrontDoor
from .keys import (
    API_LIMIT,
    DEMOS,
    GATE,
    REGISTRY,
    RUN_LIMIT,
    RUNS,
    SETTINGS,
    SOCKETS,
    STORE,
    VERIFIER,
)
from .pairing import PairingService
from .progressfeed import FEED, ProgressFeed
from .questions import QuestionService
from .ratelimit import HourlyLimit
from .recordings import RecordingService
from .recordslots import RecordSlots
from .rolesync import ROLES, RoleSync
from .roomsocket import RoomSockets
from .runs import RunService
from .runslots import RunSlots
from .sharedlimit import SharedHourlyLimit
from .sharedredis import SharedRedis, state_prefix

log = logging.getLogger("opencode_live.server")


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Ready when the database answers and commits are going through."""
    store = request.app[STORE]
    commit = request.app[REGISTRY].commit
    checks: dict[str, str] = {}
    try:
        await store.ping(timeout=2.0)
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"unavailable: {exc}"
    if not commit.healthy:
        checks["commits"] = f"failing: {commit.queued} updates waiting to be stored"
    executor = request.app[RUNS].executor
    # Runs being off does not make rooms unready: said here, not counted against readiness.
    runs_check = "ok" if executor.available else f"unavailable: {executor.reason}"
    ready = all(v == "ok" for v in checks.values()) and commit.healthy
    checks["runs"] = runs_check
    if request.app[SETTINGS].redis_url:
        # Reported, not counted: without Redis, rooms keep working on each node and
        # converge from the log when it is back; taking every node out of the load
        # balancer for a Redis outage would be worse.
        checks["redis"] = await request.app[REGISTRY].bus.check(2.0)
    return web.json_response(
        {"status": "ready" if ready else "unavailable", "checks": checks},
        status=200 if ready else 503,
    )


async def metrics_view(request: web.Request) -> web.Response:
    body = generate_latest()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def open_store(settings: Settings) -> tuple[Store, EmbeddedPostgres | None]:
    """The store at DATABASE_URL, or on an embedded Postgres in the data folder."""
    embedded = None
    dsn = settings.database_url
    if not dsn:
        data_dir = settings.resolved_data_dir()
        embedded = EmbeddedPostgres(data_dir / "postgres")
        dsn = await embedded.start()
    try:
        store = await Store.open(dsn)
    except BaseException:
        if embedded is not None:
            await embedded.stop()
        raise
    return store, embedded


async def create_app(settings: Settings, *, store: Store | None = None) -> web.Application:
    """The whole server. Without ``store`` it opens (and later closes) its own."""
    embedded = None
    owned = store is None
    if store is None:
        store, embedded = await open_store(settings)
    app = web.Application(client_max_size=settings.max_message_bytes + 1024, middlewares=[api_auth])
    app[SETTINGS] = settings
    app[STORE] = store
    app[VERIFIER] = verifier = settings.token_verifier()
    app[GATE] = Gate(verifier, store)
    # With REDIS_URL, runs in flight and hourly allowances are shared by the nodes.
    shared = (
        SharedRedis(settings.redis_url, prefix=state_prefix(settings.bus_prefix))
        if settings.redis_url
        else None
    )
    app[API_LIMIT] = (
        SharedHourlyLimit(shared, "api", settings.api_requests_per_hour)
        if shared is not None
        else HourlyLimit(settings.api_requests_per_hour)
    )
    app[RUN_LIMIT] = run_limit = (
        SharedHourlyLimit(shared, "runs", settings.runs_per_hour)
        if shared is not None
        else HourlyLimit(settings.runs_per_hour)
    )
    executor: Executor | RemoteExecutor
    if settings.run_queue == "redis":  # runs go to `opencode-live worker`s: no Docker here
        executor = RemoteExecutor(
            settings.redis_url,
            settings.run_queue_prefix,
            settings.executor_config(),
            queue_wait=settings.run_queue_wait_seconds,
        )
    else:
        executor = Executor(settings.executor_config())
    registry: RoomRegistry | None = None
    # Progress events observed in rooms, applied off the hot path (the rooms are
    # looked up when the registry exists, to tell them of achievements).
    app[FEED] = feed = ProgressFeed(
        store, lambda room_id: registry.rooms.get(room_id) if registry is not None else None
    )
    slots = RunSlots(shared) if shared is not None else None
    app[RUNS] = runs = RunService(executor, run_limit, settings.run_limits(), feed, slots)  # type: ignore[arg-type]
    limits = settings.room_limits()

    def outage(exc: Exception) -> None:
        if registry is not None:
            registry.notify_all("warning", "not-saved", f"changes are not being saved: {exc}")

    def recovery() -> None:
        if registry is not None:
            registry.notify_all("info", "saved", "changes are being saved again")

    commit = GroupCommit(
        store,
        delay=settings.commit_delay_seconds,
        on_outage=outage,
        on_recovery=recovery,
    )
    app[DEMOS] = library = DemoLibrary(store)
    # With REDIS_URL, a room's recording is one for all nodes (its slot in Redis).
    recordings = RecordingService(
        store, forget=library.forget, slots=RecordSlots(shared) if shared is not None else None
    )
    questions = QuestionService(store, library, feed)
    pairing = PairingService(feed, lambda: registry.rooms.values() if registry is not None else ())
    watching = DemoWatchService(feed)
    app[ROLES] = roles = RoleSync(app[GATE])
    services: list[RoomService] = [runs, questions, recordings, pairing, watching, roles]
    bus: Bus = LocalBus()
    if settings.redis_url:  # rooms shared with the other server processes on this Redis
        bus = RedisBus(
            settings.redis_url,
            prefix=settings.bus_prefix,
            heads=store.room_heads,
            check_seconds=settings.bus_check_seconds,
        )
    registry = RoomRegistry(limits, store, commit, services, library, bus)
    app[REGISTRY] = registry
    sockets = RoomSockets(
        registry,
        max_message_bytes=settings.max_message_bytes,
        send_queue_bytes=settings.send_queue_bytes,
        rates=settings.socket_rates(),
    )
    app[SOCKETS] = sockets
    signin.add_routes(app)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_view)
    app.router.add_get("/rooms/{room_id}", ws.room_socket)
    roomsapi.add_routes(app)
    runsapi.add_routes(app)
    demosapi.add_routes(app)
    recordingsapi.add_routes(app, recordings)
    questionsapi.add_routes(app)
    progressapi.add_routes(app)
    leaderboardsapi.add_routes(app)
    submissionsapi.add_routes(app)
    learnersapi.add_routes(app)
    badgesapi.add_routes(app)
    app.router.add_get("/api/rooms/{room_id}/files", api.get_files)
    app.router.add_get("/api/rooms/{room_id}/files/{path:.+}", api.get_file)
    app.router.add_put("/api/rooms/{room_id}/files/{path:.+}", api.put_file)
    app.router.add_delete("/api/rooms/{room_id}/files/{path:.+}", api.delete_file)
    app.router.add_post("/api/rooms/{room_id}/versions", versions.create_version)
    app.router.add_get("/api/rooms/{room_id}/versions", versions.list_versions)
    app.router.add_get("/api/rooms/{room_id}/versions/{version}/files", versions.version_files)
    app.router.add_post("/api/rooms/{room_id}/versions/{version}/restore", versions.restore_version)
    pages.add_routes(app)

    tasks: list[asyncio.Task[None]] = []

    async def start(app: web.Application) -> None:
        # A fresh database gets the shipped achievements; a loaded catalogue stays.
        try:
            await install_default_rules(store)
        except StoreUnavailable as exc:
            log.warning("achievements not installed: %s", exc)
        await bus.start()
        commit.start()
        feed.start()
        pairing.start()
        watching.start()
        await registry.start()
        await executor.start()  # never fails: without an engine, runs say why they are off
        if settings.heartbeat_seconds > 0:
            tasks.append(asyncio.create_task(heartbeat.run(registry, settings.heartbeat_seconds)))
        # Closed leaderboard windows frozen shortly after they close (not on first read).
        tasks.append(asyncio.create_task(run_freezer(store)))

    async def shutdown(app: web.Application) -> None:
        for task in tasks:
            task.cancel()
        timeout = settings.shutdown_timeout_seconds
        # Store what is queued first: its forwards are among the frames flushed next.
        await commit.close(timeout / 2)
        await _flush(registry, timeout / 2)
        sockets.close_all(CloseCode.GOING_AWAY, "server shutting down")
        await sockets.wait_closed(timeout / 2)
        await registry.close(CloseCode.GOING_AWAY, "server shutting down")
        await bus.close()
        await runs.close()
        if shared is not None:
            await shared.close()
        await questions.close()
        await executor.close()
        # What was observed up to now goes to the ledger before the store closes.
        await pairing.close()
        await watching.close()
        await feed.close(timeout / 2)

    async def cleanup(app: web.Application) -> None:
        if owned:
            await store.close()
            if embedded is not None:
                await embedded.stop()

    app.on_startup.append(start)
    app.on_shutdown.append(shutdown)
    app.on_cleanup.append(cleanup)
    return app


async def _flush(registry: RoomRegistry, timeout: float) -> None:
    """Give queued frames a bounded time to reach clients before the close frames."""
    deadline = time.monotonic() + timeout / 2
    while time.monotonic() < deadline:
        pending = sum(
            conn.transport.get_write_buffer_size()
            for room in registry.rooms.values()
            for conn in room.connections
            if not conn.transport.is_closing()
        )
        if pending == 0:
            return
        await asyncio.sleep(0.01)
    log.warning("shutdown flush timed out; closing with data still queued")


async def start_site(runner: web.AppRunner, host: str, port: int) -> asyncio.Server:
    """Listen with the front door: room sockets to RoomSocket, the rest to aiohttp."""
    app = runner.app
    sockets = app[SOCKETS]
    admit = app[GATE].admit
    http = runner.server
    assert http is not None, "runner.setup() first"
    loop = asyncio.get_running_loop()
    return await loop.create_server(
        lambda: FrontDoor(http, sockets, admit), host, port, reuse_address=True
    )
