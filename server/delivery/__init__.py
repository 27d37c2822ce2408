"""The delivery layer: how one Parley instance reaches another (in the spirit of Django Channels' layer).

Every instance has an inbox, named by its instance id. `send(to, message)` puts a message (a JSON-able
dict) in another instance's inbox; messages to one inbox from one sender arrive in the order sent. It is
at-most-once: a message may be lost when a connection to the broker breaks, and then every instance
that may have lost one hears `on_reset` and starts over (relayed sockets close, their pages resume from
the stored stream by `seq`). The database stays the log: nothing that was acked lives only here.

Two backends:
- `LocalDelivery` (the default, one process): inboxes in this process only. A run owned here is served
  directly, so the one-process path never touches the layer.
- `RedisDelivery` (`PARLEY_REDIS_URL`): an inbox is a Redis pub/sub channel `{prefix}:inbox:{instance}`.

What travels over it is in `server/relay.py`.
"""

from __future__ import annotations

from server.delivery.base import Delivery, LocalDelivery, Message, OnMessage, Unreachable

__all__ = ["Delivery", "LocalDelivery", "Message", "OnMessage", "Unreachable", "open_delivery"]


def open_delivery(instance_id: str, *, redis_url: str = "", prefix: str = "parley") -> Delivery:
    if not redis_url:
        return LocalDelivery(instance_id)
    from server.delivery.redis_layer import RedisDelivery

    return RedisDelivery(instance_id, redis_url, prefix=prefix)
