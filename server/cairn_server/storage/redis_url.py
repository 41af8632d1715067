"""Redis URLs of the hot cache: the forms and options honoured, and a one-line refusal of everything else.

    redis://[[user]:password@]host[:port][/db]                    one Redis (db 0 when none is given)
    rediss://...                                                  the same over TLS
    unix://[[user]:password@]/path/to/socket[?db=N]               one Redis on a unix socket
    redis+cluster://[[user]:password@]host:port[,host:port...]    a Redis Cluster, from one or more seed nodes
    rediss+cluster://...                                          the same over TLS
    (`--redis-cluster` makes a redis:// or rediss:// URL mean the cluster form; its host list may name seeds too.)

Query options honoured, all about TLS (rediss only):
    ssl_ca_certs=PATH            CA bundle the server's certificate is checked against (default: the system's)
    ssl_cert_reqs=required|none  none: do not check the server's certificate at all
    ssl_check_hostname=true|false   false: check the certificate but not that it names the host
    ssl_certfile=PATH, ssl_keyfile=PATH   a client certificate (and its key) for servers that require one

Any other option is refused, naming it, rather than parsed and ignored: the cache bounds every call by
--cache-timeout-seconds (so no socket_timeout / socket_connect_timeout), keeps one pipelined connection per node
(no pool options), and a cluster has only database 0.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, replace
from urllib.parse import parse_qsl, unquote, urlsplit

__all__ = ["RedisTarget", "TlsOptions", "parse_redis_url", "HONOURED_OPTIONS"]

HONOURED_OPTIONS = ("ssl_ca_certs", "ssl_cert_reqs", "ssl_check_hostname", "ssl_certfile", "ssl_keyfile")
_SCHEMES = ("redis", "rediss", "unix", "redis+cluster", "rediss+cluster")
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


@dataclass(frozen=True)
class TlsOptions:
    """How a TLS connection checks the server, and the client certificate it presents."""

    ca_certs: str | None = None
    verify: bool = True
    check_hostname: bool = True
    certfile: str | None = None
    keyfile: str | None = None

    def context(self) -> ssl.SSLContext:
        """The SSL context these options describe (files are read here, so a bad path fails at start)."""
        context = ssl.create_default_context(cafile=self.ca_certs)
        if not self.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        elif not self.check_hostname:
            context.check_hostname = False
        if self.certfile:
            context.load_cert_chain(self.certfile, self.keyfile)
        return context


@dataclass(frozen=True)
class RedisTarget:
    """Where the hot cache's Redis is and how to log in: one node, or a cluster's seed nodes."""

    nodes: tuple[tuple[str, int], ...] = (("localhost", 6379),)
    path: str | None = None  # a unix socket instead of nodes
    username: str | None = None
    password: str | None = None
    db: int = 0
    cluster: bool = False
    tls: TlsOptions | None = None

    def node(self, host: str, port: int) -> RedisTarget:
        """One node of a cluster, with the cluster's credentials and TLS."""
        return replace(self, nodes=((host, port),), path=None, cluster=False)

    def where(self) -> str:
        """host:port (comma-separated for seeds) or the socket path, for messages; never the password."""
        return self.path or ",".join(f"{host}:{port}" for host, port in self.nodes)


def _refuse(url_flag: str, what: str) -> ValueError:
    return ValueError(f"{url_flag}: {what}")


