"""``gateway agents add|list``: manage agent accounts in the same Redis the server uses."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from collections.abc import Sequence

from gateway import audit
from gateway.redisconn import deployment_client
from gateway.rkeys import Keys
from gateway.settings import Settings, SettingsError, add_cli_arguments, cli_settings
from handoff.agents import ROLES, AgentError, AgentStore


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gateway agents", description="Manage agent accounts")
    add_cli_arguments(parser)
    sub = parser.add_subparsers(dest="command", required=True)
    add = sub.add_parser("add", help="create or update an agent")
    add.add_argument("name")
    add.add_argument("--role", choices=ROLES, default="agent")
    add.add_argument("--skills", default="zh", help="comma-separated, e.g. network,zh")
    add.add_argument("--capacity", type=int, default=3, help="chats at once")
    add.add_argument("--display-name", default="")
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    sub.add_parser("list", help="list agents")
    return parser


async def _add(store: AgentStore, args: argparse.Namespace) -> None:
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass(f"password for {args.name}: ")
    agent = await store.add(args.name, password, role=args.role, skills=tuple(args.skills.split(",")),
                            capacity=args.capacity, display_name=args.display_name,
                            by=audit.cli_operator())  # fmt: skip
    print(f"agent {agent.name} ({agent.role}; skills {', '.join(agent.skills)}; capacity {agent.capacity}) saved")


async def _list(store: AgentStore) -> None:
    print(f"{'name':<16} {'role':<11} {'capacity':>8}  skills")
    for a in await store.all():
        print(f"{a.name:<16} {a.role:<11} {a.capacity:>8}  {','.join(a.skills)}{'  (demo)' if a.demo else ''}")


async def _run(args: argparse.Namespace, settings: Settings) -> int:
    async with deployment_client(settings.redis.url, settings.data_dir, settings.redis.appendfsync) as client:
        store = AgentStore(client, Keys(settings.redis.key_prefix))  # type: ignore[arg-type]
        try:
            await (_add(store, args) if args.command == "add" else _list(store))
        except AgentError as exc:
            print(f"gateway agents: {exc}", file=sys.stderr)
            return 2
    return 0


def main(argv: Sequence[str]) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = cli_settings(args)
    except SettingsError as exc:
        print(f"gateway agents: configuration error: {exc}", file=sys.stderr)
        return 2
    return asyncio.run(_run(args, settings))
