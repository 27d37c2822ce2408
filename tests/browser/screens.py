"""Screenshots with layout facts a person would check, at a desktop and a phone width (not pixel equality).

`check_screen(page, name)` sets each width in turn and asserts: nothing is wider than the viewport (the page
does not scroll sideways, and no visible element sticks out of it); at most one send control is visible;
and, when it is the worker's turn, the input and its send button are visible, enabled (the test has filled
the input) and on screen. It saves
`{name}-{width}.png` under SCREENSHOTS (PARLEY_SCREENSHOTS, default tests/browser/screenshots/, ignored by
git) and prints each path.
"""

from __future__ import annotations

import os
from pathlib import Path

from playwright.async_api import Page, expect

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(os.environ.get("PARLEY_SCREENSHOTS") or ROOT / "tests" / "browser" / "screenshots")
SCREENSHOTS.mkdir(parents=True, exist_ok=True)
WIDTHS = {1280: 800, 375: 667}  # a desktop iframe, an iPhone SE

# Visible elements whose right edge passes the viewport's (a sideways-scrolling child counts as one box).
STICKING_OUT = """() => {
  const width = document.documentElement.clientWidth;
  const out = [];
  for (const node of document.body.querySelectorAll("*")) {
    if (!node.checkVisibility()) continue;
    let inside = node.parentElement;
    let clipped = false;
    while (inside && inside !== document.body) {
      const style = getComputedStyle(inside);
      if (style.overflowX !== "visible") { clipped = true; break; }
      inside = inside.parentElement;
    }
    if (clipped) continue;
    const box = node.getBoundingClientRect();
    if (box.width > 0 && box.right > width + 1) {
      out.push(`${node.localName}#${node.id}.${node.className}: ${Math.round(box.right)}`);
    }
  }
  return out.slice(0, 5);
}"""
SEND_CONTROLS = "#send-button, .annotation-send"
SIDEWAYS = "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"


async def _on_screen(page: Page, selector: str) -> bool:
    return bool(await page.locator(selector).first.evaluate("""node => {
        const box = node.getBoundingClientRect();
        return box.width > 0 && box.height > 0 && box.left >= -1 && box.top >= -1
            && box.right <= innerWidth + 1 && box.bottom <= innerHeight + 1;
    }"""))


async def check_screen(page: Page, name: str, *, your_turn: bool = False, input_selector: str = "#chat-input") -> None:
    for width, height in WIDTHS.items():
        await page.set_viewport_size({"width": width, "height": height})
        await page.evaluate("() => new Promise(requestAnimationFrame)")  # laid out at this width
        where = f"{name} at {width} px"
        overflow = await page.evaluate(SIDEWAYS)
        assert overflow <= 0, f"{where}: the page scrolls sideways by {overflow} px"
        sticking = await page.evaluate(STICKING_OUT)
        assert sticking == [], f"{where}: wider than the viewport: {sticking}"
        sends = await page.locator(SEND_CONTROLS).evaluate_all("nodes => nodes.filter(n => n.checkVisibility()).length")
        assert sends <= 1, f"{where}: {sends} send controls"
        if your_turn:
            for selector in (input_selector, "#send-button"):
                await page.locator(selector).first.scroll_into_view_if_needed()
                await expect(page.locator(selector).first).to_be_visible()
                assert await _on_screen(page, selector), f"{where}: {selector} is off screen"
            await expect(page.locator(input_selector).first).to_be_enabled()
            await expect(page.locator("#send-button")).to_be_enabled()  # the test has given it an answer
            assert sends == 1, f"{where}: no send control on the worker's turn"
        path = SCREENSHOTS / f"{name}-{width}.png"
        await page.screenshot(path=str(path))
        print(f"screenshot: {path}")  # noqa: T201 - the report lists them
