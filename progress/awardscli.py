"""``opencode-live achievements load PATH`` and ``achievements backfill [ID]``.

Kept here rather than in server/cli.py so the command only needs the store:
server/cli.py adds the subcommand and hands over how to open the store (the
server's own way: DATABASE_URL or the embedded Postgres; it must not be
imported from here: domain packages never import ``server``).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable

from store import StoreUnavailable

from .cli import OpenStore
from .rules import RulesError, backfill, install_rules, load_rules


def add_commands(
    commands: argparse._SubParsersAction,  # type: ignore[type-arg]
    add_settings: Callable[[argparse.ArgumentParser], None],
) -> None:
    """Add ``achievements load|backfill`` to the CLI's subcommands; ``add_settings``
    adds the server's settings flags (--database-url, --data-dir...) to each."""
    parser = commands.add_parser("achievements", help="load achievement rules, award them")
    sub = parser.add_subparsers(dest="achievements_command", required=True)
    load = sub.add_parser(
        "load", help="check a rules file (YAML or JSON) and make it the achievement catalogue"
    )
    load.add_argument("path", metavar="PATH", help="e.g. progress/achievements.yaml")
    fill = sub.add_parser(
        "backfill", help="award achievements to everyone who already qualifies for them"
    )
    fill.add_argument("id", nargs="?", default=None, metavar="ID", help="one achievement id")
    add_settings(load)
    add_settings(fill)


async def _run(args: argparse.Namespace, open_store: OpenStore) -> int:
    if args.achievements_command == "load":
        achievements = load_rules(args.path)  # before the database: a bad file needs none
    async with open_store() as store:
        if args.achievements_command == "load":
            done = await install_rules(store, achievements)
            print(
                f"{len(achievements)} achievements in {args.path}: "
                f"added {done.added or 'none'}, updated {done.updated or 'none'}, "
                f"retired {done.retired or 'none'}"
            )
        else:
            awarded = await backfill(store, args.id)
            for achievement_id, users in awarded.items():
                print(f"{achievement_id}: awarded to {len(users)} more people")
    return 0


def main(args: argparse.Namespace, open_store: OpenStore) -> int:
    """Run the parsed command; errors a user can cause get one line and exit code 2."""
    try:
        return asyncio.run(_run(args, open_store))
    except RulesError as exc:
        print(f"opencode-live: {exc}", file=sys.stderr)
        return 2
    except StoreUnavailable as exc:
        print(f"opencode-live: {exc}", file=sys.stderr)
        return 1
