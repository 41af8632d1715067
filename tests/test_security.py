"""TLS and mutual TLS, bearer tokens mapped to tenants, encryption at rest, secrets kept out of logs."""

from __future__ import annotations

import base64
import datetime
import ipaddress
import os
import sqlite3
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from cairn_client import TLS, CheckpointClient, DataLoss, NotFound, Unauthenticated, Unavailable


def _cert(name: str, issuer: tuple | None, *, ca: bool = False, server: bool = False) -> tuple:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer[0].subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
    cert = builder.sign(issuer[1] if issuer else key, hashes.SHA256())
    return cert, key


def _pem(cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> tuple[bytes, bytes]:
    return (
        cert.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
    )


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path | bytes]:
    d = tmp_path_factory.mktemp("pki")
    ca = _cert("cairn-test-ca", None, ca=True)
    server = _cert("localhost", ca, server=True)
    client = _cert("agent-worker", ca)
    other_ca = _cert("someone-else", None, ca=True)
    stranger = _cert("stranger", other_ca)
    out: dict[str, Path | bytes] = {}
    for name, pair in {"ca": ca, "server": server, "client": client, "stranger": stranger}.items():
        cert_pem, key_pem = _pem(*pair)
        (d / f"{name}.crt").write_bytes(cert_pem)
        (d / f"{name}.key").write_bytes(key_pem)
        out[f"{name}_crt"], out[f"{name}_key"] = cert_pem, key_pem
        out[f"{name}_crt_path"], out[f"{name}_key_path"] = d / f"{name}.crt", d / f"{name}.key"
    return out


def test_tls(server_factory, pki) -> None:  # type: ignore[no-untyped-def]
    backend = server_factory("embedded", tls_cert=pki["server_crt_path"], tls_key=pki["server_key_path"])
    # The harness' health probe is plaintext; the server answering TLS only is what we test here.
    tls = TLS(root_certificates=pki["ca_crt"], server_name_override="localhost")
    with CheckpointClient(backend.target, tls=tls) as c:
        c.save("tls-thread", {"secure": True})
        assert c.load("tls-thread").json() == {"secure": True}
    with CheckpointClient(backend.target, timeout_seconds=2) as plain, pytest.raises(Unavailable):
        plain.load("tls-thread")


def test_mutual_tls(server_factory, pki) -> None:  # type: ignore[no-untyped-def]
    backend = server_factory(
        "embedded",
        tls_cert=pki["server_crt_path"],
        tls_key=pki["server_key_path"],
        tls_client_ca=pki["ca_crt_path"],
    )
    ok = TLS(pki["ca_crt"], pki["client_crt"], pki["client_key"], server_name_override="localhost")
    with CheckpointClient(backend.target, tls=ok) as c:
        c.save("mtls", {"n": 1})
        assert c.load("mtls").json() == {"n": 1}
    for bad in (
        TLS(pki["ca_crt"], server_name_override="localhost"),  # no client certificate
        TLS(pki["ca_crt"], pki["stranger_crt"], pki["stranger_key"], server_name_override="localhost"),
    ):
        with CheckpointClient(backend.target, tls=bad, timeout_seconds=2) as c, pytest.raises(Unavailable):
            c.load("mtls")


