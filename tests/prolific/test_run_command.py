"""`parley prolific run worlds.chat_demo` with no configuration: a real process recruits the run on its
built-in Prolific, and a participant can take a place and land on the task page."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import httpx

from tests.prolific.conftest import TOKEN
from tests.prolific.helpers import take_place
from tests.support.process import ServerProcess
from tests.support.server import free_port

PARLEY = "import sys, server.cli_prolific; from server.cli import main; sys.argv[0] = 'parley'; main()"


def test_parley_prolific_run_recruits_chat_demo_on_the_built_in_prolific_with_no_configuration(
    tmp_path: Path, db_url: str
) -> None:
    port = free_port()
    command = [sys.executable, "-c", PARLEY, "prolific", "run", "worlds.chat_demo", "--run-id", "chat-p",
               "--port", str(port)]
    server = ServerProcess(port=port, data_dir=tmp_path, db_url=db_url, runs={}, command=command)
    del server.env["PARLEY_PUBLIC_URL"], server.env["PARLEY_DEMO_RUNS"], server.env["PARLEY_PORT"]
    server.start()
    try:
        api = f"{server.base}/sandbox/prolific/api/v1"
        deadline = time.monotonic() + 30
        studies: list[dict[str, object]] = []
        while not studies and time.monotonic() < deadline:  # the study manager publishes in the background
            studies = [s for s in httpx.get(f"{api}/studies/", headers=TOKEN).json()["results"]
                       if s["status"] == "ACTIVE"]
            time.sleep(0.2)
        assert studies, f"no study published in 30s:\n{server.log.read_text()[-2000:]}"
        [study] = studies
        assert study["internal_name"] == "parley:chat-p" and study["total_available_places"] >= 2
        with httpx.Client(base_url=server.base, timeout=10) as site:
            params = take_place(site, str(study["id"]), "PID-cli")
            page = site.get("/task/chat-p", params=params)
        assert page.status_code == 200 and "<html" in page.text.lower()
    finally:
        server.stop()
