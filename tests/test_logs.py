import json
import logging

from server.logs import JsonFormatter


def test_json_log_lines_carry_the_run_conversation_and_agent_ids() -> None:
    record = logging.LogRecord("parley", logging.ERROR, __file__, 1, "world of %s raised", ("c1",), None)
    record.run_id, record.conversation_id, record.agent_id = "r1", "c1", "g1"
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "world of c1 raised"
    assert (line["run_id"], line["conversation_id"], line["agent_id"]) == ("r1", "c1", "g1")
    assert line["level"] == "ERROR" and line["time"].endswith("Z")
