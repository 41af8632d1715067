"""Server configuration: one frozen dataclass, read from flags and CAIRN_* env vars here only.

Precedence: command-line flag > environment variable (CAIRN_<FLAG_NAME>) > default.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit


def _opt(help: str, **kw: Any) -> Any:
    return field(metadata={"help": help}, **kw)


@dataclass(frozen=True)
class Config:
    """Everything `cairn serve` can be told. Units are in the names."""

    listen: str = _opt("address to serve on: host:port or unix:/path", default="127.0.0.1:50051")
    redis_url: str | None = _opt("Redis hot cache (redis://host:port/db); none = in-process cache", default=None)
    postgres_dsn: str | None = _opt("Postgres cold store (postgresql://...); none = SQLite file", default=None)
    sqlite_path: str = _opt("SQLite file of the embedded cold store", default="./cairn.db")
    cache_ttl_seconds: int = _opt("how long a checkpoint stays in the hot cache", default=3600)
    cache_max_entries: int = _opt("entries kept by the in-process cache (embedded default)", default=10_000)
    zstd_level: int = _opt("zstd compression level of stored states (1-19)", default=3)
    max_state_bytes: int = _opt("largest state accepted; gRPC's max message size follows it", default=64 << 20)
    max_id_bytes: int = _opt("longest thread, namespace, checkpoint, task id (UTF-8 bytes)", default=512)
    max_metadata_bytes: int = _opt("largest metadata or filter, as JSON bytes", default=64 << 10)
    max_metadata_depth: int = _opt("deepest nesting of metadata or filters (protobuf itself stops near 30)", default=20)
    default_page_size: int = _opt("page size when a List asks for 0", default=100)
    max_page_size: int = _opt("page sizes above this are capped", default=1000)
    max_batch_items: int = _opt("most loads in one BatchLoad, writes in one PutWrites", default=1000)
    postgres_pool_size: int = _opt("Postgres connections per server process", default=10)
    cold_timeout_seconds: float = _opt("a cold-store call slower than this fails with UNAVAILABLE", default=5.0)
    cache_timeout_seconds: float = _opt("a cache call slower than this falls through to the cold store", default=0.5)
    migrate: bool = _opt("apply schema migrations on start", default=True)
    log_level: str = _opt("DEBUG, INFO, WARNING or ERROR", default="INFO")

    @property
    def max_message_bytes(self) -> int:
        """gRPC message limit: the largest state plus room for metadata and ids."""
        return self.max_state_bytes + self.max_metadata_bytes + (1 << 20)

    def redacted(self) -> dict[str, Any]:
        """The config with passwords removed, for the start-up log line."""
        out = dataclasses.asdict(self)
        for key in ("redis_url", "postgres_dsn"):
            if out[key]:
                parts = urlsplit(out[key])
                if parts.password:
                    host = parts.netloc.rsplit("@", 1)[-1]
                    out[key] = urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))
        return out


def _env_name(name: str) -> str:
    return "CAIRN_" + name.upper()


def _parse_bool(text: str) -> bool:
    low = text.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"not a boolean: {text!r} (use true or false)")


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per Config field (--cache-ttl-seconds ...), defaulting to 'unset'."""
    for f in dataclasses.fields(Config):
        flag = "--" + f.name.replace("_", "-")
        help_text = f"{f.metadata['help']} (env {_env_name(f.name)}; default {f.default})"
        if f.type in ("bool",):
            parser.add_argument(flag, dest=f.name, default=None, action=argparse.BooleanOptionalAction, help=help_text)
        else:
            parser.add_argument(flag, dest=f.name, default=None, help=help_text)


def load_config(args: argparse.Namespace, env: dict[str, str] | None = None) -> Config:
    """Build the Config from parsed flags, then env vars, then defaults."""
    env = dict(os.environ) if env is None else env
    values: dict[str, Any] = {}
    for f in dataclasses.fields(Config):
        raw = getattr(args, f.name, None)
        if raw is None:
            raw = env.get(_env_name(f.name))
        if raw is None:
            continue
        if isinstance(raw, bool) or f.type == "str" or f.type == "str | None":
            values[f.name] = raw
        elif f.type == "bool":
            values[f.name] = _parse_bool(raw)
        elif f.type == "int":
            values[f.name] = int(raw)
        elif f.type == "float":
            values[f.name] = float(raw)
        else:  # pragma: no cover - every field type is handled above
            raise TypeError(f.type)
    return Config(**values)
