import pytest

from server.protocol import FrameError, Hello, Say, parse_client_frame


def test_a_message_frame_parses_with_its_client_id() -> None:
    frame = parse_client_frame('{"type":"message","client_id":"c-1","text":"hi"}', max_bytes=1000)
    assert isinstance(frame, Say)
    assert frame.client_id == "c-1"


def test_hello_defaults_to_resuming_from_zero() -> None:
    frame = parse_client_frame('{"type":"hello","token":"t"}', max_bytes=1000)
    assert isinstance(frame, Hello)
    assert frame.last_seq == 0


@pytest.mark.parametrize(("raw", "code"), [
    ("not json", "bad_json"),
    ('{"type":"dance"}', "unknown_type"),
    ('{"text":"no type"}', "unknown_type"),
    ('{"type":"message","text":"no client id"}', "bad_frame"),
    ('{"type":"message","client_id":"bad id with spaces","text":"x"}', "bad_frame"),
    ('{"type":"hello","token":"t","last_seq":-1}', "bad_frame"),
    ('{"type":"hello","token":"t","last_seq":1e400}', "bad_frame"),
    ('{"type":"message","client_id":"c","text":"x","extra":1}', "bad_frame"),
    (b"\x00\x01", "binary_frame"),
    ("[" * 5000 + "]" * 5000, "bad_json"),
])
def test_bad_frames_raise_a_coded_error(raw: str | bytes, code: str) -> None:
    with pytest.raises(FrameError) as info:
        parse_client_frame(raw, max_bytes=100_000)
    assert info.value.code == code
    assert info.value.message


def test_an_oversize_frame_is_refused_before_parsing() -> None:
    with pytest.raises(FrameError) as info:
        parse_client_frame('{"type":"ping"}' + " " * 100, max_bytes=50)
    assert info.value.code == "frame_too_large"


def test_the_hot_path_frame_builders_match_the_models() -> None:
    from server.protocol import ChatEvent, TurnFrame, chat_event, turn_frame

    fields = {"message_id": "m1", "sender": "A", "text": "hi", "kind": "chat", "data": {"x": 1}, "mine": True,
              "client_id": "c1"}
    assert chat_event(**fields) == ChatEvent(**fields).model_dump()  # type: ignore[arg-type]
    turn = {"turn_id": "t1", "prompt": "Say", "widget": {"kind": "rating", "min": 0, "max": 10}, "timeout_s": 30.0}
    assert turn_frame(**turn) == TurnFrame(**turn).model_dump()  # type: ignore[arg-type]


def test_task_info_names_every_close_code_with_what_the_page_does() -> None:
    from server.close_codes import CloseCode
    from server.protocol import TaskInfo

    info = TaskInfo(run_id="r", title="t", description="d", reward=0.1, roles=["A"], states={}, limits={})
    codes = info.model_dump()["close_codes"]
    assert {name: entry["code"] for name, entry in codes.items()} == {c.name.lower(): int(c) for c in CloseCode}
    assert codes["replaced"] == {"code": 4409, "final": True, "text": codes["replaced"]["text"]}
    assert "another tab" in codes["replaced"]["text"]
    assert codes["moved"]["final"] is False and codes["silent"]["final"] is False
