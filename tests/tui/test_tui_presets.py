"""Presets screen: duplicate, delete (asks first; Escape keeps), rename, diff, keyboard only."""

from __future__ import annotations

from pathlib import Path

from tests.tui.conftest import wait_for
from tui_tune.tui.app import TuneApp
from tui_tune.tui.screens.dialogs import ConfirmDialog, TextDialog
from tui_tune.tui.screens.presets import PresetsScreen


async def move_to(pilot, screen: PresetsScreen, name: str, source: str | None = None) -> None:
    rows = [(p.name, p.source) for p in screen.presets]
    target = next(i for i, (n, s) in enumerate(rows) if n == name and source in (None, s))
    await pilot.pause()
    await pilot.press("ctrl+home")
    for _ in range(target):
        await pilot.press("down")
    assert screen.selected.name == name


async def test_duplicate_then_delete_with_confirmation(workdir):
    app = TuneApp(start=PresetsScreen)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        await move_to(pilot, screen, "lora")
        await pilot.press("c")
        await pilot.press("end", "ctrl+u", *"my-lora", "enter")
        copy = workdir / "presets" / "my-lora.toml"
        await wait_for(pilot, copy.exists)
        assert screen.selected.name == "my-lora" and screen.selected.source == "local"
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("escape")  # Escape never deletes
        await pilot.pause()
        assert copy.exists()
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("y")
        await wait_for(pilot, lambda: not copy.exists())
        assert "my-lora" not in [p.name for p in screen.presets]


async def test_builtin_presets_cannot_be_deleted_or_renamed(workdir):
    app = TuneApp(start=PresetsScreen)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        await move_to(pilot, screen, "demo-tiny", "built-in")
        await pilot.press("x")
        await pilot.pause()
        assert isinstance(app.screen, PresetsScreen)  # no dialog: refused with a message
        await pilot.press("r", "end", "ctrl+u", *"renamed", "enter")
        await pilot.pause()
        assert not (workdir / "presets" / "renamed.toml").exists()


async def test_rename_local_and_diff_two_presets(workdir):
    (workdir / "presets" / "mine.toml").write_text(
        'schema_version = 1\nextends = "lora"\n[training]\nlr = 0.0005\n')
    app = TuneApp(start=PresetsScreen)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        await move_to(pilot, screen, "mine")
        await pilot.press("r", "end", "ctrl+u", *"yours", "enter")
        await wait_for(pilot, lambda: (workdir / "presets" / "yours.toml").exists())
        assert not (workdir / "presets" / "mine.toml").exists()
        await move_to(pilot, screen, "lora")
        await pilot.press("m")
        await move_to(pilot, screen, "yours")
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, TextDialog))
        assert "training.lr: 0.0002 -> 0.0005" in app.screen.body


async def test_import_a_preset_file(workdir, tmp_path_factory):
    outside = tmp_path_factory.mktemp("elsewhere") / "shared.toml"
    outside.write_text('schema_version = 1\nextends = "demo-tiny"\n[training]\nmax_steps = 5\n')
    app = TuneApp(start=PresetsScreen)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("i", *str(outside), "enter")
        await wait_for(pilot, lambda: (workdir / "presets" / "shared.toml").exists())
        assert app.screen.selected.name == "shared"


async def test_import_an_axolotl_config_lists_what_was_not_mapped(workdir):
    source = Path(__file__).resolve().parents[1] / "data" / "axolotl_llama3_lora_1b.yml"
    app = TuneApp(start=PresetsScreen)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("i", *str(source), "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, TextDialog))
        assert (workdir / "presets" / "axolotl_llama3_lora_1b.toml").exists()
        assert "read axolotl config" in app.screen.body
        assert "warmup_steps = 10: " in app.screen.body
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen.selected.name == "axolotl_llama3_lora_1b"
