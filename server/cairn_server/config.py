"""Server configuration: one frozen dataclass, read from flags and CAIRN_* env vars here only.

Precedence: command-line flag > environment variable (CAIRN_<FLAG_NAME>) > config file
(TOML, `--config PATH` or CAIRN_CONFIG; keys are the flag names with underscores) > default.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit


class StartupError(Exception):
    """The server cannot start: a bad setting or an unreachable dependency.

    Its message is one line that names the flag, address or host at fault and says what to do; `cairn`
    prints it without a traceback and exits 2.
    """


def _opt(help: str, **kw: Any) -> Any:
    return field(metadata={"help": help}, **kw)


@dataclass(frozen=True)
class Config:
    """Everything `cairn serve` can be told. Units are in the names."""

    listen: str = _opt("address to serve on: host:port or unix:/path", default="127.0.0.1:50051")
    redis_url: str | None = _opt(
        "Redis hot cache: redis://host:port/db, rediss://, unix:///path, or a Redis Cluster as "
        "redis+cluster://host:port,host:port (README 'Redis'); none = in-process cache", default=None)
    redis_cluster: bool = _opt("--redis-url names seed nodes of a Redis Cluster (same as redis+cluster://)",
                               default=False)
    postgres_dsn: str | None = _opt("Postgres cold store (postgresql://...); none = SQLite file", default=None)
    sqlite_path: str = _opt("SQLite file of the embedded cold store", default="./cairn.db")
    cache_ttl_seconds: int = _opt(
        "how long a thread's head stays in the hot cache after it is saved or read as the head", default=3600
    )
    cache_recent_ttl_seconds: float = _opt(
        "how long a checkpoint stays in the hot cache once a newer head replaced it, or after it was read by id "
        "(0 = drop it at once): the cache holds heads, not history",
        default=10,
    )
    cache_fill_on_save: bool = _opt(
        "also put every saved head into the hot cache (Redis) at save time, cutting the head it replaced to "
        "--cache-recent-ttl-seconds; off, the hot cache is filled by reads only (a head read fills it for "
        "--cache-ttl-seconds), so saves cost Redis nothing: each server process already keeps its own saves in "
        "its near cache, and graph runtimes read a head once per resume, not after every step",
        default=False,
    )
    cache_max_entries: int = _opt("entries kept by the in-process cache (embedded default)", default=10_000)
    cache_max_mb: int = _opt("bytes (MB) of entries kept by the in-process cache (embedded default)", default=256)
    near_cache_mb: int = _opt(
        "decoded checkpoints and List pages kept inside each server process (MB), in front of the hot cache; "
        "0 = off. Like every cached copy, a near hit is served only while the cold store vouches for it "
        "(one small query per read, shared by concurrent reads)",
        default=64,
    )
    near_lease_ms: int = _opt(
        "ignored (accepted so existing command lines still start): reads no longer trust near leases",
        default=0,
    )
    zstd_level: int = _opt(
        "zstd compression level of stored states (1-22; above 19 is slow). Level 1 takes ~30 percent less CPU "
        "than 3 for ~5 percent larger agent states; rows of every level stay readable",
        default=1,
    )
    zstd_dictionary: str = _opt(
        "latest: compress new states with the newest dictionary `cairn dict train` stored (read at start); "
        "off: plain zstd. Rows written with any dictionary stay readable either way",
        default="latest",
    )
    max_state_bytes: int = _opt("largest state accepted; gRPC's max message size follows it", default=64 << 20)
    max_id_bytes: int = _opt("longest thread, namespace, checkpoint, task id (UTF-8 bytes)", default=512)
    max_metadata_bytes: int = _opt("largest metadata or filter, as JSON bytes", default=64 << 10)
    max_metadata_depth: int = _opt("deepest nesting of metadata or filters (protobuf itself stops near 30)", default=20)
    default_page_size: int = _opt("page size when a List asks for 0", default=100)
    max_page_size: int = _opt("page sizes above this are capped", default=1000)
    max_batch_items: int = _opt("most loads in one BatchLoad, saves in one SaveBatch, writes in one PutWrites",
                                default=1000)
    max_response_bytes: int = _opt(
        "largest List page or BatchLoad response built (also capped by gRPC's message limit): a page ends early "
        "with a next_page_token, a BatchLoad item past it fails alone with RESOURCE_EXHAUSTED",
        default=32 << 20,
    )
    stream_window_bytes: int = _opt(
        "bytes one SaveStream may have read and not yet answered; past it the stream is not read from, and "
        "HTTP/2 flow control holds the client back",
        default=8 << 20,
    )
    max_inflight_stream_bytes: int = _opt(
        "bytes all SaveStreams together may have read and not yet answered (each is held ~3 times over while "
        "it is committed: request, state, database buffer)",
        default=64 << 20,
    )
    max_commit_batch_bytes: int = _opt(
        "largest batch of saves (a stream's, or concurrent Saves grouped) committed in one cold transaction",
        default=8 << 20,
    )
    commit_concurrency: int = _opt(
        "save commits (cache round trips + one cold transaction each) run at once; saves arriving meanwhile "
        "queue and share the next one. 1 batches most; raise it when the cold store's latency, not this "
        "server's CPU, limits saves",
        default=1,
    )
    postgres_pool_size: int = _opt("Postgres connections per server process", default=10)
    postgres_statement_cache_size: int = _opt(
        "prepared statements asyncpg keeps per Postgres connection; 0 behind a pooler in transaction mode "
        "(pgbouncer pool_mode=transaction), where a statement prepared in one transaction is gone in the next",
        default=100,
    )
    cold_timeout_seconds: float = _opt("a cold-store call slower than this fails with UNAVAILABLE", default=5.0)
    cache_timeout_seconds: float = _opt("a cache call slower than this falls through to the cold store", default=0.5)
    health_probe_seconds: float = _opt(
        "how often the cold store is probed; health says NOT_SERVING while it does not answer", default=1.0
    )
    migrate: bool = _opt("apply schema migrations on start", default=True)
    log_level: str = _opt("DEBUG, INFO, WARNING or ERROR", default="INFO")
    log_format: str = _opt("json, text, or auto (json when stderr is not a terminal)", default="auto")
    event_loop: str = _opt("auto (uvloop when installed), uvloop or asyncio", default="auto")
    grace_seconds: float = _opt("on SIGTERM, how long in-flight calls may finish", default=10.0)
    workers: int = _opt("server processes sharing the port (SO_REUSEPORT; needs a TCP --listen with a fixed port)", default=1)
    metrics_listen: str | None = _opt("serve Prometheus /metrics on host:port", default=None)
    tls_cert: str | None = _opt("PEM certificate chain: serve TLS", default=None)
    tls_key: str | None = _opt("PEM private key of --tls-cert", default=None)
    tls_client_ca: str | None = _opt("PEM CA bundle: require client certificates (mutual TLS)", default=None)
    auth_tokens_file: str | None = _opt("file of 'TOKEN TENANT' lines: require bearer tokens", default=None)
    auth_tokens: str | None = _opt("'TOKEN TENANT' pairs separated by ',' or newlines (secret)", default=None)
    encryption_keys: str | None = _opt(
        "encrypt states at rest: 'KEY_ID:BASE64_32_BYTES' items separated by ','; the first encrypts, "
        "all decrypt (rotation) (secret)",
        default=None,
    )
    allow_plaintext_saves: bool = _opt(
        "accept saves without --encryption-keys on a store that holds encrypted rows (they are stored in "
        "plaintext)",
        default=False,
    )
    retention_max_checkpoints: int = _opt("keep at most this many checkpoints per thread head (0 = all)", default=0)
    retention_max_age_seconds: int = _opt("delete checkpoints older than this, except each head (0 = never)",
                                          default=0)
    retention_interval_seconds: float = _opt("how often the background retention pass runs", default=60.0)

    @property
    def max_message_bytes(self) -> int:
        """gRPC message limit: the largest state plus room for metadata and ids."""
        return self.max_state_bytes + self.max_metadata_bytes + (1 << 20)

    def redacted(self) -> dict[str, Any]:
        """The config with passwords and secrets removed, for the start-up log line."""
        out = dataclasses.asdict(self)
        for key in _SECRETS:
            if out[key]:
                out[key] = "***"
        for key in ("redis_url", "postgres_dsn"):
            if out[key]:
                parts = urlsplit(out[key])
                if parts.password:
                    host = parts.netloc.rsplit("@", 1)[-1]
                    out[key] = urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))
        return out


_SECRETS = ("auth_tokens", "encryption_keys")
ZSTD_LEVELS = (1, 22)


def check_listen(flag: str, listen: str, *, allow_unix: bool) -> None:
    """A listen address is host:port with a port in 0-65535 (or unix:/path where allowed)."""
    if allow_unix and listen.startswith("unix:"):
        if len(listen) > len("unix:"):
            return
    else:
        host, sep, port = listen.rpartition(":")
        if sep and port.isdigit() and int(port) <= 65535 and (host or not allow_unix):
            return
    forms = "host:port (e.g. 127.0.0.1:50051) or unix:/path" if allow_unix else "host:port (e.g. 127.0.0.1:9090)"
    raise ValueError(f"{flag} expects {forms}, got {listen!r}")


def check_redis(url: str | None, cluster: bool) -> None:
    """The Redis URL is a form the cache honours (storage/redis_url.py) and its TLS files can be read."""
    if not url:
        if cluster:
            raise ValueError("--redis-cluster needs --redis-url naming one or more seed nodes (host:port,...)")
        return
    from .storage.redis_url import parse_redis_url

    target = parse_redis_url(url, cluster=cluster)
    if target.tls is not None:
        try:
            target.tls.context()
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            raise ValueError(f"--redis-url: cannot use its TLS files: {exc}") from None


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
    parser.add_argument("--config", default=None, help="TOML config file (env CAIRN_CONFIG)")
    for f in dataclasses.fields(Config):
        flag = "--" + f.name.replace("_", "-")
        help_text = f"{f.metadata['help']} (env {_env_name(f.name)}; default {f.default})"
        if f.type in ("bool",):
            parser.add_argument(flag, dest=f.name, default=None, action=argparse.BooleanOptionalAction, help=help_text)
        else:
            parser.add_argument(flag, dest=f.name, default=None, help=help_text)


def _read_file(path: str) -> dict[str, Any]:
    import tomllib

    with open(path, "rb") as fh:
        data = tomllib.load(fh)
    known = {f.name for f in dataclasses.fields(Config)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"{path}: unknown setting(s) {', '.join(unknown)}; see `cairn serve --help`")
    return data


def load_config(args: argparse.Namespace, env: dict[str, str] | None = None) -> Config:
    """Build the Config from parsed flags, then env vars, then the config file, then defaults."""
    env = dict(os.environ) if env is None else env
    path = getattr(args, "config", None) or env.get("CAIRN_CONFIG")
    from_file = _read_file(path) if path else {}
    values: dict[str, Any] = {}
    for f in dataclasses.fields(Config):
        raw = getattr(args, f.name, None)
        if raw is None:
            raw = env.get(_env_name(f.name))
        if raw is None and f.name in from_file:
            raw = from_file[f.name]
            if not isinstance(raw, str):
                values[f.name] = raw
                continue
        if raw is None:
            continue
        try:
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
        except ValueError as exc:
            flag = "--" + f.name.replace("_", "-")
            kind = {"int": "an integer", "float": "a number", "bool": "true or false"}.get(f.type, f.type)
            raise ValueError(f"{flag} ({_env_name(f.name)}) expects {kind}, got {raw!r}") from exc
    if values.get("event_loop", "auto") not in ("auto", "uvloop", "asyncio"):
        raise ValueError(f"--event-loop expects auto, uvloop or asyncio, got {values['event_loop']!r}")
    if values.get("zstd_dictionary", "latest") not in ("latest", "off"):
        raise ValueError(f"--zstd-dictionary expects latest or off, got {values['zstd_dictionary']!r}")
    if values.get("cache_recent_ttl_seconds", 0) < 0:
        raise ValueError(
            f"--cache-recent-ttl-seconds expects 0 (drop at once) or more, got {values['cache_recent_ttl_seconds']}"
        )
    if not 0 <= values.get("near_lease_ms", 0) <= 1000:
        raise ValueError(
            f"--near-lease-ms expects 0 to 1000 (it is ignored), got {values['near_lease_ms']}"
        )
    level = values.get("zstd_level", 1)
    if not ZSTD_LEVELS[0] <= level <= ZSTD_LEVELS[1]:
        raise ValueError(f"--zstd-level expects {ZSTD_LEVELS[0]} to {ZSTD_LEVELS[1]} (zstd's levels; default 1), "
                         f"got {level}")
    if values.get("workers", 1) < 1:
        raise ValueError(f"--workers expects 1 or more, got {values['workers']}")
    if values.get("postgres_pool_size", 10) < 2:
        raise ValueError(f"--postgres-pool-size expects 2 or more (one connection stays with the versions query "
                         f"every read asks first), got {values['postgres_pool_size']}")
    check_listen("--listen", values.get("listen", "127.0.0.1:50051"), allow_unix=True)
    if values.get("metrics_listen"):
        check_listen("--metrics-listen", values["metrics_listen"], allow_unix=False)
    if values.get("postgres_statement_cache_size", 0) < 0:
        raise ValueError("--postgres-statement-cache-size expects 0 (no prepared statements kept: behind pgbouncer "
                         f"in transaction mode) or more, got {values['postgres_statement_cache_size']}")
    check_redis(values.get("redis_url"), values.get("redis_cluster", False))
    if values.get("near_cache_mb", 0) < 0:
        raise ValueError(f"--near-cache-mb expects 0 (off) or more, got {values['near_cache_mb']}")
    return Config(**values)
