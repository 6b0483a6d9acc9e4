"""Closing with live runs says in one line that they keep running; the runs screen names the
folder it lists; on/off settings say their state in text (issue 21 minor 21)."""

from __future__ import annotations

import pytest

from tests.stalled_runs import live_run, stop
from tests.tui.conftest import wait_for
from tui_tune.tui.app import TuneApp, live_runs_note
from tui_tune.tui.editor_state import EditorState
from tui_tune.tui.screens.editor import EditorScreen
from tui_tune.tui.screens.runs import RunsScreen
from tui_tune.tui.widgets.text_switch import TextSwitch


def test_the_note_is_one_line_for_one_run_or_many():
    assert live_runs_note([]) == ""
    one = live_runs_note(["a"])
    assert one.startswith("1 run keeps running (a)") and "\n" not in one
    many = live_runs_note(["a", "b", "c"])
    assert many.startswith("3 runs keep running (a, b and 1 more)") and "\n" not in many


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
async def test_quitting_with_a_live_run_says_it_keeps_running(workdir, make_run, size):
    make_run("20260101-000000-demo-tiny")  # stopped: not named
    run, launcher = live_run(workdir / "runs", "20260101-000100-demo-tiny", 0)
    try:
        app = TuneApp()
        async with app.run_test(size=size) as pilot:
            runs = app.screen
            await wait_for(pilot, lambda: isinstance(runs, RunsScreen)
                           and "running" in [s.status for s in runs.summaries])
            title = str(runs.query_one("#runs-title").render())
            assert title.startswith("Runs 2 in runs/")
            await pilot.press("ctrl+q")
        assert app.exit_note.startswith(f"1 run keeps running ({run.name})")
        assert launcher.poll() is None  # closing never stops a run
    finally:
        stop(launcher)


async def test_switches_say_on_or_off_in_text(workdir):
    state = EditorState.from_preset("demo-tiny")
    app = TuneApp(start=lambda: EditorScreen(state))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f8", "f8", "f8")  # architecture: gradient_checkpointing and more
        editor = app.screen
        await wait_for(pilot, lambda: bool(editor.query(TextSwitch)))
        switch = editor.query_one("#field-architecture-gradient_checkpointing", TextSwitch)
        assert str(switch.render()) == "[ ] off"
        switch.focus()
        await pilot.press("space")
        await wait_for(pilot, lambda: state.value("architecture.gradient_checkpointing") is True)
        assert str(switch.render()) == "[x] on"
