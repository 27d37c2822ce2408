"""Publishing: one HIT per human slot, tagged with the run, gated by Parley's qualifications, topped up."""

from __future__ import annotations

from typing import Any

from tests.hits.harness import HitServer, eventually, open_hits


async def test_run_keeps_one_single_assignment_hit_open_per_human_slot(chat_server: HitServer, client: Any) -> None:
    hits = await eventually(lambda: _open(client, "chat", 2), what="2 open HITs")
    for hit in hits:
        assert hit["MaxAssignments"] == 1
        assert hit["RequesterAnnotation"] == "chat"
        assert f"{chat_server.base}/task/chat</ExternalURL>" in hit["Question"]
        gates = [r for r in hit["QualificationRequirements"] if r["Comparator"] == "DoesNotExist"]
        assert len(gates) == 2  # soft block and this run's per-worker cap (the chat task has no onboarding)
        assert all(r["ActionsGuarded"] == "DiscoverPreviewAndAccept" for r in gates)
        assert not [r for r in hit["QualificationRequirements"] if r["Comparator"] != "DoesNotExist"]
    passes = chat_server.hits.passes
    await eventually(_later(chat_server, passes + 2), what="two more passes")
    assert len(open_hits(client, "chat")) == 2  # kept at the cap, not published again


async def _open(client: Any, run_id: str, count: int) -> list[dict[str, Any]] | None:
    hits = open_hits(client, run_id)
    return hits if len(hits) == count else None


def _later(server: HitServer, passes: int) -> Any:
    async def check() -> bool:
        return server.hits.passes >= passes

    return check
