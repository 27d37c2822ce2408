"""Small builders shared by the sandbox tests."""

from __future__ import annotations

from typing import Any

HTML_QUESTION = """<HTMLQuestion xmlns="http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/2011-11-11/HTMLQuestion.xsd">
<HTMLContent><![CDATA[<!DOCTYPE html><html><head><title>HTML task</title></head><body>
<form name="mturk_form" method="post" id="mturk_form" action="https://www.mturk.com/mturk/externalSubmit">
<input name="colour" value="blue"><input type="submit" id="submitButton" value="Submit"></form>
</body></html>]]></HTMLContent><FrameHeight>450</FrameHeight></HTMLQuestion>"""


def hit_params(question: str, **overrides: Any) -> dict[str, Any]:
    params: dict[str, Any] = {
        "Title": "Chat about a picture",
        "Description": "Talk with another person for five minutes.",
        "Keywords": "chat, dialogue",
        "Reward": "1.00",
        "AssignmentDurationInSeconds": 600,
        "LifetimeInSeconds": 3600,
        "AutoApprovalDelayInSeconds": 3600,
        "MaxAssignments": 1,
        "Question": question,
    }
    params.update(overrides)
    return params


def create_hit(mturk: Any, question: str, **overrides: Any) -> dict[str, Any]:
    hit: dict[str, Any] = mturk.create_hit(**hit_params(question, **overrides))["HIT"]
    return hit


def balance(mturk: Any) -> str:
    available: str = mturk.get_account_balance()["AvailableBalance"]
    return available