@pytest.mark.parametrize("kind", ["embedded", "redis+postgres"])
def test_tenants_cannot_see_each_other(server_factory, kind: str) -> None:  # type: ignore[no-untyped-def]
    backend = server_factory(kind, auth_tokens="token-a tenant-a,token-b tenant-b")
    with (
        CheckpointClient(backend.target, token="token-a") as a,
        CheckpointClient(backend.target, token="token-b") as b,
    ):
        saved = a.save("shared-name", {"owner": "a"}, metadata={"secret": "a"})
        a.put_writes("shared-name", saved.checkpoint_id, "task", [("ch", "a-only")])
        with pytest.raises(NotFound):
            b.load("shared-name")
        with pytest.raises(NotFound):
            b.load("shared-name", checkpoint_id=saved.checkpoint_id)
        assert b.list("shared-name").checkpoints == []
        assert b.list("", metadata_filter={"secret": "a"}).checkpoints == []
        assert "shared-name" not in {t.thread_id for t in b.iter_threads()}
        assert b.delete("shared-name", saved.checkpoint_id) is False
        assert b.clear("shared-name") == 0
        assert b.prune(["shared-name"], keep_latest=None) == 0
        with pytest.raises(NotFound):
            b.put_writes("shared-name", saved.checkpoint_id, "task", [("ch", "b")])
        # b's thread of the same name is its own; a's is untouched
        b.save("shared-name", {"owner": "b"}, checkpoint_id=saved.checkpoint_id)
        assert a.load("shared-name").json() == {"owner": "a"}
        assert b.load("shared-name").json() == {"owner": "b"}
        assert len(a.load("shared-name").pending_writes) == 1


def test_missing_or_wrong_token(server_factory) -> None:  # type: ignore[no-untyped-def]
    backend = server_factory("embedded", auth_tokens="good tenant")
    with CheckpointClient(backend.target) as anon, pytest.raises(Unauthenticated) as err:
        anon.load("t")
    assert err.value.reason == "MISSING_TOKEN"
    with CheckpointClient(backend.target, token="bad") as wrong, pytest.raises(Unauthenticated) as err:
        wrong.save("t", {})
    assert err.value.reason == "INVALID_TOKEN"


def _key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def test_encryption_at_rest_and_rotation(server_factory) -> None:  # type: ignore[no-untyped-def]
    k1, k2 = _key(), _key()
    backend = server_factory("embedded", encryption_keys=f"k1:{k1}")
    secret = b'{"password":"hunter2-' + b"x" * 500 + b'"}'
    with CheckpointClient(backend.target) as c:
        c.save("enc", secret)
    db = sqlite3.connect(backend.sqlite_path)
    (stored,) = db.execute("SELECT state FROM cairn_checkpoints WHERE thread_id='enc'").fetchone()
    assert b"hunter2" not in stored and stored.startswith(b"E1\x02k1")
    # Restart with a new active key and the old one kept for reading: old rows still load, new ones use k2.
    backend.server.args = [a.replace(f"k1:{k1}", f"k2:{k2},k1:{k1}") for a in backend.server.args]
    backend.server.stop()
    backend.server.start()
    with CheckpointClient(backend.target) as c:
        assert c.load("enc").state == secret
        c.save("enc2", secret)
    (stored2,) = db.execute("SELECT state FROM cairn_checkpoints WHERE thread_id='enc2'").fetchone()
    assert stored2.startswith(b"E1\x02k2")
    # Tampering with the ciphertext is DATA_LOSS, never accepted.
    tampered = bytearray(stored)
    tampered[-1] ^= 0x01
    db.execute("UPDATE cairn_checkpoints SET state=? WHERE thread_id='enc'", (bytes(tampered),))
    db.commit()
    backend.server.stop()
    backend.server.start()  # empty in-process cache
    with CheckpointClient(backend.target) as c, pytest.raises(DataLoss):
        c.load("enc")


def test_secrets_never_logged(server_factory) -> None:  # type: ignore[no-untyped-def]
    key = _key()
    backend = server_factory(
        "redis+postgres", auth_tokens="sup3r-secret-token tenant", encryption_keys=f"kid:{key}",
        log_level="DEBUG",
    )
    with CheckpointClient(backend.target, token="sup3r-secret-token") as c:
        c.save("logged", b'{"state":"do-not-log-me"}')
        c.load("logged")
        with pytest.raises(NotFound):
            c.load("missing")
    with CheckpointClient(backend.target, token="wrong-token-value") as c, pytest.raises(Unauthenticated):
        c.load("logged")
    log = backend.server.log_text()
    assert "cairn serving" in log
    for secret in ("sup3r-secret-token", key, "do-not-log-me", "wrong-token-value"):
        assert secret not in log
