"""What main.py calls to bring the built-in Prolific in, and where Parley's Prolific provider finds its API.

The emulator is served beside the built-in MTurk whenever the provider is `builtin` (and no Prolific API is
configured): a development server then recruits on either with zero configuration, and an unused emulator
costs one router (its state file is written only once something changes).
"""

from __future__ import annotations

from fastapi import FastAPI

from server.prolific_sandbox import API_PATH, ProlificSandbox, build_prolific_sandbox
from server.providers.prolific import ProlificProvider
from server.providers.prolific_api import ProlificApi
from server.providers.prolific_ledger import Ledger
from server.settings import Settings

PROLIFIC_API = "https://api.prolific.com/api/v1"
PROLIFIC_COMPLETE = "https://app.prolific.com/submissions/complete"


def builtin_prolific(settings: Settings) -> bool:
    return settings.provider == "builtin" and not settings.prolific_api_url


def mount_prolific_sandbox(app: FastAPI, settings: Settings) -> ProlificSandbox | None:
    if not builtin_prolific(settings):
        return None
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    sandbox, router = build_prolific_sandbox(state_path=settings.data_dir / "prolific.json")
    app.include_router(router)
    return sandbox


def prolific_api_url(settings: Settings) -> str:
    """The API the provider calls: the configured one, else the built-in emulator (builtin), else Prolific's."""
    if settings.prolific_api_url:
        return settings.prolific_api_url.rstrip("/")
    if settings.provider == "builtin":
        return settings.public_url.rstrip("/") + API_PATH
    return PROLIFIC_API


def completion_url(settings: Settings) -> str:
    """Where a participant is sent at the end with `?cc=CODE`: the emulator's page, or Prolific's."""
    if builtin_prolific(settings):
        return settings.public_url.rstrip("/") + "/sandbox/prolific/submissions/complete"
    return PROLIFIC_COMPLETE


def prolific_provider(settings: Settings) -> ProlificProvider:
    """The Prolific provider for these settings. Prolific has no sandbox of its own: its API is real money."""
    url = prolific_api_url(settings)
    live = url == PROLIFIC_API
    if live and not settings.prolific_api_token:
        raise ValueError(
            "PARLEY_PROLIFIC_API_TOKEN must be set to recruit on Prolific (create a token in Prolific's "
            "settings, API tokens), or run with PARLEY_PROVIDER=builtin to use the built-in Prolific"
        )
    account = "builtin" if builtin_prolific(settings) else url
    return ProlificProvider(
        ProlificApi(url, settings.prolific_api_token or "parley-builtin"),
        Ledger(settings.data_dir / "prolific_ledger.json", account),
        fee_percent=settings.prolific_fee_percent, vat_percent=settings.prolific_vat_percent, is_live=live,
    )
