"""The `cairn` command: serve and migrate here; other subcommands register themselves.

Each of the modules in _SUBCOMMANDS (and the API-client tools of _TOOLS, in cairn_tools and cairn_console) has
`register(subparsers)` adding its parsers with a `func`.
The connection flags of the client commands (GLOBAL_FLAGS) may also come before the subcommand
(`cairn --json threads`): they are moved behind it before parsing, where the subcommand checks them.

Exit codes: 0 success; 1 a failed or refused operation (not found, server error, unreachable server,
not confirmed); 2 bad usage or a server that cannot start (one line naming the flag, address or host);
130 interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import importlib
import logging
import sys

from .config import StartupError, add_config_flags, load_config

# flag -> takes a value; accepted before the subcommand as well as after it.
GLOBAL_FLAGS = {"--target": True, "--token": True, "--tls-ca": True, "--tls-server-name": True,
                "--timeout": True, "--json": False}


_SUBCOMMANDS = ("dictionary", "quarantined")  # server-side commands, modules of this package
_TOOLS = ("cairn_tools.admin", "cairn_tools.bench", "cairn_tools.runs", "cairn_console.cli")  # API clients


def _setup_logging(level: str, fmt: str = "auto") -> None:
    from . import logs

    logs.setup(level, fmt)


def cmd_serve(args: argparse.Namespace) -> int:
    config = load_config(args)
    _setup_logging(config.log_level, config.log_format)
    from .auth import Authenticator
    from .server import check_workers, run_event_loop, serve, serve_workers

    auth = Authenticator.from_config(config)
    check_workers(config)
    console = None
    if args.console_listen:
        from cairn_console.cli import spawn_for_server

        console = spawn_for_server(config.listen, config.metrics_listen, args.console_listen, args.console_token_file)
    try:
        if config.workers > 1:
            return serve_workers(config, auth)
        run_event_loop(serve(config, auth), config.event_loop)
        return 0
    finally:
        if console is not None:
            console.terminate()
            console.wait(10)


def cmd_migrate(args: argparse.Namespace) -> int:
    config = load_config(args)
    _setup_logging(config.log_level)
    from .server import open_store

    async def run() -> None:
        store = await open_store(dataclasses.replace(config, migrate=True))
        await store.aclose()

    asyncio.run(run())
    logging.getLogger("cairn").info("schema is up to date")
    return 0


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    from . import __version__

    try:
        return version("cairn-checkpoint")
    except PackageNotFoundError:  # running from a source tree that was not installed
        return __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cairn", description="Cairn: a checkpoint store for durable graphs",
        epilog="`cairn COMMAND --help` describes a command. Connection flags (--target, --token, --tls-ca, "
        "--tls-server-name, --timeout, --json) may come before or after the command.",
    )
    parser.add_argument("--version", action="version", version=f"cairn {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve = sub.add_parser("serve", help="run the gRPC server")
    add_config_flags(serve)
    serve.add_argument("--console-listen", metavar="HOST:PORT", default=None,
                       help="also serve a read-only `cairn console` for this server on HOST:PORT")
    serve.add_argument("--console-token-file", default=None,
                       help="with --console-listen and auth: the token file the console uses")
    serve.set_defaults(func=cmd_serve)
    migrate = sub.add_parser("migrate", help="create or upgrade the cold store's schema, then exit")
    add_config_flags(migrate)
    migrate.set_defaults(func=cmd_migrate)
    for module_name in (*(f"{__package__}.{name}" for name in _SUBCOMMANDS), *_TOOLS):
        try:
            module = importlib.import_module(module_name)
            module.register(sub)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                print(f"cairn: `{module_name}` commands unavailable: {exc}", file=sys.stderr)
        except Exception as exc:  # one broken optional command must not take `cairn serve`/`health` down
            print(f"cairn: `{module_name}` commands unavailable: {exc!r}", file=sys.stderr)
    return parser


def hoist_global_flags(argv: list[str], commands: set[str]) -> list[str]:
    """Moves GLOBAL_FLAGS given before the subcommand to just after it: `--json threads` -> `threads --json`."""
    before: list[str] = []
    i = 0
    while i < len(argv) and argv[i] not in commands:
        flag = argv[i].split("=", 1)[0]
        if flag not in GLOBAL_FLAGS:
            return argv  # something else (--help, --version, a typo): argparse reports it
        takes_value = GLOBAL_FLAGS[flag] and "=" not in argv[i]
        before.extend(argv[i : i + 1 + takes_value])
        i += 1 + takes_value
    if i >= len(argv) or not before:
        return argv
    return [argv[i], *before, *argv[i + 1 :]]


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        parser.print_help()
        return 0
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    args = parser.parse_args(hoist_global_flags(argv, set(sub.choices)))
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except (StartupError, ValueError, OSError) as exc:  # bad configuration, or a server that cannot start
        print(f"cairn: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("cairn: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
