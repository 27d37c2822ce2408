"""The dashboard on first try: a server started with no `PARLEY_ADMIN_TOKEN` that listens on loopback only
(`make run`) makes a local admin token and logs a one-click login link; one that listens beyond this machine
makes none (anyone who reaches it could otherwise try it), and the dashboard stays off until a token is set.

The token is kept in `{data_dir}/admin-token` (owner-only), so a restart or a second local process on the
same data directory uses the same one and open sessions survive. The link carries the token in the URL's
fragment, which the browser never sends: the page posts it once to log in and takes it out of the address.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import secrets
from pathlib import Path

from server.settings import Settings

log = logging.getLogger("parley.admin")
FILE_NAME = "admin-token"


def loopback_only(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name other than localhost may resolve to anything


def with_local_admin_token(settings: Settings) -> Settings:
    """`settings` with a local admin token when it has none and listens on loopback only; else unchanged."""
    if settings.admin_token or not loopback_only(settings.host):
        return settings
    return settings.model_copy(update={"admin_token": _kept_token(settings.data_dir / FILE_NAME)})


def _kept_token(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(24)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        kept = path.read_text().strip()
        if len(kept) >= 16:
            return kept
        path.write_text(token + "\n")  # empty or cut short (a crash while writing): make a new one
        return token
    with os.fdopen(descriptor, "w") as file:
        file.write(token + "\n")
    return token


def announce_dashboard(settings: Settings, *, local: bool) -> None:
    """Say at start-up where the dashboard is and how to get in."""
    base = settings.listen_url.rstrip("/")
    if local:
        log.info(
            "Review dashboard: open %s/admin#token=%s to log in (a local admin token, made because "
            "PARLEY_ADMIN_TOKEN is unset and Parley listens on this machine only; kept in %s)",
            base, settings.admin_token, settings.data_dir / FILE_NAME,
        )
    elif not settings.admin_token:
        log.info(
            "Review dashboard is off: set PARLEY_ADMIN_TOKEN to turn it on (no local token is made while "
            "Parley listens on %s, beyond this machine)", settings.host,
        )
    else:
        log.info("Review dashboard: open %s/admin and log in with PARLEY_ADMIN_TOKEN", settings.public_url.rstrip("/"))
