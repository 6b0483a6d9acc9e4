"""A run trained from a hub dataset id in the local datasets cache (offline), validated on a
save_to_disk folder's split and predicting a parquet folder's test split: the worker loads each
with `datasets` (load_dataset / load_from_disk) or the folder reader (issue 20)."""

from __future__ import annotations

import csv
import json

import pytest
from conftest import completed_run, read_events
from dataset_folders import fill_datasets_cache, parquet_folder, save_dataset

from tui_tune.rundir import RunDir

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("train-dataset-sources")]


def test_training_reads_a_cached_hub_id_a_saved_folder_and_a_parquet_folder(
        tmp_path, make_run_dir, demo_assets, monkeypatch):
    rows = [json.loads(line) for line in
            (demo_assets / "data" / "train.jsonl").read_text().splitlines()][:24]
    cache = tmp_path / "datasets-cache"
    fill_datasets_cache(cache, "someorg/tiny-sums", {"train": rows[:16]}, tmp_path)
    saved = save_dataset([], tmp_path / "saved", {"train": rows, "validation": rows[16:20]})
    tests = parquet_folder(tmp_path / "parquet", {"test": rows[20:24]})
    monkeypatch.setenv("HF_DATASETS_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the worker inherits both
    run_dir = completed_run(make_run_dir(tmp_path / "run", [
        'dataset.train_file="someorg/tiny-sums"', 'dataset.validation_strategy="custom"',
        f'dataset.validation_file="{saved}"', f'dataset.test_file="{tests}"',
        "training.batch_size=4", "training.max_steps=4", "training.eval_every_steps=4",
        "logging.log_every_steps=2"]))
    start = read_events(run_dir, "start")[0]
    assert (start["train_rows"], start["val_rows"]) == (16, 4)
    assert read_events(run_dir, "eval")
    with open(RunDir(run_dir).predictions(".csv"), newline="", encoding="utf-8") as file:
        predicted = list(csv.DictReader(file))
    assert [r["prompt"] for r in predicted] == [r["prompt"] for r in rows[20:24]]
