"""The LLM bot against a local fake OpenAI-compatible endpoint: replies, streaming, and every failure."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable

import pytest

from tests.support.server import free_port
from tests.worlds.fake_llm import FakeLLM
from worlds.base import Message
from worlds.bots import LLMBot, LLMConfig, is_error, make_bot

MakeBot = Callable[..., LLMBot]


@pytest.fixture
async def bot_for(llm: FakeLLM) -> AsyncIterator[MakeBot]:
    bots: list[LLMBot] = []

    def make(model: str = "ok", **options: object) -> LLMBot:
        config = LLMConfig(base_url=llm.base_url, model=model, **options)  # type: ignore[arg-type]
        bot = LLMBot("Bot", config)
        bots.append(bot)
        return bot

    yield make
    for bot in bots:
        await bot.shutdown()


async def test_a_normal_reply_becomes_the_bots_message_and_joins_its_history(llm: FakeLLM, bot_for: MakeBot) -> None:
    bot = bot_for(system_prompt="Be brief.", temperature=0.2)
    bot.observe(Message(text="hello there", sender="Worker"))
    reply = await bot.act()
    assert reply.text == "Model heard: hello there"
    assert reply.kind == "chat" and not is_error(reply)
    assert reply.data["llm"] == {"model": "ok", "streamed": False, "finish_reason": "stop"}

    bot.observe(Message(text="and again", sender="Worker"))
    await bot.act()
    sent = llm.requests[-1]
    assert sent["temperature"] == 0.2 and sent["stream"] is False
    assert sent["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hello there"},
        {"role": "assistant", "content": "Model heard: hello there"},
        {"role": "user", "content": "and again"},
    ]


async def test_a_streamed_reply_is_assembled_from_its_server_sent_events(llm: FakeLLM, bot_for: MakeBot) -> None:
    bot = bot_for(stream=True)
    bot.observe(Message(text="tell me a story", sender="Worker"))
    reply = await bot.act()
    assert llm.requests[-1]["stream"] is True
    assert reply.text == "Model heard: tell me a story"
    assert reply.data["llm"]["streamed"] is True and reply.data["llm"]["finish_reason"] == "stop"


async def test_a_model_that_stalls_gives_a_timeout_notice_within_the_bound(bot_for: MakeBot) -> None:
    bot = bot_for("stall", timeout=0.4)
    bot.observe(Message(text="hi", sender="Worker"))
    started = time.monotonic()
    reply = await bot.act()
    assert time.monotonic() - started < 3.0
    assert reply.kind == "system" and "took too long" in reply.text
    assert reply.data["error"]["type"] == "timeout" and reply.data["error"]["model"] == "stall"
    assert [m.text for m in bot.history] == ["hi"]  # the notice is not the model's turn


async def test_a_stalling_stream_also_times_out(bot_for: MakeBot) -> None:
    bot = bot_for("stall", timeout=0.4, stream=True)
    bot.observe(Message(text="hi", sender="Worker"))
    reply = await bot.act()
    assert reply.data["error"]["type"] == "timeout"


@pytest.mark.parametrize("stream", [False, True])
async def test_a_500_from_the_model_server_gives_a_notice_and_records_the_status(
    bot_for: MakeBot, stream: bool
) -> None:
    bot = bot_for("fail", stream=stream)
    bot.observe(Message(text="hi", sender="Worker"))
    reply = await bot.act()
    assert reply.kind == "system" and "HTTP 500" in reply.text
    assert reply.data["error"]["type"] == "http_status" and reply.data["error"]["status"] == 500
    assert "the model crashed" in reply.data["error"]["message"]


async def test_an_answer_that_is_not_a_chat_completion_gives_a_notice(bot_for: MakeBot) -> None:
    bot = bot_for("garbage")
    bot.observe(Message(text="hi", sender="Worker"))
    reply = await bot.act()
    assert reply.data["error"]["type"] == "bad_response"


async def test_an_unreachable_model_server_gives_a_notice() -> None:
    bot = LLMBot("Bot", LLMConfig(base_url=f"http://127.0.0.1:{free_port()}/v1", model="m", timeout=2.0))
    bot.observe(Message(text="hi", sender="Worker"))
    reply = await bot.act()
    await bot.shutdown()
    assert reply.data["error"]["type"] == "unreachable"
    assert "could not be reached" in reply.text


async def test_several_speakers_are_named_and_context_is_marked_for_the_model() -> None:
    bot = LLMBot("Bot 1", LLMConfig(base_url="http://unused/v1", model="m", system_prompt=""))
    bot.observe(Message(kind="context", text="Plan a trip", sender="Task"))
    bot.observe(Message(text="Paris?", sender="Human 1"))
    bot.observe(Message(text="Rome!", sender="Human 2"))
    bot.observe(Message(kind="system", text="a notice", sender="Task"))
    assert bot.chat_messages() == [
        {"role": "user", "content": "Context: Plan a trip"},
        {"role": "user", "content": "Human 1: Paris?"},
        {"role": "user", "content": "Human 2: Rome!"},
    ]


def test_llm_bot_options_are_checked_when_the_task_is_built() -> None:
    with pytest.raises(ValueError, match="llm bot options"):
        make_bot("llm", base_url="http://x/v1", model="m", temprature=0.3)
    with pytest.raises(ValueError, match="llm bot options"):
        make_bot("llm", model="m")


def test_an_api_key_is_sent_as_a_bearer_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PARLEY_TEST_LLM_KEY", "sk-test")
    assert LLMConfig(base_url="u", model="m", api_key_env="PARLEY_TEST_LLM_KEY").headers() == {
        "Authorization": "Bearer sk-test"
    }
    assert LLMConfig(base_url="u", model="m").headers() == {}


def test_an_llm_timeout_longer_than_the_worlds_bot_turn_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="must be shorter than the bot turn timeout"):
        make_bot("llm", act_timeout=30.0, base_url="http://x/v1", model="m", timeout=60.0)
    make_bot("llm", act_timeout=30.0, base_url="http://x/v1", model="m", timeout=20.0)
