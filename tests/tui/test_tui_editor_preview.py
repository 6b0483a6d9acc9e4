"""The editor's dataset preview (F6): the first rows as the model sees them, masked parts dim,
the token-length histogram against max_length, the rows cut or dropped, the format told."""

from __future__ import annotations

import json
import os

import pytest

from tests.tui.conftest import wait_for
from tui_tune.tui.app import TuneApp
from tui_tune.tui.editor_state import EditorState
from tui_tune.tui.screens.editor import EditorScreen
from tui_tune.tui.screens.editor_preview import DataPreviewScreen


@pytest.fixture
def demo_here(workdir, demo_assets):
    """./demo -> the demo assets, so demo-tiny's relative paths (demo/model, demo/data) work."""
    os.symlink(demo_assets, workdir / "demo")
    return workdir


def dimmed(content, at: int) -> bool:
    return any(s.start <= at < s.end and getattr(s.style, "dim", False) for s in content.spans)


def body(app):
    return app.screen.query_one("#preview-body").render()


async def open_preview(pilot, app):
    await pilot.press("f6")
    await wait_for(pilot, lambda: isinstance(app.screen, DataPreviewScreen))
    await wait_for(pilot, lambda: app.screen.result is not None, timeout=30)


async def test_f6_shows_the_rows_as_the_model_sees_them(demo_here):
    state = EditorState.from_preset("demo-tiny")
    state.set_value("tokenizer.max_length", 16)
    app = TuneApp(start=lambda: EditorScreen(state))
    async with app.run_test(size=(80, 24)) as pilot:
        await open_preview(pilot, app)
        shown = app.screen.result
        text = body(app)
        plain = text.plain
        assert "Format: auto -> columns" in plain
        assert "Tokens: tokens from demo/model/tokenizer.json" in plain
        assert "Token lengths" in plain and "> 16" in plain
        assert f"{shown.cut:,} longer than max_length 16" in plain and shown.cut > 0
        assert "── row 1:" in plain
        prompt = plain.index("<|prompt|>")
        assert dimmed(text, prompt)  # the prompt is masked: shown dim
        answer_at = plain.index("<|answer|>") + len("<|answer|>")
        assert not dimmed(text, answer_at)  # the answer is learned
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, EditorScreen))


async def test_a_chat_file_shows_its_format_and_the_rows_it_drops(demo_here):
    rows = [{"conversations": [{"from": "human", "value": "What is 1 + 1?"},
                               {"from": "gpt", "value": "2"}]},
            {"conversations": [{"from": "robot", "value": "beep"}]}]
    (demo_here / "chat.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    state = EditorState.from_preset("demo-tiny")
    state.set_value("dataset.train_file", "chat.jsonl")
    state.set_value("dataset.use_chat_template", True)
    app = TuneApp(start=lambda: EditorScreen(state))
    async with app.run_test(size=(120, 40)) as pilot:
        await open_preview(pilot, app)
        plain = body(app).plain
        assert "Format: auto -> sharegpt" in plain
        assert "<|user|>What is 1 + 1?" in plain  # the demo tokenizer's chat template
        assert "1 rows dropped" in plain and "row 2, column 'conversations'" in plain


async def test_an_unreadable_file_is_said_in_the_preview(demo_here):
    state = EditorState.from_preset("demo-tiny")
    state.set_value("dataset.train_file", "nothing.jsonl")
    app = TuneApp(start=lambda: EditorScreen(state))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f6")
        await wait_for(pilot, lambda: isinstance(app.screen, DataPreviewScreen))
        await wait_for(pilot, lambda: "dataset.train_file nothing.jsonl" in str(body(app)))
