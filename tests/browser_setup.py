"""Make sure a Chromium exists for the browser tests, before pytest runs.

Order: PARLEY_CHROMIUM, then Debian's /usr/bin/chromium, then Playwright's own download (a developer's
machine with internet). With PARLEY_REQUIRE_BROWSER=1 (CI), a missing browser is an error.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys


def system_chromium() -> str | None:
    for candidate in (os.environ.get("PARLEY_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium")):
        if candidate and os.path.exists(candidate):
            return candidate
    return None


def main() -> int:
    found = system_chromium()
    if found:
        sys.stderr.write(f"browser tests use {found}\n")
        return 0
    if os.environ.get("PARLEY_REQUIRE_BROWSER") == "1":
        sys.stderr.write("no Chromium found: install Debian's chromium (apt-get install -y chromium)\n")
        return 1
    sys.stderr.write("no system Chromium; fetching Playwright's own build\n")
    return subprocess.call([sys.executable, "-m", "playwright", "install", "chromium"])


if __name__ == "__main__":
    raise SystemExit(main())
