"""Every screen at 80x24 (and the monitor at 120x40) shows whole words: footers, headers,
chart legends, editor labels and run ids are shortened on purpose, never cut in the middle
(issue 21, item 10)."""

from __future__ import annotations

import pytest
from textual.widgets._footer import FooterKey

from tests.tui.conftest import FIXED_T, fixed_events, wait_for
from tui_tune.tui.app import TuneApp
from tui_tune.tui.editor_state import EditorState
from tui_tune.tui.runs_table import shown_id
from tui_tune.tui.screens.compare import CompareScreen
from tui_tune.tui.screens.editor import EditorScreen
from tui_tune.tui.screens.monitor import MonitorScreen
from tui_tune.tui.screens.presets import PresetsScreen
from tui_tune.tui.screens.runs import RunsScreen
from tui_tune.tui.widgets.settings_form import FieldLabel, fitted_label


def screen_lines(app) -> list[str]:
    return [strip.text for strip in app.screen._compositor.render_strips()]


def assert_footer_keys_whole(app) -> None:
    """Each key the footer shows lies inside the screen, left of the palette key, and its
    description is on the last line whole; the help key is always among them."""
    width = app.size.width
    keys = [k for k in app.screen.query(FooterKey) if k.display]
    palette = [k for k in keys if k.has_class("-command-palette")]
    right = palette[0].region.x if palette else width
    last = screen_lines(app)[-1]
    for key in keys:
        if key in palette:
            continue
        assert key.region.right <= right, f"{key.description!r} is cut: {last!r}"
        assert f"{key.key_display} {key.description}" in last
    assert any(k.action == "help" for k in keys), last


@pytest.fixture
def runs(make_run):
    a = make_run("20260101-000000-demo-tiny")
    b = make_run("20260101-000100-lora", preset="lora")
    c = make_run("20260101-000300-demo-classify", preset="demo-classify")
    return a, b, c


async def test_footers_show_whole_keys_at_80_columns_and_more_when_wider(runs):
    app = TuneApp()
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen)
                       and len(app.screen.summaries) == 3)
        await pilot.pause(0.3)
        assert_footer_keys_whole(app)
        narrow = sum(1 for k in app.screen.query(FooterKey) if k.display)
        await pilot.resize_terminal(160, 24)
        await pilot.pause(0.5)
        assert_footer_keys_whole(app)
        assert sum(1 for k in app.screen.query(FooterKey) if k.display) > narrow
    for start in (lambda: MonitorScreen(runs[0], sample_gpus=False),
                  lambda: CompareScreen(list(runs[:2])), PresetsScreen,
                  lambda: EditorScreen(EditorState.from_preset("demo-tiny"))):
        app = TuneApp(start=start)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause(0.8)
            assert_footer_keys_whole(app)


async def test_editor_labels_are_never_wrapped_mid_word_at_80_columns(workdir):
    """`checkpoint_every_steps [steps]` read `checkpoint_every_s` / `teps [steps]` on two
    lines: every label is one line, the whole name (with its unit where that fits)."""
    app = TuneApp(start=lambda: EditorScreen(EditorState.from_preset("demo-tiny")))
    seen = set()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.5)
        for _ in range(12):
            labels = [label for label in app.screen.query(FieldLabel)
                      if label.display and label.region.height]
            for label in labels:
                assert label.size.height == 1, label.setting
                shown = str(label.render())
                assert shown in (label.setting, f"{label.setting} [{label.unit}]"), shown
                seen.add(label.setting)
            text = "\n".join(screen_lines(app))
            for label in labels:
                if label.region.y < app.size.height - 1:  # on screen, not scrolled away
                    assert str(label.render()) in text
            await pilot.press("f8")
            await pilot.pause(0.2)
    assert {"checkpoint_every_steps", "random_parent_probability"} <= seen


def test_a_label_too_narrow_for_its_name_says_it_is_cut():
    assert fitted_label("checkpoint_every_steps", "steps", 40) == \
        "checkpoint_every_steps [steps]"
    assert fitted_label("checkpoint_every_steps", "steps", 24) == "checkpoint_every_steps"
    assert fitted_label("checkpoint_every_steps", "steps", 12) == "checkpoint_…"


def run_with_four_samples() -> list[dict]:
    events = fixed_events(status="stopped")
    for event in events:
        if event["kind"] == "step":  # the memory chart's three lines
            event.update(mem_allocated_gib=0.5, mem_reserved_gib=0.75, mem_peak_gib=0.625)
    step = max(e.get("step", 0) for e in events if e["kind"] == "eval")
    events[-1:-1] = [{"v": 1, "t": FIXED_T + step, "kind": "sample", "step": step,
                      "prompt": f"extra question {k}?", "generation": "x", "reference": "x"}
                     for k in (3, 4)]
    return events


