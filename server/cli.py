"""The ``opencode-live`` command."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import AsyncIterator, Callable

import uvloop
from aiohttp import web

from store import Store

from .app import create_app, start_site
from .config import Settings, add_arguments, load_settings
from .keys import VERIFIER
from .logs import setup_logging
from .signin import SIGNIN_SECONDS, signin_link
from .tokens import ROLES

log = logging.getLogger("opencode_live.server")


async def serve(settings: Settings) -> None:
    """Run until SIGTERM or SIGINT, then close every socket with 1001 after flushing."""
    app = await create_app(settings)
    runner = web.AppRunner(
        app, handle_signals=False, shutdown_timeout=settings.shutdown_timeout_seconds
    )
    await runner.setup()
    listener = await start_site(runner, settings.host, settings.port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    port = listener.sockets[0].getsockname()[1]
    base = f"http://{settings.host}:{port}/"
    log.info("listening", extra={"host": settings.host, "port": port, "url": base})
    verifier = app[VERIFIER]
    if verifier.secret is not None:
        # Like Jupyter: a link that signs an instructor in (once) on this server.
        token = verifier.mint(
            name="Instructor",
            role="instructor",
            user_id="instructor",
            ttl_seconds=SIGNIN_SECONDS,
            purpose="signin",
        )
        log.info("sign-in link for an instructor", extra={"url": signin_link(base, token)})
    try:
        await stop.wait()
        log.info("shutting down")
    finally:
        listener.close()
        await runner.cleanup()
        log.info("stopped")


async def work(settings: Settings, slots: int | None = None, cpuset: str | None = None) -> None:
    """``opencode-live worker``: take run jobs from the Redis queue until SIGTERM or SIGINT,
    then finish the runs in hand (``executor.worker``). ``slots`` and ``cpuset``: the
    worker-only flags ``--worker-slots`` and ``--worker-cpuset`` (see ``build_parser``)."""
    from executor import Worker

    worker = Worker(
        settings.redis_url,
        settings.run_queue_prefix,
        settings.executor_config(),
        concurrency=slots,
        cpuset_cpus=cpuset,
    )
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, worker.stop)
    if settings.worker_metrics_port:
        from prometheus_client import start_http_server

        start_http_server(settings.worker_metrics_port, addr=settings.host)
    await worker.start()
    await worker.serve()


def worker_main(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(args)
        if not settings.redis_url:
            raise ValueError("a worker needs the run queue's Redis: set REDIS_URL (or --redis-url)")
        if args.worker_slots is not None and args.worker_slots < 1:
            raise ValueError("--worker-slots must be at least 1")
        if args.worker_cpuset is not None:
            from executor.worker import check_cpuset

            check_cpuset(args.worker_cpuset)
    except ValueError as exc:
        print(f"opencode-live: {exc}", file=sys.stderr)
        return 2
    setup_logging(settings.log_level)
    uvloop.run(work(settings, args.worker_slots, args.worker_cpuset))
    return 0


def course_main(args: argparse.Namespace) -> int:
    """``course validate|load``: settings, languages and the database from here (``progress``
    never imports ``server``); the checking and loading in ``progress.cli``."""
    from executor.languages import load_languages
    from progress.cli import load_command, validate_command

    try:
        settings = load_settings(args)
        languages = sorted(load_languages(settings.executor_config().languages_dir))
    except ValueError as exc:  # a bad setting, or a bad language spec (LanguageSpecError)
        print(f"opencode-live: {exc}", file=sys.stderr)
        return 2
    if args.course_command == "validate":
        return validate_command(args.path, languages)
    setup_logging(settings.log_level)
    return uvloop.run(load_command(args.path, store_opener(settings), languages))


def store_opener(settings: Settings) -> Callable[[], contextlib.AbstractAsyncContextManager[Store]]:
    """Opening the store as ``serve`` does (DATABASE_URL, else the embedded Postgres), for
    the commands of domain packages, which may not import ``server``."""
    from .app import open_store

    @contextlib.asynccontextmanager
    async def store() -> AsyncIterator[Store]:
        opened, embedded = await open_store(settings)
        try:
            yield opened
        finally:
            await opened.close()
            if embedded is not None:
                await embedded.stop()

    return store


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="opencode-live",
        description="Real-time collaboration and live-demo server for coding classes.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser("serve", help="run the server")
    add_arguments(serve_parser)
    worker = commands.add_parser(
        "worker",
        help="run code for the servers: take run jobs from Redis (REDIS_URL) and run them "
        "in this host's Docker Engine",
    )
    add_arguments(worker)
    # Worker-only, flags without a setting: for running several workers on one host
    # (bench/runs.py --workers); the defaults change nothing.
    worker.add_argument(
        "--worker-slots",
        type=int,
        default=None,
        metavar="N",
        help="runs this worker takes at once (default: --run-pool-max); fewer than "
        "--run-pool-max lets users keep their containers while only N run",
    )
    worker.add_argument(
        "--worker-cpuset",
        default=None,
        metavar="CPUS",
        help="pin this worker's run containers to these host CPUs, Docker's --cpuset-cpus "
        "syntax (0, 0-1, 0,2); default: any CPU (each run still gets --run-cpus)",
    )
    commands.add_parser("settings", help="print the settings table (Markdown)")
    token = commands.add_parser(
        "token", help="mint a sign-in token (shared-secret mode) for a student, TA or instructor"
    )
    token.add_argument("--name", required=True, help="display name")
    token.add_argument("--role", default="student", choices=ROLES)
    token.add_argument("--cohort", default=None, help="cohort (class) the person belongs to")
    token.add_argument("--user-id", default=None, help="stable user id (default: a new UUID)")
    token.add_argument("--room", default=None, help="limit the token to this room")
    token.add_argument("--hours", type=float, default=12.0, help="validity in hours")
    token.add_argument(
        "--signin-url",
        default=None,
        metavar="BASE",
        help="print a one-time sign-in link on this server (e.g. http://host:8000/) "
        "instead of a bare token",
    )
    add_arguments(token)
    demo = commands.add_parser("demo", help="work with demo files (*.demo.json)")
    demo_commands = demo.add_subparsers(dest="demo_command", required=True)
    validate = demo_commands.add_parser(
        "validate", help="check demo files; folders are searched for *.demo.json"
    )
    validate.add_argument("paths", nargs="+", metavar="PATH", help="a demo file or a folder")
    course = commands.add_parser("course", help="check and load course folders (course.yaml)")
    course_commands = course.add_subparsers(dest="course_command", required=True)
    for name, text in (
        ("validate", "check a course folder (no database needed)"),
        ("load", "check a course folder, then load it into the database"),
    ):
        course_command = course_commands.add_parser(name, help=text)
        course_command.add_argument(
            "path", metavar="PATH", help="a course folder or its course.yaml"
        )
        add_arguments(course_command)
    from progress.awardscli import add_commands as add_achievement_commands

    add_achievement_commands(commands, add_arguments)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "settings":
        from .config import settings_table

        print(settings_table())
        return 0
    if args.command == "demo":
        from demos.cli import validate_paths

        return validate_paths(args.paths)
    if args.command == "course":
        return course_main(args)
    if args.command == "worker":
        return worker_main(args)
    if args.command == "achievements":
        from progress.awardscli import main as achievements_main

        try:
            settings = load_settings(args)
        except ValueError as exc:
            print(f"opencode-live: {exc}", file=sys.stderr)
            return 2
        return achievements_main(args, store_opener(settings))
    try:
        settings = load_settings(args)
        if args.command == "token":
            verifier = settings.token_verifier()
            minted = verifier.mint(
                name=args.name,
                role=args.role,
                cohort=args.cohort,
                user_id=args.user_id,
                room=args.room,
                ttl_seconds=int(args.hours * 3600),
                purpose="signin" if args.signin_url else "access",
            )
            print(signin_link(args.signin_url, minted) if args.signin_url else minted)
            return 0
    except ValueError as exc:
        print(f"opencode-live: {exc}", file=sys.stderr)
        return 2
    setup_logging(settings.log_level)
    uvloop.run(serve(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
