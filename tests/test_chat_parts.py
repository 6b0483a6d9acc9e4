"""The chat screen's light parts: saved conversations train as chained rows, the stream
parser, the settings row, and the model-server child's start, URL and stop."""

from __future__ import annotations

import json
import sys
import textwrap

import pytest

from tui_tune.config.experiment import Experiment
from tui_tune.runs.conversation import Turn, conversation_rows, save_conversation
from tui_tune.runs.model_server import ModelServer, ModelServerError
from tui_tune.train.formatting import build_conversations
from tui_tune.tui.chat_stream import ChatStreamError, parse_event
from tui_tune.tui.screens.chat import parse_settings


def test_a_saved_conversation_trains_as_one_chained_conversation(tmp_path):
    exp = Experiment()
    turns = [Turn("2+2?", "4"), Turn("and times 3?", "12")]
    path = save_conversation(tmp_path, turns, exp.dataset, system="Be brief.", now=0)
    assert path.parent == tmp_path / "chats" and path.suffix == ".jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["parent_id"] for r in rows] == [None, rows[0]["id"]]
    # the preset that learns from them names the parent column; the chain comes back whole
    dataset = exp.dataset.model_copy(update={"parent_id_column": "parent_id",
                                             "system_column": "system"})
    last = build_conversations(rows[1:], dataset, lookup=rows)[0]
    assert last.system == "Be brief."
    assert [(t.prompt, t.answer) for t in last.turns] == [("2+2?", "4"), ("and times 3?", "12")]
    again = save_conversation(tmp_path, turns, exp.dataset, now=0)
    assert again != path and not list(tmp_path.glob("chats/*.partial"))


def test_rows_use_the_runs_own_column_names():
    exp = Experiment()
    dataset = exp.dataset.model_copy(update={"prompt_columns": ["question"],
                                             "answer_column": "reply", "id_column": "uid",
                                             "parent_id_column": "prev"})
    rows = conversation_rows([Turn("q1", "a1"), Turn("q2", "a2")], dataset, chat_id="c")
    assert rows == [{"uid": "c-1", "prev": None, "question": "q1", "reply": "a1"},
                    {"uid": "c-2", "prev": "c-1", "question": "q2", "reply": "a2"}]


def test_nothing_to_save_is_said_not_written(tmp_path):
    with pytest.raises(ValueError, match="no answered turn"):
        save_conversation(tmp_path, [], Experiment().dataset)
    assert not (tmp_path / "chats").exists()


def test_stream_events_give_their_text_and_errors_say_what_the_server_said():
    chunk = {"choices": [{"delta": {"content": "Hel"}, "index": 0}]}
    assert parse_event("data: " + json.dumps(chunk)) == "Hel"
    assert parse_event("data: [DONE]") is None and parse_event(": keep-alive") is None
    assert parse_event('data: {"choices": [{"delta": {"role": "assistant"}}]}') == ""
    with pytest.raises(ChatStreamError, match="model exploded"):
        parse_event('data: {"error": {"message": "model exploded"}}')


def test_generation_settings_read_from_the_inputs_or_name_the_bad_one():
    values = {"temperature": "0", "top_p": "1", "top_k": "5", "max_tokens": "12",
              "repetition_penalty": "1.1"}
    settings = parse_settings(values, "</s>|\\n\\n")
    assert settings.request() == {"temperature": 0.0, "top_p": 1.0, "top_k": 5,
                                  "max_tokens": 12, "repetition_penalty": 1.1,
                                  "stop": ["</s>", "\n\n"]}
    assert "stop" not in parse_settings(values, "").request()
    with pytest.raises(ValueError, match="top-k"):
        parse_settings({**values, "top_k": "many"}, "")
    with pytest.raises(ValueError, match="max new"):
        parse_settings({**values, "max_tokens": "0"}, "")


SERVER = textwrap.dedent("""
    import http.server, sys
    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    print("loading the model...", flush=True)
    print(f"serving on http://127.0.0.1:{server.server_port}/v1", flush=True)
    server.serve_forever()
""")


def test_the_model_server_child_is_found_by_its_url_and_stopped(tmp_path):
    """Any process that prints its URL the way serve-model does (here: Python's http.server)."""
    server = ModelServer(tmp_path, argv=[sys.executable, "-c", SERVER])
    url = server.start(timeout_s=60)
    assert url.startswith("http://127.0.0.1:") and not url.endswith("/v1")
    assert server.running
    server.stop()
    assert not server.running
    server.stop()  # twice is fine


def test_a_server_that_dies_says_why(tmp_path):
    failing = [sys.executable, "-c", "import sys; print('no final/ weights'); sys.exit(2)"]
    with pytest.raises(ModelServerError, match="stopped:\nno final/ weights"):
        ModelServer(tmp_path, argv=failing).start(timeout_s=60)
