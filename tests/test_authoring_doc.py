"""Every example of docs/authoring.md, run as written: each Python block is a task module served by a real
server and worked through by a simulated worker; an HTML block is the page fragment a module names."""

import ast
import importlib
import inspect
import re
import sys
import textwrap
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from server.store import Store
from tests.conftest import make_settings
from tests.support.client import Crowd
from tests.support.server import LiveServer, serve
from worlds.base import Task

DOC = Path(__file__).parents[1] / "docs" / "authoring.md"
# A block at the margin is a whole example; an indented one (inside a list item) is a snippet of one.
BLOCKS = re.findall(r"^```(\w*)\n(.*?)^```", DOC.read_text(), re.S | re.M)
PYTHON = [code for lang, code in BLOCKS if lang == "python"]
HTML = [code for lang, code in BLOCKS if lang == "html"]
SNIPPETS = [textwrap.dedent(code) for code in re.findall(r"^( +)```python\n(.*?)^\1```", DOC.read_text(), re.S | re.M)
            for code in [code[1]]]
# The examples, by the task name each declares; a new Python block needs a test below.
EXAMPLES = {"story_builder": "doc_story_builder", "judge_reply": "doc_judge_reply"}


def _name_of(code: str) -> str:
    found = re.search(r'name="(\w+)"', code)
    assert found is not None, f"a Python example declares no task name:\n{code[:200]}"
    return found.group(1)


@pytest.fixture
def examples(tmp_path: Path) -> Iterator[dict[str, str]]:
    """Each Python block as a module in a fresh directory, each HTML block at the `worlds/data/...` path its
    first line names (under that directory's `data/`): {task name: module name}."""
    for html in HTML:
        named = re.match(r"<!-- worlds/data/(\S+\.html)", html)
        assert named is not None, f"an HTML example does not say where it lives:\n{html[:200]}"
        (tmp_path / "data").mkdir(exist_ok=True)
        (tmp_path / "data" / named.group(1)).write_text(html)
    modules = {}
    for code in PYTHON:
        name = _name_of(code)
        assert name in EXAMPLES, f"docs/authoring.md has an example ({name}) that no test here runs"
        (tmp_path / f"{EXAMPLES[name]}.py").write_text(code)
        modules[name] = EXAMPLES[name]
    sys.path.insert(0, str(tmp_path))
    try:
        yield modules
    finally:
        sys.path.remove(str(tmp_path))
        for module in modules.values():
            sys.modules.pop(module, None)


def test_every_snippet_parses_and_calls_worlds_base_as_it_is(examples: dict[str, str]) -> None:
    """A snippet cannot run alone (it is part of a world or a task), so it is read: it must parse, and every
    function or class of worlds.base it calls must exist and take each keyword the snippet gives it."""
    import worlds.base as base

    assert SNIPPETS, "docs/authoring.md has no indented Python snippet: this test reads nothing"
    checked = 0
    for snippet in SNIPPETS:
        tree = ast.parse(snippet.replace("...,", "").replace("(...)", "()"))
        for call in [n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)]:
            target = getattr(base, call.func.id, None)
            if target is None:
                continue  # the snippet's own names (a world class defined in it) or a builtin
            accepted = inspect.signature(target).parameters
            for keyword in call.keywords:
                assert keyword.arg in accepted, f"{call.func.id}() takes no {keyword.arg!r}: {snippet[:200]}"
            checked += 1
    assert checked >= 5, f"only {checked} calls into worlds.base were checked"


def test_every_python_example_is_a_task_module_and_has_a_test(examples: dict[str, str]) -> None:
    assert sorted(examples) == sorted(EXAMPLES), "an example this test runs is gone from docs/authoring.md"
    for name, module in examples.items():
        task = importlib.import_module(module).task
        assert isinstance(task, Task) and task.name == name


@pytest.fixture
async def served(examples: dict[str, str], db_url: str, tmp_path: Path) -> AsyncIterator[tuple[LiveServer, Crowd]]:
    runs = {name: module for name, module in examples.items()}
    with serve(make_settings(db_url, tmp_path, runs)) as live:
        crowd = Crowd(live.base)
        try:
            yield live, crowd
        finally:
            await crowd.close()


async def test_the_story_example_runs_end_to_end(store: Store, served: tuple[LiveServer, Crowd]) -> None:
    _live, crowd = served
    w = await crowd.start("story_builder", "W-writer")
    await w.wait_turn(1)
    await w.say("Yes", {"choice": "Yes"})  # onboarding
    first = await w.wait_turn(2)
    assert first["timeout_s"] == 120  # act() without a timeout: the task's Timeouts.turn
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
    assert len(data["story"]) == 4  # world_options={"sentences_each": 2}


async def test_the_form_example_asks_in_the_tasks_own_fragment(
    store: Store, served: tuple[LiveServer, Crowd]
) -> None:
    live, crowd = served
    async with httpx.AsyncClient(base_url=live.base, timeout=10) as http:
        ui = (await http.get("/task/judge_reply/ui/Judge")).json()
    assert 'name="natural"' in ui["html"]
    w = await crowd.start("judge_reply", "W-judge")
    turn = await w.wait_turn(1)
    assert turn["widget"] == {"kind": "fragment", "role": "Judge", "fields": ["natural"]}
    assert turn["timeout_s"] == 120
    await w.say("", {"form": {"issues": ["rude"], "comment": ""}})  # "natural" left out: asked again
    await w.wait_turn(2)
    await w.say("", {"form": {"natural": "2", "issues": ["rude"], "comment": ""}})
    await w.wait_state("done")
    agent = await store.get_agent(w.agent_id)
    data = await store.world_data(agent.conversation_id)
    assert data == {"reply": "Sure! The moon is made of cheese.", "natural": "2", "issues": ["rude"], "comment": ""}
