"""The editor as a newcomer meets it: switching tabs puts the focus on the tab's first field
with its help beside it (issue 21 minor 13), and leaving an editor whose values are as they
were never asks to discard changes (minor 14)."""

from __future__ import annotations

import pytest
from textual.widgets import Static

from tests.tui.conftest import wait_for
from tests.tui.test_tui_editor import focus_field
from tui_tune.tui.app import TuneApp
from tui_tune.tui.screens.dialogs import ConfirmDialog
from tui_tune.tui.screens.editor import TABS, EditorScreen
from tui_tune.tui.screens.presets import PresetsScreen


async def open_editor(pilot, app, preset: str = "demo-tiny") -> EditorScreen:
    await pilot.press("n")
    await wait_for(pilot, lambda: isinstance(app.screen, PresetsScreen))
    names = [p.name for p in app.screen.presets]
    for _ in range(names.index(preset)):
        await pilot.press("down")
    await pilot.press("enter")
    await wait_for(pilot, lambda: isinstance(app.screen, EditorScreen))
    return app.screen


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
async def test_switching_tabs_focuses_the_first_field_and_its_help(workdir, size):
    app = TuneApp()
    async with app.run_test(size=size) as pilot:
        editor = await open_editor(pilot, app)
        # forward three tabs, then back past the first to the last (the sweep's text)
        for group, key in (("dataset", "f8"), ("tokenizer", "f8"), ("architecture", "f8"),
                           ("tokenizer", "f7"), ("dataset", "f7"), ("general", "f7"),
                           ("sweep", "f7")):
            await pilot.press(key)
            await wait_for(pilot, lambda g=group: app.focused is not None and (
                (app.focused.id or "").startswith(f"field-{g}-") or
                (g == "sweep" and app.focused.id == "sweep-text")))
            if group != "sweep":
                spec = editor.specs[app.focused.id]
                help_panel = editor.query_one("#field-help", Static)
                # the help follows the focus one message later (DescendantFocus): wait for it
                await wait_for(pilot, lambda p=spec.path, h=help_panel: p in str(h.render()))
                shown = str(help_panel.render())
                assert spec.path in shown, (group, shown[:80])


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
async def test_leaving_an_unmodified_editor_never_asks(workdir, size):
    app = TuneApp()
    async with app.run_test(size=size) as pilot:
        editor = await open_editor(pilot, app)
        for _ in range(TABS.index("training")):  # the forms on the way mounted
            await pilot.press("f8")
        await focus_field(pilot, "field-training-lr")
        await pilot.press("end", "1")  # typed, then taken back: as it was
        await wait_for(pilot, lambda: editor.state.dirty)
        await pilot.press("backspace")
        await wait_for(pilot, lambda: not editor.state.dirty)
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, PresetsScreen))
        assert not any(isinstance(s, ConfirmDialog) for s in app.screen_stack)
