"""``cairn console``: serve the console for one Cairn server.

    cairn console --target 127.0.0.1:50051 [--token-file PATH] [--listen 127.0.0.1:8080]
                  [--metrics-url http://127.0.0.1:9090/metrics] [--allow-writes]

The token is read from ``--token-file`` or $CAIRN_TOKEN, never from the command line, where other
users of the machine could read it. Nothing heavy is imported by ``register``: it runs for every
``cairn`` invocation.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

DEFAULT_LISTEN = "127.0.0.1:8080"


def parse_listen(text: str) -> tuple[str, int]:
    """``host:port`` (IPv6 as ``[::1]:port``) -> (host, port); ValueError with the expected form."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"--listen expects host:port, e.g. {DEFAULT_LISTEN}; got {text!r}")
    host = host.strip("[]") or "127.0.0.1"
    return host, int(port)


def add_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--target", default=os.environ.get("CAIRN_TARGET") or "127.0.0.1:50051",
        help="Cairn server address, host:port or unix:/path (env CAIRN_TARGET; default %(default)s)",
    )
    parser.add_argument(
        "--token-file", default=None,
        help="file holding the bearer token (else env CAIRN_TOKEN); the console sees that token's tenant",
    )
    parser.add_argument("--tls-ca", metavar="PEM", default=os.environ.get("CAIRN_TLS_CA") or None,
                        help="connect with TLS, trusting this CA certificate file (env CAIRN_TLS_CA)")
    parser.add_argument("--tls-server-name", default=None, help="expected server name in its certificate")
    parser.add_argument("--listen", default=DEFAULT_LISTEN,
                        help="HTTP address of the console (default %(default)s: this machine only)")
    parser.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                        help="a host name the console is reached by besides its --listen address (repeatable); "
                             "requests naming any other host are refused (DNS rebinding)")
    parser.add_argument("--metrics-url", default=None,
                        help="the server's Prometheus endpoint, e.g. http://127.0.0.1:9090/metrics "
                             "(`cairn serve --metrics-listen`), drawn on the health page")
    parser.add_argument("--metrics-interval-seconds", type=float, default=5.0,
                        help="how often the health page samples --metrics-url (default %(default)s)")
    parser.add_argument("--allow-writes", action="store_true",
                        help="offer fork, delete, clear and prune (each behind a confirmation); "
                             "without it the console is read-only")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per gRPC call (default 10)")


def register(sub: Any) -> None:
    parser = sub.add_parser("console", help="serve a browser console for a Cairn server",
                            description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_flags(parser)
    parser.set_defaults(func=cmd_console)


def _read_token(args: argparse.Namespace) -> str | None:
    if args.token_file:
        try:
            token = Path(args.token_file).read_text().strip()
        except OSError as exc:
            raise ValueError(f"cannot read --token-file {args.token_file}: {exc.strerror or exc}") from None
        if not token:
            raise ValueError(f"--token-file {args.token_file} is empty")
        return token
    return os.environ.get("CAIRN_TOKEN") or None


def config_from_args(args: argparse.Namespace) -> Any:
    """The ConsoleConfig these flags describe; ValueError for a bad flag."""
    from cairn_client import TLS

    from .app import ConsoleConfig

    host, port = parse_listen(args.listen)
    tls = None
    if args.tls_ca:
        try:
            tls = TLS(root_certificates=Path(args.tls_ca).read_bytes(), server_name_override=args.tls_server_name)
        except OSError as exc:
            raise ValueError(f"cannot read --tls-ca {args.tls_ca}: {exc.strerror or exc}") from None
    if args.metrics_interval_seconds <= 0:
        raise ValueError("--metrics-interval-seconds must be a positive number of seconds")
    if args.timeout <= 0:
        raise ValueError("--timeout must be a positive number of seconds")
    if args.metrics_url and not args.metrics_url.startswith(("http://", "https://")):
        raise ValueError(f"--metrics-url expects an http:// URL, got {args.metrics_url!r}")
    return ConsoleConfig(
        target=args.target, listen_host=host, listen_port=port, allow_hosts=tuple(args.allow_host),
        token=_read_token(args), tls=tls,
        allow_writes=args.allow_writes, metrics_url=args.metrics_url,
        metrics_interval_seconds=args.metrics_interval_seconds, timeout_seconds=args.timeout,
    )


def cmd_console(args: argparse.Namespace) -> int:
    try:
        import aiohttp  # noqa: F401
    except ImportError:
        print("cairn console needs aiohttp: pip install 'cairn-checkpoint[console]'", file=sys.stderr)
        return 2
    import asyncio
    import logging

    from .app import run

    config = config_from_args(args)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    def ready(url: str) -> None:
        mode = "read-write" if config.allow_writes else "read-only"
        print(f"cairn console: {url} ({mode}) for {config.target}", flush=True)
        if config.listen_host not in ("127.0.0.1", "::1", "localhost"):
            print(f"cairn console: listening on {config.listen_host}: anyone who reaches this address sees "
                  "the token's tenant; put it behind an authenticating proxy", file=sys.stderr, flush=True)

    try:
        asyncio.run(run(config, ready))
    except KeyboardInterrupt:
        pass
    return 0


def _local(address: str) -> str:
    host, _, port = address.rpartition(":")
    return f"127.0.0.1:{port}" if host in ("", "0.0.0.0", "[::]", "::") else address


def spawn_for_server(
    server_listen: str, metrics_listen: str | None, console_listen: str, token_file: str | None
) -> Any:
    """``cairn serve --console-listen``: a read-only console for that server, as a process of its own.

    It is a client of the gRPC API like any other, so rendering a large state never holds up the
    server's event loop. Returns the ``subprocess.Popen``; the caller terminates it.
    """
    import subprocess

    parse_listen(console_listen)
    target = server_listen if server_listen.startswith("unix:") else _local(server_listen)
    argv = [sys.executable, "-m", "cairn_console", "--target", target, "--listen", console_listen]
    if metrics_listen:
        argv += ["--metrics-url", f"http://{_local(metrics_listen)}/metrics"]
    if token_file:
        argv += ["--token-file", token_file]
    return subprocess.Popen(argv)
