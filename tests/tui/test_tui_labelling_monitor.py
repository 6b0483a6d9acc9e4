"""The monitor of classification, regression and token classification runs: the eval metric by
its name, the confusion-matrix panel (classification), labelling samples with wrong ones marked,
from fixed event files (no training)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from tests.tui.conftest import (
    FIXED_T,
    classification_eval,
    classification_events,
    fixed_events,
    regression_events,
    token_events,
    wait_for,
)
from tui_tune.tui.app import TuneApp
from tui_tune.tui.confusion import Confusion
from tui_tune.tui.screens.monitor import MonitorScreen
from tui_tune.tui.widgets.confusion_panel import confusion_text


def append_line(path, line: str) -> None:
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(line + "\n")


def shown(screen, selector: str) -> str:
    return str(screen.query_one(selector).render())


async def open_monitor(pilot, app):
    await wait_for(pilot, lambda: isinstance(app.screen, MonitorScreen)
                   and not app.screen.history_loading and app.screen.series.samples)
    await pilot.pause(0.1)
    return app.screen


async def test_classification_monitor_shows_the_confusion_matrix_and_follows_evals(make_run):
    run = make_run("20260101-000000-demo-classify", preset="demo-classify",
                   events=classification_events())
    app = TuneApp(start=lambda: MonitorScreen(run, sample_gpus=False))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_monitor(pilot, app)
        assert screen.query_one("#chart-metric").title == "accuracy"
        panel, samples = screen.query_one("#confusion"), screen.query_one("#generations")
        assert panel.display and not samples.display  # in the samples' place
        text = shown(screen, "#confusion")
        lines = text.splitlines()
        assert lines[0].split() == ["step", "120", "accuracy", "91.3%"]  # 63 of 69 rows
        assert lines[1].split() == ["true\\pred", "negative", "neutral", "positive", "recall"]
        assert [line.split() for line in lines[2:]] == [  # counts[true][predicted], recall
            ["negative", "20", "0", "0", "100%"], ["neutral", "1", "21", "1", "91%"],
            ["positive", "2", "2", "22", "85%"]]

        later = classification_eval(160, ["negative", "neutral", "positive"])
        later["confusion"] = [[7, 0, 0], [0, 8, 1], [0, 0, 9]]
        append_line(run / "events.jsonl", json.dumps(later))  # a later eval
        await wait_for(pilot, lambda: "step 160" in shown(screen, "#confusion"))
        lines = shown(screen, "#confusion").splitlines()
        assert lines[3].split() == ["neutral", "0", "8", "1", "89%"]

        await pilot.press("v")  # the samples, wrong predictions marked
        assert samples.display and not panel.display
        text = shown(screen, "#generations-text")
        assert "1/2 wrong" in text.splitlines()[0]
        assert "model  negative 0.80  ✓ right" in text
        assert "model  neutral 0.80  ✗ wrong" in text and "truth  positive 0.10" in text
        await pilot.press("v")
        assert panel.display and not samples.display
        await pilot.press("left_square_bracket")  # browsing samples shows them first
        assert samples.display and "(latest)" in shown(screen, "#generations-text")


async def test_the_matrix_and_its_key_appear_with_the_first_evaluation(make_run):
    events = classification_events(steps=30)[:-1]  # 30 steps, no eval yet, still running
    run = make_run("20260101-000000-demo-classify", preset="demo-classify", events=events)
    app = TuneApp(start=lambda: MonitorScreen(run, sample_gpus=False))
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.screen.series.step_values("step").size == 30)
        screen = app.screen
        assert not screen.query_one("#confusion").display
        assert screen.check_action("toggle_matrix", ()) is False
        append_line(run / "events.jsonl",
                    json.dumps(classification_eval(40, ["negative", "neutral", "positive"])))
        await wait_for(pilot, lambda: screen.query_one("#confusion").display)
        assert screen.check_action("toggle_matrix", ()) is True
        assert "step 40" in shown(screen, "#confusion")
        assert not screen.query_one("#generations").display


@pytest.mark.parametrize(("events", "title", "sample_lines"), [
    (regression_events, "MSE", ["model  2.75", "truth  2.5  error +0.25",
                                "truth  4  error -1"]),
    (token_events, "F1", ["John/B-PER lives/O in/O New/B-LOC York/I-LOC",
                          "✓ all 5 tags right"]),
    (fixed_events, "perplexity", ["model  4", "ref    4"]),
])
async def test_each_type_charts_its_metric_by_name_without_a_matrix(make_run, events, title,
                                                                     sample_lines):
    run = make_run("20260101-000000-run", events=events())
    app = TuneApp(start=lambda: MonitorScreen(run, sample_gpus=False))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_monitor(pilot, app)
        assert screen.query_one("#chart-metric").title == title
        assert not screen.query_one("#confusion").display
        assert screen.query_one("#generations").display
        assert screen.check_action("toggle_matrix", ()) is False  # no `m` in the footer
        text = shown(screen, "#generations-text").replace("\n", " ")
        text = " ".join(text.split())
        assert all(" ".join(line.split()) in text for line in sample_lines), text


async def test_a_wrong_tag_is_marked_with_the_true_one(make_run):
    run = make_run("20260101-000000-demo-tokens", preset="demo-tokens", events=token_events())
    app = TuneApp(start=lambda: MonitorScreen(run, sample_gpus=False))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_monitor(pilot, app)
        await pilot.press("left_square_bracket")  # step 80: York tagged O, truly I-LOC
        text = shown(screen, "#generations-text")
        assert "step 80" in text and "1/1 wrong" in text
        assert "New/B-LOC York/O(I-LOC)" in text and "✗ 1 of 5 tags wrong" in text


def test_a_confusion_matrix_is_read_only_when_well_formed():
    assert Confusion.read(3, [[1, 2], [3, 4]], ["a", "b"]).labels == ("a", "b")
    assert Confusion.read(3, [[1, 2], [3, 4]], ["a"]).labels == ("0", "1")  # ids instead
    assert Confusion.read(3, [[1, 2], [3, 4]], None).labels == ("0", "1")
    for bad in ([[1, 2], [3]], [[1, -2], [3, 4]], [[1, 2.5], [3, 4]], [[True, 2], [3, 4]],
                [[1, "x"], [3, 4]], [[1, "nan"], [3, 4]], [], "[[1]]", [[1, 2]], None):
        assert Confusion.read(3, bad, ["a", "b"]) is None, bad
    matrix = Confusion.read(7, [[8, 2, 0], [1, 0, 0], [0, 0, 0]], ["a", "b", "c"])
    assert matrix.step == 7 and matrix.accuracy == pytest.approx(8 / 11)
    recall = matrix.recall()
    assert recall[:2].tolist() == [0.8, 0.0] and math.isnan(recall[2])  # c has no rows


def test_classes_that_do_not_fit_are_summed_and_said():
    names = tuple(f"class-{i:02d}" for i in range(20))
    counts = np.arange(400).reshape(20, 20)
    matrix = Confusion(120, names, counts)
    folded = matrix.folded(4)
    assert folded.labels == ("class-17", "class-18", "class-19", "+17 more")  # most rows
    assert folded.counts.sum(axis=1).tolist() == [  # every row still adds up
        *counts.sum(axis=1)[17:].tolist(), counts[:17].sum()]
    assert folded.counts.sum() == counts.sum() and math.isnan(folded.recall()[-1])
    for width, height in ((32, 7), (56, 11), (26, 5)):
        lines = confusion_text(matrix, width, height).wrap(_console(), width)
        assert len(lines) <= height and all(line.cell_len <= width for line in lines)
        text = "\n".join(line.plain for line in lines)
        assert lines[-1].plain.startswith("+1"), text  # "+17 more": the rest, summed
        assert "class-19" in text or width < 30, text
    assert "of 20 classes" in confusion_text(matrix, 56, 11).plain
    assert "too small" in confusion_text(matrix, 12, 3).plain


def _console():
    from rich.console import Console
    return Console(width=200)


def test_a_hand_written_sample_of_any_shape_does_not_break_the_panel(tmp_path):
    """Structured sample fields holding the wrong types are left out, not shown wrongly."""
    from tui_tune.tui.run_data import RunSeries, decode_chunk
    from tui_tune.tui.widgets.panels import sample_text

    odd = [{"v": 1, "t": FIXED_T, "kind": "sample", "step": 1, "prompt": "p",
            "generation": "g", "reference": "r", "predicted": {"a": 1}, "truth": [[1]],
            "words": "not a list", "probabilities": ["x"]},
           {"v": 1, "t": FIXED_T, "kind": "sample", "step": 1, "prompt": "p",
            "generation": "g", "reference": "r", "predicted": "a", "truth": "b",
            "probabilities": {"a": "0.5", "b": None}}]
    series = RunSeries()
    series.add(decode_chunk("".join(json.dumps(e) + "\n" for e in odd).encode()))
    first, second = series.samples
    assert first.words is None and first.probabilities is None
    assert "✗ wrong" in sample_text(second).plain and "a 0.50" in sample_text(second).plain
    assert sample_text(first).plain  # shown somehow, no error


def test_multilabel_and_multi_target_samples():
    from tui_tune.tui.run_data import Sample
    from tui_tune.tui.widgets.panels import sample_right, sample_text

    both = Sample(40, "spicy and cheap", "spicy (0.91), cheap (0.62)", "cheap, spicy",
                  predicted=["spicy", "cheap"], truth=["cheap", "spicy"],
                  probabilities={"spicy": 0.91, "cheap": 0.62, "slow": 0.1})
    assert sample_right(both) is True  # a set of labels: the order does not matter
    assert "model  spicy 0.91, cheap 0.62  ✓ right" in sample_text(both).plain
    missed = Sample(40, "slow", "(none)", "slow", predicted=[], truth=["slow"],
                    probabilities={"slow": 0.4})
    assert "model  (none)  ✗ wrong" in sample_text(missed).plain
    assert "truth  slow 0.40" in sample_text(missed).plain
    values = Sample(40, "warm", "lo = 1.5, hi = 3", "lo = 1, hi = 3.5",
                    predicted=[1.5, 3.0], truth=[1.0, 3.5])
    assert sample_right(values) is None
    assert "error +0.5, -0.5" in sample_text(values).plain
