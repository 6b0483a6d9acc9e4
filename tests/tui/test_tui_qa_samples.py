"""The monitor's samples panel for extractive QA: the answer is marked in its context (the
predicted span green when right, red when wrong; the true span underlined), and spans that do
not fit the context are dropped rather than drawn wrongly."""

from __future__ import annotations

import json

from tui_tune.tui.run_data import RunSeries, decode_chunk
from tui_tune.tui.widgets.panels import sample_right, sample_text

CONTEXT = "Anna owns a red car. Bruno has a blue bike. " + "Zoe has a hat. " * 20


def qa_sample(predicted: str, span, truth: str, truth_span) -> dict:
    return {"v": 1, "t": 1.0, "kind": "sample", "step": 5, "prompt": "Who owns the red car?",
            "generation": predicted or "(no answer)", "reference": truth or "(no answer)",
            "predicted": predicted, "truth": truth, "context": CONTEXT, "span": span,
            "truth_span": truth_span}


def samples(*events: dict):
    series = RunSeries()
    series.add(decode_chunk("".join(json.dumps(e) + "\n" for e in events).encode()))
    return series.samples


def styles_at(text, at: int) -> set[str]:
    return {str(span.style) for span in text.spans if span.start <= at < span.end}


def test_a_right_answer_is_marked_green_in_its_context():
    (right,) = samples(qa_sample("Anna", [0, 4], "Anna", [0, 4]))
    assert right.context == CONTEXT and right.span == right.truth_span == (0, 4)
    text = sample_text(right)
    assert sample_right(right) is True
    assert "question Who owns the red car?" in text.plain and "✓ right" in text.plain
    at = text.plain.index("context  ") + len("context  ")
    assert text.plain[at:at + 4] == "Anna" and "bold green" in styles_at(text, at)
    assert text.plain.rstrip().endswith("✓ right")  # a long context is cut around the spans
    assert "…" in text.plain


def test_a_wrong_answer_is_red_and_the_true_one_underlined():
    (wrong,) = samples(qa_sample("Bruno", [21, 26], "Anna", [0, 4]))
    text = sample_text(wrong)
    at = text.plain.index("context  ") + len("context  ")
    assert "underline cyan" in styles_at(text, at)
    assert "bold red" in styles_at(text, at + 21)
    assert "✗ wrong" in text.plain and "truth    Anna" in text.plain
    (missed,) = samples(qa_sample("", None, "Anna", [0, 4]))
    assert "model    (no answer)  ✗ wrong" in sample_text(missed).plain
    (none,) = samples(qa_sample("", None, "", None))
    assert "(no answer)  ✓ right" in sample_text(none).plain


def test_spans_outside_the_context_are_dropped():
    odd = samples(qa_sample("x", [5, len(CONTEXT) + 1], "Anna", "0-4"),
                  {**qa_sample("x", [1, 2], "y", [0, 1]), "context": 7})
    assert odd[0].span is None and odd[0].truth_span is None
    assert odd[1].context is None and odd[1].span is None
    assert all(sample_text(s).plain for s in odd)
