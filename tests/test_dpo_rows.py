"""dpo files the worker would refuse are refused before launch, each with one line naming the
setting, the file and the row: a missing rejected column, an empty chosen or rejected answer,
a pair whose answers are the same."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tui_tune.config.presets import resolve
from tui_tune.runs.preflight import preflight


def problems(workdir: Path, rows: list[dict], *overrides: str) -> dict[str, str]:
    path = workdir / "pairs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    exp = resolve("demo-dpo", [f'dataset.train_file="{path}"', *overrides]).experiment
    return {p.key: p.message for p in preflight(exp, cuda_devices=0)}


def pairs(*answers: tuple) -> list[dict]:
    return [{"prompt": f"q{n}", "answer": chosen, "rejected_answer": rejected}
            for n, (chosen, rejected) in enumerate(answers)]


def test_good_pairs_pass_and_a_test_file_needs_only_prompts(preset_workdir):
    assert problems(preset_workdir, pairs(("1", "2"), ("3", "33"))) == {}
    from tui_tune.runs.datafiles import check_rows

    exp = resolve("demo-dpo", []).experiment
    check_rows([{"prompt": "q"}], exp.dataset, "dpo", targets=False)


@pytest.mark.parametrize("rows, setting, words", [
    (pairs(("1", "2"), ("", "3")), "dataset.answer_column", ["row 2", "'answer'", "empty"]),
    (pairs(("1", "2"), ("4", "  ")), "dataset.rejected_answer_column",
     ["row 2", "'rejected_answer'", "empty"]),
    (pairs(("1", "2"), ("5", None)), "dataset.rejected_answer_column", ["row 2", "empty"]),
    (pairs(("1", "2"), ("1", "2"), ("7", "7")), "dataset.rejected_answer_column",
     ["row 3", "same text"]),
    ([{"prompt": "q", "answer": "1", "wrong": "2"}], "dataset.rejected_answer_column",
     ["'rejected_answer'", "not in the file"]),
])
def test_bad_pairs_name_setting_file_and_row(preset_workdir, rows, setting, words):
    found = problems(preset_workdir, rows)
    assert list(found) == [setting], found
    assert "pairs.jsonl" in found[setting]
    for word in words:
        assert word in found[setting], found[setting]


def test_dpo_settings_elsewhere_are_ignored_with_a_warning():
    from tui_tune.config.rules import ignored_settings

    exp = resolve("demo-tiny", ['dataset.rejected_answer_column="worse"']).experiment
    warnings = {p.key: p.message for p in ignored_settings(exp)}
    assert "not read for problem type 'causal_lm'" in warnings["dataset.rejected_answer_column"]
    exp = resolve("demo-dpo", ['training.dpo_loss="hinge"', "training.label_smoothing=0.1"])
    warnings = {p.key: p.message for p in ignored_settings(exp.experiment)}
    assert "sigmoid" in warnings["training.label_smoothing"]
