"""experiment_name says what it does, Save as names the experiment after the new preset (so
its runs are called by it), and a text's bounds read as characters (issue 21 minor 12)."""

from __future__ import annotations

import tomllib

import pytest

from tests.tui.conftest import wait_for
from tui_tune.config import GROUPS
from tui_tune.tui.app import TuneApp
from tui_tune.tui.editor_state import EditorState
from tui_tune.tui.schema_fields import bounds_text, help_text
from tui_tune.tui.screens.editor import EditorScreen


def test_experiment_names_help_and_bounds_say_what_they_mean():
    info = GROUPS["general"].model_fields["experiment_name"]
    assert bounds_text(info) == "at least 1 characters, at most 80 characters"
    from tui_tune.tui.schema_fields import group_specs
    spec = next(s for s in group_specs("general") if s.name == "experiment_name")
    text = help_text(spec)
    assert "runs list" in text and "Save as sets it" in text
    targets = GROUPS["adapter"].model_fields["target_modules"]  # a list: items
    assert bounds_text(targets) == "at least 1 items"


@pytest.mark.parametrize("renamed", [False, True])
async def test_save_as_names_the_experiment_after_the_new_preset(workdir, renamed):
    state = EditorState.from_preset("demo-tiny")
    if renamed:  # a name of the user's own is kept
        state.set_value("general.experiment_name", "arithmetic")
    app = TuneApp(start=lambda: EditorScreen(state))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f2")
        await pilot.press("end", "ctrl+u", *"my-exp", "enter")
        await wait_for(pilot, lambda: (workdir / "presets" / "my-exp.toml").exists())
    saved = tomllib.loads((workdir / "presets" / "my-exp.toml").read_text())
    assert saved["general"]["experiment_name"] == ("arithmetic" if renamed else "my-exp")
