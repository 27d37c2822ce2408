"""Bots for Parley worlds: the protocol (`protocol.py`), `echo`, a BM25 `retrieval` baseline and an `llm`
bot for OpenAI-compatible endpoints. `make_bot(name, **options)` gives a task a factory by name."""

from __future__ import annotations

from typing import Any

from worlds.base import BotFactory
from worlds.bots.echo import EchoBot
from worlds.bots.llm import LLMBot, LLMConfig
from worlds.bots.protocol import Bot, MessageBot, error_notice, is_error
from worlds.bots.retrieval import CORPUS, RetrievalBot, shared_index

BOT_NAMES = ("echo", "retrieval", "llm")


def make_bot(name: str, *, act_timeout: float | None = None, **options: Any) -> BotFactory:
    """A factory (called with the role, once per conversation) for the bot named `name`.

    echo: `prefix`. retrieval: `corpus` (a JSONL of {"context", "response"}). llm: the `LLMConfig` fields,
    `base_url` and `model` required. Bad names or options fail here, at task start, not mid-conversation.
    `act_timeout` is the world's bound on a bot turn: an LLM's own timeout must be shorter, so a slow model
    ends in a notice the worker reads rather than a conversation the runner fails.
    """
    if name == "echo":
        prefix = str(options.pop("prefix", "You said: "))
        _no_more(name, options)
        return lambda role: EchoBot(role, prefix=prefix)
    if name == "retrieval":
        corpus = str(options.pop("corpus", CORPUS))
        _no_more(name, options)
        shared_index(corpus)  # build (and validate) the shared index now
        return lambda role: RetrievalBot(role, corpus)
    if name == "llm":
        try:
            config = LLMConfig(**options)
        except TypeError as exc:
            raise ValueError(f"llm bot options: {exc}") from exc
        if act_timeout is not None and config.timeout >= act_timeout:
            raise ValueError(
                f"llm timeout ({config.timeout:g} s) must be shorter than the bot turn timeout ({act_timeout:g} s)"
            )
        return lambda role: LLMBot(role, config)
    raise ValueError(f"unknown bot {name!r}; choose one of {', '.join(BOT_NAMES)}")


def _no_more(name: str, options: dict[str, Any]) -> None:
    if options:
        raise ValueError(f"{name} bot takes no options {sorted(options)}")


__all__ = [
    "BOT_NAMES", "Bot", "EchoBot", "LLMBot", "LLMConfig", "MessageBot", "RetrievalBot", "error_notice",
    "is_error", "make_bot", "shared_index",
]