async def test_monitor_header_and_chart_legends_fit_80_columns(make_run):
    run = make_run("20260101-000000-demo-tiny", events=run_with_four_samples())
    app = TuneApp(start=lambda: MonitorScreen(run, sample_gpus=False))
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: not app.screen.history_loading
                       and app.screen.series.step_values("step").size == 120)
        await pilot.pause(0.8)
        lines = screen_lines(app)
        header = lines[0].rstrip()
        assert len(header) <= 79 and header.endswith("tok/s"), header  # elapsed left out
        legends = {chart.id: chart.render_strips(chart.size.width, 3)[0].text.rstrip()
                   for chart in app.screen.query("BrailleChart")}
        assert "0.625" in legends["chart-mem"]  # the peak's value was cut to "0.6"
        loss = legends["chart-loss"]
        assert "0.5172" in loss and loss.split()[-1][0].isdigit(), loss  # val's value whole
        for legend in legends.values():
            assert legend in "\n".join(lines), legend


async def test_monitor_at_120x40_shows_the_memory_title_and_all_four_samples(make_run):
    run = make_run("20260101-000000-demo-tiny", events=run_with_four_samples())
    app = TuneApp(start=lambda: MonitorScreen(run, sample_gpus=False))
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: not app.screen.history_loading
                       and len(app.screen.series.samples) == 8)
        await pilot.pause(0.8)
        text = "\n".join(screen_lines(app))
        assert "memory GiB" in text and "0.625" in text
        for prompt in ("What is 1 + 3?", "What is 2 + 3?", "extra question 3?",
                       "extra question 4?"):
            assert prompt in text, prompt


async def test_runs_list_at_80_columns_shortens_ids_and_header_whole(runs, make_run):
    app = TuneApp()
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen)
                       and len(app.screen.summaries) == 3)
        app.screen.marked.update(["20260101-000000-demo-tiny", "20260101-000100-lora"])
        app.screen._show_title()
        await pilot.pause(0.3)
        lines = screen_lines(app)
        assert lines[0].rstrip().endswith(("F1 lists the keys", "(c compares)")), lines[0]
        text = "\n".join(lines)
        assert "000000-demo-tiny" in text and "000100-lora" in text
        assert "000300-demo-clas…" in text  # too long even without its date: says so
        await pilot.resize_terminal(120, 40)
        await pilot.pause(0.5)
        text = "\n".join(screen_lines(app))
        assert "20260101-000000-demo-tiny" in text  # whole where it fits
        assert "000300-demo-classify " in text  # else without its date, not cut mid-name
        assert "Enter opens, n starts a new one, F1 lists the keys" in text


def test_a_run_id_loses_its_date_before_anything_else():
    run_id = "20260101-000300-demo-classify"
    assert shown_id(run_id, 40) == run_id
    assert shown_id(run_id, 20) == "000300-demo-classify"
    assert shown_id(run_id, 12) == "000300-demo…"
    assert shown_id("my-own-run-name-x", 10) == "my-own-ru…"


async def test_chat_settings_all_show_their_values_at_80_columns(make_run):
    """The stop-strings field had no room left at 80 columns (the row ran past the edge) and
    the numbers' fields showed `.0` for 0.0."""
    import sys

    from textual.widgets import Input

    from tui_tune.tui.screens.chat import ChatScreen
    run = make_run("20260101-000000-demo-tiny")
    (run / "final").mkdir()
    app = TuneApp(start=lambda: ChatScreen(
        [run], server_argv=lambda side: [sys.executable, "-c", "raise SystemExit(1)"]))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.5)
        row = next(line for line in screen_lines(app) if "temp" in line)
        for field in app.screen.query_one("#chat-settings").query(Input):
            assert 0 < field.region.width and field.region.right <= 80, field.id
            if field.value:
                assert field.value in row, (field.id, row)
        assert "stop" in row and row.rstrip().endswith("▎"), row  # the last field closes


@pytest.mark.parametrize(("width", "names"), [(80, "short"), (120, "short"), (140, "whole")])
async def test_every_editor_tab_name_shows_whole(workdir, width, names):
    """The tab bar cut names at its edges ("quantizati", "aug"): it spans the screen, with
    short names where the whole ones do not fit, and every tab is on screen."""
    from tui_tune.tui.screens.editor import SHORT_TABS, TABS
    app = TuneApp(start=lambda: EditorScreen(EditorState.from_preset("demo-tiny")))
    async with app.run_test(size=(width, 24)) as pilot:
        await pilot.pause(0.5)
        bar = screen_lines(app)[2]
        shown = [SHORT_TABS[t] if names == "short" else t for t in TABS]
        assert bar.split() == shown, bar
        await pilot.press("f8", "f8", "f8", "f8", "f8", "f8", "f8")  # the bar never scrolls
        await pilot.pause(0.3)
        assert screen_lines(app)[2].split() == shown
