import pytest

from server.tokens import TokenError, TokenSigner


def test_a_token_carries_its_run_worker_assignment_and_agent() -> None:
    signer = TokenSigner("s" * 32, ttl_s=60)
    claim = signer.verify(signer.issue(run_id="r", worker_id="w", assignment_id="a", agent_id="g"))
    assert (claim.run_id, claim.worker_id, claim.assignment_id, claim.agent_id) == ("r", "w", "a", "g")


def test_a_forged_token_is_refused() -> None:
    token = TokenSigner("secret-one", 60).issue(run_id="r", worker_id="w", assignment_id="a", agent_id="g")
    with pytest.raises(TokenError, match="not valid"):
        TokenSigner("secret-two", 60).verify(token)


def test_a_token_with_an_edited_body_is_refused() -> None:
    signer = TokenSigner("k", 60)
    _, _, mac = signer.issue(run_id="r", worker_id="w", assignment_id="a", agent_id="g").partition(".")
    other, _, _ = signer.issue(run_id="r", worker_id="w2", assignment_id="a", agent_id="g").partition(".")
    with pytest.raises(TokenError):
        signer.verify(f"{other}.{mac}")
    with pytest.raises(TokenError):
        signer.verify("garbage")


def test_an_expired_token_is_refused_with_what_to_do() -> None:
    signer = TokenSigner("k", ttl_s=10)
    token = signer.issue(run_id="r", worker_id="w", assignment_id="a", agent_id="g")
    with pytest.raises(TokenError, match="Reload"):
        signer.verify(token, now=10**12)


@pytest.mark.parametrize("token", ["abc.\u00e9", "\u00e9.abc", "a.\ud800", "a\u0000.b"])
def test_a_token_with_characters_no_token_has_is_refused_as_invalid(token: str) -> None:
    with pytest.raises(TokenError, match="not valid"):
        TokenSigner("k", 60).verify(token)
