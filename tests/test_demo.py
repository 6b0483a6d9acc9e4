"""`tui-tune demo prepare`: reproducible assets that load through the real transformers paths."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

from tui_tune.config.presets import builtin_dir, resolve


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_prepare_cli_builds_loadable_reproducible_assets(tmp_path, demo_assets):
    subprocess.run([sys.executable, "-m", "tui_tune", "demo", "prepare", str(tmp_path / "d")],
                   check=True, capture_output=True)
    for name in ("model/model.safetensors", "model/tokenizer.json", "data/train.jsonl",
                 "data/chained.jsonl"):
        assert _digest(tmp_path / "d" / name) == _digest(demo_assets / name), name
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "d" / "model")
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "d" / "model")
    assert tokenizer.pad_token and tokenizer.bos_token and tokenizer.eos_token
    assert 300 <= len(tokenizer) <= 600
    assert 0.5e6 < sum(p.numel() for p in model.parameters()) < 3e6
    text = tokenizer.apply_chat_template([{"role": "user", "content": "What is 2 + 3?"}],
                                         add_generation_prompt=True, tokenize=False)
    assert "What is 2 + 3?" in text and text.endswith("<|assistant|>")


def test_data_rows_and_chains(demo_assets):
    rows = [json.loads(x) for x in (demo_assets / "data/train.jsonl").read_text().splitlines()]
    assert len(rows) >= 2000 and set(rows[0]) == {"system", "prompt", "answer"}
    a, b = rows[0]["prompt"].removeprefix("What is ").rstrip("?").split(" + ")
    assert int(rows[0]["answer"]) == int(a) + int(b)
    chained = [json.loads(x) for x in (demo_assets / "data/chained.jsonl").read_text().splitlines()]
    ids = {r["id"] for r in chained}
    assert all(r["parent_id"] in ids for r in chained if r["parent_id"])


def test_demo_preset_points_at_the_demo_layout():
    exp = resolve(str(builtin_dir() / "demo-tiny.toml")).experiment
    assert exp.general.backbone == "demo/model"
    assert exp.dataset.train_file == "demo/data/train.jsonl"
