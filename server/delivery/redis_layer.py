"""The delivery layer over Redis pub/sub (`PARLEY_REDIS_URL`), with redis-py's asyncio client.

One subscription per instance (its inbox channel) and one writer that drains everything queued since its
last round trip into one pipeline of PUBLISHes: messages to an inbox keep their order, and a busy instance
pays one round trip per batch, not per message. PUBLISH answers how many subscribers got the message; 0
means the addressed instance has no inbox any more (it died or lost Redis), which `on_unreachable` reports
at once, without waiting for the instance's lease to lapse.

Pub/sub is at-most-once: what is published while a subscriber's connection is down is lost. Any broken
connection therefore calls `on_reset` (this instance may have lost messages either way) before it is
re-made, with a capped backoff, for as long as the instance runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from server.delivery.base import Message, OnMessage
from server.supervisor import Supervisor

log = logging.getLogger(__name__)

BACKOFF_S = (0.1, 0.25, 0.5, 1.0, 2.0)
MAX_BATCH = 500


class RedisDelivery:
    shared = True

    def __init__(self, instance_id: str, url: str, *, prefix: str = "parley") -> None:
        self.instance_id = instance_id
        self.url = url
        self.prefix = prefix
        self._redis = aioredis.Redis.from_url(url, socket_keepalive=True, socket_connect_timeout=5)
        self._queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
        self._supervisor = Supervisor("delivery")
        self._on_message: OnMessage = lambda _m: None
        self._on_reset: Callable[[], None] = lambda: None
        self._on_unreachable: Callable[[str], None] = lambda _i: None
        self._subscribed = asyncio.Event()

    def inbox(self, instance_id: str) -> str:
        return f"{self.prefix}:inbox:{instance_id}"

    async def start(
        self, on_message: OnMessage, *, on_reset: Callable[[], None], on_unreachable: Callable[[str], None],
    ) -> None:
        self._on_message, self._on_reset, self._on_unreachable = on_message, on_reset, on_unreachable
        try:
            await self._redis.ping()
        except RedisError as exc:
            raise RuntimeError(
                f"Parley cannot reach Redis at {self.url} ({exc}). Start Redis, or unset PARLEY_REDIS_URL to "
                "run as one process."
            ) from exc
        self._supervisor.spawn(self._read(), name="delivery-inbox")
        self._supervisor.spawn(self._write(), name="delivery-outbox")
        async with asyncio.timeout(10):
            await self._subscribed.wait()
        log.info("delivery over Redis at %s: inbox %s", self.url, self.inbox(self.instance_id))

    def send(self, to: str, message: Message) -> None:
        self._queue.put_nowait((to, orjson.dumps(message)))

    async def aclose(self) -> None:
        await self._supervisor.aclose()
        with contextlib.suppress(RedisError, OSError):
            await self._redis.aclose()

    # ---- the inbox ---------------------------------------------------------------------------

    async def _read(self) -> None:
        attempt = 0
        while True:
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.inbox(self.instance_id))
                self._subscribed.set()
                attempt = 0
                while True:
                    item = await pubsub.get_message(timeout=None)
                    if item is None or item.get("type") != "message":
                        continue
                    try:
                        message = orjson.loads(item["data"])
                    except orjson.JSONDecodeError:
                        log.warning("ignored a malformed message in inbox %s", self.inbox(self.instance_id))
                        continue
                    self._on_message(message)
            except (RedisError, OSError) as exc:
                self._lost(f"the inbox subscription broke ({exc})")
            finally:
                with contextlib.suppress(RedisError, OSError, RuntimeError):
                    await pubsub.aclose()
            await asyncio.sleep(BACKOFF_S[min(attempt, len(BACKOFF_S) - 1)])
            attempt += 1

    # ---- the outbox --------------------------------------------------------------------------

    async def _write(self) -> None:
        attempt = 0
        while True:
            batch = [await self._queue.get()]
            while len(batch) < MAX_BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                async with self._redis.pipeline(transaction=False) as pipe:
                    for to, data in batch:
                        pipe.publish(self.inbox(to), data)
                    received = await pipe.execute()
                attempt = 0
            except (RedisError, OSError) as exc:
                self._lost(f"{len(batch)} outgoing message(s) were not published ({exc})")
                await asyncio.sleep(BACKOFF_S[min(attempt, len(BACKOFF_S) - 1)])
                attempt += 1
                continue
            gone = {to for (to, _data), count in zip(batch, received, strict=True) if not count}
            for to in gone:
                self._on_unreachable(to)

    def _lost(self, why: str) -> None:
        log.warning("delivery over Redis at %s: %s; relayed connections start over", self.url, why)
        self._on_reset()
