import json
import logging
import sys

from server.logs import JsonFormatter


def test_json_log_lines_carry_the_run_conversation_and_agent_ids() -> None:
    record = logging.LogRecord("parley", logging.ERROR, __file__, 1, "world of %s raised", ("c1",), None)
    record.run_id, record.conversation_id, record.agent_id = "r1", "c1", "g1"
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "world of c1 raised"
    assert (line["run_id"], line["conversation_id"], line["agent_id"]) == ("r1", "c1", "g1")
    assert line["level"] == "ERROR" and line["time"].endswith("Z")


def test_json_log_lines_name_the_instance_and_carry_the_exception() -> None:
    try:
        raise ValueError("bad ünïcode")
    except ValueError:
        record = logging.LogRecord("parley.runner", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    line = json.loads(JsonFormatter("i-1").format(record))
    assert (line["instance"], line["logger"], line["message"]) == ("i-1", "parley.runner", "failed")
    assert "ValueError: bad ünïcode" in line["exception"]
    assert "instance" not in json.loads(JsonFormatter().format(record))
