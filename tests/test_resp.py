"""The hot cache's pipelined Redis connection (storage/resp.py), against real redis-server processes."""

from __future__ import annotations

import asyncio
import random

import pytest
from cairn_server.storage.resp import Multiplexed, ReplyError
from cairn_server.storage.base import CacheUnavailable

from tests.harness import RedisServer


async def test_every_caller_gets_its_own_reply(redis_proc) -> None:  # type: ignore[no-untyped-def]
    redis = Multiplexed(redis_proc.url)

    async def one(i: int) -> None:
        await asyncio.sleep(random.random() / 100)
        assert await redis.call("SET", f"resp:{i}", i) == b"OK"
        assert await redis.call("ECHO", f"value {i}") == f"value {i}".encode()
        assert await redis.execute([("GET", f"resp:{i}"), ("INCRBY", f"resp:{i}", i)]) == [str(i).encode(), 2 * i]

    try:
        await asyncio.gather(*(one(i) for i in range(300)))
        await redis.call("SET", "resp:text", "not a number")
        replies = await redis.execute([("INCR", "resp:text"), ("GET", "resp:text")])
        assert isinstance(replies[0], ReplyError) and replies[1] == b"not a number"  # an error stays in its place
        with pytest.raises(ReplyError, match="not an integer"):
            await redis.call("INCR", "resp:text")
        assert await redis.call("GET", "resp:text") == b"not a number"  # and the connection carries on
    finally:
        await redis.aclose()


async def test_user_password_and_database_from_the_url() -> None:
    with RedisServer() as server:
        admin = Multiplexed(server.url)
        await admin.call("ACL", "SETUSER", "cairn", "on", ">s3cret", "~*", "+@all")
        await admin.call("CONFIG", "SET", "requirepass", "top")
        await admin.aclose()
        port = server.port
        user = Multiplexed(f"redis://cairn:s3cret@127.0.0.1:{port}/2")
        default = Multiplexed(f"redis://:top@127.0.0.1:{port}/0")
        wrong = Multiplexed(f"redis://cairn:nope@127.0.0.1:{port}/0")
        try:
            await user.call("SET", "in-db-2", "yes")
            assert await default.call("GET", "in-db-2") is None  # database 0
            await default.call("SELECT", 2)
            assert await default.call("GET", "in-db-2") == b"yes"
            with pytest.raises(CacheUnavailable, match="refused the connection"):
                await wrong.call("PING")
        finally:
            for redis in (user, default, wrong):
                await redis.aclose()


async def test_a_lost_or_silent_redis_fails_its_callers_then_reconnects() -> None:
    with RedisServer() as server:
        redis = Multiplexed(server.url, timeout_seconds=0.5)
        try:
            assert await redis.call("PING") == b"PONG"
            server.pause()  # SIGSTOP: the socket stays open, nothing answers
            try:
                with pytest.raises(CacheUnavailable, match="has not answered"):
                    await asyncio.wait_for(redis.call("PING"), 10)  # the bound only guards the test from hanging
            finally:
                server.resume()
            assert await redis.call("PING") == b"PONG"
            server.kill()
            with pytest.raises(CacheUnavailable):
                await asyncio.wait_for(redis.call("PING"), 10)
            server.start()
            assert await redis.call("PING") == b"PONG"
        finally:
            await redis.aclose()


async def test_a_stalled_pipeline_fails_its_caller_once_and_leaves_no_unretrieved_failures() -> None:
    """All replies of a write fail when Redis stops answering; the caller gets one CacheUnavailable, and no future
    is left failed unawaited (each used to be logged as "Future exception was never retrieved")."""
    import gc

    unretrieved: list[str] = []
    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: unretrieved.append(context["message"]))
    try:
        with RedisServer() as server:
            redis = Multiplexed(server.url, timeout_seconds=0.3)
            await redis.call("PING")
            server.pause()

            async def stalled() -> str:
                try:
                    await redis.execute([("GET", f"k{i}") for i in range(50)])
                except CacheUnavailable as exc:  # kept as text: a traceback would keep the futures alive
                    return str(exc)
                return "answered"

            try:
                assert "has not answered" in await stalled()
            finally:
                server.resume()
                await redis.aclose()
        gc.collect()
        await asyncio.sleep(0)
        assert unretrieved == []
    finally:
        loop.set_exception_handler(previous)
