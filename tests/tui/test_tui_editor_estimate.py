"""The editor's live estimate: memory breakdown, fit per GPU (or a GPU size asked for), the
changes that make it fit and the ETA, updated as settings change, at 80 and 120 columns."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.tui.conftest import wait_for
from tests.tui.test_tui_editor import focus_field, replace_text
from tui_tune.monitor import gpu
from tui_tune.monitor.gpu import GpuReading
from tui_tune.runs.estimate import cached
from tui_tune.tui.app import TuneApp
from tui_tune.tui.editor_state import EditorState
from tui_tune.tui.screens.editor import EditorScreen

# TinyLlama-1.1B's config.json (the numbers the estimate reads)
TINYLLAMA = {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": 2048,
             "intermediate_size": 5632, "num_hidden_layers": 22, "num_attention_heads": 32,
             "num_key_value_heads": 4, "vocab_size": 32000, "tie_word_embeddings": False,
             "max_position_embeddings": 2048, "torch_dtype": "bfloat16"}


@pytest.fixture
def no_gpu(monkeypatch):
    monkeypatch.setattr(gpu, "sample_gpus", list)
    monkeypatch.setattr(gpu, "gpu_unavailable_reason", lambda: "no GPU: NVML unavailable")


def write_backbone(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(TINYLLAMA), encoding="utf-8")
    return folder


def lora_state(workdir: Path) -> EditorState:
    write_backbone(workdir / "tinyllama")
    rows = [{"prompt": f"question {n} " * 20, "answer": "an answer " * 30} for n in range(400)]
    (workdir / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    state = EditorState.from_preset("demo-tiny")
    for path, value in [("general.backbone", "tinyllama"), ("adapter.method", "lora"),
                        ("dataset.train_file", "train.jsonl"), ("training.max_steps", None),
                        ("architecture.backbone_dtype", "bfloat16"),
                        ("tokenizer.max_length", 1024), ("training.batch_size", 4)]:
        state.set_value(path, value)
    return state


def line_text(app) -> str:
    return str(app.screen.query_one("#estimate-line").render())


def detail_text(app) -> str:
    return str(app.screen.query_one("#estimate-detail").render())


async def test_estimate_shows_the_breakdown_and_follows_the_settings(workdir, no_gpu):
    state = lora_state(workdir)
    app = TuneApp(start=lambda: EditorScreen(state))
    reads = cached.reads
    async with app.run_test(size=(120, 40)) as pilot:
        editor = app.screen
        await wait_for(pilot, lambda: editor.last_estimate is not None)
        first = editor.last_estimate.memory.total_gib
        assert "Memory" in line_text(app) and "GiB/GPU" in line_text(app)
        assert "no GPU here" in line_text(app) and "ETA" in line_text(app)
        detail = detail_text(app)
        assert editor.query_one("#estimate-detail").display  # wide: shown without asking
        for part in ("weights", "adapter", "optimizer", "activations",
                     "logits + loss", "CUDA context", "needed"):
            assert part in detail, part
        assert "no GPU: NVML unavailable" in detail
        assert "steps" in detail and "tokens/s" in detail and "FLOPs model" in detail
        for _ in range(2):  # general -> dataset -> tokenizer
            await pilot.press("f8")
        await pilot.pause()
        await focus_field(pilot, "field-tokenizer-max_length")
        await replace_text(pilot, "2048")
        await wait_for(pilot, lambda: editor.last_estimate is not None  # "2" has a problem
                       and editor.last_estimate.memory.settings.max_length == 2048)
        assert editor.last_estimate.memory.total_gib > first
        assert cached.reads - reads == 1  # config.json read once for every estimate


async def test_a_gpu_size_too_small_lists_the_changes_that_fit(workdir, no_gpu):
    state = lora_state(workdir)
    app = TuneApp(start=lambda: EditorScreen(state))
    async with app.run_test(size=(120, 40)) as pilot:
        editor = app.screen
        await wait_for(pilot, lambda: editor.last_estimate is not None)
        await pilot.press("f9")
        await pilot.press("end", "ctrl+u", *"6", "enter")
        await wait_for(pilot, lambda: editor.last_estimate.budget_gib == 6)
        assert "too big for 6 GiB" in line_text(app)
        detail = detail_text(app)
        assert "To fit, largest saving first" in detail
        assert "backbone_dtype=int4" in detail and "largest batch size that fits" in detail
        await pilot.press("f9")
        await pilot.press("end", "ctrl+u", *"80", "enter")
        await wait_for(pilot, lambda: editor.last_estimate.budget_gib == 80)
        assert "fits 80 GiB" in line_text(app) and "To fit" not in detail_text(app)


async def test_each_visible_gpu_is_judged(workdir, monkeypatch):
    readings = [GpuReading(0, "NVIDIA H100", 1.0, 79.6, None, None, None, None),
                GpuReading(1, "NVIDIA T4", 0.5, 4.0, None, None, None, None)]
    monkeypatch.setattr(gpu, "sample_gpus", lambda: readings)
    state = lora_state(workdir)
    app = TuneApp(start=lambda: EditorScreen(state))
    async with app.run_test(size=(120, 40)) as pilot:
        editor = app.screen
        await wait_for(pilot, lambda: editor.last_estimate is not None)
        assert "too big for GPU 1 (4 GiB)" in line_text(app)
        detail = detail_text(app)
        assert "GPU 0 NVIDIA H100" in detail and "fits" in detail
        assert "GPU 1 NVIDIA T4" in detail and "does not fit" in detail


async def test_at_80_columns_one_line_and_f4_opens_the_details(workdir, no_gpu):
    state = lora_state(workdir)
    app = TuneApp(start=lambda: EditorScreen(state))
    async with app.run_test(size=(80, 24)) as pilot:
        editor = app.screen
        await wait_for(pilot, lambda: editor.last_estimate is not None)
        panel = editor.query_one("#estimate-detail")
        assert not panel.display
        assert editor.query_one("#estimate-line").region.width >= 76
        assert "F4 details" in line_text(app)
        await pilot.press("f4")
        await pilot.pause()
        assert panel.display and "weights" in detail_text(app)
        await pilot.press("f4")
        await pilot.pause()
        assert not panel.display


async def test_an_unreadable_backbone_or_a_problem_is_said_in_the_line(workdir, no_gpu):
    state = EditorState.from_preset("demo-tiny")
    state.set_value("general.backbone", "nowhere/model")
    app = TuneApp(start=lambda: EditorScreen(state))
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: "no config.json for nowhere/model" in line_text(app))
        app.screen.query_one("#field-general-backbone").value = ""
        await wait_for(pilot, lambda: "fix the problems" in line_text(app))
