"""CairnSaver against LangGraph's own conformance suite (langgraph-checkpoint-conformance), on Postgres + Redis.

Three runs, each must be FULL (every base and extended capability passed):
  * the async methods (what the suite calls),
  * the sync methods, driven by the same suite through a thin adapter,
  * the async methods with an EncryptedSerializer.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from typing import Any

import pytest

pytest.importorskip("langgraph.checkpoint.conformance")

from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: E402
from langgraph.checkpoint.conformance import checkpointer_test, validate  # noqa: E402
from langgraph.checkpoint.conformance.capabilities import ALL_CAPABILITIES  # noqa: E402
from langgraph.checkpoint.conformance.report import CapabilityReport, ProgressCallbacks  # noqa: E402
from langgraph.checkpoint.serde.base import CipherProtocol  # noqa: E402
from langgraph.checkpoint.serde.encrypted import EncryptedSerializer  # noqa: E402

from cairn_client import CheckpointClient  # noqa: E402
from cairn_client.langgraph import CairnSaver  # noqa: E402


class AesGcmCipher(CipherProtocol):
    """AES-GCM from `cryptography` (LangGraph's built-in helper needs pycryptodome)."""

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    def encrypt(self, plaintext: bytes) -> tuple[str, bytes]:
        nonce = os.urandom(12)
        return "aesgcm", nonce + self._aead.encrypt(nonce, plaintext, None)

    def decrypt(self, ciphername: str, ciphertext: bytes) -> bytes:
        assert ciphername == "aesgcm", ciphername
        return self._aead.decrypt(ciphertext[:12], ciphertext[12:], None)


class SyncDrivenSaver(CairnSaver):
    """Routes the suite's async calls to the sync methods (in a thread), so the suite checks those too."""

    async def aget_tuple(self, config):  # type: ignore[no-untyped-def]
        return await asyncio.to_thread(self.get_tuple, config)

    async def alist(self, config, *, filter=None, before=None, limit=None):  # type: ignore[no-untyped-def]
        items = await asyncio.to_thread(lambda: list(self.list(config, filter=filter, before=before, limit=limit)))
        for item in items:
            yield item

    async def aput(self, config, checkpoint, metadata, new_versions):  # type: ignore[no-untyped-def]
        return await asyncio.to_thread(self.put, config, checkpoint, metadata, new_versions)

    async def aput_writes(self, config, writes, task_id, task_path=""):  # type: ignore[no-untyped-def]
        return await asyncio.to_thread(self.put_writes, config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id):  # type: ignore[no-untyped-def]
        return await asyncio.to_thread(self.delete_thread, thread_id)

    async def adelete_for_runs(self, run_ids):  # type: ignore[no-untyped-def]
        return await asyncio.to_thread(self.delete_for_runs, run_ids)

    async def acopy_thread(self, source_thread_id, target_thread_id):  # type: ignore[no-untyped-def]
        return await asyncio.to_thread(self.copy_thread, source_thread_id, target_thread_id)

    async def aprune(self, thread_ids, *, strategy="keep_latest"):  # type: ignore[no-untyped-def]
        return await asyncio.to_thread(self.prune, thread_ids, strategy=strategy)


def report_line(report: CapabilityReport) -> str:
    total = sum(1 for r in report.results.values() if r.detected)
    passed = sum(1 for r in report.results.values() if r.detected and r.passed is True)
    tests = sum(r.tests_passed for r in report.results.values())
    failed = sum(r.tests_failed for r in report.results.values())
    return (
        f"{report.checkpointer_name}: Result: {report.conformance_level()} ({passed}/{total}) "
        f"capabilities; {tests} tests passed, {failed} failed"
    )


async def run_suite(name: str, make: Any, capsys: pytest.CaptureFixture[str]) -> CapabilityReport:
    @checkpointer_test(name=name)
    async def factory() -> AsyncIterator[CairnSaver]:
        saver = make()
        try:
            yield saver
        finally:
            await saver.aclose()

    report = await validate(factory, progress=ProgressCallbacks.quiet())
    with capsys.disabled():
        report.print_report()
        print(report_line(report))
    failures = {cap: r.failures for cap, r in report.results.items() if r.failures}
    assert not failures, failures
    assert {c.value for c in ALL_CAPABILITIES} == set(report.results)
    for cap, result in report.results.items():
        assert result.detected, f"{cap} not detected"
        assert result.passed is True, f"{cap}: {result}"
    assert report.passed_all_base() and report.passed_all()
    assert report.conformance_level() == "FULL"
    return report


async def test_conformance_async_methods(pg_redis_server, capsys) -> None:  # type: ignore[no-untyped-def]
    await run_suite("CairnSaver (async)", lambda: CairnSaver(pg_redis_server.target), capsys)


async def test_conformance_sync_methods(pg_redis_server, capsys) -> None:  # type: ignore[no-untyped-def]
    await run_suite("CairnSaver (sync)", lambda: SyncDrivenSaver(pg_redis_server.target), capsys)


async def test_conformance_compressed_states(pg_redis_server, capsys) -> None:  # type: ignore[no-untyped-def]
    """The same suite with states zstd-compressed on the wire both ways (CairnSaver(compress_states=True))."""
    await run_suite(
        "CairnSaver (compress_states)", lambda: CairnSaver(pg_redis_server.target, compress_states=True), capsys
    )


async def test_conformance_encrypted_serde(pg_redis_server, capsys) -> None:  # type: ignore[no-untyped-def]
    serde = EncryptedSerializer(AesGcmCipher(os.urandom(32)))
    await run_suite("CairnSaver (encrypted)", lambda: CairnSaver(pg_redis_server.target, serde=serde), capsys)


def test_encrypted_checkpoint_is_opaque_on_the_server(pg_redis_server) -> None:  # type: ignore[no-untyped-def]
    """The stored state is ciphertext tagged with the serde's type; the right key reads it back."""
    import uuid

    from langgraph.checkpoint.conformance.test_utils import generate_checkpoint, generate_config, generate_metadata

    key = os.urandom(32)
    secret = "attack at dawn " + uuid.uuid4().hex
    config = generate_config(f"enc-{uuid.uuid4()}")
    cp = generate_checkpoint(channel_values={"msg": secret})
    cp["channel_versions"] = {"msg": 1}
    with CairnSaver(pg_redis_server.target, serde=EncryptedSerializer(AesGcmCipher(key))) as saver:
        stored = saver.put(config, cp, generate_metadata(), {"msg": 1})
        saver.put_writes(stored, [("msg", secret)], "task-1")
    with CheckpointClient(pg_redis_server.target) as raw:
        loaded = raw.load(config["configurable"]["thread_id"])
    assert loaded.state_type == "msgpack+aesgcm"
    assert secret.encode() not in loaded.state
    assert loaded.pending_writes[0].value_type == "msgpack+aesgcm"
    assert secret.encode() not in loaded.pending_writes[0].value
    with CairnSaver(pg_redis_server.target, serde=EncryptedSerializer(AesGcmCipher(key))) as saver:
        tup = saver.get_tuple(stored)
    assert tup is not None
    assert tup.checkpoint["channel_values"] == {"msg": secret}
    assert tup.pending_writes == [("task-1", "msg", secret)]
