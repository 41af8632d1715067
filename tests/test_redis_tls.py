"""The TLS options of a rediss:// URL are honoured (storage/redis_url.py), against a real redis-server with TLS on:
its certificate names only `redis.test` (not 127.0.0.1) and it requires a client certificate.

Each option changes what happens: without ssl_ca_certs the server's certificate is not trusted, without
ssl_check_hostname=false the name does not match, without ssl_certfile/ssl_keyfile the server hangs up, and
ssl_cert_reqs=none trusts anything. A `cairn serve` on such a URL serves cache hits with no errors.
"""

from __future__ import annotations

import datetime
import json
import urllib.request
import uuid
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from prometheus_client.parser import text_string_to_metric_families

from cairn_client import CheckpointClient
from cairn_server.storage.base import CacheUnavailable
from cairn_server.storage.resp import Multiplexed
from tests.harness import CairnProcess, RedisServer, free_port


def _cert(name: str, issuer: tuple | None, *, ca: bool = False, dns: str | None = None) -> tuple:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder().subject_name(subject)
        .issuer_name(issuer[0].subject if issuer else subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if dns:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(dns)]), critical=False)
    return builder.sign(issuer[1] if issuer else key, hashes.SHA256()), key


def _write(directory: Path, name: str, pair: tuple) -> tuple[str, str]:
    cert, key = pair
    (directory / f"{name}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / f"{name}.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return str(directory / f"{name}.crt"), str(directory / f"{name}.key")


@pytest.fixture(scope="module")
def tls_redis(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    d = tmp_path_factory.mktemp("redis-pki")
    ca = _cert("cairn-redis-test-ca", None, ca=True)
    ca_crt, _ = _write(d, "ca", ca)
    server_crt, server_key = _write(d, "server", _cert("redis.test", ca, dns="redis.test"))
    client_crt, client_key = _write(d, "client", _cert("cairn", ca))
    tls_port = free_port()
    with RedisServer(extra_args=["--tls-port", str(tls_port), "--tls-cert-file", server_crt,
                                 "--tls-key-file", server_key, "--tls-ca-cert-file", ca_crt,
                                 "--tls-auth-clients", "yes"]) as redis:
        yield {"port": tls_port, "ca": ca_crt, "cert": client_crt, "key": client_key, "redis": redis}


def _url(t: dict, **options: str) -> str:
    query = "&".join(f"{k}={v}" for k, v in options.items())
    return f"rediss://127.0.0.1:{t['port']}/0" + (f"?{query}" if query else "")


async def _ping(url: str) -> object:
    client = Multiplexed(url, timeout_seconds=2.0)
    try:
        return await client.call("PING")
    finally:
        await client.aclose()


async def test_every_honoured_tls_option_takes_effect(tls_redis) -> None:  # type: ignore[no-untyped-def]
    t = tls_redis
    full = dict(ssl_ca_certs=t["ca"], ssl_check_hostname="false", ssl_certfile=t["cert"], ssl_keyfile=t["key"])
    assert await _ping(_url(t, **full)) == b"PONG"
    cases = {
        "ssl_ca_certs": ("certificate verify failed", {k: v for k, v in full.items() if k != "ssl_ca_certs"}),
        "ssl_check_hostname": ("match|mismatch", {k: v for k, v in full.items() if k != "ssl_check_hostname"}),
        "ssl_certfile": ("certificate required", {k: v for k, v in full.items() if k not in ("ssl_certfile", "ssl_keyfile")}),
    }
    for without, (message, options) in cases.items():
        with pytest.raises(CacheUnavailable, match=message):
            await _ping(_url(t, **options))
    # ssl_cert_reqs=none: no CA given, and the name does not match; still connects (with the client certificate)
    assert await _ping(_url(t, ssl_cert_reqs="none", ssl_certfile=t["cert"], ssl_keyfile=t["key"])) == b"PONG"


def test_a_server_on_rediss_with_those_options_serves_hits(tls_redis, tmp_path) -> None:  # type: ignore[no-untyped-def]
    t = tls_redis
    url = _url(t, ssl_ca_certs=t["ca"], ssl_check_hostname="false", ssl_certfile=t["cert"], ssl_keyfile=t["key"])
    metrics = free_port()
    with CairnProcess("--redis-url", url, "--sqlite-path", str(tmp_path / "c.db"), "--near-cache-mb", "0",
                     "--metrics-listen", f"127.0.0.1:{metrics}") as server:
        with CheckpointClient(server.target) as client:
            thread = f"tls-{uuid.uuid4()}"
            client.save(thread, {"n": 1})
            for _ in range(6):  # the first load misses and fills the cache (saves do not, by default)
                assert json.loads(client.load(thread).state) == {"n": 1}
        text = urllib.request.urlopen(f"http://127.0.0.1:{metrics}/metrics", timeout=10).read().decode()
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for f in text_string_to_metric_families(text) for s in f.samples}
    assert samples[("cairn_cache_lookups_total", (("result", "hits"),))] >= 5
    assert samples[("cairn_backend_errors_total", (("backend", "redis"),))] == 0
