"""The echo and retrieval bots, the shared retrieval index, and choosing a bot by name."""

from __future__ import annotations

from pathlib import Path

import pytest

from worlds.base import ContextFileError, Message
from worlds.bots import EchoBot, RetrievalBot, make_bot, shared_index
from worlds.bots.protocol import Bot, MessageBot
from worlds.bots.retrieval import CORPUS, FALLBACKS, BM25Index, Pair


def said(text: str, sender: str = "Worker") -> Message:
    return Message(text=text, sender=sender)


def test_echo_repeats_the_last_thing_someone_else_said() -> None:
    bot = EchoBot("Bot")
    assert bot.act().text == "Hello!"
    bot.observe(said("first"))
    bot.observe(Message(kind="system", text="a notice", sender="Task"))
    assert bot.act().text == "You said: first"
    assert isinstance(bot, Bot) and bot.accepts_messages


def test_retrieval_answers_with_the_response_of_the_best_matching_context() -> None:
    bot = RetrievalBot("Bot")
    bot.observe(said("I have a dog, his name is Biscuit"))
    reply = bot.act()
    assert reply.text == "Biscuit is a great name! What kind of dog is he?"
    assert reply.data["retrieval"]["score"] > 0


def test_retrieval_never_repeats_itself_and_falls_back_when_nothing_matches() -> None:
    bot = RetrievalBot("Bot")
    replies = []
    for _ in range(3):
        bot.observe(said("I have a dog named Biscuit"))
        replies.append(bot.act().text)
    assert len(set(replies)) == 3
    bot.observe(said("zzzz qqqq"))
    assert bot.act().text == FALLBACKS[0]


def test_bm25_prefers_a_rare_matching_term_over_a_common_one() -> None:
    index = BM25Index([Pair("the cat sat", "1"), Pair("the cat ran", "2"), Pair("a zebra ran", "3")])
    assert index.search("cat zebra")[0][1].response == "3"
    assert index.search("nothing here") == []


def test_every_conversation_shares_one_index_per_corpus() -> None:
    factory = make_bot("retrieval")
    first, second = factory("Bot"), factory("Bot")
    assert isinstance(first, RetrievalBot) and isinstance(second, RetrievalBot)
    assert first.index is second.index is shared_index(str(CORPUS))
    assert first.history is not second.history


def test_a_malformed_corpus_fails_when_the_task_is_built(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text('{"context": "hi", "response": "hello"}\n{"context": "no response"}\n', encoding="utf-8")
    with pytest.raises(ContextFileError, match=r"corpus.jsonl:2:"):
        make_bot("retrieval", corpus=str(corpus))


def test_unknown_bots_and_options_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match="unknown bot 'gpt'"):
        make_bot("gpt")
    with pytest.raises(ValueError, match="echo bot takes no options"):
        make_bot("echo", colour="red")
    echo = make_bot("echo", prefix="> ")("Bot")
    assert isinstance(echo, EchoBot)
    echo.observe(said("hi"))
    assert echo.act().text == "> hi"


async def test_message_bots_forget_the_conversation_on_shutdown() -> None:
    bot = MessageBot("Bot")
    bot.observe(said("hi"))
    await bot.shutdown()
    assert bot.history == []
