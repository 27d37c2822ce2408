"""A tiny OpenAI-compatible chat-completions server for the LLM bot tests, on a free port in a thread.

What it does is chosen by the request's model name, or by the last user message for bots driven by a
world ("please fail" / "please stall" inside the text):
- "ok": answers "Model heard: <last user message>" (streamed as several SSE chunks when `stream` is true);
- "fail": HTTP 500 with an error body;
- "stall": holds the request open until the test ends (the bot's own timeout must fire first);
- "garbage": HTTP 200 with a body that is not a chat completion.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from tests.support.server import free_port, run_in_thread


@dataclass
class FakeLLM:
    port: int = 0
    requests: list[dict[str, Any]] = field(default_factory=list)
    loop: asyncio.AbstractEventLoop | None = None
    release: asyncio.Event | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def mode(self, body: dict[str, Any]) -> str:
        model = str(body.get("model", ""))
        if model in ("fail", "stall", "garbage"):
            return model
        last = str(body["messages"][-1]["content"]) if body.get("messages") else ""
        return "fail" if "please fail" in last else "stall" if "please stall" in last else "ok"


def _app(fake: FakeLLM) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        fake.loop = asyncio.get_running_loop()
        fake.release = asyncio.Event()
        yield

    app = FastAPI(lifespan=lifespan)

    @app.post("/v1/chat/completions")
    async def completions(request: Request) -> Response:
        body = await request.json()
        fake.requests.append(body)
        mode = fake.mode(body)
        if mode == "fail":
            return JSONResponse({"error": {"message": "the model crashed"}}, status_code=500)
        if mode == "garbage":
            return JSONResponse({"unexpected": True})
        if mode == "stall":
            assert fake.release is not None
            await asyncio.wait_for(fake.release.wait(), 30)
        reply = f"Model heard: {body['messages'][-1]['content']}"
        if body.get("stream"):
            return StreamingResponse(_chunks(reply), media_type="text/event-stream")
        return JSONResponse({
            "id": "cmpl-1", "object": "chat.completion", "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": "stop"}],
        })

    return app


async def _chunks(reply: str) -> AsyncIterator[str]:
    words = reply.split(" ")
    for i, word in enumerate(words):
        delta = {"content": word if i == 0 else f" {word}"}
        chunk = {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
        yield f"data: {json.dumps(chunk)}\n\n"
    final = {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
    yield f"data: {json.dumps(final)}\n\n"
    yield "data: [DONE]\n\n"


@contextmanager
def fake_llm() -> Iterator[FakeLLM]:
    fake = FakeLLM(port=free_port())
    app = _app(fake)
    with run_in_thread(app, fake.port, name="fake-llm"):
        try:
            yield fake
        finally:  # let streaming handlers that wait for a release finish, so the server can stop
            if fake.loop is not None and fake.release is not None:
                fake.loop.call_soon_threadsafe(fake.release.set)
