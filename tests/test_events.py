"""The event contract: encoding, decoding and the buffered writer."""

import math
import time

from tui_tune.event_writer import EventWriter
from tui_tune.events import as_float, contract_problems, decode, encode, make_event


def test_round_trip_and_nonfinite_numbers():
    event = make_event("step", step=1, loss=math.nan, grad_norm=math.inf)
    back = decode(encode(event))
    assert back["kind"] == "step" and back["v"] == 1
    assert math.isnan(as_float(back["loss"])) and as_float(back["grad_norm"]) == math.inf


def test_nonfinite_numbers_nested_in_a_field_are_strings_too():
    for top in (1.0, math.nan):  # a finite top level used to raise, a NaN one wrote bare NaN
        line = encode(make_event("log", level="info", message="m", loss=top,
                                 detail={"norms": [1.0, math.inf], "x": math.nan}))
        back = decode(line)
        assert "NaN" not in line and "Infinity" not in line
        assert back["detail"] == {"norms": [1.0, "inf"], "x": "nan"}


def test_decode_rejects_garbage_and_foreign_json():
    assert decode("not json") is None
    assert decode("[1, 2]") is None
    assert decode('{"no": "kind"}') is None
    assert decode(b'{"kind": "future_kind", "v": 1, "t": 0}')["kind"] == "future_kind"


def test_contract_problems():
    assert contract_problems(make_event("future_kind", anything=1)) == []
    assert "end: status 'weird'" in contract_problems(make_event("end", status="weird"))[0]
    assert contract_problems(make_event("checkpoint", step=1)) == [
        "checkpoint: missing path", "checkpoint: missing reason"]


def test_writer_flushes_without_close_and_on_end(tmp_path):
    path = tmp_path / "events.jsonl"
    writer = EventWriter(path, flush_every_s=0.05)
    writer.write("log", level="info", message="hello")
    deadline = time.time() + 5
    while time.time() < deadline and not path.read_text():
        time.sleep(0.02)
    assert decode(path.read_text().splitlines()[0])["message"] == "hello"
    writer.write("end", status="completed")
    assert decode(path.read_text().splitlines()[-1])["status"] == "completed"
    writer.close()
