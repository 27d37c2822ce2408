"""Which Prolific a server talks to: the built-in one with no configuration, Prolific's own with a token."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.prolific_wiring import PROLIFIC_API, builtin_prolific, completion_url, prolific_api_url, prolific_provider
from server.settings import Settings
from server.store import Store


def settings(tmp_path: Path, **values: object) -> Settings:
    return Settings(data_dir=tmp_path, public_url="http://127.0.0.1:8123", **values)  # type: ignore[arg-type]


def test_no_configuration_means_the_built_in_prolific(tmp_path: Path) -> None:
    plain = settings(tmp_path)
    assert builtin_prolific(plain)
    assert prolific_api_url(plain) == "http://127.0.0.1:8123/sandbox/prolific/api/v1"
    assert completion_url(plain) == "http://127.0.0.1:8123/sandbox/prolific/submissions/complete"


async def test_a_token_means_prolific_itself_with_real_money(tmp_path: Path) -> None:
    real = settings(tmp_path, prolific_api_token="secret-token")
    assert not builtin_prolific(real)
    assert prolific_api_url(real) == PROLIFIC_API
    assert completion_url(real) == "https://app.prolific.com/submissions/complete"
    provider = prolific_provider(real, Store(real.db_url))
    assert provider.is_live and provider.account == PROLIFIC_API
    await provider.aclose()


def test_a_server_on_real_mturk_without_a_prolific_token_refuses_to_recruit_on_prolific(tmp_path: Path) -> None:
    on_mturk = settings(tmp_path, provider="sandbox")
    assert not builtin_prolific(on_mturk)
    with pytest.raises(ValueError, match="PARLEY_PROLIFIC_API_TOKEN"):
        prolific_provider(on_mturk, Store(on_mturk.db_url))
