"""Per-role page fragments: the task declares them, the server serves only those, and each role's answers
come back through the ordinary message frame into the saved record."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from server.store import Store
from tests.support.server import LiveServer
from tests.worlds.conftest import Players, record_of
from worlds.answers import BadAnswer, read_answer
from worlds.base import FragmentError, Message, Task, World, checkboxes, fragment, load_fragment
from worlds.role_survey import UI

CUSTOMER = {"satisfaction": "4", "did_well": ["polite"], "again": "yes", "comment": ""}
SUPPORT = {"clear": "partly", "offered": ["apology", "refund"], "difficulty": 3, "notes": "Kind customer."}


async def test_each_role_answers_its_own_fragment_and_the_answers_are_saved_per_role(
    store: Store, players: Players
) -> None:
    one = await players.join("survey", "W-one")
    two = await players.join("survey", "W-two")
    briefing = await one.wait_message(lambda f: f["kind"] == "context")
    customer, support = (one, two) if "You are the customer" in briefing["text"] else (two, one)
    await customer.answer("My kettle lid is cracked.")
    await support.answer("Sorry! I will send a new one.")

    surveys = {}
    for player, answers in ((customer, CUSTOMER), (support, SUPPORT)):
        turn = await player.turn()
        surveys[turn["widget"]["role"]] = turn["widget"]
        await player.worker.say("survey", {"form": answers})
    assert surveys == {
        "Customer": {"kind": "fragment", "role": "Customer", "fields": ["satisfaction", "again"]},
        "Support": {"kind": "fragment", "role": "Support", "fields": ["clear", "difficulty"]},
    }
    await customer.worker.wait_state("done")
    await support.worker.wait_state("done")

    record = await record_of(store, customer)
    assert record["surveys"] == {"Customer": CUSTOMER, "Support": SUPPORT}
    assert [d["speaker"] for d in record["dialogue"]] == ["Customer", "Support"]


async def test_the_server_serves_only_declared_fragments_with_their_stylesheet(worlds_server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=worlds_server.base) as http:
        customer = await http.get("/task/survey/ui/Customer")
        support = await http.get("/task/survey/ui/Support")
        css = await http.get(customer.json()["stylesheet"])
        missing = [await http.get(path) for path in (
            "/task/survey/ui/Judge", "/task/survey/ui/..%2F..%2Fserver%2Fsettings.py", "/task/survey/ui/Bot",
            "/task/survey/ui/Support/style.css", "/task/chat/ui/Worker", "/task/nope/ui/Customer",
        )]
    assert customer.status_code == 200 and customer.json()["html"] == UI["Customer"].read_text()
    assert customer.json()["stylesheet"] == "/task/survey/ui/Customer/style.css"
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert ".customer-survey" in css.text
    assert support.json() == {"role": "Support", "html": UI["Support"].read_text(), "stylesheet": None}
    assert [r.status_code for r in missing] == [404] * 6
    codes = [r.json()["error"]["code"] for r in missing]
    assert codes[:1] + codes[2:] == ["unknown_fragment"] * 4 + ["unknown_run"]
    assert "Settings" not in missing[1].text  # a path never reaches the disk: the role is only a key
    assert "no page fragment for role 'Judge'" in missing[0].json()["error"]["message"]
    assert "Customer, Support" in missing[0].json()["error"]["message"]


class Nothing(World):
    async def run(self) -> None:
        return None


@pytest.mark.parametrize(("html", "reason"), [
    ("<p>hi</p>\n<script>alert(1)</script>", ":2: a page fragment may not contain a <script> element"),
    ('<img src="x" onerror="alert(1)">', "an inline event handler (onerror=)"),
    ("<style>p { color: red }</style>", "a <style> element"),
    ('<p style="color: red">x</p>', "a style attribute"),
    ('<a href="javascript:alert(1)">x</a>', "a javascript: URL"),
    ('<iframe src="/"></iframe>', "a <iframe> element"),
])
def test_a_fragment_that_could_run_code_fails_when_the_task_is_built(
    tmp_path: Path, html: str, reason: str
) -> None:
    path = tmp_path / "bad.html"
    path.write_text(html)
    with pytest.raises(FragmentError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        Task(name="t", title="t", description="t", world=Nothing, roles=["A"], ui={"A": path})


def test_fragments_are_declared_for_human_roles_as_readable_html_files(tmp_path: Path) -> None:
    page = tmp_path / "ok.html"
    page.write_text("<p>Say one = two, done.</p><input name='x' required>")
    assert load_fragment(page).css is None
    with pytest.raises(ValueError, match=r"ui names \['Bot'\], which are not human roles"):
        Task(name="t", title="t", description="t", world=Nothing, roles=["A"], ui={"Bot": page})
    with pytest.raises(FragmentError, match=r"must be an \.html file"):
        load_fragment(tmp_path / "ok.txt")
    with pytest.raises(FragmentError, match="cannot read the page fragment"):
        load_fragment(tmp_path / "missing.html")


def test_a_fragment_answer_must_be_a_form_with_its_required_fields_filled() -> None:
    widget = fragment("A", fields=["q"])
    assert widget.to_dict() == {"kind": "fragment", "role": "A", "fields": ["q"]}
    assert read_answer(widget, Message(data={"form": {"q": "yes", "n": 2, "ticks": ["a"]}})) == {
        "q": "yes", "n": 2, "ticks": ["a"],
    }
    for data, why in [({}, "missing"), ({"form": {"q": ""}}, "q is not answered"),
                      ({"form": {"q": "y", "x": {"deep": 1}}}, "unexpected kind"),
                      ({"form": {"q": "y" * 5001}}, "too long")]:
        with pytest.raises(BadAnswer, match=why):
            read_answer(widget, Message(data=data))


def test_checkboxes_about_a_message_carry_its_id() -> None:
    assert checkboxes(["a"], about="m7").to_dict() == {"kind": "checkboxes", "options": ["a"], "message_id": "m7"}
    assert checkboxes(["a"]).to_dict() == {"kind": "checkboxes", "options": ["a"]}
