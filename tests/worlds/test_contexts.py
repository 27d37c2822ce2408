"""Task contexts load from JSONL, CSV or an iterable, and a malformed file stops the run at start."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.tasks import load_task
from worlds.base import ContextFileError


def test_every_task_module_loads_with_its_shipped_data() -> None:
    for module in ("model_evaluator", "multi_agent_dialog", "pairwise_eval", "static_form"):
        task = load_task(f"worlds.{module}")
        assert task.name == module and task.context_for(0) is not None
    assert load_task("worlds.model_chat").context_for(0) is None  # an open chat needs no context


def test_a_malformed_jsonl_context_file_fails_at_start_naming_its_line(tmp_path: Path) -> None:
    bad = tmp_path / "contexts.jsonl"
    bad.write_text('{"id": "c1", "dialogue": []}\n\n{"id": "c2", oops}\n', encoding="utf-8")
    with pytest.raises(ContextFileError, match=r"contexts.jsonl:3: not valid JSON"):
        load_task("worlds.model_evaluator", {"contexts_path": str(bad)})


def test_a_pairs_file_that_is_not_valid_fails_at_start(tmp_path: Path) -> None:
    bad = tmp_path / "pairs.jsonl"
    bad.write_text('["not", "an", "object"]\n', encoding="utf-8")
    with pytest.raises(ContextFileError, match=r"pairs.jsonl:1: each line must be a JSON object"):
        load_task("worlds.pairwise_eval", {"pairs_path": str(bad)})


def test_contexts_may_be_any_python_iterable() -> None:
    task = load_task("worlds.static_form", {"items": ({"id": str(i), "text": f"tweet {i}"} for i in range(2))})
    assert [task.context_for(i)["id"] for i in range(3)] == ["0", "1", "0"]
