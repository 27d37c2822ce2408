"""The example of docs/authoring.md, run as written: a worker onboards, writes with the bot, rates."""

import re
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from server.store import Store
from tests.conftest import make_settings
from tests.support.client import Crowd
from tests.support.server import LiveServer, serve

DOC = Path(__file__).parents[1] / "docs" / "authoring.md"


@pytest.fixture
def story_module(tmp_path: Path) -> Iterator[str]:
    code = re.search(r"```python\n(.*?)```", DOC.read_text(), re.S)
    assert code is not None, "docs/authoring.md lost its example"
    (tmp_path / "doc_story_builder.py").write_text(code.group(1))
    sys.path.insert(0, str(tmp_path))
    try:
        yield "doc_story_builder"
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("doc_story_builder", None)


@pytest.fixture
async def story(story_module: str, db_url: str, tmp_path: Path) -> AsyncIterator[tuple[LiveServer, Crowd]]:
    with serve(make_settings(db_url, tmp_path, {"story": story_module})) as live:
        crowd = Crowd(live.base)
        try:
            yield live, crowd
        finally:
            await crowd.close()


async def test_the_authoring_example_runs_end_to_end(store: Store, story: tuple[LiveServer, Crowd]) -> None:
    _live, crowd = story
    w = await crowd.start("story", "W-writer")
    await w.wait_turn(1)
    await w.say("Yes", {"choice": "Yes"})  # onboarding
    await w.wait_turn(2)
    await w.say("The keeper opened the letter.")
    await w.wait_frame(lambda f: f.get("sender") == "Narrator")
    await w.wait_turn(3)
    await w.say("It was addressed to the sea.")
    rate = await w.wait_turn(4)
    assert rate["widget"]["kind"] == "rating"
    await w.say("4", {"rating": 4})
    await w.wait_state("done")
    agent = await store.get_agent(w.agent_id)
    data = await store.world_data(agent.conversation_id)
    assert data["rating"] == 4
    assert data["opening"] == "A lighthouse keeper finds a letter."
    assert data["story"][0] == "The keeper opened the letter."
    assert data["story"][1] == "And then, quite unexpectedly, the keeper opened the letter again."
    assert len(data["story"]) == 4
