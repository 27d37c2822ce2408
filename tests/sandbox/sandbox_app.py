"""A tiny app that mounts only the sandbox, plus a static ExternalQuestion page at ``/task``.

Run as ``python -m tests.sandbox.sandbox_app STATE_PATH FD`` to serve on an inherited listening socket.
"""

from __future__ import annotations

import pathlib
import socket
import sys
import time
from collections.abc import Callable

import uvicorn
from fastapi import FastAPI
from fastapi.responses import HTMLResponse

from server.sandbox import Sandbox, build_sandbox

TASK_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Test task</title></head>
<body>
<h1 id="heading">Test task</h1>
<form id="mturk_form" method="post">
  <input type="hidden" name="assignmentId" id="assignmentId">
  <label>Answer <input name="answer" id="answer"></label>
  <button type="submit" id="submit">Submit</button>
</form>
<script>
  const params = new URLSearchParams(location.search);
  const form = document.getElementById("mturk_form");
  document.getElementById("assignmentId").value = params.get("assignmentId");
  form.action = params.get("turkSubmitTo") + "/mturk/externalSubmit";
  if (params.get("assignmentId") === "ASSIGNMENT_ID_NOT_AVAILABLE") {
    document.getElementById("heading").textContent = "Preview";
    document.getElementById("submit").disabled = true;
  } else {
    document.getElementById("heading").textContent = "Working " + params.get("workerId");
  }
</script>
</body></html>
"""


def create_app(state_path: pathlib.Path, clock: Callable[[], float] = time.time) -> tuple[FastAPI, Sandbox]:
    sandbox = build_sandbox(state_path=state_path, clock=clock)
    app = FastAPI()
    app.include_router(sandbox.router)

    @app.get("/task")
    async def task_page() -> HTMLResponse:
        return HTMLResponse(TASK_PAGE)

    return app, sandbox


def server_for(app: FastAPI) -> uvicorn.Server:
    config = uvicorn.Config(app, log_level="warning", lifespan="off", ws="none", http="h11", access_log=False)
    return uvicorn.Server(config)


if __name__ == "__main__":
    state_file, fd = pathlib.Path(sys.argv[1]), int(sys.argv[2])
    application, _ = create_app(state_file)
    server_for(application).run(sockets=[socket.socket(fileno=fd)])
