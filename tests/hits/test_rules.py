"""The provider's retry policy and the pure publishing rules."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from server.hits import LiveModeRefused, check_live
from server.hits import plan as rules
from server.providers.mturk import LIVE_ENDPOINT, SANDBOX_ENDPOINT, MTurk, MTurkError, Retry, endpoint_for
from worlds.base import Qualifications


class FlakyClient:
    """Answers GetAccountBalance after `failures` errors of the given kind."""

    def __init__(self, failures: int, error: Exception) -> None:
        self.failures = failures
        self.error = error
        self.calls = 0

    def get_account_balance(self) -> dict[str, Any]:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return {"AvailableBalance": "10.00"}


def _client_error(code: str, status: int = 400, turk: str = "") -> ClientError:
    response: Any = {"Error": {"Code": code, "Message": "no"}, "ResponseMetadata": {"HTTPStatusCode": status}}
    if turk:
        response["TurkErrorCode"] = turk
    return ClientError(response, "GetAccountBalance")


FAST = Retry(attempts=4, base_s=0.001, max_s=0.002)


@pytest.mark.parametrize("error", [
    _client_error("ThrottlingException"),
    _client_error("ServiceFault", 500),
    EndpointConnectionError(endpoint_url="http://127.0.0.1:1"),
])
async def test_throttling_and_transient_failures_are_retried_with_backoff(error: Exception) -> None:
    client = FlakyClient(2, error)
    reply = await MTurk(client, endpoint="x", retry=FAST).call("GetAccountBalance")
    assert reply == {"AvailableBalance": "10.00"} and client.calls == 3


async def test_a_refused_request_is_not_retried_and_names_mturks_error_code() -> None:
    client = FlakyClient(5, _client_error("RequestError", turk="AWS.MechanicalTurk.HITDoesNotExist"))
    with pytest.raises(MTurkError) as raised:
        await MTurk(client, endpoint="x", retry=FAST).call("GetAccountBalance")
    assert client.calls == 1 and raised.value.code == "AWS.MechanicalTurk.HITDoesNotExist"


async def test_retries_stop_after_the_last_attempt() -> None:
    client = FlakyClient(10, _client_error("ThrottlingException"))
    with pytest.raises(MTurkError):
        await MTurk(client, endpoint="x", retry=FAST).call("GetAccountBalance")
    assert client.calls == FAST.attempts


def test_endpoint_is_the_setting_else_the_providers() -> None:
    assert endpoint_for("live", public_url="https://p") == LIVE_ENDPOINT
    assert endpoint_for("sandbox", public_url="https://p") == SANDBOX_ENDPOINT
    assert endpoint_for("builtin", public_url="http://h:1/") == "http://h:1/sandbox/mturk"
    assert endpoint_for("live", public_url="https://p", endpoint_url="http://e") == "http://e"


def test_tokens_are_deterministic_distinct_and_fit_mturks_limit() -> None:
    tokens = {rules.hit_token("run", slot) for slot in range(1000)}
    assert len(tokens) == 1000 and rules.hit_token("run", 7) == rules.hit_token("run", 7)
    assert rules.hit_token("run", 0) != rules.hit_token("other", 0)
    assert all(len(t) <= 64 for t in tokens) and len(rules.bonus_token("A" * 60, "k")) <= 64


def test_fees_are_mturks_twenty_percent_with_a_cent_minimum() -> None:
    assert rules.charge_cents(50) == 60
    assert rules.fee_cents(1) == 1 and rules.fee_cents(25) == 5 and rules.fee_cents(13) == 3
    assert rules.cents("0.25") == 25 and rules.dollars(1205) == "12.05"


def test_a_hit_of_several_assignments_is_charged_for_each_and_ten_or_more_pay_forty_percent() -> None:
    assert rules.charge_cents(5, 3) == 18  # (0.05 + the 1-cent minimum fee) x 3
    assert rules.charge_cents(50, 9) == 540
    assert rules.charge_cents(50, 10) == 700  # the 40% band, which form runs refuse to enter
    assert rules.fee_cents(100, 10) == 40 and rules.fee_cents(100, 9) == 20


def test_a_form_items_token_is_stable_per_item_and_attempt() -> None:
    token = rules.form_token("run", "t1")
    assert token == rules.form_token("run", "t1", 0) and token.startswith("parley-") and len(token) <= 64
    assert len({token, rules.form_token("run", "t2"), rules.form_token("run", "t1", 1),
                rules.form_token("other", "t1"), rules.hit_token("run", 0)}) == 5


def test_open_target_is_capped_by_concurrency_and_by_what_is_left() -> None:
    need = rules.Need(target=100, completed=0, live_conversations=0, humans_waiting=0, roles=2, max_conversations=5)
    assert rules.open_target(need, 1.25) == 10
    nearly = rules.Need(target=10, completed=9, live_conversations=0, humans_waiting=1, roles=2, max_conversations=5)
    assert rules.open_target(nearly, 1.25) == 2  # one human slot left, overbooked
    done = rules.Need(target=10, completed=9, live_conversations=1, humans_waiting=0, roles=2, max_conversations=5)
    assert rules.open_target(done, 1.25) == 0


def test_default_locale_and_approval_rate_are_required_on_live_only() -> None:
    gates = rules.Gates(soft_block="B", onboarding_failed="O", at_cap="C")
    live = rules.requirements(gates, live=True)
    sandbox = rules.requirements(gates, live=False)
    assert {r["QualificationTypeId"] for r in live} == {rules.LOCALE, rules.PERCENT_APPROVED, "B", "O", "C"}
    assert [(r["QualificationTypeId"], r["Comparator"]) for r in sandbox] == [
        ("B", "DoesNotExist"), ("O", "DoesNotExist"), ("C", "DoesNotExist"),
    ]


def test_declared_qualifications_are_required_on_every_account_in_mturks_shape() -> None:
    gates = rules.Gates(soft_block="B", onboarding_failed=None, at_cap="C", block_list="K", allow_list="A")
    custom = {"QualificationTypeId": "3CUSTOM", "Comparator": "GreaterThan", "IntegerValues": [80]}
    declared = Qualifications(locales=("US", "GB-ENG"), min_approval_rate=98, min_approved_hits=500, masters=True,
                              custom=(custom,))
    sandbox = rules.requirements(gates, live=False, declared=declared)
    assert sandbox[0] == {"QualificationTypeId": rules.LOCALE, "Comparator": "In", "ActionsGuarded": rules.HIDE,
                          "LocaleValues": [{"Country": "US"}, {"Country": "GB", "Subdivision": "ENG"}]}
    shapes = [(r["QualificationTypeId"], r["Comparator"], r.get("IntegerValues")) for r in sandbox[1:]]
    assert shapes == [
        (rules.PERCENT_APPROVED, "GreaterThanOrEqualTo", [98]), (rules.NUMBER_APPROVED, "GreaterThanOrEqualTo", [500]),
        (rules.MASTERS_SANDBOX, "Exists", None), ("3CUSTOM", "GreaterThan", [80]), ("A", "Exists", None),
        ("B", "DoesNotExist", None), ("C", "DoesNotExist", None), ("K", "DoesNotExist", None),
    ]
    live = rules.requirements(gates, live=True, declared=Qualifications(masters=True, min_approval_rate=0))
    assert rules.MASTERS_LIVE in {r["QualificationTypeId"] for r in live}
    assert rules.PERCENT_APPROVED not in {r["QualificationTypeId"] for r in live}  # 0 lifts the default


def test_live_publishing_needs_a_budget_and_https() -> None:
    with pytest.raises(LiveModeRefused, match="budget"):
        check_live(live=True, budget_usd=0, public_url="https://p")
    with pytest.raises(LiveModeRefused, match="https"):
        check_live(live=True, budget_usd=10, public_url="http://p")
    check_live(live=True, budget_usd=10, public_url="https://p")
    check_live(live=False, budget_usd=0, public_url="http://p")
