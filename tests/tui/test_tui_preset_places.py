"""Where presets live: built-ins only inside the package, ./presets always the user's own
folder (in a checkout of this repository too), and every label saying which is which."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

import pytest

import tui_tune
from tests.tui.conftest import wait_for
from tests.tui.test_tui_editor import focus_field, open_tab, replace_text
from tui_tune.config.presets import builtin_dir, list_presets
from tui_tune.tui.app import TuneApp
from tui_tune.tui.editor_state import EditorState
from tui_tune.tui.screens.dialogs import PromptDialog
from tui_tune.tui.screens.editor import EditorScreen

CHECKOUT = Path(tui_tune.__file__).resolve().parent.parent


def test_builtin_presets_live_only_inside_the_package():
    assert builtin_dir() == Path(tui_tune.__file__).resolve().parent / "_builtin_presets"
    assert {p.stem for p in builtin_dir().glob("*.toml")} >= {"demo-tiny", "lora"}
    # the checkout's ./presets is a user's folder: a built-in there would be labelled local
    assert not list((CHECKOUT / "presets").glob("*.toml")) or \
        all(p.name.startswith("zz-") for p in (CHECKOUT / "presets").glob("*.toml"))


@pytest.fixture
def in_checkout(tmp_path, monkeypatch):
    """cwd = this repository's checkout, as the README's setup has it; a preset saved there is
    removed afterwards (./presets/*.toml is git-ignored)."""
    monkeypatch.chdir(CHECKOUT)
    monkeypatch.setenv("TUI_TUNE_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("TUI_TUNE_RUNS", str(tmp_path / "runs"))
    name = f"zz-mine-{os.getpid()}"
    yield name, CHECKOUT / "presets" / f"{name}.toml"
    (CHECKOUT / "presets" / f"{name}.toml").unlink(missing_ok=True)


async def test_save_as_in_a_checkout_writes_a_local_preset_that_ctrl_s_saves_in_place(
        in_checkout):
    name, path = in_checkout
    state = EditorState.from_preset("demo-tiny")
    assert state.label == "demo-tiny (built-in)"
    app = TuneApp(start=lambda: EditorScreen(state))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f2")
        await wait_for(pilot, lambda: isinstance(app.screen, PromptDialog))
        await pilot.press("end", "ctrl+u", *name, "enter")
        await wait_for(pilot, path.exists)
    assert [(p.source, p.path) for p in list_presets() if p.name == name] == [("local", path)]
    mine = EditorState.from_preset(name)  # reopens as itself, not as a copy
    assert mine.target == path and mine.label == f"{name} (local ./presets/{name}.toml)"
    app = TuneApp(start=lambda: EditorScreen(mine))
    async with app.run_test(size=(120, 40)) as pilot:
        await open_tab(pilot, "training")
        await focus_field(pilot, "field-training-lr")
        await replace_text(pilot, "7e-4")
        await pilot.press("ctrl+s")  # saves in place: no name asked
        await wait_for(pilot, lambda: not app.screen.state.dirty)
        assert not isinstance(app.screen, PromptDialog)
        assert f"local ./presets/{name}.toml" in str(app.screen.query_one("#editor-title")
                                                     .render())
    assert tomllib.loads(path.read_text())["training"]["lr"] == 7e-4


def test_a_user_preset_is_labelled_with_its_folder(tmp_path, monkeypatch):
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    monkeypatch.setenv("TUI_TUNE_CONFIG_DIR", str(tmp_path / "config"))
    (tmp_path / "config" / "presets").mkdir(parents=True)
    path = tmp_path / "config" / "presets" / "shared.toml"
    path.write_text('schema_version = 1\nextends = "lora"\n')
    state = EditorState.from_preset("shared")
    assert state.target == path and state.label == f"shared (user {path})"
