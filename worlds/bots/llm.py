"""A bot backed by any OpenAI-compatible chat-completions endpoint (vLLM, Ollama, llama.cpp, OpenAI).

Configure it with `LLMConfig`: `base_url` (e.g. "http://127.0.0.1:11434/v1"; the bot POSTs to
`{base_url}/chat/completions`), `model`, `system_prompt`, `temperature`, `max_tokens`, `stream` (read the
reply as server-sent events) and `timeout` (seconds for the whole reply, streaming included).

Failure is part of the contract: a timeout, an HTTP error status, an unreachable server or an answer that
is not a chat completion never hangs the worker. The bot replies with an in-chat notice (`kind="system"`)
whose `data["error"]` records `{"type", "message", ...}`; the notice is not added to the model's history.
Every reply the model did give carries `data["llm"] = {"model", "streamed", "finish_reason"}`.
"""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import dataclass
from typing import Any

import httpx

from worlds.base import Message
from worlds.bots.protocol import MessageBot, error_notice

DEFAULT_PROMPT = "You are a friendly, concise conversation partner. Answer in one to three sentences."


class ModelError(Exception):
    def __init__(self, kind: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail
        self.extra = extra


@dataclass(frozen=True)
class LLMConfig:
    base_url: str
    model: str
    system_prompt: str = DEFAULT_PROMPT
    temperature: float = 0.7
    max_tokens: int | None = 256
    stream: bool = False
    timeout: float = 60.0
    api_key: str = ""
    api_key_env: str = ""  # read the key from this environment variable when api_key is empty

    def headers(self) -> dict[str, str]:
        key = self.api_key or (os.environ.get(self.api_key_env, "") if self.api_key_env else "")
        return {"Authorization": f"Bearer {key}"} if key else {}


class LLMBot(MessageBot):
    def __init__(self, role: str, config: LLMConfig) -> None:
        super().__init__(role)
        self.config = config
        self._client: httpx.AsyncClient | None = None

    def chat_messages(self) -> list[dict[str, str]]:
        """The history as chat-completions messages: this bot's turns are the assistant's."""
        speakers = {m.sender for m in self.history if m.sender != self.role and m.kind == "chat"}
        messages = [{"role": "system", "content": self.config.system_prompt}] if self.config.system_prompt else []
        for m in self.history:
            if m.kind == "system" or not m.text:
                continue
            if m.sender == self.role:
                messages.append({"role": "assistant", "content": m.text})
            elif m.kind == "context":
                messages.append({"role": "user", "content": f"Context: {m.text}"})
            else:
                text = f"{m.sender}: {m.text}" if len(speakers) > 1 else m.text
                messages.append({"role": "user", "content": text})
        return messages

    async def act(self) -> Message:
        try:
            async with asyncio.timeout(self.config.timeout):
                text, finish = await (self._stream() if self.config.stream else self._complete())
        except TimeoutError:
            return self._notice(ModelError("timeout", f"no reply within {self.config.timeout:g} s"))
        except ModelError as exc:
            return self._notice(exc)
        return self.remember(Message(
            text=text, sender=self.role,
            data={"llm": {"model": self.config.model, "streamed": self.config.stream, "finish_reason": finish}},
        ))

    def _notice(self, exc: ModelError) -> Message:
        reasons = {
            "timeout": "the model took too long to answer",
            "http_status": f"the model server answered with an error (HTTP {exc.extra.get('status', '?')})",
            "unreachable": "the model server could not be reached",
            "bad_response": "the model server sent an answer we could not read",
        }
        text = (
            f"The bot could not reply this time: {reasons.get(exc.kind, exc.kind)}. "
            "This is not your fault; please continue."
        )
        return error_notice(self.role, text, kind=exc.kind, detail=exc.detail, model=self.config.model, **exc.extra)

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                base_url=self.config.base_url.rstrip("/") + "/",
                timeout=httpx.Timeout(self.config.timeout),
                headers=self.config.headers(),
            )
        return self._client

    def _body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.config.model,
            "messages": self.chat_messages(),
            "temperature": self.config.temperature,
            "stream": self.config.stream,
        }
        if self.config.max_tokens is not None:
            body["max_tokens"] = self.config.max_tokens
        return body

    async def _complete(self) -> tuple[str, str | None]:
        try:
            reply = await self._http().post("chat/completions", json=self._body())
        except httpx.TimeoutException as exc:
            raise ModelError("timeout", f"no reply within {self.config.timeout:g} s") from exc
        except httpx.HTTPError as exc:
            raise ModelError("unreachable", f"{type(exc).__name__}: {exc}") from exc
        _check_status(reply)
        try:
            choice = reply.json()["choices"][0]
            return str(choice["message"]["content"]), choice.get("finish_reason")
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise ModelError("bad_response", f"not a chat completion: {reply.text[:200]!r}") from exc

    async def _stream(self) -> tuple[str, str | None]:
        parts: list[str] = []
        finish: str | None = None
        try:
            async with self._http().stream("POST", "chat/completions", json=self._body()) as reply:
                if reply.status_code >= 400:
                    await reply.aread()
                    _check_status(reply)
                async for line in reply.aiter_lines():
                    if not line.startswith("data:"):
                        continue  # blank separators, comments, event names
                    payload = line[5:].strip()
                    if payload == "[DONE]":
                        break
                    delta, finish = _stream_chunk(payload, finish)
                    parts.append(delta)
        except httpx.TimeoutException as exc:
            raise ModelError("timeout", f"no reply within {self.config.timeout:g} s") from exc
        except httpx.HTTPError as exc:
            raise ModelError("unreachable", f"{type(exc).__name__}: {exc}") from exc
        return "".join(parts), finish

    async def shutdown(self) -> None:
        self.history.clear()
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()


def _check_status(reply: httpx.Response) -> None:
    if reply.status_code >= 400:
        raise ModelError(
            "http_status", f"HTTP {reply.status_code}: {reply.text[:200]}", status=reply.status_code
        )


def _stream_chunk(payload: str, finish: str | None) -> tuple[str, str | None]:
    try:
        choice = json.loads(payload)["choices"][0]
        delta = choice.get("delta", {}).get("content") or ""
        return str(delta), choice.get("finish_reason") or finish
    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
        raise ModelError("bad_response", f"not a chat-completion chunk: {payload[:200]!r}") from exc
