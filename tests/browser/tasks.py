"""Tasks for the worker-page tests of task-specific UI (loaded as "tests.browser.tasks:<name>").

Turn timeouts are generous for a loaded machine; nothing here waits for a timeout to pass.
"""

from __future__ import annotations

from worlds import chat_demo, model_chat, pairwise_eval, qa_data_collection, role_survey
from worlds.base import Task, Timeouts

TIMEOUTS = Timeouts(turn=30.0, waiting=30.0, onboarding=30.0, reconnect_grace=5.0, submission=30.0)
XSS = '<img src=x onerror="window.__owned=1"><script>window.__owned=1</script>'
PAIR = {"id": "p-xss", "conversations": [
    {"model": "plain", "dialogue": [
        {"speaker": "Human", "text": "Hi, how are you?"},
        {"speaker": "Bot", "text": "Fine, thanks. I just read a book about <b>lighthouses</b>."},
    ]},
    {"model": "sneaky", "dialogue": [
        {"speaker": "Human", "text": "Hello there"},
        {"speaker": "Bot", "text": XSS},
    ]},
]}


def survey() -> Task:
    task = role_survey.make_task(turns_each=1, turn_timeout=30.0)
    task.timeouts = TIMEOUTS
    return task


def pairs() -> Task:
    task = pairwise_eval.make_task(pairs=[PAIR], pairs_per_hit=1, gold_per_hit=0, seed=0, turn_timeout=30.0)
    task.timeouts = TIMEOUTS
    return task


def annotate() -> Task:
    task = model_chat.make_task(turns=2, bot="echo", onboarding=False, turn_timeout=30.0, bot_timeout=10.0)
    task.timeouts = TIMEOUTS
    return task


RUNS = {name: f"tests.browser.tasks:{name}" for name in ("survey", "pairs", "annotate")}


def write() -> Task:
    """One worker writes a question and its answer (QA data collection), with time to paste and edit."""
    task = qa_data_collection.make_task(turn_timeout=30.0)
    task.timeouts = TIMEOUTS
    return task


RUNS["write"] = "tests.browser.tasks:write"


def annotate_onboarded() -> Task:
    """Model chat with its qualification: the sample chat to label first (gold in worlds/data)."""
    task = model_chat.make_task(turns=1, bot="echo", onboarding=True, turn_timeout=30.0, bot_timeout=10.0)
    task.timeouts = TIMEOUTS
    return task


RUNS["annotate_onboarded"] = "tests.browser.tasks:annotate_onboarded"


def pair() -> Task:
    """Two people chat, two turns each; a long reconnect grace, so a partner who leaves may come back."""
    task = chat_demo.make_task(turns_each=2, turn_timeout=60.0, waiting_timeout=60.0)
    task.timeouts = Timeouts(turn=60.0, waiting=60.0, onboarding=60.0, reconnect_grace=40.0, submission=60.0)
    return task


RUNS["pair"] = "tests.browser.tasks:pair"


def pair_quick() -> Task:
    """`pair` with a short reconnect grace: a partner who closes the tab has left two seconds later."""
    task = pair()
    task.timeouts = Timeouts(turn=60.0, waiting=60.0, onboarding=60.0, reconnect_grace=2.0, submission=60.0)
    return task


RUNS["pair_quick"] = "tests.browser.tasks:pair_quick"
