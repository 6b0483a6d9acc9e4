"""grpo samples in the monitor: the prompt, the greedy answer, the reference, then a few
sampled completions with their rewards; a hand-written completions field of another shape
is left out, not shown wrongly."""

from __future__ import annotations

import json

from tui_tune.tui.run_data import RunSeries, decode_chunk
from tui_tune.tui.widgets.panels import sample_text


def samples(*completions) -> list:
    lines = [{"v": 1, "t": 1.0, "kind": "sample", "step": 5, "prompt": "What is 2 + 3?",
              "generation": "5", "reference": "5", "completions": c} for c in completions]
    series = RunSeries()
    series.add(decode_chunk("".join(json.dumps(e) + "\n" for e in lines).encode()))
    return series.samples


def test_completions_show_with_their_rewards():
    shown, = samples([{"text": " 5", "reward": 1.0}, {"text": "6 ", "reward": 0.0},
                      {"text": "7", "reward": "high"}])
    assert shown.completions == [(" 5", 1.0), ("6 ", 0.0), ("7", None)]
    text = sample_text(shown).plain
    assert "sample  1.00 5\n" in text and "sample  0.00 6\n" in text
    assert "sample   ?  7\n" in text
    assert text.index("ref") < text.index("sample")


def test_completions_of_another_shape_are_left_out():
    odd, empty, texts = samples("not a list", [], ["a", "b"])
    assert odd.completions is None and empty.completions is None
    assert texts.completions is None
    assert "sample" not in sample_text(odd).plain
