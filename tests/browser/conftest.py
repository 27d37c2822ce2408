"""Browser fixtures: one Chromium per test (PARLEY_CHROMIUM, Debian's, or Playwright's own)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser

from tests.browser.worker_page import chromium


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as launched:
        yield launched