def parse_redis_url(url: str, *, cluster: bool = False, flag: str = "--redis-url") -> RedisTarget:
    """The RedisTarget of `url`; ValueError with one line naming `flag` for anything not honoured.

    cluster=True (--redis-cluster) reads redis:// and rediss:// URLs as the cluster form."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES:
        raise _refuse(flag, f"unsupported scheme {parts.scheme + '://' if parts.scheme else 'missing'}; use "
                            "redis://, rediss://, unix://, redis+cluster:// or rediss+cluster://")
    is_cluster = cluster or scheme.endswith("+cluster")
    tls = scheme.startswith("rediss")
    if is_cluster and scheme == "unix":
        raise _refuse(flag, "--redis-cluster needs redis:// or rediss:// seed nodes (host:port), not a unix socket")
    userinfo, _, hostlist = parts.netloc.rpartition("@")
    username, _, password = userinfo.partition(":") if userinfo else ("", "", "")
    options: dict[str, str] = {}
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name in options:
            raise _refuse(flag, f"option {name} is given twice")
        options[name] = value
    db_text = options.pop("db", None)
    path: str | None = None
    nodes: list[tuple[str, int]] = []
    if scheme == "unix":
        path = unquote(parts.path)
        if not path:
            raise _refuse(flag, "unix:// needs a socket path, e.g. unix:///run/redis/redis.sock?db=0")
    else:
        if parts.path not in ("", "/"):
            if db_text is not None:
                raise _refuse(flag, "give the database once, as /N or ?db=N")
            db_text = parts.path.lstrip("/")
        for item in hostlist.split(","):
            host, port = _host_port(item, flag)
            nodes.append((host, port))
        if len(nodes) > 1 and not is_cluster:
            raise _refuse(flag, "several hosts are only read as a cluster's seed nodes: use redis+cluster:// or "
                                "--redis-cluster")
    try:
        db = int(db_text) if db_text not in (None, "") else 0
    except ValueError:
        raise _refuse(flag, f"the database must be a number, got {db_text!r}") from None
    if is_cluster and db != 0:
        raise _refuse(flag, f"a Redis Cluster (--redis-cluster) has only database 0; remove /{db} from the URL")
    tls_options = _tls_options(options, tls, flag)
    if options:
        unknown = ", ".join(sorted(options))
        hint = ("; calls are bounded by --cache-timeout-seconds" if any("timeout" in o for o in options) else "")
        raise _refuse(flag, f"option(s) {unknown} not supported (honoured: {', '.join(HONOURED_OPTIONS)} with "
                            f"rediss){hint}")
    return RedisTarget(nodes=tuple(nodes) or (("localhost", 6379),), path=path,
                       username=unquote(username) or None, password=unquote(password) or None, db=db,
                       cluster=is_cluster, tls=tls_options)


def _host_port(item: str, flag: str) -> tuple[str, int]:
    if not item:
        return "localhost", 6379
    host, port_text = item, ""
    if item.startswith("["):  # [ipv6]:port
        host, _, rest = item[1:].partition("]")
        port_text = rest.removeprefix(":")
    elif item.count(":") == 1:
        host, _, port_text = item.partition(":")
    if port_text and not (port_text.isdigit() and 0 < int(port_text) < 65536):
        raise _refuse(flag, f"bad port in {item!r}; expected host:port")
    return host or "localhost", int(port_text) if port_text else 6379


def _tls_options(options: dict[str, str], tls: bool, flag: str) -> TlsOptions | None:
    given = {name: options.pop(name) for name in HONOURED_OPTIONS if name in options}
    if not tls:
        if given:
            raise _refuse(flag, f"option(s) {', '.join(sorted(given))} need TLS: use rediss:// (or rediss+cluster://)")
        return None
    reqs = given.get("ssl_cert_reqs", "required").lower()
    if reqs not in ("required", "cert_required", "none", "cert_none"):
        raise _refuse(flag, f"ssl_cert_reqs expects required or none, got {reqs!r} (optional is not offered)")
    check = given.get("ssl_check_hostname", "true").lower()
    if check not in _TRUE + _FALSE:
        raise _refuse(flag, f"ssl_check_hostname expects true or false, got {check!r}")
    if "ssl_keyfile" in given and "ssl_certfile" not in given:
        raise _refuse(flag, "ssl_keyfile needs ssl_certfile (the client certificate it belongs to)")
    return TlsOptions(ca_certs=given.get("ssl_ca_certs") or None, verify=reqs in ("required", "cert_required"),
                      check_hostname=check in _TRUE, certfile=given.get("ssl_certfile") or None,
                      keyfile=given.get("ssl_keyfile") or None)
